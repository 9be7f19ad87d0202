"""One chunk of an OPUHardware acquisition: upload, trigger, read, verify, re-acquire.

`ChunkRunner.run(patterns, timing)` shows at most the DMD's LUT capacity of patterns: it uploads
them as an externally triggered pattern-on-the-fly sequence, starts the DMD, arms the FPGA and
runs N frames, reads N camera frames and checks their attribution (integrity.py). A failed check
rewinds the DMD, resynchronises the camera stream past every frame it has produced, and runs the
chunk again (at most `max_reacquire` times), then raises FrameIntegrityError. A frame is never
returned unless every check of its run passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.driver import Camera, FrameReadout
from ..dlpc900.driver import DLPC900
from ..dlpc900.images import prepare_upload_elements
from ..errors import CameraStreamTimeout, FPGARunAbortedError, FrameIntegrityError
from ..fpga.driver import FPGATimingBoard
from ..fpga.messages import RunAccepted, RunComplete, TriggerEvent
from ..geometry import DmdLayout
from .config import AcquisitionConfig
from .integrity import Problem, check_frames, check_run, nominal_camera_times_us
from .stats import HardwareStats
from .timing import FrameTiming

__all__ = ["Attempt", "ChunkResult", "ChunkRunner"]


@dataclass(frozen=True)
class ChunkResult:
    """A verified chunk: its readout, the FPGA run that produced it, the frames re-acquired on
    the way and the problems seen ('run <id>: <kind>: <detail>')."""

    readout: FrameReadout
    run_id: int
    reacquired: int
    problems: tuple[str, ...]


@dataclass
class Attempt:
    """One FPGA run of a chunk: the RUN's acceptance, its frame events and its summary (None
    when the board never reported the run's end)."""

    accepted: RunAccepted
    events: list[TriggerEvent]
    summary: RunComplete | None


class ChunkRunner:
    """Runs chunks on three open drivers; `next_id` is the camera frame id the next trigger
    gets (0 after the camera's acquisition starts)."""

    def __init__(
        self,
        dmd: DLPC900,
        fpga: FPGATimingBoard,
        camera: Camera,
        layout: DmdLayout,
        acquisition: AcquisitionConfig,
        stats: HardwareStats,
    ) -> None:
        self.dmd, self.fpga, self.camera = dmd, fpga, camera
        self.layout = layout
        self.acq = acquisition
        self.stats = stats
        self.next_id = 0

    def run(self, patterns: np.ndarray, timing: FrameTiming) -> ChunkResult:
        """Upload and run one chunk (<= LUT capacity) until its frames pass every check."""
        n = patterns.shape[0]
        with self.stats.timed("dmd_prepare"):
            plan = prepare_upload_elements(patterns, self.layout)
        with self.stats.timed("dmd_upload"):
            self.dmd.load_plan(plan, timing.dmd_exposure_us, trigger_in="external", repeat=False)
        self.stats.chunks += 1
        seen: list[str] = []
        for attempt in range(self.acq.max_reacquire + 1):
            first = self.next_id
            run = self._trigger(n, rewind=attempt > 0)
            with self.stats.timed("integrity"):
                problems = check_run(
                    run.events, run.summary, n, run.accepted.start_time_us, timing
                )
            complete = False
            if not problems:
                readout, complete = self.read(n)
                problems = self.check_readout(readout, n, first, run, timing)
            if not problems:
                self.next_id = first + n
                return ChunkResult(readout, run.accepted.run_id, attempt * n, tuple(seen))
            self.record(problems, seen, run.accepted.run_id)
            self.stats.reacquired_frames += n
            with self.stats.timed("integrity"):
                self.resync_camera(first + n if complete else first)
        raise FrameIntegrityError(
            f"{n} frames could not be attributed to their patterns in "
            f"{self.acq.max_reacquire + 1} runs ({'; '.join(seen[-3:])}); the devices were "
            "stopped. Check the trigger cabling and the camera link, then acquire again"
        )

    def _trigger(self, n: int, rewind: bool) -> Attempt:
        """Start the DMD sequence (rewound to its first pattern after a failed attempt) and
        run n FPGA frames; the run's events and summary."""
        with self.stats.timed("dmd_upload"):
            if rewind:
                self.dmd.stop()  # the next start shows the first pattern again
            self.dmd.start()
        with self.stats.timed("fpga_run"):
            self.fpga.arm()
            accepted = self.fpga.run(n)
            try:
                events = self.fpga.wait_run_complete()
            except FPGARunAbortedError as e:
                events = e.events
            summary = self.fpga.last_run
        self.stats.runs += 1
        return Attempt(accepted, events, summary)

    def read(self, n: int) -> tuple[FrameReadout, bool]:
        """The run's n camera frames, and whether all arrived before the deadline (a partial
        readout when not)."""
        # the run is over, so frames are in flight; 2 ms per frame covers the host's own
        # transfer and unpacking time on a loaded machine (the deadline includes it; frames
        # already queued when it passes are still read: camera driver, _StreamDeadline)
        timeout_ms = int(self.acq.readout_timeout_ms + 2 * n)
        with self.stats.timed("camera_read"):
            try:
                return self.camera.read_frames(n, timeout_ms=timeout_ms), True
            except CameraStreamTimeout as e:
                return e.partial, False

    def check_readout(
        self, readout: FrameReadout, n: int, first: int, run: Attempt, timing: FrameTiming
    ) -> list[Problem]:
        """Problems of a run's camera frames (integrity.check_frames): ids from `first`, the
        camera's frame counter against the board's camera triggers, timestamps against the
        run's nominal camera times. Empty when every frame is attributable."""
        expected = nominal_camera_times_us(run.accepted.start_time_us, n, timing)
        with self.stats.timed("integrity"):
            counter = int(self.camera.get_feature("FrameCounter"))
            return check_frames(
                readout,
                first,
                counter,
                run.summary.camera_triggers,
                expected,
                self.acq.camera_clock,
                self.acq.timestamp_tolerance_us,
            )

    def record(self, problems: list[Problem], seen: list[str], run_id: int) -> None:
        """Count a failed run's problems in the stats and append them to `seen` as
        'run <id>: <problem>'."""
        self.stats.failed_runs += 1
        for pr in problems:
            self.stats.problems[pr.kind] = self.stats.problems.get(pr.kind, 0) + 1
            seen.append(f"run {run_id}: {pr}")

    def resync_camera(self, host_next: int) -> None:
        """Skip every frame the camera has produced so far: the next read starts at the id
        the next trigger gets."""
        counter = int(self.camera.get_feature("FrameCounter"))
        self.next_id = max(counter, host_next)
        self.camera.skip_to(self.next_id)
