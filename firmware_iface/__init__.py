"""Low-level OPU stack: wire-protocol codecs, transports and drivers for the DMD controller
(TI DLPC900 over USB HID), the camera (USB bulk) and the FPGA timing board (UART).

Never imports `opu_sim`: emulators are reached through the transports (a pyusb backend object,
a pyserial URL scheme)."""
