"""Exposure: the longest exposure that keeps the clipped-pixel fraction under a target for the
inputs the user will send (sample patterns; in linear mode they include the anchor, which adds
light).

Speckle intensity is exponential across pixels, so for a pattern whose mean dark-subtracted
signal is mu (DN) the clipped fraction is exp(-H / mu), H the headroom to saturation. One
measurement gives each sample pattern's mu; the exposure that brings the predicted clipped
fraction, averaged over the patterns, to the target follows by scaling (signal is linear in
exposure). The prediction is checked by a measurement at the chosen exposure and refined; the
whole search takes a few acquisitions. A measurement that clips heavily is not trusted for the
prediction (clipping hides the signal): the exposure is cut by 4 first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

_HEAVY_CLIP = 1e-2


@dataclass
class ExposureResult:
    """exposure_us: chosen exposure; clipped_fraction: measured at that exposure;
    predicted_clipped: the exponential-law prediction there; mean_signal_dn: mean
    dark-subtracted signal of the sample inputs, DN; noise_dn: temporal dark noise, DN;
    headroom_dn: signal at which pixels clip, DN; steps: acquisitions (light + dark pairs)."""

    exposure_us: float
    clipped_fraction: float
    mean_signal_dn: float
    steps: int
    predicted_clipped: float = 0.0
    noise_dn: float = 0.0
    headroom_dn: float = 0.0

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return dict(self.__dict__)


def _measure(
    source: FrameSource, patterns: np.ndarray, exposure_us: float
) -> tuple[np.ndarray, float, float, float]:
    """(per-pattern mean signal DN, clipped fraction, temporal dark noise DN, dark level DN)."""
    dark = source.acquire(np.zeros((2, source.layout.n_elements), np.uint8), exposure_us)
    d = dark.frames.astype(np.float64)
    diff = d[0] - d[1]
    mad = float(np.median(np.abs(diff - np.median(diff))))
    core = diff[np.abs(diff) <= 10.0 * (mad + 1.0)]  # hot pixels out
    noise = float(np.std(core) / math.sqrt(2.0))
    batch = source.acquire(patterns, exposure_us)
    dmean = d.mean(axis=0)
    signal = (batch.frames.astype(np.float64) - dmean).mean(axis=1)
    clipped = float(batch.saturated.sum()) / batch.frames.size
    return signal, clipped, noise, float(np.median(dmean))


def _predicted_clipped(signal: np.ndarray, headroom_dn: float, scale: float) -> float:
    mu = np.maximum(signal * scale, 1e-12)
    return float(np.mean(np.exp(-headroom_dn / mu)))


def _scale_for_target(signal: np.ndarray, headroom_dn: float, target: float) -> float:
    """Exposure scale factor s with predicted clipped fraction == target (bisection in log s)."""
    lo, hi = 1e-6, 1e6
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if _predicted_clipped(signal, headroom_dn, mid) > target:
            hi = mid
        else:
            lo = mid
    return lo


def choose_exposure(
    source: FrameSource,
    sample_patterns: np.ndarray,
    clip_target: float = 1e-5,
    min_snr: float = 5.0,
    max_exposure_us: float | None = None,
    saturation_dn: float | None = None,
    max_steps: int = 8,
) -> ExposureResult:
    """Longest exposure whose clipped fraction on sample_patterns stays under clip_target.

    max_exposure_us: upper limit (default: the frame period, so exposure does not slow the
    device, unless the signal there is too weak: then the camera's longest exposure);
    saturation_dn: dark-subtracted signal where pixels clip (from photon transfer; default
    95 % of the ADC range above the dark level).
    Raises CalibrationError when even the shortest exposure clips (too much light) or the mean
    signal at the chosen exposure is below min_snr times the dark noise (too little light).
    """
    if not 0 < clip_target < 1:
        raise InputError(f"clip_target must lie in (0, 1), got {clip_target}")
    p = np.asarray(sample_patterns)
    if p.ndim != 2 or p.shape[0] < 1:
        raise InputError("sample_patterns must be a non-empty (B, n_elements) array")
    lo, hi = source.exposure_range_us
    hi = min(hi, max_exposure_us if max_exposure_us is not None else source.frame_period_us)
    if hi < lo:
        raise InputError(f"max_exposure_us={max_exposure_us} is below the camera minimum {lo}")
    t = hi
    headroom = None
    n_values = p.shape[0] * 1.0
    steps = 0
    for _ in range(max_steps):
        signal, clipped, noise, dark_level = _measure(source, p, t)
        steps += 1
        if headroom is None:
            headroom = (
                float(saturation_dn)
                if saturation_dn is not None
                else 0.95 * (float(source.max_dn) - dark_level)
            )
        if clipped > _HEAVY_CLIP or signal.mean() <= 0:
            if t <= lo:
                raise CalibrationError(
                    f"too much light: even the shortest exposure ({lo} us) clips {clipped:.2e} "
                    f"of the pixels (target {clip_target:.0e}); reduce the laser power or add a "
                    "neutral-density filter"
                )
            t = max(lo, t / 4.0) if clipped > _HEAVY_CLIP else hi
            if signal.mean() <= 0:
                break
            continue
        t_new = float(np.clip(t * _scale_for_target(signal, headroom, clip_target), lo, hi))
        n_values = float(p.shape[0] * source.roi.n_pixels)
        ok_measured = clipped <= max(clip_target, 2.0 / n_values)
        if ok_measured and abs(t_new - t) <= 0.05 * t:
            break
        if t_new <= lo and _predicted_clipped(signal, headroom, lo / t) > clip_target:
            raise CalibrationError(
                f"too much light: even the shortest exposure ({lo} us) is predicted to clip "
                f"{_predicted_clipped(signal, headroom, lo / t):.2e} of the pixels (target "
                f"{clip_target:.0e}); reduce the laser power or add a neutral-density filter"
            )
        t = t_new
    else:
        if not clipped <= max(clip_target, 2.0 / n_values):
            raise CalibrationError(
                f"exposure search did not converge in {max_steps} steps (clipped {clipped:.1e} "
                f"at {t:.1f} us); check that the light source is stable"
            )
    mean_signal = float(signal.mean())
    cam_hi = source.exposure_range_us[1]
    if mean_signal < min_snr * max(noise, 0.5) and max_exposure_us is None and hi < cam_hi:
        # too dim within the frame period: longer frames are better than no signal
        return choose_exposure(
            source, p, clip_target, min_snr, cam_hi, saturation_dn, max_steps
        )
    if mean_signal < min_snr * max(noise, 0.5):
        raise CalibrationError(
            f"too little light: mean signal {mean_signal:.2f} DN at {t:.1f} us is buried in the "
            f"dark noise ({noise:.2f} DN); check the laser and the optical path"
            + (", or allow longer exposures (--max-exposure-us)" if t < cam_hi else "")
        )
    return ExposureResult(
        exposure_us=float(t),
        clipped_fraction=float(clipped),
        mean_signal_dn=mean_signal,
        steps=steps,
        predicted_clipped=_predicted_clipped(signal, headroom, 1.0),
        noise_dn=noise,
        headroom_dn=float(headroom),
    )
