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
so an emulated device always quantises (the bench renders with the camera model's ADC rule
even for a noise-free profile).

The host side (an OPUHardware opened on a rig's transports) is composed in `opu.emulated`:
opu_sim never imports a driver.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from firmware_iface.dlpc900.commands import DisplayMode
from firmware_iface.errors import ConfigurationError
from firmware_iface.frames import check_wait_s
from firmware_iface.geometry import CameraRoi, DmdLayout

from ..bench import OpticalBench
from ..profile import DeviceProfile
from .camera import CameraEmulator
from .dlpc900 import DLPC900Emulator
from .dlpc900_video import EmulatedVideoLink, plane_fractions
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
    transmission-matrix memory; name: the fpgaemu:// name (default: unique); realtime: the
    board's clock follows the host's (FPGAEmulator realtime mode: for a real window feeding
    the video input, `attach_video_input`).
    Attributes: dmd, fpga, camera (emulators; set their `.faults`), video (the DMD's video
    input, EmulatedVideoLink; its `.faults` too), bench (full-sensor ROI),
    stats (RigStats).
    """

    def __init__(
        self,
        profile: DeviceProfile,
        seed: int,
        layout: DmdLayout,
        cache_budget_bytes: int = 512 << 20,
        name: str | None = None,
        realtime: bool = False,
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
        # a camera sends integers: the emulated sensor always quantises, with the camera
        # model's one ADC rule (round half up, clip to 0..max_dn), even for a noise-free profile
        sensor = profile if profile.noise.quantization else replace(
            profile, noise=replace(profile.noise, quantization=True)
        )
        self.bench = OpticalBench(sensor, seed, layout, full, cache_budget_bytes)
        self.dmd = DLPC900Emulator(width=profile.dmd.width, height=profile.dmd.height)
        self.video = EmulatedVideoLink(
            profile.dmd.width, profile.dmd.height, clock_us=lambda: self.fpga.now_us,
            advance_us=lambda dt: self.fpga.advance_clock_us(dt),
            vsync_period_us=lambda: 24 * self.fpga.timing.frame_period_us,
        )
        self.dmd.attach_video(self.video)
        self.camera = CameraEmulator(
            cam.sensor_width,
            cam.sensor_height,
            cam.bit_depth,
            _camera_serial(profile, seed),
            exposure_range_us=(cam.min_exposure_us, cam.max_exposure_us),
        )
        self.fpga = FPGAEmulator(on_run=self._on_run, on_run_end=self._on_run_end,
                                 realtime=realtime)
        self.fpga.vsync_input = self._vsync_frames  # the board's VSYNC input: the video link
        self.name = name or f"rig-{uuid.uuid4().hex[:12]}"
        self.url = f"fpgaemu://{self.name}"
        self.stats = RigStats()
        self._roi: CameraRoi | None = None
        self._amp_version = -1
        self._amplitudes: dict[int, np.ndarray] = {}
        self._video_run: RunRequest | None = None  # a video-pattern run not yet rendered

    def attach_video_input(self, video_input: object) -> None:
        """Feed the DMD's video input from another source than the emulated link (a
        ScreenVideoInput reading a real window's X server; the rig needs realtime=True)."""
        self.video = video_input
        self.dmd.attach_video(video_input)

    def close(self) -> None:
        """Release the bench's caches (hardware on the rig closes separately)."""
        self.bench.close()

    def wait_s(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass on the rig's clock (the FPGA board's)."""
        seconds = check_wait_s(seconds)
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
            a = self.layout.sample_bitplane(
                self.dmd.images[entry.image_index], entry.bit_position
            )
            self._amplitudes[lut_index] = a
        return a

    def _video_patterns(self, req: RunRequest) -> np.ndarray:
        """Video-pattern mode, at the run's end: the link latches the frames the host flipped
        on the run's VSYNC grid; each camera pulse sees bit plane k of the frame shown at its
        VSYNC interval (the LUT's k-th bit position), sampled into element amplitudes once per
        distinct frame."""
        run = self.video.finish_run(req.start_time_us, req.n_frames, req.frame_period_us)
        cam_t = req.camera_trigger_times_us
        out = np.zeros((cam_t.size, self.layout.n_elements), dtype=np.float32)
        lut = self.dmd.lut if self.dmd.running and not self.dmd.paused else None
        if not lut:
            return out  # sequencer stopped: mirrors OFF
        rel = cam_t - req.start_time_us
        v = rel // run.vsync_period_us
        k = (rel % run.vsync_period_us) // req.frame_period_us
        bits = [e.bit_position for e in lut]
        sampled: dict[int, np.ndarray] = {}
        for j in range(cam_t.size):
            if not 0 <= v[j] < len(run.shown) or k[j] >= len(lut) or run.shown[v[j]] is None:
                continue
            frame = run.shown[v[j]]
            amp = sampled.get(id(frame))
            if amp is None:
                amp = sampled[id(frame)] = plane_fractions(frame, bits, self.layout)
            out[j] = amp[k[j]]
        return out

    def _vsync_frames(self, req: RunRequest) -> list[int]:
        """Frames of the run at which the board's VSYNC input counted an edge (video-pattern
        runs only; nothing is wired in pattern-on-the-fly mode)."""
        if self.dmd.display_mode != DisplayMode.VIDEO_PATTERN:
            return []
        return [i for i in self.video.counted_vsync_frames if i < req.n_frames]

    def _shown_patterns(self, req: RunRequest) -> np.ndarray:
        """Element amplitudes (n_camera_pulses, n_elements) on the DMD at each camera pulse
        (pattern-on-the-fly mode)."""
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
        """FPGA RUN callback: render and deliver one camera frame per camera pulse (a
        video-pattern run at its end: the host presents its frames while it runs)."""
        if self.dmd.display_mode == DisplayMode.VIDEO_PATTERN:
            self.video.start_run(req.start_time_us, req.n_frames, req.frame_period_us)
            self._video_run = req
            return
        self._render(req, self._shown_patterns)

    def _on_run_end(self, summary: object) -> None:
        """FPGA run-end callback: render a pending video-pattern run (its frames reach the
        camera before the host can read the run's end)."""
        req, self._video_run = self._video_run, None
        if req is not None:
            self._render(req, self._video_patterns)

    def _render(self, req: RunRequest, sample: Callable[[RunRequest], np.ndarray]) -> None:
        """Render and deliver one camera frame per camera pulse of a run (sample: the element
        amplitudes shown at each camera pulse)."""
        self.stats.runs += 1
        t0 = time.perf_counter()
        amplitudes = sample(req)
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
            frames = batch.frames.reshape(m, roi.height, roi.width)
            self.stats.frames += m
        t2 = time.perf_counter()
        self.stats.seconds["physics"] += t2 - t1
        cam.deliver(frames, stamps)
        self.stats.seconds["camera_deliver"] += time.perf_counter() - t2
