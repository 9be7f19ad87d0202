"""The simulated OPU (physics, device profiles, device-side emulators)."""

from firmware_iface import threads as _threads  # noqa: F401  (starts Numba's pool politely)
