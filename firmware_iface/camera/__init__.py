"""USB3 Vision cameras: pixel formats (PFNC), bootstrap / manifest / control / stream codecs,
pyusb bulk transport, GenICam features through GenApi, and the `Camera` driver; any GenICam
camera through its vendor's GenTL producer (`GenTLCamera`, harvesters). See docs/camera.md.

The driver names are loaded lazily, so the emulator (opu_sim) can import the codec modules
(`firmware_iface.camera.control`, ...) without importing the driver.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import (  # noqa: F401 - re-exported (see __all__)
    CameraCommandError,
    CameraProtocolError,
    CameraStateError,
    CameraStreamError,
    CameraStreamTimeout,
)

_LAZY = {
    "Camera": "driver",
    "GenTLCamera": "gentl",
    "open_camera": "select",
    "Features": "features",
    "FrameReadout": "readout",
    "FrameStatus": "readout",
    "PixelFormat": "pixel_formats",
    "Status": "status",
}

__all__ = [  # noqa: PLE0604 - lazy names
    "Camera",
    "CameraCommandError",
    "CameraProtocolError",
    "CameraStateError",
    "CameraStreamError",
    "CameraStreamTimeout",
    "Features",
    "FrameReadout",
    "FrameStatus",
    "GenTLCamera",
    "PixelFormat",
    "Status",
    "open_camera",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
