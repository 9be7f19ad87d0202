"""`lightonml.projections.sklearn.OPUMap`: the OPU as a scikit-learn transformer.

Same parameters as lightonml, plus `opu_device` (a SimulatedOpuDevice with its seed and noise,
or a device string) for the OPU it creates. Following scikit-learn's rules (which lightonml
broke), __init__ only stores the parameters: the OPU is created by fit (`opu_`, the given `opu`
itself when there is one), `fitted` is derived from that, and n_features_in_ is set by fit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from firmware_iface.errors import ConfigurationError

from .. import set_verbose_level
from ..internal.open_close import OpenCloseContext
from ..internal.simulated_device import SimulatedOpuDevice
from ..opu import OPU
from .common import map_opu


@dataclass(eq=False, repr=False)  # __init__ stores the parameters as given; sklearn's repr
class OPUMap(OpenCloseContext, TransformerMixin, BaseEstimator):
    """Random features |R x|^2 (or R x with linear=True) of binary (or real) vectors.

    n_components: output dimension; opu: an OPU to use (else one is created at fit: simulated
    needs max_n_features); ndims: 1 for (n, n_features) input, 2 for (n, height, width);
    packed / n_2d_features: bit-packed input (and its 2-D shape); linear: linear_transform;
    opu_device: device of the created OPU (extension). transform returns float32 numpy arrays.
    """

    n_components: int
    opu: OPU | None = None
    ndims: int = 1
    n_2d_features: Any = None
    packed: bool = False
    simulated: bool = False
    max_n_features: int | None = None
    verbose_level: int = -1
    linear: bool = False
    opu_device: Any = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        tags.non_deterministic = self._noisy()
        return tags

    def _noisy(self) -> bool:
        """Whether two projections of one input differ (camera noise): every device except a
        noise-free simulator."""
        if self.opu is not None:
            return bool(self.opu.config.get("noise", True))
        if isinstance(self.opu_device, SimulatedOpuDevice):
            return self.opu_device.noise
        return True

    @property
    def fitted(self) -> bool:
        """True once fit has set the OPU up (lightonml's attribute)."""
        return hasattr(self, "opu_")

    def _make_opu(self) -> OPU:
        dev = self.opu_device
        if isinstance(dev, SimulatedOpuDevice):
            dev = copy.deepcopy(dev)  # the parameter stays as given
        return map_opu(self.n_components, self.opu, self.simulated, self.max_n_features, dev,
                       stacklevel=4)

    def _check_x(self, X: Any, reset: bool) -> np.ndarray:
        if self.ndims not in (1, 2):
            raise ConfigurationError(f"Number of input dimensions must be 1 or 2, got {self.ndims}")
        dtype = None if self.packed else "numeric"
        return validate_data(
            self, X, reset=reset, dtype=dtype, allow_nd=self.ndims == 2 and not self.packed
        )

    def fit(self, X: Any = None, y: Any = None, n_features: Any = None, packed: bool = False,
            online: bool = False) -> OPUMap:
        """Set the OPU up for X's vectors (or for n_features without X); returns self."""
        if self.verbose_level is not None and self.verbose_level >= 0:
            set_verbose_level(self.verbose_level)
        packed = packed or self.packed
        x = self._check_x(X, reset=True) if X is not None else None
        if x is not None and self.ndims == 2 and not packed and x.ndim != 3:
            raise ConfigurationError(f"ndims=2 needs input (n, height, width), got {x.shape}")
        opu = self._make_opu()
        nf = n_features if n_features is not None else (self.n_2d_features if packed else None)
        fit = opu.fit2d if self.ndims == 2 else opu.fit1d
        fit(x, n_features=nf, packed=packed, online=online)
        self.opu_ = opu
        return self

    def transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Random features of X (float32). Unlike lightonml, which fitted on X here, an unfitted
        OPUMap raises sklearn's NotFittedError (scikit-learn's rule)."""
        check_is_fitted(self)
        x = self._check_x(X, reset=False)
        if self.opu_.n_components != self.n_components:
            self.opu_.n_components = self.n_components
        run = self.opu_.linear_transform if self.linear else self.opu_.transform
        return np.asarray(run(x))

    def open(self) -> None:
        """Acquire the OPU's device."""
        if self.fitted:
            self.opu_.open()
        elif self.opu is not None:
            self.opu.open()

    def close(self) -> None:
        """Release the OPU's device."""
        if self.fitted:
            self.opu_.close()
        elif self.opu is not None:
            self.opu.close()
