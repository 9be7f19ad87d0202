"""Typed errors of the FPGA timing-board protocol and driver.

Codec errors (`FrameCodecError` and subclasses) carry `nak_code`: the protocol error code
(`ErrorCode` value) that the device answers such a frame with. Driver errors subclass the
shared `DeviceError` family so callers can catch them generically.
"""

from __future__ import annotations

from ..errors import CodecError, DeviceError

__all__ = [
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

# Numeric values mirror messages.ErrorCode (kept literal here to avoid an import cycle).
_BAD_CRC, _BAD_FRAME, _UNKNOWN, _BAD_LENGTH, _BAD_VERSION = 0x01, 0x02, 0x03, 0x04, 0x09


class FrameCodecError(CodecError):
    """Bytes received on the UART that are not a valid protocol frame or message.

    `.seq` and `.msg_type` hold the header's sequence number and type byte when the header
    could be read (None otherwise); the device echoes them in its NAK.
    """

    nak_code: int = _BAD_FRAME

    def __init__(self, message: str, seq: int | None = None, msg_type: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        self.msg_type = msg_type


class CobsDecodeError(FrameCodecError):
    """The bytes between two 0x00 delimiters are not valid COBS."""

    nak_code = _BAD_FRAME


class FrameCrcError(FrameCodecError):
    """The frame's CRC-16 does not match its contents (corruption on the line)."""

    nak_code = _BAD_CRC


class FrameFormatError(FrameCodecError):
    """The decoded frame is too short or too long to hold header, payload and CRC."""

    nak_code = _BAD_FRAME


class FrameLengthError(FrameCodecError):
    """The header's length field disagrees with the number of payload bytes received."""

    nak_code = _BAD_LENGTH


class UnsupportedVersionError(FrameCodecError):
    """The frame's protocol-version byte is not one this side speaks."""

    nak_code = _BAD_VERSION


class UnknownMessageError(FrameCodecError):
    """The message-type byte names no message of the protocol."""

    nak_code = _UNKNOWN


class PayloadLengthError(FrameCodecError):
    """The payload length is wrong for the message type."""

    nak_code = _BAD_LENGTH


class PayloadValueError(FrameCodecError):
    """A payload field holds a value the protocol does not define (e.g. an unknown enum)."""

    nak_code = _BAD_FRAME


class FPGACommandError(DeviceError):
    """The board refused a command (NAK). `.code` is the `ErrorCode`, `.command` the refused
    `MsgType`, `.state` the board state it reported, `.detail` the code-specific detail word."""

    def __init__(self, message: str, code: int, command: int, state: int, detail: int) -> None:
        super().__init__(message)
        self.code = code
        self.command = command
        self.state = state
        self.detail = detail


class FPGARunAbortedError(DeviceError):
    """A run ended before all its frames were triggered (stopped by the host or on a fault).
    `.frames_done` frames were triggered; `.events` holds their trigger events."""

    def __init__(self, message: str, frames_done: int, events: list) -> None:
        super().__init__(message)
        self.frames_done = frames_done
        self.events = events
