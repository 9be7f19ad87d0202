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
