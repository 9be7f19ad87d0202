"""Batch-invariant field products F = X @ W.T (float32): a row's field depends on that row alone.

A BLAS GEMM's rounding depends on where a row sits in the call (OpenBLAS's Haswell kernel
gives rows at different positions of one call, or the same row in calls of different sizes or
thread counts, different last bits). The simulator needs a row's field to be a function of
that row alone, so:

- exact rows (every value -1, 0 or 1: DMD patterns, ternary inputs) go through BLAS sgemm in
  chunks of CHUNK_COLS columns. W is on the coefficient grid (opu_sim.coefficient_grid: every
  entry a multiple of 2**-9 within +-8), so every product is exact and so is every partial
  sum of a chunk: the chunk's result is the exact sum whatever the kernel, blocking, batch or
  thread count. The chunk results are then added in chunk order, elementwise (one fixed order
  per output). In practice those adds are exact too (|field| << 2**15), so a field equals its
  float64 sum bit for bit.
- other rows (mirror fractions in [0, 1]) sum x[k] * W[p, k] over k in order in a Numba kernel,
  a product then an add (no fused multiply-add, no fastmath).

Either way an output depends only on its row, its row of W and the number of columns: not on
the batch, its order, the tile of W it comes in, the thread count, the CPU or the BLAS library.
W must be on the grid for the exact path's guarantee (every generator of
opu_sim.transmission writes it so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from firmware_iface.threads import capped_blas

from .coefficient_grid import CHUNK_COLS

PIX_BLOCK = 128  # output columns (rows of W) per parallel work item (chosen by measurement)
K_BLOCK = 256  # columns of W transposed at a time by the float kernel (in L2)


@nb.njit(cache=True)
def _transpose_block(w: np.ndarray, p0: int, pn: int, k0: int, kn: int, wt: np.ndarray) -> None:
    """wt[kk, j] = W[p0 + j, k0 + kk] for the block, zero outside it (wt is (>= kn, PIX_BLOCK));
    in 16 x 16 tiles, which stay in L1 (3x faster than a plain double loop)."""
    if pn < wt.shape[1] or kn < wt.shape[0]:
        wt[:] = 0.0
    for jb in range(0, pn, 16):
        for kb in range(0, kn, 16):
            for j in range(jb, min(jb + 16, pn)):
                for kk in range(kb, min(kb + 16, kn)):
                    wt[kk, j] = w[p0 + j, k0 + kk]


@nb.njit(parallel=True, cache=True)
def float_fields(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[r, p] = sum_k x[r, k] W[p, k], k in order, product then add; x: (R, K) float32;
    w: (M, K) float32; out: (R, M) float32."""
    n_rows, k = x.shape
    m = w.shape[0]
    kb = K_BLOCK
    n_blocks = (m + PIX_BLOCK - 1) // PIX_BLOCK
    for blk in nb.prange(n_blocks):
        p0 = blk * PIX_BLOCK
        pn = min(PIX_BLOCK, m - p0)
        wt = np.empty((kb, PIX_BLOCK), np.float32)
        acc = np.zeros((n_rows, PIX_BLOCK), np.float32)
        for k0 in range(0, k, kb):
            kn = min(kb, k - k0)
            _transpose_block(w, p0, pn, k0, kn, wt)
            for r in range(n_rows):
                for kk in range(kn):
                    xv = x[r, k0 + kk]
                    for j in range(PIX_BLOCK):
                        acc[r, j] += xv * wt[kk, j]
        for r in range(n_rows):
            for j in range(pn):
                out[r, p0 + j] = acc[r, j]


def exact_fields(x: np.ndarray, w: np.ndarray, out: np.ndarray | None = None,
                 part: np.ndarray | None = None) -> np.ndarray:
    """x @ w.T summed exactly: x (R, K) float32 of -1/0/1, w (M, K) float32 on the coefficient
    grid; (R, M) float32. BLAS sgemm per CHUNK_COLS columns, chunk results added in order.
    out, part: optional C-contiguous (R, M) float32 buffers for the result and a chunk's."""
    n_rows, k = x.shape
    if out is None:
        out = np.empty((n_rows, w.shape[0]), np.float32)
    for k0 in range(0, k, CHUNK_COLS):
        xs, ws = x[:, k0 : k0 + CHUNK_COLS], w[:, k0 : k0 + CHUNK_COLS].T
        if k0 == 0:
            np.matmul(xs, ws, out=out)
            continue
        if part is None:
            part = np.empty_like(out)
        np.matmul(xs, ws, out=part)
        out += part
    if k == 0:
        out[:] = 0.0
    return out


@dataclass(frozen=True)
class PreparedRows:
    """Rows in the kernels' operand forms (see `prepare`); reusable over tiles of W."""

    n_rows: int
    exact: np.ndarray  # indices of the rows of -1/0/1
    exact_rows: np.ndarray  # those rows, float32
    fractional: np.ndarray  # indices of the other rows
    floats: np.ndarray  # those rows, float32


def _exact_mask(rows: np.ndarray) -> np.ndarray:
    if rows.dtype == np.bool_:
        return np.ones(rows.shape[0], bool)
    if rows.dtype == np.uint8:
        return (rows <= 1).all(axis=1)
    if np.issubdtype(rows.dtype, np.integer):
        return ((rows >= -1) & (rows <= 1)).all(axis=1)
    return ((rows == 0) | (rows == 1) | (rows == -1)).all(axis=1)


def prepare(rows: np.ndarray, binary: bool = False) -> PreparedRows:
    """Split rows (R, K) (bool, integers, or floats such as mirror fractions in [0, 1]) into
    the kernels' operands. A row whose values are all -1, 0 or 1 takes the exact path whatever
    its dtype, so its result does not depend on the other rows of the batch. binary: the
    caller guarantees every value is 0 or 1 (validated DMD patterns), so the check is skipped."""
    if binary:
        ei, fi = np.arange(rows.shape[0]), np.empty(0, np.int64)
    else:
        exact = _exact_mask(rows)
        ei, fi = np.flatnonzero(exact), np.flatnonzero(~exact)
    return PreparedRows(
        n_rows=rows.shape[0],
        exact=ei,
        exact_rows=np.ascontiguousarray(rows if ei.size == rows.shape[0] else rows[ei],
                                        dtype=np.float32),
        fractional=fi,
        floats=np.ascontiguousarray(rows[fi], dtype=np.float32),
    )


def fields(rows: np.ndarray | PreparedRows, w: np.ndarray,
           buffers: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Batch-invariant rows @ w.T, float32 (R, M): rows (R, K) as for `prepare` (or prepared
    once for several tiles of W), w (M, K) float32 on the coefficient grid. buffers: two
    float32 arrays of at least R * M elements, reused for the result and a chunk's (the
    result is then a view of the first, valid until they are reused)."""
    with capped_blas():  # the calling project()'s BLAS thread count (opu.kernel_threads)
        return _fields(rows, w, buffers)


def _fields(rows: np.ndarray | PreparedRows, w: np.ndarray,
            buffers: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    prep = rows if isinstance(rows, PreparedRows) else prepare(rows)
    w = np.ascontiguousarray(w, dtype=np.float32)
    shape = (prep.n_rows, w.shape[0])
    if prep.fractional.size == 0:
        if buffers is None:
            return exact_fields(prep.exact_rows, w)
        size = shape[0] * shape[1]
        return exact_fields(prep.exact_rows, w, buffers[0][:size].reshape(shape),
                            buffers[1][:size].reshape(shape))
    out = np.empty(shape, np.float32)
    if prep.exact.size:
        out[prep.exact] = exact_fields(prep.exact_rows, w)
    part = np.empty((prep.fractional.size, w.shape[0]), np.float32)
    float_fields(prep.floats, w, part)
    out[prep.fractional] = part
    return out
