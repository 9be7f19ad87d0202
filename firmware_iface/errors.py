"""Typed exceptions shared by every layer of the OPU stack: the one hierarchy.

The lowest layer owns them so that drivers, the simulator, calibration and the user API raise
(and catch) the same types, and a package never imports a driver just to name its errors. Every
message says what was wrong and what to do about it.

    OPUError
    ├── ConfigurationError (ValueError)         bad setting, profile, device string, geometry
    │   └── CameraStateError                    call does not fit the camera's state
    ├── InputError (ValueError)                 bad user input (shape, dtype, values, range)
    ├── CodecError (ValueError)                 bytes that do not decode (pure codecs)
    │   ├── FrameCodecError                     FPGA UART frame/message; carries .nak_code
    │   │   └── CobsDecodeError, FrameCrcError, FrameFormatError, FrameLengthError,
    │   │       UnsupportedVersionError, UnknownMessageError, PayloadLengthError,
    │   │       PayloadValueError
    │   └── ControlCodecError                   camera command/acknowledge; .status, .request_id
    ├── DeviceError                             a device operation failed (known state)
    │   ├── DeviceTimeoutError (TimeoutError)
    │   │   └── CameraStreamTimeout             .partial: the frames resolved so far
    │   ├── DeviceDisconnectedError             the device is gone: reopen it
    │   │   └── LinkDownError (ConnectionError) an emulator's host link is gone
    │   ├── DeviceNotFoundError
    │   ├── UsbTransferError                    a USB transfer failed otherwise (usb_errors.py)
    │   ├── FrameIntegrityError                 frames not attributable to patterns
    │   │   └── CameraStreamError               stream does not match the configuration
    │   ├── CameraCommandError                  camera refused a register access; .status
    │   ├── CameraProtocolError                 camera bytes that do not fit the protocol
    │   ├── DLPC900CommandError                 DMD controller NACK; .command, .code
    │   ├── FPGACommandError                    FPGA NAK; .code (FPGAErrorCode), .state
    │   └── FPGARunAbortedError                 FPGA run ended early; .frames_done, .events
    ├── CalibrationError                        calibration could not produce a valid result
    └── ConcurrencyError (RuntimeError)         device in use by another thread

`FPGAErrorCode` (the FPGA protocol's NAK codes) is defined here, once, because the codec errors
name the code the board answers them with; `firmware_iface.fpga.messages.ErrorCode` is it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: errors.py imports nothing of the stack at run time
    from .camera.driver import FrameReadout


class OPUError(Exception):
    """Base class of every error raised on purpose by the OPU stack."""


class ConfigurationError(OPUError, ValueError):
    """A setting, device profile, device string or geometry is invalid or inconsistent."""


class InputError(OPUError, ValueError):
    """Bad user input: wrong shape, dtype, values (NaN, non-binary), or out of range."""


class CodecError(OPUError, ValueError):
    """Bytes that do not decode under a wire protocol or file format (pure codecs raise this)."""


class DeviceError(OPUError):
    """A device operation failed; the driver has left the device in a known state."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A device did not answer in time (after the driver's retries)."""


class DeviceDisconnectedError(DeviceError):
    """The device is gone (unplugged, port closed); reopen it before further use."""


class DeviceNotFoundError(DeviceError):
    """No device matched the requested identity (USB ids, serial URL)."""


class UsbTransferError(DeviceError):
    """A USB transfer failed for a reason other than a timeout or a vanished device
    (firmware_iface.usb_errors maps pyusb errors to this family)."""


class FrameIntegrityError(DeviceError):
    """Frames could not be attributed to patterns with certainty (drops, duplicates, lag)
    and re-acquisition did not succeed."""


class CalibrationError(OPUError):
    """A calibration step could not produce a valid result (too much or too little light,
    stale or foreign calibration record, failed self-test)."""


class ConcurrencyError(OPUError, RuntimeError):
    """The device is in use by another thread and this call refuses to interleave with it."""


class LinkDownError(DeviceDisconnectedError, ConnectionError):
    """An emulated link is gone (the emulator's disconnect fault, or the link was closed).
    Transports turn it into what the real port raises (pyserial's SerialException)."""


# ---- camera (USB3 Vision-style) -----------------------------------------------------------


class CameraCommandError(DeviceError):
    """The camera refused a register read or write. `status` is the acknowledge's status code,
    `feature` the SFNC name accessed (None for a raw address)."""

    def __init__(self, message: str, status: int, feature: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.feature = feature


class CameraProtocolError(DeviceError):
    """The camera answered with bytes that do not fit the control protocol."""


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


class ControlCodecError(CodecError):
    """A camera command or acknowledge that does not decode.

    `status` is the status a device answers it with; `request_id` is the request id if the header
    was readable (else None), so the device can still address its error acknowledge.
    """

    def __init__(self, message: str, status: int, request_id: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


# ---- DMD controller (TI DLPC900) ------------------------------------------------------------


class DLPC900CommandError(DeviceError):
    """The controller refused (NACKed) a command. `.command` is the command code, `.code` the
    controller's error code (DLPU018 0x0100) and `.description` its text (0x0101)."""

    def __init__(self, message: str, command: int, code: int, description: str) -> None:
        super().__init__(message)
        self.command = command
        self.code = code
        self.description = description


# ---- FPGA timing board --------------------------------------------------------------------


class FPGAErrorCode(IntEnum):
    """NAK error codes of the FPGA protocol (docs/fpga.md gives each NAK's detail word)."""

    BAD_CRC = 0x01
    BAD_FRAME = 0x02
    UNKNOWN_COMMAND = 0x03
    BAD_LENGTH = 0x04
    OUT_OF_RANGE = 0x05
    WRONG_STATE = 0x06
    BUSY = 0x07
    INVALID_CONFIG = 0x08
    BAD_VERSION = 0x09
    INTERNAL_FAULT = 0x0A


class FrameCodecError(CodecError):
    """Bytes received on the FPGA UART that are not a valid protocol frame or message.

    `.nak_code` is the FPGAErrorCode the board answers such a frame with; `.seq` and `.msg_type`
    hold the header's sequence number and type byte when the header could be read (None
    otherwise); the device echoes them in its NAK.
    """

    nak_code: FPGAErrorCode = FPGAErrorCode.BAD_FRAME

    def __init__(self, message: str, seq: int | None = None, msg_type: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        self.msg_type = msg_type


class CobsDecodeError(FrameCodecError):
    """The bytes between two 0x00 delimiters are not valid COBS."""

    nak_code = FPGAErrorCode.BAD_FRAME


class FrameCrcError(FrameCodecError):
    """The frame's CRC-16 does not match its contents (corruption on the line)."""

    nak_code = FPGAErrorCode.BAD_CRC


class FrameFormatError(FrameCodecError):
    """The decoded frame is too short or too long to hold header, payload and CRC."""

    nak_code = FPGAErrorCode.BAD_FRAME


class FrameLengthError(FrameCodecError):
    """The header's length field disagrees with the number of payload bytes received."""

    nak_code = FPGAErrorCode.BAD_LENGTH


class UnsupportedVersionError(FrameCodecError):
    """The frame's protocol-version byte is not one this side speaks."""

    nak_code = FPGAErrorCode.BAD_VERSION


class UnknownMessageError(FrameCodecError):
    """The message-type byte names no message of the protocol."""

    nak_code = FPGAErrorCode.UNKNOWN_COMMAND


class PayloadLengthError(FrameCodecError):
    """The payload length is wrong for the message type."""

    nak_code = FPGAErrorCode.BAD_LENGTH


class PayloadValueError(FrameCodecError):
    """A payload field holds a value the protocol does not define (e.g. an unknown enum)."""

    nak_code = FPGAErrorCode.BAD_FRAME


class FPGACommandError(DeviceError):
    """The board refused a command (NAK). `.code` is the FPGAErrorCode, `.command` the refused
    message type, `.state` the board state it reported, `.detail` the code-specific detail
    word. What happened afterwards (e.g. STOP unconfirmed) is added as a PEP 678 note."""

    def __init__(self, message: str, code: int, command: int, state: int, detail: int) -> None:
        super().__init__(message)
        self.code = code
        self.command = command
        self.state = state
        self.detail = detail


class FPGARunAbortedError(DeviceError):
    """A run ended before all its frames were triggered (stopped by the host or on a fault).
    `.frames_done` frames were triggered; `.events` holds their trigger events."""

    def __init__(self, message: str, frames_done: int, events: list[Any]) -> None:
        super().__init__(message)
        self.frames_done = frames_done
        self.events = events
