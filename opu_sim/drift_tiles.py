"""Numba kernels that generate tiles of the drifting medium T(t) (opu_sim.drift_model).

Entry (row p, column c): one draw of the drift stream gives its scale index k (16 bits) and
phase ph (24 bits); its clock is s = t / (h_k tau) + ph, knot interval m = floor(s), f = s - m.
Its knots are the free process's, conditioned on the static medium S (stream 0) at t = 0:

    Gamma_0 = ca S - cb V,  Gamma_1 = cb S + ca V,  (ca, cb) = (cos, sin)(pi ph / 2),
    Gamma_n = G_n for n >= 2,

V and G_n CN(0, 1) knots of the row's knot stream (counter n * 2**32 + c; V at n = 0). S, V are
independent CN(0, 1), so Gamma_0 and Gamma_1 are too (a rotation of them), and
X(0) = ca Gamma_0 + cb Gamma_1 = S: T is the free process on these knots,
T(t) = cos(pi f / 2) Gamma_m + sin(pi f / 2) Gamma_{m+1}, evaluated in three cases:

    m = 0:   cos(pi u / 2) S + sin(pi u / 2) V,  u = t / (h_k tau)   (the same function)
    m = 1:   cos(pi f / 2) Gamma_1 + sin(pi f / 2) G_2
    m >= 2:  cos(pi f / 2) G_m + sin(pi f / 2) G_{m+1}

Cases 0 and 2 both combine two knots, each drawn from one key at one counter, so one
branch-free pass computes them together. An entry costs 3 draws and 2 Box-Muller transforms at
any time (4 and 3 in its second knot interval; the old construction, X(t) + E[X(t) X(0)*]
(S - X(0)) on free knots, took 6 and 5: same law, the conditional of the free process given
X(0) = S). No FMA contraction and no reassociation: every operation rounds once, the same in a
vector lane, a scalar loop or on any CPU, so a coefficient does not depend on the tile, the
pass or the machine it is computed on (tests/test_sim_medium.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import drift_model
from .coefficient_grid import on_grid
from .counter_rng import complex_gauss, derive_key, draw, knot_key, quarter_phasor

DRIFT_STREAM = np.uint64(0xD21F7000000000A5)  # stream of the drift knots (static T uses 0)
# no FMA contraction in the drift kernels: with it, the vector body and the scalar remainder of
# a loop fused differently and a coefficient depended on the tile it was asked in
_FM_DRIFT = {"nnan", "ninf", "nsz"}
_PHASE_UNIT = np.float32(1.0 / 16777216.0)
_KNOTS = np.uint64(0x6B4E07500000005D)  # knot address of a row's knot stream (V, G_2, G_3, ...)
# above this expected fraction of entries in case 1 (their second knot interval), every lane
# computes G_2 too (3 transforms an entry) instead of redoing case 1 on column lists
_THREE_KNOTS_ABOVE = 0.04
# rows generated together: their case flags (one byte an entry) take at most this many bytes
# (fewer, larger slabs: each is two parallel launches, and a launch waits for every thread)
_SLAB_BYTES = 32 << 20


@nb.njit(inline="always", cache=True)
def row_keys(seed: np.uint64, row: np.int64) -> tuple[np.uint64, np.uint64, np.uint64]:
    """(clock stream: scale and phase; static medium S; knots V, G_n) keys of one matrix row."""
    rk = derive_key(seed, DRIFT_STREAM, np.uint64(row))
    return rk, derive_key(seed, np.uint64(0), np.uint64(row)), knot_key(rk, _KNOTS)


@nb.njit(inline="always", cache=True)
def knot_draw(kk: np.uint64, n: np.uint64, c: np.uint64) -> np.uint64:
    """Draw of knot n (0: V) of column c < 2**32 of a row's knot stream: counter n * 2**32 + c
    (distinct for every n < 2**32, c < 2**32)."""
    return draw(kk, (n << np.uint64(32)) + c)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def entry_clock_at(t_s: float, inv_scale: float, ph: np.float32) -> tuple:
    """(knot interval m, f, u = t / (h tau) as float32) of an entry of phase ph and
    1 / (h tau) = inv_scale at t_s."""
    x = t_s * inv_scale
    s = x + np.float64(ph)
    mf = np.floor(s)
    return np.int64(mf), np.float32(s - mf), np.float32(x)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def entry_clock(row_key: np.uint64, c: np.uint64, t_s: float, inv_scale_s: np.ndarray,
                scale_lut: np.ndarray) -> tuple:
    """(scale index, phase, knot interval m, f, u) of entry c at t_s."""
    h = draw(row_key, c)
    k = scale_lut[h & np.uint64(0xFFFF)]
    ph = np.float32(np.int32(h >> np.uint64(40))) * _PHASE_UNIT  # exact
    m, f, u = entry_clock_at(t_s, inv_scale_s[k], ph)
    return k, ph, m, f, u


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def case_weights(case: int, f: np.float32, u: np.float32) -> tuple[np.float32, np.float32]:
    """(cos, sin)(pi u / 2) in case 0, (cos, sin)(pi f / 2) otherwise."""
    return quarter_phasor(u) if case == 0 else quarter_phasor(f)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def first_knots(sk: np.uint64, kk: np.uint64, c: np.uint64) -> tuple:
    """(S re, S im, V re, V im) of entry c: the knots of case m = 0."""
    s_re, s_im = complex_gauss(draw(sk, c))
    v_re, v_im = complex_gauss(knot_draw(kk, np.uint64(0), c))
    return s_re, s_im, v_re, v_im


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def second_knot(s_re: np.float32, s_im: np.float32, v_re: np.float32, v_im: np.float32,
                ph: np.float32) -> tuple[np.float32, np.float32]:
    """Gamma_1 = sin(pi ph / 2) S + cos(pi ph / 2) V."""
    ca, cb = quarter_phasor(ph)
    return cb * s_re + ca * v_re, cb * s_im + ca * v_im


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def case_knots(case: int, sk: np.uint64, kk: np.uint64, c: np.uint64, ph: np.float32,
               m: np.int64, f: np.float32, u: np.float32) -> tuple:
    """(lo re, lo im, hi re, hi im, weight lo, weight hi) of an entry in case 0 (m = 0: S, V),
    1 (m = 1: Gamma_1, G_2) or 2 (m >= 2: G_m, G_m+1); its value is wa lo + wb hi. `case` is
    a constant where it is called, so each case compiles to its own branch-free loop."""
    if case == 0:
        a_re, a_im, b_re, b_im = first_knots(sk, kk, c)
    elif case == 1:
        s_re, s_im, v_re, v_im = first_knots(sk, kk, c)
        a_re, a_im = second_knot(s_re, s_im, v_re, v_im, ph)
        b_re, b_im = complex_gauss(knot_draw(kk, np.uint64(2), c))
    else:
        kn = np.uint64(m)
        a_re, a_im = complex_gauss(knot_draw(kk, kn, c))
        b_re, b_im = complex_gauss(knot_draw(kk, kn + np.uint64(1), c))
    wa, wb = case_weights(case, f, u)
    return a_re, a_im, b_re, b_im, wa, wb


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def combine(wa: np.float32, wb: np.float32, a: np.float32, b: np.float32) -> np.float32:
    """wa a + wb b on the coefficient grid."""
    return on_grid(wa * a + wb * b)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def drift_entry(rk: np.uint64, sk: np.uint64, kk: np.uint64, c: np.uint64, t_s: float,
                inv_scale_s: np.ndarray, scale_lut: np.ndarray) -> tuple:
    """One entry at t_s and its state, scalar: (value re, value im, scale index, phase, m,
    lo re, lo im, hi re, hi im); the same arithmetic as the tile kernel's passes."""
    k, ph, m, f, u = entry_clock(rk, c, t_s, inv_scale_s, scale_lut)
    if m == 0:
        a_re, a_im, b_re, b_im, wa, wb = case_knots(0, sk, kk, c, ph, m, f, u)
    elif m == 1:
        a_re, a_im, b_re, b_im, wa, wb = case_knots(1, sk, kk, c, ph, m, f, u)
    else:
        a_re, a_im, b_re, b_im, wa, wb = case_knots(2, sk, kk, c, ph, m, f, u)
    return (combine(wa, wb, a_re, b_re), combine(wa, wb, a_im, b_im), k, ph, m, a_re, a_im,
            b_re, b_im)


@nb.njit(inline="always", cache=True, fastmath=_FM_DRIFT)
def _lane_knots(rk, sk, kk, c, t_s, inv_scale_s, scale_lut):  # pragma: no cover - jitted
    """(phase, interval m, f, u, the two knots' re/im) of entry column c, branch-free: S and V
    (key sk, counter c) while m <= 1, else G_m and G_m+1 (key kk, counters m 2**32 + c and
    (m + 1) 2**32 + c)."""
    _, ph, m, f, u = entry_clock(rk, c, t_s, inv_scale_s, scale_lut)
    early = np.uint64(0) - np.uint64(m <= 1)  # all ones in cases 0 and 1, else 0
    late = ~early
    kn = np.uint64(m) << np.uint64(32)
    step = np.uint64(1) << np.uint64(32)
    a_re, a_im = complex_gauss(draw((sk & early) | (kk & late),
                                    (c & early) | ((kn + c) & late)))
    b_re, b_im = complex_gauss(draw(kk, (c & early) | ((kn + step + c) & late)))
    return ph, m, f, u, a_re, a_im, b_re, b_im


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def _two_knot_tile(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, scale_lut: np.ndarray,
    rows: np.ndarray, r0: int, col0: int, out: np.ndarray, second: np.ndarray,
    ones: np.ndarray,
) -> None:
    """Rows r0 .. r0 + len(ones) of the tile, every entry of cases 0 and 2, branch-free: both
    combine two knots drawn from one key and counter each (S and V, or G_m and G_m+1) with the
    weights of u or f. Case 1 entries are written wrong and flagged: second[i, j] = 1,
    ones[i] = their count in row r0 + i."""
    n = rows.shape[0]
    nc = out.shape[1]
    for ii in nb.prange(ones.shape[0]):
        i = r0 + ii
        rk, sk, kk = row_keys(seed, rows[i])
        count = 0
        for j in range(nc):
            c = np.uint64(col0 + j)
            ph, m, f, u, a_re, a_im, b_re, b_im = _lane_knots(rk, sk, kk, c, t_s, inv_scale_s,
                                                              scale_lut)
            z = np.float32(m == 0)
            wa, wb = quarter_phasor(z * u + (np.float32(1.0) - z) * f)  # exactly u or f
            out[i, j] = combine(wa, wb, a_re, b_re)
            out[n + i, j] = combine(wa, wb, a_im, b_im)
            one = np.int8(m == 1)
            second[ii, j] = one
            count += one
        ones[ii] = count


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def _three_knot_tile(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, scale_lut: np.ndarray,
    rows: np.ndarray, r0: int, col0: int, out: np.ndarray, ones: np.ndarray,
) -> None:
    """Rows r0 .. r0 + len(ones) of the tile, every entry, branch-free: the two knots of
    _two_knot_tile and G_2 in every lane, then each case's combination (the same operations
    as case_knots); ones[i]: case 1 entries in row r0 + i. For times when case 1 is common."""
    n = rows.shape[0]
    nc = out.shape[1]
    for ii in nb.prange(ones.shape[0]):
        i = r0 + ii
        rk, sk, kk = row_keys(seed, rows[i])
        count = 0
        for j in range(nc):
            c = np.uint64(col0 + j)
            ph, m, f, u, a_re, a_im, b_re, b_im = _lane_knots(rk, sk, kk, c, t_s, inv_scale_s,
                                                              scale_lut)
            g2_re, g2_im = complex_gauss(knot_draw(kk, np.uint64(2), c))
            g1_re, g1_im = second_knot(a_re, a_im, b_re, b_im, ph)
            one = m == 1
            lo_re = g1_re if one else a_re
            lo_im = g1_im if one else a_im
            hi_re = g2_re if one else b_re
            hi_im = g2_im if one else b_im
            z = np.float32(m == 0)
            wa, wb = quarter_phasor(z * u + (np.float32(1.0) - z) * f)  # exactly u or f
            out[i, j] = combine(wa, wb, lo_re, hi_re)
            out[n + i, j] = combine(wa, wb, lo_im, hi_im)
            count += one
        ones[ii] = count


def second_interval_fraction(t_s: float, inv_scale_s: np.ndarray) -> float:
    """Expected fraction of entries in their second knot interval (case 1) at t_s: for scale
    k, P(1 <= x + ph < 2) with x = t / (h_k tau), ph ~ U[0, 1)."""
    x = t_s * np.asarray(inv_scale_s, dtype=np.float64)
    p = np.clip(np.minimum(1.0, 2.0 - x) - np.maximum(0.0, 1.0 - x), 0.0, 1.0)
    return float(p @ drift_model.SCALE_PROBABILITIES)


@nb.njit(parallel=True, cache=True, fastmath=_FM_DRIFT)
def _second_lists(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, scale_lut: np.ndarray,
    rows: np.ndarray, r0: int, which: np.ndarray, col0: int, out: np.ndarray,
    second: np.ndarray,
) -> None:
    """Case 1 entries of rows r0 + which, on each row's column list."""
    n = rows.shape[0]
    nc = out.shape[1]
    for w in nb.prange(which.shape[0]):
        ii = which[w]
        i = r0 + ii
        rk, sk, kk = row_keys(seed, rows[i])
        cols = np.empty(nc, np.int64)
        count = 0
        for j in range(nc):
            cols[count] = j
            count += second[ii, j]
        for q in range(count):
            j = cols[q]
            c = np.uint64(col0 + j)
            _, ph, m, f, u = entry_clock(rk, c, t_s, inv_scale_s, scale_lut)
            a_re, a_im, b_re, b_im, wa, wb = case_knots(1, sk, kk, c, ph, m, f, u)
            out[i, j] = combine(wa, wb, a_re, b_re)
            out[n + i, j] = combine(wa, wb, a_im, b_im)


def fill_drift_tile(
    seed: np.uint64, t_s: float, inv_scale_s: np.ndarray, scale_lut: np.ndarray,
    rows: np.ndarray, col0: int, out: np.ndarray,
) -> int:
    """Write T(t_s)[rows, col0:col0+n_cols] of the drifting medium into out (2*len(rows),
    n_cols) f32 (rows [0, n): Re, [n, 2n): Im, on the coefficient grid); returns the generator
    draws spent. inv_scale_s: 1 / (h_i tau) per scale (1/s, float64); scale_lut: int32
    inverse-CDF table of 2**16 entries; t_s >= 0; columns < 2**32.

    While few entries are in case 1 (second_interval_fraction <= _THREE_KNOTS_ABOVE: early
    on, and from about 5 tau), rows go in slabs (flags of _SLAB_BYTES at most): one
    branch-free pass for cases 0 and 2 (a kernel of its own: that is what lets LLVM vectorise
    its loop) flags the case 1 entries, which are then redone on each row's column list.
    Otherwise one branch-free pass computes G_2 in every lane too. Either way every entry is
    the same bits."""
    n, nc = rows.shape[0], out.shape[1]
    if second_interval_fraction(t_s, inv_scale_s) > _THREE_KNOTS_ABOVE:
        ones = np.empty(n, np.int64)
        _three_knot_tile(seed, t_s, inv_scale_s, scale_lut, rows, 0, col0, out, ones)
        return 3 * n * nc + int(ones.sum())
    slab = max(1, min(n, _SLAB_BYTES // max(nc, 1)))
    ones = np.empty(slab, np.int64)
    second = np.empty((slab, nc), np.int8)
    total = 0
    for r0 in range(0, n, slab):
        k = min(n - r0, slab)
        _two_knot_tile(seed, t_s, inv_scale_s, scale_lut, rows, r0, col0, out, second[:k],
                       ones[:k])
        which = np.flatnonzero(ones[:k])
        if which.size:
            _second_lists(seed, t_s, inv_scale_s, scale_lut, rows, r0, which, col0, out,
                          second[:k])
        total += 3 * k * nc + int(ones[:k].sum())
    return total
