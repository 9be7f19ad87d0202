"""The medium's drift: continuous in time, matrix-free, exp(-d / tau) correlation.

Every entry T[p, j] of a drifting medium is its own smoothly interpolated Gaussian process:

    T(t)[p, j] = cos(pi f / 2) G_n[p, j] + sin(pi f / 2) G_{n+1}[p, j],
    s = t / (h tau) + phi,  n = floor(s),  f = s - n,

where G_n[p, j] ~ CN(0, 1) are independent counter-addressed knots (key: seed, p, n; counter: j),
phi ~ U[0, 1) is the entry's phase and h its time scale (in units of tau), both drawn once per
entry from the same generator. The weights are continuous in t (at a knot the value is G_{n+1}
from both sides) and cos^2 + sin^2 = 1, so T(t)[p, j] ~ CN(0, 1) at every t (E|T|^2 = 1).

Averaged over the entry's phase, one entry with scale h has correlation R(d / (h tau)), with
R(x) = ((2 - x) cos(pi x / 2) + (2 / pi) sin(pi x / 2)) / 2 for x < 2 and 0 beyond (the
autocorrelation of the kernel cos(pi u / 2) on [-1, 1]). The scales are drawn from a fixed
table of 32 geometric scales from tau/1000 to 8 tau whose probabilities were fitted (linear
programme, minimax over lags 1e-3 tau .. 6 tau) so that sum_i c_i R(d / (h_i tau)) =
exp(-d / tau) within 1e-4 for lags tau/100 .. 2 tau (2.8e-4 at any lag). The probabilities are
stored as integer counts out of 2**16 (the generator picks a scale with 16 random bits), so
the model is exactly the same on every machine.

Start: X above is conditioned on the static medium S of the same seed at t = 0. Its first two
knots are drawn given X(0) = S: G_0 = ca S - cb V, G_1 = cb S + ca V, (ca, cb) the weights at
t = 0 and V ~ CN(0, 1) a knot of the entry's own (opu_sim.drift_tiles); the others are free.
That is exactly the conditional law of the free process given X(0) = S (the same law as
X(t) + E[X(t) X(0)*] (S - X(0))), so T(0) = S and T has X's covariance.

Cost: one entry at any time t takes three 64-bit draws (scale and phase; two knots) and two
Box-Muller transforms (four and three in its second knot interval, where G_1 comes from S and
V), branch-free: nothing accumulates with elapsed time. The memory of the medium is finite:
after 2 * 6 tau (the largest scale used) every entry has been renewed.
"""

from __future__ import annotations

import math

import numpy as np

N_SCALES = 32
SCALES_TAU = np.geomspace(1e-3, 8.0, N_SCALES)  # time scale h_i of each knot grid, units of tau
SCALE_COUNTS = np.array(
    [
        29, 51, 0, 0, 47, 64, 0, 162, 58, 111, 201, 205, 438, 145, 1014, 332,
        1350, 1223, 1866, 2420, 3237, 4243, 5509, 6910, 8279, 8955, 8426, 5936, 3456, 571,
        298, 0,
    ],
    dtype=np.int64,
)  # probability of each scale, in units of 2**-16
SCALE_PROBABILITIES = SCALE_COUNTS / 65536.0
# 64-bit generator draws one drifting entry costs at most, at any time: scale and phase, and
# its two knots (S and V in its first knot interval; Gamma_1 from S and V, and G_2 in its
# second: 4 draws there; G_n, G_n+1 after): opu_sim.drift_tiles
DRAWS_PER_ENTRY = 4
# the model is fitted to within this for lags tau/100 .. 2 tau (tests check it)
FIT_TOLERANCE = 1e-4


def kernel_correlation(x: np.ndarray | float) -> np.ndarray:
    """Phase-averaged correlation of one entry of time scale h at lag x = d / h (dimensionless)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    out = np.zeros_like(x)
    m = x < 2.0
    xm = x[m]
    half_turn = np.pi * xm / 2.0
    out[m] = 0.5 * ((2.0 - xm) * np.cos(half_turn) + (2.0 / np.pi) * np.sin(half_turn))
    return out


def model_correlation(lag_over_tau: np.ndarray | float) -> np.ndarray:
    """E[T(t) conj T(t + d)] of the drift model at lags d / tau (real, since it is symmetric)."""
    x = np.asarray(lag_over_tau, dtype=np.float64)
    return kernel_correlation(x[..., None] / SCALES_TAU) @ SCALE_PROBABILITIES


def scale_lookup() -> np.ndarray:
    """int32 table of 2**16 entries mapping 16 random bits to a scale index (inverse CDF;
    int32 rather than uint8 so that the kernel's lookups vectorise as gathers, 2x faster)."""
    if SCALE_COUNTS.sum() != 65536 or (SCALE_COUNTS < 0).any():
        raise AssertionError("the drift scale counts must be non-negative and sum to 2**16")
    return np.repeat(np.arange(N_SCALES, dtype=np.int32), SCALE_COUNTS)


def inverse_scale_times(drift_time_s: float) -> np.ndarray:
    """1 / (h_i tau) per scale, 1/s, float64 (what the tile kernel multiplies time by)."""
    if not (drift_time_s > 0 and math.isfinite(drift_time_s)):
        raise ValueError(f"drift time must be a positive finite number, got {drift_time_s!r}")
    return (1.0 / (SCALES_TAU * float(drift_time_s))).astype(np.float64)
