"""Frame layer of the FPGA timing-board UART protocol: pure functions.

Raw frame (before COBS), all integers little-endian:

    offset  size  field
    0       1     protocol version (PROTOCOL_VERSION = 1)
    1       1     message type (messages.MsgType)
    2       2     sequence number, u16
    4       2     payload length L, u16 (0..MAX_PAYLOAD)
    6       L     payload
    6+L     2     CRC-16/CCITT-FALSE over bytes 0 .. 6+L-1

On the wire: cobs_encode(raw) followed by one 0x00 delimiter. Receivers ignore empty frames
(consecutive 0x00 bytes), so a sender may prefix 0x00 to flush a receiver after line noise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .cobs import cobs_decode, cobs_encode, cobs_max_encoded_len
from .crc import crc16_ccitt_false
from .errors import FrameCrcError, FrameFormatError, FrameLengthError

__all__ = [
    "PROTOCOL_VERSION",
    "HEADER_LEN",
    "CRC_LEN",
    "MAX_PAYLOAD",
    "MAX_RAW_FRAME",
    "MAX_WIRE_FRAME",
    "DELIMITER",
    "Frame",
    "encode_frame",
    "decode_frame",
    "split_stream",
]

PROTOCOL_VERSION = 1
HEADER_LEN = 6
CRC_LEN = 2
MAX_PAYLOAD = 246  # keeps the raw frame at <= 254 bytes: one COBS block, one overhead byte
MAX_RAW_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN  # 254
MAX_WIRE_FRAME = cobs_max_encoded_len(MAX_RAW_FRAME) + 1  # 256, with the delimiter
DELIMITER = b"\x00"

_HEADER = struct.Struct("<BBHH")
_CRC = struct.Struct("<H")


@dataclass(frozen=True)
class Frame:
    """One decoded frame: version, message type, sequence number (u16) and payload bytes."""

    version: int
    msg_type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    """Wire bytes of one frame: COBS(header + payload + CRC) + 0x00.

    Raises ValueError if a field does not fit its width (a programming error, not line noise).
    """
    if not 0 <= msg_type <= 0xFF or not 0 <= version <= 0xFF:
        raise ValueError(f"message type {msg_type} and version {version} must fit one byte")
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"sequence number {seq} must be in 0..65535")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    body = _HEADER.pack(version, msg_type, seq, len(payload)) + bytes(payload)
    raw = body + _CRC.pack(crc16_ccitt_false(body))
    return cobs_encode(raw) + DELIMITER


def decode_frame(chunk: bytes) -> Frame:
    """Decode the bytes between two delimiters (delimiter excluded) into a Frame.

    Checks, in order: COBS validity, size bounds, CRC, length field. Raises CobsDecodeError,
    FrameFormatError, FrameCrcError or FrameLengthError (all FrameCodecError). The version is
    returned, not checked: the message layer refuses versions it does not speak.
    """
    chunk = bytes(chunk)
    if len(chunk) > MAX_WIRE_FRAME - 1:
        raise FrameFormatError(
            f"frame of {len(chunk)} encoded bytes exceeds the {MAX_WIRE_FRAME - 1}-byte maximum"
        )
    raw = cobs_decode(chunk)
    if len(raw) < HEADER_LEN + CRC_LEN:
        raise FrameFormatError(
            f"frame of {len(raw)} bytes is shorter than header + CRC ({HEADER_LEN + CRC_LEN})"
        )
    if len(raw) > MAX_RAW_FRAME:
        raise FrameFormatError(f"frame of {len(raw)} bytes exceeds {MAX_RAW_FRAME} bytes")
    version, msg_type, seq, length = _HEADER.unpack_from(raw)
    body, (crc,) = raw[:-CRC_LEN], _CRC.unpack_from(raw, len(raw) - CRC_LEN)
    expected = crc16_ccitt_false(body)
    if crc != expected:
        raise FrameCrcError(
            f"CRC mismatch: frame says 0x{crc:04X}, contents give 0x{expected:04X}",
            seq=seq,
            msg_type=msg_type,
        )
    payload = body[HEADER_LEN:]
    if length != len(payload):
        raise FrameLengthError(
            f"length field says {length} payload bytes, frame holds {len(payload)}",
            seq=seq,
            msg_type=msg_type,
        )
    return Frame(version, msg_type, seq, payload)


def split_stream(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split received bytes at 0x00 delimiters: (complete non-empty chunks, unterminated rest).

    A rest longer than a frame can be is returned as a chunk of its own (it will fail to
    decode) so a receiver's buffer stays bounded while it resynchronises.
    """
    parts = bytes(buffer).split(DELIMITER)
    rest = parts.pop()
    chunks = [p for p in parts if p]
    if len(rest) > MAX_WIRE_FRAME - 1:
        chunks.append(rest)
        rest = b""
    return chunks, rest
