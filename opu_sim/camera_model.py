"""EMVA 1288 camera signal chain (Numba, parallel over frames, counter-based noise).

Per pixel p and frame f, with field intensity I = |F|^2 (units of E|T|^2 = 1 per ON element):
  mu_e   = e_per_unit[p] * laser[f] * I + dark_e[p]          (QE, PRNU, exposure folded in)
  n_e    = Poisson(mu_e) (exact below 64 e-, matched Gaussian above), clipped at full well
  n_e   += dsnu_e[p] + read_noise_e * N(0, 1)
  DN     = clip(round(K * n_e + black_offset_dn), 0, max_dn)
Each switch off removes its term; with everything off the camera returns float32 K*mu_e+offset.
Noise draws are keyed by (noise seed, global frame index, pixel id): reproducible whatever the
batching or pixel selection.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .counter_rng import derive_key, draw, gauss_pair, uniform

_GAUSS_ABOVE_E = 64.0


@nb.njit(inline="always", cache=True)
def _poisson(mu: float, h: np.uint64) -> float:
    if mu <= 0.0:
        return 0.0
    u = uniform(h)
    p = math.exp(-mu)
    cdf = p
    k = 0
    while u > cdf and k < 1000:
        k += 1
        p *= mu / k
        cdf += p
    return float(k)


@nb.njit(parallel=True, cache=True, fastmath=True)
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
) -> None:
    """Frames from fields. fields_*: (n_unique, 2P) [Re | Im]; idx_*: (B,) rows per frame;
    laser: (B,) power factor; out: (B, P) uint8/uint16 (quantize) or float32; saturated: (B,)."""
    b = out.shape[0]
    npx = out.shape[1]
    for f in nb.prange(b):
        fd = fields_data[idx_data[f]]
        fa = fields_anchor[idx_anchor[f]]
        key = derive_key(noise_seed, np.uint64(1), np.uint64(frame_index0 + f))
        lf = laser[f]
        nsat = 0
        for p in range(npx):
            re = fd[p] + fa[p]
            im = fd[npx + p] + fa[npx + p]
            mu = e_per_unit[p] * lf * (re * re + im * im) + dark_e[p]
            h = draw(key, np.uint64(pixel_ids[p]))
            z0, z1 = gauss_pair(h)
            if shot:
                if mu >= _GAUSS_ABOVE_E:
                    n = mu + math.sqrt(mu) * z0
                    if n < 0.0:
                        n = 0.0
                else:
                    n = _poisson(mu, draw(key, np.uint64(pixel_ids[p]) ^ np.uint64(1 << 62)))
            else:
                n = mu
            sat = False
            if saturate and n >= full_well_e:
                n = full_well_e
                sat = True
            n += offset_e[p]
            if read:
                n += read_noise_e * z1
            dn = gain * n + black_dn
            if quantize:
                dn = math.floor(dn + 0.5)
                if dn < 0.0:
                    dn = 0.0
                if dn >= max_dn:
                    dn = max_dn
                    sat = True
            if sat:
                nsat += 1
            out[f, p] = dn
        saturated[f] = nsat
