"""The minimal calibration `opu.OPU` runs on first use: exposure, dark frame, anchor."""

from __future__ import annotations

import numpy as np

from firmware_iface.frames import FrameSource
from firmware_iface.geometry import CameraRoi, DmdLayout, ProjectionGeometry

from .anchor import anchor_pattern, calibrate_anchor, optimal_anchor_size
from .dark import measure_dark
from .exposure import choose_exposure
from .record import Calibration


def sample_inputs(
    layout: DmdLayout, anchor: np.ndarray, n: int, on_fraction: float, seed: int = 1
) -> np.ndarray:
    """Typical bright patterns: random data at on_fraction plus the anchor."""
    rng = np.random.default_rng(seed)
    p = np.zeros((n, layout.n_elements), dtype=np.uint8)
    p[:, : layout.n_data] = rng.random((n, layout.n_data)) < on_fraction
    p[:, layout.n_data :] = anchor
    return p


def calibrate_for_projection(
    source: FrameSource,
    n_in: int,
    n_out: int,
    roi: CameraRoi,
    exposure_us: float | None = None,
    anchor_on: int | None = None,
    on_fraction: float = 0.5,
    max_exposure_us: float | None = None,
) -> Calibration:
    """Exposure (unless given; at most max_exposure_us, default the frame period), dark frame
    over the ROI, anchor and output pixels."""
    lay = source.layout
    n_r = (
        anchor_on
        if anchor_on is not None
        else optimal_anchor_size(on_fraction * n_in, lay.n_anchor)
    )
    anchor = anchor_pattern(lay.n_anchor, n_r)
    results: dict = {}
    if exposure_us is None:
        exp = choose_exposure(
            source, sample_inputs(lay, anchor, 16, on_fraction), max_exposure_us=max_exposure_us
        )
        exposure_us = exp.exposure_us
        results["exposure"] = exp.summary()
    dark = measure_dark(source, exposure_us)
    results["dark"] = dark.summary()
    anc = calibrate_anchor(source, dark, n_out, n_r, exposure_us, scale_on_fraction=on_fraction)
    results["anchor"] = anc.summary()
    return Calibration(
        device_id=source.device_id,
        geometry=ProjectionGeometry.of(n_in, n_out, lay, roi),
        exposure_us=float(exposure_us),
        dark_dn=dark.dark_dn,
        hot_pixels=dark.hot,
        output_pixels=anc.output_pixels,
        anchor=anc.anchor,
        anchor_dn=anc.anchor_dn,
        scale_dn=anc.scale_dn,
        results=results,
    )
