"""Defective pixels: hot pixels (dark current far above the rest, visible at long exposures)
and dead pixels (no response to light), over any frame source."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .dark import hot_pixel_mask
from .progress import Progress, tick

_DEAD_REL = 0.05


@dataclass
class DefectResult:
    """hot, dead: (n_pixels,) bool over pixel_ids; dark_long_dn / dark_short_dn: mean dark
    frames at the long and short exposure, DN; light_dn: mean dark-subtracted response to
    random patterns, DN; exposures in us."""

    hot: np.ndarray
    dead: np.ndarray
    pixel_ids: np.ndarray
    dark_long_dn: np.ndarray
    dark_short_dn: np.ndarray
    light_dn: np.ndarray
    long_exposure_us: float
    short_exposure_us: float
    light_exposure_us: float

    def summary(self) -> dict:
        """Plain numbers for reports."""
        excess = self.dark_long_dn - self.dark_short_dn
        return {
            "hot_pixels": int(self.hot.sum()),
            "dead_pixels": int(self.dead.sum()),
            "pixels": int(self.hot.size),
            "long_exposure_us": self.long_exposure_us,
            "light_exposure_us": self.light_exposure_us,
            "median_dark_excess_dn": float(np.median(excess)),
            "hot_dark_excess_dn": float(np.median(excess[self.hot])) if self.hot.any() else 0.0,
        }

    def hot_ids(self) -> np.ndarray:
        """Global ids of hot pixels."""
        return self.pixel_ids[self.hot]

    def dead_ids(self) -> np.ndarray:
        """Global ids of dead pixels."""
        return self.pixel_ids[self.dead]


def _dark(source: FrameSource, n: int, exposure_us: float) -> np.ndarray:
    z = np.zeros((n, source.layout.n_elements), dtype=np.uint8)
    return source.acquire(z, exposure_us).frames.astype(np.float64)


def measure_defects(
    source: FrameSource,
    long_exposure_us: float | None = None,
    light_exposure_us: float | None = None,
    n_frames: int = 8,
    n_patterns: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
) -> DefectResult:
    """Hot and dead pixels over the source's current output pixels.

    Hot: dark level at long_exposure_us (default: 100 ms, within the camera's range) minus the
    shortest-exposure dark exceeds the median by 6 robust sigmas. Dead: mean response to
    n_patterns random half-ON patterns below 5 % of the median pixel's (speckle cannot do
    that to a working pixel: the mean of 16 independent speckle intensities is never that low).
    light_exposure_us default: the median response near 20 % of the ADC range.
    """
    if n_frames < 2 or n_patterns < 8:
        raise InputError(f"need n_frames >= 2 and n_patterns >= 8, got {n_frames}, {n_patterns}")
    lo, hi = source.exposure_range_us
    t_long = float(min(hi, 1e5) if long_exposure_us is None else long_exposure_us)
    short = _dark(source, n_frames, lo)
    tick(progress, "defect pixels", 1, 4)
    long = _dark(source, n_frames, t_long)
    tick(progress, "defect pixels", 2, 4)
    d_short, d_long = short.mean(axis=0), long.mean(axis=0)
    noise = math.sqrt(float(np.median(long.var(axis=0, ddof=1))))
    hot = hot_pixel_mask(d_long - d_short, floor_dn=max(2.0, 6.0 * noise / math.sqrt(n_frames)))

    rng = np.random.default_rng(seed)
    pats = (rng.random((n_patterns, source.layout.n_elements)) < 0.5).astype(np.uint8)
    range_dn = float(source.max_dn - np.median(d_short))
    t = float(min(hi, max(lo, source.frame_period_us))) if light_exposure_us is None else float(
        light_exposure_us
    )
    for _ in range(6 if light_exposure_us is None else 1):
        dark = _dark(source, n_frames, t).mean(axis=0)
        light = source.acquire(pats, t).frames.astype(np.float64).mean(axis=0) - dark
        med = float(np.median(light))
        if light_exposure_us is not None or 0.05 * range_dn < med < 0.4 * range_dn:
            break
        t_new = float(np.clip(t * 0.2 * range_dn / max(med, 1e-3), lo, hi))
        if t_new == t:
            break
        t = t_new
    tick(progress, "defect pixels", 3, 4)
    if not med > 5.0 * noise:
        raise CalibrationError(
            f"too little light to find dead pixels: median response {med:.2f} DN at {t:.0f} us "
            f"(dark noise {noise:.2f} DN); check the laser and the optical path"
        )
    dead = light < _DEAD_REL * med
    tick(progress, "defect pixels", 4, 4)
    return DefectResult(
        hot=hot,
        dead=dead,
        pixel_ids=source.acquire(pats[:1], lo).pixel_ids.copy(),
        dark_long_dn=d_long.astype(np.float32),
        dark_short_dn=d_short.astype(np.float32),
        light_dn=light.astype(np.float32),
        long_exposure_us=t_long,
        short_exposure_us=float(lo),
        light_exposure_us=t,
    )
