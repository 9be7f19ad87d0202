"""OPU user API: `OPU(...).project(x, mode="linear" | "intensity")`.

Imports without torch; torch tensors are accepted (and returned) when torch is installed.
The DFA layer lives in `opu.dfa` (needs torch)."""

from firmware_iface import kernel_cache as _kernel_cache
from firmware_iface import threads as _threads  # noqa: F401  (starts Numba's pool politely)
from firmware_iface.errors import (
    CalibrationError,
    ConfigurationError,
    DeviceError,
    InputError,
    OPUError,
)

from .device import MODES, OPU

# before any cached Numba kernel of this package runs (they load from the cache at first call)
_kernel_cache.refresh(__path__[0])

__all__ = [
    "OPU",
    "MODES",
    "OPUError",
    "InputError",
    "ConfigurationError",
    "CalibrationError",
    "DeviceError",
]
