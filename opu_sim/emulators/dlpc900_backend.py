"""pyusb backend object in front of a DLPC900Emulator: the unchanged DLPC900 driver reaches the
emulator through usb.core.find(backend=DLPC900Backend(emulator)). Applies the emulator's fault
settings (timeouts, disconnects) to transfers.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import usb.backend
import usb.core

from firmware_iface.dlpc900.report import REPORT_SIZE

if TYPE_CHECKING:
    from .dlpc900 import DLPC900Emulator


class _Desc:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


class _DevId:
    """Opaque device identity handed to pyusb."""


_STRINGS = {1: "Texas Instruments", 2: "DLPC900", 3: "EMU-DLPC900-0001"}


class DLPC900Backend(usb.backend.IBackend):
    """pyusb backend object in front of a DLPC900Emulator (VID 0x0451, PID 0xC900; one HID
    interface with interrupt endpoints 0x01 OUT and 0x81 IN, 64-byte packets). Applies the
    emulator's fault settings to transfers."""

    EP_OUT = 0x01
    EP_IN = 0x81

    def __init__(self, emulator: DLPC900Emulator) -> None:
        self.emulator = emulator
        self._dev = _DevId()
        self.transfers = 0

    def enumerate_devices(self):
        if self.emulator.connected:
            yield self._dev

    def get_device_descriptor(self, dev):
        return _Desc(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=0x0451, idProduct=0xC900,
            bcdDevice=0x0100, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1, address=1, bus=1, port_number=1, port_numbers=(1,), speed=2,
        )

    def get_configuration_descriptor(self, dev, config):
        return _Desc(
            bLength=9, bDescriptorType=2, wTotalLength=41, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80, bMaxPower=50,
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev, intf, alt, config):
        return _Desc(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=2, bInterfaceClass=3, bInterfaceSubClass=0, bInterfaceProtocol=0,
            iInterface=0, extra_descriptors=[],
        )

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        address = (self.EP_IN, self.EP_OUT)[ep]
        return _Desc(
            bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=3,
            wMaxPacketSize=REPORT_SIZE, bInterval=1, bRefresh=0, bSynchAddress=0,
            extra_descriptors=[],
        )

    def _check_connected(self) -> None:
        if not self.emulator.connected:
            raise usb.core.USBError(
                "No such device (it may have been disconnected)", -4, errno.ENODEV
            )

    def open_device(self, dev):
        self._check_connected()
        return _DevId()

    def close_device(self, dev_handle):
        pass

    def set_configuration(self, dev_handle, config_value):
        self._check_connected()

    def get_configuration(self, dev_handle):
        self._check_connected()
        return 1

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        self._check_connected()

    def claim_interface(self, dev_handle, intf):
        self._check_connected()
        if self.emulator.kernel_driver_active:
            raise usb.core.USBError("Resource busy (kernel HID driver bound)", -6, errno.EBUSY)

    def release_interface(self, dev_handle, intf):
        pass

    def is_kernel_driver_active(self, dev_handle, intf):
        self._check_connected()
        return self.emulator.kernel_driver_active

    def detach_kernel_driver(self, dev_handle, intf):
        self._check_connected()
        self.emulator.kernel_driver_active = False

    def attach_kernel_driver(self, dev_handle, intf):
        self._check_connected()
        self.emulator.kernel_driver_active = True

    def clear_halt(self, dev_handle, ep):
        self._check_connected()

    def reset_device(self, dev_handle):
        self._check_connected()

    def _fault(self, direction: str) -> None:
        emu, f = self.emulator, self.emulator.faults
        self._check_connected()
        self.transfers += 1
        if f.disconnect_after_reports is not None:
            if f.disconnect_after_reports <= 0:
                emu.disconnect()
                self._check_connected()
            f.disconnect_after_reports -= 1
        if f.usb_timeouts > 0 and f.timeout_direction in ("any", direction):
            if direction == "in" and not emu.pending_reports:
                return  # nothing to delay: the read times out on its own
            if f.timeouts_after_reports > 0:
                f.timeouts_after_reports -= 1
                return
            f.usb_timeouts -= 1
            if direction == "out":
                emu.drop_partial_command()
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)

    def intr_write(self, dev_handle, ep, intf, data, timeout):
        if ep != self.EP_OUT:
            raise usb.core.USBError("Pipe error (no such OUT endpoint)", -9, errno.EPIPE)
        self._fault("out")
        self.emulator.receive_report(bytes(data))
        return len(data)

    def intr_read(self, dev_handle, ep, intf, buff, timeout):
        if ep != self.EP_IN:
            raise usb.core.USBError("Pipe error (no such IN endpoint)", -9, errno.EPIPE)
        self._fault("in")
        report = self.emulator.next_report()
        if report is None:
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
        n = min(len(buff), len(report))
        buff[:n] = type(buff)(buff.typecode, report[:n])
        return n

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        self._check_connected()
        if bmRequestType == 0x80 and bRequest == 6 and wValue >> 8 == 3:
            index = wValue & 0xFF
            if index == 0:
                raw = bytes([4, 3, 0x09, 0x04])
            elif index in _STRINGS:
                text = _STRINGS[index].encode("utf-16-le")
                raw = bytes([2 + len(text), 3]) + text
            else:
                raise usb.core.USBError("Pipe error (no such string)", -9, errno.EPIPE)
            n = min(len(data), len(raw))
            data[:n] = type(data)(data.typecode, raw[:n])
            return n
        raise usb.core.USBError("Pipe error (request not supported)", -9, errno.EPIPE)
