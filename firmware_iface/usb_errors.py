"""One map from pyusb errors to the stack's typed errors, for every USB device (camera, DMD).

pyusb raises `usb.core.USBError` with `.errno` (a POSIX errno) and `.backend_error_code` (the
backend's own code: a libusb `LIBUSB_ERROR_*` value with the libusb1 backend). The rule, the
same for every device:

- timeout: `USBTimeoutError`, errno ETIMEDOUT or LIBUSB_ERROR_TIMEOUT -> DeviceTimeoutError;
- gone: errno ENODEV, ENXIO or ESHUTDOWN, or LIBUSB_ERROR_NO_DEVICE -> DeviceDisconnectedError.
  libusb reports an unplugged device as LIBUSB_ERROR_NO_DEVICE (linux_usbfs.c turns usbfs'
  ENODEV and a transfer's -ESHUTDOWN into it); other backends pass ENXIO/ESHUTDOWN through;
- everything else (EIO included: libusb's LIBUSB_ERROR_IO is a bus-level transfer error such as
  -EPROTO/-EILSEQ on a live device) -> UsbTransferError, a DeviceError the driver may retry.

The `LIBUSB_ERROR_*` constants (libusb.h, `enum libusb_error`, as pyusb names them) are
importable from here, and
`usb_error(code, message)` builds the exception a libusb1 backend would raise for a code (the
errno pyusb derives from it, USBTimeoutError for a timeout), so emulators raise what real
backends raise without writing the numbers again.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

import usb.core
from usb.backend.libusb1 import (
    LIBUSB_ERROR_ACCESS,
    LIBUSB_ERROR_BUSY,
    LIBUSB_ERROR_INTERRUPTED,
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_NO_MEM,
    LIBUSB_ERROR_NOT_FOUND,
    LIBUSB_ERROR_NOT_SUPPORTED,
    LIBUSB_ERROR_OTHER,
    LIBUSB_ERROR_OVERFLOW,
    LIBUSB_ERROR_PIPE,
    LIBUSB_ERROR_TIMEOUT,
)

from .errors import DeviceDisconnectedError, DeviceError, DeviceTimeoutError, UsbTransferError

__all__ = [
    "LIBUSB_ERROR_ACCESS",
    "LIBUSB_ERROR_BUSY",
    "LIBUSB_ERROR_INTERRUPTED",
    "LIBUSB_ERROR_INVALID_PARAM",
    "LIBUSB_ERROR_IO",
    "LIBUSB_ERROR_NOT_FOUND",
    "LIBUSB_ERROR_NOT_SUPPORTED",
    "LIBUSB_ERROR_NO_DEVICE",
    "LIBUSB_ERROR_NO_MEM",
    "LIBUSB_ERROR_OTHER",
    "LIBUSB_ERROR_OVERFLOW",
    "LIBUSB_ERROR_PIPE",
    "LIBUSB_ERROR_TIMEOUT",
    "is_disconnect",
    "is_timeout",
    "map_usb_error",
    "usb_error",
    "usb_errors",
]

# the errno pyusb's libusb1 backend attaches to each libusb code (usb/backend/libusb1.py)
_ERRNO: dict[int, int | None] = {
    LIBUSB_ERROR_IO: errno.EIO,
    LIBUSB_ERROR_INVALID_PARAM: errno.EINVAL,
    LIBUSB_ERROR_ACCESS: errno.EACCES,
    LIBUSB_ERROR_NO_DEVICE: errno.ENODEV,
    LIBUSB_ERROR_NOT_FOUND: errno.ENOENT,
    LIBUSB_ERROR_BUSY: errno.EBUSY,
    LIBUSB_ERROR_TIMEOUT: errno.ETIMEDOUT,
    LIBUSB_ERROR_OVERFLOW: errno.EOVERFLOW,
    LIBUSB_ERROR_PIPE: errno.EPIPE,
    LIBUSB_ERROR_INTERRUPTED: errno.EINTR,
    LIBUSB_ERROR_NO_MEM: errno.ENOMEM,
    LIBUSB_ERROR_NOT_SUPPORTED: errno.ENOSYS,
    LIBUSB_ERROR_OTHER: None,
}
_GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN})


def usb_error(code: int, message: str) -> usb.core.USBError:
    """The pyusb exception a libusb1 backend raises for libusb error `code` (a LIBUSB_ERROR_*
    constant): USBTimeoutError for LIBUSB_ERROR_TIMEOUT, else USBError, with pyusb's errno."""
    if code not in _ERRNO:
        raise ValueError(f"{code} is not a libusb error code (LIBUSB_ERROR_*)")
    cls = usb.core.USBTimeoutError if code == LIBUSB_ERROR_TIMEOUT else usb.core.USBError
    return cls(message, code, _ERRNO.get(code))


def is_timeout(exc: usb.core.USBError) -> bool:
    """True if the pyusb error is a transfer timeout."""
    return (
        isinstance(exc, usb.core.USBTimeoutError)
        or exc.errno == errno.ETIMEDOUT
        or exc.backend_error_code == LIBUSB_ERROR_TIMEOUT
    )


def is_disconnect(exc: usb.core.USBError) -> bool:
    """True if the pyusb error says the device is gone."""
    return exc.errno in _GONE_ERRNOS or exc.backend_error_code == LIBUSB_ERROR_NO_DEVICE


def map_usb_error(exc: usb.core.USBError, device: str, what: str) -> DeviceError:
    """The typed error for a pyusb error raised while `device` (e.g. 'camera', 'DLPC900') was
    doing `what` (e.g. 'stream read'); raise it `from exc`."""
    if is_timeout(exc):
        return DeviceTimeoutError(
            f"{device} {what} timed out ({exc}); check the USB cable and power"
        )
    if is_disconnect(exc):
        return DeviceDisconnectedError(
            f"{device} vanished during {what} ({exc}); check the cable, then open the "
            f"{device} again"
        )
    return UsbTransferError(f"{device} {what} failed: {exc}")


@contextmanager
def usb_errors(device: str, what: str) -> Iterator[None]:
    """Inside the block, pyusb errors are raised as map_usb_error's typed errors."""
    try:
        yield
    except usb.core.USBError as exc:
        raise map_usb_error(exc, device, what) from exc
