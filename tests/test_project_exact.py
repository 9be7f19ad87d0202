"""Noise-free project() against the simulator's exact matrices (relative error <= 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from opu.encoding import quantised

TOL = 1e-5


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_linear_binary_exact(ideal_opu, rng):
    g = ideal_opu.exact_linear_matrix()
    x = (rng.random((40, 1000)) < 0.5).astype(np.uint8)
    assert rel_err(ideal_opu.project(x), x @ g.T) <= TOL


def test_linear_ternary_exact(ideal_opu, rng):
    g = ideal_opu.exact_linear_matrix()
    x = rng.integers(-1, 2, (40, 1000)).astype(np.float32)
    assert rel_err(ideal_opu.project(x, mode="linear"), x @ g.T) <= TOL


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_linear_float_exact_to_encoding(ideal_opu, rng, bits):
    g = ideal_opu.exact_linear_matrix()
    x = rng.standard_normal((10, 1000))
    y = ideal_opu.project(x, precision=bits)
    assert rel_err(y, quantised(x, bits) @ g.T) <= TOL
    # and to the encoding's precision against the unquantised input: the rounding error of
    # each entry is at most half a step of max|x| / (2**bits - 1)
    step = np.abs(x).max(axis=1) / (2**bits - 1)
    bound = 0.5 * step[:, None] * np.abs(g).sum(axis=1)[None, :]
    assert np.all(np.abs(y - x @ g.T) <= bound + 1e-4 * np.abs(x @ g.T))


def test_single_vector_shape(ideal_opu, rng):
    g = ideal_opu.exact_linear_matrix()
    x = rng.integers(-1, 2, 1000)
    y = ideal_opu.project(x)
    assert y.shape == (1000,) and y.dtype == np.float32
    assert rel_err(y, g @ x) <= TOL


def test_intensity_exact(ideal_opu, rng):
    t = ideal_opu.exact_transmission_matrix()
    x = (rng.random((30, 1000)) < 0.3).astype(bool)
    y = ideal_opu.project(x, mode="intensity")
    ref = np.abs(x.astype(np.float32) @ t.T) ** 2
    assert rel_err(y, ref) <= TOL


def test_zero_input_projects_to_zero(ideal_opu):
    y = ideal_opu.project(np.zeros((2, 1000)), mode="linear")
    assert np.abs(y).max() < 1e-3


def test_matrix_free_equals_dense(rng):
    """A tiny cache budget forces tile-by-tile generation; results must not change."""
    from opu import OPU

    x = rng.integers(-1, 2, (8, 300))
    with OPU(n_in=300, n_out=500, seed=9, noise=False) as dense:
        yd, gd = dense.project(x), dense.exact_linear_matrix()
    with OPU(n_in=300, n_out=500, seed=9, noise=False, cache_budget_bytes=1 << 16) as free:
        yf, gf = free.project(x), free.exact_linear_matrix()
        assert not free.source.medium._dense  # nothing stored whole
    np.testing.assert_array_equal(gd, gf)
    assert rel_err(yf, yd) <= TOL
