"""Reply bodies and events of the FPGA timing-board protocol: status, counters, run accepted,
trigger events and the trigger log, run complete (frozen dataclasses with their byte codecs;
little-endian, times in microseconds of the board clock; docs/fpga.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import ClassVar

from . import protocol as p
from .errors import PayloadLengthError, PayloadValueError
from .protocol import MAX_LOG_RECORDS, NO_TRIGGER_TIME
from .timing import Timing

__all__ = [
    "CounterReport",
    "RunAccepted",
    "RunComplete",
    "StatusReport",
    "TriggerEvent",
    "TriggerLog",
]


@dataclass(frozen=True)
class StatusReport:
    """Board status (ACK body of GET_STATUS). Times in microseconds of the board clock.

    run_id: id of the current run, or of the last one (0 before any run).
    frames_done: frames of that run whose triggers have all fired.
    """

    state: p.BoardState
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
    def decode_body(cls, body: bytes, state: p.BoardState) -> StatusReport:
        """StatusReport from an ACK body and the ACK's state byte."""
        p.expect_len(body, cls._FMT.size, "status body")
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
    def decode_body(cls, body: bytes, state: p.BoardState) -> CounterReport:
        """CounterReport from an ACK body."""
        p.expect_len(body, cls._FMT.size, "counters body")
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
    def decode_body(cls, body: bytes, state: p.BoardState) -> RunAccepted:
        """RunAccepted from an ACK body."""
        p.expect_len(body, cls._FMT.size, "run body")
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
    flags: p.TriggerFlags = p.TriggerFlags.NONE

    TYPE: ClassVar[p.MsgType] = p.MsgType.EVT_FRAME

    def record_bytes(self) -> bytes:
        """The 29-byte trigger record (frame event payload after run_id, trigger-log entry)."""
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
    def from_record(cls, run_id: int, rec: bytes) -> TriggerEvent:
        """TriggerEvent of `run_id` from a trigger record (record_bytes)."""
        idx, dcount, ccount, dtime, ctime, flags = _RECORD.unpack(rec)
        if flags & ~int(p.TriggerFlags(0x0F)):
            raise PayloadValueError(f"trigger flags 0x{flags:02X} set undefined bits")
        return cls(
            run_id,
            idx,
            dcount,
            ccount,
            dtime,
            None if ctime == NO_TRIGGER_TIME else ctime,
            p.TriggerFlags(flags),
        )

    def encode_payload(self) -> bytes:
        """EVT_FRAME payload: run_id u32 + record."""
        return struct.pack("<I", self.run_id) + self.record_bytes()

    @classmethod
    def decode_payload(cls, payload: bytes) -> TriggerEvent:
        """TriggerEvent from an EVT_FRAME payload."""
        p.expect_len(payload, 4 + _RECORD.size, "EVT_FRAME")
        (run_id,) = struct.unpack_from("<I", payload)
        return cls.from_record(run_id, payload[4:])


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
            r.record_bytes() for r in self.records
        )

    @classmethod
    def decode_body(cls, body: bytes, state: p.BoardState) -> TriggerLog:
        """TriggerLog from an ACK body."""
        if len(body) < 5:
            raise PayloadLengthError(f"trigger log body needs >= 5 bytes, got {len(body)}")
        run_id, count = struct.unpack_from("<IB", body)
        if count > MAX_LOG_RECORDS:
            raise PayloadValueError(f"trigger log claims {count} > {MAX_LOG_RECORDS} records")
        p.expect_len(body, 5 + count * _RECORD.size, "trigger log body")
        size = _RECORD.size
        recs = tuple(
            TriggerEvent.from_record(run_id, body[5 + i * size : 5 + (i + 1) * size])
            for i in range(count)
        )
        return cls(run_id, recs)


@dataclass(frozen=True)
class RunComplete:
    """A run ended (EVT_RUN_COMPLETE). Trigger counts are this run's; times in board us."""

    run_id: int
    reason: p.RunEndReason
    frames_requested: int
    frames_done: int
    dmd_triggers: int
    camera_triggers: int
    start_time_us: int
    end_time_us: int

    TYPE: ClassVar[p.MsgType] = p.MsgType.EVT_RUN_COMPLETE
    _FMT: ClassVar[struct.Struct] = struct.Struct("<IBIIIIQQ")

    def encode_payload(self) -> bytes:
        """Payload bytes."""
        return self._FMT.pack(*(int(getattr(self, f.name)) for f in fields(self)))

    @classmethod
    def decode_payload(cls, payload: bytes) -> RunComplete:
        """RunComplete from its payload."""
        p.expect_len(payload, cls._FMT.size, "EVT_RUN_COMPLETE")
        f = list(cls._FMT.unpack(payload))
        f[1] = p.to_enum(p.RunEndReason, f[1], "run end reason")
        return cls(*f)
