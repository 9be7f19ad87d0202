"""Bit-plane encoders (lightonml's layouts) and their decoders.

SeparatedBitPlanEncoder(precision): each sign of X is scaled by its magnitude M (its largest
absolute value; for integers the power-of-two multiple that makes the scaling a bit shift) and
quantised to q = floor(|x| (2**p - 1) / M + 1/2), 0 <= q <= 2**p - 1; the p bit planes of q
(most significant first) are stacked along the samples axis, the positive part's planes before
the negative part's. Output (sides * n_samples * p, n_features) uint8, sides = number of signs
present. SeparatedBitPlanDecoder undoes it on the OPU's outputs (a linear map of each plane):
sum_b decay**b plane_b, times magnitude / (2 (1 - 2**-p)), positive minus negative.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from firmware_iface.errors import ConfigurationError, InputError

from .core import BaseTransformer, preserve_type, require_2d, require_numeric


def _check_int(name: str, v: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (
        hi is not None and v > hi
    ):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ConfigurationError(f"{name} must be an integer {rng}, got {v!r}")
    return int(v)


def _side_magnitude(x: np.ndarray, precision: int) -> float:
    """M for one sign of x (x >= 0 where it counts): 0 if nothing is positive; for integers
    (2**p - 1) 2**(bits - p), bits = bit length of max(x), so quantisation is a shift."""
    top = float(x.max()) if x.size else 0.0
    if top <= 0:
        return 0.0
    if x.dtype.kind in "iub":
        bits = math.ceil(math.log2(top + 1))
        return (2**precision - 1) * 2.0 ** (bits - precision)
    return top


def _unit_planes(u: np.ndarray, precision: int) -> np.ndarray:
    """Bit planes (n * p, f) uint8, most significant first per sample, of u in [0, 1]."""
    q = np.floor(u * (2**precision - 1) + 0.5).astype(np.uint8)
    shifts = np.arange(precision - 1, -1, -1, dtype=np.uint8)
    planes = (q[:, None, :] >> shifts[None, :, None]) & 1
    return planes.reshape(-1, q.shape[1]).astype(np.uint8)


class SeparatedBitPlanEncoder(BaseTransformer):
    """Encoder of real-valued (signed) input as `precision` bit planes per sign (see module).

    precision: bit planes per sign, 1..8. The decoder needs the magnitudes of the encoded batch:
    `get_params()` after `transform` (lightonml's way), or `encode(X)` -> (planes, params)
    without any state. OPU.transform / linear_transform re-derive a decoder instance's
    parameters on every call, so one encoder/decoder pair serves any number of calls.
    """

    def __init__(self, precision: int = 6, **kwargs: Any) -> None:
        if "n_bits" in kwargs or kwargs.get("starting_bit", 0) != 0:
            raise ConfigurationError(
                "SeparatedBitPlanEncoder takes `precision` since lightonml 1.4 (n_bits and "
                "starting_bit are gone); ConcatenatedBitPlanEncoder keeps n_bits/starting_bit"
            )
        unknown = set(kwargs) - {"starting_bit", "magnitude_p", "magnitude_n"}
        if unknown:
            raise ConfigurationError(f"unknown SeparatedBitPlanEncoder arguments {sorted(unknown)}")
        self.precision = _check_int("precision", precision, 1, 8)
        self.magnitude: tuple[float | None, float | None] = (None, None)

    def encode(self, X: Any) -> tuple[np.ndarray, dict]:
        """(bit planes, decoder parameters) for X, without touching self (numpy only)."""
        x = require_numeric(require_2d(np.asarray(X), "SeparatedBitPlanEncoder"), "encoder")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise InputError("SeparatedBitPlanEncoder input contains NaN or infinity")
        p = self.precision
        signed = x.dtype.kind in "if"
        pos = np.maximum(x, 0) if signed else x
        neg = np.maximum(-x.astype(np.float64) if x.dtype.kind == "f" else -x.astype(np.int64), 0)
        m_p = _side_magnitude(pos, p)
        m_n = _side_magnitude(neg, p) if signed else 0.0
        sides = []
        for part, m in ((pos, m_p), (neg, m_n)):
            if m > 0:
                sides.append(_unit_planes(np.clip(part / m, 0.0, 1.0), p))
        if not sides:  # all zeros: one side of empty planes
            sides.append(np.zeros((x.shape[0] * p, x.shape[1]), dtype=np.uint8))
        scale = 2.0 * (1.0 - 0.5**p)
        params = {"precision": p, "magnitude_p": m_p / scale, "magnitude_n": m_n / scale}
        return np.concatenate(sides, axis=0), params

    @preserve_type
    def transform(self, X: Any) -> np.ndarray:
        """Bit planes of X (see module); records the magnitudes for get_params()."""
        planes, params = self.encode(X)
        self.magnitude = (params["magnitude_p"], params["magnitude_n"])
        return planes

    def get_params(self, deep: bool = False) -> dict:
        """The SeparatedBitPlanDecoder arguments for the last batch transform() encoded."""
        if self.magnitude[0] is None:
            raise InputError("SeparatedBitPlanEncoder.get_params() before any transform()")
        return {
            "precision": self.precision,
            "magnitude_p": self.magnitude[0],
            "magnitude_n": self.magnitude[1],
        }


class SeparatedBitPlanDecoder(BaseTransformer):
    """Recombines projections of SeparatedBitPlanEncoder planes (see module).

    precision, magnitude_p, magnitude_n: from the encoder's get_params() (or encode());
    decoding_decay: weight ratio of successive planes (0.5 for binary weights).
    """

    def __init__(
        self,
        precision: int,
        magnitude_p: float = 1,
        magnitude_n: float = 0,
        decoding_decay: float = 0.5,
    ) -> None:
        self.precision = _check_int("precision", precision, 1, 8)
        self.magnitude_p = float(magnitude_p)
        self.magnitude_n = float(magnitude_n)
        self.decoding_decay = float(decoding_decay)

    def for_encoding(self, params: dict) -> SeparatedBitPlanDecoder:
        """A copy with the magnitudes (and precision) of that encoding."""
        keys = ("precision", "magnitude_p", "magnitude_n")
        if not all(k in params for k in keys):
            return self
        return SeparatedBitPlanDecoder(**{k: params[k] for k in keys},
                                       decoding_decay=self.decoding_decay)

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        """(sides * n * p, m) projections -> (n, m) float32."""
        y = require_2d(X, "SeparatedBitPlanDecoder").astype(np.float64)
        p = self.precision
        sides = 2 if (self.magnitude_p > 0 and self.magnitude_n > 0) else 1
        if y.shape[0] % (p * sides):
            raise InputError(
                f"SeparatedBitPlanDecoder got {y.shape[0]} rows, not a multiple of "
                f"precision x sides = {p} x {sides}: use the decoder parameters of the encoding "
                "these outputs came from (encoder.get_params() after that transform)"
            )
        n = y.shape[0] // (p * sides)
        w = self.decoding_decay ** np.arange(p)
        unit = np.einsum("snpm,p->snm", y.reshape(sides, n, p, -1), w)
        if sides == 2:
            out = unit[0] * self.magnitude_p - unit[1] * self.magnitude_n
        elif self.magnitude_p > 0:
            out = unit[0] * self.magnitude_p
        else:
            out = -unit[0] * self.magnitude_n
        return out.astype(np.float32)


class ConcatenatedBitPlanEncoder(BaseTransformer):
    """Bits n_bits..: of each feature's in-memory representation, concatenated along the
    features: (n, f) -> (n, f * n_bits) uint8, feature-major. Bits run in lightonml's order:
    bytes least significant first (little-endian), each byte's bits most significant first;
    bits [starting_bit, starting_bit + n_bits) of that sequence are kept (so for uint8 input,
    starting_bit=0 keeps the n_bits most significant bits)."""

    def __init__(self, n_bits: int = 8, starting_bit: int = 0) -> None:
        self.n_bits = _check_int("n_bits", n_bits, 1)
        self.starting_bit = _check_int("starting_bit", starting_bit, 0)

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        x = require_numeric(require_2d(X, "ConcatenatedBitPlanEncoder"), "encoder")
        width = x.dtype.itemsize * 8
        if self.n_bits + self.starting_bit > width:
            raise InputError(
                f"n_bits + starting_bit = {self.n_bits} + {self.starting_bit} exceeds the "
                f"{width} bits of {x.dtype} input"
            )
        le = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
        bits = np.unpackbits(le.view(np.uint8).reshape(*x.shape, -1), axis=2)
        kept = bits[:, :, self.starting_bit : self.starting_bit + self.n_bits]
        return np.ascontiguousarray(kept).reshape(x.shape[0], -1)


class ConcatenatingBitPlanDecoder(BaseTransformer):
    """Concatenates weighted projections of bit planes stacked along the samples axis:
    (n * n_bits, m) -> (n, n_bits * m) float32, block b = decoding_decay**b * plane b."""

    def __init__(self, n_bits: int = 8, decoding_decay: float = 0.5) -> None:
        self.n_bits = _check_int("n_bits", n_bits, 1)
        self.decoding_decay = float(decoding_decay)

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        y = require_2d(X, "ConcatenatingBitPlanDecoder")
        if y.shape[0] % self.n_bits:
            raise InputError(
                f"{y.shape[0]} rows are not a multiple of n_bits={self.n_bits}: use the "
                "encoder's n_bits"
            )
        n = y.shape[0] // self.n_bits
        w = (self.decoding_decay ** np.arange(self.n_bits))[None, :, None]
        return (y.reshape(n, self.n_bits, -1) * w).reshape(n, -1).astype(np.float32)


class _Float32Bits(BaseTransformer):
    """Selected bits of the IEEE-754 float32 representation (sign, exponent, mantissa)."""

    def __init__(self, sign_bit: bool = True, exp_bits: int = 8, mantissa_bits: int = 23) -> None:
        self.sign_bit = bool(sign_bit)
        self.exp_bits = _check_int("exp_bits", exp_bits, 0, 8)
        self.mantissa_bits = _check_int("mantissa_bits", mantissa_bits, 0, 23)
        self.n_bits = int(self.sign_bit) + self.exp_bits + self.mantissa_bits
        if self.n_bits == 0:
            raise ConfigurationError("keep at least one bit (sign, exponent or mantissa)")
        idx = list(range(1, 1 + self.exp_bits)) + list(range(9, 9 + self.mantissa_bits))
        self.indices = sorted(([0] if self.sign_bit else []) + idx)

    def _bits(self, X: np.ndarray) -> np.ndarray:
        """(n, f, n_bits): kept bits, most significant first (sign, exponent, mantissa)."""
        x = require_numeric(require_2d(X, type(self).__name__), "encoder")
        be = np.ascontiguousarray(x, dtype=">f4")  # float64 input is rounded to float32
        bits = np.unpackbits(be.view(np.uint8).reshape(*x.shape, 4), axis=2)
        return bits[:, :, self.indices]


class Float32Encoder(_Float32Bits):
    """Kept float32 bits as planes along the samples axis: (n, f) -> (n * n_bits, f) uint8,
    rows of a sample in bit order (sign, exponent MSB..., mantissa MSB...). sign_bit: keep the
    sign; exp_bits (0..8) / mantissa_bits (0..23): the most significant bits kept."""

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        b = self._bits(X)
        return np.ascontiguousarray(b.transpose(0, 2, 1)).reshape(-1, b.shape[1])


class ConcatenatedFloat32Encoder(_Float32Bits):
    """Kept float32 bits concatenated along the features: (n, f) -> (n, f * n_bits) uint8,
    each feature's bits contiguous (same parameters as Float32Encoder)."""

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        b = self._bits(X)
        return np.ascontiguousarray(b).reshape(b.shape[0], -1)
