"""Control-channel codec: register read/write commands and their acknowledges (pure functions).

Modelled on the USB3 Vision control protocol (U3VCP, a GenCP profile). All fields little endian.

Command (host -> device, control bulk OUT):

    offset size field
    0      4    prefix      0x43563355 ("U3VC" in memory)
    4      2    flags       bit 14 (0x4000): acknowledge requested (always set by this host);
                            bit 15 (0x8000): resend, the command repeats one whose
                            acknowledge did not arrive
    6      2    command_id  0x0800 READMEM_CMD, 0x0802 WRITEMEM_CMD
    8      2    length      bytes of the command-specific data (SCD) that follow
    10     2    request_id  1..65535, chosen by the host, echoed in the acknowledge; 0 is never
                            used (Aravis arv_uvcp_next_packet_id: "packet_id == 0 is an error
                            value"), so the id after 65535 is 1
    12     ..   SCD         READMEM: address u64, reserved u16 (0), count u16   (length 12)
                            WRITEMEM: address u64, data[length - 8]

Acknowledge (device -> host, control bulk IN):

    0      4    prefix      0x43563355
    4      2    status      Status (0 = success)
    6      2    command_id  0x0801 READMEM_ACK, 0x0803 WRITEMEM_ACK, 0x0805 PENDING_ACK
    8      2    length      bytes of SCD that follow
    10     2    request_id  the command's request_id
    12     ..   SCD         READMEM_ACK: the data read;
                            WRITEMEM_ACK: reserved u16, bytes_written u16;
                            PENDING_ACK: reserved u16, time to completion u16 (ms).
                            An acknowledge with a non-zero status carries no SCD (length 0).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from ..errors import CodecError, ControlCodecError, InputError
from .status import Status

CONTROL_PREFIX = 0x43563355
FLAG_REQUEST_ACK = 0x4000
FLAG_RESEND = 0x8000
HEADER = struct.Struct("<IHHHH")
HEADER_SIZE = HEADER.size  # 12 bytes
READ_SCD = struct.Struct("<QHH")
WRITE_ACK_SCD = struct.Struct("<HH")
PENDING_SCD = struct.Struct("<HH")
#: largest READMEM count / WRITEMEM data the 16-bit length fields can carry, bytes; a device's
#: own limits (SBRM maximum command / acknowledge transfer length) are usually smaller
MAX_READ_COUNT = 0xFFFF - 0  # count field is u16
MAX_WRITE_DATA = 0xFFFF - 8  # SCD = address u64 + data, length field u16
MAX_ACK_DATA = 0xFFFF


class CommandId(enum.IntEnum):
    """Command and acknowledge identifiers (USB3 Vision values)."""

    READMEM_CMD = 0x0800
    READMEM_ACK = 0x0801
    WRITEMEM_CMD = 0x0802
    WRITEMEM_ACK = 0x0803
    PENDING_ACK = 0x0805


@dataclass(frozen=True)
class RegisterCommand:
    """A decoded register command: its `request_id`, the register `address` and `resend` (the
    host's retry flag was set; keyword only)."""

    request_id: int
    address: int
    resend: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class ReadCommand(RegisterCommand):
    """Read `count` bytes at register `address`."""

    count: int


@dataclass(frozen=True)
class WriteCommand(RegisterCommand):
    """Write `data` at register `address`."""

    data: bytes


def next_request_id(request_id: int) -> int:
    """The request id after `request_id`: 1..65535 cyclically, never 0."""
    return 1 if request_id >= 0xFFFF else request_id + 1


@dataclass(frozen=True)
class Ack:
    """A decoded acknowledge. `data` is the SCD (the bytes read for a successful READMEM_ACK)."""

    status: int
    command_id: int
    request_id: int
    data: bytes = b""

    @property
    def ok(self) -> bool:
        """True when the status is SUCCESS."""
        return self.status == Status.SUCCESS

    @property
    def bytes_written(self) -> int:
        """Bytes written, from a successful WRITEMEM_ACK (CodecError for other acknowledges)."""
        if self.command_id != CommandId.WRITEMEM_ACK or len(self.data) != WRITE_ACK_SCD.size:
            raise CodecError(f"not a successful WRITEMEM_ACK: {self}")
        return WRITE_ACK_SCD.unpack(self.data)[1]

    @property
    def pending_ms(self) -> int:
        """Time to completion announced by a PENDING_ACK, milliseconds."""
        if self.command_id != CommandId.PENDING_ACK or len(self.data) != PENDING_SCD.size:
            raise CodecError(f"not a PENDING_ACK: {self}")
        return PENDING_SCD.unpack(self.data)[1]


def _check_request_id(value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 0xFFFF:
        raise InputError(
            f"request_id must be an integer in 1..65535 (0 is reserved), got {value!r}"
        )


def _flags(resend: bool) -> int:
    return FLAG_REQUEST_ACK | (FLAG_RESEND if resend else 0)


def _check_u16(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise InputError(f"{name} must be an integer in 0..65535, got {value!r}")


def _check_address(address: int) -> None:
    if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address < 1 << 64:
        raise InputError(f"register address must be an integer in 0..2**64-1, got {address!r}")


def encode_read_command(request_id: int, address: int, count: int, resend: bool = False) -> bytes:
    """READMEM_CMD bytes asking for `count` (1..65535) bytes at `address`; `resend` marks a
    retry of a command whose acknowledge did not arrive."""
    _check_request_id(request_id)
    _check_address(address)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_READ_COUNT:
        raise InputError(f"read count must be 1..{MAX_READ_COUNT} bytes, got {count!r}")
    scd = READ_SCD.pack(address, 0, count)
    return (
        HEADER.pack(CONTROL_PREFIX, _flags(resend), CommandId.READMEM_CMD, len(scd), request_id)
        + scd
    )


def encode_write_command(request_id: int, address: int, data: bytes, resend: bool = False) -> bytes:
    """WRITEMEM_CMD bytes writing `data` (1..65527 bytes) at `address`; `resend` as for reads."""
    _check_request_id(request_id)
    _check_address(address)
    data = bytes(data)
    if not 1 <= len(data) <= MAX_WRITE_DATA:
        raise InputError(f"write data must be 1..{MAX_WRITE_DATA} bytes, got {len(data)}")
    scd = struct.pack("<Q", address) + data
    return (
        HEADER.pack(CONTROL_PREFIX, _flags(resend), CommandId.WRITEMEM_CMD, len(scd), request_id)
        + scd
    )


def _split_header(data: bytes, what: str) -> tuple[int, int, int, int, bytes]:
    """Check a command's or acknowledge's header against the transfer; return (flags or status,
    id, length, request_id, data after the header). ControlCodecError (INVALID_HEADER) if the
    transfer is shorter than a header, the prefix is wrong or the length field disagrees."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise ControlCodecError(
            f"{what} of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header",
            Status.INVALID_HEADER,
        )
    prefix, word, command_id, length, request_id = HEADER.unpack_from(data)
    if prefix != CONTROL_PREFIX:
        raise ControlCodecError(
            f"{what} prefix {prefix:#010x} is not {CONTROL_PREFIX:#010x}", Status.INVALID_HEADER
        )
    if len(data) != HEADER_SIZE + length:
        raise ControlCodecError(
            f"{what} length field says {length} bytes of data, "
            f"transfer has {len(data) - HEADER_SIZE}",
            Status.INVALID_HEADER,
            request_id,
        )
    return word, command_id, length, request_id, data[HEADER_SIZE:]


def decode_command(data: bytes) -> ReadCommand | WriteCommand:
    """Parse a command (device side). Raises ControlCodecError carrying the status to answer."""
    flags, command_id, length, request_id, scd = _split_header(data, "command")
    resend = bool(flags & FLAG_RESEND)
    if command_id == CommandId.READMEM_CMD:
        if length != READ_SCD.size:
            raise ControlCodecError(
                f"READMEM_CMD data must be {READ_SCD.size} bytes, got {length}",
                Status.INVALID_PARAMETER,
                request_id,
            )
        address, _reserved, count = READ_SCD.unpack(scd)
        if count < 1:
            raise ControlCodecError(
                "READMEM_CMD asks for 0 bytes", Status.INVALID_PARAMETER, request_id
            )
        return ReadCommand(request_id, address, count, resend=resend)
    if command_id == CommandId.WRITEMEM_CMD:
        if length < 9:
            raise ControlCodecError(
                f"WRITEMEM_CMD needs an address and at least one data byte, got {length} bytes",
                Status.INVALID_PARAMETER,
                request_id,
            )
        (address,) = struct.unpack_from("<Q", scd)
        return WriteCommand(request_id, address, scd[8:], resend=resend)
    raise ControlCodecError(
        f"unknown command id {command_id:#06x}", Status.NOT_IMPLEMENTED, request_id
    )


def encode_ack(status: int, command_id: int, request_id: int, data: bytes = b"") -> bytes:
    """Acknowledge bytes. A non-success status must carry no data (InputError otherwise)."""
    _check_u16("status", int(status))
    _check_u16("command_id", int(command_id))
    _check_u16("request_id", request_id)
    data = bytes(data)
    if status != Status.SUCCESS and data:
        raise InputError("an acknowledge with an error status carries no data")
    if len(data) > MAX_ACK_DATA:
        raise InputError(f"acknowledge data of {len(data)} bytes exceeds {MAX_ACK_DATA}")
    return HEADER.pack(CONTROL_PREFIX, int(status), int(command_id), len(data), request_id) + data


def encode_read_ack(request_id: int, data: bytes) -> bytes:
    """Successful READMEM_ACK carrying the bytes read."""
    return encode_ack(Status.SUCCESS, CommandId.READMEM_ACK, request_id, data)


def encode_write_ack(request_id: int, bytes_written: int) -> bytes:
    """Successful WRITEMEM_ACK."""
    _check_u16("bytes_written", bytes_written)
    return encode_ack(
        Status.SUCCESS, CommandId.WRITEMEM_ACK, request_id, WRITE_ACK_SCD.pack(0, bytes_written)
    )


def encode_pending_ack(request_id: int, time_ms: int) -> bytes:
    """PENDING_ACK: the command needs `time_ms` more milliseconds."""
    _check_u16("time_ms", time_ms)
    return encode_ack(
        Status.SUCCESS, CommandId.PENDING_ACK, request_id, PENDING_SCD.pack(0, time_ms)
    )


def ack_id_for(command_id: int) -> int:
    """The acknowledge id answering a command id: GenCP uses command id + 1 (0x0800 -> 0x0801)."""
    return (int(command_id) + 1) & 0xFFFF


def decode_ack(data: bytes) -> Ack:
    """Parse an acknowledge (host side). Raises ControlCodecError when malformed."""
    status, command_id, length, request_id, scd = _split_header(data, "acknowledge")
    if status == Status.SUCCESS:
        if command_id == CommandId.WRITEMEM_ACK and length != WRITE_ACK_SCD.size:
            raise ControlCodecError(
                f"WRITEMEM_ACK data must be {WRITE_ACK_SCD.size} bytes, got {length}",
                Status.INVALID_HEADER,
                request_id,
            )
        if command_id == CommandId.PENDING_ACK and length != PENDING_SCD.size:
            raise ControlCodecError(
                f"PENDING_ACK data must be {PENDING_SCD.size} bytes, got {length}",
                Status.INVALID_HEADER,
                request_id,
            )
    return Ack(status, command_id, request_id, scd)
