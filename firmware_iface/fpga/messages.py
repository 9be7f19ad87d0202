"""Message layer of the FPGA timing-board protocol: message types, error codes, board states,
protocol limits, and payload codecs. Pure functions and frozen dataclasses.

Every payload integer is little-endian. Times are microseconds (us) of the board's clock,
which starts at 0 at power-up. See docs/fpga.md for the byte layout of every message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag
from typing import ClassVar

from .errors import (
    ErrorCode,
    FrameCodecError,
    PayloadLengthError,
    PayloadValueError,
    UnknownMessageError,
    UnsupportedVersionError,
)
from .frame import PROTOCOL_VERSION, Frame, decode_frame, encode_frame
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


def _expect_len(payload: bytes, n: int, what: str) -> None:
    if len(payload) != n:
        raise PayloadLengthError(f"{what} payload must be {n} bytes, got {len(payload)}")


def _enum(kind: type[IntEnum], value: int, what: str) -> IntEnum:
    try:
        return kind(value)
    except ValueError:
        raise PayloadValueError(f"{what} 0x{value:02X} is not a defined {kind.__name__}") from None


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
        _expect_len(payload, cls._FMT.size, cls.TYPE.name)
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

# --- reply bodies -------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    """Board status (ACK body of GET_STATUS). Times in microseconds of the board clock.

    run_id: id of the current run, or of the last one (0 before any run).
    frames_done: frames of that run whose triggers have all fired.
    """

    state: BoardState
    frame_period_us: int
    exposure_us: int
    dmd_delay_us: int
    camera_delay_us: int
    run_id: int
    frames_requested: int
    frames_done: int
    device_time_us: int

    _FMT: ClassVar[struct.Struct] = struct.Struct("<IIIIIIIQ")

    def encode_body(self) -> bytes:
        """Body bytes (the state travels in the ACK header)."""
        return self._FMT.pack(
            self.frame_period_us,
            self.exposure_us,
            self.dmd_delay_us,
            self.camera_delay_us,
            self.run_id,
            self.frames_requested,
            self.frames_done,
            self.device_time_us,
        )

    @property
    def timing(self) -> Timing:
        """The board's current frame timing."""
        return Timing(
            self.frame_period_us, self.exposure_us, self.dmd_delay_us, self.camera_delay_us
        )

    @classmethod
    def decode_body(cls, body: bytes, state: BoardState) -> StatusReport:
        """StatusReport from an ACK body and the ACK's state byte."""
        _expect_len(body, cls._FMT.size, "status body")
        return cls(state, *cls._FMT.unpack(body))


@dataclass(frozen=True)
class CounterReport:
    """Board counters since power-up (ACK body of READ_COUNTERS); u32 each, uptime_us u64.

    dmd_triggers / camera_triggers: trigger pulses driven on each output. crc_errors: received
    frames with a bad CRC. frame_errors: other undecodable frames. duplicate_commands:
    re-sent commands answered from the reply cache without executing them again.
    """

    dmd_triggers: int
    camera_triggers: int
    runs_started: int
    runs_completed: int
    runs_aborted: int
    crc_errors: int
    frame_errors: int
    naks_sent: int
    duplicate_commands: int
    events_sent: int
    uptime_us: int

    _FMT: ClassVar[struct.Struct] = struct.Struct("<10IQ")

    def encode_body(self) -> bytes:
        """Body bytes."""
        return self._FMT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def decode_body(cls, body: bytes, state: BoardState) -> CounterReport:
        """CounterReport from an ACK body."""
        _expect_len(body, cls._FMT.size, "counters body")
        return cls(*cls._FMT.unpack(body))


@dataclass(frozen=True)
class RunAccepted:
    """ACK body of RUN: the run's id, frame count and the board time of frame 0's start (us)."""

    run_id: int
    n_frames: int
    start_time_us: int

    _FMT: ClassVar[struct.Struct] = struct.Struct("<IIQ")

    def encode_body(self) -> bytes:
        """Body bytes."""
        return self._FMT.pack(self.run_id, self.n_frames, self.start_time_us)

    @classmethod
    def decode_body(cls, body: bytes, state: BoardState) -> RunAccepted:
        """RunAccepted from an ACK body."""
        _expect_len(body, cls._FMT.size, "run body")
        return cls(*cls._FMT.unpack(body))


_RECORD = struct.Struct("<IIIQQB")


@dataclass(frozen=True)
class TriggerEvent:
    """The triggers of one frame (EVT_FRAME event, or one READ_TRIGGER_LOG record).

    frame_index: 0-based index within run run_id. dmd_trigger_count / camera_trigger_count:
    the board's lifetime trigger counters right after this frame. dmd_time_us /
    camera_time_us: board time of the trigger pulses' rising edges, microseconds;
    camera_time_us is None when the camera trigger did not fire (flags CAMERA_MISSING).
    """

    run_id: int
    frame_index: int
    dmd_trigger_count: int
    camera_trigger_count: int
    dmd_time_us: int
    camera_time_us: int | None
    flags: TriggerFlags = TriggerFlags.NONE

    TYPE: ClassVar[MsgType] = MsgType.EVT_FRAME

    def _record(self) -> bytes:
        cam = NO_TRIGGER_TIME if self.camera_time_us is None else self.camera_time_us
        return _RECORD.pack(
            self.frame_index,
            self.dmd_trigger_count,
            self.camera_trigger_count,
            self.dmd_time_us,
            cam,
            int(self.flags),
        )

    @classmethod
    def _from_record(cls, run_id: int, rec: bytes) -> TriggerEvent:
        idx, dcount, ccount, dtime, ctime, flags = _RECORD.unpack(rec)
        if flags & ~int(TriggerFlags(0x0F)):
            raise PayloadValueError(f"trigger flags 0x{flags:02X} set undefined bits")
        return cls(
            run_id,
            idx,
            dcount,
            ccount,
            dtime,
            None if ctime == NO_TRIGGER_TIME else ctime,
            TriggerFlags(flags),
        )

    def encode_payload(self) -> bytes:
        """EVT_FRAME payload: run_id u32 + record."""
        return struct.pack("<I", self.run_id) + self._record()

    @classmethod
    def decode_payload(cls, payload: bytes) -> TriggerEvent:
        """TriggerEvent from an EVT_FRAME payload."""
        _expect_len(payload, 4 + _RECORD.size, "EVT_FRAME")
        (run_id,) = struct.unpack_from("<I", payload)
        return cls._from_record(run_id, payload[4:])


@dataclass(frozen=True)
class TriggerLog:
    """ACK body of READ_TRIGGER_LOG: run_id u32, count u8, count records."""

    run_id: int
    records: tuple[TriggerEvent, ...]

    def encode_body(self) -> bytes:
        """Body bytes."""
        if len(self.records) > MAX_LOG_RECORDS:
            raise ValueError(f"a trigger log reply holds at most {MAX_LOG_RECORDS} records")
        return struct.pack("<IB", self.run_id, len(self.records)) + b"".join(
            r._record() for r in self.records
        )

    @classmethod
    def decode_body(cls, body: bytes, state: BoardState) -> TriggerLog:
        """TriggerLog from an ACK body."""
        if len(body) < 5:
            raise PayloadLengthError(f"trigger log body needs >= 5 bytes, got {len(body)}")
        run_id, count = struct.unpack_from("<IB", body)
        if count > MAX_LOG_RECORDS:
            raise PayloadValueError(f"trigger log claims {count} > {MAX_LOG_RECORDS} records")
        _expect_len(body, 5 + count * _RECORD.size, "trigger log body")
        size = _RECORD.size
        recs = tuple(
            TriggerEvent._from_record(run_id, body[5 + i * size : 5 + (i + 1) * size])
            for i in range(count)
        )
        return cls(run_id, recs)


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
        command = _enum(MsgType, payload[0], "acknowledged command")
        if command >= 0x80:
            raise PayloadValueError(f"ACK of a non-command message type 0x{command:02X}")
        state = _enum(BoardState, payload[1], "board state")
        kind = _ACK_BODIES.get(command)
        if kind is None:
            _expect_len(payload, 2, f"ACK of {command.name}")
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
        _expect_len(payload, cls._FMT.size, "NAK")
        command, code, state, detail = cls._FMT.unpack(payload)
        return cls(
            command, _enum(ErrorCode, code, "error code"), _enum(BoardState, state, "state"), detail
        )


@dataclass(frozen=True)
class RunComplete:
    """A run ended (EVT_RUN_COMPLETE). Trigger counts are this run's; times in board us."""

    run_id: int
    reason: RunEndReason
    frames_requested: int
    frames_done: int
    dmd_triggers: int
    camera_triggers: int
    start_time_us: int
    end_time_us: int

    TYPE: ClassVar[MsgType] = MsgType.EVT_RUN_COMPLETE
    _FMT: ClassVar[struct.Struct] = struct.Struct("<IBIIIIQQ")

    def encode_payload(self) -> bytes:
        """Payload bytes."""
        return self._FMT.pack(*(int(getattr(self, f.name)) for f in fields(self)))

    @classmethod
    def decode_payload(cls, payload: bytes) -> RunComplete:
        """RunComplete from its payload."""
        _expect_len(payload, cls._FMT.size, "EVT_RUN_COMPLETE")
        f = list(cls._FMT.unpack(payload))
        f[1] = _enum(RunEndReason, f[1], "run end reason")
        return cls(*f)


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
