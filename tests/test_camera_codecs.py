"""Control and stream codecs and the register map: golden bytes, round trips, random input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.camera import control, stream
from firmware_iface.camera.pixel_formats import PixelFormat
from firmware_iface.camera.status import Status
from firmware_iface.errors import CodecError, InputError
from opu_sim.emulators import camera_registers as registers

# ------------------------------------------------------------------ control golden vectors

# READMEM_CMD, request id 0x0102, 8 bytes at 0x10200 (ExposureTime)
GOLDEN_READ_CMD = (
    "55335643"  # prefix 0x43563355 little endian ("U3VC")
    "0040"  # flags: acknowledge requested
    "0008"  # READMEM_CMD 0x0800
    "0c00"  # 12 bytes of command data
    "0201"  # request id 0x0102
    "0002010000000000"  # address 0x10200
    "0000"  # reserved
    "0800"  # count 8
)
# READMEM_ACK answering it with 250.0 (IEEE754 0x406F400000000000)
GOLDEN_READ_ACK = "5533564300000108080002010000000000406f40"
# WRITEMEM_CMD, request id 7, Width (0x10100) = 640
GOLDEN_WRITE_CMD = "55335643004002080c000700000101000000000080020000"
GOLDEN_WRITE_ACK = "55335643000003080400070000000400"
# ACCESS_DENIED (0x8006) answer to that write: no data
GOLDEN_ERROR_ACK = "553356430680030800000700"


def test_control_golden_vectors() -> None:
    assert control.encode_read_command(0x0102, 0x10200, 8).hex() == GOLDEN_READ_CMD
    assert control.encode_read_ack(0x0102, struct.pack("<d", 250.0)).hex() == GOLDEN_READ_ACK
    data = (640).to_bytes(4, "little")
    assert control.encode_write_command(7, 0x10100, data).hex() == GOLDEN_WRITE_CMD
    assert control.encode_write_ack(7, 4).hex() == GOLDEN_WRITE_ACK
    err = control.encode_ack(Status.ACCESS_DENIED, control.CommandId.WRITEMEM_ACK, 7)
    assert err.hex() == GOLDEN_ERROR_ACK

    cmd = control.decode_command(bytes.fromhex(GOLDEN_READ_CMD))
    assert cmd == control.ReadCommand(0x0102, 0x10200, 8)
    ack = control.decode_ack(bytes.fromhex(GOLDEN_READ_ACK))
    assert ack.ok and ack.request_id == 0x0102 and ack.command_id == control.CommandId.READMEM_ACK
    assert struct.unpack("<d", ack.data)[0] == 250.0
    assert control.decode_command(bytes.fromhex(GOLDEN_WRITE_CMD)) == control.WriteCommand(
        7, 0x10100, data
    )
    assert control.decode_ack(bytes.fromhex(GOLDEN_WRITE_ACK)).bytes_written == 4
    bad = control.decode_ack(bytes.fromhex(GOLDEN_ERROR_ACK))
    assert bad.status == Status.ACCESS_DENIED and not bad.ok and bad.data == b""


def test_control_decode_errors_carry_status() -> None:
    good = bytes.fromhex(GOLDEN_READ_CMD)
    with pytest.raises(control.ControlCodecError) as e:
        control.decode_command(b"\x00" * 4 + good[4:])
    assert e.value.status == Status.INVALID_HEADER
    with pytest.raises(control.ControlCodecError) as e:
        control.decode_command(good + b"\x00")  # length field disagrees with the transfer
    assert e.value.status == Status.INVALID_HEADER and e.value.request_id == 0x0102
    unknown = good[:6] + struct.pack("<H", 0x0900) + good[8:]
    with pytest.raises(control.ControlCodecError) as e:
        control.decode_command(unknown)
    assert e.value.status == Status.NOT_IMPLEMENTED
    with pytest.raises(InputError):
        control.encode_read_command(70000, 0, 4)
    with pytest.raises(InputError):
        control.encode_write_command(1, 0, b"")
    with pytest.raises(InputError):
        control.encode_ack(Status.BUSY, control.CommandId.READMEM_ACK, 1, b"x")


@settings(max_examples=60, deadline=None)
@given(
    rid=st.integers(1, 0xFFFF),
    address=st.integers(0, (1 << 64) - 1),
    count=st.integers(1, control.MAX_READ_COUNT),
    data=st.binary(min_size=1, max_size=64),
)
def test_control_round_trips(rid: int, address: int, count: int, data: bytes) -> None:
    assert control.decode_command(control.encode_read_command(rid, address, count)) == (
        control.ReadCommand(rid, address, count)
    )
    assert control.decode_command(control.encode_write_command(rid, address, data)) == (
        control.WriteCommand(rid, address, data)
    )
    ack = control.decode_ack(control.encode_read_ack(rid, data))
    assert (ack.request_id, ack.data, ack.status) == (rid, data, Status.SUCCESS)
    assert control.decode_ack(control.encode_write_ack(rid, len(data))).bytes_written == len(data)
    assert control.decode_ack(control.encode_pending_ack(rid, count % 65536)).pending_ms == (
        count % 65536
    )


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=40))
def test_control_random_bytes_decode_or_codec_error(raw: bytes) -> None:
    for decode in (control.decode_command, control.decode_ack):
        try:
            decode(raw)
        except CodecError:
            pass


@settings(max_examples=100, deadline=None)
@given(tail=st.binary(max_size=30), cid=st.sampled_from([0x0800, 0x0801, 0x0802, 0x0803, 0x0805]))
def test_control_random_body_behind_valid_prefix(tail: bytes, cid: int) -> None:
    raw = struct.pack("<IHHHH", control.CONTROL_PREFIX, 0, cid, len(tail), 1) + tail
    for decode in (control.decode_command, control.decode_ack):
        try:
            decode(raw)
        except CodecError:
            pass


# ------------------------------------------------------------------ stream golden vectors

GOLDEN_LEADER = (
    "5533564c"  # magic 0x4C563355 ("U3VL")
    "0000"
    "3400"  # leader size 52
    "0500000000000000"  # block id 5
    "0000"
    "0100"  # payload type image
    "40420f0000000000"  # timestamp 1 000 000 ns
    "47000c01"  # Mono12p 0x010C0047
    "21000000"  # width 33
    "07000000"  # height 7
    "0a000000"  # offset x 10
    "14000000"  # offset y 20
    "0000"  # padding x
    "0000"
)
GOLDEN_TRAILER = (
    "55335654"  # magic 0x54563355 ("U3VT")
    "0000"
    "2000"  # trailer size 32
    "0500000000000000"  # block id 5
    "0000"  # status SUCCESS
    "0000"
    "5b01000000000000"  # valid payload 347 bytes = ceil(33 * 7 * 12 / 8)
    "07000000"  # lines
)


def test_stream_golden_vectors() -> None:
    leader = stream.Leader(5, 1_000_000, PixelFormat.Mono12p, 33, 7, 10, 20)
    assert stream.encode_leader(leader).hex() == GOLDEN_LEADER
    assert stream.decode_leader(bytes.fromhex(GOLDEN_LEADER)) == leader
    assert leader.payload_size == 347
    trailer = stream.Trailer(5, Status.SUCCESS, 347, 7)
    assert stream.encode_trailer(trailer).hex() == GOLDEN_TRAILER
    assert stream.decode_trailer(bytes.fromhex(GOLDEN_TRAILER)) == trailer
    assert stream.is_leader(bytes.fromhex(GOLDEN_LEADER))
    assert stream.is_trailer(bytes.fromhex(GOLDEN_TRAILER))
    assert not stream.is_leader(bytes.fromhex(GOLDEN_TRAILER))


def test_stream_decode_errors() -> None:
    lead = bytes.fromhex(GOLDEN_LEADER)
    with pytest.raises(CodecError, match="not a leader"):
        stream.decode_leader(bytes.fromhex(GOLDEN_TRAILER))
    with pytest.raises(CodecError, match="52 bytes"):
        stream.decode_leader(lead[:-1])
    with pytest.raises(CodecError, match="unsupported pixel format"):
        stream.decode_leader(lead[:28] + struct.pack("<I", 0x01100007) + lead[32:])
    with pytest.raises(CodecError, match="payload type"):
        stream.decode_leader(lead[:18] + b"\x00\x40" + lead[20:])
    with pytest.raises(CodecError, match=r"32 \(or 36 in chunk mode\) bytes"):
        stream.decode_trailer(bytes.fromhex(GOLDEN_TRAILER) + b"\x00")
    with pytest.raises(InputError):
        stream.encode_leader(stream.Leader(-1, 0, PixelFormat.Mono8, 1, 1, 0, 0))


@settings(max_examples=60, deadline=None)
@given(
    bid=st.integers(0, (1 << 64) - 1),
    ts=st.integers(0, (1 << 64) - 1),
    fmt=st.sampled_from(list(PixelFormat)),
    w=st.integers(1, (1 << 32) - 1),
    h=st.integers(1, (1 << 32) - 1),
    ox=st.integers(0, (1 << 32) - 1),
    oy=st.integers(0, (1 << 32) - 1),
    status=st.integers(0, 0xFFFF),
    valid=st.integers(0, (1 << 64) - 1),
)
def test_stream_round_trips(bid, ts, fmt, w, h, ox, oy, status, valid) -> None:  # noqa: ANN001
    leader = stream.Leader(bid, ts, fmt, w, h, ox, oy)
    assert stream.decode_leader(stream.encode_leader(leader)) == leader
    trailer = stream.Trailer(bid, status, valid, h)
    assert stream.decode_trailer(stream.encode_trailer(trailer)) == trailer


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=60), magic=st.sampled_from([b"", b"U3VL", b"U3VT"]))
def test_stream_random_bytes_decode_or_codec_error(raw: bytes, magic: bytes) -> None:
    for decode in (stream.decode_leader, stream.decode_trailer):
        try:
            decode(magic + raw)
        except CodecError:
            pass


# ------------------------------------------------------------------ register map


def test_register_map_is_consistent() -> None:
    regs = list(registers.REGISTERS.values())
    spans = sorted((r.address, r.address + r.size) for r in regs)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    for name in (
        "ExposureTime",
        "Gain",
        "PixelFormat",
        "Width",
        "Height",
        "OffsetX",
        "OffsetY",
        "TriggerMode",
        "TriggerSource",
        "AcquisitionStart",
        "AcquisitionStop",
        "DeviceSerialNumber",
        "SensorWidth",
        "SensorHeight",
        "PixelBitDepth",
        "FrameCounter",
    ):
        assert name in registers.REGISTERS
    assert registers.REGISTERS["ExposureTime"].unit == "us"
    assert registers.containing(0x10202).name == "ExposureTime"
    assert registers.containing(0x9999) is None


def test_register_value_codec() -> None:
    R = registers.REGISTERS
    assert registers.encode_value(R["ExposureTime"], 250) == struct.pack("<d", 250.0)
    assert registers.encode_value(R["PixelFormat"], "Mono12p") == (0x010C0047).to_bytes(4, "little")
    assert registers.decode_value(R["PixelFormat"], (0x010C0047).to_bytes(4, "little")) == "Mono12p"
    assert registers.decode_value(R["TriggerMode"], b"\x01\0\0\0") == "On"
    assert registers.decode_value(R["DeviceSerialNumber"], b"EMU".ljust(32, b"\0")) == "EMU"
    for reg, bad in [
        (R["ExposureTime"], 0.0),
        (R["ExposureTime"], -5),
        (R["ExposureTime"], float("nan")),
        (R["ExposureTime"], "100"),
        (R["Width"], 2.5),
        (R["Width"], -1),
        (R["Width"], 1 << 32),
        (R["Width"], True),
        (R["PixelFormat"], "Mono16"),
        (R["TriggerMode"], 7),
        (R["AcquisitionStart"], 2),
    ]:
        with pytest.raises(InputError):
            registers.encode_value(reg, bad)
    with pytest.raises(InputError, match="unknown camera feature"):
        registers.register("Exposure")
    with pytest.raises(CodecError):
        registers.decode_value(R["TriggerMode"], b"\x09\0\0\0")
    with pytest.raises(CodecError):
        registers.decode_value(R["Width"], b"\0\0")
