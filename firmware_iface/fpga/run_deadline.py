"""When the host gives up waiting for a run to end: `RunDeadline`, a limit on the board's clock.

A run's time limit is a span of board time from the run's start (`RunAccepted.start_time_us`):
the board's clock is the one that says whether a run is late. The host's wall clock only says
when to look. A host that was descheduled (a loaded machine) or that spent the time itself (an
emulator rendering the run's frames, a JIT compilation) can find a wall-clock limit passed while
the board still has time left, or has finished with the run's events already queued; giving up
then would stop a healthy run. So when the wall-clock limit passes, the driver asks the board
(GET_STATUS, which also reads the queued events) and gives up only if the board's clock is past
the limit, or did not advance since the last look while the board says it is running (a board
whose clock has stopped never ends its run).

On hardware the two clocks run together, so a stalled run is detected as before, at most one
look later. On an emulator whose clock is simulated (it advances only as the host reads), the
outcome depends on the simulated clock alone, however slow the host is. Pure state, no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RunDeadline"]


class RunDeadline:
    """The time limit of one run: `timeout_s` of board time from `start_us` (board us).

    look_s: the shortest wall-clock wait between two looks at the board (s; the driver's reply
    timeout). wall: the host's clock in seconds (default time.monotonic)."""

    def __init__(self, start_us: int, timeout_s: float, look_s: float,
                 wall: Callable[[], float] = time.monotonic) -> None:
        self.start_us = int(start_us)
        self.limit_us = self.start_us + math.ceil(timeout_s * 1e6)
        self.board_us = self.start_us  # the latest board time seen
        self._look_s = look_s
        self._wall = wall
        self._look_at = wall() + timeout_s
        self._looked_us: int | None = None  # board time at the last look

    def saw(self, board_us: int) -> None:
        """A board time the host has seen (a status report, a frame's trigger time), us."""
        self.board_us = max(self.board_us, int(board_us))

    def late(self) -> str | None:
        """Why the run is late on the board's clock, or None while it is within its limit."""
        if self.board_us <= self.limit_us:
            return None
        elapsed_s = (self.board_us - self.start_us) / 1e6
        limit_s = (self.limit_us - self.start_us) / 1e6
        return f"{elapsed_s:.3f} s of board time since its start, limit {limit_s:.3f} s"

    def look_due(self) -> bool:
        """True when the wall-clock wait is over: time to ask the board (then `looked`)."""
        return self._wall() >= self._look_at

    def next_look_s(self) -> float:
        """Host monotonic time of the next look, s."""
        return self._look_at

    def looked(self, board_us: int) -> str | None:
        """The board, asked at a look, reported board_us while still running: why to give up
        (late on its clock, or its clock stopped since the last look), or None, and the next
        look is set to when the board's remaining time is up (at least look_s from now)."""
        self.saw(board_us)
        why = self.late()
        if why is not None:
            return why
        if self._looked_us is not None and self.board_us <= self._looked_us:
            return f"the board's clock stayed at {self.board_us} us between two looks"
        self._looked_us = self.board_us
        left_s = (self.limit_us - self.board_us) / 1e6
        self._look_at = self._wall() + max(left_s, self._look_s)
        return None
