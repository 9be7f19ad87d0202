"""Exposure: the longest exposure that keeps the clipped-pixel fraction under a target for the
inputs the user will send. Speckle intensity is exponential, so the clipped fraction at exposure
t is about exp(-headroom / (mean signal * t / t0)); one measurement predicts the exposure, a
second checks it, and a few 20 % steps correct it if needed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource


@dataclass
class ExposureResult:
    """exposure_us: chosen exposure; clipped_fraction: measured at that exposure;
    mean_signal_dn: mean dark-subtracted signal of the sample inputs there; steps: acquisitions."""

    exposure_us: float
    clipped_fraction: float
    mean_signal_dn: float
    steps: int

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return dict(self.__dict__)


def _measure(
    source: FrameSource, patterns: np.ndarray, exposure_us: float
) -> tuple[float, float, float]:
    """(mean signal DN, clipped fraction, temporal dark noise DN) at exposure_us."""
    dark = source.acquire(np.zeros((2, source.layout.n_elements), np.uint8), exposure_us)
    d = dark.frames.astype(np.float64)
    noise = float(np.std(d[0] - d[1]) / math.sqrt(2.0))
    batch = source.acquire(patterns, exposure_us)
    signal = float(batch.frames.astype(np.float64).mean()) - float(d.mean())
    clipped = float(batch.saturated.sum()) / batch.frames.size
    return signal, clipped, noise


def choose_exposure(
    source: FrameSource,
    sample_patterns: np.ndarray,
    clip_target: float = 1e-5,
    min_snr: float = 5.0,
    max_exposure_us: float | None = None,
) -> ExposureResult:
    """Longest exposure whose clipped fraction on sample_patterns stays under clip_target.

    Raises CalibrationError when even the shortest exposure clips (too much light) or the
    signal at the longest allowed exposure is below min_snr times the read noise (too little).
    """
    if not 0 < clip_target < 1:
        raise InputError(f"clip_target must lie in (0, 1), got {clip_target}")
    lo, hi = source.exposure_range_us
    hi = min(hi, max_exposure_us if max_exposure_us is not None else source.frame_period_us)
    headroom_dn = source.max_dn * 0.95
    t0 = hi
    signal, clipped, noise_dn = _measure(source, sample_patterns, t0)
    steps = 1
    if signal > 0:
        # exponential speckle: P(I > H) = exp(-H / mean) -> mean = H / ln(1/target)
        t = t0 * headroom_dn / (signal * math.log(1.0 / clip_target))
    else:
        t = t0
    t = float(np.clip(t, lo, hi))
    for _ in range(12):
        signal, clipped, noise_dn = _measure(source, sample_patterns, t)
        steps += 1
        if clipped <= clip_target:
            break
        if t <= lo:
            raise CalibrationError(
                f"too much light: even the shortest exposure ({lo} us) clips "
                f"{clipped:.2e} of the pixels (target {clip_target:.0e}); reduce the laser "
                "power or add a neutral-density filter"
            )
        t = max(lo, t * 0.8)
    else:
        raise CalibrationError("exposure search did not converge; check the light source")
    if signal < min_snr * max(noise_dn, 0.5):
        raise CalibrationError(
            f"too little light: mean signal {signal:.2f} DN at {t:.1f} us is buried in the "
            "read noise; check the laser and the optical path, or allow longer exposures"
        )
    return ExposureResult(float(t), clipped, signal, steps)
