"""USB3 Vision bootstrap registers: ABRM, SBRM and SIRM layouts, their decoding, and the
stream-interface (SIRM) transfer arithmetic (pure functions; shared by the host driver and the
device emulator).

Offsets and sizes as in Aravis' arvuvcpprivate.h and the AIA's Wireshark dissector
(packet-u3v.c); all values little endian, strings NUL padded.

ABRM (technology-agnostic bootstrap registers, at address 0):

    0x000 u32  GenCP version (major << 16 | minor)    0x1C4 u64 device capability
    0x004 s64  manufacturer name                       0x1CC u32 maximum device response time, ms
    0x044 s64  model name                              0x1D0 u64 manifest table address
    0x084 s64  family name                             0x1D8 u64 SBRM address
    0x0C4 s64  device version                          0x1E0 u64 device configuration
    0x104 s64  manufacturer info                       0x1F0 u64 timestamp (ticks)
    0x144 s64  serial number                           0x1FC u64 timestamp increment, ns/tick
    0x184 s64  user defined name

SBRM (USB3 Vision bootstrap registers, at the ABRM's SBRM address):

    0x00 u32 U3V version         0x18 u32 maximum acknowledge transfer length, bytes
    0x04 u64 U3VCP capability    0x1C u32 number of stream channels
    0x0C u64 U3VCP configuration 0x20 u64 SIRM address
    0x14 u32 maximum command transfer length, bytes   0x28 u32 SIRM length

SIRM (streaming interface registers, at the SBRM's SIRM address):

    0x00 u32 SI_Info (bits 24-31: log2 of the required transfer alignment, bytes)
    0x04 u32 SI_Control (bit 0: stream enable)
    0x08 u64 required payload size   0x1C u32 payload transfer size
    0x10 u32 required leader size    0x20 u32 payload transfer count
    0x14 u32 required trailer size   0x24 u32 payload final transfer 1 size
    0x18 u32 maximum leader size     0x28 u32 payload final transfer 2 size
                                     0x2C u32 maximum trailer size
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import CodecError, InputError
from .status import Status

STRING_SIZE = 64


@dataclass(frozen=True)
class Field:
    """One bootstrap register: name, offset in its map, size (bytes), kind ("u32"/"u64"/"str")."""

    name: str
    offset: int
    size: int
    kind: str


def _fields(*rows: tuple[str, int, str]) -> dict[str, Field]:
    sizes = {"u32": 4, "u64": 8, "str": STRING_SIZE}
    return {name: Field(name, off, sizes[kind], kind) for name, off, kind in rows}


ABRM = _fields(
    ("gencp_version", 0x000, "u32"),
    ("manufacturer_name", 0x004, "str"),
    ("model_name", 0x044, "str"),
    ("family_name", 0x084, "str"),
    ("device_version", 0x0C4, "str"),
    ("manufacturer_info", 0x104, "str"),
    ("serial_number", 0x144, "str"),
    ("user_defined_name", 0x184, "str"),
    ("device_capability", 0x1C4, "u64"),
    ("max_response_time_ms", 0x1CC, "u32"),
    ("manifest_table_address", 0x1D0, "u64"),
    ("sbrm_address", 0x1D8, "u64"),
    ("device_configuration", 0x1E0, "u64"),
    ("timestamp", 0x1F0, "u64"),
    ("timestamp_increment_ns", 0x1FC, "u64"),
)
SBRM = _fields(
    ("u3v_version", 0x00, "u32"),
    ("u3vcp_capability", 0x04, "u64"),
    ("u3vcp_configuration", 0x0C, "u64"),
    ("max_cmd_transfer", 0x14, "u32"),
    ("max_ack_transfer", 0x18, "u32"),
    ("n_stream_channels", 0x1C, "u32"),
    ("sirm_address", 0x20, "u64"),
    ("sirm_length", 0x28, "u32"),
)
SIRM = _fields(
    ("si_info", 0x00, "u32"),
    ("si_control", 0x04, "u32"),
    ("required_payload_size", 0x08, "u64"),
    ("required_leader_size", 0x10, "u32"),
    ("required_trailer_size", 0x14, "u32"),
    ("max_leader_size", 0x18, "u32"),
    ("payload_transfer_size", 0x1C, "u32"),
    ("payload_transfer_count", 0x20, "u32"),
    ("final_transfer1_size", 0x24, "u32"),
    ("final_transfer2_size", 0x28, "u32"),
    ("max_trailer_size", 0x2C, "u32"),
)
SIRM_LENGTH = 0x30
SI_CONTROL_ENABLE = 0x1
#: the SIRM registers the host writes to configure the stream, in the order it writes them
SIRM_CONFIG = (
    "max_leader_size",
    "payload_transfer_size",
    "payload_transfer_count",
    "final_transfer1_size",
    "final_transfer2_size",
    "max_trailer_size",
)
#: device capability bit 0: the user defined name register is implemented
CAP_USER_DEFINED_NAME = 1 << 0
#: device capability bit 8: the family name register is implemented
CAP_FAMILY_NAME = 1 << 8
#: smallest transfer lengths a usable device can announce: a 12-byte header plus a u64 address
#: and one register for commands, and a header plus 4 bytes of data for acknowledges
MIN_CMD_TRANSFER = 12 + 8 + 4
MIN_ACK_TRANSFER = 12 + 4


def encode_field(field: Field, value: int | str) -> bytes:
    """Wire bytes of a bootstrap register value (InputError when it does not fit)."""
    if field.kind == "str":
        if not isinstance(value, str):
            raise InputError(f"{field.name} takes a string, got {value!r}")
        raw = value.encode("utf-8")
        if len(raw) >= field.size or b"\0" in raw:
            raise InputError(
                f"{field.name} must be at most {field.size - 1} UTF-8 bytes without NUL, "
                f"got {value!r}"
            )
        return raw.ljust(field.size, b"\0")
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value < 1 << 8 * field.size
    ):
        raise InputError(f"{field.name} must be an integer in 0..2**{8 * field.size}-1")
    return value.to_bytes(field.size, "little")


def decode_field(field: Field, data: bytes) -> int | str:
    """Value of a bootstrap register's bytes. CodecError for a wrong size or a bad string."""
    data = bytes(data)
    if len(data) != field.size:
        raise CodecError(f"{field.name} is {field.size} bytes, got {len(data)}")
    if field.kind != "str":
        return int.from_bytes(data, "little")
    text = data.split(b"\0", 1)[0]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError(f"{field.name} is not a UTF-8 string: {data[:16]!r}...") from None


def split_fields(fields: Mapping[str, Field], block: bytes) -> dict[str, bytes]:
    """Slice a contiguous copy of a register map (offset 0 upwards) into its fields' bytes;
    fields beyond the block's end are left out."""
    block = bytes(block)
    return {
        f.name: block[f.offset : f.offset + f.size]
        for f in fields.values()
        if f.offset + f.size <= len(block)
    }


def _decode_all(fields: Mapping[str, Field], raw: Mapping[str, bytes], what: str) -> dict:
    missing = [name for name in fields if name not in raw]
    if missing:
        raise CodecError(f"{what} fields missing: {', '.join(missing)}")
    return {name: decode_field(f, raw[name]) for name, f in fields.items()}


@dataclass(frozen=True)
class DeviceInfo:
    """The ABRM of a USB3 Vision device (strings decoded; addresses and times as integers)."""

    gencp_version: int
    manufacturer_name: str
    model_name: str
    family_name: str
    device_version: str
    manufacturer_info: str
    serial_number: str
    user_defined_name: str
    device_capability: int
    max_response_time_ms: int
    manifest_table_address: int
    sbrm_address: int
    device_configuration: int
    timestamp: int
    timestamp_increment_ns: int


def decode_abrm(raw: Mapping[str, bytes]) -> DeviceInfo:
    """DeviceInfo from the ABRM fields' bytes (by field name). CodecError when a field is
    missing or malformed, or when the device lacks an SBRM or a manifest (not USB3 Vision)."""
    v = _decode_all(ABRM, raw, "ABRM")
    if v["sbrm_address"] == 0:
        raise CodecError("the ABRM's SBRM address is 0: the device is not a USB3 Vision device")
    if v["manifest_table_address"] == 0:
        raise CodecError("the ABRM's manifest table address is 0: the device has no GenICam file")
    if v["timestamp_increment_ns"] == 0:
        raise CodecError("the ABRM's timestamp increment is 0 ns per tick")
    return DeviceInfo(**v)


@dataclass(frozen=True)
class Sbrm:
    """The SBRM of a USB3 Vision device: control-channel limits and where the SIRM is."""

    u3v_version: int
    u3vcp_capability: int
    u3vcp_configuration: int
    max_cmd_transfer: int
    max_ack_transfer: int
    n_stream_channels: int
    sirm_address: int
    sirm_length: int

    @property
    def max_read(self) -> int:
        """Largest READMEM count the device answers in one acknowledge, bytes."""
        return min(self.max_ack_transfer - 12, 0xFFFF)

    @property
    def max_write(self) -> int:
        """Largest WRITEMEM data the device takes in one command, bytes."""
        return min(self.max_cmd_transfer - 12 - 8, 0xFFFF - 8)


def decode_sbrm(raw: Mapping[str, bytes]) -> Sbrm:
    """Sbrm from the SBRM fields' bytes. CodecError when malformed, when the transfer limits
    are too small to carry a register, or when the device has no stream channel / SIRM."""
    v = _decode_all(SBRM, raw, "SBRM")
    if v["max_cmd_transfer"] < MIN_CMD_TRANSFER or v["max_ack_transfer"] < MIN_ACK_TRANSFER:
        raise CodecError(
            f"the SBRM announces command/acknowledge transfers of {v['max_cmd_transfer']}/"
            f"{v['max_ack_transfer']} bytes, below the {MIN_CMD_TRANSFER}/{MIN_ACK_TRANSFER} "
            "a register access needs"
        )
    if v["n_stream_channels"] < 1 or v["sirm_address"] == 0:
        raise CodecError("the device has no stream channel (SBRM): it cannot send images")
    return Sbrm(**v)


def alignment_of(si_info: int) -> int:
    """Transfer alignment the device requires, bytes: 2 ** SI_Info[31:24]. CodecError when the
    exponent is absurd (above 2**20 bytes)."""
    shift = (int(si_info) >> 24) & 0xFF
    if shift > 20:
        raise CodecError(f"SI_Info {si_info:#010x} asks for a 2**{shift}-byte alignment")
    return 1 << shift


def _align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


@dataclass(frozen=True)
class StreamPlan:
    """The SIRM transfer configuration of one stream: a leader transfer of at most
    `leader_size` bytes; `payload_count` payload transfers of `payload_size` bytes, then final
    transfer 1 and final transfer 2 (0 = none); a trailer of at most `trailer_size` bytes."""

    leader_size: int
    payload_size: int
    payload_count: int
    final1_size: int
    final2_size: int
    trailer_size: int

    @property
    def payload_transfers(self) -> tuple[int, ...]:
        """Buffer size of every payload transfer the host reads, in order, bytes."""
        finals = tuple(s for s in (self.final1_size, self.final2_size) if s)
        return (self.payload_size,) * self.payload_count + finals

    @property
    def payload_capacity(self) -> int:
        """Bytes the payload transfers can carry."""
        return self.payload_size * self.payload_count + self.final1_size + self.final2_size

    def registers(self) -> dict[str, int]:
        """SIRM register values of this plan, by SIRM field name (in SIRM_CONFIG order)."""
        values = (
            self.leader_size,
            self.payload_size,
            self.payload_count,
            self.final1_size,
            self.final2_size,
            self.trailer_size,
        )
        return dict(zip(SIRM_CONFIG, values, strict=True))


def plan_stream(
    required_payload: int,
    required_leader: int,
    required_trailer: int,
    alignment: int,
    max_transfer: int = 1 << 20,
) -> StreamPlan:
    """The transfers a host configures for a payload of `required_payload` bytes.

    Every size is a multiple of `alignment` (the device's, from SI_Info; a power of two). Payload
    transfers are as large as allowed (`max_transfer`, the host's largest bulk transfer, rounded
    down to the alignment) and exactly filled by the device, so a transfer never runs into the
    next block even when the payload is a multiple of the USB packet size. The remainder goes in
    final transfer 1 (its aligned part, exactly filled) and final transfer 2 (the rest, padded
    up to the alignment: the device ends it with a short packet).
    InputError for a non-positive size or an alignment that is not a power of two.
    """
    for name, v in (
        ("required_payload", required_payload),
        ("alignment", alignment),
        ("max_transfer", max_transfer),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be an integer >= 1, got {v!r}")
    if alignment & (alignment - 1):
        raise InputError(f"alignment must be a power of two, got {alignment}")
    if max_transfer < alignment:
        raise InputError(f"max_transfer {max_transfer} is below the alignment {alignment}")
    size = min(max_transfer // alignment, max(required_payload // alignment, 1)) * alignment
    count = required_payload // size
    rest = required_payload - count * size
    final1 = rest // alignment * alignment
    final2 = _align_up(rest - final1, alignment)
    return StreamPlan(
        _align_up(max(required_leader, 1), alignment),
        size,
        count,
        final1,
        final2,
        _align_up(max(required_trailer, 1), alignment),
    )


def check_stream_plan(
    plan: StreamPlan,
    required_payload: int,
    required_leader: int,
    required_trailer: int,
    alignment: int,
) -> Status:
    """What a device answers to SI_Control = enable with these SIRM settings: SUCCESS,
    SI_PAYLOAD_SIZE_NOT_ALIGNED (a payload transfer followed by more payload transfers is not a
    multiple of the alignment) or SI_REGISTERS_INCONSISTENT (the transfers cannot carry the
    leader, payload or trailer).

    The last payload transfer may be unaligned: Aravis (arvuvstream.c) configures a payload
    smaller than its largest transfer as one transfer of exactly the payload size, and cameras
    accept it; what must be aligned is where one transfer ends and the next begins."""
    if any(s % alignment for s in plan.payload_transfers[:-1]):
        return Status.SI_PAYLOAD_SIZE_NOT_ALIGNED
    if (
        plan.leader_size < required_leader
        or plan.trailer_size < required_trailer
        or plan.payload_capacity < required_payload
        or (plan.payload_count > 0 and plan.payload_size == 0)
    ):
        return Status.SI_REGISTERS_INCONSISTENT
    return Status.SUCCESS
