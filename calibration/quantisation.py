"""Noise statistics of integer (quantised) camera frames where the noise is below a DN step.

A camera reports DN = round(x), x ~ N(m, s^2) in DN. While s is well above half a DN the
rounding adds 1/12 DN^2 to the variance whatever m is (Sheppard's correction); below ~0.5 DN
it does not: the variance of round(x) then depends on where m sits between two counts. In the
dark every pixel sits at nearly the same fraction of a count (the black level; its spread, the
DSNU, is a small fraction of a DN), so the dark variance is not sigma^2 + 1/12; in light frames
the per-pixel means are spread by the signal, but a photon transfer bin holds pixels within a
fraction of a DN of each other, so its quantisation noise is not 1/12 either.

Here the exact moments of round(N(m, s^2)) (sum over the unit bins) give:
- `dark_noise_ml`: the dark noise sigma by maximum likelihood of every pixel's dark-frame DN
  histogram (a Gaussian integrated over each unit bin), one sigma for all pixels and one mean per
  pixel (EMVA 1288 assumes one temporal dark noise for the sensor);
- `gain_fit_quantised`: the system gain K by least squares of the binned photon-transfer
  variances against the same bins' exact predicted variance of round(N(level, s_d^2 + K mu)).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ndtr

from firmware_iface.errors import CalibrationError

_EXACT_BELOW_DN = 2.0  # above this sigma the rounding adds 1/12 DN^2 to within 1e-30
_HALF_WIDTH_SIGMAS = 8.0  # bins summed on each side of the mean
_MAX_BIAS = 0.1  # largest bootstrap bias of the dark-noise fit that is still corrected


def quantised_moments(m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of round(x), x ~ N(m, s^2) (DN, elementwise; s > 0)."""
    m, s = np.broadcast_arrays(np.asarray(m, np.float64), np.asarray(s, np.float64))
    shape = m.shape
    m, s = m.ravel(), s.ravel()
    mean, var = m.copy(), s * s + 1.0 / 12.0
    small = s < _EXACT_BELOW_DN
    if small.any():
        ms, ss = m[small], s[small]
        half = int(math.ceil(_HALF_WIDTH_SIGMAS * float(ss.max()))) + 1
        base = np.round(ms)
        offs = np.arange(-half, half + 1, dtype=np.float64)
        v = base[:, None] + offs[None, :]  # candidate counts
        cdf = ndtr((v[:, :] + 0.5 - ms[:, None]) / ss[:, None])
        lower = ndtr((v - 0.5 - ms[:, None]) / ss[:, None])
        p = cdf - lower
        d = offs[None, :]
        e1 = (p * d).sum(axis=1)
        e2 = (p * d * d).sum(axis=1)
        mean[small] = base + e1
        var[small] = e2 - e1 * e1
    return mean.reshape(shape), var.reshape(shape)


def _pixel_means_ml(vals: np.ndarray, counts: np.ndarray, s: float, m: np.ndarray
                    ) -> tuple[np.ndarray, float]:
    """Per-pixel ML means for a fixed sigma s (Newton steps from m) and the total
    log-likelihood. vals: (n_px, W) distinct counts, counts: how often each was seen."""
    for _ in range(30):
        a = (vals - 0.5 - m[:, None]) / s
        b = (vals + 0.5 - m[:, None]) / s
        p = np.maximum(ndtr(b) - ndtr(a), 1e-30)
        pa, pb = np.exp(-0.5 * a * a), np.exp(-0.5 * b * b)  # phi * sqrt(2 pi)
        d1 = -(pb - pa) / (s * math.sqrt(2 * math.pi))  # dP/dm
        d2 = -(b * pb - a * pa) / (s * s * math.sqrt(2 * math.pi))  # d2P/dm2
        g = (counts * d1 / p).sum(axis=1)
        h = (counts * (d2 / p - (d1 / p) ** 2)).sum(axis=1)
        step = np.where(h < 0, -g / np.where(h < 0, h, -1.0), np.sign(g) * 0.1)
        step = np.clip(step, -0.25, 0.25)
        m = m + step
        if float(np.abs(step).max()) < 1e-7:
            break
    a = (vals - 0.5 - m[:, None]) / s
    b = (vals + 0.5 - m[:, None]) / s
    ll = float((counts * np.log(np.maximum(ndtr(b) - ndtr(a), 1e-300))).sum())
    return m, ll


def _fit_sigma(d: np.ndarray) -> tuple[float, np.ndarray]:
    """Plain ML fit (dark_noise_ml without its bias correction)."""
    centre = np.median(d, axis=0)
    lo, hi = float((d - centre).min()), float((d - centre).max())
    if hi - lo < 1:
        raise CalibrationError(
            "dark frames show no temporal noise at all (every pixel reads one constant "
            "count): the read noise is far below one DN and cannot be measured; raise the "
            "camera's gain"
        )
    offs = np.arange(lo, hi + 1)
    vals = centre[:, None] + offs[None, :]
    counts = (d.T[:, :, None] == vals[:, None, :]).sum(axis=1).astype(np.float64)
    state = {"m": d.mean(axis=0)}

    def neg_ll(log_s: float) -> float:
        m, ll = _pixel_means_ml(vals, counts, math.exp(log_s), state["m"].copy())
        state["m"] = m
        return -ll

    s_guess = math.sqrt(max(float(d.var(axis=0, ddof=1).mean()), 1e-4))
    res = minimize_scalar(neg_ll, bounds=(math.log(0.02), math.log(max(4.0 * s_guess, 0.1))),
                          method="bounded", options={"xatol": 1e-5})
    s = math.exp(float(res.x))
    m, _ = _pixel_means_ml(vals, counts, s, state["m"].copy())
    return s, m


def dark_noise_ml(frames: np.ndarray, seed: int = 0) -> tuple[float, np.ndarray]:
    """Temporal dark noise sigma (DN) and each pixel's continuous dark level (DN) by maximum
    likelihood of integer dark frames (n_frames, n_pixels): DN = round(N(m_p, sigma^2)).

    The per-pixel means are nuisance parameters fitted from the same frames, which biases the
    ML sigma low (by 0.4 % at 0.3 DN and 256 frames, more at fewer frames or lower noise);
    a parametric bootstrap removes it: frames simulated from the fitted means and sigma are
    fitted the same way, and sigma is scaled by true / refitted. Raises CalibrationError when
    the frames hold no spread at all (the noise is then far below a DN)."""
    d = np.asarray(frames, dtype=np.float64)
    n = d.shape[0]
    if n < 4:
        raise CalibrationError(f"the dark-noise fit needs at least 4 dark frames, got {n}")
    s, m = _fit_sigma(d)
    rng = np.random.default_rng(seed)
    try:
        s_sim, _ = _fit_sigma(np.round(m[None, :] + s * rng.standard_normal(d.shape)))
    except CalibrationError:
        s_sim = 0.0
    if not abs(s_sim / s - 1.0) < _MAX_BIAS:
        raise CalibrationError(
            f"the dark noise ({s:.2f} DN) is too far below one DN step to be measured from "
            f"{n} dark frames: pixels rarely leave their count; raise the camera's gain"
        )
    return s * s / s_sim, m


def gain_fit_quantised(level: np.ndarray, mu: np.ndarray, var: np.ndarray, sigma_dark: float,
                       k0: float, bins: np.ndarray, weights: np.ndarray) -> float:
    """System gain K (DN/e-) from photon-transfer points of integer frames.

    level: continuous mean DN of each point (dark level + signal); mu: its dark-subtracted
    signal, DN; var: its measured temporal variance, DN^2; sigma_dark: dark noise, DN; k0: a
    first estimate; bins: each point's photon-transfer bin (-1: unused); weights: per bin.
    Minimises sum_b w_b (mean var_b - mean predicted var_b(K))^2 with the predicted variance
    of round(N(level, sigma_dark^2 + K mu))."""
    use = bins >= 0
    lv, mv, vv, bv = level[use], mu[use], var[use], bins[use]
    n_b = int(bv.max()) + 1
    cnt = np.maximum(np.bincount(bv, minlength=n_b), 1)
    obs = np.bincount(bv, vv, n_b) / cnt

    def cost(k: float) -> float:
        _, pred = quantised_moments(lv, np.sqrt(sigma_dark**2 + k * np.maximum(mv, 0.0)))
        model = np.bincount(bv, pred, n_b) / cnt
        return float(np.sum(weights[:n_b] * (obs - model) ** 2))

    res = minimize_scalar(cost, bounds=(0.5 * k0, 2.0 * k0), method="bounded",
                          options={"xatol": 1e-6 * k0})
    return float(res.x)


def sub_dn_gain_and_noise(dark_frames: np.ndarray, mu: np.ndarray, var: np.ndarray,
                          fit_hi_dn: float, n_bins: int, n_frames: int, k0: float
                          ) -> tuple[float, float]:
    """(K in DN/e-, temporal dark noise in DN) of a camera whose dark noise is below half a DN.

    dark_frames: (n, n_px) integer dark frames; mu, var: (n_exposures, n_px) each pixel's
    dark-subtracted mean signal and temporal variance (DN, DN^2; same pixels); fit_hi_dn: top
    of the photon-transfer fit; n_bins: its bins over (0, fit_hi_dn]; n_frames: frames behind
    each variance; k0: the linear fit's K (start of the search)."""
    sigma_d, dark_level = dark_noise_ml(dark_frames)
    level = (dark_level[None, :] + mu).ravel()
    m, v = mu.ravel(), var.ravel()
    edges = np.linspace(0.0, fit_hi_dn, n_bins + 1)
    idx = np.digitize(m, edges) - 1
    idx[(m <= 0) | (idx >= n_bins)] = -1
    cnt = np.bincount(idx[idx >= 0], minlength=n_bins)
    idx[(idx >= 0) & (cnt[np.maximum(idx, 0)] < 8)] = -1
    mean_var = np.bincount(idx[idx >= 0], v[idx >= 0], n_bins) / np.maximum(cnt, 1)
    # variance of a bin's mean variance: 2 var^2 / (count (n_frames - 1))
    w = cnt * (n_frames - 1) / (2.0 * np.maximum(mean_var, 1e-6) ** 2)
    k = gain_fit_quantised(level, m, v, sigma_d, k0, idx, w)
    return k, sigma_d
