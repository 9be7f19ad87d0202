"""Stability: how fast the medium decorrelates, measured on a schedule the data choose.

For a medium whose transmission decorrelates as exp(-d / tau) (fields), speckle intensities
correlate as exp(-2 d / tau) across pixels. Random half-ON patterns over all DMD elements are
acquired five times at t = 0 (four averaged into the reference; one frame against it gives the
same-time ceiling c0) and once per repeat; c(t) is the correlation with the reference divided
by c0, computed per block of pixels.

Schedule (tau is unknown in advance): waits grow geometrically (x sqrt 2) from first_wait_s.
If the first repeat has already decorrelated, the run restarts with a 10x shorter first wait.
Once c(t) has fallen below 0.6 the steps become a quarter of the current estimate, and the run
stops when the 95 % interval of tau is narrower than +-rel_precision, when c(t) is below 0.1
(nothing left to learn), or at max_duration_s.

Fit: c = exp(-2 k t) with k = 1 / tau, least squares in c (not in log c: a late point near 0,
lifted by noise, is then worth its information, no more), weighted by each point's spread over
the pixel blocks. The 95 % interval comes from a jackknife over the blocks (disjoint rows of T,
independent camera noise), which also covers errors shared by all repeats.
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
_Z95 = 1.96
_REF_FRAMES = 4  # frames averaged into each reference
_BLOCKS = 32  # pixel blocks for the jackknife


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


def _block_corr(x: np.ndarray, r: np.ndarray, blocks: np.ndarray, n_blocks: int) -> np.ndarray:
    """Correlation of frames x with references r ((n_patterns, P) each) within each pixel
    block (pattern means over all pixels removed), (n_blocks,)."""
    xc = x - x.mean(axis=1, keepdims=True)
    rc = r - r.mean(axis=1, keepdims=True)
    num = np.bincount(blocks, (xc * rc).sum(axis=0), n_blocks)
    den = np.sqrt(np.bincount(blocks, (xc * xc).sum(axis=0), n_blocks)
                  * np.bincount(blocks, (rc * rc).sum(axis=0), n_blocks))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


class _Run:
    """One stability run: reference frames, repeats, correlations per block of pixels.

    Pixel blocks are independent samples of the medium (disjoint rows of T, independent camera
    noise), so a jackknife over them gives an honest interval, also for errors that are
    correlated across time (the same pixels are seen at every repeat)."""

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
        self.c0_per = np.maximum(_block_corr(f[0], self.ref, self.blocks, self.n_blocks), 1e-3)
        self.c0 = float(self.c0_per.mean())
        self.t0 = float(first.timestamps_us[0]) * 1e-6
        self.end_s = self._end_s(first)
        self.times: list[float] = []
        self.per: list[np.ndarray] = []  # (n_blocks,) per time

    @property
    def corr(self) -> np.ndarray:
        return np.array([p.mean() for p in self.per])

    @property
    def sigma(self) -> np.ndarray:
        n = self.n_blocks
        return np.array([max(float(p.std(ddof=1)) / math.sqrt(n), 1e-3) for p in self.per])

    def _end_s(self, b) -> float:
        """Device time at the end of batch b, s since the reference."""
        period = self.source.frame_period_us * 1e-6
        return float(b.timestamps_us[-1]) * 1e-6 - self.t0 + max(period, b.exposure_us * 1e-6)

    def repeat_at(self, target_s: float) -> float:
        self.source.wait_s(max(0.0, target_s - self.end_s))
        b = self.source.acquire(self.pats, self.exposure_us)
        self.end_s = self._end_s(b)
        c = _block_corr(b.frames.astype(np.float64), self.ref, self.blocks, self.n_blocks)
        self.per.append(c / self.c0_per)
        self.times.append(float(b.timestamps_us[0]) * 1e-6 - self.t0)
        return float(self.per[-1].mean())

    def fit(self) -> TauFit:
        """Fit of the block-mean curve; 95 % interval from a jackknife over the blocks."""
        t = np.array(self.times)
        per = np.array(self.per)  # (n_times, n_blocks)
        sigma = self.sigma
        full = fit_decorrelation(t, per.mean(axis=1), sigma)
        n = per.shape[1]
        ks = []
        for i in range(n):
            keep = np.arange(n) != i
            f = fit_decorrelation(t, per[:, keep].mean(axis=1), sigma)
            ks.append(1.0 / f.tau_s)
        ks = np.array(ks)
        k = 1.0 / full.tau_s
        se = math.sqrt((n - 1) / n * float(np.sum((ks - ks.mean()) ** 2)))
        z = _t95(n - 1)
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
    max_duration_s: float = 7200.0,
    first_wait_s: float = 1.0,
    n_patterns: int = 16,
    rel_precision: float = 0.07,
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
        c = float(run.per[-1].mean())
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
