"""Stability: a reference projection repeated over time, its correlation with the first one,
and the medium's decorrelation time.

For a medium whose transmission decorrelates as exp(-t / tau) (fields), speckle intensities
correlate as exp(-2 t / tau) across pixels. The measured correlation is divided by the
correlation of two frames taken at the same time (camera noise), and
ln(c(t) / c(0)) = -2 t / tau is fitted on the points between 0.05 and 0.97.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .progress import Progress, tick

DEFAULT_MIN_CORRELATION = 0.95


@dataclass
class StabilityResult:
    """times_s: time of each repeat after the first, s; correlation: noise-normalised intensity
    correlation with the first frame; decorrelation_time_s: fitted field time constant tau
    (inf if no decorrelation was seen); max_age_s: age at which the intensity correlation falls
    to min_correlation (how long a calibration stays valid); noise_correlation: c(0)."""

    times_s: np.ndarray
    correlation: np.ndarray
    decorrelation_time_s: float
    max_age_s: float
    min_correlation: float
    noise_correlation: float
    points_fitted: int

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return {
            "decorrelation_time_s": self.decorrelation_time_s,
            "max_age_s": self.max_age_s,
            "min_correlation": self.min_correlation,
            "noise_correlation": self.noise_correlation,
            "duration_s": float(self.times_s.max()),
            "repeats": int(self.times_s.size),
            "points_fitted": self.points_fitted,
            "final_correlation": float(self.correlation[-1]),
        }


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0


def measure_stability(
    source: FrameSource,
    exposure_us: float,
    duration_s: float = 600.0,
    first_wait_s: float = 1.0,
    n_repeats: int = 16,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    seed: int = 0,
    progress: Progress | None = None,
) -> StabilityResult:
    """Repeat one random half-ON data pattern at geometrically spaced times up to duration_s
    (FrameSource.wait_s in between) and fit the decorrelation time.

    exposure_us: camera exposure (e.g. the calibrated one); min_correlation: intensity
    correlation below which a calibration counts as stale.
    """
    if not (duration_s > first_wait_s > 0) or n_repeats < 3 or not 0 < min_correlation < 1:
        raise InputError(
            "need duration_s > first_wait_s > 0, n_repeats >= 3 and 0 < min_correlation < 1"
        )
    lay = source.layout
    rng = np.random.default_rng(seed)
    pat = np.zeros((1, lay.n_elements), dtype=np.uint8)
    pat[0, : lay.n_data] = rng.random(lay.n_data) < 0.5
    first = source.acquire(np.repeat(pat, 2, axis=0), exposure_us)
    f0 = first.frames.astype(np.float64)
    t_start = float(first.timestamps_us[0]) * 1e-6
    c0 = _corr(f0[0], f0[1])
    if not c0 > 0.2:
        raise CalibrationError(
            f"stability: two frames of the same pattern correlate only {c0:.2f}; the signal is "
            "buried in noise, calibrate the exposure first (`opu calibrate exposure`)"
        )
    waits = np.geomspace(first_wait_s, duration_s, n_repeats)
    times, corr = [], []
    for i, target in enumerate(waits):
        now = float(source.acquire(pat, exposure_us).timestamps_us[0]) * 1e-6 - t_start
        source.wait_s(max(0.0, float(target) - now))
        b = source.acquire(pat, exposure_us)
        times.append(float(b.timestamps_us[0]) * 1e-6 - t_start)
        corr.append(_corr(b.frames[0].astype(np.float64), f0[0]) / c0)
        tick(progress, "stability repeats", i + 1, n_repeats)
    t = np.asarray(times)
    c = np.asarray(corr)
    sel = (c > 0.05) & (c < 0.97)
    if sel.sum() >= 1:  # one point past the noise floor is enough for a one-parameter fit
        slope = float(np.sum(t[sel] * np.log(c[sel])) / np.sum(t[sel] ** 2))
        tau = -2.0 / slope if slope < 0 else math.inf
    elif c[-1] >= 0.97:
        tau = math.inf
    else:
        raise CalibrationError(
            "stability: the projection decorrelated before the first repeat; start with a "
            "shorter first wait (--stability-first-wait-s)"
        )
    max_age = -0.5 * tau * math.log(min_correlation) if math.isfinite(tau) else math.inf
    return StabilityResult(
        times_s=t,
        correlation=c,
        decorrelation_time_s=float(tau),
        max_age_s=float(max_age),
        min_correlation=min_correlation,
        noise_correlation=c0,
        points_fitted=int(sel.sum()),
    )
