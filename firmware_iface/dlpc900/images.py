"""Pattern images of the DLPC900 pattern-on-the-fly mode (DLPU018 2.4.4): up to 24 one-bit
patterns packed into one 24-bit image, the 48-byte image header, and the host-side
preparation pipeline (pack -> compress -> header) that turns patterns into upload payloads.

Bit k (0..23) of a pixel word is the pattern shown by a LUT entry with bit position k; pattern
n of a sequence goes to image n // 24, bit n % 24. Pure functions, no device state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numba
import numpy as np

from ..errors import CodecError, InputError
from ..geometry import DmdLayout
from .commands import MAX_IMAGE_INDEX, MAX_LUT_ENTRIES
from .erle import (
    MAX_ERLE_LENGTH,
    decode_erle,
    decode_rle,
    decode_uncompressed,
    emit_erle_copy,
    emit_erle_end,
    emit_erle_runs,
    encode_erle,
    encode_rle,
    encode_uncompressed,
    erle_bound,
)

PATTERNS_PER_IMAGE = 24
HEADER_SIZE = 48
SIGNATURE = b"Spld"  # 0x53 0x70 0x6C 0x64
DMD_WIDTH = 1920
DMD_HEIGHT = 1080
MAX_IMAGE_WIDTH = 2560
MAX_IMAGE_HEIGHT = 1600
"""Largest image a DLPC900 takes (the DLP9000's 2560 x 1600 mirrors), pixels. decode_image
refuses larger headers before allocating the image."""
MAX_PATTERNS = min(MAX_LUT_ENTRIES, (MAX_IMAGE_INDEX + 1) * PATTERNS_PER_IMAGE)
"""Most 1-bit patterns one pattern-on-the-fly sequence can hold (400 LUT entries)."""


class Compression(IntEnum):
    """Header byte 25."""

    UNCOMPRESSED = 0
    RLE = 1
    ERLE = 2


@dataclass(frozen=True)
class ImageHeader:
    """The 48-byte image header (DLPU018 table "Image header"): signature "Spld", width and
    height in pixels, size of the encoded data in bytes (header excluded), background color
    (24-bit word, stored BB GG RR 00), compression."""

    width: int
    height: int
    data_size: int
    compression: Compression
    background: int = 0


def encode_image_header(h: ImageHeader) -> bytes:
    """48 bytes: signature, width (2), height (2), data size (4), 8 x 0xFF, background (4),
    0x00, compression, 0x01, 21 x 0x00."""
    for name, v, hi in (
        ("width", h.width, 0xFFFF),
        ("height", h.height, 0xFFFF),
        ("data size", h.data_size, 0xFFFFFFFF),
        ("background", h.background, 0xFFFFFF),
    ):
        if not isinstance(v, int) or not 0 <= v <= hi:
            raise CodecError(f"image header {name} must be 0..{hi}, got {v!r}")
    return (
        SIGNATURE
        + struct.pack("<HHI", h.width, h.height, h.data_size)
        + b"\xff" * 8
        + struct.pack("<I", h.background)
        + bytes([0, int(Compression(h.compression)), 1])
        + bytes(21)
    )


def decode_image_header(data: bytes) -> ImageHeader:
    """ImageHeader from the first 48 bytes of an image; CodecError on a wrong signature or an
    unknown compression (DLPU018 2.4.2: "Spld"; compression 0, 1 or 2).

    The reserved bytes (12-19, 24, 26-47) and the background's fourth byte are not checked:
    real host code sends other values than DLPU018 prints and real boards accept them. The TI
    GUI's own header (USB capture in TI E2E thread 599044; mcSIM's header "taken directly from
    sniffer of the TI GUI") has byte 24 = 0x01 and byte 29 = 0x01."""
    if len(data) < HEADER_SIZE:
        raise CodecError(f"image header needs {HEADER_SIZE} bytes, got {len(data)}")
    if data[:4] != SIGNATURE:
        raise CodecError(
            f"image header signature must be {SIGNATURE!r} (DLPU018 2.4.2), got "
            f"{bytes(data[:4])!r}"
        )
    width, height, size = struct.unpack_from("<HHI", data, 4)
    (background,) = struct.unpack_from("<I", data, 20)
    if data[25] not in (0, 1, 2):
        raise CodecError(
            f"image compression byte must be 0, 1 or 2 (DLPU018 2.4.2), got {data[25]}"
        )
    return ImageHeader(width, height, size, Compression(data[25]), background & 0xFFFFFF)


def header_size_matches(size_field: int, n_total: int) -> bool:
    """Whether an image header's size field fits an image of n_total bytes (header included).

    Both conventions of host code that loads real boards are accepted: the encoded data size
    (DLPU018 2.4.2 "number of bytes in encoded image data"; the TI GUI, mcSIM) and the total
    including the 48-byte header, padded to 4 bytes (Pycrafter6500 / the ERLE encoder it
    copies, which sends the same total in 0x1A2A)."""
    return size_field in (n_total - HEADER_SIZE, n_total)


def encode_image(words: np.ndarray, compression: Compression = Compression.ERLE) -> bytes:
    """Header + compressed data of an (H, W) uint32 image of 24-bit words."""
    comp = Compression(compression)
    if comp == Compression.ERLE:
        body = encode_erle(words)
    elif comp == Compression.RLE:
        body = encode_rle(words)
    else:
        body = encode_uncompressed(words)
    h, w = np.shape(words)
    return encode_image_header(ImageHeader(w, h, len(body), comp)) + body


def decode_image(data: bytes) -> tuple[ImageHeader, np.ndarray]:
    """(header, (H, W) uint32 words) from an image's bytes (header + data, nothing more; the
    size field may count the data or the total, see header_size_matches)."""
    h = decode_image_header(data)
    body = bytes(data[HEADER_SIZE:])
    if not header_size_matches(h.data_size, len(data)):
        raise CodecError(
            f"image header announces {h.data_size} bytes; an image of {len(data)} bytes "
            f"(header included) needs {len(body)} (data size, DLPU018 2.4.2) or {len(data)} "
            "(total, as Pycrafter6500 writes it)"
        )
    if h.width > MAX_IMAGE_WIDTH or h.height > MAX_IMAGE_HEIGHT:
        raise CodecError(
            f"image header announces {h.width}x{h.height} pixels, larger than any DMD of the "
            f"DLPC900 ({MAX_IMAGE_WIDTH}x{MAX_IMAGE_HEIGHT}); the header is corrupt"
        )
    if h.compression == Compression.ERLE:
        words = decode_erle(body, h.width, h.height)
    elif h.compression == Compression.RLE:
        words = decode_rle(body, h.width, h.height)
    else:
        words = decode_uncompressed(body, h.width, h.height)
    return h, words


# --- packing -------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _pack(p, out):
    n, h, w = p.shape
    for y in range(h):
        row = out[y]
        for x in range(w):
            row[x] = 0
        for k in range(n):
            src = p[k, y]
            sh = np.uint32(k)
            for x in range(w):
                row[x] |= np.uint32(src[x]) << sh


def pack_patterns(patterns: np.ndarray) -> np.ndarray:
    """(H, W) uint32 words from (n <= 24, H, W) bool patterns: bit k = pattern k."""
    p = np.asarray(patterns)
    if p.ndim != 3 or not 1 <= p.shape[0] <= PATTERNS_PER_IMAGE or p.dtype != np.bool_:
        raise InputError(
            f"pack_patterns needs (1..24, H, W) bool patterns,"
            f" got {p.dtype} {p.shape}"
        )
    out = np.empty(p.shape[1:], np.uint32)
    _pack(np.ascontiguousarray(p).view(np.uint8), out)
    return out


def unpack_pattern(words: np.ndarray, bit_position: int) -> np.ndarray:
    """(H, W) bool: the 1-bit pattern at bit_position (0..23) of a 24-bit image."""
    if not 0 <= bit_position < PATTERNS_PER_IMAGE:
        raise InputError(f"bit position must be 0..23, got {bit_position}")
    return ((np.asarray(words) >> np.uint32(bit_position)) & np.uint32(1)).astype(bool)


# --- upload preparation ------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadPlan:
    """What a pattern sequence needs on the controller.

    images: image index i -> its bytes (48-byte header + data), ready for 0x1A2A/0x1A2B.
    slots: (N, 2) int64, pattern n -> (image index, bit position).
    """

    images: tuple[bytes, ...]
    slots: np.ndarray

    @property
    def n_patterns(self) -> int:
        """Patterns in the sequence."""
        return int(self.slots.shape[0])

    @property
    def n_bytes(self) -> int:
        """Bytes to upload (all images, headers included)."""
        return sum(len(b) for b in self.images)


def _slots(n: int) -> np.ndarray:
    i = np.arange(n, dtype=np.int64)
    return np.stack([i // PATTERNS_PER_IMAGE, i % PATTERNS_PER_IMAGE], axis=1)


def _check_count(n: int) -> None:
    if n < 1:
        raise InputError("a pattern sequence needs at least one pattern")
    if n > MAX_PATTERNS:
        raise InputError(
            f"{n} patterns exceed the DLPC900 pattern LUT ({MAX_PATTERNS} one-bit patterns "
            f"in {MAX_IMAGE_INDEX + 1} images); split the sequence into batches of "
            f"<= {MAX_PATTERNS}"
        )


def check_patterns(
    images: np.ndarray, width: int = DMD_WIDTH, height: int = DMD_HEIGHT
) -> np.ndarray:
    """Validated (N, height, width) bool patterns; InputError on wrong shape, count or values.

    bool arrays pass as they are; integer arrays must hold only 0 and 1; anything else
    (floats, NaN) is refused rather than cast."""
    a = np.asarray(images)
    if a.ndim != 3 or a.shape[1:] != (height, width):
        raise InputError(
            f"patterns must have shape (N, {height}, {width}) (one DMD image each), got {a.shape}"
        )
    _check_count(a.shape[0])
    if a.dtype == np.bool_:
        return a
    if a.dtype.kind not in "iu":
        raise InputError(f"patterns must be bool (or integer 0/1), got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise InputError("patterns must be binary: integer patterns may hold only 0 and 1")
    return a != 0


def prepare_upload(
    images: np.ndarray,
    compression: Compression = Compression.ERLE,
    width: int = DMD_WIDTH,
    height: int = DMD_HEIGHT,
) -> UploadPlan:
    """Upload payloads for full-resolution patterns ((N, height, width) bool): pack each group
    of 24 into one 24-bit image, compress it, prepend the header."""
    p = check_patterns(images, width, height)
    if compression == Compression.ERLE and width > MAX_ERLE_LENGTH:
        raise InputError(f"ERLE lines hold at most {MAX_ERLE_LENGTH} pixels, got width {width}")
    n = p.shape[0]
    out = []
    for i in range(0, n, PATTERNS_PER_IMAGE):
        out.append(encode_image(pack_patterns(p[i : i + PATTERNS_PER_IMAGE]), compression))
    return UploadPlan(tuple(out), _slots(n))


# --- fast path: element vectors + layout -> ERLE ------------------------------------------------


@numba.njit(cache=True)
def _pack_elements(e, n_images, n_grid):
    n, m = e.shape
    words = np.zeros((n_images, n_grid), np.uint32)
    for i in range(n):
        img = i // 24
        sh = np.uint32(i % 24)
        for j in range(m):
            if e[i, j] != 0:
                words[img, j] |= np.uint32(1) << sh
    return words


@numba.njit(cache=True, inline="always")
def _grid_row_flags(grid):
    """(row r is all zero, row r equals row r - 1) for every grid row."""
    rows, cols = grid.shape
    row_zero = np.empty(rows, np.bool_)
    same_prev = np.zeros(rows, np.bool_)
    for r in range(rows):
        z = True
        s = r > 0
        for c in range(cols):
            z = z and grid[r, c] == 0
            s = s and grid[r, c] == grid[r - 1, c]
        row_zero[r] = z
        same_prev[r] = s
    return row_zero, same_prev


@numba.njit(cache=True, inline="always")
def _add_run(vals, lens, n, v, length):
    """Append a run of `length` words v (merged into the last run if equal); new run count."""
    if n > 0 and vals[n - 1] == v:
        lens[n - 1] += length
        return n
    vals[n] = v
    lens[n] = length
    return n + 1


@numba.njit(cache=True, inline="always")
def _grid_line_runs(grid, b, x0, mp, width, vals, lens):
    """Maximal runs of the DMD line crossing grid row b (-1: outside the grid) -> count."""
    if b == -1:
        return _add_run(vals, lens, 0, np.uint32(0), width)
    n = 0
    if x0 > 0:
        n = _add_run(vals, lens, n, np.uint32(0), x0)
    for c in range(grid.shape[1]):
        n = _add_run(vals, lens, n, grid[b, c], mp)
    right = width - x0 - grid.shape[1] * mp
    if right > 0:
        n = _add_run(vals, lens, n, np.uint32(0), right)
    return n


@numba.njit(cache=True)
def _erle_from_grid(grid, x0, y0, mp, width, height, out):
    """ERLE stream of the image whose pixels are grid[r, c] on mp x mp blocks at (x0, y0) and
    0 elsewhere; byte-identical to encode_erle of the rendered image."""
    rows, cols = grid.shape
    row_zero, same_prev = _grid_row_flags(grid)
    vals = np.empty(cols + 2, np.uint32)
    lens = np.empty(cols + 2, np.int64)
    pos = 0
    a = -1  # grid row of the previous line (-1: outside the grid)
    for y in range(height):
        b = -1
        if y0 <= y < y0 + rows * mp:
            b = (y - y0) // mp
        # line y equals line y - 1: same grid row, both blank, or the next row is the same
        blank = (a == -1 or row_zero[a]) and (b == -1 or row_zero[b])
        copy = a == b or blank or (a >= 0 and b == a + 1 and same_prev[b])
        if y > 0 and copy:
            pos = emit_erle_copy(out, pos, width)
        else:
            n = _grid_line_runs(grid, b, x0, mp, width, vals, lens)
            pos = emit_erle_runs(vals, lens, n, out, pos)
        a = b
    return emit_erle_end(out, pos)


def prepare_upload_elements(elements: np.ndarray, layout: DmdLayout) -> UploadPlan:
    """Upload payloads (ERLE) straight from element patterns ((N, layout.n_elements) of {0,1}),
    without rendering full DMD images. Byte-identical to
    prepare_upload(layout.render(elements)) but orders of magnitude faster."""
    e = np.asarray(elements)
    if e.ndim != 2 or e.shape[1] != layout.n_elements:
        raise InputError(
            f"element patterns must have shape (N, {layout.n_elements}),"
            f" got {e.shape}"
        )
    _check_count(e.shape[0])
    if e.dtype != np.bool_:
        if e.dtype.kind not in "iu":
            raise InputError(f"element patterns must be bool (or integer 0/1), got dtype {e.dtype}")
        if e.size and (e.min() < 0 or e.max() > 1):
            raise InputError(
                "element patterns must be binary: integer patterns may hold only "
                "0 and 1"
            )
    if layout.dmd_width > MAX_ERLE_LENGTH:
        raise InputError(
            f"ERLE lines hold at most {MAX_ERLE_LENGTH} pixels,"
            f" got {layout.dmd_width}"
        )
    e8 = np.ascontiguousarray(e)
    if e8.dtype == np.bool_:
        e8 = e8.view(np.uint8)
    n = e.shape[0]
    n_images = -(-n // PATTERNS_PER_IMAGE)
    n_grid = layout.grid_rows * layout.grid_cols
    words = _pack_elements(e8, n_images, n_grid)
    x0, y0 = layout.origin
    w, h = layout.dmd_width, layout.dmd_height
    buf = np.empty(erle_bound(w, h), np.uint8)
    out = []
    for i in range(n_images):
        grid = words[i].reshape(layout.grid_rows, layout.grid_cols)
        size = _erle_from_grid(grid, x0, y0, layout.macro_pixel, w, h, buf)
        head = encode_image_header(ImageHeader(w, h, int(size), Compression.ERLE))
        out.append(head + buf[:size].tobytes())
    return UploadPlan(tuple(out), _slots(n))
