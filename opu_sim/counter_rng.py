"""Counter-based random numbers (Numba): every value is a pure function of (key, counter), so
any tile, batch, ROI or thread order gives the same numbers, in any process.

The generator is SplitMix64 addressed directly: the j-th output of the stream keyed `k` is
fmix64(k + (j + 1) * golden). Keys hash (seed, stream, row) with the same mixer.

Complex Gaussians use the polar form of Box-Muller with branch-free float32 polynomials for the
logarithm and the sine/cosine (errors below 1e-7), so that LLVM vectorises the loops (llvmlite
has no SVML). Values are reproducible bit for bit on one CPU family; across CPUs they agree to
float32 rounding (FMA).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LN2 = np.float32(math.log(2.0))
_HALF_PI = np.float32(math.pi / 2.0)
_QUARTER_PI = np.float32(math.pi / 4.0)
# FMA contraction lets LLVM vectorise these loops; approximate reciprocals and functions
# ('arcp', 'afn') are left out because the vector body and the scalar remainder would then round
# differently, and a coefficient must not depend on the tile it was asked in.
_FM = {"nnan", "ninf", "nsz", "contract"}


@intrinsic
def _f32_from_bits(typingctx, bits):
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _bits_from_f32(typingctx, x):
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@nb.njit(inline="always", cache=True)
def fmix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijective 64-bit mixer."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always", cache=True)
def derive_key(seed: np.uint64, stream: np.uint64, row: np.uint64) -> np.uint64:
    """Key of the stream addressed by (seed, stream, row)."""
    k = fmix64(seed * GOLDEN + np.uint64(0x632BE59BD9B4E019))
    k = fmix64(k ^ (stream * _M1 + np.uint64(0x2545F4914F6CDD1D)))
    return fmix64(k ^ (row * _M2 + GOLDEN))


@nb.njit(inline="always", cache=True)
def knot_key(row_key: np.uint64, knot: np.uint64) -> np.uint64:
    """Key of knot `knot` of the stream `row_key` (drift knots of one matrix row)."""
    return fmix64(row_key ^ fmix64(knot * _M2 + np.uint64(0xD6E8FEB86659FD93)))


@nb.njit(inline="always", cache=True)
def draw(key: np.uint64, counter: np.uint64) -> np.uint64:
    """The counter-th 64-bit output of the stream `key`."""
    return fmix64(key + (counter + np.uint64(1)) * GOLDEN)


@nb.njit(inline="always", cache=True, fastmath=_FM)
def neg_log_unit(k24: np.uint32) -> np.float32:
    """-ln(u) for u = (k24 + 0.5) / 2**24, k24 < 2**24; branch-free float32."""
    u = (np.float32(k24) + np.float32(0.5)) * np.float32(1.0 / 16777216.0)
    bits = _bits_from_f32(u)
    e = np.float32(np.int32(bits >> np.uint32(23)) - np.int32(127))
    m = _f32_from_bits((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000))  # [1, 2)
    s = (m - np.float32(1.0)) / (m + np.float32(1.0))  # [0, 1/3)
    s2 = s * s
    # ln m = 2 atanh(s), series to s^13: error < 2e-8
    p = np.float32(1.0 / 13.0)
    p = p * s2 + np.float32(1.0 / 11.0)
    p = p * s2 + np.float32(1.0 / 9.0)
    p = p * s2 + np.float32(1.0 / 7.0)
    p = p * s2 + np.float32(1.0 / 5.0)
    p = p * s2 + np.float32(1.0 / 3.0)
    p = p * s2 + np.float32(1.0)
    return -(e * _LN2 + np.float32(2.0) * s * p)


@nb.njit(inline="always", cache=True, fastmath=_FM)
def _rotated_eighth(phi: np.float32) -> tuple[np.float32, np.float32]:
    """(cos, sin) of phi + pi/4 for phi in [-pi/4, pi/4]; branch-free float32 polynomials."""
    p2 = phi * phi
    c = np.float32(1.0 / 40320.0)
    c = c * p2 - np.float32(1.0 / 720.0)
    c = c * p2 + np.float32(1.0 / 24.0)
    c = c * p2 - np.float32(0.5)
    c = c * p2 + np.float32(1.0)
    s = np.float32(1.0 / 362880.0)
    s = s * p2 - np.float32(1.0 / 5040.0)
    s = s * p2 + np.float32(1.0 / 120.0)
    s = s * p2 - np.float32(1.0 / 6.0)
    s = s * p2 + np.float32(1.0)
    s = s * phi
    # rotate by pi/4: (c, s) -> ((c - s) / sqrt 2, (c + s) / sqrt 2)
    r = np.float32(0.7071067811865476)
    return (c - s) * r, (c + s) * r


@nb.njit(inline="always", cache=True, fastmath=_FM)
def unit_phasor(k24: np.uint32) -> tuple[np.float32, np.float32]:
    """(cos, sin) of a uniform angle in [0, 2 pi) given 24 random bits; branch-free float32."""
    q = k24 >> np.uint32(22)  # quadrant 0..3
    v = np.float32(k24 & np.uint32(0x3FFFFF)) * np.float32(1.0 / 4194304.0)  # [0, 1)
    c1, s1 = _rotated_eighth((v - np.float32(0.5)) * _HALF_PI)  # angle in [0, pi/2)
    # then by q * pi/2
    odd = (q & np.uint32(1)) != np.uint32(0)
    neg = (q & np.uint32(2)) != np.uint32(0)
    cc = -s1 if odd else c1
    ss = c1 if odd else s1
    if neg:
        cc = -cc
        ss = -ss
    return cc, ss


@nb.njit(inline="always", cache=True, fastmath=_FM)
def quarter_phasor(f: np.float32) -> tuple[np.float32, np.float32]:
    """(cos, sin) of pi f / 2 for f in [0, 1]; branch-free float32 (cos^2 + sin^2 = 1 to 1e-7)."""
    return _rotated_eighth((f - np.float32(0.5)) * _HALF_PI)


@nb.njit(inline="always", cache=True, fastmath=_FM)
def complex_gauss(h: np.uint64) -> tuple[np.float32, np.float32]:
    """(re, im) of one CN(0, 1) sample (E|z|^2 = 1) from one 64-bit draw."""
    r = np.float32(math.sqrt(neg_log_unit(np.uint32(h >> np.uint64(40)))))
    c, s = unit_phasor(np.uint32((h >> np.uint64(16)) & np.uint64(0xFFFFFF)))
    return r * c, r * s


@nb.njit(inline="always", cache=True, fastmath=_FM)
def gauss_pair(h: np.uint64) -> tuple[np.float32, np.float32]:
    """Two independent standard normals from one 64-bit draw."""
    re, im = complex_gauss(h)
    s = np.float32(math.sqrt(2.0))
    return re * s, im * s


@nb.njit(inline="always", cache=True)
def uniform(h: np.uint64) -> float:
    """A uniform in (0, 1) with 53-bit resolution from one 64-bit draw."""
    return (float(h >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
