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
batching, ROI or thread count.

Speed (the same bits as a plain per-pixel loop): one branch-free pass per frame that LLVM
vectorises (intensity, both Gaussians of one 64-bit draw, ADC, and a flag byte per pixel:
saturated, exact-Poisson), compiled on its own for the default switches (all on), for noise
off and for noise off with the ADC (the emulated camera), so no switch is tested per pixel
there; then a scan of the flag bytes eight at a time that counts saturation and queues only
the exact-Poisson pixels (with mu, exp(-mu), their uniform and read-noise Gaussian). A chunk's
queue is drawn every _FLUSH_AT pixels and at its last frame by Poisson inversion run for all
queued pixels in lock step (vectorised, no branch on one pixel's k; a loop per pixel paid a
mispredicted branch and a serial division chain per pixel: 10 % of the kernel's time on the
default profile). Frames without light (both fields exactly 0: a DFA call's dark
data-only frames) take their exact-Poisson pixels in the vector pass too where the uniform
falls below exp(-mu) (k = 0: nearly all of them at short exposures).
"""

from __future__ import annotations

import math
import sys

import numba as nb
import numpy as np

from .counter_rng import _FM, GOLDEN, derive_key, draw, fmix64, gauss_pair, uniform

POISSON_EXACT_BELOW_E = 10.0
_SATURATED = np.uint64(0x0101010101010101)  # flag bit 0 of each byte of a word: saturated
_EXACT = np.uint64(0x0202020202020202)  # flag bit 1: the pixel takes the exact-Poisson branch
_BYTE_OF_BIT = np.uint64(
    0x0001020304050607 if sys.byteorder == "little" else 0x0706050403020100
)  # (lowest set bit of a flag word >> 1) * this >> 56 = its byte's index in the word
_FLUSH_AT = 1024  # queued exact-Poisson pixels that start a lock-step pass
_MAX_K = 200  # the inversion's last k (mu < 10 e-: never reached in practice)
_POISSON_COUNTER = np.uint64(1 << 62)  # the exact-Poisson uniform's counter: pixel id ^ this


@nb.njit(inline="always", cache=True, fastmath=_FM)
def _round_half_up(x: np.float32) -> np.float32:
    """floor(x + 0.5) taken exactly, in float32 (so no float64 pass over the vector lanes):
    x - floor(x) is exact (Sterbenz for |x| >= 1; in (-1, 0) it may round, but only above
    0.5), so comparing it with 0.5 decides the carry."""
    r = np.floor(x)
    return r + np.float32(1.0) if x - r >= np.float32(0.5) else r


@nb.njit(inline="always", cache=True, fastmath=_FM)
def _adc(n, offset, z1, read_sigma, full_well, gain, black, max_dn, saturate, quantize):
    """Electrons after shot noise -> (DN, saturated?), float32. Branch-free for vectorisation."""
    sat_well = saturate and n >= full_well
    n = min(n, full_well) if saturate else n
    n = n + offset + read_sigma * z1
    dn = gain * n + black
    if quantize:
        dn = min(max(_round_half_up(dn), np.float32(0.0)), max_dn)
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


@nb.njit(inline="always", cache=True)
def _is_zero(row: np.ndarray) -> bool:
    for v in row:
        if v != 0:
            return False
    return True


@nb.njit(inline="always", cache=True, fastmath=_FM)
def _lit_frame(fd, fa, lf, kb, rel, e_per_unit, dark_e, offset_e, read_sigma, fw, g, blk, top,
               shot, read, saturate, quantize, mu, z1, flags, out_f):
    """The vector pass of one frame: out_f, and mu, z1 (read-noise Gaussian) and the flag byte
    of every pixel for the scan. kb: the frame's key plus the lowest pixel id's counter term;
    rel: pixel ids minus the lowest, uint32 (with a 64-bit id load per pixel-frame the loop
    took half as long again)."""
    npx = out_f.size
    for p in range(npx):
        re = fd[p] + fa[p]
        im = fd[npx + p] + fa[npx + p]
        m = e_per_unit[p] * lf * (re * re + im * im) + dark_e[p]
        if shot or read:  # draw(key, id) = fmix64(key + (id + 1) * GOLDEN)
            a, bb = gauss_pair(fmix64(kb + np.uint64(rel[p]) * GOLDEN))
        else:
            a, bb = np.float32(0.0), np.float32(0.0)
        n = m + math.sqrt(m) * a if shot else m
        dn, sat = _adc(max(n, np.float32(0.0)), offset_e[p], bb, read_sigma, fw, g, blk, top,
                       saturate, quantize)
        out_f[p] = dn
        if shot:  # the scan's inputs, only where it can find something (no stores otherwise)
            mu[p] = m
            z1[p] = bb
        if shot or saturate or quantize:
            exact = shot and m < POISSON_EXACT_BELOW_E
            flags[p] = np.uint8(sat) | (np.uint8(exact) << np.uint8(1))


@nb.njit(inline="always", cache=True, fastmath=_FM)
def _dark_frame(kb, rel, dark_e, p0, offset_e, read_sigma, fw, g, blk, top, saturate, quantize,
                mu, z1, flags, out_f):
    """The vector pass of a frame without light (shot noise on): mu = dark_e; an exact-Poisson
    pixel whose uniform is <= exp(-mu) = p0 is k = 0 here, the others are flagged."""
    npx = out_f.size
    c_poisson = _POISSON_COUNTER * GOLDEN
    for p in range(npx):
        m = dark_e[p]
        hk = kb + np.uint64(rel[p]) * GOLDEN
        a, bb = gauss_pair(fmix64(hk))
        u = uniform(fmix64(hk + c_poisson))  # = uniform(draw(key, id ^ _POISSON_COUNTER))
        exact = m < POISSON_EXACT_BELOW_E
        n = np.float32(0.0) if exact else max(m + math.sqrt(m) * a, np.float32(0.0))
        dn, sat = _adc(n, offset_e[p], bb, read_sigma, fw, g, blk, top, saturate, quantize)
        out_f[p] = dn
        mu[p] = m
        z1[p] = bb
        flags[p] = np.uint8(sat) | (np.uint8(exact and u > p0[p]) << np.uint8(1))


@nb.njit(inline="always", cache=True)
def _queue_frame(ideal, f, key, pixel_ids, dark_frame, p0, mu, z1, flags, n, qp, qf, qmu, qu,
                 qpmf, qz1):
    """Scan frame f's flag bytes: its saturated pixels other than the exact-Poisson ones (counted
    when their DN is known), and append its exact-Poisson pixels to the queue after its n first
    entries, with mu, exp(-mu) (given as p0 in a dark frame), their uniform and z1.
    Returns (saturated count, new queue length). ideal: no flag can be set (none is written)."""
    if ideal:
        return 0, n
    words = flags.view(np.uint64)
    nsat = 0
    n0 = n
    for w in range(words.size):
        x = words[w]
        if x == 0:
            continue
        nsat += np.int64(((x & _SATURATED) * _SATURATED) >> np.uint64(56))  # bytes' bit 0
        todo = x & _EXACT
        while todo != 0:
            bit = todo & (~todo + np.uint64(1))
            todo ^= bit
            qp[n] = 8 * w + np.int64(((bit >> np.uint64(1)) * _BYTE_OF_BIT) >> np.uint64(56))
            n += 1
    for i in range(n0, n):
        p = qp[i]
        m = mu[p]
        qf[i] = f
        qmu[i] = float(m)
        qpmf[i] = p0[p] if dark_frame else math.exp(-float(m))
        qu[i] = uniform(draw(key, np.uint64(pixel_ids[p]) ^ _POISSON_COUNTER))
        qz1[i] = z1[p]
        nsat -= np.int64(flags[p] & np.uint8(1))
    return nsat, n


@nb.njit(inline="always", cache=True)
def _poisson_lockstep(n, qmu, qu, qpmf, qcdf, qk):
    """k of the n queued draws, Poisson(mu) by inversion from one uniform each: the smallest k
    with u <= cdf(k), or _MAX_K; cdf(j) = cdf(j-1) + pmf(j), pmf(j) = pmf(j-1) * (mu / j),
    pmf(0) = exp(-mu) (in qpmf on entry). Run for all pixels in lock step, one j at a time,
    so the loop over pixels vectorises and no branch depends on one pixel's k: cdf never
    decreases, so k = the number of j < _MAX_K with u > cdf(j), bit for bit the k of the
    one-pixel loop; it stops at the first j where no pixel is still below its uniform."""
    active = 0
    for i in range(n):
        c = qpmf[i]
        qcdf[i] = c
        a = qu[i] > c
        qk[i] = np.int64(a)
        active += np.int64(a)
    j = 1
    while active != 0 and j < _MAX_K:
        active = 0
        jf = float(j)
        for i in range(n):
            pmf = qpmf[i] * (qmu[i] / jf)
            qpmf[i] = pmf
            c = qcdf[i] + pmf
            qcdf[i] = c
            a = qu[i] > c
            qk[i] += np.int64(a)
            active += np.int64(a)
        j += 1


@nb.njit(inline="always", cache=True)
def _flush_queue(n, qp, qf, qmu, qu, qpmf, qcdf, qk, qz1, offset_e, read_sigma, fw, g, blk, top,
                 saturate, quantize, out, saturated):
    """Draw the n queued exact-Poisson pixels and write their DN and saturation."""
    _poisson_lockstep(n, qmu, qu, qpmf, qcdf, qk)
    for i in range(n):
        p = qp[i]
        f = qf[i]
        dn, sat = _adc(np.float32(qk[i]), offset_e[p], qz1[i], read_sigma, fw, g, blk, top,
                       saturate, quantize)
        out[f, p] = dn
        saturated[f] += np.int64(sat)


@nb.njit(cache=True)
def _zero_data_rows(fields_data, data_ptr):
    """Which data rows have no field: all-zero rows of fields_data, or (summed data fields)
    rows without an ON column."""
    if data_ptr is not None:
        if data_ptr.size > 0:
            return data_ptr[1:] == data_ptr[:-1]
    zero_d = np.empty(fields_data.shape[0], np.bool_)
    for r in range(fields_data.shape[0]):
        zero_d[r] = _is_zero(fields_data[r])
    return zero_d


@nb.njit(inline="always", cache=True)
def _summed_field(wt, cols, out):
    """out = sum of the rows wt[c] for c in cols ([Re | Im] of the data field of a binary
    pattern: exact in any order, T being on the coefficient grid), zeros without columns."""
    if cols.size == 0:
        out[:] = 0.0
        return
    out[:] = wt[cols[0]]
    for i in range(1, cols.size):
        w = wt[cols[i]]
        for j in range(out.size):
            out[j] += w[j]


@nb.njit(cache=True)
def _call_setup(zero_d, fields_anchor, idx_data, idx_anchor, pixel_ids, dark_e, shot):
    """Per call, serial (a parallel function would turn these reductions into parallel regions,
    each a barrier: a scheduler slice on shared cores): the lowest id's counter term and the
    ids' 32-bit offsets from it, which frames are dark (shot noise on, no data field (zero_d)
    and an exactly-0 anchor field), and exp(-dark_e) if any is."""
    npx = pixel_ids.size
    id0 = 0
    hi = 0
    for p in range(npx):
        if p == 0 or pixel_ids[p] < id0:
            id0 = pixel_ids[p]
        if p == 0 or pixel_ids[p] > hi:
            hi = pixel_ids[p]
    if hi - id0 >= 1 << 32:
        raise ValueError("render_frames: output pixel ids must span less than 2**32")
    base = (np.uint64(id0) + np.uint64(1)) * GOLDEN
    rel = np.empty(npx, np.uint32)
    for p in range(npx):
        rel[p] = np.uint32(pixel_ids[p] - id0)
    zero_a = np.empty(fields_anchor.shape[0], np.bool_)
    for r in range(fields_anchor.shape[0]):
        zero_a[r] = _is_zero(fields_anchor[r])
    dark = np.empty(idx_data.size, np.bool_)
    any_dark = False
    for f in range(idx_data.size):
        dark[f] = shot and zero_d[idx_data[f]] and zero_a[idx_anchor[f]]
        any_dark = any_dark or dark[f]
    p0 = np.empty(npx if any_dark else 0, np.float64)  # the k = 0 probability of a dark pixel
    for p in range(p0.size):
        p0[p] = math.exp(-float(dark_e[p]))
    return base, rel, dark, p0


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
    data_wt: np.ndarray | None = None,
    data_ptr: np.ndarray | None = None,
    data_cols: np.ndarray | None = None,
) -> None:
    """Frames from fields. fields_*: (n_unique, 2P) [Re | Im]; idx_*: (B,) rows per frame;
    laser: (B,) power factor; out: (B, P) uint8/uint16 (quantize) or float32; saturated: (B,);
    n_chunks: parallel work items (a few per thread). Pixel ids must span less than 2**32.
    Summed data fields instead (binary data patterns of few columns: no (n_unique, 2P) array
    to write and read back): data_wt (K, 2P) float32, the data block of [Re T; Im T]
    transposed, and data row r's ON columns data_cols[data_ptr[r]:data_ptr[r + 1]] (int64),
    with fields_data of 0 rows; a frame's data field is summed once per run of frames that
    show the same data row. Empty data_ptr (or none): fields_data is used."""
    b = out.shape[0]
    npx = out.shape[1]
    n_chunks = max(1, min(b, n_chunks))
    per = (b + n_chunks - 1) // n_chunks
    read_sigma = np.float32(read_noise_e if read else 0.0)
    fw = np.float32(full_well_e)
    g = np.float32(gain)
    blk = np.float32(black_dn)
    top = np.float32(max_dn)
    every = shot and read and saturate and quantize  # the default profile: its own loop
    ideal = not (shot or read or saturate or quantize)  # noise off: its own loop too
    quiet = not (shot or read)
    integer = saturate and quantize and quiet  # and noise off with the ADC (emulated camera)
    zero_d = _zero_data_rows(fields_data, data_ptr)
    base, rel, dark, p0 = _call_setup(zero_d, fields_anchor, idx_data, idx_anchor, pixel_ids,
                                      dark_e, shot)
    for c in nb.prange(n_chunks):
        mu = np.empty(npx, np.float32)
        z1 = np.empty(npx, np.float32)
        flags = np.zeros(8 * ((npx + 7) // 8), np.uint8)  # the tail bytes stay 0
        # the queue of exact-Poisson pixels (room for a frame past _FLUSH_AT): pixel, frame,
        # mu, uniform, pmf, cdf, k, read-noise Gaussian z1
        cap = npx + _FLUSH_AT
        qp, qf, qk = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
        qmu, qu = np.empty(cap, np.float64), np.empty(cap, np.float64)
        qpmf, qcdf = np.empty(cap, np.float64), np.empty(cap, np.float64)
        qz1 = np.empty(cap, np.float32)
        n = 0
        summed = np.empty(2 * npx, np.float32)
        last = -1
        f1 = min(b, (c + 1) * per)
        for f in range(c * per, f1):
            r = idx_data[f]
            fd = fields_data[r] if fields_data.shape[0] else summed
            if data_ptr is not None:  # (compiled out when not given)
                if data_ptr.size > 0 and r != last:
                    _summed_field(data_wt, data_cols[data_ptr[r] : data_ptr[r + 1]], summed)
                    last = r
            key = derive_key(noise_seed, np.uint64(1), np.uint64(frame_index0 + f))
            kb = key + base
            if dark[f] and every:
                _dark_frame(kb, rel, dark_e, p0, offset_e, read_sigma, fw, g, blk, top, True,
                            True, mu, z1, flags, out[f])
            elif dark[f]:
                _dark_frame(kb, rel, dark_e, p0, offset_e, read_sigma, fw, g, blk, top, saturate,
                            quantize, mu, z1, flags, out[f])
            elif every:
                _lit_frame(fd, fields_anchor[idx_anchor[f]],
                           np.float32(laser[f]), kb, rel, e_per_unit, dark_e, offset_e,
                           read_sigma, fw, g, blk, top, True, True, True, True, mu, z1, flags,
                           out[f])
            elif ideal:
                _lit_frame(fd, fields_anchor[idx_anchor[f]],
                           np.float32(laser[f]), kb, rel, e_per_unit, dark_e, offset_e,
                           read_sigma, fw, g, blk, top, False, False, False, False, mu, z1,
                           flags, out[f])
            elif integer:
                _lit_frame(fd, fields_anchor[idx_anchor[f]],
                           np.float32(laser[f]), kb, rel, e_per_unit, dark_e, offset_e,
                           read_sigma, fw, g, blk, top, False, False, True, True, mu, z1,
                           flags, out[f])
            elif quiet:
                _lit_frame(fd, fields_anchor[idx_anchor[f]],
                           np.float32(laser[f]), kb, rel, e_per_unit, dark_e, offset_e,
                           read_sigma, fw, g, blk, top, False, False, saturate, quantize, mu, z1,
                           flags, out[f])
            else:
                _lit_frame(fd, fields_anchor[idx_anchor[f]],
                           np.float32(laser[f]), kb, rel, e_per_unit, dark_e, offset_e,
                           read_sigma, fw, g, blk, top, shot, read, saturate, quantize, mu, z1,
                           flags, out[f])
            saturated[f], n = _queue_frame(ideal, f, key, pixel_ids, dark[f], p0, mu, z1, flags,
                                           n, qp, qf, qmu, qu, qpmf, qz1)
            if n >= _FLUSH_AT or f == f1 - 1:
                _flush_queue(n, qp, qf, qmu, qu, qpmf, qcdf, qk, qz1, offset_e, read_sigma, fw, g,
                             blk, top, saturate, quantize, out, saturated)
                n = 0
