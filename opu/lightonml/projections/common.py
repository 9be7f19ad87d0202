"""What the torch and the scikit-learn OPUMap share: the OPU a map uses (`map_opu`).

lightonml's two OPUMaps build their OPU the same way (lightonml/projections/torch.py and
sklearn.py, 1.4.3): a given `opu` is used as it is, with a warning when `simulated` says
otherwise; without one, simulated=True needs max_n_features (ValueError) and makes a simulated
OPU of that width, and otherwise the machine's OPU is opened. Here `opu_device` (an extension)
chooses the device of the created OPU: a SimulatedOpuDevice is a simulated OPU (max_n_features
needed, as for simulated=True), a device string ('sim', 'emu', 'hw:<config.json>') is the
machine's OPU (its width is the DMD's capacity, as for lightonml's hardware OPU); giving it with
simulated=True, or with `opu`, is a conflict (lightonml's OPU refuses simulated with opu_device).
"""

from __future__ import annotations

import warnings
from typing import Any

from firmware_iface.errors import ConfigurationError

from ..internal.simulated_device import SimulatedOpuDevice
from ..opu import OPU

__all__ = ["map_opu"]


def map_opu(n_components: int, opu: OPU | None, simulated: bool, max_n_features: int | None,
            opu_device: Any, stacklevel: int = 3) -> OPU:
    """The OPU an OPUMap with these parameters uses (`opu` itself, set to n_components, when
    given). Raises ConfigurationError (a ValueError) for simulated=True or a SimulatedOpuDevice
    without max_n_features, and for opu_device given with simulated=True or with opu."""
    if opu is not None:
        if opu_device is not None:
            raise ConfigurationError("opu and opu_device are conflicting: give one")
        if simulated != opu.simulated:
            warnings.warn(
                f"simulated={simulated} but the given OPU is "
                f"{'simulated' if opu.simulated else 'not simulated'}: using that OPU",
                stacklevel=stacklevel,
            )
        opu.n_components = n_components
        return opu
    if simulated and opu_device is not None:
        raise ConfigurationError("simulated=True and opu_device are conflicting: give one")
    sim_like = simulated or isinstance(opu_device, SimulatedOpuDevice)
    if sim_like and max_n_features is None:
        raise ConfigurationError(
            "When using simulated=True (or a SimulatedOpuDevice), you need to provide "
            "max_n_features."
        )
    kwargs = {"max_n_features": max_n_features} if sim_like else {}
    return OPU(n_components=n_components, opu_device=opu_device, simulated=simulated, **kwargs)
