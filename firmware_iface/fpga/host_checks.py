"""Host-side checks of the FPGA driver (before anything is sent) and the advice a NAK gets."""

from __future__ import annotations

import numbers

from ..errors import FPGAErrorCode as ErrorCode
from ..errors import InputError
from .timing import Timing

__all__ = ["NAK_HINTS", "check_timing", "check_us", "nak_hint"]

NAK_HINTS = {
    ErrorCode.BAD_CRC: "the command was corrupted on the line",
    ErrorCode.BAD_FRAME: "the command was corrupted on the line",
    ErrorCode.UNKNOWN_COMMAND: "host software and board firmware disagree on the protocol; "
    "update one of them",
    ErrorCode.BAD_LENGTH: "host software and board firmware disagree on the protocol; "
    "update one of them",
    ErrorCode.BAD_VERSION: "the board speaks another protocol version; update the host "
    "software or the firmware",
    ErrorCode.OUT_OF_RANGE: "a value is outside the board's range (limit {detail})",
    ErrorCode.WRONG_STATE: "not allowed in state {state}: RUN needs ARMED (call arm()), "
    "settings and ARM need IDLE (call stop())",
    ErrorCode.BUSY: "a run is in progress: wait_run_complete() or stop() first",
    ErrorCode.INVALID_CONFIG: "the timing does not fit the frame period ({detail} us): "
    "need dmd delay < period and camera delay + exposure <= period",
    ErrorCode.INTERNAL_FAULT: "the board could not start the run; check the board (or the "
    "emulator rig's on_run callback)",
}


def nak_hint(code: ErrorCode, detail: int, state_name: str) -> str:
    """What to do about a NAK with this code."""
    return NAK_HINTS.get(code, "see docs/fpga.md").format(detail=detail, state=state_name)


def check_us(name: str, value: object, lo: int, hi: int) -> int:
    """A whole number of microseconds in lo..hi; InputError otherwise (never rounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(
            f"{name} must be an integer number of microseconds, got {value!r} "
            f"({type(value).__name__}); round it explicitly"
        )
    v = int(value)
    if not lo <= v <= hi:
        raise InputError(f"{name}={v} us is outside the board's range {lo}..{hi} us")
    return v


def check_timing(t: Timing, hint: str) -> None:
    """InputError (with `hint`) if the board would refuse to arm with this timing."""
    problem = t.problem()
    if problem is not None:
        raise InputError(f"{problem}; {hint}")
