"""GenICam PFNC monochrome pixel formats: codes, sizes, and pack/unpack (pure functions).

Formats (PFNC value, bits stored per pixel, significant bits):

- Mono8   0x01080001: one byte per pixel.
- Mono10  0x01100003: 16-bit little endian per pixel, value in the low 10 bits, top 6 bits 0.
- Mono12  0x01100005: 16-bit little endian per pixel, value in the low 12 bits, top 4 bits 0.
- Mono10p 0x010A0046: 10 bits per pixel, packed LSB first with no gap, even across lines:
  4 pixels in 5 bytes, B0 = p0[7:0], B1 = p1[5:0]<<2 | p0[9:8], B2 = p2[3:0]<<4 | p1[9:6],
  B3 = p3[1:0]<<6 | p2[9:4], B4 = p3[9:2].
- Mono12p 0x010C0047: 12 bits per pixel, packed LSB first: 2 pixels in 3 bytes,
  B0 = p0[7:0], B1 = p1[3:0]<<4 | p0[11:8], B2 = p1[11:4].

The packed formats' image ends at ceil(n_pixels * bits / 8) bytes; the unused high bits of the last
byte are zero when packing and ignored when unpacking. Pixel values are in DN (counts).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import numba
import numpy as np

from ..errors import CodecError, InputError


class PixelFormat(enum.IntEnum):
    """PFNC pixel format codes (32-bit values in the PixelFormat register and the leader)."""

    Mono8 = 0x01080001
    Mono10 = 0x01100003
    Mono12 = 0x01100005
    Mono10p = 0x010A0046
    Mono12p = 0x010C0047


#: significant bits of each format (the largest value is 2**bits - 1 DN)
SIGNIFICANT_BITS: dict[PixelFormat, int] = {
    PixelFormat.Mono8: 8,
    PixelFormat.Mono10: 10,
    PixelFormat.Mono12: 12,
    PixelFormat.Mono10p: 10,
    PixelFormat.Mono12p: 12,
}

#: bits each pixel occupies on the wire
STORED_BITS: dict[PixelFormat, int] = {
    PixelFormat.Mono8: 8,
    PixelFormat.Mono10: 16,
    PixelFormat.Mono12: 16,
    PixelFormat.Mono10p: 10,
    PixelFormat.Mono12p: 12,
}


def pixel_format(value: PixelFormat | int | str) -> PixelFormat:
    """The PixelFormat for a PFNC code or name ("Mono12p"); raises InputError when unsupported."""
    if isinstance(value, PixelFormat):
        return value
    if isinstance(value, str):
        try:
            return PixelFormat[value]
        except KeyError:
            raise InputError(
                f"unsupported pixel format {value!r}; use one of {[f.name for f in PixelFormat]}"
            ) from None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        try:
            return PixelFormat(int(value))
        except ValueError:
            raise InputError(
                f"unsupported PFNC pixel format code {int(value):#010x}; use one of "
                + ", ".join(f"{f.name} ({f.value:#010x})" for f in PixelFormat)
            ) from None
    raise InputError(f"pixel format must be a name or a PFNC code, got {type(value).__name__}")


def significant_bits(fmt: PixelFormat | int | str) -> int:
    """Bits of a pixel value in this format (8, 10 or 12)."""
    return SIGNIFICANT_BITS[pixel_format(fmt)]


def output_dtype(fmt: PixelFormat | int | str) -> np.dtype:
    """dtype of unpacked pixels: uint8 for Mono8, uint16 for every other format."""
    return np.dtype(np.uint8) if pixel_format(fmt) == PixelFormat.Mono8 else np.dtype(np.uint16)


def payload_size(fmt: PixelFormat | int | str, n_pixels: int) -> int:
    """Bytes of an image of n_pixels pixels in this format (packed formats rounded up to a byte)."""
    if n_pixels < 0:
        raise InputError(f"n_pixels must be >= 0, got {n_pixels}")
    bits = STORED_BITS[pixel_format(fmt)]
    return (n_pixels * bits + 7) // 8


# ---------------------------------------------------------------- packed kernels (Numba)
# One kernel source, specialised per format: `bits` and the group sizes are constants of each
# closure, so Numba unrolls the loops over a group (2 pixels in 3 bytes for Mono12p, 4 in 5 for
# Mono10p), folds the shifts and drops the branches that do not apply, and vectorises the groups
# as it did the hand-written kernel of each format. A single LSB-first bit-stream kernel taking
# `bits` as an argument measured 10-20x slower on a 1920x1200 frame (issue 13;
# benchmarks/bench_pixel_formats.py measures these).


@numba.njit(cache=True, nogil=True, inline="always")
def _unpack_group(
    src: np.ndarray, out: np.ndarray, g: int, px: int, nb: int, bits: int, group_px: int,
    group_bytes: int,
) -> None:  # pragma: no cover - jitted
    """Pixels 0..px-1 of group g from its bytes 0..nb-1 (pixel j starts at bit bits * j)."""
    for j in range(px):
        v = np.uint16(0)
        for b in range(nb):
            off = 8 * b - bits * j  # where byte b starts, relative to pixel j's bit 0
            s = np.uint16(src[group_bytes * g + b])
            if 0 <= off < bits:
                v |= s << off
            elif 0 < -off < 8:
                v |= s >> -off
        out[group_px * g + j] = v & ((1 << bits) - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _pack_group(
    pix: np.ndarray, out: np.ndarray, g: int, px: int, nb: int, bits: int, group_px: int,
    group_bytes: int,
) -> np.uint16:  # pragma: no cover - jitted
    """Bytes 0..nb-1 of group g from its pixels 0..px-1; returns the OR of those pixels."""
    acc = np.uint16(0)
    for j in range(px):
        acc |= pix[group_px * g + j]
    for b in range(nb):
        v = np.uint16(0)
        for j in range(px):
            off = bits * j - 8 * b  # where pixel j starts, relative to byte b's bit 0
            p = pix[group_px * g + j]
            if 0 <= off < 8:
                v |= p << off
            elif 0 < -off < bits:
                v |= p >> -off
        out[group_bytes * g + b] = np.uint8(v & 0xFF)
    return acc


def _packed_kernels(bits: int) -> tuple[Callable, Callable]:
    """(unpack(src, out), pack(pix, out) -> OR of all pixels) of the LSB-first packed format of
    `bits` bits per pixel (10 or 12; any of 9..16 works): uint8 wire bytes, uint16 pixels, in
    groups of group_px pixels in group_bytes bytes, the last group possibly partial."""
    group_px = 8 // math.gcd(bits, 8)
    group_bytes = bits * group_px // 8

    @numba.njit(cache=True, nogil=True)
    def unpack_kernel(src: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - jitted
        groups = out.size // group_px
        for g in range(groups):
            _unpack_group(src, out, g, group_px, group_bytes, bits, group_px, group_bytes)
        _unpack_group(src, out, groups, out.size - group_px * groups,
                      src.size - group_bytes * groups, bits, group_px, group_bytes)

    @numba.njit(cache=True, nogil=True)
    def pack_kernel(pix: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover - jitted
        groups = pix.size // group_px
        acc = np.uint16(0)
        for g in range(groups):
            acc |= _pack_group(pix, out, g, group_px, group_bytes, bits, group_px, group_bytes)
        return acc | _pack_group(pix, out, groups, pix.size - group_px * groups,
                                 out.size - group_bytes * groups, bits, group_px, group_bytes)

    return unpack_kernel, pack_kernel


_unpack12p_kernel, _pack12p_kernel = _packed_kernels(12)
_unpack10p_kernel, _pack10p_kernel = _packed_kernels(10)


# ---------------------------------------------------------------- public codec


def _range_error(a: np.ndarray, fmt: PixelFormat) -> InputError:
    bits = SIGNIFICANT_BITS[fmt]
    return InputError(
        f"pixel values {int(a.min())}..{int(a.max())} DN do not fit {fmt.name} "
        f"(0..{(1 << bits) - 1}); scale or clip them before packing"
    )


def _as_pixels(pixels: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Contiguous 1-D uint8 (Mono8) or uint16 pixels, exactly equal to the input.

    Inputs other than uint8/uint16 are range-checked here; uint8/uint16 inputs are checked by
    the caller (fused into the packing kernels for the packed formats).
    """
    a = np.asarray(pixels)
    if a.dtype.kind not in "ui":
        raise InputError(f"pixels must be integers (uint8/uint16), got dtype {a.dtype}")
    want = np.uint8 if fmt == PixelFormat.Mono8 else np.uint16
    if a.dtype not in (np.uint8, np.uint16) or (a.dtype == np.uint16 and want == np.uint8):
        if a.size and (int(a.min()) < 0 or int(a.max()) >> SIGNIFICANT_BITS[fmt]):
            raise _range_error(a, fmt)
    # uint8 -> uint16 and range-checked casts are exact
    return np.ascontiguousarray(a, dtype=want).reshape(-1)


def pack_into(pixels: np.ndarray, fmt: PixelFormat | int | str, out: np.ndarray) -> np.ndarray:
    """Write the wire bytes of `pixels` into `out` (contiguous uint8, payload_size bytes).

    Returns `out`. Raises InputError for non-integer dtypes or values outside 0..2**bits-1
    (`out` may then hold partial data).
    """
    f = pixel_format(fmt)
    pix = _as_pixels(pixels, f)
    need = payload_size(f, pix.size)
    if out.dtype != np.uint8 or out.size != need or not out.flags.c_contiguous:
        raise InputError(
            f"out must be a contiguous uint8 array of {need} bytes, got {out.dtype} {out.shape}"
        )
    flat = out.reshape(-1)
    bits = SIGNIFICANT_BITS[f]
    if f == PixelFormat.Mono8:
        np.copyto(flat, pix)
        return out
    if f in (PixelFormat.Mono10, PixelFormat.Mono12):
        if pix.size and int(pix.max()) >> bits:
            raise _range_error(pix, f)
        np.copyto(flat.view("<u2"), pix)
        return out
    kernel = _pack12p_kernel if f == PixelFormat.Mono12p else _pack10p_kernel
    if int(kernel(pix, flat)) >> bits:
        raise _range_error(pix, f)
    return out


def pack(pixels: np.ndarray, fmt: PixelFormat | int | str) -> bytes:
    """Wire bytes of `pixels` (any shape, row-major; integer DN within the format's range).

    Raises InputError for non-integer dtypes or values outside 0..2**bits-1.
    """
    f = pixel_format(fmt)
    out = np.empty(payload_size(f, np.asarray(pixels).size), dtype=np.uint8)
    return pack_into(pixels, f, out).tobytes()


def unpack(
    data: bytes | bytearray | memoryview | np.ndarray,
    fmt: PixelFormat | int | str,
    n_pixels: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels (n_pixels,) in DN from wire bytes: uint8 for Mono8, uint16 otherwise.

    `data` must hold exactly payload_size(fmt, n_pixels) bytes (else CodecError). For Mono10/Mono12
    a pixel with bits set above the format's width is a CodecError. `out`, if given, is a
    contiguous array of n_pixels elements of the output dtype, filled in place and returned.
    """
    f = pixel_format(fmt)
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise InputError(f"packed data must be bytes or a uint8 array, got dtype {data.dtype}")
        src = np.ascontiguousarray(data).reshape(-1)
    else:
        src = np.frombuffer(data, dtype=np.uint8)
    need = payload_size(f, n_pixels)
    if src.size != need:
        raise CodecError(f"{f.name} image of {n_pixels} pixels needs {need} bytes, got {src.size}")
    dtype = output_dtype(f)
    if out is None:
        out = np.empty(n_pixels, dtype=dtype)
    elif out.dtype != dtype or out.size != n_pixels or not out.flags.c_contiguous:
        raise InputError(
            f"out must be a contiguous {dtype} array of {n_pixels} pixels, "
            f"got {out.dtype} of shape {out.shape}"
        )
    flat = out.reshape(-1)
    if f == PixelFormat.Mono8:
        np.copyto(flat, src)
    elif f in (PixelFormat.Mono10, PixelFormat.Mono12):
        np.copyto(flat, src.view("<u2"))
        bits = SIGNIFICANT_BITS[f]
        if n_pixels and int(flat.max()) >> bits:
            raise CodecError(
                f"{f.name} pixel values must be below {1 << bits}; found {int(flat.max())} "
                "(wrong pixel format or byte order?)"
            )
    elif f == PixelFormat.Mono12p:
        _unpack12p_kernel(src, flat)
    else:
        _unpack10p_kernel(src, flat)
    return out


def warm_up() -> None:
    """Compile (or load from Numba's cache) the packed-format kernels now, with the argument
    types the codec uses, so that the first frame of a stream is not delayed by compilation
    (which would otherwise run inside the driver's read deadline). Idempotent and cheap."""
    global _WARM
    if _WARM:
        return
    for fmt in (PixelFormat.Mono10p, PixelFormat.Mono12p):
        pix = np.arange(7, dtype=np.uint16)
        data = pack(pix, fmt)
        unpack(data, fmt, pix.size)
        unpack(np.frombuffer(data, dtype=np.uint8).copy(), fmt, pix.size)
    _WARM = True


_WARM = False
