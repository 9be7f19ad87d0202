"""The bench's video output for the video-pattern path: a real window (VideoWindow, SDL2 through
pygame) whose flips are timed on the FPGA timing board's clock.

The board timestamps VSYNC edges and pattern triggers on its own clock; the host knows when it
called `present()` on its monotonic clock. `BoardClock` maps one to the other from GET_STATUS
round trips (the board's `device_time_us` lies between the host's send and receive times: the
tightest of a few round trips gives the offset, half its round trip the error bound, plus a
drift allowance that grows until the next sync). `WindowVideoOutput` implements the video output
protocol of video_path.py on top of it: each flip is reported as the interval of board times
in which the frame became current, widened by the clock error, so a flip near a VSYNC edge is
reported as uncertain (video_sync: never attributed) instead of being guessed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import ConfigurationError, InputError

__all__ = ["BoardClock", "WindowVideoOutput"]


class BoardClock:
    """Host time.monotonic_ns() -> board microseconds, from round trips to the board.

    probes: round trips per sync (the tightest is kept). drift_ppm: allowed rate difference
    of the two clocks (crystal oscillators: tens of ppm), added to the error bound per
    microsecond since the sync. host_ns: the host clock (default time.monotonic_ns).
    """

    def __init__(self, probes: int = 5, drift_ppm: float = 100.0,
                 host_ns: Callable[[], int] = time.monotonic_ns) -> None:
        if probes < 1 or drift_ppm < 0:
            raise InputError(f"probes must be >= 1 and drift_ppm >= 0, got {probes}, {drift_ppm}")
        self.probes, self.drift_ppm, self._host_ns = int(probes), float(drift_ppm), host_ns
        self.offset_us: float | None = None  # board_us - host_us at the sync
        self.round_trip_us = float("inf")  # of the kept probe
        self._synced_us = 0.0

    def sync(self, read_board_us: Callable[[], float]) -> None:
        """Measure the offset: `probes` calls of read_board_us (one round trip each)."""
        best = None
        for _ in range(self.probes):
            t0 = self._host_ns()
            board = float(read_board_us())
            t1 = self._host_ns()
            rtt = (t1 - t0) / 1000
            if best is None or rtt < best[0]:
                best = (rtt, board - (t0 + t1) / 2000)
        self.round_trip_us, self.offset_us = best
        self._synced_us = self._host_ns() / 1000

    def _offset(self) -> float:
        if self.offset_us is None:
            raise ConfigurationError("the board clock has not been synchronised: call sync()")
        return self.offset_us

    def error_us(self, host_ns: int) -> float:
        """Bound on |board time estimate - board time| at host time host_ns, us."""
        age = abs(host_ns / 1000 - self._synced_us)
        return self.round_trip_us / 2 + self.drift_ppm * 1e-6 * age + 1.0  # 1: board us ticks

    def to_board_us(self, host_ns: int) -> float:
        """Board time at host time host_ns (estimate), us."""
        return host_ns / 1000 + self._offset()

    def to_host_ns(self, board_us: float) -> int:
        """Host monotonic time at board time board_us (estimate), ns."""
        return round((board_us - self._offset()) * 1000)

    def now_us(self) -> float:
        """Board time now (estimate), us."""
        return self.to_board_us(self._host_ns())


class WindowVideoOutput:
    """A VideoWindow as the video output of OPUHardware's video path, flips on the board clock.

    window: an open firmware_iface.dlpc900.window.VideoWindow. clock: its BoardClock (default:
    a new one; OPUHardware attaches the FPGA board, `attach_board`). allow_unlocked: accept a
    window without vsync-locked flips. Refused by default: an unlocked flip replaces the frame
    in the middle of its scan-out, so the controller would latch a torn frame (half old, half
    new) that no count can detect; a virtual X server (tests) has no scan-out and passes True.
    sleep: how wait_until_us waits (default time.sleep).

    Flip intervals: the frame becomes current at the first VSYNC after some instant of the
    present() call (it blits, uploads and swaps; which instant depends on the driver), so a flip
    is reported as [call - e, return + e], e = the clock's error bound. A present that blocks
    until the VSYNC it swaps at returns after that edge: every flip is then uncertain and the
    path raises FrameIntegrityError rather than guess (docs/dlpc900.md, "Bench checks").
    """

    def __init__(self, window, clock: BoardClock | None = None, allow_unlocked: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not getattr(window, "vsync", False) and not allow_unlocked:
            raise ConfigurationError(
                "the video window flips without vsync lock (its video driver cannot lock): the "
                "DLPC900 would latch torn frames. Use a display driver with vsync (X11/KMS on "
                "the controller's output, no compositor), or pass allow_unlocked=True only for "
                "a virtual display"
            )
        self.window = window
        self.clock = clock if clock is not None else BoardClock()
        self._read_board: Callable[[], float] | None = None
        self._sleep = sleep
        self._host_ns = time.monotonic_ns

    def attach_board(self, read_board_us: Callable[[], float]) -> None:
        """Where the board's time is read (OPUHardware: the FPGA's GET_STATUS); syncs now."""
        self._read_board = read_board_us
        self.sync()

    # ---- the video output protocol (video_path.py) ------------------------------------------
    def open(self) -> None:
        """The window is already open (VideoWindow opens on construction)."""

    def close(self) -> None:
        """Close the window (the controller loses its video source)."""
        self.window.close()

    def sync(self) -> None:
        """Re-measure the board clock (before each run; a few GET_STATUS round trips)."""
        if self._read_board is None:
            raise ConfigurationError(
                "the window output has no timing board to time its flips: OPUHardware attaches "
                "it on open (attach_board)"
            )
        self.clock.sync(self._read_board)

    def board_now_us(self) -> float:
        """Board time now (estimate), us."""
        return self.clock.now_us()

    def wait_until_us(self, t_us: float) -> None:
        """Sleep until board time t_us (estimate; returns at once if it has passed)."""
        dt_ns = self.clock.to_host_ns(t_us) - self._host_ns()
        if dt_ns > 0:
            self._sleep(dt_ns / 1e9)

    def present(self, frame) -> tuple[float, float]:
        """Flip one RGB888 frame; (earliest, latest) board time at which it became current."""
        t_call = self._host_ns()
        t_ret = self.window.present(frame)
        err = self.clock.error_us(t_ret)
        return self.clock.to_board_us(t_call) - err, self.clock.to_board_us(t_ret) + err
