"""Fixed-pattern properties of the simulated sensor, per pixel, from the camera seed: PRNU gain,
DSNU offset, hot pixels (high dark current) and dead pixels (no response). Addressed by global
pixel id, so any ROI sees the same sensor."""

from __future__ import annotations

import numba as nb
import numpy as np

from .counter_rng import derive_key, draw, gauss_pair, uniform
from .profile import CameraProfile, NoiseSwitches


@nb.njit(parallel=True, cache=True)
def _draw_maps(seed: np.uint64, pixel_ids: np.ndarray, out: np.ndarray) -> None:
    key = derive_key(seed, np.uint64(7), np.uint64(0))
    for i in nb.prange(pixel_ids.shape[0]):
        z0, z1 = gauss_pair(draw(key, np.uint64(2 * pixel_ids[i])))
        u = uniform(draw(key, np.uint64(2 * pixel_ids[i] + 1)))
        out[i, 0] = z0
        out[i, 1] = z1
        out[i, 2] = u


def sensor_maps(
    camera: CameraProfile, noise: NoiseSwitches, camera_seed: int, pixel_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-pixel maps for `pixel_ids`: 'gain' (PRNU x dead, relative), 'dark_rel' (dark current
    multiplier, hot pixels > 1), 'offset_e' (DSNU, electrons), 'hot' and 'dead' (bool)."""
    ids = np.ascontiguousarray(pixel_ids, dtype=np.int64)
    raw = np.empty((ids.size, 3), dtype=np.float64)
    _draw_maps(np.uint64(camera_seed), ids, raw)
    u = raw[:, 2]
    defects = noise.defects
    dead = (u < camera.dead_pixel_fraction) & defects
    hot = (u > 1.0 - camera.hot_pixel_fraction) & defects
    gain = 1.0 + (camera.prnu_rel * raw[:, 0] if noise.prnu else 0.0)
    gain = np.where(dead, 0.0, gain)
    dark_rel = np.where(hot, camera.hot_pixel_dark_factor, 1.0)
    offset = camera.dsnu_e * raw[:, 1] if noise.dsnu else np.zeros(ids.size)
    return {
        "gain": gain.astype(np.float32),
        "dark_rel": dark_rel.astype(np.float32),
        "offset_e": offset.astype(np.float32),
        "hot": hot,
        "dead": dead,
    }
