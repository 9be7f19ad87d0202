"""Exceptions of the camera drivers (U3V and GenTL), in the hierarchy of firmware_iface.errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError, DeviceError, DeviceTimeoutError, FrameIntegrityError

if TYPE_CHECKING:
    from .readout import FrameReadout


class CameraCommandError(DeviceError):
    """The camera refused a register read or write. `status` is the acknowledge's status code,
    `feature` the GenICam feature being accessed (None for raw register access)."""

    def __init__(self, message: str, status: int, feature: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.feature = feature


class CameraProtocolError(DeviceError):
    """The camera answered with bytes that do not fit the protocol (control channel, bootstrap
    registers, manifest or GenICam file)."""


class CameraStreamError(FrameIntegrityError):
    """The image stream does not match the camera's configuration (format, ROI, padding)."""


class CameraStateError(ConfigurationError):
    """The call does not fit the camera's state (e.g. read_frames before start())."""


class CameraStreamTimeout(DeviceTimeoutError):
    """Frames did not arrive in time. `partial` is the FrameReadout of the slots resolved so far
    (unresolved slots have status NOT_RECEIVED)."""

    def __init__(self, message: str, partial: FrameReadout) -> None:
        super().__init__(message)
        self.partial = partial
