"""The emulated bench: the DLPC900, FPGA and camera emulators wired to the OpticalBench physics
on one simulated clock (the FPGA board's), so the unchanged host drivers (OPUHardware) run a
whole OPU without optics.

When the FPGA accepts a RUN it calls the rig with every trigger time of the run. For each
camera pulse the rig takes the LUT pattern the DMD shows at that time (the DMD emulator is
triggered once per DMD pulse), samples it into element amplitudes with the layout (cached per
LUT entry until the DMD's content changes), renders all frames of the run in one OpticalBench
call (bench clock at the run's first camera pulse; exposure and ROI from the camera emulator's
registers) and delivers them to the camera emulator with the FPGA's camera trigger times as
timestamps. Every emulator's fault settings apply on the way. The camera delivers integer DN,
so an emulated device always quantises (float frames of a noise-free profile are rounded and
clipped to the ADC range).

`open_emulated_hardware(...)` (used by `opu.sources.open_source` for device 'emu') builds a rig
and returns (OPUHardware, OpticalBench); `rig_of(hardware)` finds the rig behind it (for fault
injection in tests).
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np

from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.geometry import CameraRoi, DmdLayout

from ..bench import OpticalBench
from ..profile import DeviceProfile
from .camera import CameraBackend, CameraEmulator
from .dlpc900 import DLPC900Backend, DLPC900Emulator
from .fpga import FPGAEmulator, RunRequest, register_emulator, unregister_emulator

_RIGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class RigStats:
    """What the rig did: runs and frames rendered, camera pulses that fell outside the DMD's
    display window of their pattern, and wall-clock seconds per phase (dmd_sample: decoding
    LUT patterns into element amplitudes; physics: OpticalBench rendering; camera_deliver:
    stream blocks incl. pixel packing)."""

    runs: int = 0
    frames: int = 0
    timing_violations: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: {"dmd_sample": 0.0, "physics": 0.0, "camera_deliver": 0.0}
    )


def _camera_serial(profile: DeviceProfile, seed: int) -> str:
    """A serial number that identifies the emulated device (profile and medium seed)."""
    text = f"EMU-{profile.fingerprint[:10]}-s{seed}"
    if len(text) <= 32:
        return text
    return "EMU-" + hashlib.sha256(f"{profile.fingerprint}:{seed}".encode()).hexdigest()[:16]


class EmulatedRig:
    """Three device emulators and the physics behind them, on the FPGA emulator's clock.

    profile: the simulated device; seed: medium seed; layout: element placement on the DMD (the
    rig samples mirrors back into elements with it); cache_budget_bytes: the bench's
    transmission-matrix memory; name: the fpgaemu:// name (default: unique).
    Attributes: dmd, fpga, camera (emulators; set their `.faults`), bench (full-sensor ROI),
    stats (RigStats).
    """

    def __init__(
        self,
        profile: DeviceProfile,
        seed: int,
        layout: DmdLayout,
        cache_budget_bytes: int = 512 << 20,
        name: str | None = None,
    ) -> None:
        if not isinstance(profile, DeviceProfile):
            raise ConfigurationError(
                f"profile must be an opu_sim DeviceProfile, got {type(profile).__name__}"
            )
        cam = profile.camera
        full = CameraRoi(0, 0, cam.sensor_width, cam.sensor_height, cam.sensor_width,
                         cam.sensor_height)
        self.profile = profile
        self.layout = layout
        self.bench = OpticalBench(profile, seed, layout, full, cache_budget_bytes)
        self.dmd = DLPC900Emulator(width=profile.dmd.width, height=profile.dmd.height)
        self.camera = CameraEmulator(
            cam.sensor_width, cam.sensor_height, cam.bit_depth, _camera_serial(profile, seed)
        )
        self.fpga = FPGAEmulator(on_run=self._on_run)
        self.name = name or f"rig-{uuid.uuid4().hex[:12]}"
        self.url = f"fpgaemu://{self.name}"
        self.stats = RigStats()
        self._roi: CameraRoi | None = None
        self._amp_version = -1
        self._amplitudes: dict[int, np.ndarray] = {}

    # ---- host side ----------------------------------------------------------------------
    def hardware_config(self) -> Any:
        """The HardwareConfig of this rig: the emulators' USB ids, its fpgaemu:// URL, the
        profile's frame period and camera exposure range, a short readout wait."""
        from firmware_iface.hardware import HardwareConfig
        from firmware_iface.hardware.config import (
            AcquisitionConfig,
            CameraConfig,
            FpgaConfig,
            TimingConfig,
        )

        cam = self.profile.camera
        return HardwareConfig(
            fpga=FpgaConfig(url=self.url),
            camera=CameraConfig(
                usb_vendor_id=self.camera.vendor_id,
                usb_product_id=self.camera.product_id,
                min_exposure_us=cam.min_exposure_us,
                max_exposure_us=cam.max_exposure_us,
            ),
            timing=TimingConfig(frame_period_us=self.profile.frame_period_us),
            acquisition=AcquisitionConfig(readout_timeout_ms=100),
            source=f"emulated rig {self.name}",
        )

    def open_hardware(self, roi: CameraRoi, config: Any = None) -> Any:
        """An OPUHardware on this rig (the real driver stack through the emulators'
        transports), with wait_s on the rig's clock. The FPGA emulator is registered under
        self.url only while the hardware opens its port."""
        from firmware_iface.hardware import OPUHardware

        register_emulator(self.name, self.fpga)
        try:
            hw = OPUHardware(
                self.layout,
                roi,
                config if config is not None else self.hardware_config(),
                dmd_backend=DLPC900Backend(self.dmd),
                camera_backend=CameraBackend(self.camera),
                sleep=self.wait_s,
            )
        finally:
            # the name is only looked up when the port opens; the open link stays
            unregister_emulator(self.name)
        _RIGS[hw] = self
        return hw

    def close(self) -> None:
        """Release the bench's caches (hardware on the rig closes separately)."""
        self.bench.close()

    def wait_s(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass on the rig's clock (the FPGA board's)."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise InputError(f"wait time must be a finite number of seconds >= 0, got {seconds!r}")
        self.fpga.advance_clock_us(seconds * 1e6)

    @property
    def now_us(self) -> int:
        """The rig's clock (the FPGA board's time), microseconds."""
        return self.fpga.now_us

    # ---- device side ----------------------------------------------------------------------
    def _element_amplitudes(self, lut_index: int) -> np.ndarray:
        """Fraction of ON mirrors per element of LUT entry lut_index (cached until the DMD's
        LUT or images change)."""
        if self.dmd.content_version != self._amp_version:
            self._amplitudes.clear()
            self._amp_version = self.dmd.content_version
        a = self._amplitudes.get(lut_index)
        if a is None:
            entry = self.dmd.lut[lut_index]
            lay = self.layout
            x0, y0 = lay.origin
            a = np.empty(lay.grid_rows * lay.grid_cols, dtype=np.float32)
            _block_fractions(
                self.dmd.images[entry.image_index], np.uint32(entry.bit_position), y0, x0,
                lay.grid_rows, lay.grid_cols, lay.macro_pixel, a,
            )
            a = a[: lay.n_elements]
            self._amplitudes[lut_index] = a
        return a

    def _shown_patterns(self, req: RunRequest) -> np.ndarray:
        """Element amplitudes (n_camera_pulses, n_elements) on the DMD at each camera pulse."""
        shown = self.dmd.trigger(req.n_frames)  # LUT index each DMD pulse displayed, or -1
        cam_t = req.camera_trigger_times_us
        k = np.searchsorted(req.dmd_trigger_times_us, cam_t, side="right") - 1
        lut = np.where(k >= 0, shown[np.maximum(k, 0)], -1)
        out = np.zeros((cam_t.size, self.layout.n_elements), dtype=np.float32)
        exposure = self.camera.exposure_us
        for j, idx in enumerate(lut.tolist()):
            if idx < 0:
                continue  # nothing on the mirrors: all OFF
            shown_until = req.dmd_trigger_times_us[k[j]] + self.dmd.lut[idx].exposure_us
            if cam_t[j] + exposure > shown_until:
                self.stats.timing_violations += 1
            out[j] = self._element_amplitudes(idx)
        return out

    def _on_run(self, req: RunRequest) -> None:
        """FPGA RUN callback: render and deliver one camera frame per camera pulse."""
        self.stats.runs += 1
        t0 = time.perf_counter()
        amplitudes = self._shown_patterns(req)
        t1 = time.perf_counter()
        self.stats.seconds["dmd_sample"] += t1 - t0
        m = req.camera_trigger_times_us.size
        if m == 0:
            return
        cam = self.camera
        roi = cam.roi
        stamps = req.camera_trigger_times_us.astype(np.float64)
        if not (cam.acquiring and cam.trigger_mode == "On" and cam.connected):
            # the camera ignores these triggers (counted as missed); nothing worth rendering
            frames = np.zeros((m, roi.height, roi.width), dtype=np.uint16)
        else:
            if roi != self._roi:
                self.bench.set_output_pixels(roi.pixel_ids())
                self._roi = roi
            binary = np.isin(amplitudes, (0.0, 1.0)).all()
            patterns = amplitudes.astype(np.uint8) if binary else amplitudes
            self.bench.clock_us = float(stamps[0])
            # Work-around: OpticalBench._region_fields can leave an anchor row unset when its
            # cache overflows in the same call (reported); an empty cache is always correct.
            anchor_cache = getattr(self.bench, "_anchor_fields", None)
            if anchor_cache is not None:
                anchor_cache.clear()
            batch = self.bench.acquire(patterns, cam.exposure_us)
            frames = batch.frames
            if frames.dtype.kind == "f":  # noise-free profile: the ADC still rounds and clips
                frames = np.clip(np.rint(frames), 0, self.profile.camera.max_dn).astype(np.uint16)
            frames = frames.reshape(m, roi.height, roi.width)
            self.stats.frames += m
        t2 = time.perf_counter()
        self.stats.seconds["physics"] += t2 - t1
        cam.deliver(frames, stamps)
        self.stats.seconds["camera_deliver"] += time.perf_counter() - t2


@nb.njit(cache=True)
def _block_fractions(words, bit, y0, x0, rows, cols, mp, out):  # noqa: ANN001, ANN202
    """out[r * cols + c] = fraction of ON mirrors (bit `bit` of `words`) in macro-pixel
    (r, c) of the grid whose top-left mirror is (x0, y0); the same numbers as
    DmdLayout.sample, without decoding the whole image."""
    one = np.uint32(1)
    for r in range(rows):
        for c in range(cols):
            s = 0
            for dy in range(mp):
                row = words[y0 + r * mp + dy]
                for dx in range(mp):
                    s += (row[x0 + c * mp + dx] >> bit) & one
            out[r * cols + c] = s / (mp * mp)


def rig_of(source: Any) -> EmulatedRig:
    """The EmulatedRig behind an OPUHardware opened by open_emulated_hardware/open_hardware."""
    try:
        return _RIGS[source]
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"{type(source).__name__} is not an emulated OPUHardware (use device='emu')"
        ) from None


def open_emulated_hardware(
    device: str,
    layout: DmdLayout,
    roi: CameraRoi,
    seed: int,
    profile: DeviceProfile | None,
    cache_budget_bytes: int,
) -> tuple[Any, OpticalBench]:
    """(OPUHardware on a new EmulatedRig, the rig's OpticalBench) for device 'emu' or
    'emu:<name>' (<name>: the fpgaemu:// name to register; default unique)."""
    if device != "emu" and not device.startswith("emu:"):
        raise ConfigurationError(f"not an emulated device string: {device!r} (use 'emu')")
    name = device[4:] or None
    rig = EmulatedRig(
        profile if profile is not None else DeviceProfile.default(),
        seed,
        layout,
        cache_budget_bytes,
        name=name,
    )
    return rig.open_hardware(roi), rig.bench
