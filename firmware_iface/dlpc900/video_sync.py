"""Which pattern did each camera frame of a video-pattern run see? Pure functions.

In video-pattern mode the controller latches the newest complete video frame at each VSYNC and
shows its 24 bit planes, one per pattern trigger, until the next VSYNC. The timing board counts
VSYNC edges and pattern triggers (one camera exposure per trigger) and timestamps both; the host
knows when it flipped each frame. From these three records `attribute` rebuilds the run:

- a VSYNC edge the counter missed (a gap of k periods between counted edges, with 24 k pattern
  triggers in it, or triggers more than a period after the last counted edge) is put back on
  the VSYNC grid: **lost VSYNC**, recovered. The first edge of a run is never put back (triggers
  before the first counted edge fail the run, which is run again);
- VSYNC v shows the last frame flipped before it. A frame flipped after its VSYNC (a **late
  flip**) leaves the previous frame on the DMD for one more VSYNC: that VSYNC's 24 exposures
  show patterns already captured and are not attributed;
- a frame followed by another flip before any VSYNC is never shown (a **dropped frame**): its
  patterns are reported missing, for the host to present again;
- an interval between VSYNCs with other than 24 triggers cannot be attributed: raised by the
  caller (FrameIntegrityError).

A camera frame is attributed to (frame f, bit plane k) only when all of these agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

PATTERNS_PER_FRAME = 24


@dataclass(frozen=True)
class VsyncCount:
    """What the timing board counted during a run (board clock, microseconds)."""

    vsync_times_us: np.ndarray
    trigger_times_us: np.ndarray


@dataclass
class Attribution:
    """Per pattern trigger of a run: the host frame (-1: not attributed) and bit plane shown.

    shown: (n_frames,) bool, frames whose 24 planes were all captured once. problems: tags
    ("late_flip", "dropped_frame", "lost_vsync", "trigger_count") with details. fatal: the run
    cannot be attributed at all (trigger counts do not fit the VSYNC grid)."""

    frame: np.ndarray
    plane: np.ndarray
    shown: np.ndarray
    problems: list[tuple[str, str]] = field(default_factory=list)
    fatal: bool = False


def vsync_grid(vsync_times_us: np.ndarray, period_us: float) -> tuple[np.ndarray, int]:
    """(VSYNC times with missed edges put back, number put back): consecutive counted edges
    k periods apart (k rounded) get k - 1 edges inserted at the period."""
    t = np.asarray(vsync_times_us, np.float64)
    if t.size == 0:
        return t, 0
    if np.any(np.diff(t) <= 0):
        raise InputError("VSYNC times must increase")
    gaps = np.rint(np.diff(t) / period_us).astype(np.int64)
    if np.any(gaps < 1):
        raise InputError("two VSYNC edges closer than half a period: not a VSYNC signal")
    out = [t[0]]
    for i, k in enumerate(gaps.tolist()):
        for j in range(1, k):
            out.append(t[i] + j * (t[i + 1] - t[i]) / k)
        out.append(t[i + 1])
    return np.array(out), int(gaps.sum() - gaps.size)


def attribute(
    flip_times_us: np.ndarray,
    count: VsyncCount,
    period_us: float,
    patterns_per_frame: int = PATTERNS_PER_FRAME,
) -> Attribution:
    """Attribute every pattern trigger of a run (see the module docstring).

    flip_times_us: (n_frames,) when the host flipped each frame (board clock). period_us: the
    VSYNC period."""
    flips = np.asarray(flip_times_us, np.float64)
    trig = np.asarray(count.trigger_times_us, np.float64)
    n_frames = flips.size
    frame = np.full(trig.size, -1, np.int64)
    plane = np.full(trig.size, -1, np.int64)
    shown = np.zeros(n_frames, bool)
    res = Attribution(frame, plane, shown)
    grid, lost = vsync_grid(count.vsync_times_us, period_us)
    if grid.size and trig.size:  # edges missed after the last counted one
        extra = max(0, int(np.floor((trig.max() - grid[-1]) / period_us)))
        if extra:
            grid = np.append(grid, grid[-1] + period_us * np.arange(1, extra + 1))
            lost += extra
    if lost:
        res.problems.append(("lost_vsync", f"{lost} VSYNC edge(s) not counted, put back"))
    if grid.size == 0:
        if trig.size:
            res.problems.append(("trigger_count", f"{trig.size} triggers and no VSYNC"))
            res.fatal = True
        return res
    # triggers per VSYNC interval (the last one runs a period past the last edge)
    edges = np.append(grid, grid[-1] + period_us)
    which = np.searchsorted(edges, trig, side="right") - 1
    if np.any(which < 0) or np.any(which >= grid.size):
        res.problems.append(("trigger_count", "pattern triggers outside the VSYNC grid"))
        res.fatal = True
        return res
    per = np.bincount(which, minlength=grid.size)
    bad = np.flatnonzero(per != patterns_per_frame)
    if bad.size:
        res.problems.append(
            ("trigger_count", f"VSYNC intervals {bad[:6].tolist()} hold {per[bad[:6]].tolist()} "
                              f"pattern triggers, not {patterns_per_frame}")
        )
        res.fatal = True
        return res
    # VSYNC v shows the newest frame flipped before it
    latched = np.searchsorted(flips, grid, side="right") - 1 if n_frames else np.full(
        grid.size, -1)
    previous = -1
    repeats = 0
    last_new = int(np.argmax(latched)) if n_frames else -1  # VSYNC of the newest frame
    for v, f in enumerate(latched.tolist()):
        if f < 0 or f == previous:
            repeats += f >= 0 and v < last_new  # trailing repeats: the run's spare VSYNCs
            previous = f
            continue
        sel = np.flatnonzero(which == v)
        frame[sel] = f
        plane[sel] = np.arange(sel.size)
        shown[f] = True
        previous = f
    if repeats:
        res.problems.append(("late_flip", f"{repeats} VSYNC(s) repeated the previous frame"))
    lost_frames = np.flatnonzero(~shown)
    dropped = [f for f in lost_frames.tolist() if f < latched.max()]
    if dropped:
        res.problems.append(("dropped_frame", f"frames {dropped[:6]} were never shown"))
    return res
