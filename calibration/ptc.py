"""Photon transfer after EMVA 1288 (release 4.0), over any frame source.

Light comes through a scattering medium, so the illumination is speckle: every pixel sees its
own intensity. The method therefore works per pixel, with temporal statistics only:

- one fixed bright pattern (all elements ON) is shown at a sweep of exposures; at each exposure
  n_frames light and n_frames dark frames are taken;
- per pixel: mean signal mu = mean(y) - mean(dark) and temporal variance var(y) (frame-to-frame
  laser power fluctuation, common to all pixels of a frame, is divided out first);
- photon transfer: var - var_dark = K * mu over 0..70 % of saturation gives the system gain K
  (DN/e-), binned over pixels and exposures and fitted by weighted least squares;
- temporal dark noise from dark frames at the shortest exposure (1/12 DN^2 quantisation noise
  removed for integer frames), read noise = sigma_dark / K;
- saturation: pixels whose shot noise has vanished (variance at the dark level) sit at the
  saturation plateau; its median, divided by K, is the saturation capacity (e-);
- DSNU: spatial std of an averaged dark frame, temporal part removed;
- linearity error: mean signal of a band of equally lit pixels against exposure, 5-80 % of
  saturation, LE = (max - min of the relative deviation from the line) / 2;
- SNR curve: temporal mu / sigma against mu (measured), and the model from K, sigma_dark.

PRNU needs a flat field that speckle never gives; see calibration.prnu.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .dark import hot_pixel_mask
from .progress import Progress, tick

_QUANT_VAR = 1.0 / 12.0
_FIT_MAX_SAT = 0.7
_LIN_RANGE = (0.05, 0.8)


@dataclass
class PhotonTransferResult:
    """EMVA 1288 quantities. DN: camera counts; e-: electrons.

    gain_dn_per_e: system gain K and its standard error; dark_noise_dn: temporal dark noise
    (quantisation included); read_noise_e: dark noise without quantisation, in e-;
    saturation_dn: dark-subtracted signal at saturation; saturation_capacity_e: the same in e-;
    dsnu_dn / dsnu_e: dark signal non-uniformity (spatial std); linearity_error_pct: EMVA LE;
    snr_max: temporal SNR at saturation; dynamic_range_db: 20 log10(saturation / dark noise).
    Curves (arrays) are kept for plots: see `arrays()`.
    """

    gain_dn_per_e: float
    gain_stderr: float
    dark_noise_dn: float
    read_noise_e: float
    saturation_dn: float
    saturation_capacity_e: float
    dsnu_dn: float
    dsnu_e: float
    linearity_error_pct: float
    snr_max: float
    dynamic_range_db: float
    exposures_us: np.ndarray
    curve_mean_dn: np.ndarray
    curve_var_dn2: np.ndarray
    curve_count: np.ndarray
    lin_exposure_us: np.ndarray
    lin_mean_dn: np.ndarray
    lin_fit: tuple[float, float]
    dark_var_offset_dn2: float
    pixels_used: int
    frames: int
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain numbers for reports and the calibration record."""
        return {
            "gain_dn_per_e": self.gain_dn_per_e,
            "gain_stderr": self.gain_stderr,
            "dark_noise_dn": self.dark_noise_dn,
            "read_noise_e": self.read_noise_e,
            "saturation_dn": self.saturation_dn,
            "saturation_capacity_e": self.saturation_capacity_e,
            "dsnu_dn": self.dsnu_dn,
            "dsnu_e": self.dsnu_e,
            "linearity_error_pct": self.linearity_error_pct,
            "snr_max": self.snr_max,
            "dynamic_range_db": self.dynamic_range_db,
            "exposure_min_us": float(self.exposures_us.min()),
            "exposure_max_us": float(self.exposures_us.max()),
            "pixels_used": self.pixels_used,
            "frames": self.frames,
            **self.extra,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Curves for the calibration record and plots (name -> 1-D array)."""
        return {
            "ptc_exposures_us": self.exposures_us,
            "ptc_mean_dn": self.curve_mean_dn,
            "ptc_var_dn2": self.curve_var_dn2,
            "ptc_count": self.curve_count,
            "ptc_lin_exposure_us": self.lin_exposure_us,
            "ptc_lin_mean_dn": self.lin_mean_dn,
        }

    def snr_model(self, mean_dn: np.ndarray) -> np.ndarray:
        """Temporal SNR predicted by K and the dark noise at dark-subtracted signals mean_dn."""
        mu = np.asarray(mean_dn, dtype=np.float64)
        return mu / np.sqrt(self.dark_noise_dn**2 + self.gain_dn_per_e * np.maximum(mu, 0.0))


def _bright_pattern(source: FrameSource) -> np.ndarray:
    return np.ones(source.layout.n_elements, dtype=np.uint8)


def _frames(source: FrameSource, pattern: np.ndarray, n: int, exposure_us: float) -> tuple:
    batch = source.acquire(np.repeat(pattern[None], n, axis=0), exposure_us)
    return batch.frames.astype(np.float64), batch


def _laser_normalised(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Divide out the frame-to-frame power factor (common to all pixels of a frame)."""
    if mask.sum() < 16:
        return y
    per_frame = y[:, mask].mean(axis=1)
    ref = per_frame.mean()
    if not ref > 1.0 or per_frame.min() < 0.5 * ref:
        return y
    return y * (ref / per_frame)[:, None]


def _probe_exposure(
    source: FrameSource, pattern: np.ndarray, range_dn: float
) -> tuple[float, float, float]:
    """Find an exposure where the median pixel is well above the noise and below saturation;
    returns (exposure_us, median signal DN there, temporal dark noise DN)."""
    lo, hi = source.exposure_range_us
    t = float(min(hi, max(lo, source.frame_period_us)))
    zeros = np.zeros_like(pattern)
    for _ in range(8):
        d, _ = _frames(source, zeros, 2, t)
        y, _ = _frames(source, pattern, 2, t)
        noise = float(np.std(d[0] - d[1]) / math.sqrt(2.0))
        med = float(np.median(y.mean(axis=0) - d.mean(axis=0)))
        if med > 0.5 * range_dn:
            if t <= lo:
                raise CalibrationError(
                    f"too much light for photon transfer: the median pixel is at {med:.0f} DN "
                    f"of {range_dn:.0f} already at the shortest exposure ({lo} us); reduce the "
                    "laser power or add a neutral-density filter"
                )
            t = max(lo, t * 0.25 * range_dn / med)
            continue
        if med < max(10.0 * noise, 0.02 * range_dn):
            if t >= hi:
                raise CalibrationError(
                    f"too little light for photon transfer: the median pixel gives {med:.2f} DN "
                    f"(dark noise {noise:.2f} DN) at the longest exposure ({hi} us); check the "
                    "laser and the optical path"
                )
            t = min(hi, t * min(1000.0, 0.2 * range_dn / max(med, 0.1 * noise, 1e-3)))
            continue
        return t, med, noise
    raise CalibrationError("photon transfer could not find a usable exposure; check the light")


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted least squares y = a x + b; returns (a, b, stderr of a)."""
    a_mat = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(a_mat, y * np.sqrt(w), rcond=None)
    resid = (y - coef[0] * x - coef[1]) * np.sqrt(w)
    dof = max(1, x.size - 2)
    cov = np.linalg.inv(a_mat.T @ a_mat) * float(resid @ resid) / dof
    return float(coef[0]), float(coef[1]), float(math.sqrt(max(cov[0, 0], 0.0)))


def _binned(mu: np.ndarray, var: np.ndarray, hi: float, n_bins: int) -> tuple:
    """Mean of mu and var in n_bins equal bins of mu over (0, hi]; bins with >= 8 points."""
    edges = np.linspace(0.0, hi, n_bins + 1)
    idx = np.digitize(mu, edges) - 1
    ok = (idx >= 0) & (idx < n_bins)
    cnt = np.bincount(idx[ok], minlength=n_bins).astype(np.float64)
    sm = np.bincount(idx[ok], weights=mu[ok], minlength=n_bins)
    sv = np.bincount(idx[ok], weights=var[ok], minlength=n_bins)
    keep = cnt >= 8
    return sm[keep] / cnt[keep], sv[keep] / cnt[keep], cnt[keep]


def measure_photon_transfer(
    source: FrameSource,
    n_exposures: int = 16,
    n_frames: int = 16,
    n_dark_frames: int = 64,
    n_bins: int = 48,
    progress: Progress | None = None,
) -> PhotonTransferResult:
    """EMVA 1288 photon transfer from an exposure sweep of one bright pattern (all elements ON)
    over the source's current output pixels.

    n_exposures: exposures in the sweep (linear, up to where the median pixel saturates);
    n_frames: light and dark frames per exposure (per-pixel temporal statistics);
    n_dark_frames: frames of the averaged dark frame for DSNU; n_bins: photon transfer bins.
    Raises CalibrationError when there is too much or too little light, or saturation cannot be
    reached within the camera's exposure range.
    """
    if n_exposures < 6 or n_frames < 4 or n_dark_frames < 4 or n_bins < 8:
        raise InputError(
            "photon transfer needs n_exposures >= 6, n_frames >= 4, n_dark_frames >= 4, "
            f"n_bins >= 8; got {n_exposures}, {n_frames}, {n_dark_frames}, {n_bins}"
        )
    lo, hi = source.exposure_range_us
    pattern = _bright_pattern(source)
    zeros = np.zeros_like(pattern)
    d0, b0 = _frames(source, zeros, 2, lo)
    quantised = np.issubdtype(b0.frames.dtype, np.integer)
    range_dn = float(source.max_dn - np.median(d0))
    t_probe, med, _ = _probe_exposure(source, pattern, range_dn)
    # the median pixel reaches 1.2x the ADC range at the top of the sweep
    t_top = min(hi, t_probe * 1.2 * range_dn / med)
    exposures = np.unique(
        np.clip(np.concatenate([[lo], np.linspace(t_top / n_exposures, t_top, n_exposures)]),
                lo, hi)
    )
    n_e = exposures.size
    npx = b0.frames.shape[1]
    mu = np.empty((n_e, npx))
    var = np.empty((n_e, npx))
    var_raw = np.empty((n_e, npx))
    dmean = np.empty((n_e, npx))
    dvar = np.empty((n_e, npx))
    for i, t in enumerate(exposures):
        d, _ = _frames(source, zeros, n_frames, float(t))
        y, _ = _frames(source, pattern, n_frames, float(t))
        dmean[i] = d.mean(axis=0)
        dvar[i] = d.var(axis=0, ddof=1)
        ys = y - dmean[i]
        m_raw = ys.mean(axis=0)
        var_raw[i] = ys.var(axis=0, ddof=1)
        norm_mask = (m_raw > 0) & (m_raw < 0.5 * range_dn)
        ys = _laser_normalised(ys, norm_mask)
        mu[i] = ys.mean(axis=0)
        var[i] = ys.var(axis=0, ddof=1)
        tick(progress, "photon transfer sweep", i + 1, n_e + 1)

    hot = hot_pixel_mask(dmean[-1], floor_dn=max(2.0, 5.0 * float(np.sqrt(np.median(dvar[-1])))))
    responsive = mu[-1] > 0.02 * np.median(mu[-1])
    good = ~hot & responsive
    if good.sum() < 64:
        raise CalibrationError(
            f"only {int(good.sum())} responsive pixels for photon transfer; enlarge the ROI or "
            "check the light"
        )
    dark_var = np.array([np.mean(dv[~hot]) for dv in dvar])  # per exposure, DN^2
    dark_noise_dn = float(math.sqrt(dark_var[0]))

    # first gain estimate from the low part of the curve, to find saturated pixels
    m_all = mu[:, good].ravel()
    v_all = (var[:, good] - dark_var[:, None]).ravel()
    vr_all = var_raw[:, good].ravel()
    low = (m_all > 0) & (m_all < 0.3 * range_dn)
    xb, yb, cb = _binned(m_all[low], v_all[low], 0.3 * range_dn, n_bins)
    if xb.size < 4:
        raise CalibrationError("photon transfer: too few signal levels below 30 % of the range")
    k0, _, _ = _weighted_line(xb, yb, cb / np.maximum(yb, 1e-6) ** 2)
    if not k0 > 0:
        raise CalibrationError(
            f"photon transfer: the variance does not grow with the signal (slope {k0:.3g}); "
            "the frames show no shot noise: check the camera gain and the light"
        )
    dark_all = np.repeat(dark_var, good.sum())
    sat_pts = (m_all > 0.3 * range_dn) & (vr_all < dark_all + 0.1 * k0 * m_all)
    if sat_pts.sum() < 16:
        raise CalibrationError(
            "photon transfer did not reach saturation within the camera's exposure range "
            f"(longest exposure {hi} us): more light is needed to measure the full well"
        )
    sat_dn = float(np.median(m_all[sat_pts]))
    tick(progress, "photon transfer sweep", n_e, n_e + 1)

    fit = (m_all > 0) & (m_all < _FIT_MAX_SAT * sat_dn)
    xb, yb, cb = _binned(m_all[fit], v_all[fit], _FIT_MAX_SAT * sat_dn, n_bins)
    # variance of a bin's mean variance: 2 var^2 / (count (n_frames - 1))
    w = cb * (n_frames - 1) / (2.0 * np.maximum(yb + dark_var[0], 1e-6) ** 2)
    k, offset, k_err = _weighted_line(xb, yb, w)
    noise_e2 = dark_var[0] - (_QUANT_VAR if quantised else 0.0)
    read_noise_e = math.sqrt(max(noise_e2, 0.0)) / k

    # DSNU from an averaged dark frame at the middle of the sweep
    t_mid = float(exposures[n_e // 2])
    dd, _ = _frames(source, zeros, n_dark_frames, t_mid)
    dm = dd.mean(axis=0)[~hot]
    dt = dd.var(axis=0, ddof=1)[~hot]
    dsnu2 = float(dm.var(ddof=1) - dt.mean() / n_dark_frames)
    dsnu_dn = math.sqrt(max(dsnu2, 0.0))
    tick(progress, "photon transfer sweep", n_e + 1, n_e + 1)

    # linearity: a band of pixels lit like the median one
    i_ref = int(np.searchsorted(np.median(mu[:, good], axis=1), 0.3 * sat_dn))
    i_ref = min(max(i_ref, 1), n_e - 1)
    ref = mu[i_ref]
    band = good & (np.abs(ref / np.median(ref[good]) - 1.0) < 0.15)
    lin_mean = mu[:, band].mean(axis=1)
    sel = (lin_mean > _LIN_RANGE[0] * sat_dn) & (lin_mean < _LIN_RANGE[1] * sat_dn)
    if sel.sum() >= 3:
        a, b = np.polyfit(exposures[sel], lin_mean[sel], 1)
        pred = a * exposures[sel] + b
        dev = (lin_mean[sel] - pred) / pred * 100.0
        lin_err = float((dev.max() - dev.min()) / 2.0)
    else:
        a, b, lin_err = float("nan"), float("nan"), float("nan")

    sat_e = sat_dn / k
    read_e = max(read_noise_e, 1e-9)
    return PhotonTransferResult(
        gain_dn_per_e=float(k),
        gain_stderr=float(k_err),
        dark_noise_dn=dark_noise_dn,
        read_noise_e=float(read_noise_e),
        saturation_dn=sat_dn,
        saturation_capacity_e=float(sat_e),
        dsnu_dn=float(dsnu_dn),
        dsnu_e=float(dsnu_dn / k),
        linearity_error_pct=lin_err,
        snr_max=float(sat_e / math.sqrt(sat_e + read_e**2)),
        dynamic_range_db=float(20.0 * math.log10(sat_e / read_e)),
        exposures_us=exposures.astype(np.float64),
        curve_mean_dn=xb,
        curve_var_dn2=yb + dark_var[0],
        curve_count=cb,
        lin_exposure_us=exposures.astype(np.float64),
        lin_mean_dn=lin_mean,
        lin_fit=(float(a), float(b)),
        dark_var_offset_dn2=float(offset),
        pixels_used=int(good.sum()),
        frames=int(n_e * 2 * n_frames + n_dark_frames),
        extra={"quantised": bool(quantised), "hot_pixels_excluded": int(hot.sum())},
    )
