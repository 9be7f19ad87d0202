"""Low-level OPU stack: wire-protocol codecs, transports and drivers for the DMD controller
(TI DLPC900 over USB HID), the camera (USB bulk) and the FPGA timing board (UART).

Never imports `opu_sim`: emulators are reached through the transports (a pyusb backend object,
a pyserial URL scheme)."""

from . import kernel_cache as _kernel_cache

_kernel_cache.refresh(__path__[0])  # before any cached Numba kernel of this package loads
