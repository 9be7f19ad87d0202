"""Recovery of projections from camera frames (Numba kernels, parallel over inputs).

Frames come in groups per input row, in the order the encoder sent them:
- binary x:   [I(x u r), I(x)]                 z = (I(x u r) - I(x) - I(r)) / (2 sqrt(I(r)))
- ternary e:  [I(e+ u r), I(e+), I(e- u r), I(e-)]
              z = ((I(e+ u r) - I(e+)) - (I(e- u r) - I(e-))) / (2 sqrt(I(r)))
The dark level cancels in both differences, so raw counts are used directly.
Outputs are multiplied by `gain` = sqrt(2 / scale_dn) to give unit-variance G (opu.device).
The kernels are plain IEEE arithmetic (no fastmath): with reassociation the vector body and the
scalar remainder rounded differently, so a pixel's output depended on its column position, and
a sharded device (opu/sharded.py) must give each pixel the same bits in any block.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def combine_differences(
    frames: np.ndarray, anchor_dn: np.ndarray, inv_2sqrt_ir: np.ndarray, gain: float,
    out: np.ndarray,
) -> None:
    """out[b] = ((f[kb] - f[kb+1]) - s) * inv_2sqrt_ir * gain, k = frames per input row
    (frames (kB, P), out (B, P)): binary, k = 2, s = I(r) = anchor_dn; ternary, k = 4,
    s = f[kb+2] - f[kb+3] (the anchor cancels; anchor_dn is not read)."""
    g = np.float32(gain)
    k = frames.shape[0] // out.shape[0]
    for b in nb.prange(out.shape[0]):
        f0 = frames[k * b]
        f1 = frames[k * b + 1]
        f2 = frames[k * b + k - 2]
        f3 = frames[k * b + k - 1]
        for p in range(out.shape[1]):
            s = np.float32(f2[p]) - np.float32(f3[p]) if k == 4 else anchor_dn[p]
            out[b, p] = ((np.float32(f0[p]) - np.float32(f1[p])) - s) * inv_2sqrt_ir[p] * g


@nb.njit(parallel=True, cache=True)
def normalise_intensity(
    frames: np.ndarray, dark_dn: np.ndarray, inv_scale: float, out: np.ndarray
) -> None:
    """out = (frames - dark) * inv_scale; frames (B, P)."""
    s = np.float32(inv_scale)
    for b in nb.prange(out.shape[0]):
        f = frames[b]
        for p in range(out.shape[1]):
            out[b, p] = (np.float32(f[p]) - dark_dn[p]) * s


@nb.njit(cache=True)
def anchor_intensity(
    frames: np.ndarray, k: int, dark_dn: np.ndarray, floor_dn: float, ir: np.ndarray,
    inv_2sqrt_ir: np.ndarray,
) -> None:
    """The anchor intensity measured now from the k anchor-only frames frames[:k] (DN):
    ir = max(mean over them (float64, in frame order) - dark_dn, floor_dn), float32, and
    inv_2sqrt_ir = 1 / (2 sqrt(ir)); ir, inv_2sqrt_ir: (P,) float32 outputs."""
    npx = ir.size
    acc = np.zeros(npx)
    for f in range(k):
        row = frames[f]
        for p in range(npx):
            acc[p] += row[p]
    floor = np.float32(floor_dn)
    for p in range(npx):
        v = np.float32(acc[p] / k) - dark_dn[p]
        v = max(v, floor)
        ir[p] = v
        inv_2sqrt_ir[p] = np.float32(0.5) / np.sqrt(v)


@nb.njit(cache=True)
def centred_correlation(now: np.ndarray, ref_centred: np.ndarray, ref_norm: float) -> float:
    """Pearson correlation of `now` with a reference given centred (float64) with its norm;
    1.0 where either has no spread or fewer than 2 values."""
    n = now.size
    if n < 2 or ref_norm == 0:
        return 1.0
    mean = 0.0
    for p in range(n):
        mean += now[p]
    mean /= n
    dot = 0.0
    sq = 0.0
    for p in range(n):
        d = now[p] - mean
        dot += ref_centred[p] * d
        sq += d * d
    if sq == 0:
        return 1.0
    return dot / (ref_norm * np.sqrt(sq))
