"""Typed exceptions shared by every layer of the OPU stack.

The lowest layer owns them so that drivers, the simulator, calibration and the user API raise
(and catch) the same types. Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


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


class FrameIntegrityError(DeviceError):
    """Frames could not be attributed to patterns with certainty (drops, duplicates, lag)
    and re-acquisition did not succeed."""


class CalibrationError(OPUError):
    """A calibration step could not produce a valid result (too much or too little light,
    stale or foreign calibration record, failed self-test)."""


class ConcurrencyError(OPUError, RuntimeError):
    """The device is in use by another thread and this call refuses to interleave with it."""
