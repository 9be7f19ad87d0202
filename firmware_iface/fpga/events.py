"""Host-side bookkeeping of the FPGA board's events: per-frame trigger events and run-complete
summaries collected while the driver waits for replies, event-sequence gaps counted, and the
frames a run still lacks (to be read back from the board's trigger log). Pure state, no I/O."""

from __future__ import annotations

from collections.abc import Iterator

from .messages import RunComplete, TriggerEvent, TriggerFlags

__all__ = ["EventLog", "camera_pulses", "missing_ranges"]


class EventLog:
    """Events of the current run (and late ones of earlier runs, which are dropped).

    `on_event(seq, msg)` returns the number of events lost before this one (a gap in the
    board's event sequence numbers)."""

    def __init__(self) -> None:
        self._next_seq: int | None = None
        self._frames: dict[int, dict[int, TriggerEvent]] = {}
        self._completed: dict[int, RunComplete] = {}
        self.current_run = 0

    def start_run(self, run_id: int) -> None:
        """A new run was accepted: forget what belongs to earlier runs."""
        self.current_run = run_id
        for rid in [r for r in self._frames if r < run_id]:
            del self._frames[rid]
        self._completed = {r: c for r, c in self._completed.items() if r >= run_id}

    def on_event(self, seq: int, msg: TriggerEvent | RunComplete) -> int:
        """Record an event received intact; returns how many were lost before it."""
        lost = 0
        if self._next_seq is not None and seq != self._next_seq:
            lost = (seq - self._next_seq) & 0xFFFF
        self._next_seq = (seq + 1) & 0xFFFF
        if msg.run_id < self.current_run:
            return lost  # a late event of an earlier run
        if isinstance(msg, TriggerEvent):
            self._frames.setdefault(msg.run_id, {})[msg.frame_index] = msg
        else:
            self._completed[msg.run_id] = msg
        return lost

    def completed(self, run_id: int) -> RunComplete | None:
        """The run-complete summary of run_id, if it arrived."""
        return self._completed.get(run_id)

    def frames(self, run_id: int) -> dict[int, TriggerEvent]:
        """The frame events of run_id received so far, by frame index (a live dict)."""
        return self._frames.setdefault(run_id, {})


def missing_ranges(events: dict[int, TriggerEvent], n: int) -> Iterator[tuple[int, int]]:
    """Contiguous (first, count) ranges of frame indices 0..n-1 without an event."""
    i = 0
    while i < n:
        if i in events:
            i += 1
            continue
        j = i
        while j + 1 < n and j + 1 not in events:
            j += 1
        yield i, j - i + 1
        i = j + 1


def camera_pulses(events: list[TriggerEvent]) -> int:
    """Camera trigger pulses of a run, from its per-frame events' lifetime counters."""
    if not events:
        return 0
    first = events[0]
    own = (0 if first.flags & TriggerFlags.CAMERA_MISSING else 1) + (
        1 if first.flags & TriggerFlags.CAMERA_EXTRA else 0
    )
    return events[-1].camera_trigger_count - (first.camera_trigger_count - own)
