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

from .dark import hot_pixel_mask, measure_dark_current
from .progress import Progress, tick
from .quantisation import sub_dn_gain_and_noise
from .saturation import probe_saturation

_QUANT_VAR = 1.0 / 12.0
_FIT_MAX_SAT = 0.7
_LIN_RANGE = (0.05, 0.8)
_DITHER_DN = 0.5  # dark noise below which quantisation is not dithered in the dark


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
        if med < min(max(10.0 * noise, 0.02 * range_dn), 0.25 * range_dn):
            if t >= hi:
                raise CalibrationError(
                    f"too little light for photon transfer: the median pixel gives {med:.2f} DN "
                    f"(dark noise {noise:.2f} DN) at the longest exposure ({hi} us); check the "
                    "laser and the optical path"
                )
            t = min(hi, max(lo, t * min(1000.0, 0.3 * range_dn / max(med, 0.1 * noise, 1e-3))))
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


@dataclass
class _Sweep:
    """Per-exposure, per-pixel temporal statistics of the sweep (n_exposures, n_pixels)."""

    exposures: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    var_raw: np.ndarray
    dmean: np.ndarray
    dvar: np.ndarray
    quantised: bool
    plateau_dn: float


def _plan_sweep(source: FrameSource, pattern: np.ndarray, n_exposures: int) -> tuple:
    """(exposures of the sweep, whether frames are integers, saturation plateau DN): linear up
    to where the median pixel reaches 1.2x the measured saturation (not the ADC range: a full
    well can sit far below it)."""
    lo, hi = source.exposure_range_us
    zeros = np.zeros_like(pattern)
    d0, b0 = _frames(source, zeros, 2, lo)
    quantised = np.issubdtype(b0.frames.dtype, np.integer)
    range_dn = float(source.max_dn - np.median(d0))
    t_probe, med, _ = _probe_exposure(source, pattern, range_dn)
    sat = probe_saturation(source, np.repeat(pattern[None], 2, axis=0), t_probe, med)
    plateau = sat.level_dn if sat.reached else range_dn
    if plateau < 0.9 * range_dn:  # full well below the ADC range: aim below it instead
        t_probe, med, _ = _probe_exposure(source, pattern, plateau)
    t_top = min(hi, t_probe * 1.2 * plateau / med)
    exposures = np.unique(
        np.clip(np.concatenate([[lo], np.linspace(t_top / n_exposures, t_top, n_exposures)]),
                lo, hi)
    )
    return exposures, quantised, plateau


def _acquire_sweep(source: FrameSource, pattern: np.ndarray, exposures: np.ndarray,
                   n_frames: int, quantised: bool, plateau: float,
                   progress: Progress | None) -> _Sweep:
    """Light and dark frames at every exposure; laser power fluctuation divided out."""
    n_e = exposures.size
    zeros = np.zeros_like(pattern)
    stats = {k: [] for k in ("mu", "var", "var_raw", "dmean", "dvar")}
    for i, t in enumerate(exposures):
        d, _ = _frames(source, zeros, n_frames, float(t))
        y, _ = _frames(source, pattern, n_frames, float(t))
        dm = d.mean(axis=0)
        ys = y - dm
        m_raw = ys.mean(axis=0)
        stats["dmean"].append(dm)
        stats["dvar"].append(d.var(axis=0, ddof=1))
        stats["var_raw"].append(ys.var(axis=0, ddof=1))
        ys = _laser_normalised(ys, (m_raw > 0) & (m_raw < 0.5 * plateau))
        stats["mu"].append(ys.mean(axis=0))
        stats["var"].append(ys.var(axis=0, ddof=1))
        tick(progress, "photon transfer sweep", i + 1, n_e + 1)
    a = {k: np.asarray(v) for k, v in stats.items()}
    return _Sweep(exposures, a["mu"], a["var"], a["var_raw"], a["dmean"], a["dvar"],
                  quantised, plateau)


def _usable_pixels(sw: _Sweep) -> tuple[np.ndarray, np.ndarray]:
    """(good, hot) pixel masks: not hot in the longest dark frame, and responsive."""
    floor = max(2.0, 5.0 * float(np.sqrt(np.median(sw.dvar[-1]))))
    hot = hot_pixel_mask(sw.dmean[-1], floor_dn=floor)
    good = ~hot & (sw.mu[-1] > 0.02 * np.median(sw.mu[-1]))
    if good.sum() < 64:
        raise CalibrationError(
            f"only {int(good.sum())} responsive pixels for photon transfer; enlarge the ROI or "
            "check the light"
        )
    return good, hot


def _saturation_plateau(m_all: np.ndarray, v_all: np.ndarray, vr_all: np.ndarray,
                        dark_all: np.ndarray, plateau: float, n_bins: int, hi: float) -> float:
    """Median signal of the points whose shot noise has vanished (DN), after a first gain
    estimate over 0-30 % of the saturation plateau."""
    low = (m_all > 0) & (m_all < 0.3 * plateau)
    xb, yb, cb = _binned(m_all[low], v_all[low], 0.3 * plateau, n_bins)
    if xb.size < 4:
        raise CalibrationError(
            "photon transfer: too few signal levels below 30 % of saturation "
            f"({plateau:.0f} DN); the camera gives too few distinct counts there"
        )
    k0, _, _ = _weighted_line(xb, yb, cb / np.maximum(yb, 1e-6) ** 2)
    if not k0 > 0:
        raise CalibrationError(
            f"photon transfer: the variance does not grow with the signal (slope {k0:.3g} "
            f"DN/e- below {0.3 * plateau:.0f} DN); the frames show no shot noise: check that "
            "the camera's gain is not zero and the light reaches the sensor"
        )
    sat_pts = (m_all > 0.3 * plateau) & (vr_all < dark_all + 0.1 * k0 * m_all)
    if sat_pts.sum() < 16:
        raise CalibrationError(
            "photon transfer did not reach saturation within the camera's exposure range "
            f"(longest exposure {hi} us): more light is needed to measure the full well"
        )
    return float(np.median(m_all[sat_pts]))


def _smoothed_mean(sw: _Sweep, good: np.ndarray, sat_dn: float) -> np.ndarray:
    """Each good pixel's mean signal as the line a_p * t through its unsaturated exposures,
    raveled like the curve points. Binning the variance by the pixel's own noisy mean would
    correlate the two (shot noise is skewed) and bias K at low counts; the line is nearly
    independent of any single exposure's variance."""
    mu = sw.mu[:, good]
    t = sw.exposures[:, None]
    w = (mu < _FIT_MAX_SAT * sat_dn) & (mu > 0)
    a = (w * mu * t).sum(axis=0) / np.maximum((w * t * t).sum(axis=0), 1e-30)
    fitted = t * a[None, :]
    return np.where(w, fitted, mu).ravel()


def _fit_gain(m_all: np.ndarray, v_all: np.ndarray, sat_dn: float, n_bins: int,
              n_frames: int, dark_var0: float) -> tuple:
    """Weighted photon-transfer fit over 0-70 % of saturation: (K, offset, stderr, bins)."""
    fit = (m_all > 0) & (m_all < _FIT_MAX_SAT * sat_dn)
    xb, yb, cb = _binned(m_all[fit], v_all[fit], _FIT_MAX_SAT * sat_dn, n_bins)
    # variance of a bin's mean variance: 2 var^2 / (count (n_frames - 1))
    w = cb * (n_frames - 1) / (2.0 * np.maximum(yb + dark_var0, 1e-6) ** 2)
    k, offset, k_err = _weighted_line(xb, yb, w)
    return k, offset, k_err, (xb, yb, cb)


def _read_noise_e(dark_var0: float, offset: float, k: float, quantised: bool) -> tuple:
    """(read noise e-, method). From the dark frames: sqrt(sigma_dark^2 - 1/12) / K. Below
    _DITHER_DN of dark noise the ADC's steps are not dithered in the dark (every pixel sits at
    the same fraction of a count), so 1/12 is wrong there: the light frames, dithered by shot
    noise, give it instead as the photon transfer line's intercept."""
    q = _QUANT_VAR if quantised else 0.0
    if quantised and math.sqrt(max(dark_var0, 0.0)) < _DITHER_DN:
        total = dark_var0 + offset
        return math.sqrt(max(total - q, 0.0)) / k, "ptc_intercept"
    return math.sqrt(max(dark_var0 - q, 0.0)) / k, "dark_frames"


def _sub_dn(source: FrameSource, pattern: np.ndarray, sw: _Sweep, good: np.ndarray,
            m_sm: np.ndarray, sat_dn: float, n_bins: int, n_frames: int, k: float,
            read_e: float, method: str) -> tuple[float, float, str]:
    """(K, read noise e-, method) from the exact moments of rounded Gaussians (module
    calibration.quantisation) and 256 dark frames; the linear results if unmeasurable."""
    d, _ = _frames(source, np.zeros_like(pattern), 256, float(sw.exposures[0]))
    try:
        k_q, s_d = sub_dn_gain_and_noise(d[:, good], m_sm.reshape(sw.mu.shape[0], -1),
                                         sw.var[:, good], _FIT_MAX_SAT * sat_dn, n_bins,
                                         n_frames, k)
    except CalibrationError as e:
        return k, read_e, f"{method} ({e})"
    return k_q, s_d / k_q, "dark_frames_ml"


def _variance_max_dn(m_all: np.ndarray, var_raw: np.ndarray, sat_dn: float,
                     n_bins: int) -> float:
    """EMVA 1288's saturation point: the mean signal where the photon transfer curve's
    variance peaks (binned by each pixel's own mean over 0..1.1 x the plateau), DN. Per pixel
    and temporal, so PRNU does not lower it as in a flat-field measurement."""
    sel = (m_all > 0) & (m_all < 1.1 * sat_dn)
    xb, yb, cb = _binned(m_all[sel], var_raw[sel], 1.1 * sat_dn, 4 * n_bins)
    if xb.size < 3:
        return float("nan")
    return float(xb[int(np.argmax(yb))])


def _quantum_efficiency(source: FrameSource, pattern: np.ndarray, sw: _Sweep, good: np.ndarray,
                        k: float, sat_dn: float) -> float:
    """Photo-electrons over photons at an exposure in the linear range, where the photon
    count is known (a source with photon_count(pattern, exposure_us): the simulator);
    NaN otherwise."""
    count = getattr(source, "photon_count", None)
    if count is None:
        return float("nan")
    med = np.median(sw.mu[:, good], axis=1)
    i = int(np.clip(np.searchsorted(med, 0.3 * sat_dn), 1, sw.exposures.size - 1))
    photons = np.asarray(count(pattern, float(sw.exposures[i])), dtype=np.float64)
    lit = good & (sw.mu[i] < 0.7 * sat_dn)
    if not lit.any() or not photons[lit].sum() > 0:
        return float("nan")
    return float(sw.mu[i][lit].sum() / k / photons[lit].sum())


def _dsnu_dn(source: FrameSource, zeros: np.ndarray, n_dark_frames: int, t: float,
             hot: np.ndarray) -> float:
    """Spatial std of an averaged dark frame, its temporal part removed, DN."""
    dd, _ = _frames(source, zeros, n_dark_frames, t)
    dm = dd.mean(axis=0)[~hot]
    dt = dd.var(axis=0, ddof=1)[~hot]
    return math.sqrt(max(float(dm.var(ddof=1) - dt.mean() / n_dark_frames), 0.0))


def _linearity(sw: _Sweep, good: np.ndarray, sat_dn: float) -> tuple:
    """EMVA LE on a band of pixels lit within 15 % of the median: (LE %, fit, band mean)."""
    n_e = sw.exposures.size
    i_ref = int(np.searchsorted(np.median(sw.mu[:, good], axis=1), 0.3 * sat_dn))
    ref = sw.mu[min(max(i_ref, 1), n_e - 1)]
    band = good & (np.abs(ref / np.median(ref[good]) - 1.0) < 0.15)
    lin_mean = sw.mu[:, band].mean(axis=1)
    sel = (lin_mean > _LIN_RANGE[0] * sat_dn) & (lin_mean < _LIN_RANGE[1] * sat_dn)
    if sel.sum() < 3:
        return float("nan"), (float("nan"), float("nan")), lin_mean
    a, b = np.polyfit(sw.exposures[sel], lin_mean[sel], 1)
    pred = a * sw.exposures[sel] + b
    dev = (lin_mean[sel] - pred) / pred * 100.0
    return float((dev.max() - dev.min()) / 2.0), (float(a), float(b)), lin_mean


def measure_photon_transfer(
    source: FrameSource,
    n_exposures: int = 16,
    n_frames: int = 16,
    n_dark_frames: int = 64,
    n_bins: int = 48,
    progress: Progress | None = None,
    dark_current: bool = True,
) -> PhotonTransferResult:
    """EMVA 1288 photon transfer from an exposure sweep of one bright pattern (all elements ON)
    over the source's current output pixels.

    n_exposures: exposures in the sweep (linear, up to where the median pixel saturates);
    n_frames: light and dark frames per exposure (per-pixel temporal statistics);
    n_dark_frames: frames of the averaged dark frame for DSNU; n_bins: photon transfer bins;
    dark_current: also measure the dark current (a dark series up to 2 s of exposure).
    Saturation is reported twice: the plateau (saturation_capacity_e) and EMVA's variance
    maximum (extra["saturation_capacity_varmax_e"]); quantum efficiency where the source
    knows its photon count (extra["quantum_efficiency"], NaN otherwise).
    Raises CalibrationError when there is too much or too little light, or saturation cannot be
    reached within the camera's exposure range.
    """
    if n_exposures < 6 or n_frames < 4 or n_dark_frames < 4 or n_bins < 8:
        raise InputError(
            "photon transfer needs n_exposures >= 6, n_frames >= 4, n_dark_frames >= 4, "
            f"n_bins >= 8; got {n_exposures}, {n_frames}, {n_dark_frames}, {n_bins}"
        )
    pattern = _bright_pattern(source)
    exposures, quantised, plateau = _plan_sweep(source, pattern, n_exposures)
    sw = _acquire_sweep(source, pattern, exposures, n_frames, quantised, plateau, progress)
    n_e = exposures.size
    good, hot = _usable_pixels(sw)
    dark_var = np.array([np.mean(dv[~hot]) for dv in sw.dvar])  # per exposure, DN^2
    dark_noise_dn = float(math.sqrt(dark_var[0]))
    m_all = sw.mu[:, good].ravel()
    v_all = (sw.var[:, good] - dark_var[:, None]).ravel()
    dark_all = np.repeat(dark_var, good.sum())
    sat_dn = _saturation_plateau(m_all, v_all, sw.var_raw[:, good].ravel(), dark_all, plateau,
                                 n_bins, source.exposure_range_us[1])
    tick(progress, "photon transfer sweep", n_e, n_e + 1)
    m_sm = _smoothed_mean(sw, good, sat_dn)
    k, offset, k_err, (xb, yb, cb) = _fit_gain(m_sm, v_all,
                                                sat_dn, n_bins, n_frames, dark_var[0])
    read_noise_e, read_method = _read_noise_e(dark_var[0], offset, k, quantised)
    if quantised and dark_noise_dn < _DITHER_DN:  # rounding not dithered: exact moments
        k, read_noise_e, read_method = _sub_dn(source, pattern, sw, good, m_sm, sat_dn,
                                               n_bins, n_frames, k, read_noise_e, read_method)
    dsnu_dn = _dsnu_dn(source, np.zeros_like(pattern), n_dark_frames,
                       float(exposures[n_e // 2]), hot)
    tick(progress, "photon transfer sweep", n_e + 1, n_e + 1)
    lin_err, lin_fit, lin_mean = _linearity(sw, good, sat_dn)
    varmax_dn = _variance_max_dn(m_all, sw.var_raw[:, good].ravel(), sat_dn, n_bins)
    dc_mean, dc_var = (measure_dark_current(source, k, hot) if dark_current
                       else (float("nan"), float("nan")))
    qe = _quantum_efficiency(source, pattern, sw, good, k, sat_dn)

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
        lin_fit=lin_fit,
        dark_var_offset_dn2=float(offset),
        pixels_used=int(good.sum()),
        frames=int(n_e * 2 * n_frames + n_dark_frames),
        extra={"quantised": bool(quantised), "hot_pixels_excluded": int(hot.sum()),
               "read_noise_method": read_method,
               "saturation_capacity_varmax_e": float(varmax_dn / k),
               "dark_current_mean_e_per_s": dc_mean, "dark_current_var_e_per_s": dc_var,
               "quantum_efficiency": qe},
    )
