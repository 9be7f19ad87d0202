"""pyusb bulk transport of the camera: finds the device, claims its control and stream interfaces,
moves bytes, and turns USB failures into the stack's typed errors.

The backend is pyusb's choice (libusb1, ...) unless one is passed: an emulator's backend object
(opu_sim.emulators.camera.CameraBackend) makes the same code talk to the emulated device.
"""

from __future__ import annotations

import array

import usb.core
import usb.util

from ..errors import (  # noqa: F401 - UsbTransferError: its old import path
    CodecError,
    DeviceDisconnectedError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    UsbTransferError,
)
from ..usb_errors import usb_errors
from . import usb_layout as L


def _check_timeout(timeout_ms: int) -> int:
    # pyusb treats 0 as "wait forever": never pass it
    t = int(timeout_ms)
    if t < 1:
        raise DeviceTimeoutError("no time left for the camera transfer")
    return t


class UsbCameraTransport:
    """Open USB3 Vision camera: control OUT/IN and stream IN bulk endpoints. `device_info` is
    its USB3 Vision device info descriptor (usb_layout.DeviceInfoDescriptor; None if absent).

    Raises DeviceNotFoundError when no device has these ids (or no USB backend exists).
    """

    def __init__(
        self,
        backend: object | None = None,
        vendor_id: int = L.DEFAULT_VENDOR_ID,
        product_id: int = L.DEFAULT_PRODUCT_ID,
    ) -> None:
        try:
            dev = usb.core.find(idVendor=vendor_id, idProduct=product_id, backend=backend)
        except usb.core.NoBackendError as e:
            raise DeviceNotFoundError(
                "no USB backend available (install libusb-1.0) to look for the camera "
                f"{vendor_id:04x}:{product_id:04x}"
            ) from e
        if dev is None:
            raise DeviceNotFoundError(
                f"no camera with USB ids {vendor_id:04x}:{product_id:04x}; check that it is "
                "plugged in and powered, and the ids (lsusb)"
            )
        self._dev = dev
        self._claimed: list[int] = []
        with usb_errors("camera", "open"):
            for intf in (L.CONTROL_INTERFACE, L.STREAM_INTERFACE):
                try:
                    if dev.is_kernel_driver_active(intf):
                        dev.detach_kernel_driver(intf)
                except NotImplementedError:
                    pass  # backends without kernel drivers (Windows, emulators)
            dev.set_configuration(L.CONFIGURATION_VALUE)
            control, stream = self._u3v_interfaces(dev.get_active_configuration())
            if control is None or stream is None:
                raise DeviceNotFoundError(
                    f"USB device {vendor_id:04x}:{product_id:04x} has no USB3 Vision control and "
                    "stream interfaces; is it the camera?"
                )
            try:
                self.device_info = L.find_device_info(bytes(control.extra_descriptors or b""))
            except CodecError:
                self.device_info = None  # a damaged class descriptor: the bootstrap still works
            self._ep_out = self._endpoint(control, usb.util.ENDPOINT_OUT)
            self._ep_in = self._endpoint(control, usb.util.ENDPOINT_IN)
            self._ep_stream = self._endpoint(stream, usb.util.ENDPOINT_IN)
            for intf in (control, stream):
                usb.util.claim_interface(dev, intf.bInterfaceNumber)
                self._claimed.append(intf.bInterfaceNumber)

    @staticmethod
    def _u3v_interfaces(cfg: object) -> tuple[object | None, object | None]:
        """(control, stream) USB3 Vision interfaces of a configuration (None when missing)."""
        found: dict[int, object] = {}
        for intf in cfg:
            if (intf.bInterfaceClass, intf.bInterfaceSubClass) == (
                L.U3V_INTERFACE_CLASS,
                L.U3V_INTERFACE_SUBCLASS,
            ):
                found.setdefault(intf.bInterfaceProtocol, intf)
        return found.get(L.PROTOCOL_CONTROL), found.get(L.PROTOCOL_STREAM)

    @staticmethod
    def _endpoint(intf: object, direction: int) -> int:
        ep = usb.util.find_descriptor(
            intf,
            custom_match=lambda e: (
                usb.util.endpoint_direction(e.bEndpointAddress) == direction
                and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
            ),
        )
        if ep is None:
            raise DeviceNotFoundError(
                f"camera interface {intf.bInterfaceNumber} lacks a bulk "
                f"{'IN' if direction == usb.util.ENDPOINT_IN else 'OUT'} endpoint"
            )
        return int(ep.bEndpointAddress)

    def _device(self) -> usb.core.Device:
        if self._dev is None:
            raise DeviceDisconnectedError("camera transport is closed; open a new Camera")
        return self._dev

    def write_control(self, data: bytes, timeout_ms: int) -> None:
        """Send one command transfer. Typed errors on timeout, disconnect or short write."""
        with usb_errors("camera", "command write"):
            n = self._device().write(self._ep_out, data, _check_timeout(timeout_ms))
        if n != len(data):
            raise UsbTransferError(f"camera accepted {n} of {len(data)} command bytes")

    def read_control(self, max_size: int, timeout_ms: int) -> bytes:
        """Receive one acknowledge transfer of at most max_size bytes."""
        with usb_errors("camera", "acknowledge read"):
            return bytes(self._device().read(self._ep_in, max_size, _check_timeout(timeout_ms)))

    def read_stream(self, buffer: array.array, timeout_ms: int) -> int:
        """Receive one stream transfer into `buffer` (array('B')); returns the bytes received."""
        with usb_errors("camera", "stream read"):
            return int(self._device().read(self._ep_stream, buffer, _check_timeout(timeout_ms)))

    def close(self) -> None:
        """Release the interfaces and the device handle (errors of a vanished device ignored)."""
        dev, self._dev = self._dev, None
        if dev is None:
            return
        for i in self._claimed:
            try:
                usb.util.release_interface(dev, i)
            except (usb.core.USBError, NotImplementedError):
                pass
        self._claimed.clear()
        try:
            usb.util.dispose_resources(dev)
        except (usb.core.USBError, NotImplementedError):
            pass

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._dev is None
