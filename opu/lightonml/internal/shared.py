"""Helpers behind the compat OPU: device sizes, calibrations shared between simulated OPUs,
and which decoder arguments fit an encoder's parameters."""

from __future__ import annotations

import inspect
import math
from typing import Any

DMD_DEFAULT = (1920, 1080)
CAMERA_DEFAULT = (1920, 1200)
ROI_MARGIN = 0.85  # opu.OPU reads about n_out / 0.85 + 16 camera pixels for n_out outputs


SIM_CALIBRATIONS: dict[tuple, Any] = {}
"""Calibrations of simulated devices, shared within the process by OPUs of one seed, noise
setting and geometry (the simulated medium does not drift between them): a GridSearchCV's
clones calibrate once, not once per fit."""


def on_level(fraction: float) -> float:
    """The fraction of ON inputs calibration sizes the exposure for, to the nearest octave
    (1, 1/2, 1/4, ... 1/64): fits on similar data share a calibration."""
    return 2.0 ** -min(6, max(0, round(-math.log2(max(fraction, 1e-6)))))


def shared_key(spec: dict, n_in: int, n_out: int, kwargs: dict) -> tuple | None:
    """The SIM_CALIBRATIONS key of a simulated device (None: not shared)."""
    if spec["device"] != "sim" or {"profile", "calibration", "record_dir"} & set(spec):
        return None
    return (n_in, n_out, *sorted((k, repr(v)) for k, v in kwargs.items()))


def accepts(cls: type, params: dict) -> bool:
    """Whether cls(**params) matches cls's signature (a decoder made for that encoder)."""
    try:
        inspect.signature(cls).bind(**params)
    except TypeError:
        return False
    return True


def dmd_and_camera(spec: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """(DMD (width, height), camera (width, height)) of the device the spec opens."""
    from opu.sources import parse_device

    prof = spec.get("profile")
    if prof is None and parse_device(spec["device"]).simulated:
        from opu_sim.profile import DeviceProfile

        prof = DeviceProfile.default()
    if prof is None:
        return DMD_DEFAULT, CAMERA_DEFAULT
    return (prof.dmd.width, prof.dmd.height), (prof.camera.sensor_width, prof.camera.sensor_height)
