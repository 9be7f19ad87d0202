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


def test_linear_patterns_follow_the_recovery_frame_order():
    """opu.encoding.linear_patterns: `lead` anchor-only frames, then per binary row
    [x u r, x], per ternary row [e+ u r, e+, e- u r, e-] (the order opu.recovery reads)."""
    from opu.encoding import linear_patterns

    rng = np.random.default_rng(3)
    anchor = (rng.random(7) < 0.5).astype(np.uint8)
    e = rng.integers(-1, 2, (5, 9)).astype(np.int8)
    t = linear_patterns(e, anchor, 3, 4)
    assert t.shape == (3 + 20, 16) and t.dtype == np.uint8
    np.testing.assert_array_equal(t[:3], np.r_[np.zeros(9, np.uint8), anchor][None].repeat(3, 0))
    g = t[3:].reshape(5, 4, 16)
    for half, sign in ((0, e > 0), (2, e < 0)):
        np.testing.assert_array_equal(g[:, half, :9], sign)
        np.testing.assert_array_equal(g[:, half + 1, :9], sign)
        np.testing.assert_array_equal(g[:, half, 9:], np.broadcast_to(anchor, (5, 7)))
        assert not g[:, half + 1, 9:].any()
    x = (rng.random((4, 9)) < 0.5).astype(np.int8)
    b = linear_patterns(x, anchor, 2, 2)[2:].reshape(4, 2, 16)
    np.testing.assert_array_equal(b[:, 0], np.c_[x, np.broadcast_to(anchor, (4, 7))])
    np.testing.assert_array_equal(b[:, 1], np.c_[x, np.zeros((4, 7), np.int8)])


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_anchor_intensity_and_correlation_match_their_numpy_formulas(dtype):
    """opu.recovery.anchor_intensity (mean of the anchor-only frames in float64, dark
    subtracted, floored; 1 / (2 sqrt)) and centred_correlation, bit for bit / to 1e-12."""
    from opu.recovery import anchor_intensity, centred_correlation

    rng = np.random.default_rng(4)
    frames = (rng.random((21, 300)) * 4000).astype(dtype)
    frames[:5, :10] = 0  # a faded anchor: the floor applies
    dark = (rng.random(300) * 60).astype(np.float32)
    ir, inv = np.empty((2, 300), np.float32)
    anchor_intensity(frames, 5, dark, 30.0, ir, inv)
    want = frames[:5].mean(axis=0, dtype=np.float64).astype(np.float32) - dark
    want = np.maximum(want, np.float32(30.0))
    np.testing.assert_array_equal(ir, want)
    assert (ir[:10] == 30.0).all()
    np.testing.assert_array_equal(inv, (0.5 / np.sqrt(want)).astype(np.float32))
    ref = rng.random(300)
    rc = ref - ref.mean()
    got = centred_correlation(ir, rc, float(np.sqrt(rc @ rc)))
    assert got == pytest.approx(np.corrcoef(ref, ir.astype(np.float64))[0, 1], abs=1e-12)
    assert centred_correlation(np.full(300, 7.0, np.float32), rc, 1.0) == 1.0  # no spread
