"""One base for the emulators' pyusb backend objects: `UsbDeviceBackend`.

A pyusb backend (`usb.backend.IBackend`) is what `usb.core.find(backend=...)` talks to; an
emulator's backend makes the unchanged host driver reach an emulated device. What every such
backend does is written here once: descriptors from a declarative `UsbLayout`, enumeration while
the device is connected, configuration and interface claims, the kernel-driver flag, string
descriptors over GET_DESCRIPTOR, endpoint checks, and errors raised exactly as pyusb's libusb1
backend raises them (`firmware_iface.usb_errors.usb_error`, named LIBUSB_ERROR_* codes).

A device backend subclasses it, passes its layout and implements the data path:
`_do_write(ep, data, timeout_ms) -> int` and `_do_read(ep, size, timeout_ms) -> bytes`
(`connected` tells whether the device is plugged in). Bulk and interrupt transfers both land
there, after the endpoint and claim checks.
"""

from __future__ import annotations

import array
import struct
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import usb.backend

from firmware_iface.usb_errors import (
    LIBUSB_ERROR_BUSY,
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_NOT_FOUND,
    LIBUSB_ERROR_OVERFLOW,
    LIBUSB_ERROR_PIPE,
    usb_error,
)

__all__ = ["UsbEndpoint", "UsbHandle", "UsbInterface", "UsbLayout", "UsbDeviceBackend"]

_GET_DESCRIPTOR = 0x06
_STRING_DESCRIPTOR = 0x03
_LANGID_EN_US = 0x0409


@dataclass(frozen=True)
class UsbEndpoint:
    """One endpoint: address (bit 7 set = IN), transfer type (2 bulk, 3 interrupt), packet size."""

    address: int
    transfer_type: int
    max_packet_size: int
    interval: int = 0

    @property
    def is_in(self) -> bool:
        """True for a device-to-host endpoint."""
        return bool(self.address & 0x80)


@dataclass(frozen=True)
class UsbInterface:
    """One interface (alternate setting 0) of the single configuration."""

    number: int
    interface_class: int
    subclass: int
    protocol: int
    endpoints: tuple[UsbEndpoint, ...]


@dataclass(frozen=True)
class UsbLayout:
    """The descriptors of a device with one configuration. `strings` maps string-descriptor
    indices 1.. to text (1 manufacturer, 2 product, 3 serial number)."""

    vendor_id: int
    product_id: int
    interfaces: tuple[UsbInterface, ...]
    bcd_usb: int = 0x0200
    device_class: tuple[int, int, int] = (0, 0, 0)
    max_packet_size0: int = 64
    speed: int = 2
    configuration_value: int = 1
    max_power: int = 50
    strings: dict[int, str] = field(default_factory=dict)

    def endpoint(self, address: int) -> tuple[UsbInterface, UsbEndpoint] | None:
        """The interface and endpoint of an endpoint address, or None."""
        for intf in self.interfaces:
            for ep in intf.endpoints:
                if ep.address == address:
                    return intf, ep
        return None


@dataclass
class UsbHandle:
    """An open handle: the interfaces it has claimed."""

    claimed: set[int] = field(default_factory=set)


def descriptor(**fields: Any) -> SimpleNamespace:
    """Attribute bag standing in for a pyusb descriptor structure."""
    return SimpleNamespace(extra_descriptors=[], **fields)


class UsbDeviceBackend(usb.backend.IBackend):
    """pyusb backend of one emulated device (see the module docstring).

    kernel_driver_active: whether a kernel driver is bound to the interfaces at start (a HID
    device on Linux): claiming fails with LIBUSB_ERROR_BUSY until the host detaches it.
    """

    def __init__(self, layout: UsbLayout, *, kernel_driver_active: bool = False) -> None:
        super().__init__()
        self.layout = layout
        self.kernel_driver_active = kernel_driver_active
        self.configuration = 0
        self.transfers = 0
        self._device = object()  # opaque identity handed to pyusb

    # ---- what a device backend implements ------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the device is plugged in (subclasses: the emulator's state)."""
        return True

    def _do_write(self, ep: int, data: bytes, timeout_ms: int) -> int:
        """Host -> device transfer on `ep` (checked); returns the bytes accepted."""
        raise usb_error(LIBUSB_ERROR_PIPE, f"Pipe error (endpoint {ep:#04x} takes no data)")

    def _do_read(self, ep: int, size: int, timeout_ms: int) -> bytes:
        """Device -> host transfer on `ep` (checked) of at most `size` bytes."""
        raise usb_error(LIBUSB_ERROR_PIPE, f"Pipe error (endpoint {ep:#04x} sends no data)")

    # ---- errors ------------------------------------------------------------------------------
    def check_connected(self) -> None:
        """Raise what libusb raises for an unplugged device."""
        if not self.connected:
            raise usb_error(
                LIBUSB_ERROR_NO_DEVICE, "No such device (it may have been disconnected)"
            )

    # ---- enumeration and descriptors ----------------------------------------------------------
    def enumerate_devices(self):  # noqa: ANN201 - pyusb interface
        """The device, while connected."""
        if self.connected:
            yield self._device

    def get_parent(self, dev: object) -> None:
        """Root hub: no parent device."""
        return None

    def get_device_descriptor(self, dev: object) -> SimpleNamespace:
        """The device descriptor of the layout."""
        lay = self.layout
        cls, sub, proto = lay.device_class
        return descriptor(
            bLength=18, bDescriptorType=1, bcdUSB=lay.bcd_usb, bDeviceClass=cls,
            bDeviceSubClass=sub, bDeviceProtocol=proto, bMaxPacketSize0=lay.max_packet_size0,
            idVendor=lay.vendor_id, idProduct=lay.product_id, bcdDevice=0x0100,
            iManufacturer=1 if 1 in lay.strings else 0, iProduct=2 if 2 in lay.strings else 0,
            iSerialNumber=3 if 3 in lay.strings else 0, bNumConfigurations=1, address=1, bus=1,
            port_number=1, port_numbers=(1,), speed=lay.speed,
        )

    def get_configuration_descriptor(self, dev: object, config: int) -> SimpleNamespace:
        """The single configuration."""
        if config != 0:
            raise IndexError("the device has one configuration")
        lay = self.layout
        n_ep = sum(len(i.endpoints) for i in lay.interfaces)
        return descriptor(
            bLength=9, bDescriptorType=2, wTotalLength=9 + 9 * len(lay.interfaces) + 7 * n_ep,
            bNumInterfaces=len(lay.interfaces), bConfigurationValue=lay.configuration_value,
            iConfiguration=0, bmAttributes=0x80, bMaxPower=lay.max_power,
        )

    def _interface(self, intf: int, alt: int, config: int) -> UsbInterface:
        if config != 0 or alt != 0 or not 0 <= intf < len(self.layout.interfaces):
            raise IndexError(f"no interface {intf} alt {alt} in configuration {config}")
        return self.layout.interfaces[intf]

    def get_interface_descriptor(
        self, dev: object, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """Interface `intf` (alternate setting 0 only)."""
        i = self._interface(intf, alt, config)
        return descriptor(
            bLength=9, bDescriptorType=4, bInterfaceNumber=i.number, bAlternateSetting=0,
            bNumEndpoints=len(i.endpoints), bInterfaceClass=i.interface_class,
            bInterfaceSubClass=i.subclass, bInterfaceProtocol=i.protocol, iInterface=0,
        )

    def get_endpoint_descriptor(
        self, dev: object, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """Endpoint number `ep` (0-based) of interface `intf`."""
        i = self._interface(intf, alt, config)
        if not 0 <= ep < len(i.endpoints):
            raise IndexError(f"no endpoint {ep} on interface {intf}")
        e = i.endpoints[ep]
        return descriptor(
            bLength=7, bDescriptorType=5, bEndpointAddress=e.address, bmAttributes=e.transfer_type,
            wMaxPacketSize=e.max_packet_size, bInterval=e.interval, bRefresh=0, bSynchAddress=0,
        )

    # ---- handles, configuration, claims ----------------------------------------------------------
    def open_device(self, dev: object) -> UsbHandle:
        """A handle on the device."""
        self.check_connected()
        return UsbHandle()

    def close_device(self, dev_handle: UsbHandle) -> None:
        """Forget the handle's claims."""
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle: UsbHandle, config_value: int) -> None:
        """Select the configuration (or 0, unconfigured)."""
        self.check_connected()
        if config_value not in (0, self.layout.configuration_value):
            raise usb_error(LIBUSB_ERROR_INVALID_PARAM, f"no configuration {config_value}")
        self.configuration = config_value

    def get_configuration(self, dev_handle: UsbHandle) -> int:
        """The active configuration value."""
        self.check_connected()
        return self.configuration

    def set_interface_altsetting(self, dev_handle: UsbHandle, intf: int, altsetting: int) -> None:
        """Only alternate setting 0 exists."""
        self.check_connected()
        if altsetting != 0:
            raise usb_error(LIBUSB_ERROR_INVALID_PARAM, f"no alternate setting {altsetting}")

    def claim_interface(self, dev_handle: UsbHandle, intf: int) -> None:
        """Claim an interface of the layout (refused while a kernel driver is bound)."""
        self.check_connected()
        if intf not in {i.number for i in self.layout.interfaces}:
            raise usb_error(LIBUSB_ERROR_NOT_FOUND, f"no interface {intf}")
        if self.kernel_driver_active:
            raise usb_error(LIBUSB_ERROR_BUSY, "Resource busy (a kernel driver is bound)")
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: UsbHandle, intf: int) -> None:
        """Release a claimed interface."""
        dev_handle.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: UsbHandle, intf: int) -> bool:
        """Whether a kernel driver is bound."""
        self.check_connected()
        return self.kernel_driver_active

    def detach_kernel_driver(self, dev_handle: UsbHandle, intf: int) -> None:
        """Unbind the kernel driver."""
        self.check_connected()
        self.kernel_driver_active = False

    def attach_kernel_driver(self, dev_handle: UsbHandle, intf: int) -> None:
        """Bind the kernel driver again."""
        self.check_connected()
        self.kernel_driver_active = True

    def clear_halt(self, dev_handle: UsbHandle, ep: int) -> None:
        """Nothing halts in an emulator."""
        self.check_connected()

    def reset_device(self, dev_handle: UsbHandle) -> None:
        """No-op: the emulator keeps its state across a reset."""
        self.check_connected()

    # ---- transfers ------------------------------------------------------------------------------
    def _check_endpoint(self, dev_handle: UsbHandle, ep: int, is_in: bool) -> None:
        self.check_connected()
        found = self.layout.endpoint(ep)
        if found is None or found[1].is_in != is_in:
            raise usb_error(
                LIBUSB_ERROR_PIPE,
                f"Pipe error (no {'IN' if is_in else 'OUT'} endpoint {ep:#04x})",
            )
        if self.configuration != self.layout.configuration_value:
            raise usb_error(LIBUSB_ERROR_IO, "device is not configured")
        if found[0].number not in dev_handle.claimed:
            raise usb_error(LIBUSB_ERROR_BUSY, f"interface {found[0].number} is not claimed")
        self.transfers += 1

    def _write(self, dev_handle: UsbHandle, ep: int, data: array.array, timeout: int) -> int:
        self._check_endpoint(dev_handle, ep, is_in=False)
        return self._do_write(ep, bytes(data), timeout)

    def _read(self, dev_handle: UsbHandle, ep: int, buff: array.array, timeout: int) -> int:
        self._check_endpoint(dev_handle, ep, is_in=True)
        size = len(buff) * buff.itemsize
        data = self._do_read(ep, size, timeout)
        if len(data) > size:
            raise usb_error(
                LIBUSB_ERROR_OVERFLOW,
                f"Overflow: {len(data)}-byte transfer into a {size}-byte buffer",
            )
        memoryview(buff).cast("B")[: len(data)] = data
        return len(data)

    def bulk_write(self, dev_handle: UsbHandle, ep: int, intf: int, data: array.array,
                   timeout: int) -> int:
        """Bulk OUT transfer."""
        return self._write(dev_handle, ep, data, timeout)

    def bulk_read(self, dev_handle: UsbHandle, ep: int, intf: int, buff: array.array,
                  timeout: int) -> int:
        """Bulk IN transfer into `buff`."""
        return self._read(dev_handle, ep, buff, timeout)

    def intr_write(self, dev_handle: UsbHandle, ep: int, intf: int, data: array.array,
                   timeout: int) -> int:
        """Interrupt OUT transfer."""
        return self._write(dev_handle, ep, data, timeout)

    def intr_read(self, dev_handle: UsbHandle, ep: int, intf: int, buff: array.array,
                  timeout: int) -> int:
        """Interrupt IN transfer into `buff`."""
        return self._read(dev_handle, ep, buff, timeout)

    def ctrl_transfer(self, dev_handle: UsbHandle, bmRequestType: int, bRequest: int,  # noqa: N803
                      wValue: int, wIndex: int, data: array.array, timeout: int) -> int:  # noqa: N803
        """Standard GET_DESCRIPTOR(string) only; any other request stalls (LIBUSB_ERROR_PIPE)."""
        self.check_connected()
        if bmRequestType == 0x80 and bRequest == _GET_DESCRIPTOR and (
            wValue >> 8
        ) == _STRING_DESCRIPTOR:
            index = wValue & 0xFF
            if index == 0:
                body = struct.pack("<H", _LANGID_EN_US)
            elif index in self.layout.strings:
                body = self.layout.strings[index].encode("utf-16-le")
            else:
                raise usb_error(LIBUSB_ERROR_PIPE, "Pipe error (no such string)")
            desc = bytes([2 + len(body), _STRING_DESCRIPTOR]) + body
            n = min(len(desc), len(data))
            memoryview(data).cast("B")[:n] = desc[:n]
            return n
        raise usb_error(LIBUSB_ERROR_PIPE, "Pipe error (request not supported)")
