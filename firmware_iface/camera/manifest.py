"""GenCP manifest table and the GenICam file it points to (pure functions, host and device).

The manifest table sits at the ABRM's manifest table address: a u64 entry count, then that many
64-byte entries (little endian; layout as in Aravis' ArvUvcpManifestEntry and the GenCP
standard):

    offset size field
    0      2    file version subminor
    2      1    file version minor
    3      1    file version major
    4      4    file format info: bits 0-2 file type (0 = device GenICam XML, 1 = buffer XML),
                bits 10-15 compression (0 = uncompressed XML, 1 = ZIP),
                bits 16-23 schema version minor, bits 24-31 schema version major
    8      8    register address of the file
    16     8    file size, bytes (as stored: zipped size for a ZIP)
    24     20   SHA-1 of the stored file (all zero: no hash given)
    44     20   reserved

The host reads the file with READMEM in pieces of at most the device's largest acknowledge data
(`read_plan`), checks the SHA-1, and unzips it (`genicam_xml`).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from ..errors import CodecError, InputError

ENTRY = struct.Struct("<HBBIQQ20s20s")
ENTRY_SIZE = ENTRY.size  # 64
COUNT_SIZE = 8
FILE_TYPE_DEVICE_XML = 0
COMPRESSION_NONE = 0
COMPRESSION_ZIP = 1
#: a manifest with more entries than this is taken for garbage (real devices list a few files)
MAX_ENTRIES = 64
#: a GenICam file larger than this is taken for garbage, bytes
MAX_FILE_SIZE = 64 << 20


@dataclass(frozen=True)
class ManifestEntry:
    """One file of the manifest table."""

    version: tuple[int, int, int]
    file_type: int
    compression: int
    schema: tuple[int, int]
    address: int
    size: int
    sha1: bytes

    @property
    def format_info(self) -> int:
        """The entry's 32-bit file format info word."""
        return (
            (self.file_type & 0x7)
            | (self.compression & 0x3F) << 10
            | (self.schema[1] & 0xFF) << 16
            | (self.schema[0] & 0xFF) << 24
        )


def decode_count(data: bytes) -> int:
    """Entry count from the table's first 8 bytes. CodecError for a wrong size or a count
    beyond MAX_ENTRIES."""
    data = bytes(data)
    if len(data) != COUNT_SIZE:
        raise CodecError(f"manifest entry count is {COUNT_SIZE} bytes, got {len(data)}")
    n = int.from_bytes(data, "little")
    if n > MAX_ENTRIES:
        raise CodecError(f"manifest announces {n} entries (more than {MAX_ENTRIES}): garbage")
    return n


def decode_entry(data: bytes) -> ManifestEntry:
    """One 64-byte manifest entry. CodecError for a wrong size, an empty or oversized file."""
    data = bytes(data)
    if len(data) != ENTRY_SIZE:
        raise CodecError(f"a manifest entry is {ENTRY_SIZE} bytes, got {len(data)}")
    sub, minor, major, info, address, size, sha1, _reserved = ENTRY.unpack(data)
    if not 0 < size <= MAX_FILE_SIZE:
        raise CodecError(f"manifest entry gives a file of {size} bytes")
    if address + size > 1 << 64:
        raise CodecError(f"manifest file at {address:#x} (+{size}) runs past the address space")
    return ManifestEntry(
        (major, minor, sub),
        info & 0x7,
        (info >> 10) & 0x3F,
        ((info >> 24) & 0xFF, (info >> 16) & 0xFF),
        address,
        size,
        sha1,
    )


def decode_table(data: bytes) -> list[ManifestEntry]:
    """The entries of a whole table (count + entries). CodecError when malformed."""
    data = bytes(data)
    n = decode_count(data[:COUNT_SIZE])
    if len(data) != COUNT_SIZE + n * ENTRY_SIZE:
        raise CodecError(
            f"manifest of {n} entries needs {COUNT_SIZE + n * ENTRY_SIZE} bytes, got {len(data)}"
        )
    return [
        decode_entry(data[COUNT_SIZE + k * ENTRY_SIZE : COUNT_SIZE + (k + 1) * ENTRY_SIZE])
        for k in range(n)
    ]


def encode_table(entries: list[ManifestEntry]) -> bytes:
    """Table bytes (count + 64-byte entries) for a device."""
    out = [len(entries).to_bytes(COUNT_SIZE, "little")]
    for e in entries:
        major, minor, sub = e.version
        sha1 = bytes(e.sha1)
        if len(sha1) != 20:
            raise InputError(f"SHA-1 must be 20 bytes, got {len(sha1)}")
        out.append(ENTRY.pack(sub, minor, major, e.format_info, e.address, e.size, sha1, b""))
    return b"".join(out)


def device_xml_entry(entries: list[ManifestEntry]) -> ManifestEntry:
    """The device GenICam XML entry to load: among entries of file type 0 with a supported
    compression, the highest schema and file version. CodecError when there is none."""
    usable = [
        e
        for e in entries
        if e.file_type == FILE_TYPE_DEVICE_XML
        and e.compression in (COMPRESSION_NONE, COMPRESSION_ZIP)
    ]
    if not usable:
        kinds = [(e.file_type, e.compression) for e in entries]
        raise CodecError(
            f"the manifest lists no device GenICam XML the host can read (file type, "
            f"compression of its entries: {kinds})"
        )
    return max(usable, key=lambda e: (e.schema, e.version))


def read_plan(address: int, size: int, max_read: int) -> list[tuple[int, int]]:
    """(address, count) of the READMEMs that fetch `size` bytes at `address`, each at most
    `max_read` bytes (the device's acknowledge limit minus the 12-byte header)."""
    if isinstance(max_read, bool) or not isinstance(max_read, int) or max_read < 1:
        raise InputError(f"max_read must be an integer >= 1, got {max_read!r}")
    return [(address + off, min(max_read, size - off)) for off in range(0, size, max_read)]


def genicam_xml(entry: ManifestEntry, stored: bytes) -> str:
    """The XML text of the file read from the device: SHA-1 checked (unless the entry gives
    none), unzipped when the entry says ZIP. CodecError when the size or hash differs, the ZIP
    is damaged or holds no single .xml file, or the text is not UTF-8."""
    stored = bytes(stored)
    if len(stored) != entry.size:
        raise CodecError(f"GenICam file is {len(stored)} bytes, the manifest says {entry.size}")
    if any(entry.sha1) and hashlib.sha1(stored).digest() != entry.sha1:
        raise CodecError(
            "GenICam file SHA-1 differs from the manifest's: the download is corrupt; "
            "reconnect the camera and open it again"
        )
    raw = _unzip(stored) if entry.compression == COMPRESSION_ZIP else stored
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CodecError(f"GenICam XML is not UTF-8 text ({e})") from e


def _unzip(stored: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(stored)) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".xml")]
            if len(names) != 1:
                raise CodecError(f"GenICam ZIP must hold one .xml file, holds {z.namelist()}")
            info = z.getinfo(names[0])
            if info.file_size > MAX_FILE_SIZE:
                raise CodecError(f"GenICam XML unzips to {info.file_size} bytes: too large")
            return z.read(names[0])
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        ValueError,
        NotImplementedError,
        OSError,
        KeyError,
        struct.error,
        zlib.error,
    ) as e:
        raise CodecError(f"GenICam ZIP does not unpack ({e})") from e


def zip_xml(xml: str, name: str = "camera.xml") -> bytes:
    """A device's stored form of its GenICam XML: a ZIP holding one deflated file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, xml.encode("utf-8"))
    return buf.getvalue()
