"""The simulated OPU (physics, device profiles, device-side emulators)."""

from firmware_iface import kernel_cache as _kernel_cache
from firmware_iface import threads as _threads  # noqa: F401  (starts Numba's pool politely)

_kernel_cache.refresh(__path__[0])  # before any cached Numba kernel of this package loads
