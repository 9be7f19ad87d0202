"""Numba kernels that generate tiles of the seeded complex Gaussian transmission matrix.

Entry T[p, j] (camera pixel id p, DMD element j, drift epoch e) is CN(0, 1): real and imaginary
parts independent N(0, 1/2), from the counter-based generator keyed by (seed, e, p) at counter j.
A tile is returned stacked as a real matrix W of shape (2 * n_rows, n_cols): rows [0, n) hold
Re T, rows [n, 2n) hold Im T, so that one real GEMM X @ W.T gives both parts of the field.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .counter_rng import _FM, complex_gauss, derive_key, draw


@nb.njit(parallel=True, cache=True, fastmath=_FM)
def fill_stacked_tile(
    seed: np.uint64, epoch: np.uint64, rows: np.ndarray, col0: int, out: np.ndarray
) -> None:
    """Write T[rows, col0:col0+n_cols] of drift epoch `epoch` into out (2*len(rows), n_cols) f32."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        key = derive_key(seed, epoch, np.uint64(rows[i]))
        for j in range(nc):
            re, im = complex_gauss(draw(key, np.uint64(col0 + j)))
            out[i, j] = re
            out[n + i, j] = im


@nb.njit(parallel=True, cache=True, fastmath=_FM)
def ou_step_stacked_tile(
    seed: np.uint64, epoch: np.uint64, rows: np.ndarray, col0: int, rho: float, state: np.ndarray
) -> None:
    """One drift step in place: state <- rho * state + sqrt(1 - rho^2) * W_epoch (same layout)."""
    n = rows.shape[0]
    nc = state.shape[1]
    a = np.float32(rho)
    b = np.float32(math.sqrt(max(0.0, 1.0 - rho * rho)))
    for i in nb.prange(n):
        key = derive_key(seed, epoch, np.uint64(rows[i]))
        for j in range(nc):
            re, im = complex_gauss(draw(key, np.uint64(col0 + j)))
            state[i, j] = a * state[i, j] + b * re
            state[n + i, j] = a * state[n + i, j] + b * im
