"""pyusb transport for the DLPC900's HID interface: 64-byte interrupt reports on one OUT and
one IN endpoint (VID 0x0451, PID 0xC900). Maps pyusb errors to the stack's typed errors; holds
no protocol knowledge beyond the report size."""

from __future__ import annotations

import usb.core
import usb.util

from ..errors import (
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
)
from ..usb_errors import map_usb_error
from .report import REPORT_SIZE

VENDOR_ID = 0x0451
PRODUCT_ID = 0xC900


class HidTransport:
    """One opened DLPC900 HID interface.

    backend: a pyusb backend object (None = pyusb's default, libusb). timeout_ms: per-transfer
    timeout in milliseconds. Detaches the kernel HID driver where one is bound (Linux) and
    re-attaches it on close if it did.
    """

    def __init__(
        self,
        backend=None,
        timeout_ms: int = 1000,
        vendor_id: int = VENDOR_ID,
        product_id: int = PRODUCT_ID,
        interface: int = 0,
    ) -> None:
        if timeout_ms <= 0:
            raise DeviceError(f"timeout_ms must be > 0, got {timeout_ms}")
        self.timeout_ms = int(timeout_ms)
        self._interface = interface
        self.detached_kernel_driver = False
        try:
            dev = usb.core.find(idVendor=vendor_id, idProduct=product_id, backend=backend)
        except usb.core.NoBackendError as exc:
            raise DeviceNotFoundError(
                "no pyusb backend (libusb) available; install libusb or pass backend="
            ) from exc
        if dev is None:
            raise DeviceNotFoundError(
                f"no USB device {vendor_id:04X}:{product_id:04X} (DLPC900) found; check cable, "
                "power and permissions (udev rule for the device)"
            )
        self._dev = dev
        try:
            try:
                if dev.is_kernel_driver_active(interface):
                    dev.detach_kernel_driver(interface)
                    self.detached_kernel_driver = True
            except NotImplementedError:
                pass  # backends without kernel drivers (Windows, macOS)
            dev.set_configuration()
            usb.util.claim_interface(dev, interface)
            intf = dev.get_active_configuration()[(interface, 0)]
            self._ep_out = usb.util.find_descriptor(
                intf,
                custom_match=lambda e: usb.util.endpoint_direction(e.bEndpointAddress)
                == usb.util.ENDPOINT_OUT,
            )
            self._ep_in = usb.util.find_descriptor(
                intf,
                custom_match=lambda e: usb.util.endpoint_direction(e.bEndpointAddress)
                == usb.util.ENDPOINT_IN,
            )
        except usb.core.USBError as exc:
            raise map_usb_error(exc, "DLPC900", "opening") from exc
        if self._ep_out is None or self._ep_in is None:
            raise DeviceError("DLPC900 HID interface lacks an IN or OUT endpoint; wrong device?")
        self._open = True

    def write(self, report: bytes) -> None:
        """Send one 64-byte report (no report-id byte)."""
        if len(report) != REPORT_SIZE:
            raise DeviceError(f"DLPC900 reports are {REPORT_SIZE} bytes, got {len(report)}")
        self._check_open()
        try:
            n = self._ep_out.write(report, self.timeout_ms)
        except usb.core.USBError as exc:
            raise map_usb_error(exc, "DLPC900", "write") from exc
        if n != REPORT_SIZE:
            raise DeviceError(f"DLPC900 accepted {n} of {REPORT_SIZE} report bytes")

    def read(self) -> bytes:
        """Receive one 64-byte report."""
        self._check_open()
        try:
            data = self._ep_in.read(REPORT_SIZE, self.timeout_ms)
        except usb.core.USBError as exc:
            raise map_usb_error(exc, "DLPC900", "read") from exc
        if len(data) != REPORT_SIZE:
            raise DeviceError(f"DLPC900 sent a {len(data)}-byte report, expected {REPORT_SIZE}")
        return bytes(data)

    def close(self) -> None:
        """Release the interface (and give it back to the kernel driver); idempotent."""
        if not getattr(self, "_open", False):
            return
        self._open = False
        try:
            usb.util.release_interface(self._dev, self._interface)
            if self.detached_kernel_driver:
                self._dev.attach_kernel_driver(self._interface)
        except (usb.core.USBError, NotImplementedError):
            pass  # the device may be gone; nothing left to release
        finally:
            usb.util.dispose_resources(self._dev)

    def _check_open(self) -> None:
        if not self._open:
            raise DeviceDisconnectedError("DLPC900 transport is closed; open the driver again")
