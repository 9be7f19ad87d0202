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

from dataclasses import dataclass

import numba as nb
import numpy as np

PIX_BLOCK = 128  # output columns (rows of W) per parallel work item (chosen by measurement)
GROUP_BLOCK = 64  # 4-element groups per table (256 DMD elements; 512 KiB table, in L2)


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
def binary_fields(nibbles: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[r, p] = sum_k x[r, k] W[p, k] for binary rows given as nibbles[r, g] = sum_j
    x[r, 4g + j] << j (uint8, (R, G), G a multiple of GROUP_BLOCK, zero past the last element);
    w: (M, K) float32, 4 G >= K; out: (R, M) float32.

    Order of the sum for one output: groups of 8 table entries are added as a balanced tree
    ((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7)), and those octets are added in order."""
    n_rows, n_groups = nibbles.shape
    m, k = w.shape
    n_real = (k + 3) // 4  # groups holding elements; the padding past them codes 0
    n_blocks = (m + PIX_BLOCK - 1) // PIX_BLOCK
    for blk in nb.prange(n_blocks):
        p0 = blk * PIX_BLOCK
        pn = min(PIX_BLOCK, m - p0)
        wt = np.empty((4 * GROUP_BLOCK, PIX_BLOCK), np.float32)
        table = np.empty((GROUP_BLOCK, 16, PIX_BLOCK), np.float32)
        table[:, 0, :] = 0.0  # the empty subset; the others are written before they are read
        acc = np.zeros((n_rows, PIX_BLOCK), np.float32)
        for g0 in range(0, n_groups, GROUP_BLOCK):
            # octets made only of padding add +0.0 to an accumulator that is never -0.0, so
            # skipping them leaves every bit as it was (and n_in=10 does 8 groups, not 64)
            g_end = min(GROUP_BLOCK, (max(0, n_real - g0) + 7) // 8 * 8)
            if g_end == 0:
                continue
            kn = max(0, min(4 * GROUP_BLOCK, k - 4 * g0))
            _transpose_block(w, p0, pn, 4 * g0, kn, wt[: 4 * g_end])
            for g in range(g_end):
                for s in range(1, 16):
                    hb = 3 if s >= 8 else (2 if s >= 4 else (1 if s >= 2 else 0))
                    rest = s ^ (1 << hb)
                    for j in range(PIX_BLOCK):
                        table[g, s, j] = table[g, rest, j] + wt[4 * g + hb, j]
            for r in range(n_rows):
                code = nibbles[r, g0 : g0 + GROUP_BLOCK]
                for g in range(0, g_end, 8):
                    t0 = table[g, code[g]]
                    t1 = table[g + 1, code[g + 1]]
                    t2 = table[g + 2, code[g + 2]]
                    t3 = table[g + 3, code[g + 3]]
                    t4 = table[g + 4, code[g + 4]]
                    t5 = table[g + 5, code[g + 5]]
                    t6 = table[g + 6, code[g + 6]]
                    t7 = table[g + 7, code[g + 7]]
                    for j in range(PIX_BLOCK):
                        acc[r, j] += ((t0[j] + t1[j]) + (t2[j] + t3[j])) + (
                            (t4[j] + t5[j]) + (t6[j] + t7[j])
                        )
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
    """Binary rows (R, K) -> uint8 codes (R, G): code g holds elements 4g..4g+3, element 4g + j
    in bit j; G = ceil(K/4) rounded up to a multiple of GROUP_BLOCK, the extra codes zero."""
    packed = np.packbits(rows.astype(bool, copy=False), axis=1, bitorder="little")
    n_groups = -(-rows.shape[1] // (4 * GROUP_BLOCK)) * GROUP_BLOCK
    nib = np.zeros((rows.shape[0], n_groups), np.uint8)
    nib[:, 0 : 2 * packed.shape[1] : 2] = packed & 0x0F
    nib[:, 1 : 2 * packed.shape[1] : 2] = packed >> 4
    return nib


@dataclass(frozen=True)
class PreparedRows:
    """Rows in the kernels' operand forms (see `prepare`); reusable over tiles of W."""

    n_rows: int
    binary: np.ndarray  # indices of the binary rows
    nibbles: np.ndarray  # their codes (nibbles_of)
    fractional: np.ndarray  # indices of the other rows
    floats: np.ndarray  # those rows, float32


def prepare(rows: np.ndarray) -> PreparedRows:
    """Split rows (R, K) (bool, uint8 0/1, or float in [0, 1]) into the kernels' operands. A row
    whose values are all 0 or 1 takes the binary kernel whatever its dtype, so its result does
    not depend on the other rows of the batch."""
    if rows.dtype == np.bool_ or rows.dtype == np.uint8:
        binary = np.ones(rows.shape[0], bool)
    else:
        binary = ((rows == 0) | (rows == 1)).all(axis=1)
    bi, fi = np.flatnonzero(binary), np.flatnonzero(~binary)
    return PreparedRows(
        n_rows=rows.shape[0],
        binary=bi,
        nibbles=nibbles_of(rows if bi.size == rows.shape[0] else rows[bi]),
        fractional=fi,
        floats=np.ascontiguousarray(rows[fi], dtype=np.float32),
    )


def fields(rows: np.ndarray | PreparedRows, w: np.ndarray) -> np.ndarray:
    """Batch-invariant rows @ w.T, float32 (R, M): rows (R, K) as for `prepare` (or prepared
    once for several tiles of W), w (M, K) float32."""
    prep = rows if isinstance(rows, PreparedRows) else prepare(rows)
    w = np.ascontiguousarray(w, dtype=np.float32)
    if prep.fractional.size == 0:
        out = np.empty((prep.n_rows, w.shape[0]), np.float32)
        binary_fields(prep.nibbles, w, out)
        return out
    out = np.empty((prep.n_rows, w.shape[0]), np.float32)
    for idx, kernel, operand in (
        (prep.binary, binary_fields, prep.nibbles),
        (prep.fractional, float_fields, prep.floats),
    ):
        if idx.size:
            part = np.empty((idx.size, w.shape[0]), np.float32)
            kernel(operand, w, part)
            out[idx] = part
    return out
