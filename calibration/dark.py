"""Dark frame and hot-pixel map: frames with every mirror OFF, averaged per pixel."""

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
