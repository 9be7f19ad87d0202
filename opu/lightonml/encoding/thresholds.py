"""Threshold and thermometer encoders (lightonml's parameters and layouts).

Unlike lightonml, `fit` never overwrites a constructor argument: what it learns goes to a
trailing-underscore attribute (threshold_, thresholds_, offset/scale), so a fitted encoder can
be cloned and refitted (scikit-learn's rule) without leaking the first fit's values.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from firmware_iface.errors import ConfigurationError, InputError

from .core import BaseTransformer, as_numpy, preserve_type, require_2d, require_numeric


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class BinaryThresholdEncoder(BaseTransformer):
    """x -> 1 where x > threshold (greater_is_one) or x < threshold (otherwise), else 0; uint8.

    threshold_enc: a number, a per-feature array, or 'auto' (the feature-wise median of the data
    given to fit, which must then be called before transform).
    """

    def __init__(self, threshold_enc: Any = "auto", greater_is_one: bool = True) -> None:
        if not (
            _is_number(threshold_enc)
            or isinstance(threshold_enc, np.ndarray)
            or (isinstance(threshold_enc, str) and threshold_enc == "auto")
        ):
            raise ConfigurationError(
                f"threshold_enc must be a number, an array or 'auto', got {threshold_enc!r}"
            )
        self.threshold_enc = threshold_enc
        self.greater_is_one = bool(greater_is_one)

    def fit(self, X: Any, y: Any = None) -> BinaryThresholdEncoder:
        """'auto': learn the feature-wise median (threshold_); a fixed threshold outside the
        data's range gives a warning."""
        x = require_numeric(as_numpy(X), "BinaryThresholdEncoder")
        if isinstance(self.threshold_enc, str):
            self.threshold_ = np.median(x, axis=0)
        else:
            self.threshold_ = self.threshold_enc
            if x.size and (np.any(self.threshold_ < x.min()) or np.any(self.threshold_ > x.max())):
                warnings.warn(
                    "BinaryThresholdEncoder: the threshold is outside the data's range "
                    f"[{x.min()}, {x.max()}], so every feature encodes to one value",
                    stacklevel=2,
                )
        return self

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        x = require_numeric(X, "BinaryThresholdEncoder")
        if isinstance(self.threshold_enc, str):
            if not hasattr(self, "threshold_"):
                raise InputError("threshold_enc='auto': call fit(X) before transform")
            thr = self.threshold_
        else:
            thr = self.threshold_enc
        return (x > thr if self.greater_is_one else x < thr).astype(np.uint8)


class MultiThresholdEncoder(BaseTransformer):
    """x -> [x > t_1, ..., x > t_k] for k thresholds: (n, f) -> (n, k * f) uint8,
    threshold-major (block j holds every feature compared with t_j).

    thresholds: an array of k values (or (f, k) with columnwise=True), or 'linspace' (n_bins - 1
    evenly spaced inside the data's range) / 'quantiles' (the j / n_bins quantiles), both learnt
    by fit, per column if columnwise.
    """

    def __init__(self, thresholds: Any = "linspace", n_bins: int = 8, columnwise: bool = False):
        if isinstance(thresholds, (list, tuple, np.ndarray)):
            t = np.asarray(thresholds, dtype=np.float64)
            if t.ndim != (2 if columnwise else 1) or t.shape[-1] < 1:
                raise ConfigurationError(
                    "thresholds must be 1-D (k,), or 2-D (n_features, k) with columnwise=True; "
                    f"got shape {t.shape} with columnwise={columnwise}"
                )
            self.n_bins = t.shape[-1] + 1
        elif isinstance(thresholds, str) and thresholds in ("linspace", "quantiles"):
            if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
                raise ConfigurationError(f"n_bins must be an integer >= 2, got {n_bins!r}")
            self.n_bins = int(n_bins)
        else:
            raise ConfigurationError(
                "thresholds must be a list, an array, 'linspace' or 'quantiles', "
                f"got {thresholds!r}"
            )
        self.thresholds = thresholds
        self.columnwise = bool(columnwise)

    def _learn(self, v: np.ndarray) -> np.ndarray:
        if self.thresholds == "linspace":
            return np.linspace(v.min(), v.max(), self.n_bins + 1)[1:-1]
        qs = np.arange(1, self.n_bins) / self.n_bins
        return np.quantile(v, qs, method="midpoint")

    def fit(self, X: Any, y: Any = None) -> MultiThresholdEncoder:
        """Learn thresholds_ for 'linspace' / 'quantiles' (no-op for given thresholds)."""
        if isinstance(self.thresholds, str):
            x = require_numeric(require_2d(as_numpy(X), "MultiThresholdEncoder"), "encoder")
            if x.shape[0] == 0:
                raise InputError("MultiThresholdEncoder.fit needs at least one sample")
            x = x.astype(np.float64)
            if self.columnwise:
                self.thresholds_ = np.stack([self._learn(x[:, j]) for j in range(x.shape[1])])
            else:
                self.thresholds_ = self._learn(x)
        return self

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        x = require_numeric(require_2d(X, "MultiThresholdEncoder"), "encoder")
        if isinstance(self.thresholds, str):
            if not hasattr(self, "thresholds_"):
                raise InputError(f"thresholds={self.thresholds!r}: call fit(X) before transform")
            t = self.thresholds_
        else:
            t = np.asarray(self.thresholds, dtype=np.float64)
        if t.ndim == 2:
            if t.shape[0] != x.shape[1]:
                raise InputError(f"columnwise thresholds are for {t.shape[0]} features, "
                                 f"the input has {x.shape[1]}")
            cmp = x[None, :, :] > t.T[:, None, :]
        else:
            cmp = x[None, :, :] > t[:, None, None]
        return np.concatenate(list(cmp), axis=1).astype(np.uint8)


class SequentialBaseTwoEncoder(BaseTransformer):
    """Thermometer code in base 2: x is scaled to a level v in [0, n_gray_levels - 1]
    (round((n_gray_levels - 1) (x - offset) / scale), offset = min and scale = max - min of the
    data given to fit) and bit b of v is repeated 2**b times, most significant first:
    (n, f) -> (n, f * (n_gray_levels - 1)) uint8, each feature's block summing to v
    (5 -> 1111 00 1). n_gray_levels: a power of two in [2, 256]."""

    def __init__(self, n_gray_levels: int = 16) -> None:
        g = n_gray_levels
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not (
            2 <= g <= 256 and g & (g - 1) == 0
        ):
            raise ConfigurationError(
                f"n_gray_levels must be a power of two in [2, 256], got {n_gray_levels!r}"
            )
        self.n_gray_levels = int(g)
        self.n_bits = int(self.n_gray_levels).bit_length() - 1
        self.offset: float | None = None
        self.scale: float | None = None

    def fit(self, X: Any, y: Any = None) -> SequentialBaseTwoEncoder:
        """Learn offset and scale from the training data (only)."""
        x = require_numeric(as_numpy(X), "SequentialBaseTwoEncoder")
        if x.size == 0:
            raise InputError("SequentialBaseTwoEncoder.fit needs data")
        self.offset = float(x.min())
        self.scale = float(x.max()) - self.offset
        return self

    def normalize(self, X: Any) -> np.ndarray:
        """The levels v (uint8), clipped to [0, n_gray_levels - 1]; constant training data
        (scale 0) gives level 0 everywhere."""
        if self.offset is None or self.scale is None:
            raise InputError("SequentialBaseTwoEncoder: call fit on the training data first")
        x = require_numeric(as_numpy(X), "SequentialBaseTwoEncoder").astype(np.float64)
        top = self.n_gray_levels - 1
        v = np.round(top * (x - self.offset) / self.scale) if self.scale > 0 else np.zeros_like(x)
        return np.clip(v, 0, top).astype(np.uint8)

    @preserve_type
    def transform(self, X: np.ndarray) -> np.ndarray:
        x = require_2d(X, "SequentialBaseTwoEncoder")
        v = self.normalize(x)
        shifts = np.arange(self.n_bits - 1, -1, -1)
        bits = (v[:, :, None] >> shifts.astype(np.uint8)) & 1
        out = np.repeat(bits, 2**shifts, axis=2)
        return np.ascontiguousarray(out, dtype=np.uint8).reshape(x.shape[0], -1)
