"""Hardware configuration of an OPU: which USB devices and serial port make it up, and the
timing and recovery settings (units in the names). Loaded from JSON or TOML; the format is
documented in docs/hardware.md. Pure data and parsing, no device access.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..values import strict_float, strict_int

FORMAT = "opu-hardware/1"


@dataclass(frozen=True)
class DmdConfig:
    """DLPC900 controller: USB ids, per-transfer timeout (ms), command and upload retries, and
    the pattern path: "auto" (video-pattern mode when a video output is connected, the fastest
    path for new patterns; else on-the-fly upload), "video" or "usb"; the video refresh rate
    (Hz, <= 120) and the SDL display index of the controller's video input; the VSYNC edges
    between a frame becoming current on the video output and its bit planes being shown
    (0 in the emulated stack; measure it on a bench, docs/dlpc900.md); the HID link's
    64-byte reports per second per direction (USB 1.1 full speed: 1000) for the time model."""

    usb_vendor_id: int = 0x0451
    usb_product_id: int = 0xC900
    timeout_ms: int = 1000
    retries: int = 2
    upload_retries: int = 2
    pattern_path: str = "auto"
    video_refresh_hz: float = 120.0
    video_display: int = 0
    video_latency_vsyncs: int = 0
    usb_reports_per_s: float = 1000.0


@dataclass(frozen=True)
class FpgaConfig:
    """FPGA timing board: pyserial URL (device path, socket://, fpgaemu://), UART speed
    (bit/s), reply timeout (s) and re-sends."""

    url: str = "/dev/ttyUSB0"
    baudrate: int = 115_200
    timeout_s: float = 0.25
    retries: int = 3


@dataclass(frozen=True)
class CameraConfig:
    """Camera: backend ("u3v": USB3 Vision over pyusb, found by its USB ids; "gentl": through
    the vendor's GenTL producer, the .cti path `gentl_producer` and the camera's serial
    `gentl_serial`), control timeout (ms) and retries, pixel format (None: the packed format of
    the sensor's bit depth), trigger input line, and limits on the exposure (us) within the
    range the camera itself reports for ExposureTime (None: the camera's own limit)."""

    backend: str = "u3v"
    gentl_producer: str | None = None
    gentl_serial: str | None = None
    usb_vendor_id: int = 0x1209
    usb_product_id: int = 0x0001
    timeout_ms: int = 1000
    retries: int = 3
    pixel_format: str | None = None
    trigger_source: str = "Line0"
    min_exposure_us: float | None = None
    max_exposure_us: float | None = None


@dataclass(frozen=True)
class TimingConfig:
    """Frame timing, microseconds: the shortest frame period to use (longer exposures stretch
    it), and the DMD and camera trigger delays from each frame's start (camera >= DMD, so the
    camera exposes only once the pattern is on the mirrors)."""

    frame_period_us: float = 110.0
    dmd_delay_us: int = 0
    camera_delay_us: int = 0


@dataclass(frozen=True)
class AcquisitionConfig:
    """Integrity and recovery: re-acquisitions of one chunk before FrameIntegrityError;
    how long to wait for the last frames after a run ends (ms); whether camera timestamps
    share the FPGA's clock ("shared": compared absolutely) or run on their own ("relative":
    only frame intervals are compared); timestamp tolerance (us)."""

    max_reacquire: int = 3
    readout_timeout_ms: int = 250
    camera_clock: str = "shared"
    timestamp_tolerance_us: float = 1.0


_SECTIONS = {
    "dmd": DmdConfig,
    "fpga": FpgaConfig,
    "camera": CameraConfig,
    "timing": TimingConfig,
    "acquisition": AcquisitionConfig,
}


@dataclass(frozen=True)
class HardwareConfig:
    """Everything OPUHardware needs to find and drive the devices of one OPU."""

    dmd: DmdConfig = field(default_factory=DmdConfig)
    fpga: FpgaConfig = field(default_factory=FpgaConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    acquisition: AcquisitionConfig = field(default_factory=AcquisitionConfig)
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        _validate(self)

    def with_fpga_url(self, url: str) -> HardwareConfig:
        """A copy that reaches the timing board at another pyserial URL."""
        return replace(self, fpga=replace(self.fpga, url=url))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> HardwareConfig:
        """Parse the plain-data form (as in the JSON file); ConfigurationError on unknown
        sections or keys, wrong types or values out of range."""
        if not isinstance(data, dict):
            raise ConfigurationError(f"{source}: a hardware config must be an object/table")
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            raise ConfigurationError(
                f"{source}: config format {fmt!r} is not supported; expected {FORMAT!r}"
            )
        unknown = set(data) - set(_SECTIONS) - {"format"}
        if unknown:
            raise ConfigurationError(
                f"{source}: unknown config section(s) {sorted(unknown)}; known: "
                f"{sorted(_SECTIONS)}"
            )
        parts = {}
        for name, kind in _SECTIONS.items():
            parts[name] = _section(kind, data.get(name, {}), f"{source}: [{name}]")
        return cls(**parts, source=source)

    @classmethod
    def load(cls, spec: str | Path) -> HardwareConfig:
        """Read 'hw:<path>', 'hardware:<path>' or a path to a .json or .toml file."""
        text = str(spec)
        for prefix in ("hw:", "hardware:"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
                break
        if not text:
            raise ConfigurationError(
                "no hardware config path given: use 'hw:<path/to/opu.json>' (see docs/hardware.md)"
            )
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"hardware config {str(path)!r} does not exist; write one as described in "
                "docs/hardware.md"
            )
        raw = path.read_bytes()
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"hardware config {str(path)!r} does not parse: {e}") from e
        return cls.from_dict(data, source=str(path))


def _as_int(value: Any, where: str) -> int:
    """Integers, also written as strings like '0x0451' (USB ids)."""
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            raise ConfigurationError(f"{where} must be an integer, got {value!r}") from None
    return strict_int(value, where, ConfigurationError)


def _as_float(value: Any, where: str) -> float:
    return strict_float(value, where, ConfigurationError)


def _section(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where} must be an object/table of settings")
    known = {f.name: f for f in fields(kind)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    values = {}
    for name, value in data.items():
        default = getattr(kind(), name)
        key = f"{where} {name}"
        if isinstance(default, bool):
            raise ConfigurationError(f"{key}: no boolean settings exist")  # pragma: no cover
        if isinstance(default, int):
            values[name] = _as_int(value, key)
        elif isinstance(default, float) or known[name].type == "float | None":
            values[name] = None if value is None else _as_float(value, key)
        elif value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{key} must be a string, got {value!r}")
        else:
            values[name] = value
    return kind(**values)


def _validate(c: HardwareConfig) -> None:
    """ConfigurationError naming the first invalid setting of a whole config."""
    _validate_numbers(c)
    _validate_consistency(c)


def _validate_numbers(c: HardwareConfig) -> None:
    """USB ids, positive timeouts/rates/periods, non-negative counts."""

    def positive(name: str, v: float) -> None:
        if not v > 0:
            raise ConfigurationError(f"{c.source}: {name} must be > 0, got {v!r}")

    def at_least(name: str, v: int, lo: int) -> None:
        if v < lo:
            raise ConfigurationError(f"{c.source}: {name} must be >= {lo}, got {v!r}")

    for name, v in (("dmd.usb_vendor_id", c.dmd.usb_vendor_id),
                    ("dmd.usb_product_id", c.dmd.usb_product_id),
                    ("camera.usb_vendor_id", c.camera.usb_vendor_id),
                    ("camera.usb_product_id", c.camera.usb_product_id)):
        if not 0 <= v <= 0xFFFF:
            raise ConfigurationError(f"{c.source}: {name} must be a 16-bit USB id, got {v!r}")
    positive("dmd.timeout_ms", c.dmd.timeout_ms)
    positive("camera.timeout_ms", c.camera.timeout_ms)
    positive("fpga.timeout_s", c.fpga.timeout_s)
    positive("fpga.baudrate", c.fpga.baudrate)
    positive("timing.frame_period_us", c.timing.frame_period_us)
    positive("acquisition.readout_timeout_ms", c.acquisition.readout_timeout_ms)
    for name, v in (("dmd.retries", c.dmd.retries), ("dmd.upload_retries", c.dmd.upload_retries),
                    ("fpga.retries", c.fpga.retries), ("camera.retries", c.camera.retries),
                    ("acquisition.max_reacquire", c.acquisition.max_reacquire),
                    ("timing.dmd_delay_us", c.timing.dmd_delay_us)):
        at_least(name, v, 0)
    if not 0 < c.dmd.video_refresh_hz <= 120:
        raise ConfigurationError(
            f"{c.source}: dmd.video_refresh_hz must be in (0, 120] (the DLPC900's video input), "
            f"got {c.dmd.video_refresh_hz!r}"
        )
    at_least("dmd.video_display", c.dmd.video_display, 0)
    at_least("dmd.video_latency_vsyncs", c.dmd.video_latency_vsyncs, 0)
    positive("dmd.usb_reports_per_s", c.dmd.usb_reports_per_s)


def _validate_consistency(c: HardwareConfig) -> None:
    """Settings that must agree with each other, and the choices among named options."""
    if c.dmd.pattern_path not in ("auto", "usb", "video"):
        raise ConfigurationError(
            f"{c.source}: dmd.pattern_path must be 'auto', 'usb' or 'video', got "
            f"{c.dmd.pattern_path!r}"
        )
    if not isinstance(c.fpga.url, str) or not c.fpga.url:
        raise ConfigurationError(f"{c.source}: fpga.url must name the timing board's port")
    if c.timing.camera_delay_us < c.timing.dmd_delay_us:
        raise ConfigurationError(
            f"{c.source}: timing.camera_delay_us ({c.timing.camera_delay_us}) must be >= "
            f"timing.dmd_delay_us ({c.timing.dmd_delay_us}): the camera must expose while the "
            "pattern is on the mirrors"
        )
    lo, hi = c.camera.min_exposure_us, c.camera.max_exposure_us
    given = [v for v in (lo, hi) if v is not None]
    if any(not v > 0 for v in given) or (len(given) == 2 and lo > hi):
        raise ConfigurationError(
            f"{c.source}: need 0 < camera.min_exposure_us <= camera.max_exposure_us, got "
            f"{lo}, {hi}"
        )
    _validate_camera_backend(c)
    if c.acquisition.camera_clock not in ("shared", "relative"):
        raise ConfigurationError(
            f"{c.source}: acquisition.camera_clock must be 'shared' or 'relative', got "
            f"{c.acquisition.camera_clock!r}"
        )
    if not c.acquisition.timestamp_tolerance_us >= 0:
        raise ConfigurationError(f"{c.source}: acquisition.timestamp_tolerance_us must be >= 0")


def _validate_camera_backend(c: HardwareConfig) -> None:
    if c.camera.backend not in ("u3v", "gentl"):
        raise ConfigurationError(
            f"{c.source}: camera.backend must be 'u3v' or 'gentl', got {c.camera.backend!r}"
        )
    if c.camera.backend == "gentl" and not c.camera.gentl_producer:
        raise ConfigurationError(
            f"{c.source}: camera.backend 'gentl' needs camera.gentl_producer (the vendor's .cti)"
        )
