"""pyusb backend exposing one CameraEmulator as a USB device, on the emulators' UsbDeviceBackend
base: a USB 3 device (class 0xEF/0x02/0x01: interface association), one configuration whose
interface association descriptor groups the two USB3 Vision interfaces (control with its
device info descriptor, stream), bulk endpoints of 1024-byte packets, and the string
descriptors the device info descriptor points to. Transfers go to the emulator.

Pass `CameraBackend(emulator)` to usb.core.find(backend=...): the unchanged host driver then
reaches the emulator.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from firmware_iface.camera import usb_layout as L
from firmware_iface.errors import ConfigurationError
from firmware_iface.usb_errors import (
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_OVERFLOW,
    LIBUSB_ERROR_PIPE,
    LIBUSB_ERROR_TIMEOUT,
    usb_error,
)

from .usb_device import UsbDeviceBackend, UsbEndpoint, UsbInterface, UsbLayout

if TYPE_CHECKING:
    import usb.core

    from .camera import CameraEmulator

_BULK = 2
#: the device info descriptor; string indexes: GUID 4, vendor 1, model 2, family 5,
#: device version 6, manufacturer info 7, serial number 3, no user defined name
DEVICE_INFO = L.DeviceInfoDescriptor(
    gencp_version=0x00010000,
    u3v_version=0x00010000,
    string_indexes=(4, 1, 2, 5, 6, 7, 3, 0),
    speed_support=L.SPEED_SUPER,
)
_INTERFACES = (
    UsbInterface(L.CONTROL_INTERFACE, L.U3V_INTERFACE_CLASS, L.U3V_INTERFACE_SUBCLASS,
                 L.PROTOCOL_CONTROL, (UsbEndpoint(L.EP_CONTROL_OUT, _BULK, L.MAX_PACKET_SIZE),
                                      UsbEndpoint(L.EP_CONTROL_IN, _BULK, L.MAX_PACKET_SIZE))),
    UsbInterface(L.STREAM_INTERFACE, L.U3V_INTERFACE_CLASS, L.U3V_INTERFACE_SUBCLASS,
                 L.PROTOCOL_STREAM, (UsbEndpoint(L.EP_STREAM_IN, _BULK, L.MAX_PACKET_SIZE),)),
)


def no_device() -> usb.core.USBError:
    """The error of a transfer to a vanished device."""
    return usb_error(LIBUSB_ERROR_NO_DEVICE, "No such device (it may have been disconnected)")


def timed_out(why: str = "") -> usb.core.USBError:
    """The error of a transfer that timed out."""
    return usb_error(LIBUSB_ERROR_TIMEOUT, f"Operation timed out{why}")


def overflow(message: str) -> usb.core.USBError:
    """The error of a transfer that received more than its buffer holds (babble)."""
    return usb_error(LIBUSB_ERROR_OVERFLOW, message)


def bad_endpoint(message: str) -> usb.core.USBError:
    """The error of a transfer to an endpoint the device does not have."""
    return usb_error(LIBUSB_ERROR_PIPE, f"Pipe error ({message})")


class CameraBackend(UsbDeviceBackend):
    """pyusb backend exposing one CameraEmulator as a USB device (pass to usb.core.find)."""

    def __init__(self, emulator: CameraEmulator) -> None:
        from .camera import CameraEmulator  # noqa: PLC0415 - camera.py re-exports this class

        if not isinstance(emulator, CameraEmulator):
            raise ConfigurationError(
                f"CameraBackend needs a CameraEmulator, got {type(emulator).__name__}"
            )
        super().__init__(
            UsbLayout(
                vendor_id=emulator.vendor_id,
                product_id=emulator.product_id,
                interfaces=_INTERFACES,
                bcd_usb=0x0300,
                device_class=(0xEF, 0x02, 0x01),
                max_packet_size0=9,
                speed=4,
                max_power=112,
                strings=emulator.usb_strings(),
            )
        )
        self.emulator = emulator

    @property
    def connected(self) -> bool:
        """False while the emulator's `disconnect` fault is set."""
        return self.emulator.connected

    def get_configuration_descriptor(self, dev: object, config: int) -> SimpleNamespace:
        """The configuration, with the interface association descriptor before the interfaces."""
        d = super().get_configuration_descriptor(dev, config)
        iad = L.encode_iad(L.CONTROL_INTERFACE, len(_INTERFACES))
        d.extra_descriptors = list(iad)
        d.wTotalLength += len(iad) + L.DEVICE_INFO.size
        return d

    def get_interface_descriptor(
        self, dev: object, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """An interface; the control interface carries the USB3 Vision device info descriptor."""
        d = super().get_interface_descriptor(dev, intf, alt, config)
        if d.bInterfaceNumber == L.CONTROL_INTERFACE:
            d.extra_descriptors = list(L.encode_device_info(DEVICE_INFO))
        return d

    def _do_write(self, ep: int, data: bytes, timeout_ms: int) -> int:
        return self.emulator.bulk_out(ep, data)

    def _do_read(self, ep: int, size: int, timeout_ms: int) -> bytes:
        return self.emulator.bulk_read(ep, size, timeout_ms)
