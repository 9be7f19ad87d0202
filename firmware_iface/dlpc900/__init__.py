"""TI DLPC900 DMD controller over USB HID: codecs (report, commands, erle, images), the pyusb
transport and the driver. See docs/dlpc900.md.

Importing this package (or its codec modules, as the emulator does) does not import the
driver or transport; `DLPC900` and `DLPC900Status` load on first use (the error class lives in
firmware_iface.errors).
"""

from ..errors import DLPC900CommandError
from .commands import Command, DisplayMode, ErrorCode, FirmwareVersion, LutEntry, PatternAction
from .images import Compression, UploadPlan, prepare_upload, prepare_upload_elements

_DRIVER_NAMES = ("DLPC900", "DLPC900Status")


def __getattr__(name: str):
    if name in _DRIVER_NAMES:
        from . import driver

        return getattr(driver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DLPC900",
    "DLPC900CommandError",
    "DLPC900Status",
    "Command",
    "Compression",
    "DisplayMode",
    "ErrorCode",
    "FirmwareVersion",
    "LutEntry",
    "PatternAction",
    "UploadPlan",
    "prepare_upload",
    "prepare_upload_elements",
]
