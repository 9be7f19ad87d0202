"""Open the camera a hardware config names: the U3V driver over pyusb ("u3v", the default) or
the GenTL backend over a vendor's producer ("gentl")."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigurationError
from .driver import Camera
from .gentl import GenTLCamera

BACKENDS = ("u3v", "gentl")


def open_camera(
    backend: str = "u3v",
    *,
    usb_backend: object | None = None,
    vendor_id: int | None = None,
    product_id: int | None = None,
    timeout_ms: int = 1000,
    retries: int = 3,
    producer: str | Path | None = None,
    serial: str | None = None,
) -> Camera | GenTLCamera:
    """A camera through `backend`: "u3v" finds the USB ids through pyusb (`usb_backend`: None =
    system libusb, or an emulator's backend object); "gentl" loads the .cti `producer` and opens
    the camera with `serial` (None: the only one it lists)."""
    if backend == "u3v":
        ids = {k: v for k, v in (("vendor_id", vendor_id), ("product_id", product_id)) if v}
        return Camera(usb_backend, timeout_ms=timeout_ms, retries=retries, **ids)
    if backend == "gentl":
        if not producer:
            raise ConfigurationError(
                'camera.backend "gentl" needs camera.gentl_producer: the path of the vendor\'s '
                ".cti file"
            )
        return GenTLCamera(producer, serial, timeout_ms=timeout_ms)
    raise ConfigurationError(f"camera.backend must be one of {BACKENDS}, got {backend!r}")
