"""Encodings of project() inputs as binary DMD patterns.

- binary x in {0,1}: one data pattern.
- ternary e in {-1,0,1}: e = e+ - e-, two binary data patterns.
- float x: each row scaled to integers q = round(x / s) with |q| <= 2**bits - 1,
  s = max|x| / (2**bits - 1); q = sum_b 2**b sign(q) bit_b(|q|): `bits` ternary planes.
  The projection is then s * sum_b 2**b P(plane_b), exact for the quantised input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from firmware_iface.errors import InputError

KINDS = ("auto", "binary", "ternary", "float")
# Largest accepted sum of |x| over a float input row: an output is |G x| <= sum|x| max|G_ij| and
# max|G_ij| < 10 (unit Gaussians), so outputs stay far inside float32's range (3.4e38).
FLOAT_ROW_L1_MAX = 1e30


_KIND_NAMES = ("binary", "ternary", "float")


_NOT_FINITE = 3


@nb.njit(cache=True)
def _value_kind(x: np.ndarray) -> int:
    """0 if every value of x is 0 or 1, 1 if every value is -1, 0 or 1, 2 for other finite
    values, _NOT_FINITE if any is NaN or infinite; one branch-free pass (counts, so that the
    loop vectorises: a branch per value cost 5 ns a value on random ternary input)."""
    not_binary = 0
    not_ternary = 0
    not_finite = 0
    for v in x.ravel():
        binary = (v == 0) | (v == 1)
        not_binary += not binary
        not_ternary += not (binary | (v == -1))
        not_finite += not (abs(v) < np.inf)
    if not_finite:
        return _NOT_FINITE
    return 2 if not_ternary else (1 if not_binary else 0)


def classify(x: np.ndarray) -> str:
    """'binary', 'ternary' or 'float' for the values in x; InputError for NaN or infinity."""
    if x.dtype == np.bool_ or x.size == 0:
        return "binary"
    if x.dtype.kind in "iu":
        lo, hi = x.min(), x.max()
        if lo >= 0 and hi <= 1:
            return "binary"
        return "ternary" if lo >= -1 and hi <= 1 else "float"
    kind = (_value_kind(x) if x.dtype == np.float32 or x.dtype == np.float64  # one pass
            else _NOT_FINITE if not np.isfinite(x).all() else None)
    if kind == _NOT_FINITE:
        raise InputError("input contains NaN or infinity")
    if kind is not None:
        return _KIND_NAMES[kind]
    if np.all((x == 0) | (x == 1)):
        return "binary"
    return "ternary" if np.all((x == 0) | (x == 1) | (x == -1)) else "float"


def resolve_kind(x: np.ndarray, encoding: str) -> str:
    """Check the requested encoding against the values; 'auto' picks the cheapest that fits."""
    if encoding not in KINDS:
        raise InputError(f"encoding must be one of {KINDS}, got {encoding!r}")
    found = classify(x)
    if encoding == "auto":
        return found
    order = {"binary": 0, "ternary": 1, "float": 2}
    if order[found] > order[encoding]:
        raise InputError(
            f"encoding={encoding!r} but the input has {found} values; "
            "use encoding='auto' or convert the input"
        )
    return encoding


def check_float_range(x: np.ndarray) -> None:
    """Refuse float input whose projection could overflow float32 (InputError): each row's sum
    of |x| must be at most FLOAT_ROW_L1_MAX."""
    l1 = np.abs(x, dtype=np.float64).sum(axis=1)
    bad = np.flatnonzero(~(l1 <= FLOAT_ROW_L1_MAX))
    if bad.size:
        raise InputError(
            f"input row {bad[0]} has a sum of |x| of {l1[bad[0]]:.3g}: float inputs are accepted "
            f"up to a sum of |x| per row of {FLOAT_ROW_L1_MAX:.0e} (so that the float32 outputs "
            "stay finite); scale the input down and the output back up"
        )


@dataclass(frozen=True)
class FloatPlanes:
    """Bit-plane form of a float batch: planes (bits, B, n) int8 in {-1,0,1}, scale (B,)."""

    planes: np.ndarray
    scale: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """2**b for each plane."""
        return 2.0 ** np.arange(self.planes.shape[0])


def float_planes(x: np.ndarray, bits: int) -> FloatPlanes:
    """Quantise each row of x to `bits` magnitude bits plus sign; see module docstring."""
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise InputError(f"precision must be an integer number of bits in [1, 16], got {bits!r}")
    x = x.astype(np.float64)
    top = (1 << bits) - 1
    amax = np.abs(x).max(axis=1)
    scale = np.where(amax > 0, amax / top, 1.0)
    q = np.rint(x / scale[:, None]).astype(np.int64)
    mag = np.abs(q)
    sign = np.sign(q).astype(np.int8)
    planes = np.stack([((mag >> b) & 1).astype(np.int8) * sign for b in range(bits)])
    return FloatPlanes(planes=planes, scale=scale)


def quantised(x: np.ndarray, bits: int) -> np.ndarray:
    """The values the float encoding actually projects: scale * q (float64)."""
    fp = float_planes(x, bits)
    return np.tensordot(fp.weights, fp.planes.astype(np.float64), axes=1) * fp.scale[:, None]


@nb.njit(cache=True)
def linear_patterns(x: np.ndarray, anchor: np.ndarray, lead: int, group: int) -> np.ndarray:
    """DMD patterns of a linear-mode acquisition, (lead + B group, n + len(anchor)) uint8:
    `lead` anchor-only frames, then per row of x (B, n) int8 its group: binary (group 2)
    [x u r, x]; ternary (group 4) [e+ u r, e+, e- u r, e-] with e+ = (x > 0), e- = (x < 0)
    (opu.recovery's frame order)."""
    b, n = x.shape
    out = np.zeros((lead + group * b, n + anchor.size), np.uint8)
    for f in range(lead):
        out[f, n:] = anchor
    for i in range(b):
        f0 = lead + group * i
        for j in range(n):
            v = x[i, j]
            if group == 2:
                out[f0, j] = out[f0 + 1, j] = v != 0
            else:
                out[f0, j] = out[f0 + 1, j] = v > 0
                out[f0 + 2, j] = out[f0 + 3, j] = v < 0
        out[f0, n:] = anchor
        if group == 4:
            out[f0 + 2, n:] = anchor
    return out
