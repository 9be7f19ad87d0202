"""Run planning of the FPGA emulator: every trigger time and event of a run, computed at once
from the board's timing, the trigger faults and its lifetime counters (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_iface.fpga.messages import TriggerEvent, TriggerFlags
from firmware_iface.fpga.timing import Timing

from .faults import FPGAFaults

__all__ = ["ActiveRun", "RunRequest", "plan_run"]


@dataclass(frozen=True)
class RunRequest:
    """Everything the rig needs to render one run, times in microseconds of the board clock.

    timing: the board's frame timing for the run.
    dmd_trigger_times_us: (n_frames,) int64, DMD trigger of frame k (shows pattern k).
    camera_trigger_times_us: (n_camera,) int64, every camera trigger pulse of the run, sorted;
        n_camera differs from n_frames when triggers are missing or extra.
    camera_trigger_frames: (n_camera,) int64, the frame each camera pulse belongs to (-1 for a
        spurious extra pulse). Each camera pulse starts one exposure of exposure_us.
    """

    run_id: int
    n_frames: int
    start_time_us: int
    timing: Timing
    dmd_trigger_times_us: np.ndarray
    camera_trigger_times_us: np.ndarray
    camera_trigger_frames: np.ndarray

    @property
    def frame_period_us(self) -> int:
        """Frame period of the run, microseconds."""
        return self.timing.frame_period_us

    @property
    def exposure_us(self) -> int:
        """Camera trigger pulse (exposure) of the run, microseconds."""
        return self.timing.exposure_us


@dataclass
class ActiveRun:
    """A run in progress: its request, its per-frame events and when each is sent."""

    request: RunRequest
    events: list[TriggerEvent]  # one per frame, in frame order
    emit_times_us: list[int]  # when each frame's event is sent (non-decreasing)
    pulses_per_frame: list[int]  # camera pulses counted for each frame
    emitted: int = 0


def _frame_pulses(
    faults: FPGAFaults, i: int, nominal: int, period: int
) -> tuple[int | None, list[tuple[int, int]], TriggerFlags, int]:
    """Frame i's camera trigger time (None if missing), its pulses (time, frame or -1), flags
    and lag (us), under the trigger faults."""
    flags = TriggerFlags.NONE
    cam: int | None = nominal
    lag = 0
    if faults.hit("missing_camera_triggers", i):
        cam, flags = None, flags | TriggerFlags.CAMERA_MISSING
    elif faults.hit("trigger_lag_frames", i):
        lag = period
        cam, flags = nominal + lag, flags | TriggerFlags.CAMERA_LAGGED
    pulses = [] if cam is None else [(cam, i)]
    if faults.hit("extra_camera_triggers", i):
        pulses.append(((cam if cam is not None else nominal) + period // 2, -1))
        flags |= TriggerFlags.CAMERA_EXTRA
    return cam, pulses, flags, lag


def plan_run(
    run_id: int,
    n: int,
    t0: int,
    timing: Timing,
    faults: FPGAFaults,
    dmd_triggers: int,
    camera_triggers: int,
) -> ActiveRun:
    """The run of n frames starting at t0 (us): trigger times, events and emit times.
    dmd_triggers / camera_triggers: the board's lifetime counters before the run."""
    p, cd = timing.frame_period_us, timing.camera_delay_us
    dmd_t = t0 + np.arange(n, dtype=np.int64) * p + timing.dmd_delay_us
    pulses: list[tuple[int, int]] = []
    events, emit, per_frame = [], [], []
    d_count, c_count, last_emit = dmd_triggers, camera_triggers, 0
    for i in range(n):
        cam, own, flags, lag = _frame_pulses(faults, i, t0 + i * p + cd, p)
        pulses += own
        d_count += 1
        c_count += len(own)
        last_emit = max(last_emit, t0 + (i + 1) * p + lag)
        events.append(TriggerEvent(run_id, i, d_count, c_count, int(dmd_t[i]), cam, flags))
        emit.append(last_emit)
        per_frame.append(len(own))
    pulses.sort()
    request = RunRequest(
        run_id=run_id,
        n_frames=n,
        start_time_us=t0,
        timing=timing,
        dmd_trigger_times_us=dmd_t,
        camera_trigger_times_us=np.array([t for t, _ in pulses], dtype=np.int64),
        camera_trigger_frames=np.array([fr for _, fr in pulses], dtype=np.int64),
    )
    return ActiveRun(request, events, emit, per_frame)
