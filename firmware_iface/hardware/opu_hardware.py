"""OPUHardware: the DLPC900 DMD controller, the FPGA timing board and the camera composed into
the level-0 FrameSource (firmware_iface.frames).

One `acquire(patterns, exposure_us)`:
1. checks the input (pattern shape and binary values, exposure within what all three devices
   allow) before anything is sent (InputError);
2. splits the patterns into chunks of at most the DMD's LUT capacity (400);
3. per chunk: ERLE-encodes the patterns (fast element path) and uploads them as an externally
   triggered, non-repeating pattern-on-the-fly sequence; starts the DMD sequencer; arms the
   FPGA and runs N frames; reads N camera frames; checks integrity (integrity.py): the FPGA's
   trigger count, flags and times, the camera's frame statuses, contiguous ids, its frame
   counter against the FPGA's camera pulses, and each frame's timestamp against its trigger
   time. A failed check rewinds the DMD, resynchronises the camera stream past every frame it
   has produced, and runs the chunk again (at most `max_reacquire` times, counted in
   FrameBatch.reacquired), then raises FrameIntegrityError. A frame is never attributed to a
   pattern unless every check of its run passed.
4. Any device error (after the drivers' own retries) stops every reachable device (FPGA idle,
   DMD sequencer stopped, camera not acquiring) and is re-raised; after a disconnect the
   object refuses further work (DeviceDisconnectedError): close() it and open a new one.

Between calls the FPGA is idle, the DMD stopped and the camera acquiring in trigger mode (no
triggers arrive, so it takes no frames).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..camera.driver import Camera, CameraStreamTimeout, FrameReadout
from ..camera.pixel_formats import SIGNIFICANT_BITS, pixel_format
from ..dlpc900.commands import MAX_LUT_ENTRIES
from ..dlpc900.driver import DLPC900
from ..dlpc900.images import prepare_upload_elements
from ..dlpc900.timing import PathTiming
from ..dlpc900.transport import HidTransport
from ..errors import (
    ConcurrencyError,
    ConfigurationError,
    DeviceDisconnectedError,
    DeviceError,
    FrameIntegrityError,
    InputError,
)
from ..fpga.driver import FPGATimingBoard
from ..fpga.errors import FPGARunAbortedError
from ..frames import FrameBatch, check_pattern_batch
from ..geometry import CameraRoi, DmdLayout
from .config import HardwareConfig
from .integrity import Problem, check_frames, check_run, nominal_camera_times_us
from .stats import HardwareStats
from .timing import FrameTiming, exposure_limits_us, plan_timing
from .video_path import CHUNK_PATTERNS, acquire_video_chunk, pattern_period_us, video_timing

_DEFAULT_FORMATS = {8: "Mono8", 10: "Mono10p", 12: "Mono12p"}


class OPUHardware:
    """The hardware OPU as a FrameSource (see the module docstring for the acquisition policy).

    layout: where the input elements sit on the DMD. roi: the camera ROI, fixed for the session
    (set_output_pixels crops on the host). config: USB ids, serial URL, timing and recovery
    settings (HardwareConfig; default: the documented defaults). dmd_backend / camera_backend:
    pyusb backend objects (None: the system's libusb; an emulator's backend in HIL tests).
    sleep: how wait_s lets time pass, called with seconds (default time.sleep; an emulated rig
    passes its simulated clock).

    Opening finds the three devices (DeviceNotFoundError if one is missing), stops them, puts
    the DMD in pattern-on-the-fly mode and sets the camera's pixel format, ROI and trigger
    input. If any step fails, the devices already opened are released.
    """

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
        self.layout = layout
        self.roi = roi
        self.config = config if config is not None else HardwareConfig()
        self.stats = HardwareStats()
        self._sleep = sleep if sleep is not None else time.sleep
        self._lock = threading.Lock()
        self._closed = False
        self._lost: str | None = None
        self._camera_running = False
        self._next_id = 0
        self._fpga_settings: tuple[int, int, int, int] | None = None
        self._camera_exposure: float | None = None
        self._pixel_ids = roi.pixel_ids()
        self._columns: np.ndarray | None = None
        self.dmd: DLPC900 | None = None
        self.fpga: FPGATimingBoard | None = None
        self.camera: Camera | None = None
        self.pattern_path = self._choose_path(video_output)
        self._video = video_output if self.pattern_path == "video" else None
        try:
            self._open(dmd_backend, camera_backend)
        except BaseException:
            self._release()
            raise

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
            layout, roi, cfg, dmd_backend=dmd_backend, camera_backend=camera_backend, sleep=sleep
        )

    # ---- opening --------------------------------------------------------------------------
    def _open(self, dmd_backend: object | None, camera_backend: object | None) -> None:
        c = self.config
        transport = HidTransport(
            dmd_backend, c.dmd.timeout_ms, c.dmd.usb_vendor_id, c.dmd.usb_product_id
        )
        self.dmd = DLPC900(
            retries=c.dmd.retries, upload_retries=c.dmd.upload_retries, transport=transport
        )
        if (self.layout.dmd_width, self.layout.dmd_height) != (self.dmd.width, self.dmd.height):
            raise ConfigurationError(
                f"the layout is for a {self.layout.dmd_width}x{self.layout.dmd_height} DMD, the "
                f"DLPC900 drives {self.dmd.width}x{self.dmd.height}"
            )
        self._firmware = str(self.dmd.firmware_version())
        self._dmd_mode = "usb"
        if self._video is not None:
            self._video.open()  # the controller needs a locked source before mode 2
            self._set_dmd_mode("video")
        else:
            self.dmd.set_pattern_on_the_fly_mode()
        self.fpga = FPGATimingBoard(c.fpga.url, c.fpga.timeout_s, c.fpga.retries, c.fpga.baudrate)
        cam = Camera(
            camera_backend,
            c.camera.usb_vendor_id,
            c.camera.usb_product_id,
            c.camera.timeout_ms,
            c.camera.retries,
        )
        self.camera = cam
        if (self.roi.sensor_width, self.roi.sensor_height) != (cam.sensor_width, cam.sensor_height):
            raise ConfigurationError(
                f"the ROI is for a {self.roi.sensor_width}x{self.roi.sensor_height} sensor, the "
                f"camera {cam.serial_number!r} has {cam.sensor_width}x{cam.sensor_height}"
            )
        name = c.camera.pixel_format or _DEFAULT_FORMATS.get(cam.bit_depth)
        try:
            fmt = pixel_format(name)
        except InputError as e:
            raise ConfigurationError(f"camera.pixel_format {name!r}: {e}") from e
        if SIGNIFICANT_BITS[fmt] != cam.bit_depth:
            raise ConfigurationError(
                f"camera.pixel_format {fmt.name} carries {SIGNIFICANT_BITS[fmt]} bits but the "
                f"sensor has {cam.bit_depth}; choose Mono{cam.bit_depth} or Mono{cam.bit_depth}p"
            )
        cam.set_pixel_format(fmt)
        cam.set_roi(self.roi)
        try:
            cam["TriggerSource"] = c.camera.trigger_source
        except InputError as e:
            raise ConfigurationError(f"camera.trigger_source: {e}") from e
        cam["TriggerMode"] = "On"

    # ---- FrameSource properties -----------------------------------------------------------
    @property
    def max_dn(self) -> float:
        """Largest count the camera reports (2**bit_depth - 1), DN."""
        return float((1 << self._cam.bit_depth) - 1)

    @property
    def frame_period_us(self) -> float:
        """Frame period at exposures up to it, microseconds (longer exposures stretch it on
        the usb path; the video path's period is one pattern: 1e6 / (24 x refresh))."""
        if self.pattern_path == "video":
            return float(pattern_period_us(self.config.dmd.video_refresh_hz))
        lo = self.exposure_range_us[0]
        t = self.config.timing
        return float(plan_timing(lo, t.frame_period_us, t.dmd_delay_us, t.camera_delay_us)
                     .frame_period_us)

    @property
    def timing_model(self) -> PathTiming:
        """The time model of this OPU's pattern path: frame_period_us and call_s(n_frames)."""
        if self.pattern_path == "video":
            return PathTiming.video(self.config.dmd.video_refresh_hz)
        return PathTiming.usb(self.frame_period_us)

    def _set_dmd_mode(self, path: str) -> None:
        """Put the controller in the display mode of a path (video: ~300 ms, DLPU018 2.4.1)."""
        if path == "video":
            period = pattern_period_us(self.config.dmd.video_refresh_hz)
            self._dmd.set_video_pattern_mode(period, sleep=self._sleep)
        else:
            self._dmd.set_pattern_on_the_fly_mode()
        self._dmd_mode = path

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

    @property
    def exposure_range_us(self) -> tuple[float, float]:
        """(shortest, longest) exposure, microseconds: the camera's range within the FPGA's
        and the DMD's limits (shorter than the DMD's 105 us pattern minimum is allowed: the
        pattern then stays up longer than the exposure)."""
        c = self.config
        return exposure_limits_us(
            c.camera.min_exposure_us,
            c.camera.max_exposure_us,
            c.timing.dmd_delay_us,
            c.timing.camera_delay_us,
        )

    @property
    def device_id(self) -> str:
        """'camera:<camera serial>+dlpc900:<firmware version>'."""
        return f"camera:{self._cam.serial_number}+dlpc900:{self._firmware}"

    @property
    def pixel_ids(self) -> np.ndarray:
        """Global sensor ids of the returned frame columns."""
        return self._pixel_ids

    def timing_for(self, exposure_us: float) -> FrameTiming:
        """The frame timing an acquisition at exposure_us uses (checked like acquire)."""
        e = self._check_exposure(exposure_us)
        t = self.config.timing
        if self.path_for(e) == "video":
            return video_timing(e, self.config.dmd.video_refresh_hz, t.dmd_delay_us,
                                t.camera_delay_us)
        return plan_timing(e, t.frame_period_us, t.dmd_delay_us, t.camera_delay_us)

    # ---- FrameSource methods --------------------------------------------------------------
    def set_output_pixels(self, pixel_ids: np.ndarray | None) -> None:
        """Return only these global sensor ids (all inside the ROI); None: the whole ROI.
        The camera keeps reading the configured ROI; the host crops."""
        roi = self.roi
        if pixel_ids is None:
            self._pixel_ids, self._columns = roi.pixel_ids(), None
            return
        ids = np.asarray(pixel_ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise InputError("output pixels must be a non-empty 1-D array of integer ids")
        ids = ids.astype(np.int64)
        x, y = ids % roi.sensor_width, ids // roi.sensor_width
        inside = (
            (ids >= 0)
            & (x >= roi.offset_x)
            & (x < roi.offset_x + roi.width)
            & (y >= roi.offset_y)
            & (y < roi.offset_y + roi.height)
        )
        if not inside.all():
            raise InputError(
                f"output pixels must all lie inside the camera ROI {roi.width}x{roi.height}"
                f"+{roi.offset_x}+{roi.offset_y}; {int((~inside).sum())} do not"
            )
        self._pixel_ids = ids
        self._columns = (y - roi.offset_y) * roi.width + (x - roi.offset_x)

    def wait_s(self, seconds: float) -> None:
        """Let `seconds` pass (real sleep on hardware; the rig's clock when emulated)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)):
            raise InputError(f"wait time must be a number of seconds, got {seconds!r}")
        if not (math.isfinite(seconds) and seconds >= 0):
            raise InputError(f"wait time must be a finite number of seconds >= 0, got {seconds}")
        self._sleep(float(seconds))

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
            b = p.shape[0]
            cols = self._columns
            n_out = self._pixel_ids.size
            dtype = np.uint8 if self._cam.bit_depth == 8 else np.uint16
            frames = np.empty((b, n_out), dtype=dtype)
            ids = np.empty(b, dtype=np.int64)
            stamps = np.empty(b, dtype=np.float64)
            run_ids: list[int] = []
            problems: list[str] = []
            reacquired = 0
            t_start = time.perf_counter()
            busy = dict(self.stats.seconds)
            try:
                video = self.path_for(timing.exposure_us) == "video"
                if self._dmd_mode != ("video" if video else "usb"):
                    with self.stats.timed("dmd_upload"):
                        self._set_dmd_mode("video" if video else "usb")
                self._prepare(timing)
                step = CHUNK_PATTERNS if video else MAX_LUT_ENTRIES
                for s in range(0, b, step):
                    e = min(b, s + step)
                    if video:
                        readout, chunk_runs, redone, seen = acquire_video_chunk(
                            self, p[s:e], timing, self._video)
                    else:
                        readout, run_id, redone, seen = self._acquire_chunk(p[s:e], timing)
                        chunk_runs = [run_id]
                    flat = readout.frames.reshape(e - s, -1)
                    frames[s:e] = flat if cols is None else flat[:, cols]
                    ids[s:e] = readout.frame_ids
                    stamps[s:e] = readout.timestamps_us
                    run_ids.extend(chunk_runs)
                    problems.extend(seen)
                    reacquired += redone
                if not video:
                    with self.stats.timed("dmd_upload"):
                        self._dmd.stop()
            except BaseException as e:
                self._fail(e)
                raise
            finally:
                spent = sum(self.stats.seconds[k] - busy.get(k, 0.0) for k in busy)
                self.stats.seconds["host_other"] += time.perf_counter() - t_start - spent
            self.stats.frames += b
            return FrameBatch(
                frames=frames,
                frame_ids=ids,
                timestamps_us=stamps,
                exposure_us=timing.exposure_us,
                pixel_ids=self._pixel_ids,
                saturated=(frames >= self.max_dn).sum(axis=1).astype(np.int64),
                reacquired=reacquired,
                info={
                    "run_ids": run_ids,
                    "frame_period_us": timing.frame_period_us,
                    "dmd_exposure_us": timing.dmd_exposure_us,
                    "problems": problems,
                    "pattern_path": "video" if video else "usb",
                },
            )

    def close(self) -> None:
        """Stop and release every device (idempotent); a new OPUHardware can then be opened."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def __enter__(self) -> OPUHardware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("lost" if self._lost else "open")
        return f"OPUHardware({self.config.source!r}, {state})"

    # ---- acquisition internals ------------------------------------------------------------
    @property
    def _cam(self) -> Camera:
        if self.camera is None:
            raise DeviceDisconnectedError("the camera is not open; open a new OPUHardware")
        return self.camera

    @property
    def _dmd(self) -> DLPC900:
        if self.dmd is None:
            raise DeviceDisconnectedError("the DMD is not open; open a new OPUHardware")
        return self.dmd

    @property
    def _fpga(self) -> FPGATimingBoard:
        if self.fpga is None:
            raise DeviceDisconnectedError("the FPGA is not open; open a new OPUHardware")
        return self.fpga

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if self._closed:
            raise DeviceDisconnectedError("this OPUHardware is closed; open a new one")
        if self._lost is not None:
            raise DeviceDisconnectedError(
                f"a device of this OPU was lost ({self._lost}); close() it, reconnect the "
                "device and open a new OPUHardware"
            )
        if not self._lock.acquire(blocking=False):
            raise ConcurrencyError("another thread is acquiring on this OPU; serialise the calls")
        try:
            yield
        finally:
            self._lock.release()

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

    def _check_exposure(self, exposure_us: float) -> float:
        if isinstance(exposure_us, bool) or not isinstance(exposure_us, (int, float, np.number)):
            raise InputError(f"exposure_us must be a number, got {exposure_us!r}")
        e = float(exposure_us)
        lo, hi = self.exposure_range_us
        if not (math.isfinite(e) and lo <= e <= hi):
            raise InputError(
                f"exposure_us={exposure_us} is outside [{lo:g}, {hi:g}] us, the range the "
                f"camera ([{self.config.camera.min_exposure_us:g}, "
                f"{self.config.camera.max_exposure_us:g}] us), the FPGA and the DMD allow together"
            )
        return e

    def _prepare(self, timing: FrameTiming) -> None:
        """Camera exposure, FPGA timing (only when changed) and camera acquisition."""
        cam = self._cam
        with self.stats.timed("camera_read"):
            if self._camera_exposure != timing.exposure_us:
                cam["ExposureTime"] = timing.exposure_us
                self._camera_exposure = timing.exposure_us
        with self.stats.timed("fpga_run"):
            settings = timing.fpga_settings()
            if self._fpga_settings != settings:
                self._fpga.configure(*settings)
                self._fpga_settings = settings
        with self.stats.timed("camera_read"):
            if not self._camera_running:
                cam.start()
                self._camera_running = True
                self._next_id = 0

    def _acquire_chunk(
        self, p: np.ndarray, timing: FrameTiming
    ) -> tuple[FrameReadout, int, int, list[str]]:
        """Upload and run one chunk (<= LUT capacity) until its frames pass every check.
        Returns (readout, run id, frames re-acquired, problems seen)."""
        n = p.shape[0]
        dmd, fpga, cam = self._dmd, self._fpga, self._cam
        acq = self.config.acquisition
        with self.stats.timed("dmd_prepare"):
            plan = prepare_upload_elements(p, self.layout)
        with self.stats.timed("dmd_upload"):
            dmd.load_plan(plan, timing.dmd_exposure_us, trigger_in="external", repeat=False)
        self.stats.chunks += 1
        seen: list[str] = []
        for attempt in range(acq.max_reacquire + 1):
            with self.stats.timed("dmd_upload"):
                if attempt:
                    dmd.stop()  # rewind: the next start shows the first pattern again
                dmd.start()
            first = self._next_id
            with self.stats.timed("fpga_run"):
                fpga.arm()
                accepted = fpga.run(n)
                try:
                    events = fpga.wait_run_complete()
                except FPGARunAbortedError as e:
                    events = e.events
                summary = fpga.last_run
            self.stats.runs += 1
            expected = nominal_camera_times_us(accepted.start_time_us, n, timing)
            with self.stats.timed("integrity"):
                problems = check_run(events, summary, n, accepted.start_time_us, timing)
            complete = False
            if not problems:
                with self.stats.timed("camera_read"):
                    try:
                        readout = cam.read_frames(n, timeout_ms=self._readout_timeout_ms(n))
                        complete = True
                    except CameraStreamTimeout as e:
                        readout = e.partial
                with self.stats.timed("integrity"):
                    counter = int(cam.get_feature("FrameCounter"))
                    problems = check_frames(
                        readout,
                        first,
                        counter,
                        summary.camera_triggers,
                        expected,
                        acq.camera_clock,
                        acq.timestamp_tolerance_us,
                    )
            if not problems:
                self._next_id = first + n
                return readout, accepted.run_id, attempt * n, seen
            self._record(problems, seen, accepted.run_id)
            self.stats.reacquired_frames += n
            with self.stats.timed("integrity"):
                self._resync_camera(first + n if complete else first)
        raise FrameIntegrityError(
            f"{n} frames could not be attributed to their patterns in "
            f"{acq.max_reacquire + 1} runs ({'; '.join(seen[-3:])}); the devices were stopped. "
            "Check the trigger cabling and the camera link, then acquire again"
        )

    def _readout_timeout_ms(self, n: int) -> int:
        # the run is over, so frames are in flight; 2 ms per frame covers the host's own
        # transfer and unpacking time on a loaded machine (the deadline includes it; frames
        # already queued when it passes are still read: camera driver, _StreamDeadline)
        return int(self.config.acquisition.readout_timeout_ms + 2 * n)

    def _record(self, problems: list[Problem], seen: list[str], run_id: int) -> None:
        self.stats.failed_runs += 1
        for pr in problems:
            self.stats.problems[pr.kind] = self.stats.problems.get(pr.kind, 0) + 1
            seen.append(f"run {run_id}: {pr}")

    def _resync_camera(self, host_next: int) -> None:
        """Skip every frame the camera has produced so far: the next read starts at the id
        the next trigger gets."""
        cam = self._cam
        counter = int(cam.get_feature("FrameCounter"))
        self._next_id = max(counter, host_next)
        cam.skip_to(self._next_id)

    def _fail(self, error: BaseException) -> None:
        """After a failed acquisition: stop every reachable device, forget cached settings."""
        self._fpga_settings = None
        self._camera_exposure = None
        self._dmd_mode = None  # the DMD is stopped below: the next call sets its mode again
        if isinstance(error, DeviceDisconnectedError):
            self._lost = str(error).split(";")[0]
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

    def _release(self) -> None:
        """Close every driver (each stops its device if it still answers) and the video
        output this OPU opened."""
        self._camera_running = False
        if self._video is not None:
            self._video.close()
        for name in ("camera", "fpga", "dmd"):
            dev = getattr(self, name)
            if dev is None:
                continue
            try:
                dev.close()
            except Exception:  # a vanished device may fail to close; it is released either way
                pass
            setattr(self, name, None)
