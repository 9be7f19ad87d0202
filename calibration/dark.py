"""Dark frame and hot-pixel map: frames with every mirror OFF, averaged per pixel; EMVA 1288
dark current from a dark series against exposure time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import InputError
from firmware_iface.frames import FrameSource


@dataclass(frozen=True)
class DarkFrame:
    """What the anchor calibration needs of a dark measurement: dark_dn (n_pixels,) DN,
    hot (n_pixels,) bool, pixel_ids their global ids (from a record or a DarkResult)."""

    dark_dn: np.ndarray
    hot: np.ndarray
    pixel_ids: np.ndarray


@dataclass
class DarkResult:
    """dark_dn: (n_pixels,) mean dark level, DN; noise_dn: (n_pixels,) temporal std, DN;
    hot: (n_pixels,) bool, pixels whose dark level stands out; pixel_ids: their global ids."""

    dark_dn: np.ndarray
    noise_dn: np.ndarray
    hot: np.ndarray
    pixel_ids: np.ndarray
    exposure_us: float
    n_frames: int

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return {
            "exposure_us": self.exposure_us,
            "frames": self.n_frames,
            "dark_mean_dn": float(self.dark_dn.mean()),
            "dsnu_dn": float(self.dark_dn.std()),
            "temporal_noise_dn": float(np.sqrt(np.mean(self.noise_dn**2))),
            "hot_pixels": int(self.hot.sum()),
        }


def hot_pixel_mask(dark_dn: np.ndarray, n_sigma: float = 6.0, floor_dn: float = 2.0) -> np.ndarray:
    """Pixels whose dark level exceeds the median by max(n_sigma robust sigmas, floor_dn)."""
    med = np.median(dark_dn)
    sigma = 1.4826 * np.median(np.abs(dark_dn - med))
    return (dark_dn - med) > max(n_sigma * sigma, floor_dn)


def measure_dark(source: FrameSource, exposure_us: float, n_frames: int = 16) -> DarkResult:
    """Average n_frames all-OFF frames over the source's current output pixels."""
    if n_frames < 2:
        raise InputError(f"a dark frame needs at least 2 frames, got {n_frames}")
    zeros = np.zeros((n_frames, source.layout.n_elements), dtype=np.uint8)
    batch = source.acquire(zeros, exposure_us)
    f = batch.frames.astype(np.float64)
    dark = f.mean(axis=0)
    return DarkResult(
        dark_dn=dark.astype(np.float32),
        noise_dn=f.std(axis=0, ddof=1).astype(np.float32),
        hot=hot_pixel_mask(dark),
        pixel_ids=np.asarray(batch.pixel_ids).copy(),
        exposure_us=float(batch.exposure_us),
        n_frames=n_frames,
    )


def measure_dark_current(source: FrameSource, gain_dn_per_e: float, hot: np.ndarray | None = None,
                         exposures_s: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0),
                         n_frames: int = 32) -> tuple[float, float]:
    """EMVA 1288 dark current, e-/s, from a dark series against exposure time: (mean method:
    slope of the mean dark signal / K; variance method: slope of the temporal dark variance /
    K^2). Exposures are capped at the camera's longest; hot pixels excluded."""
    lo, hi = source.exposure_range_us
    zeros = np.zeros(source.layout.n_elements, dtype=np.uint8)
    ts, means, variances = [], [], []
    for t_s in exposures_s:
        t = float(min(hi, max(lo, t_s * 1e6)))
        d = source.acquire(np.repeat(zeros[None], n_frames, axis=0), t).frames.astype(np.float64)
        keep = ~hot if hot is not None else np.ones(d.shape[1], bool)
        ts.append(t * 1e-6)
        means.append(float(d.mean(axis=0)[keep].mean()))
        variances.append(float(d.var(axis=0, ddof=1)[keep].mean()))
    ts_a = np.asarray(ts)
    if np.ptp(ts_a) <= 0:
        return float("nan"), float("nan")
    slope_mean = float(np.polyfit(ts_a, means, 1)[0])
    slope_var = float(np.polyfit(ts_a, variances, 1)[0])
    return slope_mean / gain_dn_per_e, slope_var / gain_dn_per_e**2
