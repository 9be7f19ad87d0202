"""Float inputs whose projection would overflow float32 are refused, saying what is accepted;
inputs at the edge of the accepted range give finite, exact-to-encoding outputs."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.errors import InputError
from opu import OPU
from opu.encoding import FLOAT_ROW_L1_MAX, quantised


@pytest.fixture(scope="module")
def dev():
    with OPU(n_in=50, n_out=40, seed=21, noise=False) as d:
        d.ensure_calibrated()
        yield d


@pytest.mark.parametrize("value,dtype", [(3.0e38, np.float32), (np.finfo(np.float32).max,
                                         np.float32), (1e300, np.float64), (-8e29, np.float64)])
def test_float_input_that_would_overflow_is_refused(dev, value, dtype):
    x = np.full((3, 50), 0.5, dtype=dtype)
    x[1, 7] = value
    x[1, 8] = value
    before = dev.source.frames_taken
    accepted = r"row 1 .*accepted up to a sum of \|x\| per row of 1e\+30"
    with pytest.raises(InputError, match=accepted):
        dev.project(x)
    assert dev.source.frames_taken == before  # refused before any frame


def test_float_input_at_the_edge_of_the_range_is_finite_and_exact(dev):
    rng = np.random.default_rng(22)
    x = rng.standard_normal((4, 50))
    x *= (1 - 1e-12) * FLOAT_ROW_L1_MAX / np.abs(x).sum(axis=1, keepdims=True)  # just inside
    y = dev.project(x)
    assert np.isfinite(y).all()
    truth = quantised(x, 8) @ dev.exact_linear_matrix().T.astype(np.float64)
    np.testing.assert_allclose(y, truth, rtol=1e-4, atol=1e-5 * np.abs(truth).max())
