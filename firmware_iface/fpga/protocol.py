"""Vocabulary of the FPGA timing-board protocol: message types, board states, run end reasons,
trigger flags, protocol limits, and the two checks every payload codec uses (docs/fpga.md)."""

from __future__ import annotations

from enum import IntEnum, IntFlag

from .errors import PayloadLengthError, PayloadValueError

__all__ = [
    "MAX_LOG_RECORDS",
    "MAX_RUN_FRAMES",
    "NO_TRIGGER_TIME",
    "TRIGGER_LOG_DEPTH",
    "BoardState",
    "MsgType",
    "RunEndReason",
    "TriggerFlags",
    "expect_len",
    "to_enum",
]


class MsgType(IntEnum):
    """Message-type byte. 0x01-0x7F host->board commands, 0x80-0xBF replies, 0xC0-0xFF events."""

    SET_FRAME_PERIOD = 0x01
    SET_EXPOSURE = 0x02
    SET_TRIGGER_DELAYS = 0x03
    ARM = 0x04
    RUN = 0x05
    STOP = 0x06
    GET_STATUS = 0x07
    READ_COUNTERS = 0x08
    READ_TRIGGER_LOG = 0x09
    ACK = 0x80
    NAK = 0x81
    EVT_FRAME = 0xC0
    EVT_RUN_COMPLETE = 0xC1


class BoardState(IntEnum):
    """Board state machine: IDLE --ARM--> ARMED --RUN--> RUNNING --(done|STOP)--> IDLE."""

    IDLE = 0
    ARMED = 1
    RUNNING = 2


class RunEndReason(IntEnum):
    """Why a run ended (RunComplete.reason)."""

    COMPLETED = 0
    STOPPED = 1  # STOP command from the host
    LINK_LOST = 2  # the host link dropped; the board stops on its own


class TriggerFlags(IntFlag):
    """Per-frame anomaly flags of a TriggerEvent."""

    NONE = 0
    CAMERA_MISSING = 0x01  # this frame's camera trigger did not fire
    CAMERA_EXTRA = 0x02  # a spurious extra camera trigger fired after this frame's
    CAMERA_LAGGED = 0x04  # this frame's camera trigger fired one frame period late
    VSYNC = 0x08  # not an anomaly: the VSYNC input saw an edge at this frame (video-pattern runs)


# Protocol limits beyond the timing ones (timing.py), the board refuses others.
MAX_RUN_FRAMES = 16_777_215
TRIGGER_LOG_DEPTH = 65_536  # frames of the current/last run kept for READ_TRIGGER_LOG
MAX_LOG_RECORDS = 8  # records per READ_TRIGGER_LOG reply
NO_TRIGGER_TIME = 0xFFFF_FFFF_FFFF_FFFF  # camera_time_us on the wire when the trigger is missing


def expect_len(payload: bytes, n: int, what: str) -> None:
    """PayloadLengthError unless the payload has n bytes."""
    if len(payload) != n:
        raise PayloadLengthError(f"{what} payload must be {n} bytes, got {len(payload)}")


def to_enum(kind: type[IntEnum], value: int, what: str) -> IntEnum:
    """The enum member of a wire value; PayloadValueError for an undefined one."""
    try:
        return kind(value)
    except ValueError:
        raise PayloadValueError(f"{what} 0x{value:02X} is not a defined {kind.__name__}") from None
