"""The record store: one calibration file per device in a directory.

    store = RecordStore()                       # $OPU_RECORD_DIR or ./opu-calibration
    cal = store.load_for(device_id, geometry)   # refuses another device's or geometry's record
    store.save(cal)                             # atomic: a failed write keeps the old file

    with store.writer_lock("opu calibrate ptc"):   # one writer per folder, holder named
        ...

A record stays valid while the medium is predicted to correlate above the level at which
`opu.OPU` warns about drift (calibration.stability.DRIFT_WARN_CORRELATION), from the measured
decorrelation time (`record_validity`); an older one loads with a UserWarning naming the
command that refreshes it. A record without a stability step has no known validity: it loads
without an age warning, and `project()`'s own drift check (anchor correlation) is the guard.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from firmware_iface.errors import CalibrationError
from firmware_iface.geometry import ProjectionGeometry

from .record import Calibration, warn_if_stale
from .stability import validity_s

RECORD_DIR_ENV = "OPU_RECORD_DIR"
DEFAULT_RECORD_DIR = "opu-calibration"
REFRESH_COMMAND = "opu calibrate all"


def default_record_dir() -> Path:
    """$OPU_RECORD_DIR if set, else ./opu-calibration (relative to the working directory)."""
    return Path(os.environ.get(RECORD_DIR_ENV) or DEFAULT_RECORD_DIR)


def record_filename(device_id: str) -> str:
    """File name of a device's record: its id with unsafe characters replaced, plus .npz."""
    if not device_id:
        raise CalibrationError("a calibration record needs a non-empty device id")
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id) + ".npz"


LOCK_NAME = ".opu-writer.lock"


@dataclass(frozen=True)
class Validity:
    """age_s: seconds since calibration; valid_for_s: how long it stays valid (None: unknown,
    no stability step); stale: age beyond valid_for_s (None when unknown); basis: why."""

    age_s: float
    valid_for_s: float | None
    stale: bool | None
    basis: str


def record_validity(cal: Calibration, now: float | None = None) -> Validity:
    """How long `cal` stays valid and whether it is stale, from its stability step: the age at
    which the medium's intensity correlation is predicted to fall to the drift-warning level,
    using the lower 95 % bound of tau (the estimate for records that predate the interval)."""
    age = cal.age_s(now)
    stab = cal.stability
    tau = stab.tau_for_validity_s if stab is not None else None
    if tau is None:
        return Validity(age, None, None,
                        "no stability step: validity unknown (`opu calibrate stability`)")
    valid = validity_s(tau)
    return Validity(age, valid, age > valid,
                    f"medium tau >= {tau:.4g} s: correlation stays above the drift-warning level")


def max_age_s(cal: Calibration) -> float:
    """How long `cal` stays valid, s (inf when unknown: see record_validity)."""
    v = record_validity(cal).valid_for_s
    return math.inf if v is None else v


class RecordLockedError(CalibrationError):
    """Another process is writing records in this folder."""


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

    @contextlib.contextmanager
    def writer_lock(self, command: str) -> Iterator[Path]:
        """Hold the folder's writer lock for a whole calibration run (create the folder first).
        A second writer is refused at once with RecordLockedError naming the holder (pid, host,
        command, since when). The lock is an flock on LOCK_NAME: released by the kernel
        if the holder dies, so a killed run never leaves the folder locked."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RecordLockedError(
                    f"the record folder {self.directory} is being written by another run "
                    f"({_holder(fd)}); wait for it to finish, or use another --record-dir"
                ) from None
            info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                    "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            yield path
        finally:
            os.close(fd)  # releases the flock

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

    def load_for(
        self, device_id: str, geometry: ProjectionGeometry, warn_stale: bool = True
    ) -> Calibration:
        """The record for this device and geometry; CalibrationError if missing or another
        device's/geometry's; a UserWarning if it is stale (record_validity)."""
        cal = self.load(device_id)
        cal.check_matches(device_id, geometry)
        valid = record_validity(cal).valid_for_s
        if warn_stale and valid is not None:
            warn_if_stale(cal, valid, REFRESH_COMMAND)
        return cal


def _holder(fd: int) -> str:
    """Who holds the writer lock, from the lock file's contents."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return (f"pid {info['pid']} on {info['host']}: `{info['command']}` since "
                f"{info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
