"""pyusb backend exposing one CameraEmulator as a USB device: descriptors (device, configuration
with the interface association descriptor, the two USB3 Vision interfaces with the device info
descriptor, bulk endpoints), string descriptors, and bulk transfers to the emulator.

Pass `CameraBackend(emulator)` to usb.core.find(backend=...): the unchanged host driver then
reaches the emulator.
"""

from __future__ import annotations

import array
import errno
import struct
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

import usb.backend
import usb.core

from firmware_iface.camera import usb_layout as L
from firmware_iface.errors import ConfigurationError

if TYPE_CHECKING:
    from .camera import CameraEmulator

_LIBUSB_ERROR_NO_DEVICE = -4
_LIBUSB_ERROR_TIMEOUT = -7
_LIBUSB_ERROR_OVERFLOW = -8
_LIBUSB_ERROR_PIPE = -9
_LIBUSB_ERROR_INVALID_PARAM = -2
#: string descriptor indexes: manufacturer, product, serial, device GUID, model, family,
#: device version, manufacturer info
STRINGS = {1: "vendor", 2: "model", 3: "serial", 4: "guid", 5: "family", 6: "version", 7: "info"}
DEVICE_INFO = L.DeviceInfoDescriptor(
    gencp_version=0x00010000,
    u3v_version=0x00010000,
    string_indexes=(4, 1, 2, 5, 6, 7, 3, 0),
    speed_support=L.SPEED_SUPER,
)


def usb_error(message: str, err: int, code: int) -> usb.core.USBError:
    """The pyusb exception a libusb backend raises for libusb error `code` (errno `err`)."""
    if code == _LIBUSB_ERROR_TIMEOUT:
        return usb.core.USBTimeoutError(message, code, err)
    return usb.core.USBError(message, code, err)


def no_device() -> usb.core.USBError:
    """The error of a transfer to a vanished device."""
    return usb_error(
        "No such device (it may have been disconnected)", errno.ENODEV, _LIBUSB_ERROR_NO_DEVICE
    )


def timed_out(why: str = "") -> usb.core.USBError:
    """The error of a transfer that timed out."""
    return usb_error(f"Operation timed out{why}", errno.ETIMEDOUT, _LIBUSB_ERROR_TIMEOUT)


def overflow(message: str) -> usb.core.USBError:
    """The error of a transfer that received more than its buffer holds (babble)."""
    return usb_error(message, errno.EOVERFLOW, _LIBUSB_ERROR_OVERFLOW)


def bad_endpoint(message: str) -> usb.core.USBError:
    """The error of a transfer to an endpoint the device does not have."""
    return usb_error(message, errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM)


def _Descriptor(fields: dict) -> SimpleNamespace:  # noqa: N802 - stands in for a descriptor type
    """Attribute bag standing in for a USB descriptor."""
    return SimpleNamespace(**fields)


@dataclass
class _Handle:
    device: CameraEmulator
    claimed: set[int] = field(default_factory=set)


_INTERFACES = (
    (L.CONTROL_INTERFACE, L.PROTOCOL_CONTROL, (L.EP_CONTROL_OUT, L.EP_CONTROL_IN)),
    (L.STREAM_INTERFACE, L.PROTOCOL_STREAM, (L.EP_STREAM_IN,)),
)


class CameraBackend(usb.backend.IBackend):
    """pyusb backend exposing one CameraEmulator as a USB device (pass to usb.core.find)."""

    def __init__(self, emulator: CameraEmulator) -> None:
        super().__init__()
        from .camera import CameraEmulator  # noqa: PLC0415 - camera.py re-exports this class

        if not isinstance(emulator, CameraEmulator):
            raise ConfigurationError(
                f"CameraBackend needs a CameraEmulator, got {type(emulator).__name__}"
            )
        self.emulator = emulator
        self._configuration = 0

    def _alive(self, dev: CameraEmulator) -> None:
        if not dev.connected:
            raise no_device()

    def enumerate_devices(self):  # noqa: ANN201 - pyusb interface
        """The emulator, while connected."""
        if self.emulator.connected:
            yield self.emulator

    def get_parent(self, dev: CameraEmulator) -> None:
        """Root hub: no parent device."""
        return None

    def get_device_descriptor(self, dev: CameraEmulator) -> SimpleNamespace:
        """USB 3.0 device descriptor with the emulator's vendor/product ids."""
        return _Descriptor(
            dict(
                bLength=18,
                bDescriptorType=1,
                bcdUSB=0x0300,
                bDeviceClass=0xEF,
                bDeviceSubClass=0x02,
                bDeviceProtocol=0x01,
                bMaxPacketSize0=9,
                idVendor=dev.vendor_id,
                idProduct=dev.product_id,
                bcdDevice=0x0100,
                iManufacturer=1,
                iProduct=2,
                iSerialNumber=3,
                bNumConfigurations=1,
                address=1,
                bus=1,
                port_number=1,
                port_numbers=(1,),
                speed=4,
            )
        )

    def get_configuration_descriptor(self, dev: CameraEmulator, config: int) -> SimpleNamespace:
        """The single configuration (value 1) with two interfaces."""
        if config != 0:
            raise IndexError("the camera has one configuration")
        return _Descriptor(
            dict(
                bLength=9,
                bDescriptorType=2,
                wTotalLength=9 + 8 + 2 * 9 + L.DEVICE_INFO.size + 3 * 7,
                bNumInterfaces=2,
                bConfigurationValue=L.CONFIGURATION_VALUE,
                iConfiguration=0,
                bmAttributes=0x80,
                bMaxPower=112,
                # the interface association descriptor precedes the interfaces
                extra_descriptors=list(L.encode_iad(L.CONTROL_INTERFACE, 2)),
            )
        )

    def get_interface_descriptor(
        self, dev: CameraEmulator, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """U3V control (0) and streaming (1) interfaces, no alternate settings."""
        if config != 0 or alt != 0 or not 0 <= intf < len(_INTERFACES):
            raise IndexError(f"no interface {intf} alt {alt} in configuration {config}")
        number, protocol, eps = _INTERFACES[intf]
        return _Descriptor(
            dict(
                bLength=9,
                bDescriptorType=4,
                bInterfaceNumber=number,
                bAlternateSetting=0,
                bNumEndpoints=len(eps),
                bInterfaceClass=L.U3V_INTERFACE_CLASS,
                bInterfaceSubClass=L.U3V_INTERFACE_SUBCLASS,
                bInterfaceProtocol=protocol,
                iInterface=0,
                extra_descriptors=(
                    list(L.encode_device_info(DEVICE_INFO)) if number == L.CONTROL_INTERFACE else []
                ),
            )
        )

    def get_endpoint_descriptor(
        self, dev: CameraEmulator, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """Bulk endpoints of the interface."""
        if config != 0 or alt != 0 or not 0 <= intf < len(_INTERFACES):
            raise IndexError(f"no interface {intf} alt {alt} in configuration {config}")
        eps = _INTERFACES[intf][2]
        if not 0 <= ep < len(eps):
            raise IndexError(f"no endpoint {ep} on interface {intf}")
        return _Descriptor(
            dict(
                bLength=7,
                bDescriptorType=5,
                bEndpointAddress=eps[ep],
                bmAttributes=0x02,
                wMaxPacketSize=L.MAX_PACKET_SIZE,
                bInterval=0,
                bRefresh=0,
                bSynchAddress=0,
                extra_descriptors=[],
            )
        )

    def open_device(self, dev: CameraEmulator) -> _Handle:
        """A handle on the emulated device."""
        self._alive(dev)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        """Forget the handle's claims."""
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        """Select configuration 1 (or 0, unconfigured)."""
        self._alive(dev_handle.device)
        if config_value not in (0, L.CONFIGURATION_VALUE):
            raise usb_error(
                f"no configuration {config_value}", errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM
            )
        self._configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        """The active configuration value."""
        self._alive(dev_handle.device)
        return self._configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        """Only alternate setting 0 exists."""
        if altsetting != 0:
            raise usb_error(
                f"no alternate setting {altsetting}", errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM
            )

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Claim interface 0 or 1."""
        self._alive(dev_handle.device)
        if intf not in (L.CONTROL_INTERFACE, L.STREAM_INTERFACE):
            raise usb_error(f"no interface {intf}", errno.ENOENT, -5)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Release a claimed interface."""
        dev_handle.claimed.discard(intf)

    def _require(self, dev_handle: _Handle, intf: int) -> None:
        if self._configuration != L.CONFIGURATION_VALUE:
            raise usb_error("device is not configured", errno.EIO, -1)
        if intf not in dev_handle.claimed:
            raise usb_error(f"interface {intf} is not claimed", errno.EBUSY, -6)

    def bulk_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array.array, timeout: int
    ) -> int:
        """Command transfer to the control OUT endpoint."""
        self._alive(dev_handle.device)
        self._require(dev_handle, intf)
        return dev_handle.device.bulk_out(ep, bytes(data))

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array, timeout: int
    ) -> int:
        """Acknowledge or stream transfer into `buff`."""
        self._alive(dev_handle.device)
        self._require(dev_handle, intf)
        return dev_handle.device.bulk_in(ep, buff, timeout)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array,
        timeout: int,
    ) -> int | array.array:
        """Standard GET_DESCRIPTOR(string) only (manufacturer, product, serial); else stalls."""
        self._alive(dev_handle.device)
        if bmRequestType == 0x80 and bRequest == 0x06 and (wValue >> 8) == 0x03:
            index = wValue & 0xFF
            if index == 0:
                body = struct.pack("<H", 0x0409)
            else:
                texts = dev_handle.device.usb_strings()
                if index not in texts:
                    raise usb_error("Pipe error", errno.EPIPE, _LIBUSB_ERROR_PIPE)
                body = texts[index].encode("utf-16-le")
            desc = bytes([2 + len(body), 0x03]) + body
            n = min(len(desc), len(data))
            memoryview(data).cast("B")[:n] = desc[:n]
            return n
        raise usb_error("Pipe error (request not supported)", errno.EPIPE, _LIBUSB_ERROR_PIPE)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        """Nothing halts in the emulator."""

    def reset_device(self, dev_handle: _Handle) -> None:
        """No-op: the emulator keeps its state across a reset."""

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        """No kernel driver binds an emulated device."""
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """No-op."""

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """No-op."""
