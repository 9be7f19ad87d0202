"""DLPC900 USB command codes and their payload codecs (DLPU018 chapter 2). Pure functions.

Every multi-byte field is little endian. Section numbers refer to DLPU018J (June 2024).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, TypeVar

from ..errors import CodecError

_S = TypeVar("_S")


class Command(IntEnum):
    """USB command codes used by this package (DLPU018 tables per command)."""

    READ_ERROR_CODE = 0x0100  # 2.1.6
    READ_ERROR_DESCRIPTION = 0x0101  # 2.1.7
    FIRMWARE_VERSION = 0x0205  # 2.1.4
    HARDWARE_STATUS = 0x1A0A  # 2.1.1
    SYSTEM_STATUS = 0x1A0B  # 2.1.2
    MAIN_STATUS = 0x1A0C  # 2.1.3
    DISPLAY_MODE = 0x1A1B  # 2.4.1 Display Mode Selection
    PATTERN_START_STOP = 0x1A24  # Pattern Display Start/Stop
    BMP_LOAD_INIT = 0x1A2A  # Initialize Pattern BMP Load (primary controller)
    BMP_LOAD_DATA = 0x1A2B  # Pattern BMP Load (primary controller)
    LUT_CONFIGURATION = 0x1A31  # Pattern Display LUT Configuration
    LUT_DEFINITION = 0x1A34  # Pattern Display LUT Definition


class DisplayMode(IntEnum):
    """Byte 0 of 0x1A1B."""

    VIDEO = 0
    PRE_STORED_PATTERN = 1
    VIDEO_PATTERN = 2
    PATTERN_ON_THE_FLY = 3


class PatternAction(IntEnum):
    """Byte 0 of 0x1A24."""

    STOP = 0
    PAUSE = 1
    START = 2


class LedColor(IntEnum):
    """Byte 5 bits 6:4 of a LUT definition: which LED outputs are enabled."""

    NONE = 0
    RED = 1
    GREEN = 2
    YELLOW = 3
    BLUE = 4
    MAGENTA = 5
    CYAN = 6
    WHITE = 7


class ErrorCode(IntEnum):
    """Values of 0x0100 (Read Error Code), each with `.description`: its text as in DLPU018
    2.1.6 (the controller's 0x0101 strings match it)."""

    description: str

    def __new__(cls, value: int, description: str) -> ErrorCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    NO_ERROR = 0, ""  # the controller returns "" for "no error" (TI E2E thread 430299)
    BATCH_FILE_CHECKSUM = 1, "Batch file checksum error"
    DEVICE_FAILURE = 2, "Device failure"
    INVALID_COMMAND = 3, "Invalid command number"
    INCOMPATIBLE_CONTROLLER_DMD = 4, "Incompatible controller and DMD combination"
    NOT_ALLOWED_IN_MODE = 5, "Command not allowed in current mode"
    INVALID_PARAMETER = 6, "Invalid command parameter"
    ITEM_NOT_PRESENT = 7, "Item referred by the parameter is not present"
    OUT_OF_RESOURCE = 8, "Out of resource (RAM or Flash)"
    INVALID_BMP_COMPRESSION = 9, "Invalid BMP compression type"
    BIT_NUMBER_OUT_OF_RANGE = 10, "Pattern bit number out of range"
    BMP_NOT_PRESENT = 11, "Pattern BMP not present in flash"
    DARK_TIME_OUT_OF_RANGE = 12, "Pattern dark time is out of range"
    SIGNAL_DELAY_OUT_OF_RANGE = 13, "Signal delay parameter is out of range"
    EXPOSURE_OUT_OF_RANGE = 14, "Pattern exposure time is out of range"
    PATTERN_NUMBER_OUT_OF_RANGE = 15, "Pattern number is out of range"
    INVALID_PATTERN_DEFINITION = 16, "Invalid pattern definition (errors other than 9-15)"
    IMAGE_ADDRESS_OUT_OF_RANGE = 17, "Pattern image memory address is out of range"
    INTERNAL_ERROR = 255, "Internal Error"


ERROR_DESCRIPTIONS: dict[int, str] = {int(code): code.description for code in ErrorCode}
"""ErrorCode value -> description (DLPU018 2.1.6)."""

ERROR_DESCRIPTION_SIZE = 128
"""Bytes returned by 0x0101: an ASCII string, NUL terminated and padded."""

MAX_LUT_ENTRIES = 400
"""Pattern Display LUT entries for DMDs other than the DLP5500 (0x1A31 byte 1:0)."""
MAX_IMAGE_INDEX = 17
"""Largest 24-bit image index of Initialize Pattern BMP Load (0x1A2A byte 1:0, 0..17)."""
MAX_BMP_CHUNK = 504
"""Largest data chunk of one Pattern BMP Load (0x1A2B) command, bytes: 4 header + 2 command +
2 length + 504 = the 512-byte command buffer."""
MAX_24BIT = 0xFFFFFF
MIN_EXPOSURE_1BIT_US = 105
"""Shortest 1-bit pattern exposure of the DLP6500 in pattern mode, microseconds."""


def _u8(data: bytes, name: str, size: int) -> None:
    if len(data) != size:
        raise CodecError(f"{name} payload must be {size} bytes, got {len(data)}")


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise CodecError(f"{name} must be an integer {lo}..{hi}, got {value!r}")


# --- display mode, start/stop -----------------------------------------------------------------


def encode_display_mode(mode: DisplayMode | int) -> bytes:
    """Payload of 0x1A1B (1 byte)."""
    _check_range("display mode", int(mode), 0, 3)
    return bytes([int(mode)])


def decode_display_mode(data: bytes) -> DisplayMode:
    """DisplayMode from a 0x1A1B payload or read reply."""
    _u8(data, "display mode", 1)
    if data[0] & 0xFC:
        raise CodecError(f"display mode byte 0x{data[0]:02X} has reserved bits 7:2 set")
    return DisplayMode(data[0] & 0x03)


def encode_pattern_action(action: PatternAction | int) -> bytes:
    """Payload of 0x1A24 (1 byte: 0 stop, 1 pause, 2 start)."""
    _check_range("pattern start/stop action", int(action), 0, 2)
    return bytes([int(action)])


def decode_pattern_action(data: bytes) -> PatternAction:
    """PatternAction from a 0x1A24 payload; value 3 and bits 7:2 are reserved."""
    _u8(data, "pattern start/stop", 1)
    if data[0] > 2:
        raise CodecError(
            f"pattern start/stop value {data[0]} is reserved (0 stop, 1 pause,"
            f" 2 start)"
        )
    return PatternAction(data[0])


# --- LUT ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LutEntry:
    """One Pattern Display LUT Definition (0x1A34, 12 bytes).

    exposure_us, dark_time_us: microseconds (24 bit). bit_depth: 1..8. bit_position: which bit
    of the 24-bit image (0..23) holds this 1-bit pattern. wait_for_trigger: the pattern waits
    for an external trigger (byte 5 bit 7); clear_after_exposure: byte 5 bit 0.
    """

    pattern_index: int
    exposure_us: int
    image_index: int
    bit_position: int
    dark_time_us: int = 0
    clear_after_exposure: bool = True
    bit_depth: int = 1
    color: LedColor = LedColor.WHITE
    wait_for_trigger: bool = True
    disable_trigger2: bool = False
    extended_bit_depth: bool = False


LUT_ENTRY_SIZE = 12


def encode_lut_entry(entry: LutEntry) -> bytes:
    """The 12-byte payload of 0x1A34 (DLPU018 table "Pattern Display LUT Definition").

    bytes 1:0 pattern index; 4:2 exposure us; 5: bit 0 clear, bits 3:1 bit depth - 1,
    bits 6:4 LED color, bit 7 wait for trigger; 8:6 dark time us; 9: bit 0 disable trigger 2,
    bit 1 extended bit depth; 11:10: bits 10:0 image index, bits 15:11 bit position.
    """
    _check_range("pattern index", entry.pattern_index, 0, 0xFFFF)
    _check_range("exposure_us", entry.exposure_us, 0, MAX_24BIT)
    _check_range("dark_time_us", entry.dark_time_us, 0, MAX_24BIT)
    _check_range("bit depth", entry.bit_depth, 1, 8)
    _check_range("LED color", int(entry.color), 0, 7)
    _check_range("image index", entry.image_index, 0, 0x7FF)
    _check_range("bit position", entry.bit_position, 0, 0x1F)
    b5 = (
        int(bool(entry.clear_after_exposure))
        | (entry.bit_depth - 1) << 1
        | int(entry.color) << 4
        | int(bool(entry.wait_for_trigger)) << 7
    )
    b9 = int(bool(entry.disable_trigger2)) | int(bool(entry.extended_bit_depth)) << 1
    img = entry.image_index | entry.bit_position << 11
    return (
        struct.pack("<H", entry.pattern_index)
        + entry.exposure_us.to_bytes(3, "little")
        + bytes([b5])
        + entry.dark_time_us.to_bytes(3, "little")
        + bytes([b9])
        + struct.pack("<H", img)
    )


def decode_lut_entry(data: bytes) -> LutEntry:
    """LutEntry from a 12-byte 0x1A34 payload; reserved byte-9 bits 7:2 must be zero."""
    _u8(data, "LUT definition", LUT_ENTRY_SIZE)
    (pattern_index,) = struct.unpack_from("<H", data, 0)
    b5, b9 = data[5], data[9]
    if b9 & 0xFC:
        raise CodecError(f"LUT definition byte 9 = 0x{b9:02X} has reserved bits 7:2 set")
    (img,) = struct.unpack_from("<H", data, 10)
    return LutEntry(
        pattern_index=pattern_index,
        exposure_us=int.from_bytes(data[2:5], "little"),
        image_index=img & 0x7FF,
        bit_position=img >> 11,
        dark_time_us=int.from_bytes(data[6:9], "little"),
        clear_after_exposure=bool(b5 & 1),
        bit_depth=((b5 >> 1) & 0x7) + 1,
        color=LedColor((b5 >> 4) & 0x7),
        wait_for_trigger=bool(b5 & 0x80),
        disable_trigger2=bool(b9 & 1),
        extended_bit_depth=bool(b9 & 2),
    )


def encode_lut_configuration(n_entries: int, n_patterns: int) -> bytes:
    """Payload of 0x1A31 (6 bytes): entries in the LUT (bits 10:0), then the number of
    patterns to display (32 bit; 0 = repeat the sequence indefinitely)."""
    _check_range("number of LUT entries", n_entries, 0, 0x7FF)
    _check_range("number of patterns to display", n_patterns, 0, 0xFFFFFFFF)
    return struct.pack("<HI", n_entries, n_patterns)


def decode_lut_configuration(data: bytes) -> tuple[int, int]:
    """(n_entries, n_patterns_to_display) from a 0x1A31 payload; bits 15:11 are reserved."""
    _u8(data, "LUT configuration", 6)
    n_entries, n_patterns = struct.unpack("<HI", data)
    if n_entries & 0xF800:
        raise CodecError(f"LUT configuration word 0x{n_entries:04X} has reserved bits 15:11 set")
    return n_entries, n_patterns


# --- pattern BMP upload --------------------------------------------------------------------------


def encode_bmp_load_init(image_index: int, n_bytes: int) -> bytes:
    """Payload of 0x1A2A (6 bytes): image index (bits 4:0 used, 0..17), then the number of
    bytes of the image including its 48-byte header (32 bit)."""
    _check_range("image index", image_index, 0, MAX_IMAGE_INDEX)
    _check_range("image size in bytes", n_bytes, 0, 0xFFFFFFFF)
    return struct.pack("<HI", image_index, n_bytes)


def decode_bmp_load_init(data: bytes) -> tuple[int, int]:
    """(image_index, n_bytes) from a 0x1A2A payload (reserved bits are returned as part of the
    index so the controller can refuse them)."""
    _u8(data, "pattern BMP load init", 6)
    image_index, n_bytes = struct.unpack("<HI", data)
    return image_index, n_bytes


def encode_bmp_load_data(chunk: bytes) -> bytes:
    """Payload of 0x1A2B: 2-byte chunk length, then the chunk (at most 504 bytes)."""
    if not 1 <= len(chunk) <= MAX_BMP_CHUNK:
        raise CodecError(
            f"a pattern BMP load chunk holds 1..{MAX_BMP_CHUNK} bytes,"
            f" got {len(chunk)}"
        )
    return struct.pack("<H", len(chunk)) + bytes(chunk)


def decode_bmp_load_data(data: bytes) -> bytes:
    """The chunk from a 0x1A2B payload; its length field must match the bytes present."""
    if len(data) < 2:
        raise CodecError(f"pattern BMP load payload needs a 2-byte length, got {len(data)} bytes")
    (n,) = struct.unpack_from("<H", data, 0)
    if n != len(data) - 2:
        raise CodecError(
            f"pattern BMP load length field says {n} bytes,"
            f" payload carries {len(data) - 2}"
        )
    if n > MAX_BMP_CHUNK:
        raise CodecError(f"pattern BMP load chunk of {n} bytes exceeds {MAX_BMP_CHUNK}")
    return bytes(data[2:])


def split_image(image: bytes, chunk: int = MAX_BMP_CHUNK) -> list[bytes]:
    """Cut an image (header + data) into 0x1A2B chunks of at most `chunk` bytes."""
    if not 1 <= chunk <= MAX_BMP_CHUNK:
        raise CodecError(f"chunk size must be 1..{MAX_BMP_CHUNK}, got {chunk}")
    mv = memoryview(image)
    return [bytes(mv[i : i + chunk]) for i in range(0, len(image), chunk)]


# --- status and error read-back ---------------------------------------------------------------


def encode_error_code(code: int) -> bytes:
    """Reply data of 0x0100 (1 byte)."""
    _check_range("error code", code, 0, 255)
    return bytes([code])


def decode_error_code(data: bytes) -> int:
    """Error code from a 0x0100 reply."""
    _u8(data, "error code", 1)
    return data[0]


def encode_error_description(text: str) -> bytes:
    """Reply data of 0x0101: ASCII, NUL terminated, zero padded to 128 bytes."""
    raw = text.encode("ascii")
    if len(raw) >= ERROR_DESCRIPTION_SIZE:
        raise CodecError(
            f"error description must be < {ERROR_DESCRIPTION_SIZE} ASCII bytes,"
            f" got {len(raw)}"
        )
    return raw + bytes(ERROR_DESCRIPTION_SIZE - len(raw))


def decode_error_description(data: bytes) -> str:
    """The string of a 0x0101 reply (up to the first NUL)."""
    if not 1 <= len(data) <= ERROR_DESCRIPTION_SIZE:
        raise CodecError(
            f"error description reply must be 1..{ERROR_DESCRIPTION_SIZE} bytes,"
            f" got {len(data)}"
        )
    text = bytes(data).split(b"\0", 1)[0]
    try:
        return text.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CodecError(f"error description is not ASCII: {text!r}") from exc


def _flag(bit: int, error: bool = False, required: bool = False) -> Any:
    """A field of a status byte: its bit, and whether a set bit reports an error."""
    meta = {"bit": bit, "error": error}
    return field(metadata=meta) if required else field(default=False, metadata=meta)


def _encode_flags(status: Any) -> bytes:
    """The status byte of a dataclass of _flag fields."""
    return bytes([sum(int(getattr(status, f.name)) << f.metadata["bit"] for f in fields(status))])


def _decode_flags(cls: type[_S], byte: int) -> _S:
    """The dataclass of _flag fields for a status byte (undefined bits ignored)."""
    return cls(**{f.name: bool(byte >> f.metadata["bit"] & 1) for f in fields(cls)})


@dataclass(frozen=True)
class HardwareStatus:
    """0x1A0A byte 0 (DLPU018 2.1.1); bit 5 is reserved."""

    initialized: bool = _flag(0, required=True)
    incompatible_controller_or_dmd: bool = _flag(1, error=True)
    dmd_reset_controller_error: bool = _flag(2, error=True)
    forced_swap_error: bool = _flag(3, error=True)
    secondary_controller_present: bool = _flag(4)
    sequencer_abort: bool = _flag(6, error=True)
    sequencer_error: bool = _flag(7, error=True)

    @property
    def ok(self) -> bool:
        """Initialised and no error flag set."""
        return self.initialized and not any(
            getattr(self, f.name) for f in fields(self) if f.metadata["error"]
        )


def encode_hardware_status(status: HardwareStatus) -> bytes:
    """Reply data of 0x1A0A (1 byte)."""
    return _encode_flags(status)


def decode_hardware_status(data: bytes) -> HardwareStatus:
    """HardwareStatus from a 0x1A0A reply."""
    _u8(data, "hardware status", 1)
    return _decode_flags(HardwareStatus, data[0])


@dataclass(frozen=True)
class MainStatus:
    """0x1A0C byte 0 (DLPU018 2.1.3): bit 0 DMD parked, bit 1 sequencer running, bit 2 video
    frozen, bit 3 external source locked, bits 4/5 port 1/2 syncs valid."""

    dmd_parked: bool = _flag(0)
    sequencer_running: bool = _flag(1)
    video_frozen: bool = _flag(2)
    external_source_locked: bool = _flag(3)
    port1_syncs_valid: bool = _flag(4)
    port2_syncs_valid: bool = _flag(5)


def encode_main_status(status: MainStatus) -> bytes:
    """Reply data of 0x1A0C (1 byte)."""
    return _encode_flags(status)


def decode_main_status(data: bytes) -> MainStatus:
    """MainStatus from a 0x1A0C reply (some firmware returns more bytes; byte 0 is used)."""
    if len(data) < 1:
        raise CodecError("main status reply is empty")
    return _decode_flags(MainStatus, data[0])


@dataclass(frozen=True)
class FirmwareVersion:
    """0x0205 reply: four (major, minor, patch) revisions."""

    application: tuple[int, int, int]
    api: tuple[int, int, int]
    software_config: tuple[int, int, int]
    sequencer_config: tuple[int, int, int]

    def __str__(self) -> str:
        a = self.application
        return f"{a[0]}.{a[1]}.{a[2]}"


def _version_word(v: tuple[int, int, int]) -> bytes:
    major, minor, patch = v
    _check_range("major revision", major, 0, 255)
    _check_range("minor revision", minor, 0, 255)
    _check_range("patch number", patch, 0, 0xFFFF)
    return struct.pack("<HBB", patch, minor, major)


def encode_firmware_version(version: FirmwareVersion) -> bytes:
    """Reply data of 0x0205 (16 bytes; each 32-bit word: bits 15:0 patch, 23:16 minor,
    31:24 major)."""
    return b"".join(
        _version_word(v)
        for v in (
            version.application,
            version.api,
            version.software_config,
            version.sequencer_config,
        )
    )


def decode_firmware_version(data: bytes) -> FirmwareVersion:
    """FirmwareVersion from a 0x0205 reply."""
    _u8(data, "firmware version", 16)
    words = []
    for i in range(4):
        patch, minor, major = struct.unpack_from("<HBB", data, 4 * i)
        words.append((major, minor, patch))
    return FirmwareVersion(*words)
