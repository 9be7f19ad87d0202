"""PFNC pixel formats: golden byte layouts, round trips against an independent bit-level model,
and typed errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.camera.pixel_formats import (
    PixelFormat,
    output_dtype,
    pack,
    pack_into,
    payload_size,
    pixel_format,
    significant_bits,
    unpack,
)
from firmware_iface.errors import CodecError, InputError

P = PixelFormat

# (format, pixel values, wire bytes) worked out by hand from the PFNC layouts
GOLDEN = [
    (P.Mono8, [0x00, 0x7F, 0xFF], "007fff"),
    (P.Mono10, [0x3FF, 0x001], "ff030100"),
    (P.Mono12, [0xABC, 0x000, 0x123], "bc0a00002301"),
    # Mono12p: B0 = p0[7:0], B1 = p1[3:0] << 4 | p0[11:8], B2 = p1[11:4]
    (P.Mono12p, [0x123, 0x456], "236145"),
    (P.Mono12p, [0xFFF, 0x000], "ff0f00"),
    (P.Mono12p, [0xABC], "bc0a"),  # odd count: last byte holds p0[11:8], high nibble zero
    # Mono10p: 4 pixels in 5 bytes, LSB first
    (P.Mono10p, [1, 2, 3, 0x3FF], "010830c0ff"),
    (P.Mono10p, [0x155, 0x2AA, 0x0F0, 0x30F], "55a90acfc3"),
    (P.Mono10p, [0x3FF], "ff03"),
]


def reference_pack(values: list[int], bits: int) -> bytes:
    """Independent model: concatenate each value's bits LSB first, read bytes LSB first."""
    stream = "".join(format(v, f"0{bits}b")[::-1] for v in values)
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8][::-1], 2) for i in range(0, len(stream), 8))


@pytest.mark.parametrize(("fmt", "values", "wire"), GOLDEN)
def test_golden_layouts(fmt: PixelFormat, values: list[int], wire: str) -> None:
    pix = np.array(values, dtype=np.uint16)
    assert pack(pix, fmt).hex() == wire
    out = unpack(bytes.fromhex(wire), fmt, len(values))
    assert out.dtype == output_dtype(fmt)
    assert out.tolist() == values


def test_golden_mono10p_last_value_check() -> None:
    # 0x3FF x3 = 30 one-bits: ff ff ff 3f
    assert pack(np.array([0x3FF] * 3, np.uint16), P.Mono10p).hex() == "ffffff3f"


def test_pfnc_codes_and_sizes() -> None:
    assert int(P.Mono8) == 0x01080001 and int(P.Mono10) == 0x01100003
    assert int(P.Mono12) == 0x01100005 and int(P.Mono10p) == 0x010A0046
    assert int(P.Mono12p) == 0x010C0047
    assert payload_size(P.Mono12p, 1920 * 1200) == 1920 * 1200 * 3 // 2
    assert payload_size(P.Mono10p, 1920 * 1200) == 1920 * 1200 * 5 // 4
    assert payload_size(P.Mono10p, 3) == 4 and payload_size(P.Mono12p, 3) == 5
    assert payload_size(P.Mono12, 7) == 14 and payload_size(P.Mono8, 7) == 7
    assert pixel_format("Mono12p") is P.Mono12p and pixel_format(0x01080001) is P.Mono8
    assert significant_bits("Mono10p") == 10


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(list(PixelFormat)),
    data=st.data(),
)
def test_round_trip_and_reference_model(fmt: PixelFormat, data: st.DataObject) -> None:
    bits = significant_bits(fmt)
    values = data.draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=0, max_size=70))
    pix = np.array(values, dtype=output_dtype(fmt))
    wire = pack(pix, fmt)
    assert len(wire) == payload_size(fmt, len(values))
    if fmt in (P.Mono10p, P.Mono12p):
        assert wire == reference_pack(values, bits)
    back = unpack(wire, fmt, len(values))
    assert back.dtype == output_dtype(fmt)
    assert np.array_equal(back, pix)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(list(PixelFormat)), raw=st.binary(max_size=64), n=st.integers(0, 50))
def test_random_bytes_unpack_or_codec_error(fmt: PixelFormat, raw: bytes, n: int) -> None:
    try:
        out = unpack(raw, fmt, n)
    except CodecError:
        return
    assert out.shape == (n,)
    assert int(out.max(initial=0)) < 1 << significant_bits(fmt)


def test_unpack_2d_frame_in_place() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 4096, size=(7, 33), dtype=np.uint16)
    out = np.empty_like(frame)
    res = unpack(pack(frame, P.Mono12p), P.Mono12p, frame.size, out=out)
    assert res is out and np.array_equal(out, frame)


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(InputError, match="do not fit Mono12p"):
        pack(np.array([4096], np.uint16), P.Mono12p)
    with pytest.raises(InputError, match="do not fit Mono8"):
        pack(np.array([256], np.uint16), P.Mono8)
    with pytest.raises(InputError, match="do not fit"):
        pack(np.array([-1], np.int16), P.Mono10)
    with pytest.raises(InputError, match="integers"):
        pack(np.array([1.0]), P.Mono10p)
    with pytest.raises(CodecError, match="needs 3 bytes"):
        unpack(b"\x00\x00", P.Mono12p, 2)
    with pytest.raises(CodecError, match="below 1024"):
        unpack(b"\x00\x04", P.Mono10, 1)  # bit 10 set in an unpacked Mono10 pixel
    with pytest.raises(InputError, match="unsupported pixel format"):
        pixel_format("Mono16")
    with pytest.raises(InputError, match="unsupported PFNC"):
        pixel_format(0x01100007)
    with pytest.raises(InputError, match="out must be"):
        unpack(b"\x00\x00\x00", P.Mono12p, 2, out=np.empty(2, np.uint8))
    with pytest.raises(InputError, match="out must be"):
        pack_into(np.zeros(2, np.uint16), P.Mono12p, np.empty(4, np.uint8))
    with pytest.raises(InputError, match="do not fit"):  # no silent wrap of wide integers
        pack(np.array([65536 + 5], np.int64), P.Mono12)
    with pytest.raises(InputError, match="do not fit Mono10p"):
        pack(np.array([0, 0, 0, 0, 1024], np.uint16), P.Mono10p)  # caught in the packed tail


def test_pack_into_matches_pack_and_accepts_uint8() -> None:
    pix = np.arange(256, dtype=np.uint8)
    for fmt in PixelFormat:
        out = np.full(payload_size(fmt, pix.size), 0xAA, dtype=np.uint8)  # dirty buffer
        assert pack_into(pix, fmt, out).tobytes() == pack(pix.astype(np.uint16), fmt)
        assert np.array_equal(unpack(out, fmt, pix.size), pix)
