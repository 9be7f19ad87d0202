"""Numba kernels that generate tiles of the seeded complex Gaussian transmission matrix.

Entry T[p, j] (camera pixel id p, DMD element j) is CN(0, 1): real and imaginary parts
independent N(0, 1/2), from the counter-based generator keyed by (seed, stream, p) at counter j.
A static medium is stream 0; a drifting one combines knots of its own streams
(opu_sim.drift_model, kernels in opu_sim.drift_tiles).
A tile is returned stacked as a real matrix W of shape (2 * n_rows, n_cols): rows [0, n) hold
Re T, rows [n, 2n) hold Im T, so that one real GEMM X @ W.T gives both parts of the field.
Every value written is on the coefficient grid (opu_sim.coefficient_grid.on_grid: multiples of
2**-9 within +-8), which makes the field sums of binary rows exact.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .coefficient_grid import on_grid
from .counter_rng import _FM, complex_gauss, derive_key, draw


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
