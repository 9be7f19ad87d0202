"""The FPGA protocol's and driver's errors, as the `fpga` package names them.

They are defined once, in firmware_iface.errors (the stack's one hierarchy); this module only
gathers the FPGA ones. Codec errors (`FrameCodecError` and subclasses) carry `nak_code`: the
`ErrorCode` the device answers such a frame with.
"""

from __future__ import annotations

from ..errors import (
    CobsDecodeError,
    FPGACommandError,
    FPGARunAbortedError,
    FrameCodecError,
    FrameCrcError,
    FrameFormatError,
    FrameLengthError,
    PayloadLengthError,
    PayloadValueError,
    UnknownMessageError,
    UnsupportedVersionError,
)
from ..errors import FPGAErrorCode as ErrorCode

__all__ = [
    "ErrorCode",
    "FrameCodecError",
    "CobsDecodeError",
    "FrameCrcError",
    "FrameFormatError",
    "FrameLengthError",
    "UnsupportedVersionError",
    "UnknownMessageError",
    "PayloadLengthError",
    "PayloadValueError",
    "FPGACommandError",
    "FPGARunAbortedError",
]
