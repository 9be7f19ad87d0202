"""Stream-channel codec: the leader / payload / trailer blocks of one image (pure functions).

Modelled on the USB3 Vision image leader and trailer. Each block is one bulk IN transfer on the
stream endpoint, in the order leader, payload, trailer. All fields little endian.

Image leader (52 bytes):

    offset size field
    0      4    magic          0x4C563355 ("U3VL" in memory)
    4      2    reserved       0
    6      2    leader_size    52
    8      8    block_id       frame id: 0 for the first frame after AcquisitionStart, +1 per frame
    16     2    reserved       0
    18     2    payload_type   0x0001 image, 0x4001 image extended chunk (image then chunk data)
    20     8    timestamp      device clock at exposure start, nanoseconds
    28     4    pixel_format   PFNC code (see pixel_formats)
    32     4    size_x         width, pixels
    36     4    size_y         height, pixels
    40     4    offset_x       pixels
    44     4    offset_y       pixels
    48     2    padding_x      bytes of padding at the end of each line (always 0 here)
    50     2    reserved       0

Payload: the image, row-major, in the pixel format (pixel_formats.pack), exactly
payload_size(pixel_format, size_x * size_y) bytes; with payload type 0x4001 chunk data follows
the image (the trailer's valid payload size counts both). The host reads it in the transfers it
configured in the SIRM (bootstrap.plan_stream).

Image trailer (32 bytes):

    0      4    magic               0x54563355 ("U3VT" in memory)
    4      2    reserved            0
    6      2    trailer_size        32
    8      8    block_id            same as the leader's
    16     2    status              Status (0 = success, DATA_DISCARDED, ...)
    18     2    reserved            0
    20     8    valid_payload_size  bytes of the payload that are valid
    28     4    size_y              lines actually delivered
    32     4    chunk_layout_id     only in the 36-byte trailer of payload type 0x4001

Layouts as in the AIA's Wireshark dissector (packet-u3v.c) and Aravis.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import CodecError, InputError
from .pixel_formats import PixelFormat, payload_size, pixel_format

LEADER_MAGIC = 0x4C563355
TRAILER_MAGIC = 0x54563355
PAYLOAD_TYPE_IMAGE = 0x0001
PAYLOAD_TYPE_IMAGE_CHUNK = 0x4001
PAYLOAD_TYPES = (PAYLOAD_TYPE_IMAGE, PAYLOAD_TYPE_IMAGE_CHUNK)
LEADER = struct.Struct("<IHHQHHQIIIIIHH")
TRAILER = struct.Struct("<IHHQHHQI")
LEADER_SIZE = LEADER.size  # 52
TRAILER_SIZE = TRAILER.size  # 32
CHUNK_TRAILER_SIZE = TRAILER_SIZE + 4  # 36: + chunk_layout_id
#: buffer the host offers for a leader or trailer transfer, bytes (larger than either block)
MAX_LEADER_SIZE = 256
MAX_TRAILER_SIZE = 256


@dataclass(frozen=True)
class Leader:
    """First block of a frame: identity, device time, format and ROI of the payload."""

    block_id: int
    timestamp_ns: int
    pixel_format: PixelFormat
    width: int
    height: int
    offset_x: int
    offset_y: int
    padding_x: int = 0
    payload_type: int = PAYLOAD_TYPE_IMAGE

    @property
    def payload_size(self) -> int:
        """Bytes the payload block must carry."""
        return (
            payload_size(self.pixel_format, self.width * self.height) + self.padding_x * self.height
        )


@dataclass(frozen=True)
class Trailer:
    """Last block of a frame: status and how much of the payload is valid."""

    block_id: int
    status: int
    valid_payload_size: int
    height: int
    chunk_layout_id: int | None = None  # set only in the 36-byte chunk-mode trailer


def _check_uint(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise InputError(f"{name} must be an integer in 0..2**{bits}-1, got {value!r}")


def encode_leader(leader: Leader) -> bytes:
    """The 52 leader bytes. InputError when a field does not fit its width."""
    for name, bits in (
        ("block_id", 64),
        ("timestamp_ns", 64),
        ("width", 32),
        ("height", 32),
        ("offset_x", 32),
        ("offset_y", 32),
        ("padding_x", 16),
    ):
        _check_uint(name, getattr(leader, name), bits)
    fmt = pixel_format(leader.pixel_format)
    if leader.payload_type not in PAYLOAD_TYPES:
        raise InputError(
            f"payload_type must be one of {PAYLOAD_TYPES}, got {leader.payload_type!r}"
        )
    return LEADER.pack(
        LEADER_MAGIC,
        0,
        LEADER_SIZE,
        leader.block_id,
        0,
        leader.payload_type,
        leader.timestamp_ns,
        int(fmt),
        leader.width,
        leader.height,
        leader.offset_x,
        leader.offset_y,
        leader.padding_x,
        0,
    )


def decode_leader(data: bytes) -> Leader:
    """Parse a leader. CodecError for a wrong size, magic, payload type or pixel format."""
    data = bytes(data)
    if len(data) < 8 or struct.unpack_from("<I", data)[0] != LEADER_MAGIC:
        raise CodecError(f"not a leader: {len(data)} bytes starting {data[:4].hex() or 'empty'}")
    if len(data) != LEADER_SIZE:
        raise CodecError(f"leader must be {LEADER_SIZE} bytes, got {len(data)}")
    (_m, _r0, size, block_id, _r1, ptype, ts, fmt, w, h, ox, oy, pad, _r2) = LEADER.unpack(data)
    if size != LEADER_SIZE:
        raise CodecError(f"leader_size field says {size}, expected {LEADER_SIZE}")
    if ptype not in PAYLOAD_TYPES:
        raise CodecError(
            f"leader payload type {ptype:#06x} is neither image (0x0001) nor image extended "
            "chunk (0x4001); set the camera to send images"
        )
    try:
        pf = PixelFormat(fmt)
    except ValueError:
        raise CodecError(f"leader carries unsupported pixel format {fmt:#010x}") from None
    if w < 1 or h < 1:
        raise CodecError(f"leader announces an empty image {w}x{h}")
    return Leader(block_id, ts, pf, w, h, ox, oy, pad, ptype)


def encode_trailer(trailer: Trailer) -> bytes:
    """The 32 trailer bytes (36 with a chunk_layout_id). InputError when a field does not fit."""
    for name, bits in (
        ("block_id", 64),
        ("status", 16),
        ("valid_payload_size", 64),
        ("height", 32),
    ):
        _check_uint(name, int(getattr(trailer, name)), bits)
    chunk = trailer.chunk_layout_id
    if chunk is not None:
        _check_uint("chunk_layout_id", chunk, 32)
    size = TRAILER_SIZE if chunk is None else CHUNK_TRAILER_SIZE
    body = TRAILER.pack(
        TRAILER_MAGIC,
        0,
        size,
        trailer.block_id,
        int(trailer.status),
        0,
        trailer.valid_payload_size,
        trailer.height,
    )
    return body if chunk is None else body + struct.pack("<I", chunk)


def decode_trailer(data: bytes) -> Trailer:
    """Parse a 32-byte trailer or a 36-byte chunk-mode trailer. CodecError for a wrong size or
    magic, or a trailer_size field that differs from the transfer's length."""
    data = bytes(data)
    if len(data) < 8 or struct.unpack_from("<I", data)[0] != TRAILER_MAGIC:
        raise CodecError(f"not a trailer: {len(data)} bytes starting {data[:4].hex() or 'empty'}")
    if len(data) not in (TRAILER_SIZE, CHUNK_TRAILER_SIZE):
        raise CodecError(
            f"trailer must be {TRAILER_SIZE} (or {CHUNK_TRAILER_SIZE} in chunk mode) bytes, "
            f"got {len(data)}"
        )
    (_m, _r0, size, block_id, status, _r1, valid, h) = TRAILER.unpack_from(data)
    if size != len(data):
        raise CodecError(f"trailer_size field says {size}, the transfer has {len(data)} bytes")
    chunk = struct.unpack_from("<I", data, TRAILER_SIZE)[0] if size == CHUNK_TRAILER_SIZE else None
    return Trailer(block_id, status, valid, h, chunk)


def is_leader(data: bytes) -> bool:
    """True when the bytes start with the leader magic (cheap test, no full decode)."""
    return len(data) >= 4 and bytes(data[:4]) == struct.pack("<I", LEADER_MAGIC)


def is_trailer(data: bytes) -> bool:
    """True when the bytes start with the trailer magic (cheap test, no full decode)."""
    return len(data) >= 4 and bytes(data[:4]) == struct.pack("<I", TRAILER_MAGIC)
