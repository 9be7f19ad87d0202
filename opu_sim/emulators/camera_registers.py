"""The emulated camera's private register map: SFNC feature names -> address, type, access,
unit, range (device side only).

The host never reads this table: it learns the registers from the GenICam XML the device serves
(camera.xml, described feature by feature; tests check the two agree). A read or write must
cover exactly one register: start at its address and have its size.

| address | feature              | type     | access | unit / values                          |
|---------|----------------------|----------|--------|----------------------------------------|
| 0x10000 | DeviceSerialNumber   | str[32]  | RO     | ASCII, NUL padded                      |
| 0x10020 | SensorWidth          | u32      | RO     | pixels                                 |
| 0x10024 | SensorHeight         | u32      | RO     | pixels                                 |
| 0x10028 | PixelBitDepth        | u32      | RO     | bits of the sensor's ADC (8, 10 or 12) |
| 0x10100 | Width                | u32      | RW*    | pixels, 1..SensorWidth - OffsetX       |
| 0x10104 | Height               | u32      | RW*    | pixels, 1..SensorHeight - OffsetY      |
| 0x10108 | OffsetX              | u32      | RW*    | pixels, 0..SensorWidth - Width         |
| 0x1010C | OffsetY              | u32      | RW*    | pixels, 0..SensorHeight - Height       |
| 0x10110 | PixelFormat          | enum u32 | RW*    | PFNC code, at most PixelBitDepth bits  |
| 0x10114 | PayloadSize          | u32      | RO     | bytes of one frame's payload           |
| 0x10200 | ExposureTime         | f64      | RW     | microseconds, 1.0 .. 10_000_000.0      |
| 0x10208 | Gain                 | f64      | RW     | dB, 0.0 .. 24.0                        |
| 0x10300 | TriggerMode          | enum u32 | RW*    | Off = 0, On = 1                        |
| 0x10304 | TriggerSource        | enum u32 | RW*    | Software = 0, Line0 = 1, Line1 = 2     |
| 0x10400 | AcquisitionStart     | command  | WO     | write 1 to execute                     |
| 0x10404 | AcquisitionStop      | command  | WO     | write 1 to execute                     |
| 0x10408 | AcquisitionStatus    | u32      | RO     | 1 while acquiring, else 0              |
| 0x10500 | FrameCounter         | u64      | RO     | frames acquired since AcquisitionStart |
| 0x10508 | MissedTriggerCounter | u64      | RO     | triggers ignored since power-up        |

RW* = writable only while not acquiring (ACCESS_DENIED otherwise). Values are little endian.
MissedTriggerCounter counts frames ignored because the camera was not acquiring or TriggerMode
was Off.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from firmware_iface.camera.pixel_formats import PixelFormat
from firmware_iface.errors import CodecError, InputError


class Kind(enum.Enum):
    """How a register's bytes encode its value."""

    U32 = "u32"
    U64 = "u64"
    F64 = "f64"
    STRING = "str"
    ENUM = "enum"  # u32 code with symbolic names
    COMMAND = "command"  # u32, write 1 to execute


class Access(enum.Enum):
    """Who may read or write a register."""

    RO = "RO"
    RW = "RW"
    WO = "WO"


@dataclass(frozen=True)
class Register:
    """One feature: its address, wire size (bytes), type, access, unit and documented range."""

    name: str
    address: int
    size: int
    kind: Kind
    access: Access
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    entries: dict[str, int] = field(default_factory=dict)
    locked_while_acquiring: bool = False
    strictly_positive: bool = False  # the host refuses values <= 0 before sending
    doc: str = ""

    @property
    def readable(self) -> bool:
        """True for RO and RW registers."""
        return self.access in (Access.RO, Access.RW)

    @property
    def writable(self) -> bool:
        """True for RW and WO registers."""
        return self.access in (Access.RW, Access.WO)


TRIGGER_MODES = {"Off": 0, "On": 1}
TRIGGER_SOURCES = {"Software": 0, "Line0": 1, "Line1": 2}
PIXEL_FORMATS = {f.name: int(f) for f in PixelFormat}
SERIAL_SIZE = 32
EXPOSURE_MIN_US = 1.0
EXPOSURE_MAX_US = 10_000_000.0
GAIN_MAX_DB = 24.0

_REGISTERS = (
    Register(
        "DeviceSerialNumber", 0x10000, SERIAL_SIZE, Kind.STRING, Access.RO, doc="serial number"
    ),
    Register("SensorWidth", 0x10020, 4, Kind.U32, Access.RO, "px", doc="sensor width"),
    Register("SensorHeight", 0x10024, 4, Kind.U32, Access.RO, "px", doc="sensor height"),
    Register("PixelBitDepth", 0x10028, 4, Kind.U32, Access.RO, "bit", doc="ADC bits of the sensor"),
    Register("Width", 0x10100, 4, Kind.U32, Access.RW, "px", 1, None, locked_while_acquiring=True),
    Register("Height", 0x10104, 4, Kind.U32, Access.RW, "px", 1, None, locked_while_acquiring=True),
    Register(
        "OffsetX", 0x10108, 4, Kind.U32, Access.RW, "px", 0, None, locked_while_acquiring=True
    ),
    Register(
        "OffsetY", 0x1010C, 4, Kind.U32, Access.RW, "px", 0, None, locked_while_acquiring=True
    ),
    Register(
        "PixelFormat",
        0x10110,
        4,
        Kind.ENUM,
        Access.RW,
        entries=PIXEL_FORMATS,
        locked_while_acquiring=True,
        doc="PFNC code",
    ),
    Register("PayloadSize", 0x10114, 4, Kind.U32, Access.RO, "B", doc="bytes per frame payload"),
    Register(
        "ExposureTime",
        0x10200,
        8,
        Kind.F64,
        Access.RW,
        "us",
        EXPOSURE_MIN_US,
        EXPOSURE_MAX_US,
        strictly_positive=True,
    ),
    Register("Gain", 0x10208, 8, Kind.F64, Access.RW, "dB", 0.0, GAIN_MAX_DB),
    Register(
        "TriggerMode",
        0x10300,
        4,
        Kind.ENUM,
        Access.RW,
        entries=TRIGGER_MODES,
        locked_while_acquiring=True,
    ),
    Register(
        "TriggerSource",
        0x10304,
        4,
        Kind.ENUM,
        Access.RW,
        entries=TRIGGER_SOURCES,
        locked_while_acquiring=True,
    ),
    Register("AcquisitionStart", 0x10400, 4, Kind.COMMAND, Access.WO),
    Register("AcquisitionStop", 0x10404, 4, Kind.COMMAND, Access.WO),
    Register("AcquisitionStatus", 0x10408, 4, Kind.U32, Access.RO, doc="1 while acquiring"),
    Register("FrameCounter", 0x10500, 8, Kind.U64, Access.RO, "frames"),
    Register("MissedTriggerCounter", 0x10508, 8, Kind.U64, Access.RO, "frames"),
)

#: feature name -> Register
REGISTERS: dict[str, Register] = {r.name: r for r in _REGISTERS}
#: address -> Register
BY_ADDRESS: dict[int, Register] = {r.address: r for r in _REGISTERS}


def register(name: str) -> Register:
    """The register of an SFNC feature name; InputError listing the known names otherwise."""
    try:
        return REGISTERS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown camera feature {name!r}; known features: {', '.join(REGISTERS)}"
        ) from None


def containing(address: int) -> Register | None:
    """The register whose bytes include `address` (None when the address maps to nothing)."""
    for r in _REGISTERS:
        if r.address <= address < r.address + r.size:
            return r
    return None


def _as_int(reg: Register, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{reg.name} takes an integer, got {value!r}")
    v = int(value)
    bits = 8 * reg.size
    if not 0 <= v < 1 << bits:
        raise InputError(f"{reg.name} must be in 0..2**{bits}-1, got {v}")
    return v


def _encode_f64(reg: Register, value: object) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{reg.name} takes a number ({reg.unit}), got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{reg.name} must be finite, got {v}")
    if reg.strictly_positive and v <= 0:
        raise InputError(f"{reg.name} must be > 0 {reg.unit}, got {v}")
    return struct.pack("<d", v)


def _encode_enum(reg: Register, value: object) -> bytes:
    if isinstance(value, str):
        if value not in reg.entries:
            raise InputError(f"{reg.name} has no entry {value!r}; use one of {list(reg.entries)}")
        code = reg.entries[value]
    else:
        code = _as_int(reg, value)
        if code not in reg.entries.values():
            raise InputError(
                f"{reg.name} has no entry with code {code:#x}; use one of {list(reg.entries)}"
            )
    return code.to_bytes(reg.size, "little")


def _encode_command(reg: Register, value: object) -> bytes:
    if isinstance(value, bool) or value != 1:
        raise InputError(f"{reg.name} is a command: write 1 to execute it, got {value!r}")
    return (1).to_bytes(reg.size, "little")


def _encode_string(reg: Register, value: object) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{reg.name} takes a string, got {value!r}")
    raw = value.encode("ascii", errors="strict") if value.isascii() else None
    if raw is None or len(raw) > reg.size or b"\0" in raw:
        raise InputError(
            f"{reg.name} must be ASCII without NUL, at most {reg.size} bytes, got {value!r}"
        )
    return raw.ljust(reg.size, b"\0")


def encode_value(reg: Register, value: object) -> bytes:
    """Wire bytes of `value` for `reg`, checked against its type (InputError when it does not fit).

    Enumerations take a symbolic name ("Mono12p", "On") or its integer code; commands take 1;
    floats must be finite (and > 0 for strictly positive features such as ExposureTime).
    """
    if reg.kind in (Kind.U32, Kind.U64):
        return _as_int(reg, value).to_bytes(reg.size, "little")
    encode = {
        Kind.F64: _encode_f64,
        Kind.ENUM: _encode_enum,
        Kind.COMMAND: _encode_command,
        Kind.STRING: _encode_string,
    }[reg.kind]
    return encode(reg, value)


def decode_raw(reg: Register, data: bytes) -> int | float | str:
    """Value of the register's bytes without symbolic mapping: enum codes stay integers."""
    data = bytes(data)
    if len(data) != reg.size:
        raise CodecError(f"{reg.name} is {reg.size} bytes, got {len(data)}")
    if reg.kind == Kind.F64:
        return struct.unpack("<d", data)[0]
    if reg.kind == Kind.STRING:
        text = data.split(b"\0", 1)[0]
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise CodecError(f"{reg.name} is not ASCII: {data!r}") from None
    return int.from_bytes(data, "little")


def decode_value(reg: Register, data: bytes) -> int | float | str:
    """Value of the register's bytes; enumerations come back as their symbolic name."""
    raw = decode_raw(reg, data)
    if reg.kind == Kind.ENUM:
        for name, code in reg.entries.items():
            if code == raw:
                return name
        raise CodecError(f"{reg.name} holds unknown code {raw:#x}")
    return raw
