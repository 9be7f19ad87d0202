"""FPGA timing-board codecs: COBS, CRC, frame layer, messages (golden vectors and properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface import errors as E
from firmware_iface.errors import CodecError
from firmware_iface.fpga.bodies import (
    CounterReport,
    RunAccepted,
    RunComplete,
    StatusReport,
    TriggerEvent,
    TriggerLog,
)
from firmware_iface.fpga.cobs import cobs_decode, cobs_encode, cobs_max_encoded_len
from firmware_iface.fpga.crc import CRC16_CHECK, crc16_ccitt_false, crc16_ccitt_false_table
from firmware_iface.fpga.frame import (
    MAX_PAYLOAD,
    MAX_WIRE_FRAME,
    decode_frame,
    encode_frame,
    split_stream,
)
from firmware_iface.fpga.messages import (
    Ack,
    Arm,
    ErrorCode,
    GetStatus,
    Nak,
    ReadCounters,
    ReadTriggerLog,
    Run,
    SetExposure,
    SetFramePeriod,
    SetTriggerDelays,
    Stop,
    decode_message,
    encode_message,
)
from firmware_iface.fpga.protocol import BoardState, MsgType, RunEndReason, TriggerFlags
from firmware_iface.fpga.timing import Timing

PROPS = settings(max_examples=150, deadline=None)

# --- COBS ----------------------------------------------------------------------------------

_R = bytes(range(1, 255))  # 01 .. FE
COBS_GOLDEN = [  # Wikipedia "Consistent Overhead Byte Stuffing", encoding examples 1-11
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (_R, b"\xff" + _R),
    (b"\x00" + _R, b"\x01\xff" + _R),
    (_R + b"\xff", b"\xff" + _R + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("raw,encoded", COBS_GOLDEN)
def test_cobs_golden_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_empty_input() -> None:
    assert cobs_encode(b"") == b"\x01"
    assert cobs_decode(b"\x01") == b""


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00", b"\x03\x11", b"\x02\x00", b"\x05\x11\x22\x00\x44", b"\x01\x00\x01"],
)
def test_cobs_decode_rejects_invalid(bad: bytes) -> None:
    with pytest.raises(E.CobsDecodeError):
        cobs_decode(bad)


@PROPS
@given(st.binary(max_size=800))
def test_cobs_round_trip_and_no_zero(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs_max_encoded_len(len(data))
    assert cobs_decode(enc) == data


@PROPS
@given(st.binary(max_size=300))
def test_cobs_decode_any_bytes_is_bytes_or_typed_error(data: bytes) -> None:
    try:
        out = cobs_decode(data)
    except E.CobsDecodeError:
        return
    assert cobs_decode(cobs_encode(out)) == out


# --- CRC -----------------------------------------------------------------------------------


def _crc_bitwise(data: bytes) -> int:
    """Independent bit-at-a-time CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for b in data:
        for i in range(7, -1, -1):
            top = ((crc >> 15) & 1) ^ ((b >> i) & 1)
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return crc


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1 == CRC16_CHECK
    assert crc16_ccitt_false_table(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


@PROPS
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_crc_matches_bitwise_and_continues(a: bytes, b: bytes) -> None:
    assert crc16_ccitt_false(a + b) == _crc_bitwise(a + b) == crc16_ccitt_false_table(a + b)
    assert crc16_ccitt_false(b, crc16_ccitt_false(a)) == crc16_ccitt_false(a + b)


# --- frame layer ---------------------------------------------------------------------------

# docs/fpga.md, "Worked example": SET_FRAME_PERIOD 1000 us, sequence number 7
GOLDEN_RAW = bytes.fromhex("01 01 0700 0400 e8030000 9ffc")
GOLDEN_WIRE = bytes.fromhex("04 010107 02 04 03 e803 01 03 9ffc 00")


def test_golden_frame() -> None:
    assert _crc_bitwise(GOLDEN_RAW[:-2]) == 0xFC9F
    assert cobs_encode(GOLDEN_RAW) + b"\x00" == GOLDEN_WIRE
    assert encode_message(SetFramePeriod(1000), 7) == GOLDEN_WIRE
    assert decode_message(GOLDEN_WIRE[:-1]) == (7, SetFramePeriod(1000))


def test_golden_nak() -> None:
    # NAK of RUN (0x05), WRONG_STATE (0x06), state IDLE, detail 0, seq 0x1234
    wire = encode_message(Nak(MsgType.RUN, ErrorCode.WRONG_STATE, BoardState.IDLE, 0), 0x1234)
    raw = bytes.fromhex("01 81 3412 0700 05 06 00 00000000")
    crc = _crc_bitwise(raw)
    assert wire == cobs_encode(raw + crc.to_bytes(2, "little")) + b"\x00"
    assert wire == bytes.fromhex("06 01 81 34 12 07 03 05 06 01 01 01 01 03 4a 65 00")


def test_golden_ack() -> None:
    wire = bytes.fromhex("04 01 80 08 02 02 05 04 01 db e1 00")  # docs/fpga.md
    assert _crc_bitwise(bytes.fromhex("01 80 08 00 02 00 04 01")) == 0xE1DB
    assert decode_message(wire[:-1]) == (8, Ack(MsgType.ARM, BoardState.ARMED))
    assert encode_message(Ack(MsgType.ARM, BoardState.ARMED), 8) == wire


@PROPS
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=MAX_PAYLOAD))
def test_frame_round_trip(msg_type: int, seq: int, payload: bytes) -> None:
    wire = encode_frame(msg_type, seq, payload)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert len(wire) <= MAX_WIRE_FRAME
    f = decode_frame(wire[:-1])
    assert (f.version, f.msg_type, f.seq, f.payload) == (1, msg_type, seq, payload)


def test_frame_errors_are_typed() -> None:
    wire = encode_frame(0x02, 5, b"\x10\x00\x00\x00")[:-1]
    raw = cobs_decode(wire)
    flipped = bytearray(raw)
    flipped[6] ^= 0x01
    with pytest.raises(E.FrameCrcError) as e:
        decode_frame(cobs_encode(bytes(flipped)))
    assert (e.value.seq, e.value.msg_type, e.value.nak_code) == (5, 0x02, ErrorCode.BAD_CRC)
    with pytest.raises(E.FrameFormatError):
        decode_frame(cobs_encode(b"\x01\x02\x03"))
    # length field says 5 but 4 payload bytes follow (CRC valid)
    body = b"\x01\x02\x05\x00\x05\x00" + b"\x10\x00\x00\x00"
    bad_len = body + crc16_ccitt_false(body).to_bytes(2, "little")
    with pytest.raises(E.FrameLengthError) as e2:
        decode_frame(cobs_encode(bad_len))
    assert e2.value.nak_code == ErrorCode.BAD_LENGTH
    with pytest.raises(E.FrameFormatError):
        decode_frame(b"\x05" * 300)
    with pytest.raises(ValueError):
        encode_frame(1, 0x10000, b"")
    with pytest.raises(ValueError):
        encode_frame(1, 0, bytes(MAX_PAYLOAD + 1))


def test_split_stream() -> None:
    a, b = encode_frame(1, 1, b"x"), encode_frame(2, 2, b"")
    chunks, rest = split_stream(b"\x00\x00" + a + b + b"\x05\x06")
    assert chunks == [a[:-1], b[:-1]] and rest == b"\x05\x06"
    chunks, rest = split_stream(b"\x07" * (MAX_WIRE_FRAME + 3))
    assert chunks == [b"\x07" * (MAX_WIRE_FRAME + 3)] and rest == b""


# --- message layer -------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF - 1)
flags = st.sampled_from(list(TriggerFlags))
events = st.builds(
    TriggerEvent,
    u32,
    u32,
    u32,
    u32,
    u64,
    st.one_of(st.none(), u64),
    st.integers(0, 7).map(TriggerFlags),
)
states = st.sampled_from(list(BoardState))
bodies = st.one_of(
    st.tuples(st.just(MsgType.GET_STATUS), states).flatmap(
        lambda t: st.tuples(
            st.just(t[0]), st.just(t[1]), st.builds(StatusReport, st.just(t[1]), *[u32] * 7, u64)
        )
    ),
    st.tuples(st.just(MsgType.READ_COUNTERS), states, st.builds(CounterReport, *[u32] * 10, u64)),
    st.tuples(st.just(MsgType.RUN), states, st.builds(RunAccepted, u32, u32, u64)),
    st.tuples(
        st.just(MsgType.READ_TRIGGER_LOG),
        states,
        st.builds(
            lambda rid, evs: TriggerLog(rid, tuple(TriggerEvent(rid, *e[1:]) for e in evs)),
            u32,
            st.lists(events.map(lambda e: tuple(e.__dict__.values())), max_size=8),
        ),
    ),
    st.tuples(
        st.sampled_from([MsgType.ARM, MsgType.STOP, MsgType.SET_EXPOSURE]), states, st.none()
    ),
)
messages = st.one_of(
    st.builds(SetFramePeriod, u32),
    st.builds(SetExposure, u32),
    st.builds(SetTriggerDelays, u32, u32),
    st.just(Arm()),
    st.builds(Run, u32),
    st.just(Stop()),
    st.just(GetStatus()),
    st.just(ReadCounters()),
    st.builds(ReadTriggerLog, u32, st.integers(0, 255)),
    bodies.map(lambda t: Ack(*t)),
    st.builds(Nak, st.integers(0, 255), st.sampled_from(list(ErrorCode)), states, u32),
    events,
    st.builds(RunComplete, u32, st.sampled_from(list(RunEndReason)), u32, u32, u32, u32, u64, u64),
)


@PROPS
@given(messages, st.integers(0, 0xFFFF))
def test_message_round_trip(msg, seq: int) -> None:
    wire = encode_message(msg, seq)
    assert decode_message(wire[:-1]) == (seq, msg)


@PROPS
@given(st.binary(max_size=300))
def test_decode_any_bytes_gives_message_or_codec_error(data: bytes) -> None:
    try:
        seq, msg = decode_message(data)
    except E.FrameCodecError as e:
        assert isinstance(e, CodecError)
        assert e.nak_code in set(ErrorCode)
        return
    assert decode_message(encode_message(msg, seq)[:-1]) == (seq, msg)


@PROPS
@given(st.integers(0, 3), st.integers(0, 255), st.binary(max_size=80))
def test_decode_valid_frames_with_any_payload(version: int, msg_type: int, payload: bytes) -> None:
    """Frames that pass COBS and CRC but carry arbitrary contents still decode or raise the
    codec's typed error (deeper than random bytes reach)."""
    try:
        seq, msg = decode_message(encode_frame(msg_type, 9, payload, version=version)[:-1])
    except E.FrameCodecError as e:
        assert e.seq == 9 and e.msg_type == msg_type
        return
    assert version == 1 and seq == 9 and int(msg.TYPE) == msg_type


def test_message_errors_are_typed() -> None:
    with pytest.raises(E.UnknownMessageError) as e:
        decode_message(encode_frame(0x42, 3, b"")[:-1])
    assert e.value.nak_code == ErrorCode.UNKNOWN_COMMAND and e.value.seq == 3
    with pytest.raises(E.PayloadLengthError) as e2:
        decode_message(encode_frame(MsgType.RUN, 4, b"\x01\x00")[:-1])
    assert e2.value.nak_code == ErrorCode.BAD_LENGTH
    with pytest.raises(E.UnsupportedVersionError) as e3:
        decode_message(encode_frame(MsgType.ARM, 5, b"", version=2)[:-1])
    assert e3.value.nak_code == ErrorCode.BAD_VERSION
    with pytest.raises(E.PayloadValueError):  # NAK with undefined error code 0x77
        decode_message(encode_frame(MsgType.NAK, 6, b"\x05\x77\x00\x00\x00\x00\x00")[:-1])
    with pytest.raises(E.PayloadValueError):  # ACK of an event type
        decode_message(encode_frame(MsgType.ACK, 6, b"\xc0\x00")[:-1])


def test_timing_rule() -> None:
    assert Timing(1000, 500, 0, 500).problem() is None
    assert "exceeds" in Timing(1000, 501, 0, 500).problem()
    assert "shorter" in Timing(1000, 10, 1000, 0).problem()
