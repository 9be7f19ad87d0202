"""OPUHardware's video-pattern path: patterns packed 24 per RGB888 frame, presented on the
DLPC900's video input, shown VSYNC-locked at 24 x the refresh rate, one camera exposure per
pattern trigger, and attributed frame by frame (firmware_iface.dlpc900.video_sync).

One chunk (at most MAX_FRAMES_PER_RUN video frames):
1. pack the patterns (fast element path) and present the frames still needed;
2. run the timing board for 24 x (frames + 1) pattern triggers from a VSYNC (the spare VSYNC
   absorbs one late flip); check the board's account and the camera's frames as on the USB
   path (integrity.py);
3. attribute every exposure to (frame, bit plane) from the host's flip times and the VSYNC /
   trigger counts. Late flips and lost VSYNC edges are recovered in place; frames never shown
   (dropped, or pushed out of the run) are presented again in the next round; a run whose
   trigger counts do not fit the VSYNC grid is run again. After `max_reacquire` extra rounds
   FrameIntegrityError is raised. No exposure is used unless its attribution is certain.

The video output is duck-typed: `open()`, `present(frame)`, `close()` and `take_run()`
returning the flip times of the last run's frames (flip_times_us, board clock; the emulated
link, opu_sim.emulators.dlpc900_video). VSYNC edges and pattern triggers come from the timing
board: one event per trigger, flagged VSYNC where its VSYNC input saw an edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..dlpc900.timing import PathTiming
from ..dlpc900.video import PATTERNS_PER_FRAME, pack_frame_elements
from ..dlpc900.video_sync import VsyncCount, attribute
from ..errors import FPGARunAbortedError, FrameIntegrityError, InputError
from ..fpga.messages import TriggerFlags
from .chunks import ChunkResult, ChunkRunner, _Attempt
from .integrity import Problem, check_run
from .timing import FrameTiming, plan_timing

MAX_FRAMES_PER_RUN = 16
"""Video frames per chunk (384 patterns; a chunk's camera frames are read in one go)."""
CHUNK_PATTERNS = MAX_FRAMES_PER_RUN * PATTERNS_PER_FRAME


@dataclass
class ChunkFrames:
    """One chunk's camera frames in pattern order (the fields acquire() copies)."""

    frames: np.ndarray
    frame_ids: np.ndarray
    timestamps_us: np.ndarray


def pattern_period_us(refresh_hz: float) -> int:
    """Timing-board period of one pattern at a video refresh rate, whole microseconds."""
    return math.floor(1e6 / (refresh_hz * PATTERNS_PER_FRAME))


def video_timing(exposure_us: float, refresh_hz: float, dmd_delay_us: int,
                 camera_delay_us: int) -> FrameTiming:
    """FrameTiming of a video-pattern run; InputError when the exposure does not fit one
    pattern period (the video path cannot stretch its frames)."""
    p = pattern_period_us(refresh_hz)
    t = plan_timing(exposure_us, p, dmd_delay_us, camera_delay_us)
    if t.frame_period_us != p:
        raise InputError(
            f"exposure_us={exposure_us:g} does not fit a video pattern ({p} us at "
            f"{refresh_hz:g} Hz, camera delay {camera_delay_us} us): lower the exposure or "
            "the refresh rate, or use dmd.pattern_path = 'usb'"
        )
    return replace(t, dmd_exposure_us=p)


def path_timing(refresh_hz: float) -> PathTiming:
    """The video path's time model (PathTiming) at refresh_hz."""
    return PathTiming.video(refresh_hz)


def board_count(events: list) -> VsyncCount:
    """VSYNC edges and pattern triggers of a run as the timing board reported them: every
    frame event is one pattern trigger (its DMD trigger time), those flagged VSYNC also a VSYNC
    edge."""
    trig = np.array([e.dmd_time_us for e in events], np.float64)
    vs = np.array([e.dmd_time_us for e in events if e.flags & TriggerFlags.VSYNC], np.float64)
    return VsyncCount(vs, trig)


def run_video_chunk(
    runner: ChunkRunner, p: np.ndarray, timing: FrameTiming, output
) -> ChunkResult:
    """Acquire one chunk (<= CHUNK_PATTERNS patterns) on the video path with the runner's
    drivers (it keeps the camera's next frame id). Returns a ChunkResult whose readout holds
    the chunk's frames in pattern order."""
    n = p.shape[0]
    n_frames = -(-n // PATTERNS_PER_FRAME)
    fpga, stats, acq, layout = runner.fpga, runner.stats, runner.acq, runner.layout
    with stats.timed("dmd_prepare"):
        video = np.empty((n_frames, layout.dmd_height, layout.dmd_width, 3), np.uint8)
        for f in range(n_frames):
            pack_frame_elements(p[f * PATTERNS_PER_FRAME : (f + 1) * PATTERNS_PER_FRAME], layout,
                                video[f])
    got: ChunkFrames | None = None
    todo = list(range(n_frames))
    seen: list[str] = []
    run_id = -1
    redone = 0
    stats.chunks += 1
    for _ in range(acq.max_reacquire + 1):
        with stats.timed("dmd_upload"):
            for f in todo:
                output.present(video[f])
        n_trig = PATTERNS_PER_FRAME * (len(todo) + 1)
        first = runner.next_id
        with stats.timed("fpga_run"):
            fpga.arm()
            accepted = fpga.run(n_trig)
            try:
                events = fpga.wait_run_complete()
            except FPGARunAbortedError as e:
                events = e.events
            summary = fpga.last_run
        stats.runs += 1
        run_id = accepted.run_id
        record = output.take_run()
        attempt = _Attempt(accepted, events, summary)
        with stats.timed("integrity"):
            problems = check_run(events, summary, n_trig, accepted.start_time_us, timing)
        readout, complete = None, False
        if not problems:
            readout, complete = runner._read(n_trig)
            problems = runner._check_readout(readout, n_trig, first, attempt, timing)
        if problems:
            runner._record(problems, seen, run_id)
            stats.reacquired_frames += n_trig
            redone += n_trig
            with stats.timed("integrity"):
                runner.resync_camera(first + n_trig if complete else first)
            continue
        runner.next_id = first + n_trig
        with stats.timed("integrity"):
            att = attribute(record.flip_times_us, board_count(events),
                            PATTERNS_PER_FRAME * timing.frame_period_us)
        notes = [Problem(kind, detail) for kind, detail in att.problems]
        if notes:
            runner._record(notes, seen, run_id)
        if att.fatal:
            stats.reacquired_frames += n_trig
            redone += n_trig
            continue
        if got is None:
            got = ChunkFrames(
                np.empty((n,) + readout.frames.shape[1:], readout.frames.dtype),
                np.empty(n, np.int64), np.empty(n, np.float64))
        for i in np.flatnonzero(att.frame >= 0).tolist():
            k = todo[att.frame[i]] * PATTERNS_PER_FRAME + int(att.plane[i])
            if k < n:
                got.frames[k] = readout.frames[i]
                got.frame_ids[k] = readout.frame_ids[i]
                got.timestamps_us[k] = readout.timestamps_us[i]
        missing = [todo[f] for f in np.flatnonzero(~att.shown).tolist()]
        redone += PATTERNS_PER_FRAME * len(missing)
        stats.reacquired_frames += PATTERNS_PER_FRAME * len(missing)
        todo = missing
        if not todo:
            return ChunkResult(got, run_id, redone, tuple(seen))
    raise FrameIntegrityError(
        f"{n} video-pattern exposures could not be attributed to their patterns in "
        f"{acq.max_reacquire + 1} runs ({'; '.join(seen[-3:])}); the devices were stopped. "
        "Check the video cable, the VSYNC and trigger lines, and that nothing else draws on "
        "the controller's display"
    )
