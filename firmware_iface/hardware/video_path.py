"""OPUHardware's video-pattern path: patterns packed 24 per RGB888 frame, presented on the
DLPC900's video input, shown VSYNC-locked at 24 x the refresh rate, one camera exposure per
pattern trigger, and attributed frame by frame (firmware_iface.dlpc900.video_sync).

One chunk (at most MAX_FRAMES_PER_RUN video frames, `VideoChunk`), per round:
1. present the first frame still needed, wait half a VSYNC period (the margin every later
   frame has before its edge), then run the timing board for 24 x (frames + 1 + latency)
   pattern triggers from a VSYNC (the spare VSYNC absorbs one late flip);
2. while the board runs, present the other frames one per VSYNC interval, each at the middle
   of the interval before its VSYNC on the board's clock (the furthest from both edges); a
   flip that lands after its VSYNC moves the following frames one VSYNC on;
3. check the board's account and the camera's frames as on the USB path (integrity.py);
4. attribute every exposure to (frame, bit plane) from the flip times and the VSYNC / trigger
   counts. Late flips and lost VSYNC edges are recovered in place; frames never shown
   (dropped, uncertain, or pushed out of the run) are presented again in the next round; a run
   whose trigger counts do not fit the VSYNC grid is run again. After `max_reacquire` extra
   rounds FrameIntegrityError is raised. No exposure is used unless its attribution is certain.

The video output protocol (duck-typed; the emulated link opu_sim.emulators.dlpc900_video, the
bench's window_output.WindowVideoOutput): `open()`, `close()`, `sync()` (before each run: its
clock against the board's), `present(frame) -> (earliest, latest)` board time at which the
frame became current (us), `board_now_us()`, `wait_until_us(t)`. VSYNC edges and
pattern triggers come from the timing board: one event per trigger, flagged VSYNC where its
VSYNC input saw an edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..dlpc900.timing import PathTiming
from ..dlpc900.video import PATTERNS_PER_FRAME, pack_frame_elements
from ..dlpc900.video_sync import Attribution, FlipTimes, VsyncCount, attribute
from ..errors import DeviceError, FPGARunAbortedError, FrameIntegrityError, InputError
from ..fpga.messages import TriggerFlags
from .chunks import Attempt, ChunkResult, ChunkRunner
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
    runner: ChunkRunner, p: np.ndarray, timing: FrameTiming, output, latency_vsyncs: int = 0
) -> ChunkResult:
    """Acquire one chunk (<= CHUNK_PATTERNS patterns) on the video path with the runner's
    drivers (it keeps the camera's next frame id). Returns a ChunkResult whose readout holds
    the chunk's frames in pattern order."""
    return VideoChunk(runner, p, timing, output, latency_vsyncs).run()


class VideoChunk:
    """One chunk of the video path (module docstring): the packed frames, the frames still to
    capture (`todo`), the frames captured so far and the problems seen."""

    def __init__(self, runner: ChunkRunner, p: np.ndarray, timing: FrameTiming, output,
                 latency_vsyncs: int = 0) -> None:
        self.runner, self.timing, self.output = runner, timing, output
        self.latency = int(latency_vsyncs)
        self.n = p.shape[0]
        n_frames = -(-self.n // PATTERNS_PER_FRAME)
        layout = runner.layout
        with runner.stats.timed("dmd_prepare"):
            self.video = np.empty((n_frames, layout.dmd_height, layout.dmd_width, 3), np.uint8)
            for f in range(n_frames):
                s = f * PATTERNS_PER_FRAME
                pack_frame_elements(p[s : s + PATTERNS_PER_FRAME], layout, self.video[f])
        self.todo = list(range(n_frames))
        self.got: ChunkFrames | None = None
        self.seen: list[str] = []
        self.run_id = -1
        self.redone = 0

    @property
    def vsync_period_us(self) -> int:
        """The VSYNC period of the run: 24 pattern periods, us."""
        return PATTERNS_PER_FRAME * self.timing.frame_period_us

    def run(self) -> ChunkResult:
        """Rounds until every frame's patterns were captured once (FrameIntegrityError after
        max_reacquire extra rounds)."""
        self.runner.stats.chunks += 1
        rounds = self.runner.acq.max_reacquire + 1
        for _ in range(rounds):
            if self.round():
                return ChunkResult(self.got, self.run_id, self.redone, tuple(self.seen))
        raise FrameIntegrityError(
            f"{self.n} video-pattern exposures could not be attributed to their patterns in "
            f"{rounds} runs ({'; '.join(self.seen[-3:])}); the devices were stopped. Check the "
            "video cable, the VSYNC and trigger lines, and that nothing else draws on the "
            "controller's display"
        )

    def round(self) -> bool:
        """Present the frames still needed during one board run, check and attribute it;
        True when no frame is left to capture."""
        runner, stats = self.runner, self.runner.stats
        n_trig = PATTERNS_PER_FRAME * (len(self.todo) + 1 + self.latency)
        first = runner.next_id
        attempt, flips = self.present_and_run(n_trig)
        self.run_id = attempt.accepted.run_id
        readout, complete, problems = self.verify(attempt, n_trig, first)
        if problems:
            runner.record(problems, self.seen, self.run_id)
            self._redo(n_trig)
            with stats.timed("integrity"):
                runner.resync_camera(first + n_trig if complete else first)
            return False
        runner.next_id = first + n_trig
        with stats.timed("integrity"):
            att = attribute(flips, board_count(attempt.events), self.vsync_period_us,
                            latency_vsyncs=self.latency)
        notes = [Problem(kind, detail) for kind, detail in att.problems]
        if notes:
            runner.record(notes, self.seen, self.run_id)
        if att.fatal:
            self._redo(n_trig)
            return False
        self.store(att, readout)
        return not self.todo

    def present_and_run(self, n_trig: int) -> tuple[Attempt, FlipTimes]:
        """Present the first frame still needed, start the board's run, present the others
        paced on the run's VSYNC grid, and wait for the run's end."""
        out, fpga, stats = self.output, self.runner.fpga, self.runner.stats
        with stats.timed("dmd_upload"):
            out.sync()  # the output's clock against the board's, before the run
            flips = [out.present(self.video[self.todo[0]])]
            # as every later frame: half a VSYNC period between its flip and its edge (the
            # run's first), for the output to make it current
            out.wait_until_us(flips[0][1] + 0.5 * self.vsync_period_us)
        with stats.timed("fpga_run"):
            fpga.arm()
            accepted = fpga.run(n_trig)
        with stats.timed("dmd_upload"):
            self._pace(accepted.start_time_us, flips)
        with stats.timed("fpga_run"):
            try:
                events = fpga.wait_run_complete()
            except FPGARunAbortedError as e:
                events = e.events
            summary = fpga.last_run
        stats.runs += 1
        lo, hi = (np.array(x, np.float64) for x in zip(*flips, strict=True))
        return Attempt(accepted, events, summary), FlipTimes(lo, hi)

    def _pace(self, start_us: float, flips: list[tuple[float, float]]) -> None:
        """Present todo[1:] one per VSYNC interval, each in the middle of the interval before
        its edge (edge j of the run at start_us + j * period); a flip whose latest time is
        past its edge moves the following frames one edge on."""
        period = self.vsync_period_us
        shift = 1 if flips[0][1] >= start_us else 0
        for j, f in enumerate(self.todo[1:], start=1):
            self.output.wait_until_us(start_us + (j + shift - 0.5) * period)
            flips.append(self.output.present(self.video[f]))
            if flips[-1][1] >= start_us + (j + shift) * period:
                shift += 1

    def verify(self, attempt: Attempt, n_trig: int, first: int
               ) -> tuple[object, bool, list[Problem]]:
        """(readout, all frames arrived, problems) of a run: the board's account, then the
        camera's frames (integrity.py)."""
        runner, timing = self.runner, self.timing
        with runner.stats.timed("integrity"):
            problems = check_run(attempt.events, attempt.summary, n_trig,
                                 attempt.accepted.start_time_us, timing)
        if problems:
            return None, False, problems
        readout, complete = runner.read(n_trig)
        return readout, complete, runner.check_readout(readout, n_trig, first, attempt, timing)

    def store(self, att: Attribution, readout) -> None:
        """Copy the attributed exposures to their patterns; the frames not shown stay to do."""
        n = self.n
        if self.got is None:
            self.got = ChunkFrames(
                np.empty((n,) + readout.frames.shape[1:], readout.frames.dtype),
                np.empty(n, np.int64), np.empty(n, np.float64))
        got = self.got
        for i in np.flatnonzero(att.frame >= 0).tolist():
            k = self.todo[att.frame[i]] * PATTERNS_PER_FRAME + int(att.plane[i])
            if k < n:
                got.frames[k] = readout.frames[i]
                got.frame_ids[k] = readout.frame_ids[i]
                got.timestamps_us[k] = readout.timestamps_us[i]
        missing = [self.todo[f] for f in np.flatnonzero(~att.shown).tolist()]
        self._redo(PATTERNS_PER_FRAME * len(missing))
        self.todo = missing

    def _redo(self, n_patterns: int) -> None:
        self.redone += n_patterns
        self.runner.stats.reacquired_frames += n_patterns


def measure_latency(runner: ChunkRunner, output, timing: FrameTiming, max_latency: int = 3
                    ) -> int:
    """Bench check of the display latency (dmd.video_latency_vsyncs, docs/dlpc900.md): VSYNC
    edges between a frame becoming current on the video output and its bit planes on the DMD.

    A dark frame is presented and left for max_latency + 1 periods, a run of 2 + max_latency
    VSYNCs starts, and a bright frame (every bit plane ON) is flipped in the middle of its
    first interval, as the path flips every frame; the camera's 24 exposures per VSYNC show at
    which edge the light arrives. Raises FrameIntegrityError when the run fails its checks or
    the light arrives before the flip, DeviceError when no change of light is seen."""
    if max_latency < 0:
        raise InputError(f"max_latency must be >= 0, got {max_latency}")
    layout, period = runner.layout, PATTERNS_PER_FRAME * timing.frame_period_us
    shape = (layout.dmd_height, layout.dmd_width, 3)
    n_vsync = 2 + int(max_latency)
    n_trig = PATTERNS_PER_FRAME * n_vsync
    output.sync()
    dark = output.present(np.zeros(shape, np.uint8))
    output.wait_until_us(dark[1] + (max_latency + 1) * period)  # dark all through the pipeline
    first = runner.next_id
    fpga = runner.fpga
    fpga.arm()
    accepted = fpga.run(n_trig)
    output.wait_until_us(accepted.start_time_us + 0.5 * period)
    output.present(np.full(shape, 255, np.uint8))
    try:
        events = fpga.wait_run_complete()
    except FPGARunAbortedError as e:
        events = e.events
    attempt = Attempt(accepted, events, fpga.last_run)
    problems = check_run(events, attempt.summary, n_trig, accepted.start_time_us, timing)
    readout, complete = (None, False) if problems else runner.read(n_trig)
    if not problems:
        problems = runner.check_readout(readout, n_trig, first, attempt, timing)
    vsync = [i for i, e in enumerate(events) if e.flags & TriggerFlags.VSYNC]
    if problems or vsync != list(range(0, n_trig, PATTERNS_PER_FRAME)):
        runner.resync_camera(first + n_trig if complete else first)
        raise FrameIntegrityError(
            f"the latency check's run failed its checks ({'; '.join(map(str, problems))} "
            f"VSYNC edges at triggers {vsync[:6]}); run it again")
    runner.next_id = first + n_trig
    level = readout.frames.reshape(n_vsync, PATTERNS_PER_FRAME, -1).astype(np.float64).mean(
        axis=(1, 2))
    lo, hi = float(level.min()), float(level.max())
    if hi - lo <= 0.1 * max(hi, 1.0):
        raise DeviceError(
            f"no change of light between the dark and the bright frame (mean {lo:.1f}..{hi:.1f}"
            f" DN over {n_vsync} VSYNCs): check the laser, the camera and the video cable, or "
            "raise max_latency")
    bright = int(np.argmax(level > (lo + hi) / 2))
    if bright == 0:
        raise FrameIntegrityError("the bright frame was seen before it was flipped: something "
                                  "else draws on the controller's display")
    return bright - 1
