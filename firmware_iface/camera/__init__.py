"""USB camera modelled on USB3 Vision: pixel formats (PFNC), register map (SFNC names), control
and stream codecs, pyusb bulk transport and the `Camera` driver. See docs/camera.md."""

from .driver import (
    Camera,
    CameraCommandError,
    CameraProtocolError,
    CameraStateError,
    CameraStreamError,
    CameraStreamTimeout,
    FrameReadout,
    FrameStatus,
)
from .pixel_formats import PixelFormat
from .status import Status

__all__ = [
    "Camera",
    "CameraCommandError",
    "CameraProtocolError",
    "CameraStateError",
    "CameraStreamError",
    "CameraStreamTimeout",
    "FrameReadout",
    "FrameStatus",
    "PixelFormat",
    "Status",
]
