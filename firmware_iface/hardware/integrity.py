"""Frame-integrity checks of one run: may the camera frames be attributed to the patterns?

Pure functions over what the FPGA reported (per-frame trigger events, run summary) and what the
camera returned (frame ids, timestamps, per-frame statuses, its frame counter). Each returns a
list of `Problem`s; an empty list means frame k of the readout is the exposure of pattern k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.driver import FrameReadout, FrameStatus
from ..fpga.messages import RunComplete, TriggerEvent, TriggerFlags
from .timing import FrameTiming


@dataclass(frozen=True)
class Problem:
    """One integrity failure: `kind` (a short tag, see KINDS) and a human-readable detail."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


KINDS = (
    "run_aborted",  # the FPGA run ended before its last frame
    "trigger_count",  # camera pulses != frames (missing or extra trigger)
    "trigger_flags",  # the FPGA flagged a missing, extra or lagged camera pulse
    "trigger_time",  # a camera pulse not at its frame's nominal time
    "frame_status",  # dropped, incomplete or corrupt frame, or not received in time
    "frame_ids",  # camera ids not the expected contiguous range
    "frame_count",  # camera frame counter disagrees with the FPGA's pulse count
    "timestamp",  # camera timestamp not at the frame's trigger time
)


def nominal_camera_times_us(start_time_us: int, n: int, timing: FrameTiming) -> np.ndarray:
    """(n,) float64 board times of the camera triggers of a run without faults, us."""
    k = np.arange(n, dtype=np.float64)
    return start_time_us + k * timing.frame_period_us + timing.camera_delay_us


def check_run(
    events: list[TriggerEvent],
    summary: RunComplete | None,
    n_frames: int,
    start_time_us: int,
    timing: FrameTiming,
) -> list[Problem]:
    """Problems in the FPGA's own account of a run of n_frames frames."""
    out: list[Problem] = []
    if summary is None or summary.frames_done != n_frames or len(events) != n_frames:
        done = len(events) if summary is None else summary.frames_done
        out.append(Problem("run_aborted", f"{done} of {n_frames} frames were triggered"))
        return out
    if summary.camera_triggers != n_frames:
        out.append(
            Problem(
                "trigger_count",
                f"{summary.camera_triggers} camera pulses for {n_frames} frames",
            )
        )
    anomalies = ~TriggerFlags.VSYNC  # VSYNC marks a video frame's first pattern: no fault
    flagged = [e.frame_index for e in events if e.flags & anomalies]
    if flagged:
        names = sorted({f.name for e in events for f in TriggerFlags
                        if f and f & anomalies and f in e.flags})
        out.append(
            Problem("trigger_flags", f"frames {_short(flagged)} flagged {', '.join(names)}")
        )
    nominal = nominal_camera_times_us(start_time_us, n_frames, timing)
    late = [
        e.frame_index
        for e in events
        if e.camera_time_us is not None and e.camera_time_us != nominal[e.frame_index]
    ]
    if late:
        out.append(Problem("trigger_time", f"camera pulses of frames {_short(late)} off time"))
    return out


def check_frames(
    readout: FrameReadout,
    first_id: int,
    frame_counter: int,
    camera_triggers: int,
    expected_times_us: np.ndarray,
    clock: str,
    tolerance_us: float,
) -> list[Problem]:
    """Problems in the camera's frames of a run: statuses, ids first_id.., the camera's frame
    counter (ids used since acquisition start) against first_id + camera_triggers, and the
    timestamps against the trigger times ("shared" clock: absolute; "relative": intervals)."""
    out: list[Problem] = []
    n = expected_times_us.size
    bad = np.flatnonzero(readout.statuses != FrameStatus.OK)
    if bad.size:
        kinds = sorted({FrameStatus(int(s)).name for s in readout.statuses[bad]})
        out.append(
            Problem(
                "frame_status",
                f"frames {_short((first_id + bad).tolist())} are {', '.join(kinds)}",
            )
        )
    ids = readout.frame_ids
    if ids.size != n or not np.array_equal(ids, np.arange(first_id, first_id + n)):
        out.append(Problem("frame_ids", f"expected ids {first_id}..{first_id + n - 1}"))
    if frame_counter != first_id + camera_triggers:
        out.append(
            Problem(
                "frame_count",
                f"camera counted {frame_counter - first_id} frames, the FPGA "
                f"{camera_triggers} camera pulses",
            )
        )
    ts = readout.timestamps_us
    ok = readout.statuses == FrameStatus.OK
    if ts.size == n and ok.any():
        if clock == "shared":
            off = np.abs(ts - expected_times_us) > tolerance_us
        else:
            ref = np.flatnonzero(ok)[0]
            off = np.abs((ts - ts[ref]) - (expected_times_us - expected_times_us[ref])) > (
                tolerance_us
            )
        off &= ok
        if off.any():
            out.append(
                Problem(
                    "timestamp",
                    f"frames {_short((first_id + np.flatnonzero(off)).tolist())} were exposed "
                    "at other times than their triggers (trigger lag?)",
                )
            )
    return out


def _short(items: list[int], limit: int = 6) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")
