"""Dense cache of a drifting medium: per-entry knot state, so that moving in time costs a
recombination, not a regeneration (an optimisation: values are bit for bit fill_drift_tile's).

Per entry the cache keeps its scale index, phase, current knot interval m and the two knots
its value combines (opu_sim.drift_tiles: S and V while m = 0; Gamma_m, Gamma_{m+1} after).
At a new time t only entries whose interval changed draw new knots (one, when time moved to
the next interval; two or three otherwise); all others recombine the kept knots with the new
weights. Same arithmetic as fill_drift_tile (no FMA contraction, then the same on_grid
rounding), so the result is identical to generating afresh.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .counter_rng import complex_gauss
from .drift_tiles import (
    _FM_DRIFT,
    case_knots,
    case_weights,
    combine,
    drift_entry,
    entry_clock_at,
    knot_draw,
    row_keys,
    second_knot,
)

# scale index, phase, knot interval, two complex knots
STATE_BYTES_PER_ENTRY = 4 + 4 + 8 + 16


class DriftState:
    """Knot state of a dense (2n, nc) block; arrays are (n, nc) except knots (2n, nc) x 2."""

    def __init__(self, n_rows: int, n_cols: int) -> None:
        self.scale = np.empty((n_rows, n_cols), np.int32)
        self.phase = np.empty((n_rows, n_cols), np.float32)
        self.knot = np.empty((n_rows, n_cols), np.int64)
        self.lo = np.empty((2 * n_rows, n_cols), np.float32)
        self.hi = np.empty((2 * n_rows, n_cols), np.float32)

    @property
    def nbytes(self) -> int:
        """Memory held, bytes."""
        return sum(a.nbytes for a in (self.scale, self.phase, self.knot, self.lo, self.hi))


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def drift_state_fill(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, scale_lut: np.ndarray,
    rows: np.ndarray, col0: int, out: np.ndarray, scale: np.ndarray, phase: np.ndarray,
    knot: np.ndarray, lo: np.ndarray, hi: np.ndarray, drawn: np.ndarray,
) -> None:
    """fill_drift_tile that also records every entry's state; drawn[i]: draws of row i."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        rk, sk, kk = row_keys(seed, rows[i])
        second = 0
        for j in range(nc):
            e = drift_entry(rk, sk, kk, np.uint64(col0 + j), t_s, inv_scale_s, scale_lut)
            out[i, j] = e[0]
            out[n + i, j] = e[1]
            scale[i, j] = e[2]
            phase[i, j] = e[3]
            knot[i, j] = e[4]
            lo[i, j] = e[5]
            lo[n + i, j] = e[6]
            hi[i, j] = e[7]
            hi[n + i, j] = e[8]
            second += e[4] == 1
        drawn[i] = 3 * nc + second


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def drift_state_advance(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, rows: np.ndarray, col0: int,
    out: np.ndarray, scale: np.ndarray, phase: np.ndarray, knot: np.ndarray, lo: np.ndarray,
    hi: np.ndarray, drawn: np.ndarray,
) -> None:
    """Move a recorded block to time t_s (any direction); drawn[i]: knots drawn in row i."""
    n = rows.shape[0]
    nc = out.shape[1]
    for i in nb.prange(n):
        rk, sk, kk = row_keys(seed, rows[i])
        new = 0
        for j in range(nc):
            c = np.uint64(col0 + j)
            ph = phase[i, j]
            m, f, u = entry_clock_at(t_s, inv_scale_s[scale[i, j]], ph)
            was = knot[i, j]
            if m != was:
                if m == 1 and was == 0:  # S, V -> Gamma_1, G_2
                    g1_re, g1_im = second_knot(lo[i, j], lo[n + i, j], hi[i, j], hi[n + i, j],
                                               ph)
                    lo[i, j], lo[n + i, j] = g1_re, g1_im
                    hi[i, j], hi[n + i, j] = complex_gauss(knot_draw(kk, np.uint64(2), c))
                    new += 1
                elif m >= 2 and m == was + 1:  # the next interval: hi becomes lo
                    lo[i, j], lo[n + i, j] = hi[i, j], hi[n + i, j]
                    hi[i, j], hi[n + i, j] = complex_gauss(knot_draw(kk, np.uint64(m + 1), c))
                    new += 1
                else:
                    if m == 0:
                        e = case_knots(0, sk, kk, c, ph, m, f, u)
                    elif m == 1:
                        e = case_knots(1, sk, kk, c, ph, m, f, u)
                    else:
                        e = case_knots(2, sk, kk, c, ph, m, f, u)
                    lo[i, j], lo[n + i, j], hi[i, j], hi[n + i, j] = e[0], e[1], e[2], e[3]
                    new += 3 if m == 1 else 2
                knot[i, j] = m
            if m == 0:
                wa, wb = case_weights(0, f, u)
            else:
                wa, wb = case_weights(1, f, u)
            out[i, j] = combine(wa, wb, lo[i, j], hi[i, j])
            out[n + i, j] = combine(wa, wb, lo[n + i, j], hi[n + i, j])
        drawn[i] = new
