"""The encoders' common base: numpy or torch in, the same kind out; fit is a no-op unless an
encoder learns something from data."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from firmware_iface.errors import InputError

from ...arrays import is_torch, to_numpy


def as_numpy(x: Any) -> np.ndarray:
    """A numpy view of x (numpy array, torch tensor on any device, or nested sequence)."""
    if is_torch(x):
        return to_numpy(x)  # any device; half and bfloat16 as float32
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except ValueError as exc:
        raise InputError(f"input is not an array: {exc}") from None


def like(z: np.ndarray, x: Any) -> Any:
    """z as the kind of x: a torch tensor on x's device if x is one, else the numpy array."""
    if is_torch(x):
        import torch

        return torch.from_numpy(np.ascontiguousarray(z)).to(x.device)
    return z


def preserve_type(transform: Callable) -> Callable:
    """Decorator: the wrapped transform works on numpy; torch input gives torch output."""

    @functools.wraps(transform)
    def wrapper(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        return like(transform(self, as_numpy(x), *args, **kwargs), x)

    return wrapper


def require_2d(x: np.ndarray, who: str) -> np.ndarray:
    """x if it is (n_samples, n_features), else InputError."""
    if x.ndim != 2:
        raise InputError(f"{who} needs a 2-D array (n_samples, n_features), got shape {x.shape}")
    return x


def require_numeric(x: np.ndarray, who: str) -> np.ndarray:
    """x if its dtype is bool, integer or floating point, else InputError."""
    if x.dtype.kind not in "biuf":
        raise InputError(f"{who} needs numbers (bool, integer or float), got dtype {x.dtype}")
    return x


class BaseTransformer:
    """Base of every encoder and decoder: `fit` (no-op), `transform`, `fit_transform`."""

    def fit(self, X: Any, y: Any = None) -> BaseTransformer:
        """No-op for encoders that learn nothing; returns self."""
        return self

    def transform(self, X: Any) -> Any:
        """Encode or decode X (numpy array or torch tensor)."""
        raise NotImplementedError

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """fit then transform."""
        return self.fit(X, y).transform(X)

    def for_encoding(self, params: dict) -> BaseTransformer:
        """The decoder to use for outputs of an encoding with these parameters (the encoder's
        get_params() right after it encoded). Decoders that need them return a configured copy
        and leave self unchanged, so one decoder instance serves every call; others return
        self."""
        return self

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class NoEncoding(BaseTransformer):
    """No-op encoder: the input goes to the OPU as it is."""

    def transform(self, X: Any) -> Any:
        return X


class NoDecoding(BaseTransformer):
    """No-op decoder: the OPU's output is returned as it is."""

    def transform(self, X: Any) -> Any:
        return X
