"""Linear-recovery anchor: the fixed pattern r on the anchor region, its averaged intensity
I(r) per camera pixel, the usable output pixels, and the global intensity scale.

Recovery (DESIGN.md): z = (I(x u r) - I(x) - I(r)) / (2 sqrt(I(r))) = sqrt(c) Re(e^{-i phi} T x)
per pixel, where c is the pixel's DN per unit |T x|^2. Pixels whose anchor is dark
(I(r) < dark_threshold_rel * mean) are excluded: their noise grows as 1/sqrt(I(r)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .dark import DarkFrame, DarkResult


@dataclass
class AnchorResult:
    """anchor: (n_anchor,) bool pattern r; output_pixels: (n_out,) global ids chosen;
    anchor_dn: (n_out,) mean dark-subtracted I(r) on them, DN; scale_dn: mean DN per unit
    |T x|^2; usable: (n_roi,) bool mask over the ROI; n_usable: usable pixels in the ROI;
    n_repeats: frames of r averaged; anchor_first_element: the layout's first anchor element."""

    anchor: np.ndarray
    output_pixels: np.ndarray
    anchor_dn: np.ndarray
    scale_dn: float
    usable: np.ndarray
    n_usable: int
    n_repeats: int
    anchor_first_element: int

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return {
            "anchor_elements": int(self.anchor.sum()),
            "usable_pixels": self.n_usable,
            "usable_fraction": float(self.usable.mean()),
            "output_pixels": int(self.output_pixels.size),
            "scale_dn_per_unit": self.scale_dn,
            "anchor_mean_dn": float(self.anchor_dn.mean()),
            "repeats": self.n_repeats,
            "anchor_first_element": self.anchor_first_element,
        }


def anchor_pattern(n_anchor: int, n_on: int) -> np.ndarray:
    """The anchor r: the first n_on elements of the anchor region ON (bool (n_anchor,))."""
    if not 1 <= n_on <= n_anchor:
        raise InputError(f"anchor size must be in [1, {n_anchor}], got {n_on}")
    r = np.zeros(n_anchor, dtype=bool)
    r[:n_on] = True
    return r


def optimal_anchor_size(expected_on: float, n_anchor: int) -> int:
    """About sqrt(2) times the data's expected ON elements (shot-noise optimum), within bounds."""
    return int(min(n_anchor, max(1, round(math.sqrt(2.0) * expected_on))))


def calibrate_anchor(
    source: FrameSource,
    dark: DarkResult | DarkFrame,
    n_out: int,
    anchor_on: int,
    exposure_us: float,
    n_repeats: int = 16,
    n_scale_patterns: int = 32,
    dark_threshold_rel: float = 0.1,
    seed: int = 0,
    scale_on_fraction: float = 0.5,
) -> AnchorResult:
    """Measure I(r) and the intensity scale over the ROI, pick n_out usable output pixels.

    The source must currently return the whole ROI (the pixels `dark` was measured on).
    scale_on_fraction: ON fraction of the scale patterns' data (the inputs' expected one, so
    they are no brighter than what the exposure was chosen for).
    """
    lay = source.layout
    nd = lay.n_data
    r = anchor_pattern(lay.n_anchor, anchor_on)
    pats = np.zeros((n_repeats, lay.n_elements), dtype=np.uint8)
    pats[:, nd:] = r
    batch = source.acquire(pats, exposure_us)
    if not np.array_equal(batch.pixel_ids, dark.pixel_ids):
        raise CalibrationError("dark frame and anchor frames cover different pixels; redo both")
    i_r = batch.frames.astype(np.float64).mean(axis=0) - dark.dark_dn
    rng = np.random.default_rng(seed)
    data = (rng.random((n_scale_patterns, nd)) < scale_on_fraction).astype(np.uint8)
    if not data.any():
        data[:, 0] = 1  # at least one ON element per pattern: the scale needs light
    sb = source.acquire(
        np.concatenate([data, np.zeros((n_scale_patterns, lay.n_anchor), np.uint8)], axis=1),
        exposure_us,
    )
    sig = sb.frames.astype(np.float64) - dark.dark_dn
    clipped = (batch.saturated.sum() + sb.saturated.sum()) / (batch.frames.size + sb.frames.size)
    if clipped > 1e-3:
        raise CalibrationError(
            f"{clipped:.1%} of anchor calibration pixels clip: shorten the exposure "
            "(`opu calibrate exposure`)"
        )
    scale = float(sig.sum() / data.sum() / sig.shape[1])  # mean DN per ON element per pixel
    if not scale > 0:
        raise CalibrationError("no signal in anchor calibration frames: check the light source")
    usable = (i_r > dark_threshold_rel * i_r.mean()) & ~dark.hot
    n_usable = int(usable.sum())
    if n_usable < n_out:
        raise CalibrationError(
            f"only {n_usable} usable output pixels in the camera ROI, {n_out} requested: "
            "enlarge the ROI or reduce n_out"
        )
    chosen = np.flatnonzero(usable)[:n_out]
    return AnchorResult(
        anchor=r,
        output_pixels=batch.pixel_ids[chosen].astype(np.int64),
        anchor_dn=i_r[chosen].astype(np.float32),
        scale_dn=scale,
        usable=usable,
        n_usable=n_usable,
        n_repeats=n_repeats,
        anchor_first_element=int(nd),
    )
