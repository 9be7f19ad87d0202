"""Noise below one DN step: exact moments of rounded Gaussians and the dark-noise fit.

Truth: rounded draws from a known N(m, s^2) (numpy), not the simulator, so the statistics of
the estimators alone are tested (tolerances stated per test, well outside their spread).
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration.quantisation import dark_noise_ml, quantised_moments, sub_dn_gain_and_noise
from firmware_iface.errors import CalibrationError


@pytest.mark.parametrize(("m", "s"), [(3.3, 0.2), (4.0, 0.3), (4.5, 0.3), (7.1, 1.0), (2.0, 3.0)])
def test_moments_match_monte_carlo(m, s):
    x = np.round(m + s * np.random.default_rng(0).standard_normal(4_000_000))
    mean, var = quantised_moments(m, s)
    # standard errors: s/2000 for the mean, about var/1400 for the variance
    assert mean == pytest.approx(x.mean(), abs=4 * s / 2000)
    assert var == pytest.approx(x.var(), rel=4 / 1400)


def test_moments_are_not_sheppard_below_half_a_dn():
    # centred on a count, 0.3 DN of noise: half of Sheppard's s^2 + 1/12
    _, var = quantised_moments(4.0, 0.3)
    assert var == pytest.approx(0.096, abs=0.002)
    _, var = quantised_moments(4.0, 1.0)
    assert var == pytest.approx(1.0 + 1 / 12, rel=1e-6)


@pytest.mark.parametrize("s", [0.2, 0.3, 0.45, 1.0])
def test_dark_noise_ml_recovers_sigma_below_a_dn(s):
    rng = np.random.default_rng(1)
    level = 4.0 + 0.075 * rng.standard_normal(1600)  # DSNU: a small fraction of a DN
    frames = np.round(level + s * rng.standard_normal((256, 1600)))
    sigma, m = dark_noise_ml(frames)
    assert sigma == pytest.approx(s, rel=0.015)  # spread of the fit ~0.3 %
    naive = np.sqrt(max(frames.var(axis=0, ddof=1).mean() - 1 / 12, 0))
    if s <= 0.3:  # what the variance with Sheppard's correction would say
        assert abs(naive / s - 1) > 0.05
    assert np.abs(m - level).mean() < 0.6 * s


def test_dark_noise_far_below_a_dn_is_refused():
    rng = np.random.default_rng(2)
    level = 4.0 + 0.02 * rng.standard_normal(400)
    with pytest.raises(CalibrationError, match="far below one DN"):
        dark_noise_ml(np.round(level + 0.05 * rng.standard_normal((256, 400))))


def test_sub_dn_gain_recovers_k_and_dark_noise():
    # a camera at K = 0.05 DN/e-, 0.3 DN read noise, signals 0-18 DN; per-pixel means spread
    # by speckle, 16 frames per exposure, exact Gaussian noise of variance s_d^2 + K mu
    rng = np.random.default_rng(3)
    k, s_d, n_px, n_f = 0.05, 0.3, 1500, 16
    level = 4.0 + 0.075 * rng.standard_normal(n_px)
    dark = np.round(level + s_d * rng.standard_normal((256, n_px)))
    mu = np.linspace(1.0, 18.0, 12)[:, None] * rng.exponential(1.0, n_px)[None, :]
    mu = np.minimum(mu, 25.0)
    y = np.round(level + mu + np.sqrt(s_d**2 + k * mu) * rng.standard_normal((n_f, *mu.shape)))
    var = y.var(axis=0, ddof=1)
    k_q, sigma = sub_dn_gain_and_noise(dark, mu, var, 17.5, 48, n_f, 0.06)
    assert k_q == pytest.approx(k, rel=0.02)
    assert sigma == pytest.approx(s_d, rel=0.02)
