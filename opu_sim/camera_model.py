"""EMVA 1288 camera signal chain (Numba, parallel over frames, counter-based noise).

Per pixel p and frame f, with field intensity I = |F|^2 (units of E|T|^2 = 1 per ON element):
  mu_e   = e_per_unit[p] * laser[f] * I + dark_e[p]          (QE, PRNU, exposure folded in)
  n_e    = Poisson(mu_e): exact below 10 e- (where the 6 e- read noise dominates anyway), Gaussian
           with the same mean and variance above;
           clipped at 0 and at the full well
  n_e   += offset_e[p] (DSNU) + read_noise_e * N(0, 1)
  DN     = clip(round(K * n_e + black_offset_dn), 0, max_dn)
Each switch off removes its term; with everything off the camera returns float32 K*mu_e+offset.
Noise draws are keyed by (noise seed, global frame index, pixel id), so they do not depend on
batching. The per-frame work runs as branch-free passes that LLVM vectorises, plus a scalar
pass for the few pixels on the exact-Poisson branch.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .counter_rng import _FM, GOLDEN, derive_key, draw, fmix64, gauss_pair, uniform

POISSON_EXACT_BELOW_E = 10.0


@nb.njit(inline="always", cache=True)
def _poisson(mu: float, h: np.uint64) -> float:
    """Poisson(mu) by inversion from one uniform (mu small)."""
    if mu <= 0.0:
        return 0.0
    u = uniform(h)
    p = math.exp(-mu)
    cdf = p
    k = 0
    while u > cdf and k < 200:
        k += 1
        p *= mu / k
        cdf += p
    return float(k)


@nb.njit(inline="always", cache=True, fastmath=_FM)
def _adc(n, offset, z1, read_sigma, full_well, gain, black, max_dn, saturate, quantize):
    """Electrons after shot noise -> (DN, saturated?). Branch-free for vectorisation."""
    sat_well = saturate and n >= full_well
    n = min(n, full_well) if saturate else n
    n = n + offset + read_sigma * z1
    dn = gain * n + black
    if quantize:
        dn = math.floor(dn + 0.5)
        dn = min(max(dn, 0.0), max_dn)
    sat = sat_well or (quantize and dn >= max_dn)
    return dn, sat


@nb.njit(cache=True)
def laser_factors(noise_seed: np.uint64, frame_index0: np.int64, n: int, rel: float) -> np.ndarray:
    """Laser power factor max(0, 1 + rel N(0, 1)) of frames frame_index0 .. frame_index0+n-1,
    float32; each keyed by (noise seed, global frame index) alone, so batching changes none."""
    out = np.empty(n, np.float32)
    key = derive_key(noise_seed, np.uint64(99), np.uint64(0))
    for f in range(n):
        z, _ = gauss_pair(draw(key, np.uint64(frame_index0 + f)))
        out[f] = max(np.float32(0.0), np.float32(1.0) + np.float32(rel) * z)
    return out


@nb.njit(parallel=True, cache=True, fastmath=_FM)
def render_frames(
    fields_data: np.ndarray,
    fields_anchor: np.ndarray,
    idx_data: np.ndarray,
    idx_anchor: np.ndarray,
    laser: np.ndarray,
    frame_index0: np.int64,
    noise_seed: np.uint64,
    pixel_ids: np.ndarray,
    e_per_unit: np.ndarray,
    dark_e: np.ndarray,
    offset_e: np.ndarray,
    read_noise_e: float,
    full_well_e: float,
    gain: float,
    black_dn: float,
    max_dn: float,
    shot: bool,
    read: bool,
    saturate: bool,
    quantize: bool,
    out: np.ndarray,
    saturated: np.ndarray,
    n_chunks: int,
) -> None:
    """Frames from fields. fields_*: (n_unique, 2P) [Re | Im]; idx_*: (B,) rows per frame;
    laser: (B,) power factor; out: (B, P) uint8/uint16 (quantize) or float32; saturated: (B,);
    n_chunks: parallel work items (a few per thread)."""
    b = out.shape[0]
    npx = out.shape[1]
    n_chunks = max(1, min(b, n_chunks))
    per = (b + n_chunks - 1) // n_chunks
    read_sigma = np.float32(read_noise_e if read else 0.0)
    fw = np.float32(full_well_e)
    g = np.float32(gain)
    blk = np.float32(black_dn)
    top = np.float32(max_dn)
    n_words = (npx + 7) // 8
    # draw(key, id) = fmix64(key + (id + 1) * GOLDEN): the counter's product, once per pixel
    # (a 64-bit vector multiply fewer per pixel-frame; the same bits)
    step = np.empty(npx, np.uint64)
    for p in range(npx):
        step[p] = (np.uint64(pixel_ids[p]) + np.uint64(1)) * GOLDEN
    for c in nb.prange(n_chunks):
        mu = np.empty(npx, np.float32)
        z0 = np.zeros(npx, np.float32)
        z1 = np.zeros(npx, np.float32)  # stays 0 (no draws) when shot and read noise are off
        # per pixel 1 if it takes the exact-Poisson branch, read 8 at a time as one word
        low = np.zeros(8 * n_words, np.uint8)
        low_words = low.view(np.uint64)
        for f in range(c * per, min(b, (c + 1) * per)):
            fd = fields_data[idx_data[f]]
            fa = fields_anchor[idx_anchor[f]]
            key = derive_key(noise_seed, np.uint64(1), np.uint64(frame_index0 + f))
            lf = np.float32(laser[f])
            for p in range(npx):
                re = fd[p] + fa[p]
                im = fd[npx + p] + fa[npx + p]
                mu[p] = e_per_unit[p] * lf * (re * re + im * im) + dark_e[p]
            if shot or read:
                for p in range(npx):
                    a, bb = gauss_pair(fmix64(key + step[p]))
                    z0[p] = a
                    z1[p] = bb
            nsat = 0
            for p in range(npx):
                m = mu[p]
                n = m + math.sqrt(max(m, np.float32(0.0))) * z0[p] if shot else m
                n = max(n, np.float32(0.0))
                dn, sat = _adc(n, offset_e[p], z1[p], read_sigma, fw, g, blk, top, saturate,
                               quantize)
                out[f, p] = dn
                nsat += sat
                low[p] = np.uint8(shot and m < POISSON_EXACT_BELOW_E)
            for w in range(n_words if shot else 0):  # words of 8 flags: most are 0
                if low_words[w] == 0:
                    continue
                for p in range(8 * w, min(npx, 8 * w + 8)):
                    if low[p] == 0:
                        continue
                    h = draw(key, np.uint64(pixel_ids[p]) ^ np.uint64(1 << 62))
                    n = np.float32(_poisson(mu[p], h))
                    was = quantize and out[f, p] >= top
                    dn, sat = _adc(n, offset_e[p], z1[p], read_sigma, fw, g, blk, top,
                                   saturate, quantize)
                    out[f, p] = dn
                    nsat += sat - was
            saturated[f] = nsat
