"""pyusb backend object in front of a DLPC900Emulator, on the shared USB-device emulator base
(opu_sim.emulators.usb_device): the unchanged DLPC900 driver reaches the emulator through
usb.core.find(backend=DLPC900Backend(emulator)). VID 0x0451, PID 0xC900, one HID interface with
interrupt endpoints 0x01 OUT and 0x81 IN, 64-byte packets, polled every 1 ms (full speed). The
emulator's fault plan (timeouts, disconnects) applies to transfers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_iface.dlpc900.report import REPORT_SIZE
from firmware_iface.usb_errors import LIBUSB_ERROR_TIMEOUT, usb_error

from .usb_device import UsbDeviceBackend, UsbEndpoint, UsbInterface, UsbLayout

if TYPE_CHECKING:
    from .dlpc900 import DLPC900Emulator

EP_OUT, EP_IN = 0x01, 0x81
LAYOUT = UsbLayout(
    vendor_id=0x0451,
    product_id=0xC900,
    interfaces=(
        UsbInterface(0, 3, 0, 0, (UsbEndpoint(EP_IN, 3, REPORT_SIZE, interval=1),
                                  UsbEndpoint(EP_OUT, 3, REPORT_SIZE, interval=1))),
    ),
    strings={1: "Texas Instruments", 2: "DLPC900", 3: "EMU-DLPC900-0001"},
)


class DLPC900Backend(UsbDeviceBackend):
    """pyusb backend of a DLPC900Emulator (the HID kernel driver is bound until detached;
    reconnecting binds it again)."""

    EP_OUT = EP_OUT
    EP_IN = EP_IN

    def __init__(self, emulator: DLPC900Emulator) -> None:
        self.emulator = emulator
        super().__init__(LAYOUT, kernel_driver_active=True)

    @property
    def connected(self) -> bool:
        return self.emulator.connected

    @property
    def kernel_driver_active(self) -> bool:  # the emulator's flag: reconnect() binds it
        return self.emulator.kernel_driver_active

    @kernel_driver_active.setter
    def kernel_driver_active(self, value: bool) -> None:
        self.emulator.kernel_driver_active = bool(value)

    def _fault(self, direction: str) -> None:
        emu, f = self.emulator, self.emulator.faults
        if f.disconnect_after_reports is not None:
            if f.disconnect_after_reports <= 0:  # checked before counting: N transfers pass
                f.disconnect_after_reports = None
                f.fire("disconnect_after_reports")
                emu.disconnect()
                self.check_connected()
            else:
                f.disconnect_after_reports -= 1
        if f.usb_timeouts > 0 and f.timeout_direction in ("any", direction):
            if direction == "in" and not emu.pending_reports:
                return  # nothing to delay: the read times out on its own
            if f.take("usb_timeouts", skip="timeouts_after_reports"):
                if direction == "out":
                    emu.drop_partial_command()
                raise usb_error(LIBUSB_ERROR_TIMEOUT, "Operation timed out (injected)")

    def _do_write(self, ep: int, data: bytes, timeout_ms: int) -> int:
        self._fault("out")
        self.emulator.receive_report(data)
        return len(data)

    def _do_read(self, ep: int, size: int, timeout_ms: int) -> bytes:
        self._fault("in")
        report = self.emulator.next_report()
        if report is None:
            raise usb_error(LIBUSB_ERROR_TIMEOUT, "Operation timed out")
        return report[:size]
