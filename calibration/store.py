"""The record store: one calibration file per device in a directory.

    store = RecordStore()                       # $OPU_RECORD_DIR or ./opu-calibration
    cal = store.load_for(device_id, geometry)   # refuses another device's or geometry's record
    store.save(cal)                             # atomic: a failed write keeps the old file

A record older than the medium's stability (`results["stability"]["max_age_s"]`, else
DEFAULT_MAX_AGE_S) loads with a UserWarning naming the command that refreshes it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from firmware_iface.errors import CalibrationError

from .record import Calibration, warn_if_stale

RECORD_DIR_ENV = "OPU_RECORD_DIR"
DEFAULT_RECORD_DIR = "opu-calibration"
DEFAULT_MAX_AGE_S = 24 * 3600.0
REFRESH_COMMAND = "opu calibrate all"


def default_record_dir() -> Path:
    """$OPU_RECORD_DIR if set, else ./opu-calibration (relative to the working directory)."""
    return Path(os.environ.get(RECORD_DIR_ENV) or DEFAULT_RECORD_DIR)


def record_filename(device_id: str) -> str:
    """File name of a device's record: its id with unsafe characters replaced, plus .npz."""
    if not device_id:
        raise CalibrationError("a calibration record needs a non-empty device id")
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id) + ".npz"


def max_age_s(cal: Calibration) -> float:
    """How long `cal` stays valid, s: from its stability step, else DEFAULT_MAX_AGE_S."""
    stab = cal.results.get("stability", {})
    value = stab.get("max_age_s") if isinstance(stab, dict) else None
    try:
        return float(value) if value is not None else DEFAULT_MAX_AGE_S
    except (TypeError, ValueError):
        return DEFAULT_MAX_AGE_S


class RecordStore:
    """Calibration records in `directory` (default: default_record_dir()), one per device."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_record_dir()

    def path_for(self, device_id: str) -> Path:
        """Where the record of `device_id` lives."""
        return self.directory / record_filename(device_id)

    def exists(self, device_id: str) -> bool:
        """Whether a record file for `device_id` exists."""
        return self.path_for(device_id).is_file()

    def save(self, cal: Calibration) -> Path:
        """Write `cal` atomically to its device's file; returns the path."""
        return cal.save(self.path_for(cal.device_id))

    def load(self, device_id: str) -> Calibration:
        """The record stored for `device_id`, checked to be that device's (any geometry)."""
        path = self.path_for(device_id)
        if not path.is_file():
            raise CalibrationError(
                f"no calibration record for device {device_id!r} in {self.directory}: "
                f"run `{REFRESH_COMMAND}`"
            )
        cal = Calibration.load(path)
        if cal.device_id != device_id:
            raise CalibrationError(
                f"the record {path} belongs to device {cal.device_id!r}, not {device_id!r}; "
                f"run `{REFRESH_COMMAND}` on this device to replace it"
            )
        return cal

    def load_for(self, device_id: str, geometry: dict, warn_stale: bool = True) -> Calibration:
        """The record for this device and geometry; CalibrationError if missing or another
        device's/geometry's; a UserWarning if it is older than the medium allows."""
        cal = self.load(device_id)
        cal.check_matches(device_id, geometry)
        if warn_stale:
            warn_if_stale(cal, max_age_s(cal), REFRESH_COMMAND)
        return cal
