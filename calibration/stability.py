"""Stability: how fast the medium decorrelates, measured on a schedule the data choose.

For a medium whose transmission decorrelates as exp(-d / tau) (fields), speckle intensities
correlate as exp(-2 d / tau) across pixels. Random half-ON patterns over all DMD elements are
acquired five times at t = 0 (four averaged into the reference; one frame against it gives the
same-time ceiling c0) and once per repeat; c(t) is the correlation with the reference divided
by c0, pooled over all pixels (sums kept per block of pixels for the interval).

Schedule (tau is unknown in advance): waits grow geometrically (x sqrt 2) from first_wait_s.
If the first repeat has already decorrelated, the run restarts with a 10x shorter first wait.
Once c(t) has fallen below 0.6 the steps become a quarter of the current estimate, and the run
stops when the 95 % interval of tau is narrower than +-rel_precision, when c(t) is below 0.1
(nothing left to learn), or at max_duration_s.

Fit: c = exp(-2 k t) with k = 1 / tau, least squares in c (not in log c: a late point near 0,
lifted by noise, is then worth its information, no more), weighted by each point's jackknife
variance, over the points with c < 0.9 (when there are 3): the earlier ones carry little of
tau (their decay is a few % of c) and are the most sensitive to a timing error:
up to the span of a repeat's frames on hardware and up to tau/1024 on the simulator (it holds
T for a drift time quantum): fitted, they biased tau by +1.7 % at tau = 10 min.

The 95 % interval resamples both factors of the design, pixels x patterns: a jackknife over
32 pixel blocks (disjoint rows of T, independent camera noise) and one over the 16 patterns,
each left out of the pooled sums in turn and the curve refitted, the variances added (see
_Run). It covers the camera noise and also the medium's own realisation: the intensities of
a finite set of pixels and patterns decorrelate a few % faster or slower than the ensemble
exp(-2 t / tau) (speckle intensities are skewed, so their sample correlation over ~1000 pixels
scatters by ~0.01 at c ~ 0.55), an error shared by every repeat since the same pixels and
patterns are seen each time; on the simulator the measured curve follows the noise-free
correlation of the same pixels to ~0.001, so that realisation is nearly all of the error.
The pooled ratio of sums is used, not the mean of per-block correlations: a correlation over
~40 pixels is biased low by the skewed intensities (tau was 1 % low on average).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .progress import Progress, tick

# Intensity correlation below which opu.OPU warns that the medium has drifted (fresh I(r) vs
# the calibrated one); a record stays valid while the medium is predicted to stay above it.
DRIFT_WARN_CORRELATION = 0.8
DEFAULT_MIN_CORRELATION = DRIFT_WARN_CORRELATION
DEFAULT_MAX_DURATION_S = 7200.0  # longest run, s (it stops as soon as tau is known)
DEFAULT_FIRST_WAIT_S = 1.0  # first wait, s (shortened automatically for a fast medium)
DEFAULT_REL_PRECISION = 0.07  # stop once the 95 % interval of tau is within +-7 % of it
_Z95 = 1.96
_REF_FRAMES = 4  # frames averaged into each reference
_BLOCKS = 32  # pixel blocks for the jackknife
_FIT_BELOW = 0.9  # points fitted: c below this (when at least 3 are)


@dataclass
class StabilityResult:
    """times_s: time of each repeat after the reference, s; correlation: noise-normalised
    intensity correlation with the reference; correlation_sigma: its standard error;
    decorrelation_time_s: fitted field time constant tau (inf if no decorrelation was seen);
    tau_low_s / tau_high_s: 95 % interval of tau; max_age_s: age at which the intensity
    correlation is predicted to fall to min_correlation (how long a calibration stays valid);
    noise_correlation: c0; stop_reason: why the schedule ended."""

    times_s: np.ndarray
    correlation: np.ndarray
    correlation_sigma: np.ndarray
    decorrelation_time_s: float
    tau_low_s: float
    tau_high_s: float
    max_age_s: float
    min_correlation: float
    noise_correlation: float
    points_fitted: int
    stop_reason: str = ""

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return {
            "decorrelation_time_s": self.decorrelation_time_s,
            "tau_low_s": self.tau_low_s,
            "tau_high_s": self.tau_high_s,
            "max_age_s": self.max_age_s,
            "min_correlation": self.min_correlation,
            "noise_correlation": self.noise_correlation,
            "duration_s": float(self.times_s.max()),
            "repeats": int(self.times_s.size),
            "points_fitted": self.points_fitted,
            "final_correlation": float(self.correlation[-1]),
            "stop_reason": self.stop_reason,
        }


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows of a and b ((n, P) each)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


@dataclass(frozen=True)
class TauFit:
    """tau_s (inf: no decay), its 95 % interval, points used."""

    tau_s: float
    low_s: float
    high_s: float
    points: int


def fit_decorrelation(t: np.ndarray, c: np.ndarray, sigma: np.ndarray) -> TauFit:
    """Weighted least squares of c = exp(-2 k t) for k = 1/tau (Gauss-Newton in k >= 0)."""
    t, c, s = (np.asarray(v, dtype=np.float64) for v in (t, c, sigma))
    w = 1.0 / np.maximum(s, 1e-4) ** 2
    # start from the log-linear estimate on the informative points
    sel = (c > 0.1) & (c < 0.99)
    if sel.any():
        k = max(float(np.sum(w[sel] * t[sel] * -np.log(c[sel])) /
                      np.sum(w[sel] * 2.0 * t[sel] ** 2)), 0.0)
    else:
        k = 0.0 if c.min() >= 0.99 else 1.0 / max(float(t.min()), 1e-9)
    for _ in range(50):
        m = np.exp(-2.0 * k * t)
        jac = -2.0 * t * m
        den = float(np.sum(w * jac * jac))
        if den <= 0:
            break
        step = float(np.sum(w * jac * (c - m))) / den
        k_new = max(k + step, 0.0)
        if abs(k_new - k) <= 1e-10 * max(k, 1e-12):
            k = k_new
            break
        k = k_new
    m = np.exp(-2.0 * k * t)
    jac = -2.0 * t * m
    info = float(np.sum(w * jac * jac))
    dof = max(t.size - 1, 1)
    chi2 = float(np.sum(w * (c - m) ** 2)) / dof
    se = math.sqrt(max(chi2, 1.0) / info) if info > 0 else math.inf
    k_lo, k_hi = k - _Z95 * se, k + _Z95 * se
    tau = 1.0 / k if k > 0 else math.inf
    low = 1.0 / k_hi if k_hi > 0 else 0.0
    high = 1.0 / k_lo if k_lo > 0 else math.inf
    return TauFit(tau, low, high, int(t.size))


def validity_s(tau_s: float, min_correlation: float = DEFAULT_MIN_CORRELATION) -> float:
    """Age at which the intensity correlation exp(-2 age / tau) falls to min_correlation, s."""
    return -0.5 * tau_s * math.log(min_correlation) if math.isfinite(tau_s) else math.inf


def reference_patterns(n_elements: int, n_patterns: int = 16, seed: int = 0) -> np.ndarray:
    """n_patterns random patterns with half of all DMD elements (data and anchor) ON: many
    elements per pixel, so each pixel's intensity correlation is |field correlation|^2."""
    rng = np.random.default_rng(seed)
    return (rng.random((n_patterns, n_elements)) < 0.5).astype(np.uint8)


def _block_sums(x: np.ndarray, r: np.ndarray, blocks: np.ndarray, n_blocks: int) -> np.ndarray:
    """Per pattern and pixel block, the sums behind the correlation of frames x with
    references r ((n_patterns, P) each; pattern means over all pixels removed):
    (n_patterns, n_blocks, 3) of sum x r, sum x^2, sum r^2."""
    xc = x - x.mean(axis=1, keepdims=True)
    rc = r - r.mean(axis=1, keepdims=True)
    out = np.empty((x.shape[0], n_blocks, 3))
    for k in range(x.shape[0]):
        for i, v in enumerate((xc[k] * rc[k], xc[k] * xc[k], rc[k] * rc[k])):
            out[k, :, i] = np.bincount(blocks, v, n_blocks)
    return out


def _pooled_corr(s: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """Correlation from sums s (..., 3) over the same-time ceiling from s0 (..., 3):
    sum xr / sqrt(sum x^2 sum r^2), divided by the same for c0."""
    def corr(v: np.ndarray) -> np.ndarray:
        den = np.sqrt(np.maximum(v[..., 1] * v[..., 2], 1e-300))
        return v[..., 0] / den
    return corr(s) / np.maximum(corr(s0), 1e-3)


def _jackknife_var(values: np.ndarray) -> np.ndarray:
    """Delete-one jackknife variance of leave-one-out values (n, ...) along axis 0."""
    n = values.shape[0]
    return (n - 1) / n * ((values - values.mean(axis=0)) ** 2).sum(axis=0)


class _Run:
    """One stability run: reference frames, repeats, correlation sums per pattern and per
    block of pixels.

    Each point of c(t) pools every pixel and pattern (the ratio of sums: a correlation over
    few pixels is biased by the skewed speckle intensities). The estimate averages over a
    crossed design, pixels x patterns, both random samples: the pixels (disjoint rows of T,
    independent camera noise) and the reference patterns (random ON sets shared by every
    pixel). Its interval resamples both factors -- a jackknife over pixel blocks and one over
    patterns, the variances added, as the pigeonhole bootstrap for crossed data does (Owen,
    Ann. Appl. Stat. 1 (2007) 386) -- so it covers the camera noise and this medium's own
    deviation from the ensemble exp(-2 t / tau) (the finite set of pixels and patterns
    decorrelates a few % faster or slower), also where errors are correlated across time
    (the same pixels and patterns are seen at every repeat). The pixel jackknife alone was
    too narrow: errors / its standard error had a spread of 1.09 over 40 media (coverage
    36/40), 0.94 with both (39/40)."""

    def __init__(self, source: FrameSource, pats: np.ndarray, exposure_us: float) -> None:
        self.source, self.pats, self.exposure_us = source, pats, exposure_us
        n = pats.shape[0]
        first = source.acquire(np.concatenate([pats] * (1 + _REF_FRAMES)), exposure_us)
        f = first.frames.astype(np.float64).reshape(1 + _REF_FRAMES, n, -1)
        n_px = f.shape[2]
        self.n_blocks = int(max(2, min(_BLOCKS, n_px // 8)))
        self.blocks = np.arange(n_px) % self.n_blocks
        self.ref = f[1:].mean(axis=0)  # averaged: less noise in every correlation
        # a single frame against the averaged reference: the same-time ceiling of what later
        # single frames can reach
        self.s0 = _block_sums(f[0], self.ref, self.blocks, self.n_blocks)
        tot0 = self.s0.sum(axis=(0, 1))
        self.c0 = float(tot0[0] / math.sqrt(max(tot0[1] * tot0[2], 1e-300)))
        self.t0 = float(first.timestamps_us[0]) * 1e-6
        self.end_s = self._end_s(first)
        self.times: list[float] = []
        self.sums: list[np.ndarray] = []  # (n_patterns, n_blocks, 3) per time

    def _curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """c(t) from everything (n_times,), and the leave-one-out curves: one pixel block
        out (n_blocks, n_times), one pattern out (n_patterns, n_times)."""
        s = np.array(self.sums)  # (n_times, n_patterns, n_blocks, 3)
        tot, tot0 = s.sum(axis=(1, 2)), self.s0.sum(axis=(0, 1))
        full = _pooled_corr(tot, tot0[None])
        by_block, by_pat = s.sum(axis=1), s.sum(axis=2)  # (n_times, n, 3)
        loo_b = _pooled_corr(tot[None] - by_block.transpose(1, 0, 2),
                             (tot0 - self.s0.sum(axis=0))[:, None])
        loo_p = _pooled_corr(tot[None] - by_pat.transpose(1, 0, 2),
                             (tot0 - self.s0.sum(axis=1))[:, None])
        return full, loo_b, loo_p

    @property
    def corr(self) -> np.ndarray:
        return self._curves()[0]

    @property
    def sigma(self) -> np.ndarray:
        """Standard error of each point of c(t) (both jackknifes)."""
        _, loo_b, loo_p = self._curves()
        return np.maximum(np.sqrt(_jackknife_var(loo_b) + _jackknife_var(loo_p)), 1e-3)

    def _end_s(self, b) -> float:
        """Device time at the end of batch b, s since the reference."""
        period = self.source.frame_period_us * 1e-6
        return float(b.timestamps_us[-1]) * 1e-6 - self.t0 + max(period, b.exposure_us * 1e-6)

    def repeat_at(self, target_s: float) -> float:
        """Acquire one repeat at target_s (s after the reference); returns its c."""
        self.source.wait_s(max(0.0, target_s - self.end_s))
        b = self.source.acquire(self.pats, self.exposure_us)
        self.end_s = self._end_s(b)
        self.sums.append(_block_sums(b.frames.astype(np.float64), self.ref, self.blocks,
                                     self.n_blocks))
        self.times.append(float(b.timestamps_us[0]) * 1e-6 - self.t0)
        return float(_pooled_corr(self.sums[-1].sum(axis=(0, 1)), self.s0.sum(axis=(0, 1))))

    def fit(self) -> TauFit:
        """Fit of the pooled curve; 95 % interval from the jackknifes over pixel blocks and
        patterns (Student t with the smaller jackknife's degrees of freedom)."""
        t = np.array(self.times)
        full_c, loo_b, loo_p = self._curves()
        sigma = self.sigma
        # the earliest points hold little of tau and are the most sensitive to timing
        sel = full_c < _FIT_BELOW
        if sel.sum() < 3:  # too few decayed points yet (or a static medium): fit them all
            sel[:] = True
        t, full_c, loo_b, loo_p, sigma = t[sel], full_c[sel], loo_b[:, sel], loo_p[:, sel], \
            sigma[sel]
        full = fit_decorrelation(t, full_c, sigma)
        ks_b = np.array([1.0 / fit_decorrelation(t, c, sigma).tau_s for c in loo_b])
        ks_p = np.array([1.0 / fit_decorrelation(t, c, sigma).tau_s for c in loo_p])
        var_b, var_p = float(_jackknife_var(ks_b)), float(_jackknife_var(ks_p))
        se = math.sqrt(var_b + var_p)
        # degrees of freedom of the smaller jackknife (conservative): the Welch-Satterthwaite
        # value covered tau in only 53/60 and 53/60 simulated media at tau = 40 s and 1 h
        # (tools/stability_seeds.py --seeds 60), the errors having heavier tails than a t
        z = _t95(min(ks_b.size, ks_p.size) - 1)
        k = 1.0 / full.tau_s
        k_lo, k_hi = k - z * se, k + z * se
        if k_lo <= 0:  # no significant decay: tau is only bounded from below
            return TauFit(math.inf, 1.0 / k_hi if k_hi > 0 else 0.0, math.inf, full.points)
        return TauFit(full.tau_s, 1.0 / k_hi, 1.0 / k_lo, full.points)


def _t95(dof: int) -> float:
    """Two-sided 95 % Student t quantile (normal beyond 30 degrees of freedom)."""
    table = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
             10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04, 40: 2.02, 60: 2.00}
    return next((v for d, v in sorted(table.items()) if dof <= d), _Z95)


def measure_stability(
    source: FrameSource,
    exposure_us: float,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    first_wait_s: float = DEFAULT_FIRST_WAIT_S,
    n_patterns: int = 16,
    rel_precision: float = DEFAULT_REL_PRECISION,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    max_repeats: int = 64,
    seed: int = 0,
    progress: Progress | None = None,
) -> StabilityResult:
    """Measure the medium's decorrelation time on an adaptive schedule (module docstring).

    exposure_us: camera exposure (e.g. the calibrated one); max_duration_s: longest run, s;
    first_wait_s: first wait, s (shortened automatically when the medium is faster);
    n_patterns: reference patterns per time point; rel_precision: stop when the 95 % interval
    of tau is within +-rel_precision of it; min_correlation: intensity correlation below which
    a calibration counts as stale (default: where opu.OPU warns about drift).
    """
    if not (max_duration_s > first_wait_s > 0):
        raise InputError(
            f"the stability run needs max duration > first wait > 0 s, got "
            f"{max_duration_s} and {first_wait_s} (--stability-duration-s, "
            "--stability-first-wait-s)"
        )
    if not 0 < min_correlation < 1 or n_patterns < 2 or not 0 < rel_precision < 1:
        raise InputError("need 0 < min_correlation < 1, n_patterns >= 2, 0 < rel_precision < 1")
    pats = reference_patterns(source.layout.n_elements, n_patterns, seed)
    min_wait = 10.0 * source.frame_period_us * 1e-6 * n_patterns
    wait = first_wait_s
    while True:
        run = _Run(source, pats, exposure_us)
        if not run.c0 > 0.2:
            raise CalibrationError(
                f"stability: two frames of the same pattern correlate only {run.c0:.2f}; the "
                "signal is buried in noise, calibrate the exposure first "
                "(`opu calibrate exposure`)"
            )
        if run.repeat_at(wait) > 0.5 or wait <= min_wait:
            break
        wait = max(wait / 10.0, min_wait)  # the medium is faster than the first wait
    reason = _schedule(run, wait, max_duration_s, rel_precision, max_repeats, progress)
    fit = run.fit()
    tick(progress, "stability repeats", max_repeats, max_repeats)
    return StabilityResult(
        times_s=np.array(run.times),
        correlation=run.corr,
        correlation_sigma=run.sigma,
        decorrelation_time_s=float(fit.tau_s),
        tau_low_s=float(fit.low_s),
        tau_high_s=float(fit.high_s),
        max_age_s=float(validity_s(fit.low_s, min_correlation)),
        min_correlation=min_correlation,
        noise_correlation=run.c0,
        points_fitted=fit.points,
        stop_reason=reason,
    )


def _schedule(run: _Run, wait: float, max_duration_s: float, rel_precision: float,
              max_repeats: int, progress: Progress | None) -> str:
    """Take repeats until the estimate is precise enough; returns why it stopped."""
    t = wait
    while True:
        tick(progress, "stability repeats", len(run.times), max_repeats)
        c = float(run.corr[-1])
        if c < 0.6:
            fit = run.fit()
            if math.isfinite(fit.tau_s) and fit.high_s - fit.low_s <= 2 * rel_precision * fit.tau_s:
                return f"tau known within +-{rel_precision:.0%} (95 %)"
            if c < 0.1:
                return "correlation below 0.1"
            step = 0.25 * fit.tau_s if math.isfinite(fit.tau_s) else t
            t = t + min(step, t)
        else:
            t = t * math.sqrt(2.0)
        if len(run.times) >= max_repeats:
            return f"{max_repeats} repeats"
        if t > max_duration_s:
            if run.times[-1] < max_duration_s * 0.999:
                run.repeat_at(max_duration_s)
            return f"maximum duration {max_duration_s:g} s"
        run.repeat_at(t)
