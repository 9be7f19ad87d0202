"""Message layer of the FPGA timing-board protocol: commands, ACK/NAK, and the whole message
codec (encode_message, decode_message). The vocabulary (types, states, flags, limits) is in
protocol.py, reply bodies and events in bodies.py, timing in timing.py; every name is
importable from here. Pure functions and frozen dataclasses.

Every payload integer is little-endian. Times are microseconds (us) of the board's clock,
which starts at 0 at power-up. See docs/fpga.md for the byte layout of every message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import ClassVar

from .bodies import CounterReport, RunAccepted, RunComplete, StatusReport, TriggerEvent, TriggerLog
from .errors import (
    ErrorCode,
    FrameCodecError,
    PayloadLengthError,
    PayloadValueError,
    UnknownMessageError,
    UnsupportedVersionError,
)
from .frame import PROTOCOL_VERSION, Frame, decode_frame, encode_frame
from .protocol import (
    MAX_LOG_RECORDS,
    MAX_RUN_FRAMES,
    NO_TRIGGER_TIME,
    TRIGGER_LOG_DEPTH,
    BoardState,
    MsgType,
    RunEndReason,
    TriggerFlags,
    expect_len,
    to_enum,
)
from .timing import (
    DEFAULT_TIMING,
    MAX_EXPOSURE_US,
    MAX_FRAME_PERIOD_US,
    MAX_TRIGGER_DELAY_US,
    MIN_EXPOSURE_US,
    MIN_FRAME_PERIOD_US,
    Timing,
)

__all__ = [
    "MsgType",
    "ErrorCode",
    "BoardState",
    "RunEndReason",
    "TriggerFlags",
    "MIN_FRAME_PERIOD_US",
    "MAX_FRAME_PERIOD_US",
    "MIN_EXPOSURE_US",
    "MAX_EXPOSURE_US",
    "MAX_TRIGGER_DELAY_US",
    "MAX_RUN_FRAMES",
    "TRIGGER_LOG_DEPTH",
    "MAX_LOG_RECORDS",
    "NO_TRIGGER_TIME",
    "DEFAULT_TIMING",
    "Timing",
    "SetFramePeriod",
    "SetExposure",
    "SetTriggerDelays",
    "Arm",
    "Run",
    "Stop",
    "GetStatus",
    "ReadCounters",
    "ReadTriggerLog",
    "StatusReport",
    "CounterReport",
    "RunAccepted",
    "TriggerEvent",
    "TriggerLog",
    "Ack",
    "Nak",
    "RunComplete",
    "Command",
    "Message",
    "encode_message",
    "decode_message",
    "message_from_frame",
]


class _Simple:
    """A message whose payload is a fixed struct of its dataclass fields, in order."""

    TYPE: ClassVar[MsgType]
    _FMT: ClassVar[struct.Struct]

    def encode_payload(self) -> bytes:
        """Payload bytes of this message."""
        return self._FMT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def decode_payload(cls, payload: bytes):
        """Message from its payload bytes; PayloadLengthError if the size is wrong."""
        expect_len(payload, cls._FMT.size, cls.TYPE.name)
        return cls(*cls._FMT.unpack(payload))


# --- commands (host -> board) -------------------------------------------------------------


@dataclass(frozen=True)
class SetFramePeriod(_Simple):
    """Set the frame period, microseconds (u32)."""

    TYPE: ClassVar[MsgType] = MsgType.SET_FRAME_PERIOD
    _FMT: ClassVar[struct.Struct] = struct.Struct("<I")
    period_us: int


@dataclass(frozen=True)
class SetExposure(_Simple):
    """Set the camera exposure (trigger pulse width), microseconds (u32)."""

    TYPE: ClassVar[MsgType] = MsgType.SET_EXPOSURE
    _FMT: ClassVar[struct.Struct] = struct.Struct("<I")
    exposure_us: int


@dataclass(frozen=True)
class SetTriggerDelays(_Simple):
    """Set the DMD and camera trigger delays from the frame start, microseconds (u32 each)."""

    TYPE: ClassVar[MsgType] = MsgType.SET_TRIGGER_DELAYS
    _FMT: ClassVar[struct.Struct] = struct.Struct("<II")
    dmd_delay_us: int
    camera_delay_us: int


@dataclass(frozen=True)
class Arm(_Simple):
    """Check the timing and arm the board for one run."""

    TYPE: ClassVar[MsgType] = MsgType.ARM
    _FMT: ClassVar[struct.Struct] = struct.Struct("<")


@dataclass(frozen=True)
class Run(_Simple):
    """Start a run of n_frames frames (u32) on an armed board."""

    TYPE: ClassVar[MsgType] = MsgType.RUN
    _FMT: ClassVar[struct.Struct] = struct.Struct("<I")
    n_frames: int


@dataclass(frozen=True)
class Stop(_Simple):
    """Abort a run / disarm; a no-op when idle."""

    TYPE: ClassVar[MsgType] = MsgType.STOP
    _FMT: ClassVar[struct.Struct] = struct.Struct("<")


@dataclass(frozen=True)
class GetStatus(_Simple):
    """Ask for a StatusReport."""

    TYPE: ClassVar[MsgType] = MsgType.GET_STATUS
    _FMT: ClassVar[struct.Struct] = struct.Struct("<")


@dataclass(frozen=True)
class ReadCounters(_Simple):
    """Ask for a CounterReport."""

    TYPE: ClassVar[MsgType] = MsgType.READ_COUNTERS
    _FMT: ClassVar[struct.Struct] = struct.Struct("<")


@dataclass(frozen=True)
class ReadTriggerLog(_Simple):
    """Ask for the trigger records of frames first_frame .. first_frame+count-1 (u32, u8)
    of the current or last run."""

    TYPE: ClassVar[MsgType] = MsgType.READ_TRIGGER_LOG
    _FMT: ClassVar[struct.Struct] = struct.Struct("<IB")
    first_frame: int
    count: int


Command = (
    SetFramePeriod
    | SetExposure
    | SetTriggerDelays
    | Arm
    | Run
    | Stop
    | GetStatus
    | ReadCounters
    | ReadTriggerLog
)

_ACK_BODIES = {
    MsgType.GET_STATUS: StatusReport,
    MsgType.READ_COUNTERS: CounterReport,
    MsgType.RUN: RunAccepted,
    MsgType.READ_TRIGGER_LOG: TriggerLog,
}

# --- replies and events (board -> host) ---------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """Command accepted and executed. Payload: command type u8, state after it u8, body."""

    command: MsgType
    state: BoardState
    body: StatusReport | CounterReport | RunAccepted | TriggerLog | None = None

    TYPE: ClassVar[MsgType] = MsgType.ACK

    def encode_payload(self) -> bytes:
        """Payload bytes."""
        body = b"" if self.body is None else self.body.encode_body()
        return struct.pack("<BB", int(self.command), int(self.state)) + body

    @classmethod
    def decode_payload(cls, payload: bytes) -> Ack:
        """Ack from its payload."""
        if len(payload) < 2:
            raise PayloadLengthError(f"ACK payload needs >= 2 bytes, got {len(payload)}")
        command = to_enum(MsgType, payload[0], "acknowledged command")
        if command >= 0x80:
            raise PayloadValueError(f"ACK of a non-command message type 0x{command:02X}")
        state = to_enum(BoardState, payload[1], "board state")
        kind = _ACK_BODIES.get(command)
        if kind is None:
            expect_len(payload, 2, f"ACK of {command.name}")
            return cls(command, state)
        return cls(command, state, kind.decode_body(payload[2:], state))


@dataclass(frozen=True)
class Nak:
    """Command refused, not executed. Payload: command type u8 (as received), error code u8,
    state u8, detail u32 (code-specific, e.g. the violated limit)."""

    command: int
    code: ErrorCode
    state: BoardState
    detail: int = 0

    TYPE: ClassVar[MsgType] = MsgType.NAK
    _FMT: ClassVar[struct.Struct] = struct.Struct("<BBBI")

    def encode_payload(self) -> bytes:
        """Payload bytes."""
        return self._FMT.pack(self.command, int(self.code), int(self.state), self.detail)

    @classmethod
    def decode_payload(cls, payload: bytes) -> Nak:
        """Nak from its payload."""
        expect_len(payload, cls._FMT.size, "NAK")
        command, code, state, detail = cls._FMT.unpack(payload)
        return cls(
            command,
            to_enum(ErrorCode, code, "error code"),
            to_enum(BoardState, state, "state"),
            detail,
        )


Message = Command | Ack | Nak | TriggerEvent | RunComplete

_BY_TYPE: dict[int, type] = {
    cls.TYPE: cls
    for cls in (
        SetFramePeriod,
        SetExposure,
        SetTriggerDelays,
        Arm,
        Run,
        Stop,
        GetStatus,
        ReadCounters,
        ReadTriggerLog,
        Ack,
        Nak,
        TriggerEvent,
        RunComplete,
    )
}


def encode_message(msg: Message, seq: int) -> bytes:
    """Wire bytes (COBS frame + 0x00) of `msg` with sequence number `seq` (0..65535)."""
    return encode_frame(int(msg.TYPE), seq, msg.encode_payload())


def message_from_frame(frame: Frame) -> Message:
    """Typed message of a decoded frame. Raises UnsupportedVersionError, UnknownMessageError,
    PayloadLengthError or PayloadValueError (all FrameCodecError, carrying seq and type)."""
    try:
        if frame.version != PROTOCOL_VERSION:
            raise UnsupportedVersionError(
                f"protocol version {frame.version} is not supported (this side speaks "
                f"{PROTOCOL_VERSION}); update the host software or the board firmware"
            )
        kind = _BY_TYPE.get(frame.msg_type)
        if kind is None:
            raise UnknownMessageError(f"unknown message type 0x{frame.msg_type:02X}")
        return kind.decode_payload(frame.payload)
    except FrameCodecError as e:
        e.seq, e.msg_type = frame.seq, frame.msg_type
        raise


def decode_message(chunk: bytes) -> tuple[int, Message]:
    """(sequence number, typed message) of the bytes between two delimiters.

    Raises only FrameCodecError subclasses, whatever the input bytes.
    """
    frame = decode_frame(chunk)
    return frame.seq, message_from_frame(frame)
