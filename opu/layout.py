"""Where an OPU's inputs and outputs sit on the device: the DMD layout and camera ROI for
n_in inputs and n_out outputs (pure geometry)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from firmware_iface.errors import ConfigurationError
from firmware_iface.geometry import CameraRoi, DmdLayout

__all__ = [
    "USABLE_MARGIN",
    "check_size",
    "check_source_geometry",
    "device_sizes",
    "plan_geometry",
    "roi_pixels_for",
]

USABLE_MARGIN = 0.85  # share of the ROI's pixels expected to be usable outputs


def plan_geometry(
    n_in: int, n_out: int, dmd_size: tuple[int, int], camera_size: tuple[int, int]
) -> tuple[DmdLayout, CameraRoi]:
    """The DMD layout and camera ROI an OPU of n_in inputs and n_out outputs uses on a DMD of
    dmd_size = (width, height) mirrors and a camera of camera_size = (width, height) pixels:
    n_in data + n_in anchor elements, and a centred ROI about 1/0.85 larger than n_out (room
    for the pixels excluded for a dark anchor). Raises ConfigurationError when they do not fit."""
    n_in, n_out = check_size("n_in", n_in), check_size("n_out", n_out)
    (dmd_w, dmd_h), (cam_w, cam_h) = dmd_size, camera_size
    if n_in * 2 > dmd_w * dmd_h:
        raise ConfigurationError(
            f"n_in={n_in} needs {2 * n_in} DMD elements (data + anchor region) but the "
            f"{dmd_w}x{dmd_h} DMD has {dmd_w * dmd_h} mirrors; reduce n_in"
        )
    n_roi = roi_pixels_for(n_out)
    if n_roi > cam_w * cam_h:
        raise ConfigurationError(
            f"n_out={n_out} needs a camera ROI of about {n_roi} pixels (outputs plus the "
            f"pixels excluded for a dark anchor) but the camera has {cam_w * cam_h}; "
            "reduce n_out"
        )
    layout = DmdLayout.fit(int(n_in), int(n_in), dmd_w, dmd_h, max_macro_pixel=None)
    return layout, CameraRoi.centred(n_roi, cam_w, cam_h)


def check_size(name: str, value: object) -> int:
    """A positive integer width (n_in, n_out); ConfigurationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def roi_pixels_for(n_out: int) -> int:
    """Camera ROI pixels an OPU with n_out outputs needs: n_out / 0.85 + 16 (room for the
    pixels calibration excludes for a dark anchor or a defect)."""
    return math.ceil(n_out / USABLE_MARGIN) + 16


def device_sizes(profile: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """(DMD (width, height), camera (width, height)) of a profile; the DLP6500 and a
    1920x1200 sensor for hardware without one."""
    if profile is None:
        return (1920, 1080), (1920, 1200)
    return (profile.dmd.width, profile.dmd.height), (
        profile.camera.sensor_width,
        profile.camera.sensor_height,
    )


def check_source_geometry(layout: DmdLayout, roi: CameraRoi, n_in: int, n_out: int) -> None:
    """ConfigurationError unless a frame source's layout holds n_in data + n_in anchor
    elements and its ROI has room for n_out outputs (roi_pixels_for)."""
    if (layout.n_data, layout.n_anchor) != (n_in, n_in):
        raise ConfigurationError(
            f"the frame source's layout has {layout.n_data} data and {layout.n_anchor} anchor "
            f"elements; an OPU with n_in={n_in} needs {n_in} of each (build the source with "
            "OPU.plan_geometry)"
        )
    if roi.n_pixels < roi_pixels_for(n_out):
        raise ConfigurationError(
            f"the frame source's ROI has {roi.n_pixels} pixels; n_out={n_out} needs "
            f"{roi_pixels_for(n_out)} (build the source with OPU.plan_geometry)"
        )
