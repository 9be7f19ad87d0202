"""The `opu` command's options, checked before the device is touched, and how results are kept
when saving fails.

    profile = preflight(args)     # every option valid and typed, folders writable, profile built
    path, problem = save_with_fallback(store, cal)

Errors name the command-line option, not a Python parameter.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from calibration.record import Calibration
from calibration.store import RecordStore, record_filename
from firmware_iface.errors import ConfigurationError, OPUError

_TYPES = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,),
          "None": (type(None),)}


def _check_type(field: dataclasses.Field, value: Any, where: str) -> None:
    """Refuse a JSON value of the wrong type for a profile field (a string for a number...)."""
    names = [n.strip() for n in str(field.type).split("|")]
    allowed = tuple(t for n in names for t in _TYPES.get(n, (object,)))
    is_bool = isinstance(value, bool)
    ok = isinstance(value, allowed) and (not is_bool or bool in allowed)
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        raise ConfigurationError(
            f"profile field {where!r} must be {' or '.join(names)}, got {json.dumps(value)} "
            f"({type(value).__name__}); fix it in the --profile file"
        )


def override(obj: Any, changes: Any, where: str = "") -> Any:
    """A copy of the dataclass `obj` with the nested JSON `changes` applied, type-checked."""
    if not isinstance(changes, dict):
        raise ConfigurationError(
            f"profile override {where.rstrip('.') or 'root'} must be a JSON object, got "
            f"{json.dumps(changes)}"
        )
    fields = {f.name: f for f in dataclasses.fields(obj)}
    new = {}
    for key, value in changes.items():
        if key not in fields:
            raise ConfigurationError(
                f"unknown profile field {where + key!r}; valid: {', '.join(sorted(fields))}"
            )
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur):
            new[key] = override(cur, value, f"{where}{key}.")
        else:
            _check_type(fields[key], value, where + key)
            new[key] = value
    return dataclasses.replace(obj, **new)


def build_profile(args: argparse.Namespace) -> Any:
    """The simulated device profile: default, then --profile FILE.json, then shortcuts."""
    from opu.sources import parse_device

    if not parse_device(args.device).simulated:
        if args.profile or args.photons_per_mirror_us or args.drift_time_s:
            raise ConfigurationError("--profile and its shortcuts apply to simulated devices only")
        return None
    from opu_sim.profile import DeviceProfile

    prof = DeviceProfile.default()
    if args.profile:
        try:
            data = json.loads(Path(args.profile).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read --profile {args.profile}: {exc}") from exc
        prof = override(prof, data)
    if args.photons_per_mirror_us is not None:
        laser = dataclasses.replace(prof.laser, photons_per_mirror_us=args.photons_per_mirror_us)
        prof = dataclasses.replace(prof, laser=laser)
    if args.drift_time_s is not None:
        prof = dataclasses.replace(
            prof, medium=dataclasses.replace(prof.medium, drift_time_s=args.drift_time_s)
        )
    return prof


def check_writable(directory: str | os.PathLike, option: str) -> None:
    """Create `directory` if needed and prove it writable with a temporary file."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".opu-write-test-"):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"{option} {d} is not writable ({exc.strerror or exc}); choose a writable folder"
        ) from exc


def _positive(value: float | None, option: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{option} must be a positive number, got {value}")


def preflight(args: argparse.Namespace) -> Any:
    """Check every option before the first acquisition; returns the simulated profile (None
    for hardware). Raises ConfigurationError naming the option."""
    for option, value in (("--n-in", args.n_in), ("--n-out", args.n_out)):
        if value < 1:
            raise ConfigurationError(f"{option} must be >= 1, got {value}")
    _positive(args.max_exposure_us, "--max-exposure-us")
    _positive(args.photons_per_mirror_us, "--photons-per-mirror-us")
    _positive(args.drift_time_s, "--drift-time-s")
    _positive(args.stability_first_wait_s, "--stability-first-wait-s")
    _positive(args.stability_duration_s, "--stability-duration-s")
    if args.stability_duration_s <= args.stability_first_wait_s:
        raise ConfigurationError(
            f"--stability-duration-s ({args.stability_duration_s:g} s) must be longer than "
            f"--stability-first-wait-s ({args.stability_first_wait_s:g} s)"
        )
    profile = build_profile(args)
    if args.command == "calibrate" or (args.command == "demo" and args.record_dir_given):
        check_writable(args.record_dir, "--record-dir")
    if args.report:
        check_writable(args.report, "--report")
    elif args.plot and args.command != "info":
        check_writable(Path(args.record_dir) / "report", "--plot (<record-dir>/report)")
    return profile


def fallback_dir() -> Path:
    """Where a record goes when its folder cannot be written."""
    return Path(tempfile.gettempdir()) / "opu-calibration-fallback"


def save_with_fallback(store: RecordStore, cal: Calibration) -> tuple[Path, str | None]:
    """Save `cal` in the store, or, if that fails, in fallback_dir(). Returns (path written,
    None) or (fallback path, message saying what failed and where the record is)."""
    try:
        return store.save(cal), None
    except (OPUError, OSError) as exc:
        target = fallback_dir() / record_filename(cal.device_id)
        try:
            cal.save(target)
        except (OPUError, OSError) as exc2:
            raise OPUError(
                f"could not save the calibration record in {store.directory} ({exc}) nor in "
                f"{target.parent} ({exc2}); the results above are all that is left"
            ) from exc2
        return target, (
            f"could not save the calibration record in {store.directory} ({exc}); it was "
            f"saved to {target} instead: copy it into the record folder "
            f"(`cp {target} {store.path_for(cal.device_id)}`)"
        )
