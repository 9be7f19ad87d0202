"""Hostile input to OPU(...), project() and the `opu` command: a typed error with a message,
bounded memory, and no partial state (the device still works and its frame counter did not move
on refused input)."""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest

from calibration.record import Calibration
from firmware_iface.errors import ConfigurationError, InputError, OPUError
from opu import OPU
from opu.cli import main as opu_main

N_IN, N_OUT = 48, 40
MIB = 1 << 20


@pytest.fixture(scope="module")
def dev():
    with OPU(n_in=N_IN, n_out=N_OUT, seed=8, noise=False) as d:
        d.ensure_calibrated()
        yield d


@pytest.fixture(scope="module")
def probe(dev):
    x = np.random.default_rng(0).integers(0, 2, (3, N_IN)).astype(np.uint8)
    return x, dev.project(x)


def _state(dev: OPU) -> tuple[int, float]:
    src = dev.source
    return src.frames_taken, src.clock_us


def _refused(dev, probe, call, err=InputError, match=None, max_peak=64 * MIB):
    """call() raises `err` in bounded traced memory; the device state is untouched and it still
    returns the same projection of the probe."""
    before = _state(dev)
    tracemalloc.start()
    try:
        with pytest.raises(err, match=match) as info:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(str(info.value)) > 20  # says what was wrong
    assert peak < max_peak, f"refusing took {peak / MIB:.0f} MiB"
    assert _state(dev) == before, "refused input moved the frame counter or clock"
    x, y = probe
    np.testing.assert_array_equal(dev.project(x), y)


# ---- project(): shapes, dtypes, values ------------------------------------------------------
def test_huge_batch_is_refused_before_any_work():
    # a 10**7-row batch that costs nothing to make (a broadcast view): the output alone would
    # not fit the output budget, so it must be refused without materialising anything
    huge = OPU(n_in=1000, n_out=1000, seed=8, noise=False, calibration=None)
    try:
        xb = np.broadcast_to(np.ones(1000, np.uint8), (10**7, 1000))
        before = huge.source.frames_taken
        tracemalloc.start()
        try:
            with pytest.raises(InputError, match="project the batch in parts"):
                huge.project(xb)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * MIB and huge.source.frames_taken == before
    finally:
        huge.close()


def test_large_batch_runs_in_memory_proportional_to_its_output(dev):
    # 50,000 rows: 100,000 frames; the working memory beyond the output is a bounded chunk
    x = np.broadcast_to(np.eye(1, N_IN, dtype=np.uint8)[0], (50_000, N_IN))
    tracemalloc.start()
    try:
        y = dev.project(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == (50_000, N_OUT)
    assert peak < y.nbytes + 3 * x.shape[0] * N_IN + 48 * MIB


@pytest.mark.parametrize(
    "x,match",
    [
        (np.zeros((2, N_IN), np.complex64), "dtype"),
        (np.array([["a"] * N_IN]), "dtype"),
        (np.empty((2, N_IN), object), "dtype"),
        (np.zeros((2, N_IN + 1)), "width"),
        (np.zeros((0, N_IN)), "empty"),
        (np.zeros((2, 3, N_IN)), "shape"),
        (np.zeros(()), "shape"),
        (np.full((2, N_IN), np.nan), "NaN"),
        (np.full((2, N_IN), np.inf), "NaN or infinity"),
        (np.full((2, N_IN), -np.inf, np.float32), "NaN or infinity"),
        (np.array([[0.5] + [0.0] * (N_IN - 2) + [np.nan]] * 2), "NaN or infinity"),
        (np.array([[-1] + [np.inf] * (N_IN - 1)] * 2, np.float32), "NaN or infinity"),
        (np.full((2, N_IN), np.nan, np.float16), "NaN or infinity"),
        ([[0, 1], [1]], "ragged"),
        ("0101", "numpy array"),
        (None, "numpy array"),
    ],
    ids=lambda v: getattr(v, "dtype", type(v).__name__) if not isinstance(v, str) else v[:10],
)
def test_bad_inputs_are_refused_cleanly(dev, probe, x, match):
    _refused(dev, probe, lambda: dev.project(x), match=match)


def test_nan_hidden_in_a_large_batch_is_refused_without_frames(dev, probe):
    x = np.random.default_rng(1).random((20_000, N_IN)).astype(np.float32)
    x[-1, -1] = np.nan
    _refused(dev, probe, lambda: dev.project(x), match="NaN")


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"mode": "quadratic"}, "mode"),
        ({"mode": None}, "mode"),
        ({"encoding": "bitplane"}, "encoding"),
        ({"encoding": "binary", "x": np.full((2, N_IN), -1)}, "ternary"),
        ({"mode": "intensity", "x": np.full((2, N_IN), 0.5)}, "binary"),
        ({"precision": 0, "x": np.full((2, N_IN), 0.5)}, "precision"),
        ({"precision": 2.5, "x": np.full((2, N_IN), 0.5)}, "precision"),
        ({"precision": 10**9, "x": np.full((2, N_IN), 0.5)}, "precision"),
    ],
)
def test_bad_options_are_refused_cleanly(dev, probe, kw, match):
    kw = dict(kw)
    x = kw.pop("x", np.ones((2, N_IN), np.uint8))
    _refused(dev, probe, lambda: dev.project(x, **kw), match=match)


# ---- OPU(...) -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw,match",
    [
        ({"n_in": 10**12}, "n_in"),
        ({"n_out": 10**12}, "n_out"),
        ({"n_in": 2**63}, "n_in"),
        ({"n_in": -3}, "n_in"),
        ({"n_in": 10.0}, "n_in"),
        ({"n_out": True}, "n_out"),
        ({"device": "quantum"}, "unknown device"),
        ({"device": "tcp://10.0.0.1:1"}, "unknown device"),
        ({"device": 7}, "string"),
        ({"device": None}, "string"),
    ],
)
def test_bad_constructor_arguments_raise_configuration_errors(kw, match):
    tracemalloc.start()
    try:
        with pytest.raises(ConfigurationError, match=match):
            OPU(**kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MIB


@pytest.mark.parametrize("exposure", [-1.0, 0.0, float("nan"), float("inf"), 1e12])
def test_bad_exposure_is_a_typed_error_and_leaves_the_device_usable(exposure):
    with OPU(n_in=16, n_out=16, seed=1, noise=False, exposure_us=exposure) as d:
        x = np.ones((1, 16), np.uint8)
        with pytest.raises(OPUError, match="exposure"):
            d.project(x)
        assert d.source.frames_taken == 0


def test_missing_hardware_config_is_a_typed_error(tmp_path):
    with pytest.raises(OPUError):
        OPU(device=f"hw:{tmp_path / 'absent.json'}")
    bad = tmp_path / "bad.json"
    bad.write_bytes(os.urandom(200))
    with pytest.raises(OPUError):
        OPU(device=f"hw:{bad}")
    bad.write_text(json.dumps({"dmd": 5, "camera": "x"}))
    with pytest.raises(OPUError):
        OPU(device=f"hw:{bad}")


# ---- calibration files ------------------------------------------------------------------------
def test_opu_refuses_a_damaged_calibration_file(dev, tmp_path):
    good = dev.calibration.save(tmp_path / "cal.npz")
    data = good.read_bytes()
    cases = {
        "random": os.urandom(5000),
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "flipped": data[:200] + bytes([data[200] ^ 0xFF]) + data[201:],
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(blob)
        with pytest.raises(OPUError):
            OPU(n_in=N_IN, n_out=N_OUT, seed=8, noise=False, calibration=p)
    # a whole record of another geometry is refused, the right one accepted
    with pytest.raises(OPUError, match="geometry"):
        OPU(n_in=N_IN + 1, n_out=N_OUT, seed=8, noise=False, calibration=good)
    with OPU(n_in=N_IN, n_out=N_OUT, seed=8, noise=False, calibration=good) as d:
        assert isinstance(d.calibration, Calibration)


# ---- the `opu` command ------------------------------------------------------------------------
def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = opu_main(argv)
    out = capsys.readouterr()
    return code, out.err


@pytest.mark.parametrize(
    "argv,code,match",
    [
        (["info", "--device", "quantum"], 1, "unknown device"),
        (["info", "--device", "hw:/nonexistent/config.json"], 1, "does not exist"),
        (["info", "--n-in", "-5"], 1, "--n-in must be >= 1"),  # option names (issue 11)
        (["info", "--n-in", "1000000000000"], 1, "n_in"),
        (["info", "--n-out", "abc"], 2, "invalid int"),
        (["calibrate", "everything"], 2, "invalid choice"),
    ],
)
def test_cli_bad_arguments_fail_with_one_line_and_no_traceback(argv, code, match, capsys,
                                                                tmp_path):
    got, err = _cli([*argv, "--record-dir", str(tmp_path)], capsys)
    assert got == code
    assert match in err and "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"\x00\xff" * 100, b"[1, 2]", b'{"camera": 5}',
                                     b'{"nonsense": 1}'])
def test_cli_malformed_profile_fails_cleanly(content, capsys, tmp_path):
    prof = tmp_path / "profile.json"
    prof.write_bytes(content)
    code, err = _cli(["info", "--record-dir", str(tmp_path), "--profile", str(prof), "--n-in",
                      "16", "--n-out", "16"], capsys)
    assert code == 1, err
    assert "profile" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_with_a_garbage_record_says_so_and_recovers_once_it_is_removed(capsys, tmp_path):
    args = ["--record-dir", str(tmp_path), "--n-in", "16", "--n-out", "16", "--seed", "2"]
    assert _cli(["calibrate", "dark", *args], capsys)[0] == 0
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(os.urandom(3000))
    code = opu_main(["info", "--json", *args])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and "not a readable calibration record" in info["record_problem"]
    code, err = _cli(["calibrate", "dark", *args], capsys)
    assert code == 1 and str(path) in err and "Traceback" not in err
    path.unlink()
    assert _cli(["calibrate", "dark", *args], capsys)[0] == 0
    assert Calibration.load(path).device_id == info["device_id"]
