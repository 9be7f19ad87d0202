"""Numba kernels that generate tiles of the seeded complex Gaussian transmission matrix.

Entry T[p, j] (camera pixel id p, DMD element j) is CN(0, 1): real and imaginary parts
independent N(0, 1/2), from the counter-based generator keyed by (seed, stream, p) at counter j.
A static medium is stream 0; a drifting one combines knots of its own streams
(opu_sim.drift_model).
A tile is returned stacked as a real matrix W of shape (2 * n_rows, n_cols): rows [0, n) hold
Re T, rows [n, 2n) hold Im T, so that one real GEMM X @ W.T gives both parts of the field.
Every value written is on the coefficient grid (opu_sim.coefficient_grid.on_grid: multiples of
2**-9 within +-8), which makes the field sums of binary rows exact.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .coefficient_grid import on_grid
from .counter_rng import _FM, complex_gauss, derive_key, draw, knot_key, quarter_phasor

DRIFT_STREAM = np.uint64(0xD21F7000000000A5)  # stream of the drift knots (static T uses 0)
# no FMA contraction in the drift kernel: with it, the vector body and the scalar remainder of
# the column loop fused differently and a coefficient depended on the tile it was asked in
_FM_DRIFT = {"nnan", "ninf", "nsz"}


@nb.njit(parallel=True, cache=True, fastmath=_FM)
def fill_stacked_tile(
    seed: np.uint64, epoch: np.uint64, rows: np.ndarray, col0: int, out: np.ndarray
) -> None:
    """Write T[rows, col0:col0+n_cols] of stream `epoch` (0: the static medium) into out
    (2*len(rows), n_cols) f32."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        key = derive_key(seed, epoch, np.uint64(rows[i]))
        for j in range(nc):
            re, im = complex_gauss(draw(key, np.uint64(col0 + j)))
            out[i, j] = on_grid(re)
            out[n + i, j] = on_grid(im)


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def fill_drift_tile(
    seed: np.uint64,
    t_s: float,
    inv_scale_s: np.ndarray,
    scale_lut: np.ndarray,
    rows: np.ndarray,
    col0: int,
    out: np.ndarray,
) -> None:
    """Write T(t_s)[rows, col0:col0+n_cols] of the drifting medium (opu_sim.drift_model) into
    out (2*len(rows), n_cols) f32. inv_scale_s: 1 / (h_i tau) per scale (1/s, float64);
    scale_lut: int32 inverse-CDF table of 2**16 entries. t_s >= 0. Same cost at any t_s.
    The free process X is conditioned on the static medium S at t = 0:
    T(t) = X(t) + E[X(t) X(0)*] (S - X(0)), so T(0) = S and the statistics are X's."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        rk = derive_key(seed, DRIFT_STREAM, np.uint64(rows[i]))
        sk = derive_key(seed, np.uint64(0), np.uint64(rows[i]))  # the static medium's row
        for j in range(nc):
            e = drift_entry(rk, sk, np.uint64(col0 + j), t_s, inv_scale_s, scale_lut)
            out[i, j] = on_grid(e[0])
            out[n + i, j] = on_grid(e[1])


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def drift_entry(
    row_key: np.uint64, static_key: np.uint64, c: np.uint64, t_s: float,
    inv_scale_s: np.ndarray, scale_lut: np.ndarray,
) -> tuple:
    """One entry (row keys, column c) of the drifting medium at t_s, and its state: (value re,
    value im (both before on_grid), scale index, phase, knot index n, G_n re, im, G_n+1 re,
    im, start offset S - X(0) re, im). The one definition fill_drift_tile and the dense drift
    cache both use."""
    h = draw(row_key, c)
    k = scale_lut[h & np.uint64(0xFFFF)]
    ph = float(h >> np.uint64(40)) * (1.0 / 16777216.0)
    s = t_s * inv_scale_s[k] + ph
    m = math.floor(s)
    f = np.float32(s - m)
    knot = np.uint64(m)
    a_re, a_im = complex_gauss(draw(knot_key(row_key, knot), c))
    b_re, b_im = complex_gauss(draw(knot_key(row_key, knot + np.uint64(1)), c))
    wa, wb = quarter_phasor(f)
    d_re, d_im = start_offset(static_key, row_key, c, np.float32(ph))
    w0 = start_weight(m, wa, wb, np.float32(ph))
    return ((wa * a_re + wb * b_re) + w0 * d_re, (wa * a_im + wb * b_im) + w0 * d_im, k,
            np.float32(ph), m, a_re, a_im, b_re, b_im, d_re, d_im)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def start_offset(
    static_key: np.uint64, row_key: np.uint64, c: np.uint64, phase: np.float32
) -> tuple[np.float32, np.float32]:
    """S - X(0) of one entry: its static-medium value minus its free process at t = 0."""
    s_re, s_im = complex_gauss(draw(static_key, c))
    g0_re, g0_im = complex_gauss(draw(knot_key(row_key, np.uint64(0)), c))
    g1_re, g1_im = complex_gauss(draw(knot_key(row_key, np.uint64(1)), c))
    ca, cb = quarter_phasor(phase)
    return s_re - (ca * g0_re + cb * g1_re), s_im - (ca * g0_im + cb * g1_im)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def start_weight(m: int, wa: np.float32, wb: np.float32, phase: np.float32) -> np.float32:
    """E[X(t) conj X(0)] of one entry given its knot interval m and weights at t: the overlap
    of its knot weights with those at t = 0 (knots 0 and 1); 0 from knot interval 2 on."""
    ca, cb = quarter_phasor(phase)
    if m == 0:
        return wa * ca + wb * cb
    if m == 1:
        return wa * cb
    return np.float32(0.0)
