"""Short seeded fuzz of every codec (the long run is tools/fuzz.py), and regressions for what
fuzzing found: only typed errors, bounded time and bounded memory per input."""

from __future__ import annotations

import io
import json
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.record import Calibration  # noqa: E402
from firmware_iface.dlpc900.images import (  # noqa: E402
    Compression,
    ImageHeader,
    decode_image,
    encode_image_header,
)
from firmware_iface.errors import CodecError  # noqa: E402
from tools.fuzz import Stats, fuzz_target, mutate, run_input  # noqa: E402
from tools.fuzz_targets import (  # noqa: E402
    Target,
    all_targets,
    npz_with_header,
    record_bytes,
    record_parts,
    sample_record,
)

TARGETS = all_targets()
MIB = 1 << 20


def test_every_codec_family_is_fuzzed():
    names = {t.name for t in TARGETS}
    for family in ("dlpc900.request", "dlpc900.reply", "dlpc900.command_payload", "dlpc900.erle",
                   "dlpc900.rle", "dlpc900.image", "fpga.cobs", "fpga.frame", "fpga.message",
                   "camera.command", "camera.ack", "camera.leader", "camera.trailer",
                   "camera.pixels", "camera.abrm", "camera.sbrm", "camera.manifest",
                   "camera.genicam_file", "camera.device_info", "calibration.file",
                   "calibration.header"):
        assert family in names


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_fuzz_target_raises_only_typed_errors(target: Target):
    n = 40 if target.name.startswith("calibration") else 150
    stats = fuzz_target(target, executions=n, seed=7, time_limit_s=2.0, memory_limit=32 * MIB)
    assert stats.executions == n
    assert not stats.findings, [f"{f.kind}: {f.where} {f.detail}" for f in stats.findings.values()]
    # the mutations reach the error paths and the success paths (the stream target swallows
    # its decode errors like a receiver does)
    assert stats.typed_errors < n
    assert stats.typed_errors > 0 or target.name == "fpga.stream"


def test_harness_reports_untyped_exceptions_slowness_and_memory():
    def bad(data: bytes) -> None:
        if data[:1] == b"a":
            raise IndexError("boom")
        if data[:1] == b"m":
            np.ones(8 * MIB, np.uint8)

    t = Target("bad", bad, [b"x"])
    stats = Stats("bad")
    tracemalloc.start()
    try:
        assert run_input(t, b"a", stats, 1.0, MIB).kind == "exception"
        assert run_input(t, b"m", stats, 1.0, MIB).kind == "memory"
        assert run_input(t, b"x", stats, -1.0, MIB).kind == "slow"
    finally:
        tracemalloc.stop()
    assert stats.executions == 3


def test_mutator_is_seeded_and_edits_length_fields():
    import random

    t = Target("t", lambda d: None, [bytes(range(16))], length_fields=((2, 2),))
    ra, rb = random.Random(3), random.Random(3)
    a = [mutate(t.seeds[0], t, ra) for _ in range(50)]
    b = [mutate(t.seeds[0], t, rb) for _ in range(50)]
    assert a == b
    assert len({len(x) for x in a}) > 5  # truncations and extensions happen


# ---- regressions: DLPC900 image header ------------------------------------------------------
def test_image_header_with_huge_size_is_refused_before_allocating():
    # found by fuzzing: a 65534 x 65535 ERLE header made decode_image allocate 16 GiB
    body = b"\x00\x01\x00"
    data = encode_image_header(ImageHeader(65534, 65535, len(body), Compression.ERLE)) + body
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match="larger than any DMD"):
            decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MIB


# ---- regressions: calibration record files --------------------------------------------------
def _load(tmp_path: Path, data: bytes) -> Calibration:
    p = tmp_path / "rec.npz"
    p.write_bytes(data)
    return Calibration.load(p)


def _set_compression(data: bytes, method: int) -> bytes:
    """The npz with every member's compression method field set to `method`."""
    b = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = b.find(sig)
        while i >= 0:
            b[i + off : i + off + 2] = method.to_bytes(2, "little")
            i = b.find(sig, i + 4)
    return bytes(b)


@pytest.mark.parametrize("method", [99, zipfile.ZIP_DEFLATED])
def test_record_with_unknown_or_unexpected_compression_is_a_codec_error(tmp_path, method):
    # found by fuzzing: method 99 raised NotImplementedError out of zipfile
    data = _set_compression(record_bytes(sample_record()), method)
    with pytest.raises(CodecError, match="not a readable calibration record"):
        _load(tmp_path, data)


def _npy_announcing(shape: tuple[int, ...], payload: bytes) -> bytes:
    """A .npy member whose header announces `shape` float32 but that holds `payload`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + payload


def test_record_announcing_a_huge_array_is_refused_in_bounded_memory(tmp_path):
    # numpy allocates the shape a .npy header announces before reading the data: a 300-byte
    # record announcing 10**12 floats made Calibration.load ask for 4 TB (MemoryError) or,
    # for 10**9, allocate 4 GB
    cal = sample_record()
    good = zipfile.ZipFile(io.BytesIO(record_bytes(cal)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name in good.namelist():
            data = good.read(name)
            if name == "dark_dn.npy":
                data = _npy_announcing((10**9,), cal.dark_dn.tobytes())
            z.writestr(name, data)
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match="announces shape"):
            _load(tmp_path, out.getvalue())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: [h],  # header is a list, not an object (was an AttributeError)
        lambda h: {**h, "extra_arrays": 5},
        lambda h: {**h, "exposure_us": "fast"},
        lambda h: {**h, "exposure_us": -1.0},
        lambda h: {**h, "scale_dn": float("nan")},
        lambda h: {**h, "geometry": {"n_in": 4}},
        lambda h: {**h, "geometry": {**h["geometry"], "n_out": 7}},
        lambda h: {**h, "geometry": [1, 2]},
        lambda h: {**h, "results": [1, 2]},
        lambda h: {k: v for k, v in h.items() if k != "device_id"},
        lambda h: {**h, "format_version": 2},
    ],
)
def test_record_header_with_wrong_types_is_a_codec_error(tmp_path, edit):
    cal = sample_record()
    header, arrays = record_parts(cal)
    good = _load(tmp_path, npz_with_header(json.dumps(header).encode(), arrays))
    assert good.scale_dn == 12.5
    with pytest.raises(CodecError):
        _load(tmp_path, npz_with_header(json.dumps(edit(header)).encode(), arrays))


@pytest.mark.parametrize(
    "name,value",
    [
        ("anchor_dn", np.ones(5, np.float32)),  # n_out = 6
        ("anchor_dn", np.zeros(6, np.float32)),  # 1 / sqrt(0)
        ("dark_dn", np.full(9, np.nan, np.float32)),
        ("output_pixels", np.arange(6, dtype=np.float64)),
        ("hot_pixels", np.zeros((3, 3), bool)),
        ("anchor", np.ones(3, bool)),
    ],
)
def test_record_with_inconsistent_arrays_is_a_codec_error(tmp_path, name, value):
    cal = sample_record()
    setattr(cal, name, value)
    with pytest.raises(CodecError, match="not a consistent calibration record"):
        _load(tmp_path, record_bytes(cal))
