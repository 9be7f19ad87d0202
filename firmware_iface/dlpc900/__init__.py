"""TI DLPC900 DMD controller over USB HID: codecs (report, commands, erle, images), the pyusb
transport and the driver. See docs/dlpc900.md."""

from .commands import Command, DisplayMode, ErrorCode, FirmwareVersion, LutEntry, PatternAction
from .driver import DLPC900, DLPC900CommandError, DLPC900Status
from .images import Compression, UploadPlan, prepare_upload, prepare_upload_elements

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
