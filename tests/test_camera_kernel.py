"""The camera kernel (opu_sim.camera_model.render_frames, vectorised passes, flag scan, dark-frame
path) gives the bits of a plain per-pixel loop over the same EMVA 1288 chain."""

from __future__ import annotations

import itertools
import math

import numba as nb
import numpy as np
import pytest

from opu_sim.camera_model import (
    POISSON_EXACT_BELOW_E,
    _poisson_lockstep,
    _round_half_up,
    render_frames,
)
from opu_sim.counter_rng import _FM, _f32_from_bits, derive_key, draw, gauss_pair, uniform

pytestmark = pytest.mark.numerics


@nb.njit(fastmath=_FM)
def _adc(n, offset, z1, sigma, fw, gain, black, max_dn, saturate, quantize):
    """The ADC as the module docstring states it (rounding in float64)."""
    sat_well = saturate and n >= fw
    n = min(n, fw) if saturate else n
    dn = gain * (n + offset + sigma * z1) + black
    if quantize:
        dn = min(max(math.floor(float(dn) + 0.5), 0.0), max_dn)
    return dn, sat_well or (quantize and dn >= max_dn)


@nb.njit(fastmath=_FM)
def _reference(fd, fa, idx_d, idx_a, laser, frame0, seed, ids, epu, dark, offset, read_e, fw_e,
               gain, black, max_dn, shot, read, saturate, quantize, out, saturated):
    """The chain pixel by pixel, as the module docstring states it."""
    sigma = np.float32(read_e if read else 0.0)
    fw, g, blk, top = np.float32(fw_e), np.float32(gain), np.float32(black), np.float32(max_dn)
    npx = out.shape[1]
    for f in range(out.shape[0]):
        key = derive_key(seed, np.uint64(1), np.uint64(frame0 + f))
        nsat = 0
        for p in range(npx):
            re = fd[idx_d[f], p] + fa[idx_a[f], p]
            im = fd[idx_d[f], npx + p] + fa[idx_a[f], npx + p]
            m = epu[p] * np.float32(laser[f]) * (re * re + im * im) + dark[p]
            z0, z1 = np.float32(0.0), np.float32(0.0)
            if shot or read:
                z0, z1 = gauss_pair(draw(key, np.uint64(ids[p])))
            if shot and m < POISSON_EXACT_BELOW_E:  # exact Poisson by inversion
                u = uniform(draw(key, np.uint64(ids[p]) ^ np.uint64(1 << 62)))
                pk = math.exp(-float(m))
                cdf, k = pk, 0
                while m > 0 and u > cdf and k < 200:
                    k += 1
                    pk *= m / k
                    cdf += pk
                n = np.float32(k)
            else:
                n = max(m + math.sqrt(m) * z0 if shot else m, np.float32(0.0))
            dn, sat = _adc(n, offset[p], z1, sigma, fw, g, blk, top, saturate, quantize)
            out[f, p] = dn
            nsat += sat
        saturated[f] = nsat


def _case(rng, n_px=300, frames=61):
    """Fields with dark frames (both fields 0), dim and saturating rows; shuffled pixel ids
    with gaps (an output-pixel subset)."""
    fd = rng.standard_normal((5, 2 * n_px)).astype(np.float32)
    fd[0] = 0  # an all-OFF data region
    fd[3] *= 0.02  # dim: many pixels below 10 e-
    fd[4] *= 6  # bright: saturates
    fa = rng.standard_normal((2, 2 * n_px)).astype(np.float32) * 0.5
    fa[0] = 0
    idx_d = rng.integers(1, 5, frames)
    idx_a = rng.integers(0, 2, frames)
    idx_d[:4], idx_a[:4] = 0, 0  # dark frames
    ids = rng.permutation(np.flatnonzero(rng.random(3 * n_px) < 0.4)[:n_px] + 12345)
    epu = (800 * (1 + 0.01 * rng.standard_normal(n_px))).astype(np.float32)
    epu[7] = 0  # a dead pixel: mu = dark
    dark = (0.02 * rng.random(n_px)).astype(np.float32)
    dark[11] = 30.0  # a hot pixel: on the Gaussian branch even in the dark
    offset = rng.standard_normal(n_px).astype(np.float32)
    laser = (1 + 0.002 * rng.standard_normal(frames)).astype(np.float32)
    return fd, fa, idx_d, idx_a, laser, ids, epu, dark, offset


@pytest.mark.parametrize("switches", list(itertools.product([True, False], repeat=4)))
def test_kernel_equals_the_plain_per_pixel_chain(switches):
    shot, read, saturate, quantize = switches
    fd, fa, idx_d, idx_a, laser, ids, epu, dark, offset = _case(np.random.default_rng(4))
    args = (fd, fa, idx_d, idx_a, laser, np.int64(1000), np.uint64(77), ids, epu, dark, offset,
            6.0, 32000.0, 0.128, 64.0, 4095.0, shot, read, saturate, quantize)
    dtype = np.uint16 if quantize else np.float32
    shape = (idx_d.size, ids.size)
    ref, ref_sat = np.empty(shape, dtype), np.zeros(shape[0], np.int64)
    _reference(*args, ref, ref_sat)
    for chunks in (1, 7, 200):
        out, sat = np.empty(shape, dtype), np.zeros(shape[0], np.int64)
        render_frames(*args, out, sat, chunks)
        np.testing.assert_array_equal(sat, ref_sat)
        if quantize:  # DN: the same bits
            np.testing.assert_array_equal(out, ref)
        else:  # float output: the same up to where FMA contraction rounds
            np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-4)
    assert (ref_sat.sum() > 0) == (saturate or quantize)  # the bright row saturates


def test_the_case_covers_every_branch():
    fd, fa, idx_d, idx_a, laser, ids, epu, dark, offset = _case(np.random.default_rng(4))
    n = ids.size
    field = fd[idx_d] + fa[idx_a]
    mu = epu * laser[:, None] * (field[:, :n] ** 2 + field[:, n:] ** 2) + dark
    lit = ~np.all(field == 0, axis=1)
    assert lit[4:].all() and not lit[:4].any()  # 4 dark frames
    assert ((mu[lit] > 0) & (mu[lit] < POISSON_EXACT_BELOW_E)).sum() > 100  # lit exact Poisson
    assert (mu[lit] > 32000 / 0.9).sum() > 100  # full well
    # dark pixels whose Poisson draw is k > 0 (the scan's share of the dark-frame path)
    assert 4 * n * (1 - np.exp(-dark[dark < 1])).mean() > 5


def test_a_pixel_draws_the_same_noise_in_any_output_subset():
    fd, fa, idx_d, idx_a, laser, ids, epu, dark, offset = _case(np.random.default_rng(5))
    sub = np.random.default_rng(6).permutation(ids.size)[:97]

    def run(cols):
        cols2 = np.concatenate([cols, ids.size + cols])
        out = np.empty((idx_d.size, cols.size), np.uint16)
        render_frames(np.ascontiguousarray(fd[:, cols2]), np.ascontiguousarray(fa[:, cols2]),
                      idx_d, idx_a, laser, np.int64(5), np.uint64(3), ids[cols], epu[cols],
                      dark[cols], offset[cols], 6.0, 32000.0, 0.128, 64.0, 4095.0, True, True,
                      True, True, out, np.zeros(idx_d.size, np.int64), 4)
        return out

    np.testing.assert_array_equal(run(np.arange(ids.size))[:, sub], run(sub))


@nb.njit(fastmath=_FM)
def _lockstep(mu, u, pmf):
    k = np.empty(mu.size, np.int64)
    _poisson_lockstep(mu.size, mu, u, pmf.copy(), np.empty(mu.size), k)
    return k


@nb.njit(fastmath=_FM)
def _one_pixel_inversion(mu, u, pmf0):
    k = np.empty(mu.size, np.int64)
    for i in range(mu.size):
        p = cdf = pmf0[i]
        j = 0
        while mu[i] > 0 and u[i] > cdf and j < 200:
            j += 1
            p *= mu[i] / j
            cdf += p
        k[i] = j
    return k


def test_the_lockstep_inversion_gives_the_k_of_the_one_pixel_loop():
    rng = np.random.default_rng(8)
    mu = np.concatenate([
        rng.random(20000) * POISSON_EXACT_BELOW_E,
        [0.0, 1e-30, 1e-7, np.nextafter(np.float32(POISSON_EXACT_BELOW_E), np.float32(0))],
    ]).astype(np.float32).astype(np.float64)
    u = rng.random(mu.size)
    u[:50] = 1 - 2.0 ** -53  # the largest uniform: the deepest k
    u[50:100] = 0.5 * 2.0 ** -53  # the smallest: k = 0
    pmf0 = np.exp(-mu)
    k = _lockstep(mu, u, pmf0)
    np.testing.assert_array_equal(k, _one_pixel_inversion(mu, u, pmf0))
    assert k.max() >= 20 and (k == 0).sum() > 100  # deep and shallow draws both covered
    u[:3] = 2.0  # never reached by a uniform: the cap at k = 200 (cdf stops short of u)
    np.testing.assert_array_equal(_lockstep(mu, u, pmf0)[:3], 200)


@pytest.mark.parametrize("switches,max_dn,dtype", [
    ((True, True, True, True), 255.0, np.uint8),
    ((True, True, True, True), 4095.0, np.uint16),
    ((True, False, True, False), 4095.0, np.float32),
])
def test_dim_frames_queue_many_exact_poisson_pixels(switches, max_dn, dtype):
    """Nearly every pixel-frame below 10 e- (the queue fills and is drawn many times within a
    chunk); 8- and 16-bit output; pixel ids far above 2**32 (only their span is bounded)."""
    shot, read, saturate, quantize = switches
    fd, fa, idx_d, idx_a, laser, ids, epu, dark, offset = _case(np.random.default_rng(9))
    epu *= 0.002  # mu ~ 1-3 e- on most rows
    ids = ids + (np.int64(1) << 40)
    args = (fd, fa, idx_d, idx_a, laser, np.int64(7), np.uint64(5), ids, epu, dark, offset,
            6.0, 32000.0, 0.5, 3.0, max_dn, shot, read, saturate, quantize)
    shape = (idx_d.size, ids.size)
    ref, ref_sat = np.empty(shape, dtype), np.zeros(shape[0], np.int64)
    _reference(*args, ref, ref_sat)
    field = fd[idx_d] + fa[idx_a]
    mu = epu * laser[:, None] * (field[:, :ids.size] ** 2 + field[:, ids.size:] ** 2) + dark
    assert (mu < POISSON_EXACT_BELOW_E).sum() > 10 * 1024 and (mu > 1).sum() > 1024
    for chunks in (1, 3):
        out, sat = np.empty(shape, dtype), np.zeros(shape[0], np.int64)
        render_frames(*args, out, sat, chunks)
        np.testing.assert_array_equal(sat, ref_sat)
        if quantize:
            np.testing.assert_array_equal(out, ref)
        else:
            np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-4)
    if max_dn == 255.0:
        assert 0 < ref_sat.sum() < 0.05 * ref.size  # the bright row reaches 8 bits' top


@nb.njit(fastmath=_FM)
def _rounding_mismatches(lo, hi, bits, sign):
    """Float32 values with bit patterns lo..hi-1 and bits (times sign) whose _round_half_up
    differs from floor(x + 0.5) in float64 (exact there)."""
    bad = 0
    for i in range(hi - lo + bits.size):
        b = lo + i if i < hi - lo else bits[i - (hi - lo)]
        x = sign * _f32_from_bits(np.uint32(b))
        bad += _round_half_up(x) != math.floor(float(x) + 0.5)
    return bad


def test_the_float32_rounding_is_floor_of_x_plus_half_for_every_float_in_the_dn_range():
    """Every float32 of magnitude 2**-3 .. 2**17 (both signs: DN before the clip at 0), a
    sample of the smaller ones (x in (-1, 0) is where x - floor(x) rounds), and the edges."""
    lo = int(np.float32(2.0 ** -3).view(np.uint32))
    hi = int(np.float32(2.0 ** 17).view(np.uint32))
    small = np.random.default_rng(10).integers(0, lo, 10**6)
    for sign in (np.float32(1), np.float32(-1)):
        assert _rounding_mismatches(lo, hi, small, sign) == 0
    edges = np.float32([0.0, 1e-45, 1e-30, 0.12499999, 0.5, 0.49999997, 0.50000006, 2**24])
    for x in np.concatenate([edges, -edges, edges + 0.5, -edges - 0.5]):
        assert _round_half_up(np.float32(x)) == math.floor(float(x) + 0.5)
