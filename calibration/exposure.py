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

from .saturation import noise_from_dark_pair, probe_saturation

_HEAVY_CLIP = 1e-2
_QUANT_NOISE_DN = math.sqrt(1.0 / 12.0)  # an integer camera's noise floor


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
    source: FrameSource, patterns: np.ndarray, exposure_us: float, clip_dn: float | None
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(dark-subtracted values (B, P), clipped mask (B, P), temporal dark noise DN, dark level
    DN). clip_dn: dark-subtracted level from which a value counts as saturated (None: only the
    ADC maximum and the source's own saturation count)."""
    dark = source.acquire(np.zeros((2, source.layout.n_elements), np.uint8), exposure_us)
    d = dark.frames.astype(np.float64)
    noise = noise_from_dark_pair(d[0], d[1])
    batch = source.acquire(patterns, exposure_us)
    dmean = d.mean(axis=0)
    v = batch.frames.astype(np.float64) - dmean
    clipped = batch.frames >= source.max_dn
    if clip_dn is not None:
        clipped |= v >= clip_dn
    return v, clipped, noise, float(np.median(dmean))


def _empirical_scale(v: np.ndarray, clipped: np.ndarray, clip_dn: float, allowed: int) -> float:
    """Exposure factor keeping at most `allowed` values saturated, from the values themselves:
    clip_dn over the (allowed+1)-th largest value (unknown, so 0.8, when that one is
    saturated already)."""
    flat = np.sort(v.ravel())
    k = min(flat.size - 1, allowed)
    top = flat[flat.size - 1 - k]
    if np.sort(clipped.ravel())[clipped.size - 1 - k] or not top > 0:
        return 0.8
    return 0.98 * clip_dn / float(top)


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
    saturation_dn: dark-subtracted signal where pixels saturate (from photon transfer; default:
    measured by overexposing, `calibration.saturation.probe_saturation`).
    Each step predicts the exposure from the exponential speckle law and from the measured
    values themselves, and takes the shorter. Raises CalibrationError when even the shortest
    exposure clips (too much light) or the mean signal at the chosen exposure is below min_snr
    times the dark noise (too little light).
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
    search = _Search(source, p, clip_target, lo, hi, saturation_dn)
    t = search.run(max_steps)
    mean_signal = search.mean_signal
    cam_hi = source.exposure_range_us[1]
    floor = min_snr * max(search.noise, _QUANT_NOISE_DN)
    weak = mean_signal < floor
    if weak and t >= 0.999 * hi and max_exposure_us is None and hi < cam_hi:
        # too dim within the frame period: longer frames are better than no signal
        return choose_exposure(
            source, p, clip_target, min_snr, cam_hi,
            search.clip_dn if search.probed else None, max_steps
        )
    if t < 0.999 * hi and mean_signal < max(search.noise, _QUANT_NOISE_DN):
        raise CalibrationError(
            f"the camera saturates too early for these inputs: at {t:.1f} us the brightest "
            f"speckle reaches saturation ({search.clip_dn:.1f} DN above dark) while the mean "
            f"signal is {mean_signal:.2f} DN, below the dark noise "
            f"({search.noise:.2f} DN); raise the camera gain or its full well (bit depth)"
        )
    if weak and t >= 0.999 * hi:
        raise CalibrationError(
            f"too little light: mean signal {mean_signal:.2f} DN at {t:.1f} us is buried in the "
            f"dark noise ({search.noise:.2f} DN); check the laser and the optical path"
            + (", or allow longer exposures (--max-exposure-us)" if t < cam_hi else "")
        )
    return ExposureResult(
        exposure_us=float(t),
        clipped_fraction=search.clipped_fraction,
        mean_signal_dn=mean_signal,
        steps=search.steps,
        predicted_clipped=_predicted_clipped(search.signal, search.clip_dn, 1.0),
        noise_dn=search.noise,
        headroom_dn=float(search.clip_dn),
    )


class _Search:
    """State of one exposure search (see choose_exposure)."""

    def __init__(self, source: FrameSource, patterns: np.ndarray, target: float, lo: float,
                 hi: float, saturation_dn: float | None) -> None:
        self.source, self.p, self.target, self.lo, self.hi = source, patterns, target, lo, hi
        self.clip_dn = saturation_dn
        self.probed = saturation_dn is not None
        self.steps = 0
        self.best: tuple[float, np.ndarray, float, float] | None = None  # longest good one

    def measure(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        v, clipped, self.noise, dark_level = _measure(self.source, self.p, t, self.clip_dn)
        self.steps += 1
        if self.clip_dn is None:
            med = float(np.median(v))
            if med > 3.0 * max(self.noise, 0.5):
                probe = probe_saturation(self.source, self.p, t, med)
                self.clip_dn = probe.clip_dn
                self.probed = True
            else:  # too dim to probe: the caller retries with longer exposures or refuses
                self.clip_dn = 0.95 * (float(self.source.max_dn) - dark_level)
            v, clipped, self.noise, _ = _measure(self.source, self.p, t, self.clip_dn)
            self.steps += 1
        self.n_values = v.size
        self.allowed = max(int(self.target * v.size), 2)
        frac = float(clipped.sum()) / v.size
        if clipped.sum() <= self.allowed and (self.best is None or t > self.best[0]):
            self.best = (t, v.mean(axis=1), frac, self.noise)
        self._last = (t, v.mean(axis=1), frac)
        return v, clipped

    def too_much_light(self, frac: float) -> CalibrationError:
        return CalibrationError(
            f"too much light: even the shortest exposure ({self.lo} us) clips {frac:.2e} of "
            f"the pixels (target {self.target:.0e}); reduce the laser power or add a "
            "neutral-density filter"
        )

    def run(self, max_steps: int) -> float:
        t = self.hi
        for _ in range(max_steps):
            v, clipped = self.measure(t)
            n_clip = int(clipped.sum())
            signal = v.mean(axis=1)
            if n_clip > _HEAVY_CLIP * v.size:
                if t <= self.lo:
                    raise self.too_much_light(n_clip / v.size)
                t = max(self.lo, t / 4.0)
                continue
            if not signal.mean() > 0:
                self.best = (t, signal, n_clip / v.size, self.noise)
                break  # no light at all: the SNR check names it
            model = _scale_for_target(signal, self.clip_dn, self.target)
            empirical = _empirical_scale(v, clipped, self.clip_dn, self.allowed)
            t_new = float(np.clip(t * min(model, empirical), self.lo, self.hi))
            if n_clip <= self.allowed and abs(t_new - t) <= 0.05 * t:
                self.best = (t, signal, n_clip / v.size, self.noise)  # converged
                break
            if t_new <= self.lo and t <= self.lo and n_clip > self.allowed:
                raise self.too_much_light(n_clip / v.size)
            t = t_new
        if self.best is None:
            raise CalibrationError(
                f"exposure search found no exposure in [{self.lo:.1f}, {self.hi:.1f}] us with "
                f"fewer than {self.target:.0e} of the values saturated in {max_steps} steps "
                f"(last: {self._last[2]:.1e} at {self._last[0]:.1f} us); the light level "
                "changes between acquisitions: check the laser's stability"
            )
        t, self.signal, self.clipped_fraction, self.noise = self.best
        self.mean_signal = float(self.signal.mean())
        return t
