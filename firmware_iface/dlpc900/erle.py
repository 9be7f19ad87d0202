"""Image data compressions of the DLPC900 (DLPU018 2.4.4 "Image compression"): enhanced
run-length encoding (ERLE, compression 2), run-length encoding (RLE, compression 1) and
uncompressed (0). Pure functions: pixels in, bytes out, and back.

Pixels are 24-bit words in an (H, W) uint32 array; a pixel travels as 3 bytes, most
significant first: (w >> 16) & 0xFF, (w >> 8) & 0xFF, w & 0xFF. In a pattern image, bit k of
the word is the 1-bit pattern at LUT bit position k (see images.py).

ERLE tokens (n is a length: 1 byte if n < 128, else 2 bytes: (n & 0x7F) | 0x80, then n >> 7):
    n pixel        repeat the 3-byte pixel n times (n >= 1)
    00 n pixels    n (>= 2) uncompressed pixels
    00 01 n        copy n pixels from the same columns of the previous line
    00 01 00       end of image (required)
    00 00          end of line (optional in ERLE)
RLE tokens (n is one byte): n pixel = repeat; 00 n>=2 pixels = uncompressed; 00 00 = end of
line, after which the next line starts at a 4-byte aligned offset (zero padding); 00 01 = end
of image. Encoders never let a token cross a line end; decoders refuse streams that do.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CodecError

MAX_ERLE_LENGTH = 0x7FFF
"""Largest length a 2-byte ERLE length can hold; also the widest line ERLE can encode."""

_ERRORS = {
    1: "stream ends inside a token",
    2: "a run, copy or literal goes past the end of the line",
    3: "copy-from-previous-line on the first line",
    4: "end-of-line in the middle of a line",
    5: "end-of-image before the last line is complete",
    6: "non-zero bytes after end-of-image",
    7: "more lines than the image height",
    8: "no end-of-image marker",
    9: "zero length",
    10: "non-zero padding after end-of-line",
    11: "line not terminated by end-of-line",
}


def _encode(kernel, p: np.ndarray, bound: int) -> bytes:
    """The stream kernel(pixels, run values, run lengths, out) -> size writes into a buffer
    of `bound` bytes (the format's worst case for this image)."""
    w = p.shape[1]
    out = np.empty(bound, np.uint8)
    n = kernel(p, np.empty(w, np.uint32), np.empty(w, np.int64), out)
    return out[:n].tobytes()


def _decode(kind: str, kernel, data: bytes, width: int, height: int) -> np.ndarray:
    """(height, width) uint32 image decoded by kernel(bytes, out) -> (error code, offset)."""
    out = np.zeros((height, width), np.uint32)
    code, offset = kernel(np.frombuffer(data, np.uint8), out)
    if code:
        raise CodecError(f"invalid {kind} data at byte {offset}: {_ERRORS[code]}")
    return out


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    p = np.asarray(pixels)
    if p.ndim != 2 or p.dtype != np.uint32:
        raise CodecError(
            f"pixels must be a 2-D uint32 array of 24-bit words,"
            f" got {p.dtype} {p.shape}"
        )
    if p.shape[0] < 1 or p.shape[1] < 1:
        raise CodecError(f"image must have at least one pixel, got shape {p.shape}")
    if p.size and int(p.max()) > 0xFFFFFF:
        raise CodecError("pixel words must fit 24 bits (<= 0xFFFFFF)")
    return np.ascontiguousarray(p)


# --- shared numba kernels ---------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _put_len(out, pos, n):
    if n < 128:
        out[pos] = n
        return pos + 1
    out[pos] = (n & 0x7F) | 0x80
    out[pos + 1] = n >> 7
    return pos + 2


@numba.njit(cache=True, inline="always")
def _put_pixel(out, pos, w):
    out[pos] = (w >> 16) & 0xFF
    out[pos + 1] = (w >> 8) & 0xFF
    out[pos + 2] = w & 0xFF
    return pos + 3


@numba.njit(cache=True)
def _line_runs(row, vals, lens):
    """Maximal runs of equal words in row -> count (vals/lens filled)."""
    n = 0
    w = row.shape[0]
    x = 0
    while x < w:
        v = row[x]
        e = x + 1
        while e < w and row[e] == v:
            e += 1
        vals[n] = v
        lens[n] = e - x
        n += 1
        x = e
    return n


@numba.njit(cache=True)
def emit_erle_runs(vals, lens, nruns, out, pos):
    """ERLE tokens for one line given as maximal runs; returns the new write position.

    Runs of >= 2 become repeats; a lone single pixel becomes a repeat of 1; two or more
    consecutive single pixels become one uncompressed token."""
    i = 0
    while i < nruns:
        if lens[i] >= 2:
            pos = _put_len(out, pos, lens[i])
            pos = _put_pixel(out, pos, vals[i])
            i += 1
        else:
            j = i
            while j < nruns and lens[j] == 1:
                j += 1
            c = j - i
            if c == 1:
                out[pos] = 1
                pos = _put_pixel(out, pos + 1, vals[i])
            else:
                out[pos] = 0
                pos = _put_len(out, pos + 1, c)
                for k in range(i, j):
                    pos = _put_pixel(out, pos, vals[k])
            i = j
    return pos


@numba.njit(cache=True, inline="always")
def emit_erle_copy(out, pos, n):
    """ERLE copy-n-pixels-from-previous-line token."""
    out[pos] = 0
    out[pos + 1] = 1
    return _put_len(out, pos + 2, n)


@numba.njit(cache=True, inline="always")
def emit_erle_end(out, pos):
    """ERLE end-of-image token."""
    out[pos] = 0
    out[pos + 1] = 1
    out[pos + 2] = 0
    return pos + 3


def erle_bound(width: int, height: int) -> int:
    """Upper bound of the ERLE stream size for an image of this size, bytes."""
    return height * (4 * width + 4) + 3


@numba.njit(cache=True)
def _erle_encode(p, vals, lens, out):
    h, w = p.shape
    pos = 0
    for y in range(h):
        same = y > 0
        if same:
            for x in range(w):
                if p[y, x] != p[y - 1, x]:
                    same = False
                    break
        if same:
            pos = emit_erle_copy(out, pos, w)
        else:
            n = _line_runs(p[y], vals, lens)
            pos = emit_erle_runs(vals, lens, n, out, pos)
    return emit_erle_end(out, pos)


@numba.njit(cache=True, inline="always")
def _get_len(d, p, n_bytes):
    """(length, new position); position -1 if truncated."""
    if p >= n_bytes:
        return 0, -1
    b = d[p]
    if b < 128:
        return np.int64(b), p + 1
    if p + 1 >= n_bytes:
        return 0, -1
    return np.int64(b & 0x7F) | (np.int64(d[p + 1]) << 7), p + 2


@numba.njit(cache=True, inline="always")
def _get_word(d, q):
    """The 3-byte pixel word at byte q (most significant byte first)."""
    return (np.uint32(d[q]) << 16) | (np.uint32(d[q + 1]) << 8) | np.uint32(d[q + 2])


@numba.njit(cache=True, inline="always")
def _span_error(end, nb, x, y, n, shape):
    """Error code of a token whose bytes end at `end` (of nb) and which puts n pixels at
    column x of line y of an image of this (height, width); 0 = it fits."""
    if end > nb:
        return 1
    if y >= shape[0]:
        return 7
    if x + n > shape[1]:
        return 2
    return 0


@numba.njit(cache=True, inline="always")
def _repeat_error(q, n, nb, x, y, shape):
    """Error code of an ERLE repeat of n pixels whose word starts at byte q (-1: the length
    was cut off); 0 = it fits."""
    if q < 0:
        return 1
    if n == 0:
        return 9
    return _span_error(q + 3, nb, x, y, n, shape)


@numba.njit(cache=True, inline="always")
def _literal_error(q, n, nb, x, y, shape):
    """Error code of an ERLE literal of n words starting at byte q (-1: the length was cut
    off); 0 = it fits."""
    if q < 0:
        return 1
    return _span_error(q + 3 * n, nb, x, y, n, shape)


@numba.njit(cache=True)
def _trailing_zeros(d, p, nb):
    """(0, p) if only zero bytes follow p, else (6, offset of the first non-zero byte)."""
    for k in range(p, nb):
        if d[k] != 0:
            return 6, k
    return 0, p


@numba.njit(cache=True)
def _erle_control(d, p, nb, out, x, y, wrapped):
    """The 00 00 (end of line) or 00 01 n (copy n pixels from the line above) token at p ->
    (0, next byte, new x). x = -1 ends the decoding with (code, offset): an error, or the
    end-of-image marker 00 01 00 with code 0 if the image is complete and only zeros follow."""
    h, w = out.shape
    if d[p + 1] == 0:  # end of line: only right after a line's last pixel
        return (0, p + 2, x) if wrapped else (4, p, -1)
    n, q = _get_len(d, p + 2, nb)
    if q < 0:
        return 1, p, -1
    if n == 0:
        if y != h or x != 0:
            return 5, p, -1
        code, q = _trailing_zeros(d, q, nb)
        return code, q, -1
    if y >= h:
        return 7, p, -1
    if y == 0:
        return 3, p, -1
    if x + n > w:
        return 2, p, -1
    for k in range(x, x + n):
        out[y, k] = out[y - 1, k]
    return 0, q, x + n


@numba.njit(cache=True)
def _erle_decode(d, out):
    """Returns (error code, byte offset); 0 = ok."""
    nb = d.shape[0]
    p = x = y = 0  # byte, column, line
    wrapped = False
    while p < nb:
        if d[p] != 0:  # n pixel: repeat
            n, q = _get_len(d, p, nb)
            code = _repeat_error(q, n, nb, x, y, out.shape)
            if code:
                return code, p
            v = _get_word(d, q)
            for k in range(x, x + n):
                out[y, k] = v
            p = q + 3
        elif p + 1 >= nb:
            return 1, p
        elif d[p + 1] > 1:  # 00 n pixels: literal
            n, q = _get_len(d, p + 1, nb)
            code = _literal_error(q, n, nb, x, y, out.shape)
            if code:
                return code, p
            for k in range(n):
                out[y, x + k] = _get_word(d, q + 3 * k)
            p = q + 3 * n
        else:
            code, p, n = _erle_control(d, p, nb, out, x, y, wrapped)  # n: the new x
            if n < 0:
                return code, p
            n -= x
        x += n
        wrapped = x == out.shape[1]
        if wrapped:
            x = 0
            y += 1
    return 8, p


def encode_erle(pixels: np.ndarray) -> bytes:
    """ERLE stream (without the 48-byte image header) of an (H, W) uint32 image."""
    p = _check_pixels(pixels)
    if p.shape[1] > MAX_ERLE_LENGTH:
        raise CodecError(f"ERLE lines hold at most {MAX_ERLE_LENGTH} pixels, got {p.shape[1]}")
    return _encode(_erle_encode, p, erle_bound(p.shape[1], p.shape[0]))


def decode_erle(data: bytes, width: int, height: int) -> np.ndarray:
    """(height, width) uint32 image from an ERLE stream; CodecError on any malformed token."""
    return _decode("ERLE", _erle_decode, data, width, height)


# --- RLE -----------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _rle_encode(p, vals, lens, out):
    h, w = p.shape
    pos = 0
    for y in range(h):
        n = _line_runs(p[y], vals, lens)
        i = 0
        while i < n:
            if lens[i] >= 2:
                r = lens[i]
                while r > 0:
                    c = min(r, 255)
                    out[pos] = c
                    pos = _put_pixel(out, pos + 1, vals[i])
                    r -= c
                i += 1
            else:
                j = i
                while j < n and lens[j] == 1:
                    j += 1
                k = i
                while k < j:
                    c = min(j - k, 255)
                    if c == 1:
                        out[pos] = 1
                        pos = _put_pixel(out, pos + 1, vals[k])
                    else:
                        out[pos] = 0
                        out[pos + 1] = c
                        pos += 2
                        for q in range(k, k + c):
                            pos = _put_pixel(out, pos, vals[q])
                    k += c
                i = j
        if y < h - 1:
            out[pos] = 0
            out[pos + 1] = 0
            pos += 2
            while pos % 4:
                out[pos] = 0
                pos += 1
    out[pos] = 0
    out[pos + 1] = 1
    return pos + 2


@numba.njit(cache=True)
def _rle_end_of_line(d, p, nb, x, w):
    """End-of-line (00 00) at p, then zero padding to the next 4-byte boundary -> (code,
    next byte or error offset)."""
    if x != w:
        return 4, p
    p += 2
    while p % 4:
        if p >= nb:
            return 1, p
        if d[p] != 0:
            return 10, p
        p += 1
    return 0, p


@numba.njit(cache=True)
def _rle_end(d, p, nb, x, y, shape):
    """End-of-image (00 01) at p: (0, end) if the image is complete and nothing follows."""
    h, w = shape
    if not ((y == h - 1 and x == w) or (y == h and x == 0)):
        return 5, p
    return _trailing_zeros(d, p + 2, nb)


@numba.njit(cache=True)
def _rle_decode(d, out):
    nb = d.shape[0]
    p = x = y = 0  # byte, column, line
    while p < nb:
        n = np.int64(d[p])
        if n != 0:  # n pixel: repeat
            code = _span_error(p + 4, nb, x, y, n, out.shape)
            if code:
                return code, p
            v = _get_word(d, p + 1)
            for k in range(x, x + n):
                out[y, k] = v
            x += n
            p += 4
            continue
        if p + 1 >= nb:
            return 1, p
        n = np.int64(d[p + 1])
        if n == 0:
            code, p = _rle_end_of_line(d, p, nb, x, out.shape[1])
            if code:
                return code, p
            x = 0
            y += 1
        elif n == 1:
            return _rle_end(d, p, nb, x, y, out.shape)
        else:  # 00 n pixels: literal
            code = _span_error(p + 2 + 3 * n, nb, x, y, n, out.shape)
            if code:
                return code, p
            for k in range(n):
                out[y, x + k] = _get_word(d, p + 2 + 3 * k)
            x += n
            p += 2 + 3 * n
    return 8, p


def encode_rle(pixels: np.ndarray) -> bytes:
    """RLE stream (without the image header) of an (H, W) uint32 image."""
    p = _check_pixels(pixels)
    h, w = p.shape
    return _encode(_rle_encode, p, h * (4 * w + 8) + 2)


def decode_rle(data: bytes, width: int, height: int) -> np.ndarray:
    """(height, width) uint32 image from an RLE stream; CodecError on any malformed token."""
    return _decode("RLE", _rle_decode, data, width, height)


# --- uncompressed --------------------------------------------------------------------------------


def encode_uncompressed(pixels: np.ndarray) -> bytes:
    """3 bytes per pixel, row-major, most significant byte first, no padding."""
    p = _check_pixels(pixels)
    out = np.empty(p.shape + (3,), np.uint8)
    out[..., 0] = p >> 16
    out[..., 1] = p >> 8
    out[..., 2] = p
    return out.tobytes()


def decode_uncompressed(data: bytes, width: int, height: int) -> np.ndarray:
    """(height, width) uint32 image from uncompressed pixel bytes."""
    if len(data) != width * height * 3:
        raise CodecError(
            f"uncompressed {width}x{height} image needs {width * height * 3} bytes, got {len(data)}"
        )
    b = np.frombuffer(data, np.uint8).reshape(height, width, 3).astype(np.uint32)
    return (b[..., 0] << 16) | (b[..., 1] << 8) | b[..., 2]
