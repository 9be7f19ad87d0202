"""Linear-recovery self-test: z(a) + z(b) against z(a OR b) for disjoint binary inputs a, b.

z(x) = (I(x u r) - I(x) - I(r)) / (2 sqrt(I(r))) is exactly linear in x (DESIGN.md), so the
residual d = z(a) + z(b) - z(a u b) is pure noise. Its expected size follows from the camera
model: each frame's variance is K * I + sigma_dark^2 (shot + read noise, DN^2), propagated
through the recovery formula. The test reports the ratio of the measured rms residual to that
prediction (about 1 for a healthy device; more means nonlinearity, drift, or extra noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .progress import Progress, tick
from .record import Calibration


@dataclass
class LinearityResult:
    """ratio: rms(residual) / rms(predicted noise); passed: ratio <= max_ratio;
    residual_rms / predicted_rms: in z units (DN^(1/2)); signal_rms: rms of z(a u b);
    gain_dn_per_e, dark_noise_dn: camera model used; sum_ab, z_union: (n_pairs, n_out)
    samples for plots."""

    ratio: float
    passed: bool
    max_ratio: float
    residual_rms: float
    predicted_rms: float
    signal_rms: float
    gain_dn_per_e: float
    dark_noise_dn: float
    n_pairs: int
    sum_ab: np.ndarray
    z_union: np.ndarray

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return {
            "ratio_to_camera_noise": self.ratio,
            "passed": self.passed,
            "max_ratio": self.max_ratio,
            "residual_rms": self.residual_rms,
            "predicted_rms": self.predicted_rms,
            "signal_rms": self.signal_rms,
            "signal_to_residual": self.signal_rms / max(self.residual_rms, 1e-12),
            "gain_dn_per_e": self.gain_dn_per_e,
            "dark_noise_dn": self.dark_noise_dn,
            "pairs": self.n_pairs,
        }


def _two_frame_gain(y1: np.ndarray, y2: np.ndarray) -> tuple[float, float]:
    """K and dark variance from repeated frames: var = K mean + var_dark (least squares)."""
    m = 0.5 * (y1 + y2).ravel()
    v = 0.5 * (y1 - y2).ravel() ** 2
    k, c = np.polyfit(m, v, 1)
    return float(k), float(max(c, 0.0))


def linearity_selftest(
    source: FrameSource,
    cal: Calibration,
    n_pairs: int = 32,
    on_fraction: float = 0.25,
    gain_dn_per_e: float | None = None,
    dark_noise_dn: float | None = None,
    max_ratio: float = 1.5,
    seed: int = 0,
    progress: Progress | None = None,
) -> LinearityResult:
    """Run the self-test on cal's output pixels (the source is switched to them).

    gain_dn_per_e, dark_noise_dn: camera model (from photon transfer); when not given they are
    estimated from repeated frames here. on_fraction: ON fraction of each of a and b.
    """
    if n_pairs < 2 or not 0 < on_fraction <= 0.5:
        raise InputError(f"need n_pairs >= 2 and 0 < on_fraction <= 0.5, got {n_pairs}, "
                         f"{on_fraction}")
    lay = source.layout
    nd = lay.n_data
    source.set_output_pixels(cal.output_pixels)
    dark = cal.dark_at(source.roi.pixel_ids(), cal.output_pixels).astype(np.float64)
    i_r = cal.anchor_dn.astype(np.float64)
    rng = np.random.default_rng(seed)
    u = rng.random((n_pairs, nd))
    a = u < on_fraction
    b = (u >= on_fraction) & (u < 2 * on_fraction)
    xs = np.stack([a, b, a | b], axis=1)  # (P, 3, nd)
    pats = np.zeros((n_pairs, 3, 2, 2, lay.n_elements), dtype=np.uint8)  # pair, x, anchor, rep
    pats[..., :nd] = xs[:, :, None, None, :]
    pats[:, :, 0, :, nd:] = cal.anchor
    flat = pats.reshape(-1, lay.n_elements)
    frames = np.empty((flat.shape[0], cal.output_pixels.size))
    step = 12 * max(1, 256 // 12)
    for s in range(0, flat.shape[0], step):
        e = min(flat.shape[0], s + step)
        frames[s:e] = source.acquire(flat[s:e], cal.exposure_us).frames.astype(np.float64) - dark
        tick(progress, "linearity self-test", e, flat.shape[0])
    f = frames.reshape(n_pairs, 3, 2, 2, -1)
    if gain_dn_per_e is None or dark_noise_dn is None:
        k, vd = _two_frame_gain(f[..., 0, :], f[..., 1, :])
        gain_dn_per_e = k if gain_dn_per_e is None else gain_dn_per_e
        dark_noise_dn = math.sqrt(vd) if dark_noise_dn is None else dark_noise_dn
    if not gain_dn_per_e > 0:
        raise CalibrationError("linearity self-test: no shot noise seen; check the camera/light")
    y = f[..., 0, :]  # first repeat: single-shot frames, as project() uses them
    z = (y[:, :, 0] - y[:, :, 1] - i_r) / (2.0 * np.sqrt(i_r))  # (P, 3, n_out)
    resid = z[:, 0] + z[:, 1] - z[:, 2]
    var_frame = gain_dn_per_e * np.maximum(y, 0.0) + dark_noise_dn**2  # (P, 3, 2, n_out)
    a = cal.anchor_summary
    n_r = int(a.repeats) if a is not None and a.repeats else 16
    var_ir = (gain_dn_per_e * i_r + dark_noise_dn**2) / n_r
    pred = (var_frame.sum(axis=(1, 2)) + var_ir) / (4.0 * i_r)
    res_rms = float(np.sqrt(np.mean(resid**2)))
    pred_rms = float(np.sqrt(np.mean(pred)))
    ratio = res_rms / pred_rms
    return LinearityResult(
        ratio=ratio,
        passed=bool(ratio <= max_ratio),
        max_ratio=max_ratio,
        residual_rms=res_rms,
        predicted_rms=pred_rms,
        signal_rms=float(np.sqrt(np.mean(z[:, 2] ** 2))),
        gain_dn_per_e=float(gain_dn_per_e),
        dark_noise_dn=float(dark_noise_dn),
        n_pairs=n_pairs,
        sum_ab=(z[:, 0] + z[:, 1]).astype(np.float32),
        z_union=z[:, 2].astype(np.float32),
    )
