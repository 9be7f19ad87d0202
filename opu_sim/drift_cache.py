"""Dense cache of a drifting medium: per-entry knot state, so that moving in time costs a
recombination, not a regeneration (an optimisation: values are bit for bit fill_drift_tile's).

Per entry the cache keeps its scale index, phase, current knot index n, the knots G_n,
G_{n+1} and its start offset S - X(0) (fill_drift_tile). At a new time t only entries whose
knot index changed draw new knots (one, when time moved to the next interval; two otherwise);
all others recombine cos(pi f/2) G_n + sin(pi f/2) G_{n+1} (+ the start term) with the new f.
Same arithmetic as fill_drift_tile (no FMA contraction, then the same on_grid rounding), so
the result is identical to generating afresh.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .coefficient_grid import on_grid
from .counter_rng import complex_gauss, derive_key, draw, knot_key, quarter_phasor
from .gaussian_tiles import _FM_DRIFT, DRIFT_STREAM, drift_entry, start_weight

# scale index, phase, knot index, two complex knots, the complex start offset S - X(0)
STATE_BYTES_PER_ENTRY = 4 + 4 + 8 + 16 + 8


class DriftState:
    """Knot state of a dense (2n, nc) block; arrays are (n, nc) except knots (2n, nc) x 2."""

    def __init__(self, n_rows: int, n_cols: int) -> None:
        self.scale = np.empty((n_rows, n_cols), np.int32)
        self.phase = np.empty((n_rows, n_cols), np.float32)
        self.knot = np.empty((n_rows, n_cols), np.int64)
        self.lo = np.empty((2 * n_rows, n_cols), np.float32)
        self.hi = np.empty((2 * n_rows, n_cols), np.float32)
        self.offset = np.empty((2 * n_rows, n_cols), np.float32)

    @property
    def nbytes(self) -> int:
        """Memory held, bytes."""
        return sum(a.nbytes for a in (self.scale, self.phase, self.knot, self.lo, self.hi,
                                      self.offset))


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def drift_state_fill(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, scale_lut: np.ndarray,
    rows: np.ndarray, col0: int, out: np.ndarray, scale: np.ndarray, phase: np.ndarray,
    knot: np.ndarray, lo: np.ndarray, hi: np.ndarray, offset: np.ndarray,
) -> None:
    """fill_drift_tile that also records every entry's state."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        rk = derive_key(seed, DRIFT_STREAM, np.uint64(rows[i]))
        sk = derive_key(seed, np.uint64(0), np.uint64(rows[i]))
        for j in range(nc):
            e = drift_entry(rk, sk, np.uint64(col0 + j), t_s, inv_scale_s, scale_lut)
            out[i, j] = on_grid(e[0])
            out[n + i, j] = on_grid(e[1])
            scale[i, j] = e[2]
            phase[i, j] = e[3]  # exact: a 24-bit integer times 2**-24
            knot[i, j] = np.int64(e[4])
            lo[i, j] = e[5]
            lo[n + i, j] = e[6]
            hi[i, j] = e[7]
            hi[n + i, j] = e[8]
            offset[i, j] = e[9]
            offset[n + i, j] = e[10]


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def drift_state_advance(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, rows: np.ndarray, col0: int,
    out: np.ndarray, scale: np.ndarray, phase: np.ndarray, knot: np.ndarray, lo: np.ndarray,
    hi: np.ndarray, offset: np.ndarray, drawn: np.ndarray,
) -> None:
    """Move a recorded block to time t_s (any direction); drawn[i]: knots drawn in row i."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        rk = derive_key(seed, DRIFT_STREAM, np.uint64(rows[i]))
        new = 0
        for j in range(nc):
            s = t_s * inv_scale_s[scale[i, j]] + float(phase[i, j])
            m = math.floor(s)
            f = np.float32(s - m)
            mi = np.int64(m)
            if mi != knot[i, j]:
                c = np.uint64(col0 + j)
                kn = np.uint64(m)
                if mi == knot[i, j] + 1:
                    lo[i, j] = hi[i, j]
                    lo[n + i, j] = hi[n + i, j]
                else:
                    a_re, a_im = complex_gauss(draw(knot_key(rk, kn), c))
                    lo[i, j] = a_re
                    lo[n + i, j] = a_im
                    new += 1
                b_re, b_im = complex_gauss(draw(knot_key(rk, kn + np.uint64(1)), c))
                hi[i, j] = b_re
                hi[n + i, j] = b_im
                knot[i, j] = mi
                new += 1
            wa, wb = quarter_phasor(f)
            w0 = start_weight(m, wa, wb, phase[i, j])
            out[i, j] = on_grid((wa * lo[i, j] + wb * hi[i, j]) + w0 * offset[i, j])
            out[n + i, j] = on_grid((wa * lo[n + i, j] + wb * hi[n + i, j])
                                    + w0 * offset[n + i, j])
        drawn[i] = new
