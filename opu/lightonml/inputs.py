"""The shapes lightonml's OPU accepts: 1-D or 2-D features, bit-packed or not, single vectors or
batches with one or two batch dimensions; outputs are shaped batch + (n_components,)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware_iface.errors import InputError


@dataclass(frozen=True)
class InputTraits:
    """n_features: (n,) or (height, width); packed: rows are np.packbits of the features."""

    n_features: tuple[int, ...]
    packed: bool

    @property
    def n_features_s(self) -> int:
        """Number of features per vector."""
        return math.prod(self.n_features)

    @property
    def packed_width(self) -> int:
        """Bytes per packed vector."""
        return math.ceil(self.n_features_s / 8)


def _feature_count(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(f"{what} must be a positive integer, got {v!r}")
    return int(v)


def traits_of(
    x: np.ndarray | None, n_features: Any, packed: bool, is_2d: bool
) -> InputTraits:
    """The traits a fit sets, from its input x or from n_features (which packed 2-D input
    needs, as lightonml)."""
    if n_features is not None:
        nf = tuple(np.atleast_1d(np.asarray(n_features)).tolist())
        if len(nf) != (2 if is_2d else 1):
            raise InputError(
                f"n_features must be {'(height, width)' if is_2d else 'an integer'} for "
                f"fit{'2' if is_2d else '1'}d, got {n_features!r}"
            )
        return InputTraits(tuple(_feature_count(v, "n_features") for v in nf), bool(packed))
    if x is None:
        raise InputError("give the input X or n_features to fit")
    if is_2d:
        if packed:
            raise InputError("bit-packed 2-D input needs n_features=(height, width)")
        if x.ndim < 2:
            raise InputError(f"fit2d needs vectors of shape (height, width), got shape {x.shape}")
        return InputTraits((int(x.shape[-2]), int(x.shape[-1])), False)
    if x.ndim < 1 or x.shape[-1] == 0:
        raise InputError(f"fit1d needs vectors with at least one feature, got shape {x.shape}")
    return InputTraits((int(x.shape[-1]) * (8 if packed else 1),), bool(packed))


def rows_of(x: np.ndarray, traits: InputTraits) -> tuple[np.ndarray, tuple[int, ...]]:
    """(rows (N, n_features_s), batch shape) of x; packed input is unpacked."""
    if traits.packed:
        if x.dtype != np.uint8:
            raise InputError(f"bit-packed input must be uint8, got {x.dtype}")
        if x.ndim < 1 or x.shape[-1] != traits.packed_width:
            raise InputError(
                f"bit-packed vectors of {traits.n_features} features have "
                f"{traits.packed_width} bytes, got shape {x.shape}: fit again for this input"
            )
        batch = x.shape[:-1]
        flat = np.unpackbits(x.reshape(-1, traits.packed_width), axis=1)
        return flat[:, : traits.n_features_s], batch
    k = len(traits.n_features)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != traits.n_features:
        raise InputError(
            f"the OPU was fit for vectors of shape {traits.n_features}, got input of shape "
            f"{x.shape}: call fit1d/fit2d for this input"
        )
    batch = x.shape[: x.ndim - k]
    return x.reshape(-1, traits.n_features_s), batch
