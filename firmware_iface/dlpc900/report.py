"""USB HID report codec of the TI DLPC900 (DLPU018 section 1.2, "USB Interface").

A message is a 4-byte header followed by a payload:

    byte 0   flags: bit 7 read (1) / write (0), bit 6 host wants a reply, bit 5 error (NACK,
             set by the controller in a reply), bits 2:0 destination (0 = main processor)
    byte 1   sequence byte, echoed by the controller in its reply
    byte 2-3 payload length, little endian (command bytes + data for a request, data for a reply)
    payload  request: 2-byte USB command code, LSB first (0x1A1B -> 1B 1A), then the data
             reply: the data only

A message travels as 64-byte reports: the first carries the header and up to 60 payload bytes,
every further report carries the next 64 payload bytes; the last report is zero padded. The
controller's command buffer holds 512 bytes, so a request's header plus payload is at most 512.
hidapi-style APIs want a leading report-id byte (always 0); raw interrupt endpoint transfers
(pyusb) carry the 64 bytes without it. Pure functions only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import CodecError

REPORT_SIZE = 64
"""Bytes of one HID report (without a report-id byte)."""
HEADER_SIZE = 4
"""Flags, sequence and 2-byte length."""
COMMAND_BUFFER_SIZE = 512
"""Largest request (header + payload) the controller's command buffer accepts, bytes."""
MAX_REQUEST_PAYLOAD = COMMAND_BUFFER_SIZE - HEADER_SIZE
"""Largest request payload (command code + data), bytes."""
MAX_PAYLOAD = 0xFFFF
"""Largest length the 2-byte length field can hold, bytes."""
REPORT_ID = 0
"""The DLPC900's only HID report id, prepended for hidapi-style writes."""

FLAG_READ = 0x80
FLAG_REPLY = 0x40
FLAG_ERROR = 0x20
DESTINATION_MASK = 0x07


@dataclass(frozen=True)
class Request:
    """A host-to-controller message: a USB command code (16 bit) and its data bytes."""

    command: int
    data: bytes = b""
    read: bool = False
    reply: bool = True
    sequence: int = 0
    destination: int = 0

    @property
    def flags(self) -> int:
        """The header's flag byte."""
        return (
            (FLAG_READ if self.read else 0)
            | (FLAG_REPLY if self.reply else 0)
            | (self.destination & DESTINATION_MASK)
        )


@dataclass(frozen=True)
class Reply:
    """A controller-to-host message: flags (with the error bit), the echoed sequence, data."""

    flags: int
    sequence: int
    data: bytes = b""

    @property
    def error(self) -> bool:
        """True when the controller NACKed the command (flag bit 5)."""
        return bool(self.flags & FLAG_ERROR)


def _check_byte(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise CodecError(f"{name} must be an integer 0..255, got {value!r}")


def encode_header(flags: int, sequence: int, length: int) -> bytes:
    """The 4-byte message header. length: payload bytes (0..65535)."""
    _check_byte("flags", flags)
    _check_byte("sequence", sequence)
    if not isinstance(length, int) or not 0 <= length <= MAX_PAYLOAD:
        raise CodecError(f"payload length must be 0..{MAX_PAYLOAD} bytes, got {length!r}")
    return struct.pack("<BBH", flags, sequence, length)


def decode_header(report: bytes) -> tuple[int, int, int]:
    """(flags, sequence, payload length) from the first report of a message."""
    if len(report) < HEADER_SIZE:
        raise CodecError(
            f"a DLPC900 report needs at least {HEADER_SIZE} header bytes,"
            f" got {len(report)}"
        )
    flags, sequence, length = struct.unpack_from("<BBH", report, 0)
    return flags, sequence, length


def encode_request(request: Request) -> bytes:
    """Header + payload of a request (not yet split into reports).

    Raises CodecError when the command code is not 16 bit, the destination is not 0..7, or the
    message exceeds the controller's 512-byte command buffer.
    """
    if not isinstance(request.command, int) or not 0 <= request.command <= 0xFFFF:
        raise CodecError(f"USB command code must be 0x0000..0xFFFF, got {request.command!r}")
    if not 0 <= request.destination <= DESTINATION_MASK:
        raise CodecError(f"destination must be 0..7, got {request.destination}")
    payload = struct.pack("<H", request.command) + bytes(request.data)
    if len(payload) > MAX_REQUEST_PAYLOAD:
        raise CodecError(
            f"command 0x{request.command:04X} with {len(request.data)} data bytes needs "
            f"{HEADER_SIZE + len(payload)} bytes, more than the DLPC900's "
            f"{COMMAND_BUFFER_SIZE}-byte command buffer; split the data into several commands"
        )
    return encode_header(request.flags, request.sequence, len(payload)) + payload


def _decode_whole(message: bytes, kind: str, body: str) -> tuple[int, int, int]:
    """(flags, sequence, length) of a message that must be exactly as long as its header says;
    CodecError naming the `kind` of message and its `body` otherwise."""
    flags, sequence, length = decode_header(message)
    if len(message) != HEADER_SIZE + length:
        raise CodecError(
            f"{kind} header announces {length} {body} bytes, got {len(message) - HEADER_SIZE}"
        )
    return flags, sequence, length


def decode_request(message: bytes) -> Request:
    """A request from its header + payload bytes (exactly as long as the header says)."""
    flags, sequence, length = _decode_whole(message, "request", "payload")
    if length < 2:
        raise CodecError(
            f"a request payload holds at least the 2-byte command code,"
            f" got {length} bytes"
        )
    (command,) = struct.unpack_from("<H", message, HEADER_SIZE)
    return Request(
        command=command,
        data=bytes(message[HEADER_SIZE + 2 :]),
        read=bool(flags & FLAG_READ),
        reply=bool(flags & FLAG_REPLY),
        sequence=sequence,
        destination=flags & DESTINATION_MASK,
    )


def encode_reply(reply: Reply) -> bytes:
    """Header + data of a reply (the controller side)."""
    return encode_header(reply.flags, reply.sequence, len(reply.data)) + bytes(reply.data)


def decode_reply(message: bytes) -> Reply:
    """A reply from its header + data bytes (exactly as long as the header says)."""
    flags, sequence, _ = _decode_whole(message, "reply", "data")
    return Reply(flags=flags, sequence=sequence, data=bytes(message[HEADER_SIZE:]))


def reports_needed(payload_length: int) -> int:
    """Number of 64-byte reports a message with this payload length occupies."""
    if payload_length < 0:
        raise CodecError(f"payload length must be >= 0, got {payload_length}")
    return max(1, -(-(HEADER_SIZE + payload_length) // REPORT_SIZE))


def split_message(message: bytes, report_id: bool = False) -> list[bytes]:
    """Cut a message (header + payload) into zero-padded 64-byte reports.

    report_id=True prepends the report-id byte 0 to each report (65 bytes), as hidapi's write
    expects; pyusb interrupt transfers use report_id=False.
    """
    _, _, length = decode_header(message)
    if len(message) != HEADER_SIZE + length:
        raise CodecError(
            f"message header announces {length} payload bytes,"
            f" got {len(message) - HEADER_SIZE}"
        )
    n = reports_needed(length)
    padded = bytes(message) + bytes(n * REPORT_SIZE - len(message))
    prefix = bytes([REPORT_ID]) if report_id else b""
    return [prefix + padded[i * REPORT_SIZE : (i + 1) * REPORT_SIZE] for i in range(n)]


def strip_report_id(report: bytes) -> bytes:
    """A 64-byte report from a 65-byte one that starts with report id 0 (64 bytes pass through)."""
    if len(report) == REPORT_SIZE:
        return bytes(report)
    if len(report) == REPORT_SIZE + 1:
        if report[0] != REPORT_ID:
            raise CodecError(f"DLPC900 reports use report id 0, got {report[0]}")
        return bytes(report[1:])
    raise CodecError(
        f"a DLPC900 report is {REPORT_SIZE} bytes (or 65 with report id),"
        f" got {len(report)}"
    )


def join_reports(reports: list[bytes]) -> bytes:
    """The message (header + payload) carried by consecutive reports of one message.

    Reports may carry the leading report-id byte. Raises CodecError when the number of reports
    does not match the header's length or padding bytes are not zero.
    """
    if not reports:
        raise CodecError("no reports to join")
    raw = b"".join(strip_report_id(r) for r in reports)
    _, _, length = decode_header(raw)
    n = reports_needed(length)
    if len(reports) != n:
        raise CodecError(
            f"header announces {length} payload bytes = {n} reports,"
            f" got {len(reports)}"
        )
    end = HEADER_SIZE + length
    if any(raw[end:]):
        raise CodecError("non-zero padding after the message end in the last report")
    return raw[:end]
