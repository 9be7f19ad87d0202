"""Batch-invariant field products F = X @ W.T (Numba): every output has one fixed summation order.

A BLAS GEMM's result for a row depends on where the row sits in the call (OpenBLAS's Haswell
kernel gives rows at different positions of one call, or the same row in calls of different
sizes or thread counts, different last bits; its AVX-512 kernel happens not to). The simulator
needs a row's field to be a function of that row alone, so these kernels fix the order:

- binary rows (every value 0 or 1: DMD patterns) use a "four Russians" table: the DMD elements
  are taken in groups of 4, the 16 subset sums of each group's 4 columns of W are tabulated
  (subset s = its highest element added to subset s minus that element), and a row's field is
  the sum over groups, in group order, of the table entry its 4 bits select. Adds only, about a
  quarter of a GEMM's operations.
- other rows (mirror fractions in [0, 1]) sum x[k] * W[p, k] over k in order, a product then an
  add (no fused multiply-add).

Both are plain IEEE float32 arithmetic in a fixed order (no fastmath), so an output depends only
on its row, its column of W and the number of columns: not on the batch, its order, the block
sizes, the tile of W it comes in, the thread count, the CPU or the BLAS library.
"""

from __future__ import annotations

import numba as nb
import numpy as np

PIX_BLOCK = 64  # output columns (rows of W) per parallel work item; tuned in bench_project.py
GROUP_BLOCK = 32  # 4-element groups per table (32 groups = 128 DMD elements, 128 KiB table)


@nb.njit(cache=True)
def _transpose_block(w: np.ndarray, p0: int, pn: int, k0: int, kn: int, wt: np.ndarray) -> None:
    """wt[kk, j] = W[p0 + j, k0 + kk] for the block, zero outside it (wt is (>= kn, PIX_BLOCK))."""
    wt[:] = 0.0
    for j in range(pn):
        for kk in range(kn):
            wt[kk, j] = w[p0 + j, k0 + kk]


@nb.njit(parallel=True, cache=True)
def binary_fields(nibbles: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[r, p] = sum_k x[r, k] W[p, k] for binary rows given as nibbles[r, g] = sum_j
    x[r, 4g + j] << j (uint8, (R, ceil(K/4))); w: (M, K) float32; out: (R, M) float32."""
    n_rows, n_groups = nibbles.shape
    m, k = w.shape
    n_blocks = (m + PIX_BLOCK - 1) // PIX_BLOCK
    for blk in nb.prange(n_blocks):
        p0 = blk * PIX_BLOCK
        pn = min(PIX_BLOCK, m - p0)
        wt = np.empty((4 * GROUP_BLOCK, PIX_BLOCK), np.float32)
        table = np.zeros((GROUP_BLOCK, 16, PIX_BLOCK), np.float32)
        acc = np.zeros((n_rows, PIX_BLOCK), np.float32)
        for g0 in range(0, n_groups, GROUP_BLOCK):
            gn = min(GROUP_BLOCK, n_groups - g0)
            _transpose_block(w, p0, pn, 4 * g0, min(4 * gn, k - 4 * g0), wt)
            for g in range(gn):
                for s in range(1, 16):
                    hb = 3 if s >= 8 else (2 if s >= 4 else (1 if s >= 2 else 0))
                    rest = s ^ (1 << hb)
                    for j in range(PIX_BLOCK):
                        table[g, s, j] = table[g, rest, j] + wt[4 * g + hb, j]
            for r in range(n_rows):
                for g in range(gn):
                    s = nibbles[r, g0 + g]
                    for j in range(PIX_BLOCK):
                        acc[r, j] += table[g, s, j]
        for r in range(n_rows):
            for j in range(pn):
                out[r, p0 + j] = acc[r, j]


@nb.njit(parallel=True, cache=True)
def float_fields(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[r, p] = sum_k x[r, k] W[p, k], k in order, product then add; x: (R, K) float32;
    w: (M, K) float32; out: (R, M) float32."""
    n_rows, k = x.shape
    m = w.shape[0]
    kb = 4 * GROUP_BLOCK
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


def nibbles_of(rows: np.ndarray) -> np.ndarray:
    """Binary rows (R, K) -> uint8 codes (R, ceil(K/4)): code g holds elements 4g..4g+3, element
    4g + j in bit j."""
    packed = np.packbits(rows.astype(bool, copy=False), axis=1, bitorder="little")
    nib = np.empty((rows.shape[0], 2 * packed.shape[1]), np.uint8)
    nib[:, 0::2] = packed & 0x0F
    nib[:, 1::2] = packed >> 4
    return nib[:, : -(-rows.shape[1] // 4)]


def fields(rows: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Batch-invariant rows @ w.T, float32 (R, M): rows (R, K) bool/uint8/float in [0, 1], w
    (M, K) float32. A row whose values are all 0 or 1 takes the binary kernel whatever its
    dtype, so its result does not depend on the other rows of the batch."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    out = np.empty((rows.shape[0], w.shape[0]), np.float32)
    if rows.dtype == np.bool_ or rows.dtype == np.uint8:
        binary = np.ones(rows.shape[0], bool)
    else:
        binary = ((rows == 0) | (rows == 1)).all(axis=1)
    if binary.all():
        binary_fields(np.ascontiguousarray(nibbles_of(rows)), w, out)
        return out
    fr = np.flatnonzero(~binary)
    part = np.empty((fr.size, w.shape[0]), np.float32)
    float_fields(np.ascontiguousarray(rows[fr], dtype=np.float32), w, part)
    out[fr] = part
    if binary.any():
        br = np.flatnonzero(binary)
        part = np.empty((br.size, w.shape[0]), np.float32)
        binary_fields(np.ascontiguousarray(nibbles_of(rows[br])), w, part)
        out[br] = part
    return out
