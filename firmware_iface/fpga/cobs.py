"""Consistent Overhead Byte Stuffing (COBS, Cheshire & Baker 1999): pure functions.

`cobs_encode` turns any byte string into one with no 0x00 byte (overhead: one byte per started
254-byte run), so 0x00 can delimit frames on the UART. `cobs_decode` inverts it and raises
`CobsDecodeError` on input that no encoder could have produced. Neither adds nor strips the
0x00 delimiter: that is the frame layer's job (`firmware_iface.fpga.frame`).
"""

from __future__ import annotations

from .errors import CobsDecodeError

__all__ = ["cobs_encode", "cobs_decode", "cobs_max_encoded_len"]

_MAX_BLOCK = 0xFF  # code byte of a block of 254 data bytes with no implied zero after it


def cobs_max_encoded_len(n: int) -> int:
    """Largest COBS encoding of `n` input bytes, in bytes (no delimiter): n + ceil(n/254), min 1."""
    if n < 0:
        raise ValueError(f"a byte count cannot be negative, got {n}")
    return n + max(1, -(-n // 254))


def cobs_encode(data: bytes) -> bytes:
    """Encode `data` (any bytes) into bytes free of 0x00. Canonical: a block of 254 non-zero
    bytes at the very end is not followed by an empty block (Wikipedia's example 7)."""
    out = bytearray()
    segments = bytes(data).split(b"\x00")
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        pos = 0
        while len(seg) - pos >= 254:  # full blocks: code 0xFF, no implied zero after them
            out.append(_MAX_BLOCK)
            out += seg[pos : pos + 254]
            pos += 254
        rest = seg[pos:]
        if i < last or rest or pos == 0:
            out.append(len(rest) + 1)
            out += rest
    return bytes(out)


def cobs_decode(encoded: bytes) -> bytes:
    """Decode one COBS block sequence (without its 0x00 delimiter) back to the original bytes.

    Raises CobsDecodeError on empty input, on a 0x00 byte inside the data, or on a code byte
    that points past the end.
    """
    src = bytes(encoded)
    n = len(src)
    if n == 0:
        raise CobsDecodeError("empty COBS frame: at least one code byte is needed")
    out = bytearray()
    i = 0
    while i < n:
        code = src[i]
        if code == 0:
            raise CobsDecodeError(f"0x00 code byte at offset {i}: a delimiter inside a frame")
        end = i + code
        if end > n:
            raise CobsDecodeError(
                f"COBS code 0x{code:02X} at offset {i} points {end - n} byte(s) past the frame end"
            )
        block = src[i + 1 : end]
        if 0 in block:
            raise CobsDecodeError(f"0x00 data byte inside COBS block at offset {i}")
        out += block
        i = end
        if code != _MAX_BLOCK and i < n:
            out.append(0)
    return bytes(out)
