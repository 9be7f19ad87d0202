"""Frame sources for `opu.OPU`: device strings parsed once, and the simulator behind a source.

A device string names a source: 'sim' (the simulator), 'emu' / 'emu:<name>' (the real driver
stack against emulated devices; <name> is the fpgaemu:// name) or a hardware config
('hw:<path>', 'usb:<path>', 'hardware:<path>', or a path ending in .json / .toml).
`parse_device` turns it into a `DeviceSpec` once; `open_source` opens what a spec names.

`simulator_of(source)` is the OpticalBench whose physics a source shows (for simulator truth:
exact matrices), or None for real hardware: a bench is its own simulator, an emulated
hardware stack exposes its rig's bench as `simulator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from firmware_iface.errors import ConfigurationError
from firmware_iface.frames import FrameSource
from firmware_iface.geometry import CameraRoi, DmdLayout

__all__ = [
    "DeviceSpec",
    "adopt_source",
    "default_profile",
    "load_calibration",
    "open_source",
    "parse_device",
    "simulator_of",
    "use_device",
]

_HW_PREFIXES = ("hw:", "usb:", "hardware:")


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device string. kind: 'sim', 'emu' or 'hw'; name: the emulator's fpgaemu://
    name ('' for a unique one) or the hardware config path; text: the string as given."""

    kind: Literal["sim", "emu", "hw"]
    name: str
    text: str

    @property
    def simulated(self) -> bool:
        """True for 'sim' and 'emu' (a DeviceProfile describes the device)."""
        return self.kind in ("sim", "emu")


def parse_device(device: object) -> DeviceSpec:
    """The DeviceSpec of a device string; ConfigurationError for anything else."""
    if isinstance(device, DeviceSpec):
        return device
    if not isinstance(device, str):
        raise ConfigurationError(
            f"device must be a string ('sim', 'emu' or a hardware config) or a frame source, "
            f"got {type(device).__name__}"
        )
    if device == "sim":
        return DeviceSpec("sim", "", device)
    if device == "emu" or device.startswith("emu:"):
        return DeviceSpec("emu", device[4:], device)
    if device.startswith(_HW_PREFIXES) or device.endswith((".toml", ".json")):
        return DeviceSpec("hw", device, device)
    raise ConfigurationError(
        f"unknown device {device!r}: use 'sim' (simulator), 'emu' (emulated hardware stack) "
        "or a hardware config ('hw:<config.json>')"
    )


def default_profile(profile: Any, spec: DeviceSpec, noise: bool) -> Any:
    """The profile of a simulated device (default, or ideal without noise); None for hardware."""
    if profile is None and spec.simulated:
        from opu_sim.profile import DeviceProfile

        return DeviceProfile.default() if noise else DeviceProfile.ideal()
    return profile


def open_source(
    device: str | DeviceSpec,
    layout: DmdLayout,
    roi: CameraRoi,
    seed: int,
    profile: Any,
    cache_budget_bytes: int,
) -> FrameSource:
    """Open the frame source a device string names, for this layout and ROI."""
    spec = parse_device(device)
    if spec.kind == "sim":
        from opu_sim.bench import OpticalBench

        return OpticalBench(profile, seed, layout, roi, cache_budget_bytes=cache_budget_bytes)
    if spec.kind == "emu":
        try:
            from .emulated import open_emulated_hardware
        except ImportError as exc:
            raise ConfigurationError(
                "the emulated hardware stack is not available in this build"
            ) from exc
        return open_emulated_hardware(spec, layout, roi, seed, profile, cache_budget_bytes)
    try:
        from firmware_iface.hardware import OPUHardware
    except ImportError as exc:
        raise ConfigurationError("the hardware driver stack is not available") from exc
    return OPUHardware.from_config(spec.name, layout, roi)


def simulator_of(source: object) -> Any | None:
    """The OpticalBench behind a frame source (itself for a bench, `.simulator` for an
    emulated stack), or None for hardware."""
    try:
        from opu_sim.bench import OpticalBench
    except ImportError:  # a hardware-only build
        return None
    if isinstance(source, OpticalBench):
        return source
    bench = getattr(source, "simulator", None)
    return bench if isinstance(bench, OpticalBench) else None


def adopt_source(
    source: object, n_in: int, n_out: int, profile: Any
) -> tuple[str, Any, DmdLayout, CameraRoi]:
    """(name, profile, layout, roi) of an open frame source an OPU of n_in inputs and n_out
    outputs will use; ConfigurationError if it is no FrameSource or its geometry does not fit.
    The profile defaults to the simulator's behind the source."""
    from .layout import check_source_geometry

    if not isinstance(source, FrameSource):
        raise ConfigurationError(
            "device must be a string ('sim', 'emu' or a hardware config) or a frame source "
            f"(with layout, roi, acquire, ...), got {type(source).__name__}"
        )
    check_source_geometry(source.layout, source.roi, n_in, n_out)
    bench = simulator_of(source)
    prof = profile if profile is not None else getattr(bench, "profile", None)
    return type(source).__name__, prof, source.layout, source.roi


def load_calibration(calibration: object) -> Any:
    """The Calibration an OPU's `calibration=` argument names: a Calibration or a record path."""
    from calibration.record import Calibration

    cal = Calibration.load(calibration) if isinstance(calibration, (str, Path)) else calibration
    if not isinstance(cal, Calibration):
        raise ConfigurationError(
            "calibration must be None, 'fresh', a Calibration or a record path, "
            f"got {type(calibration).__name__}"
        )
    return cal


@dataclass(frozen=True)
class UsedDevice:
    """The source an OPU works on: name, profile, (layout, roi), the source, and whether the
    OPU opened it (and closes it)."""

    name: str
    profile: Any
    geometry: tuple[DmdLayout, CameraRoi]
    source: FrameSource
    owned: bool


def use_device(
    device: object,
    n_in: int,
    n_out: int,
    seed: int,
    noise: bool,
    profile: Any,
    cache_budget_bytes: int,
) -> UsedDevice:
    """Open the source a device string names for n_in inputs and n_out outputs (geometry from
    layout.plan_geometry), or adopt an open frame source whose geometry fits."""
    from .layout import device_sizes, plan_geometry

    if not isinstance(device, (str, DeviceSpec)):
        name, prof, layout, roi = adopt_source(device, n_in, n_out, profile)
        return UsedDevice(name, prof, (layout, roi), device, False)  # type: ignore[arg-type]
    spec = parse_device(device)
    prof = default_profile(profile, spec, noise)
    layout, roi = plan_geometry(n_in, n_out, *device_sizes(prof))
    source = open_source(spec, layout, roi, seed, prof, cache_budget_bytes)
    return UsedDevice(spec.text, prof, (layout, roi), source, True)
