"""Where the camera saturates, measured rather than assumed.

A camera saturates at its full well or at the top of its ADC, whichever comes first; with a
full well at 10 % of the ADC range, the ADC maximum says nothing. Overexposing a speckle field
shows the saturation directly: a pixel whose light would exceed it reads one value, the
plateau (up to read noise), while unsaturated pixels spread exponentially. The probe exposes
so that the median pixel would reach twice the ADC range (so most pixels saturate, wherever the
plateau lies) and takes the median of the brightest 40 % of the values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError
from firmware_iface.frames import FrameSource


@dataclass(frozen=True)
class SaturationProbe:
    """level_dn: dark-subtracted signal of the saturation plateau, DN; spread_dn: robust std of
    the plateau values (read noise and DSNU), DN; exposure_us: probe exposure; reached: whether
    a plateau was seen (False: the longest exposure does not saturate; level_dn is then the
    ADC range above the dark level)."""

    level_dn: float
    spread_dn: float
    exposure_us: float
    reached: bool

    @property
    def clip_dn(self) -> float:
        """Dark-subtracted signal from which a value counts as saturated, DN."""
        return max(self.level_dn - max(5.0 * self.spread_dn, 1.0), 0.5 * self.level_dn)


def dark_subtracted(source: FrameSource, patterns: np.ndarray, exposure_us: float,
                    n_dark: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames - mean dark frame (B, P) float64, the raw frames, the mean dark frame (P,))."""
    dark = source.acquire(np.zeros((n_dark, source.layout.n_elements), np.uint8), exposure_us)
    d = dark.frames.astype(np.float64).mean(axis=0)
    raw = source.acquire(patterns, exposure_us).frames
    return raw.astype(np.float64) - d, raw, d


def probe_saturation(
    source: FrameSource, patterns: np.ndarray, exposure_us: float, median_dn: float
) -> SaturationProbe:
    """Find the saturation plateau of `patterns` (bright inputs, (B, n_elements)).

    exposure_us, median_dn: an exposure and the median dark-subtracted signal there (below
    saturation), from which the probe exposure is scaled (signal is linear in exposure).
    """
    lo, hi = source.exposure_range_us
    if not median_dn > 0:
        raise CalibrationError(
            "saturation probe: no signal above the dark level; check the laser and the "
            "optical path"
        )
    zeros = np.zeros((2, source.layout.n_elements), np.uint8)
    d = source.acquire(zeros, float(exposure_us)).frames.astype(np.float64)
    noise = noise_from_dark_pair(d[0], d[1])
    range_dn = float(source.max_dn) - float(np.median(d))
    t_probe = float(min(hi, max(lo, exposure_us * 2.0 * range_dn / median_dn)))
    for _ in range(3):
        v, _, dark = dark_subtracted(source, patterns, t_probe)
        top = v[v >= np.percentile(v, 60.0)]
        level = float(np.median(top))
        spread = 1.4826 * float(np.median(np.abs(top - level)))
        if level > 20.0 * noise and spread <= max(0.02 * level, 3.0 * noise + 1.0):
            return SaturationProbe(level, spread, t_probe, True)
        if t_probe >= hi:
            break
        t_probe = float(min(hi, 4.0 * t_probe))
    # no plateau up to 32x the exposure that puts the median at the ADC range (or the longest
    # exposure): this camera does not saturate within reach (e.g. an ideal float detector)
    return SaturationProbe(float(source.max_dn) - float(np.median(dark)), 0.0, t_probe, False)


def clipped_mask(v: np.ndarray, raw: np.ndarray, max_dn: float, clip_dn: float) -> np.ndarray:
    """Values at saturation: at the ADC maximum or above clip_dn (dark-subtracted)."""
    return (raw >= max_dn) | (v >= clip_dn)


def noise_from_dark_pair(d0: np.ndarray, d1: np.ndarray) -> float:
    """Temporal dark noise (DN) from two dark frames, hot pixels excluded."""
    diff = d0 - d1
    mad = float(np.median(np.abs(diff - np.median(diff))))
    core = diff[np.abs(diff) <= 10.0 * (mad + 1.0)]
    return float(np.std(core) / math.sqrt(2.0))
