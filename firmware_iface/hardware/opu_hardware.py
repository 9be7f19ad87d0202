"""OPUHardware: the DLPC900 DMD controller, the FPGA timing board and the camera composed into
the level-0 FrameSource (firmware_iface.frames).

One `acquire(patterns, exposure_us)`:
1. checks the input (pattern shape and binary values, exposure within what all three devices
   allow) before anything is sent (InputError);
2. splits the patterns into chunks of at most the DMD's LUT capacity (400);
3. runs each chunk (chunks.ChunkRunner: upload, trigger, read, integrity checks, re-acquire
   at most `max_reacquire` times, counted in FrameBatch.reacquired, then FrameIntegrityError);
   on the video-pattern path (video_path.run_video_chunk) chunks of 16 RGB888 frames are
   presented on the controller's video input and attributed frame by frame.
   A frame is never attributed to a pattern unless every check of its run passed.
4. Any device error (after the drivers' own retries) stops every reachable device (FPGA idle,
   DMD sequencer stopped, camera not acquiring) and is re-raised; after a disconnect the
   object is `lost` and refuses further work (DeviceDisconnectedError): close() it and open a
   new one.

Between calls the FPGA is idle, the DMD stopped and the camera acquiring in trigger mode (no
triggers arrive, so it takes no frames).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..camera.driver import Camera
from ..camera.pixel_formats import output_dtype
from ..dlpc900.commands import MAX_LUT_ENTRIES
from ..dlpc900.driver import DLPC900
from ..dlpc900.timing import PathTiming, UsbLink
from ..dlpc900.window import VideoWindow
from ..driver_base import DeviceDriver
from ..errors import (
    ConcurrencyError,
    ConfigurationError,
    DeviceDisconnectedError,
    DeviceError,
    InputError,
)
from ..fpga.driver import FPGATimingBoard
from ..fpga.timing import Timing
from ..frames import (
    AcquisitionInfo,
    FrameBatch,
    check_exposure_us,
    check_pattern_batch,
    check_wait_s,
)
from ..geometry import CameraRoi, DmdLayout
from .chunks import ChunkResult, ChunkRunner
from .config import HardwareConfig
from .opening import Devices, open_devices
from .stats import HardwareStats
from .timing import FrameTiming, camera_exposure_range_us, exposure_limits_us, plan_timing
from .video_path import (
    CHUNK_PATTERNS,
    measure_latency,
    pattern_period_us,
    run_video_chunk,
    video_timing,
)
from .window_output import WindowVideoOutput


class OPUHardware(DeviceDriver):
    """The hardware OPU as a FrameSource (see the module docstring for the acquisition policy).

    layout: where the input elements sit on the DMD. roi: the camera ROI, fixed for the session
    (set_output_pixels crops on the host). config: USB ids, serial URL, timing and recovery
    settings (HardwareConfig; default: the documented defaults). dmd_backend / camera_backend:
    pyusb backend objects (None: the system's libusb; an emulator's backend in HIL tests).
    sleep: how wait_s lets time pass, called with seconds (default time.sleep; an emulated rig
    passes its simulated clock). video_output: the DLPC900's video input for the video-pattern
    path: a VideoWindow on the controller's display (wrapped in a WindowVideoOutput that times
    its flips on the FPGA's clock), a WindowVideoOutput, or an object with the video output
    protocol of video_path.py (the emulated rig's link); None: on-the-fly upload only.

    Opening finds the three devices (DeviceNotFoundError if one is missing), stops them, puts
    the DMD in pattern-on-the-fly mode and sets the camera's pixel format, ROI and trigger
    input. If any step fails, the devices already opened are released. Lifecycle (`state`,
    `closed`, `lost`, `lost_error`) and the one-thread guard come from DeviceDriver.
    """

    device_name = "OPU hardware"
    reopen_hint = "open a new OPUHardware"

    def __init__(
        self,
        layout: DmdLayout,
        roi: CameraRoi,
        config: HardwareConfig | None = None,
        *,
        dmd_backend: object | None = None,
        camera_backend: object | None = None,
        sleep: Callable[[float], None] | None = None,
        video_output: object | None = None,
    ) -> None:
        if not isinstance(layout, DmdLayout):
            raise ConfigurationError(f"layout must be a DmdLayout, got {type(layout).__name__}")
        if not isinstance(roi, CameraRoi):
            raise ConfigurationError(f"roi must be a CameraRoi, got {type(roi).__name__}")
        if config is not None and not isinstance(config, HardwareConfig):
            raise ConfigurationError(
                f"config must be a HardwareConfig, got {type(config).__name__}; use "
                "OPUHardware.from_config for a file"
            )
        super().__init__()
        self.layout = layout
        self.roi = roi
        self.config = config if config is not None else HardwareConfig()
        self.stats = HardwareStats()
        self._sleep = sleep if sleep is not None else time.sleep
        self._camera_running = False
        self._board_timing: Timing | None = None  # what the FPGA was last set to
        self._camera_exposure: float | None = None
        self._pixel_ids = roi.pixel_ids()
        self._columns: np.ndarray | None = None
        self._devices = Devices()
        if isinstance(video_output, VideoWindow):
            video_output = WindowVideoOutput(video_output)  # flips timed on the board clock
        self.pattern_path = self._choose_path(video_output)
        self._video = video_output if self.pattern_path == "video" else None
        self._dmd_mode: str | None = "usb"
        try:
            open_devices(self.config, layout, roi, dmd_backend, camera_backend, self._devices)
            self._camera_range_us = camera_exposure_range_us(
                self._devices.camera, self.config.camera
            )
            if self._video is not None:
                attach = getattr(self._video, "attach_board", None)
                if attach is not None:  # a bench window: time its flips on the board clock
                    fpga = self._devices.fpga
                    attach(lambda: fpga.status().device_time_us)
                self._video.open()  # the controller needs a locked source before mode 2
                self._set_dmd_mode("video")
        except BaseException:
            self.close()
            raise
        d = self._devices
        self._runner = ChunkRunner(d.dmd, d.fpga, d.camera, layout, self.config.acquisition,
                                   self.stats)

    @classmethod
    def from_config(
        cls,
        config: HardwareConfig | dict | str | Path,
        layout: DmdLayout,
        roi: CameraRoi,
        *,
        dmd_backend: object | None = None,
        camera_backend: object | None = None,
        sleep: Callable[[float], None] | None = None,
        video_output: object | None = None,
    ) -> OPUHardware:
        """Open the OPU a config describes: a HardwareConfig, its plain-data form, or
        'hw:<path>' / a path to a .json or .toml file (format: docs/hardware.md)."""
        if isinstance(config, HardwareConfig):
            cfg = config
        elif isinstance(config, dict):
            cfg = HardwareConfig.from_dict(config)
        elif isinstance(config, (str, Path)):
            cfg = HardwareConfig.load(config)
        else:
            raise ConfigurationError(
                f"hardware config must be a path, 'hw:<path>', a dict or a HardwareConfig, got "
                f"{type(config).__name__}"
            )
        return cls(
            layout, roi, cfg, dmd_backend=dmd_backend, camera_backend=camera_backend, sleep=sleep,
            video_output=video_output,
        )

    # ---- the drivers ----------------------------------------------------------------------
    @property
    def dmd(self) -> DLPC900 | None:
        """The DLPC900 driver (None once closed)."""
        return self._devices.dmd

    @property
    def fpga(self) -> FPGATimingBoard | None:
        """The FPGA timing-board driver (None once closed)."""
        return self._devices.fpga

    @property
    def camera(self) -> Camera | None:
        """The camera driver (None once closed)."""
        return self._devices.camera

    def _driver(self, name: str) -> DLPC900 | FPGATimingBoard | Camera:
        dev = getattr(self._devices, name)
        if dev is None:
            raise DeviceDisconnectedError(f"the {name} is not open; open a new OPUHardware")
        return dev

    # ---- FrameSource properties -----------------------------------------------------------
    @property
    def max_dn(self) -> float:
        """Largest count the camera reports (2**bit_depth - 1), DN."""
        return float((1 << self._driver("camera").bit_depth) - 1)

    @property
    def frame_period_us(self) -> float:
        """Frame period at exposures up to it, microseconds (longer exposures stretch it on
        the usb path; the video path's period is one pattern: 1e6 / (24 x refresh))."""
        return float(self._plan(self.exposure_range_us[0]).frame_period_us)

    @property
    def timing_model(self) -> PathTiming:
        """The time model of this OPU's pattern path: frame_period_us and call_s(n_frames)."""
        if self.pattern_path == "video":
            return PathTiming.video(self.config.dmd.video_refresh_hz)
        return PathTiming.usb(self.frame_period_us, UsbLink(self.config.dmd.usb_reports_per_s))

    def path_for(self, exposure_us: float) -> str:
        """The pattern path a call at exposure_us takes: video when this OPU has a video
        output and the exposure fits one video pattern ("auto" and "video"; "video" refuses
        longer exposures), else usb (on-the-fly upload, frames stretch to any exposure)."""
        if self._video is None:
            return "usb"
        t = self.config.timing
        fits = math.ceil(exposure_us) + t.camera_delay_us <= pattern_period_us(
            self.config.dmd.video_refresh_hz)
        if fits or self.config.dmd.pattern_path == "video":
            return "video"
        return "usb"

    def _choose_path(self, video_output: object | None) -> str:
        path = self.config.dmd.pattern_path
        if path == "auto":
            return "video" if video_output is not None else "usb"
        if path == "video" and video_output is None:
            raise ConfigurationError(
                "dmd.pattern_path = 'video' needs a video output with VSYNC and trigger counts "
                "(video_output=; the emulated rig provides one). On a bench, present frames "
                "with firmware_iface.dlpc900.window.VideoWindow; or use pattern_path = 'usb'"
            )
        return path

    def _set_dmd_mode(self, path: str) -> None:
        """Put the controller in the display mode of a path (video: ~300 ms, DLPU018 2.4.1)."""
        dmd = self._driver("dmd")
        if path == "video":
            dmd.set_video_pattern_mode(pattern_period_us(self.config.dmd.video_refresh_hz),
                                       sleep=self._sleep)
        else:
            dmd.set_pattern_on_the_fly_mode()
        self._dmd_mode = path

    @property
    def exposure_range_us(self) -> tuple[float, float]:
        """(shortest, longest) exposure, microseconds: the camera's ExposureTime range (as
        the camera reports it, narrowed by the config's camera limits) within the FPGA's and
        the DMD's limits (shorter than the DMD's 105 us pattern minimum is allowed: the
        pattern then stays up longer than the exposure)."""
        t = self.config.timing
        return exposure_limits_us(*self._camera_range_us, t.dmd_delay_us, t.camera_delay_us)

    @property
    def device_id(self) -> str:
        """'camera:<camera serial>+dlpc900:<firmware version>'."""
        return f"camera:{self._driver('camera').serial_number}+dlpc900:{self._devices.firmware}"

    @property
    def pixel_ids(self) -> np.ndarray:
        """Global sensor ids of the returned frame columns."""
        return self._pixel_ids

    def timing_for(self, exposure_us: float) -> FrameTiming:
        """The frame timing an acquisition at exposure_us uses (checked like acquire)."""
        lo, hi = self.exposure_range_us
        cam_lo, cam_hi = self._camera_range_us
        e = check_exposure_us(
            exposure_us,
            lo,
            hi,
            f"the camera's ([{cam_lo:g}, {cam_hi:g}] us), the FPGA's and the DMD's common",
        )
        return self._plan(e)

    def _plan(self, exposure_us: float) -> FrameTiming:
        t = self.config.timing
        if self.path_for(exposure_us) == "video":
            return video_timing(exposure_us, self.config.dmd.video_refresh_hz, t.dmd_delay_us,
                                t.camera_delay_us)
        return plan_timing(exposure_us, t.frame_period_us, t.dmd_delay_us, t.camera_delay_us)

    # ---- FrameSource methods --------------------------------------------------------------
    def set_output_pixels(self, pixel_ids: np.ndarray | None) -> None:
        """Return only these global sensor ids (all inside the ROI); None: the whole ROI.
        The camera keeps reading the configured ROI; the host crops."""
        if pixel_ids is None:
            self._pixel_ids, self._columns = self.roi.pixel_ids(), None
            return
        self._columns = self.roi.columns(pixel_ids)
        self._pixel_ids = np.asarray(pixel_ids, dtype=np.int64)

    def wait_s(self, seconds: float) -> None:
        """Let `seconds` pass (real sleep on hardware; the rig's clock when emulated)."""
        self._sleep(check_wait_s(seconds))

    def acquire(self, patterns: np.ndarray, exposure_us: float) -> FrameBatch:
        """Show each row of `patterns` ((B, n_elements) of {0, 1}) for one frame exposed
        exposure_us microseconds; returns one camera frame per pattern, in order (uint16 DN,
        uint8 for an 8-bit camera), output pixels only.

        Raises InputError (before anything is sent) for bad input, FrameIntegrityError when a
        chunk cannot be acquired with certain attribution, DeviceError subclasses when a device
        fails (devices left stopped)."""
        with self._exclusive():
            p = self._check_patterns(patterns)
            timing = self.timing_for(exposure_us)
            t_start = time.perf_counter()
            busy = dict(self.stats.seconds)
            try:
                chunks = self._run_chunks(p, timing)
            except BaseException as e:
                self._fail(e)
                raise
            finally:
                spent = sum(self.stats.seconds[k] - busy.get(k, 0.0) for k in busy)
                self.stats.seconds["host_other"] += time.perf_counter() - t_start - spent
            self.stats.frames += p.shape[0]
            return self._batch(chunks, timing)

    def measure_video_latency(self, exposure_us: float, max_latency: int = 3) -> int:
        """Bench check: VSYNC edges between a frame becoming current on the video output and
        its bit planes on the DMD (set dmd.video_latency_vsyncs to it; docs/dlpc900.md, "Bench
        checks"). Needs the video path at exposure_us; devices left stopped on failure."""
        with self._exclusive():
            if self.path_for(exposure_us) != "video":
                raise ConfigurationError(
                    "the latency check needs the video path: a video output and an exposure "
                    "that fits one video pattern")
            timing = self.timing_for(exposure_us)
            try:
                if self._dmd_mode != "video":
                    self._set_dmd_mode("video")
                self._prepare(timing)
                return measure_latency(self._runner, self._video, timing, max_latency)
            except BaseException as e:
                self._fail(e)
                raise

    # ---- acquisition internals ------------------------------------------------------------
    def _check_patterns(self, patterns: np.ndarray) -> np.ndarray:
        p = check_pattern_batch(patterns, self.layout.n_elements)
        if p.dtype == np.bool_:
            return p
        if not np.isin(p, (0, 1)).all():
            raise InputError(
                "the DMD shows binary patterns: every value must be 0 or 1 (mirror fractions, "
                "NaN or other values cannot be displayed)"
            )
        return p != 0

    def _run_chunks(self, p: np.ndarray, timing: FrameTiming) -> list[ChunkResult]:
        path = self.path_for(timing.exposure_us)
        if self._dmd_mode != path:
            with self.stats.timed("dmd_upload"):
                self._set_dmd_mode(path)
        self._prepare(timing)
        if path == "video":  # the DMD keeps showing video frames between calls
            return [
                run_video_chunk(self._runner, p[s : s + CHUNK_PATTERNS], timing, self._video,
                                self.config.dmd.video_latency_vsyncs)
                for s in range(0, p.shape[0], CHUNK_PATTERNS)
            ]
        chunks = [
            self._runner.run(p[s : s + MAX_LUT_ENTRIES], timing)
            for s in range(0, p.shape[0], MAX_LUT_ENTRIES)
        ]
        with self.stats.timed("dmd_upload"):
            self._driver("dmd").stop()
        return chunks

    def _batch(self, chunks: list[ChunkResult], timing: FrameTiming) -> FrameBatch:
        """The FrameBatch of verified chunks, cropped to the output pixels."""
        cols = self._columns
        flat = [c.readout.frames.reshape(c.readout.frames.shape[0], -1) for c in chunks]
        frames = np.concatenate([f if cols is None else f[:, cols] for f in flat])
        frames = frames.astype(output_dtype(self._driver("camera").pixel_format), copy=False)
        return FrameBatch(
            frames=frames,
            frame_ids=np.concatenate([c.readout.frame_ids for c in chunks]).astype(np.int64),
            timestamps_us=np.concatenate([c.readout.timestamps_us for c in chunks]).astype(
                np.float64
            ),
            exposure_us=timing.exposure_us,
            pixel_ids=self._pixel_ids,
            saturated=(frames >= self.max_dn).sum(axis=1).astype(np.int64),
            reacquired=sum(c.reacquired for c in chunks),
            info=AcquisitionInfo(
                run_ids=tuple(c.run_id for c in chunks),
                frame_period_us=timing.frame_period_us,
                dmd_exposure_us=timing.dmd_exposure_us,
                problems=tuple(p for c in chunks for p in c.problems),
                pattern_path=self.path_for(timing.exposure_us),
            ),
        )

    def _prepare(self, timing: FrameTiming) -> None:
        """Camera exposure, FPGA timing (only when changed) and camera acquisition."""
        cam = self._driver("camera")
        with self.stats.timed("camera_read"):
            if self._camera_exposure != timing.exposure_us:
                cam["ExposureTime"] = timing.exposure_us
                self._camera_exposure = timing.exposure_us
        with self.stats.timed("fpga_run"):
            if self._board_timing != timing.board:
                self._driver("fpga").set_timing(timing.board)
                self._board_timing = timing.board
        with self.stats.timed("camera_read"):
            if not self._camera_running:
                cam.start()
                self._camera_running = True
                self._runner.next_id = 0

    def _fail(self, error: BaseException) -> None:
        """After a failed acquisition: stop every reachable device, forget cached settings;
        a disconnect makes this OPU lost."""
        self._board_timing = None
        self._camera_exposure = None
        self._dmd_mode = None  # the DMD is stopped below: the next call sets its mode again
        if isinstance(error, DeviceDisconnectedError):
            self._mark_lost(error)
        for stop in (self._stop_fpga, self._stop_dmd, self._stop_camera):
            try:
                stop()
            except (DeviceError, ConcurrencyError):
                pass  # already failing: the original error is what the caller needs

    def _stop_fpga(self) -> None:
        if self.fpga is not None:
            self.fpga.stop()

    def _stop_dmd(self) -> None:
        if self.dmd is not None:
            self.dmd.stop()

    def _stop_camera(self) -> None:
        if self.camera is not None and self._camera_running:
            self._camera_running = False
            self.camera.stop()

    def _do_close(self) -> None:
        """Close every driver (each stops its device if it still answers) and the video
        output this OPU opened."""
        self._camera_running = False
        if getattr(self, "_video", None) is not None:
            self._video.close()
        self._devices.close()

    def __repr__(self) -> str:
        return f"OPUHardware({self.config.source!r}, {self.state.value})"
