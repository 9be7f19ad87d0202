"""Which pattern did each camera frame of a video-pattern run see? Pure functions.

In video-pattern mode the controller latches the newest complete video frame at each VSYNC and
shows its 24 bit planes, one per pattern trigger, until the next VSYNC. The timing board counts
VSYNC edges and pattern triggers (one camera exposure per trigger) and timestamps both; the host
knows when it flipped each frame. From these three records `attribute` rebuilds the run:

- a VSYNC edge the counter missed (a gap of k periods between counted edges, with 24 k pattern
  triggers in it, or triggers more than a period after the last counted edge) is put back on
  the VSYNC grid: **lost VSYNC**, recovered. The first edge of a run is never put back (triggers
  before the first counted edge fail the run, which is run again);
- VSYNC v shows the last frame flipped before it (with a display latency of L VSYNCs: before
  edge v - L). A frame flipped after its VSYNC (a **late flip**) leaves the previous frame on
  the DMD for one more VSYNC: that VSYNC's 24 exposures show patterns already captured and are
  not attributed;
- flip times are known to the board clock only within an interval (FlipTimes: the present
  call's span plus the host-to-board clock error): a VSYNC edge inside a frame's interval may
  show that frame or the one before (**uncertain flip**) and is not attributed;
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


@dataclass(frozen=True)
class FlipTimes:
    """When the host flipped each frame of a run, board clock (us): frame f became current on
    the video output at the first VSYNC edge after some instant in [earliest_us[f],
    latest_us[f]] (the present call's span widened by the host-to-board clock error)."""

    earliest_us: np.ndarray
    latest_us: np.ndarray

    def __post_init__(self) -> None:
        lo = np.asarray(self.earliest_us, np.float64)
        hi = np.asarray(self.latest_us, np.float64)
        if lo.shape != hi.shape or lo.ndim != 1 or np.any(hi < lo):
            raise InputError("flip times: earliest_us and latest_us must be (n,) with "
                             "earliest <= latest")
        if np.any(np.diff(lo) < 0) or np.any(np.diff(hi) < 0):
            raise InputError("flip times must not decrease (frames are flipped in order)")
        object.__setattr__(self, "earliest_us", lo)
        object.__setattr__(self, "latest_us", hi)


AMBIGUOUS = -2
"""latched_frames() value of a VSYNC that may show either of two frames."""


@dataclass
class Attribution:
    """Per pattern trigger of a run: the host frame (-1: not attributed) and bit plane shown.

    shown: (n_frames,) bool, frames whose 24 planes were all captured once. problems: tags
    ("late_flip", "dropped_frame", "lost_vsync", "uncertain_flip", "trigger_count") with
    details. fatal: the run
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
    flips: FlipTimes | np.ndarray,
    count: VsyncCount,
    period_us: float,
    patterns_per_frame: int = PATTERNS_PER_FRAME,
    latency_vsyncs: int = 0,
) -> Attribution:
    """Attribute every pattern trigger of a run (see the module docstring).

    flips: when the host flipped each frame of the run, board clock (FlipTimes, or an (n,)
    array of exact times). period_us: the VSYNC period. latency_vsyncs: VSYNC edges between a
    frame becoming current on the video output and its bit planes being shown (0 in the
    emulated stack; measured on a bench, docs/dlpc900.md)."""
    if not isinstance(flips, FlipTimes):
        exact = np.asarray(flips, np.float64)
        flips = FlipTimes(exact, exact)
    trig = np.asarray(count.trigger_times_us, np.float64)
    n_frames = flips.earliest_us.size
    res = Attribution(np.full(trig.size, -1, np.int64), np.full(trig.size, -1, np.int64),
                      np.zeros(n_frames, bool))
    grid, which = _grid_and_intervals(count, trig, period_us, patterns_per_frame, res)
    if grid is None:
        return res
    latched = latched_frames(flips, grid - latency_vsyncs * period_us)
    _assign(res, latched, which)
    return res


def latched_frames(flips: FlipTimes, edges_us: np.ndarray) -> np.ndarray:
    """Per VSYNC edge: the newest frame certainly flipped before it (-1: none of this run),
    or AMBIGUOUS when a later frame may also have been flipped before it."""
    certain = np.searchsorted(flips.latest_us, edges_us, side="left") - 1
    possible = np.searchsorted(flips.earliest_us, edges_us, side="left") - 1
    return np.where(certain == possible, certain, AMBIGUOUS)


def _grid_and_intervals(
    count: VsyncCount, trig: np.ndarray, period_us: float, per_frame: int, res: Attribution
) -> tuple[np.ndarray | None, np.ndarray]:
    """The VSYNC grid (missed edges put back) and the interval of every trigger; None (and
    res.fatal) when the trigger counts do not fit the grid."""
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
        return None, trig
    edges = np.append(grid, grid[-1] + period_us)  # the last interval runs a period on
    which = np.searchsorted(edges, trig, side="right") - 1
    if np.any(which < 0) or np.any(which >= grid.size):
        res.problems.append(("trigger_count", "pattern triggers outside the VSYNC grid"))
        res.fatal = True
        return None, which
    per = np.bincount(which, minlength=grid.size)
    bad = np.flatnonzero(per != per_frame)
    if bad.size:
        res.problems.append(
            ("trigger_count", f"VSYNC intervals {bad[:6].tolist()} hold {per[bad[:6]].tolist()} "
                              f"pattern triggers, not {per_frame}")
        )
        res.fatal = True
        return None, which
    return grid, which


def _assign(res: Attribution, latched: np.ndarray, which: np.ndarray) -> None:
    """Attribute each VSYNC interval showing a frame for the first time; tag repeats (late
    flips), ambiguous VSYNCs and frames overwritten before any VSYNC (dropped)."""
    last_new = int(np.argmax(latched)) if latched.size else -1  # VSYNC of the newest frame
    previous, repeats, ambiguous = -1, 0, 0
    for v, f in enumerate(latched.tolist()):
        if f == AMBIGUOUS:
            ambiguous += 1
        elif f >= 0 and not res.shown[f]:
            sel = np.flatnonzero(which == v)
            res.frame[sel] = f
            res.plane[sel] = np.arange(sel.size)
            res.shown[f] = True
        elif f >= 0 and f == previous and v < last_new:
            repeats += 1  # trailing repeats are the run's spare VSYNCs
        previous = f
    if repeats:
        res.problems.append(("late_flip", f"{repeats} VSYNC(s) repeated the previous frame"))
    if ambiguous:
        res.problems.append(("uncertain_flip", f"{ambiguous} VSYNC(s) may show either of two "
                                               "frames (flip time within the clock error)"))
    newest = int(latched.max()) if latched.size else -1
    dropped = [f for f in np.flatnonzero(~res.shown).tolist() if f < newest]
    if dropped:
        res.problems.append(("dropped_frame", f"frames {dropped[:6]} were never shown"))
