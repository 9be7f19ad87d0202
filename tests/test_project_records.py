"""OPU and the calibration record store; chunked batches; output-size refusal."""

from __future__ import annotations

import numpy as np
import pytest

import opu.device as device_mod
from firmware_iface.errors import CalibrationError, InputError
from opu import OPU


def test_record_saved_then_loaded_without_new_frames(tmp_path):
    x = np.random.default_rng(0).integers(-1, 2, (3, 40))
    with OPU(n_in=40, n_out=50, seed=2, noise=False, record_dir=tmp_path) as a:
        ya = a.project(x)
        path = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert path.is_file()
    with OPU(n_in=40, n_out=50, seed=2, noise=False, record_dir=tmp_path) as b:
        b.ensure_calibrated()
        assert b.source.frames_taken == 0  # loaded, not measured
        np.testing.assert_allclose(b.project(x), ya, rtol=1e-6, atol=1e-5)


def test_record_of_other_geometry_refused_then_fresh(tmp_path):
    with OPU(n_in=40, n_out=50, seed=2, noise=False, record_dir=tmp_path) as a:
        a.ensure_calibrated()
    with OPU(n_in=30, n_out=50, seed=2, noise=False, record_dir=tmp_path) as b:
        with pytest.raises(CalibrationError, match="geometry"):
            b.project(np.ones(30))
    with OPU(n_in=30, n_out=50, seed=2, noise=False, record_dir=tmp_path,
             calibration="fresh") as c:
        c.project(np.ones(30))
        assert c.calibration.geometry.n_in == 30


def test_record_of_other_device_refused(tmp_path):
    with OPU(n_in=40, n_out=50, seed=2, noise=False) as a:
        path = a.ensure_calibrated().save(tmp_path / "a.npz")
    with pytest.raises(CalibrationError, match="device"):
        OPU(n_in=40, n_out=50, seed=3, noise=False, calibration=path)


def test_chunked_batches_equal_one_call(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.integers(-1, 2, (37, 30))
    with OPU(n_in=30, n_out=40, seed=4, noise=False) as d:
        whole = d.project(x)
        monkeypatch.setattr(device_mod, "_MAX_FRAMES_PER_CALL", 8)  # 2 inputs per acquire
        parts = d.project(x)
    np.testing.assert_array_equal(whole, parts)


def test_output_too_large_refused_before_any_frame(monkeypatch):
    monkeypatch.setattr(device_mod, "MAX_OUTPUT_BYTES", 1000)
    with OPU(n_in=10, n_out=100, seed=4, noise=False) as d:
        d.ensure_calibrated()
        before = d.source.frames_taken
        with pytest.raises(InputError, match="in parts"):
            d.project(np.ones((5, 10)))
        assert d.source.frames_taken == before
