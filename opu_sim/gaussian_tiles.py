"""Numba kernels that generate tiles of the seeded complex Gaussian transmission matrix.

Entry T[p, j] (camera pixel id p, DMD element j) is CN(0, 1): real and imaginary parts
independent N(0, 1/2), from the counter-based generator keyed by (seed, stream, p) at counter j.
A static medium is stream 0; a drifting one combines knots of its own streams
(opu_sim.drift_model).
A tile is returned stacked as a real matrix W of shape (2 * n_rows, n_cols): rows [0, n) hold
Re T, rows [n, 2n) hold Im T, so that one real GEMM X @ W.T gives both parts of the field.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

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
            out[i, j] = re
            out[n + i, j] = im


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
    scale_lut: int32 inverse-CDF table of 2**16 entries. t_s >= 0. Same cost at any t_s."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        rk = derive_key(seed, DRIFT_STREAM, np.uint64(rows[i]))
        for j in range(nc):
            c = np.uint64(col0 + j)
            h = draw(rk, c)
            k = scale_lut[h & np.uint64(0xFFFF)]
            s = t_s * inv_scale_s[k] + float(h >> np.uint64(40)) * (1.0 / 16777216.0)
            m = math.floor(s)
            f = np.float32(s - m)
            knot = np.uint64(m)
            a_re, a_im = complex_gauss(draw(knot_key(rk, knot), c))
            b_re, b_im = complex_gauss(draw(knot_key(rk, knot + np.uint64(1)), c))
            wa, wb = quarter_phasor(f)
            out[i, j] = wa * a_re + wb * b_re
            out[n + i, j] = wa * a_im + wb * b_im
