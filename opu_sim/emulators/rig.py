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

The host side (an OPUHardware opened on a rig's transports) is composed in `opu.emulated`:
opu_sim never imports a driver.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from firmware_iface.dlpc900.commands import DisplayMode
from firmware_iface.dlpc900.video import BIT_PLANE_CHANNEL
from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.geometry import CameraRoi, DmdLayout

from ..bench import OpticalBench
from ..profile import DeviceProfile
from .camera import CameraEmulator
from .dlpc900 import DLPC900Emulator
from .dlpc900_video import EmulatedVideoLink
from .fpga import FPGAEmulator, RunRequest


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
    Attributes: dmd, fpga, camera (emulators; set their `.faults`), video (the DMD's video input,
    EmulatedVideoLink; its `.faults` too), bench (full-sensor ROI), stats (RigStats).
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
        self.video = EmulatedVideoLink(profile.dmd.width, profile.dmd.height)
        self.dmd.attach_video(self.video)
        self.camera = CameraEmulator(
            cam.sensor_width, cam.sensor_height, cam.bit_depth, _camera_serial(profile, seed)
        )
        self.fpga = FPGAEmulator(on_run=self._on_run)
        self.fpga.vsync_input = self._vsync_frames  # the board's VSYNC input: the video link
        self.name = name or f"rig-{uuid.uuid4().hex[:12]}"
        self.url = f"fpgaemu://{self.name}"
        self.stats = RigStats()
        self._roi: CameraRoi | None = None
        self._amp_version = -1
        self._amplitudes: dict[int, np.ndarray] = {}

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

    def _video_patterns(self, req: RunRequest) -> np.ndarray:
        """Video-pattern mode: the link latches the host's frames on the run's VSYNC grid; each
        camera pulse sees bit plane k of the frame shown at its VSYNC interval (the LUT's k-th
        bit position), sampled into element amplitudes once per distinct frame."""
        run = self.video.play(req.start_time_us, req.n_frames, req.frame_period_us)
        cam_t = req.camera_trigger_times_us
        lay = self.layout
        out = np.zeros((cam_t.size, lay.n_elements), dtype=np.float32)
        lut = self.dmd.lut if self.dmd.running and not self.dmd.paused else None
        if not lut:
            return out  # sequencer stopped: mirrors OFF
        rel = cam_t - req.start_time_us
        v = rel // run.vsync_period_us
        k = (rel % run.vsync_period_us) // req.frame_period_us
        x0, y0 = lay.origin
        chan = np.array([BIT_PLANE_CHANNEL[e.bit_position // 8] for e in lut], np.int64)
        bit = np.array([e.bit_position % 8 for e in lut], np.int64)
        sampled: dict[int, np.ndarray] = {}
        for j in range(cam_t.size):
            if not 0 <= v[j] < len(run.shown) or k[j] >= len(lut) or run.shown[v[j]] is None:
                continue
            frame = run.shown[v[j]]
            amp = sampled.get(id(frame))
            if amp is None:
                amp = np.empty((len(lut), lay.grid_rows * lay.grid_cols), np.float32)
                _plane_fractions(frame, chan, bit, y0, x0, lay.grid_rows, lay.grid_cols,
                                 lay.macro_pixel, amp)
                sampled[id(frame)] = amp
            out[j] = amp[k[j], : lay.n_elements]
        return out

    def _vsync_frames(self, req: RunRequest) -> list[int]:
        """Frames of the run at which the board's VSYNC input counted an edge (video-pattern
        runs only; nothing is wired in pattern-on-the-fly mode)."""
        if self.dmd.display_mode != DisplayMode.VIDEO_PATTERN:
            return []
        return [i for i in self.video.counted_vsync_frames if i < req.n_frames]

    def _shown_patterns(self, req: RunRequest) -> np.ndarray:
        """Element amplitudes (n_camera_pulses, n_elements) on the DMD at each camera pulse."""
        if self.dmd.display_mode == DisplayMode.VIDEO_PATTERN:
            return self._video_patterns(req)
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


@nb.njit(cache=True)
def _plane_fractions(frame, chan, bit, y0, x0, rows, cols, mp, out):  # noqa: ANN001, ANN202
    """out[p, r * cols + c] = fraction of ON mirrors of bit plane p (bit bit[p] of channel
    chan[p] of the RGB888 frame) in macro-pixel (r, c) of the grid at (x0, y0)."""
    n = chan.size
    counts = np.zeros(n, np.int64)
    for r in range(rows):
        for c in range(cols):
            counts[:] = 0
            for dy in range(mp):
                row = frame[y0 + r * mp + dy]
                for dx in range(mp):
                    px = row[x0 + c * mp + dx]
                    for p in range(n):
                        counts[p] += (px[chan[p]] >> bit[p]) & 1
            for p in range(n):
                out[p, r * cols + c] = counts[p] / (mp * mp)
