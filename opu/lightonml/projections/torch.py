"""`lightonml.projections.torch.OPUMap`: the OPU as a torch.nn.Module (lightonml's parameters,
plus `opu_device` for the OPU it creates). The optical transform is not differentiable: outputs
are detached from the graph, float32, on the input's device."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from firmware_iface.errors import ConfigurationError

from .. import get_verbose_level, set_verbose_level
from ..internal.open_close import OpenCloseContext
from ..opu import OPU
from .common import map_opu


class OPUMap(OpenCloseContext, nn.Module):
    """forward(x) = opu.transform(x) (opu.linear_transform(x) with linear=True).

    n_components: output dimension; opu: an OPU to use, else one is created (simulated=True
    or a SimulatedOpuDevice needs max_n_features: common.map_opu); ndims: 1 or 2 (vectors or
    (height, width) matrices); packed / n_2d_features: bit-packed input; opu_device: device of
    the created OPU (extension). The first forward fits on its batch if fit was not called
    (lightonml's behaviour)."""

    def __init__(
        self,
        n_components: int,
        opu: OPU | None = None,
        ndims: int = 1,
        n_2d_features: Any = None,
        packed: bool = False,
        simulated: bool = False,
        max_n_features: int | None = None,
        verbose_level: int = -1,
        linear: bool = False,
        opu_device: Any = None,
    ) -> None:
        super().__init__()
        if verbose_level >= 0:
            set_verbose_level(verbose_level)
        self.verbose_level = get_verbose_level()
        if ndims not in (1, 2):
            raise ConfigurationError(f"Number of input dimensions must be 1 or 2, got {ndims}")
        opu = map_opu(n_components, opu, simulated, max_n_features, opu_device)
        self.opu = opu
        self.ndims = ndims
        self.n_2d_features = n_2d_features
        self.packed = packed
        self.simulated = opu.simulated
        self.linear = linear
        self.max_n_features = max_n_features
        self.fitted = False
        self.online = False
        if self.verbose_level >= 1:
            print("OPU output is detached from the computational graph.")

    @property
    def n_components(self) -> int:
        return self.opu.n_components

    @n_components.setter
    def n_components(self, value: int) -> None:
        self.opu.n_components = value

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Random features of input (batch + (n_components,)), detached."""
        if not self.fitted:
            if self.verbose_level >= 1:
                print("OPUMap was not fit to data. Performing fit on the first batch with "
                      "default parameters...")
            self.fit(input)
        run = self.opu.linear_transform if self.linear else self.opu.transform
        with torch.no_grad():
            if self.online:
                return torch.stack([run(v) for v in input]).detach()
            return run(input).detach()

    def reset_parameters(self, input: Any, y: Any, n_features: Any, packed: bool,
                         online: bool) -> None:
        """fit1d / fit2d the OPU for input (or n_features)."""
        self.online = bool(online)
        packed = packed or self.packed
        if n_features is None and packed and self.ndims == 2:
            n_features = self.n_2d_features
        fit = self.opu.fit2d if self.ndims == 2 else self.opu.fit1d
        fit(input, n_features=n_features, packed=packed, online=self.online)
        self.fitted = True

    def fit(self, X: Any = None, y: Any = None, n_features: Any = None, packed: bool = False,
            online: bool = False) -> OPUMap:
        """Set the OPU up for X's vectors (or n_features); returns self."""
        self.reset_parameters(X, y, n_features, packed, online)
        return self

    def extra_repr(self) -> str:
        return (f"out_features={self.n_components}, n_dims={self.ndims}, packed={self.packed}, "
                f"simulated={self.simulated}, linear={self.linear}")

    def open(self) -> None:
        self.opu.open()

    def close(self) -> None:
        self.opu.close()
