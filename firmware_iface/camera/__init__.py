"""USB camera modelled on USB3 Vision: pixel formats (PFNC), register map (SFNC names), control
and stream codecs, pyusb bulk transport and the `Camera` driver. See docs/camera.md.

The driver names are loaded lazily, so the emulator (opu_sim) can import the codec modules
(`firmware_iface.camera.control`, ...) without importing the driver.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Camera": "driver",
    "CameraCommandError": "driver",
    "CameraProtocolError": "driver",
    "CameraStateError": "driver",
    "CameraStreamError": "driver",
    "CameraStreamTimeout": "driver",
    "FrameReadout": "driver",
    "FrameStatus": "driver",
    "PixelFormat": "pixel_formats",
    "Status": "status",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
