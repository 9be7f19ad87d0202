"""The grid every coefficient of T lies on, so that field sums are exact in float32.

Every generated value v of Re T and Im T is stored as clip(round(v / STEP), -LIMIT / STEP,
LIMIT / STEP) * STEP, STEP = 2**-9, LIMIT = 8 (11 standard deviations of a component, whose
std is 1/sqrt 2: the clip is never reached by the static medium, whose components are below
4.2 by construction, and makes the bound below a guarantee for the drifting one). The rounding
error is uniform, std STEP / sqrt(12) = 5.6e-4, against the component's 0.71 (8e-4 of it:
a field error far below a camera's shot noise; E|T|^2 = 1 + 6e-7).

Why: a sum of float32 terms that are all integer multiples of STEP, each partial sum of
magnitude at most 2**24 * STEP, is computed without any rounding, in any order, FMA or not.
A row x of a binary or ternary pattern (entries -1, 0, 1) times such coefficients gives terms
x_k W[p, k] that are exact multiples of STEP of magnitude <= LIMIT, so over CHUNK_COLS columns
every partial sum is at most CHUNK_COLS * LIMIT = 2**24 * STEP: any BLAS sgemm (any kernel,
blocking, thread count, row position in the call) returns the exact sum for such a chunk
(opu_sim.field_kernels). The step sets the chunk: 2**-9 gives 4096 columns, so a 4096-input
projection is one GEMM and a 16384-input one adds 4 chunk results per output (2**-11 would
give 1024 columns and 16 memory-bound passes over the output).
"""

from __future__ import annotations

import numba as nb
import numpy as np

# The kernels of gaussian_tiles, drift_tiles and drift_cache freeze these constants at compile
# time; their Numba disk cache is dropped when this file changes (firmware_iface.kernel_cache)
STEP = 2.0**-9  # grid step of a coefficient component
LIMIT = 8.0  # largest |component|; a multiple of STEP
CHUNK_COLS = int(2**24 * STEP / LIMIT)  # columns whose |x| <= 1 products sum exactly: 4096
assert CHUNK_COLS * LIMIT <= 2**24 * STEP  # (equality is fine: 2**24 is a float32 integer)

_SCALE = np.float32(1.0 / STEP)
_STEP32 = np.float32(STEP)
_UNITS = np.float32(LIMIT / STEP)  # LIMIT in grid steps


@nb.njit(inline="always", cache=True)
def on_grid(v: np.float32) -> np.float32:
    """v rounded to the nearest multiple of STEP (ties to even), clipped to [-LIMIT, LIMIT].
    Scaling by a power of two is exact, so the result depends on v only."""
    u = np.rint(v * _SCALE)
    u = min(max(u, -_UNITS), _UNITS)
    return np.float32(u * _STEP32)


def quantise(a: np.ndarray) -> np.ndarray:
    """`on_grid` of every element of a float array, as float32 (numpy; same values)."""
    u = np.clip(np.rint(np.asarray(a, np.float32) * _SCALE), -_UNITS, _UNITS)
    return (u * _STEP32).astype(np.float32)


def is_on_grid(a: np.ndarray) -> bool:
    """Whether every element is a multiple of STEP within [-LIMIT, LIMIT]."""
    a = np.asarray(a)
    u = a.astype(np.float64) / STEP
    return bool(np.all(np.abs(u) <= LIMIT / STEP) and np.all(u == np.rint(u)))
