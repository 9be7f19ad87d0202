"""Statistics of the recovered linear matrix and of intensity speckle (noise-free device)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def recovered_matrix(dev) -> np.ndarray:
    """G recovered column by column: project the basis vectors (binary inputs)."""
    return dev.project(np.eye(dev.n_in, dtype=np.uint8)).T  # (n_out, n_in)


def test_recovered_entries_gaussian_iid(ideal_opu):
    g = recovered_matrix(ideal_opu)
    n_out, n_in = g.shape
    assert g.size >= 1_000_000
    v = g.ravel().astype(np.float64)
    # zero mean and unit variance (scale documented in opu.device), within sampling error
    assert abs(v.mean()) < 5 / np.sqrt(v.size)
    assert abs(v.var() - 1.0) < 0.03  # the scale is calibrated from ~1e5 samples
    assert abs(stats.kurtosis(v, fisher=False) - 3.0) < 0.2
    assert abs(stats.skew(v)) < 0.02
    # no rank-one bias: the largest singular value sits at the Marchenko-Pastur edge
    s_max = np.linalg.svd(g / np.sqrt(v.var()), compute_uv=False)[0]
    edge = np.sqrt(n_out) + np.sqrt(n_in)
    assert s_max < 1.05 * edge
    # row and column means are as small as independent entries allow
    assert np.std(g.mean(axis=1)) < 1.2 / np.sqrt(n_in)
    assert np.std(g.mean(axis=0)) < 1.2 / np.sqrt(n_out)


def test_recovered_matrix_equals_truth(ideal_opu):
    g = recovered_matrix(ideal_opu)
    truth = ideal_opu.exact_linear_matrix()
    assert np.linalg.norm(g - truth) / np.linalg.norm(truth) < 1e-5


def test_intensity_speckle_is_exponential(ideal_opu, rng):
    x = (rng.random((200, 1000)) < 0.5).astype(np.uint8)
    y = ideal_opu.project(x, mode="intensity")
    # per frame, normalised by its mean: exponential law, contrast 1
    z = (y / y.mean(axis=1, keepdims=True)).ravel()
    contrast = z.std() / z.mean()
    assert abs(contrast - 1.0) < 0.05
    ks = stats.kstest(z, "expon")
    assert ks.statistic < 0.02
    # mean intensity = number of ON elements (documented scale), within PRNU/calibration error
    ratio = y.mean(axis=1) / x.sum(axis=1)
    assert abs(ratio.mean() - 1.0) < 0.05
