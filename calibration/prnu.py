"""Photo-response non-uniformity (PRNU, EMVA 1288) without a flat field.

Through a scattering medium the camera never sees uniform light: pixel p receives |t_p . x|^2
for a pattern x. A Hadamard design removes the pattern dependence exactly: with the N rows of a
Sylvester Hadamard matrix H (N a power of two > n elements), the patterns
x_k = (1 + H[k, 1:n+1]) / 2 satisfy sum_k x_k x_k^T = N/4 (I + 1 1^T), so the mean frame is

    M_p = g_p (S_p + A_p) / 4,   S_p = sum_j |t_pj|^2,   A_p = |sum_j t_pj|^2 (all ON: row 0),

and 4 M_p - A_p = g_p S_p: the pixel's gain g_p (1 + PRNU) times its total transmission S_p.
S_p is a sum of n independent exponentials (fully developed speckle), so its relative variance
over pixels is 1/n; PRNU^2 = (relvar(4M - A) - temporal noise - 1/n) / (1 + 1/n). The 1/n
term is a model of the medium, which is why PRNU comes with a standard error: it is precise when
PRNU^2 is not much smaller than 1/n (many input elements).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource

from .dark import hot_pixel_mask
from .progress import Progress, tick

_CHUNK = 512


@dataclass
class PrnuResult:
    """prnu_rel: relative gain spread (std / mean) and its standard error; speckle_term: the
    1/n_elements model term removed; temporal_term: the temporal-noise term removed;
    relvar_total: measured relative spatial variance; n_patterns, pixels_used; exposure_us."""

    prnu_rel: float
    prnu_stderr: float
    speckle_term: float
    temporal_term: float
    relvar_total: float
    n_patterns: int
    pixels_used: int
    exposure_us: float

    def summary(self) -> dict:
        """Plain numbers for reports."""
        return dict(self.__dict__)


def hadamard_patterns(n_elements: int, rows: slice | None = None) -> np.ndarray:
    """Rows of (1 + H[:, 1:n+1]) / 2 for the Sylvester Hadamard matrix of order
    N = 2**ceil(log2(n+1)); uint8 (n_rows, n_elements). Row 0 is all ON."""
    if n_elements < 1:
        raise InputError(f"n_elements must be >= 1, got {n_elements}")
    n = 1 << math.ceil(math.log2(n_elements + 1))
    k = np.arange(n, dtype=np.int64)[rows if rows is not None else slice(None)]
    j = np.arange(1, n_elements + 1, dtype=np.int64)
    a = k[:, None] & j[None, :]
    parity = np.zeros(a.shape, dtype=np.int64)
    while a.any():
        parity ^= a & 1
        a >>= 1
    return (1 - parity).astype(np.uint8)


def measure_prnu(
    source: FrameSource,
    gain_dn_per_e: float,
    dark_noise_dn: float,
    saturation_dn: float,
    exposure_us: float | None = None,
    n_repeats: int = 64,
    progress: Progress | None = None,
) -> PrnuResult:
    """PRNU over the source's current output pixels, from a Hadamard pattern design.

    gain_dn_per_e, dark_noise_dn, saturation_dn: from the photon transfer (K, temporal dark
    noise and saturation, DN); exposure_us: default keeps the all-ON speckle under saturation;
    n_repeats: frames of the all-ON pattern and of the dark frame.
    """
    if not (gain_dn_per_e > 0 and saturation_dn > 0 and dark_noise_dn >= 0):
        raise InputError("measure_prnu needs K > 0, saturation > 0 and dark noise >= 0 from PTC")
    n_el = source.layout.n_elements
    n_pat = 1 << math.ceil(math.log2(n_el + 1))
    lo, hi = source.exposure_range_us
    on = np.ones((n_repeats, n_el), dtype=np.uint8)
    zeros = np.zeros((n_repeats, n_el), dtype=np.uint8)
    if exposure_us is None:
        t0 = float(min(hi, max(lo, source.frame_period_us)))
        d = source.acquire(zeros[:4], t0).frames.astype(np.float64).mean(axis=0)
        a = source.acquire(on[:4], t0).frames.astype(np.float64).mean(axis=0) - d
        mean_a = float(np.mean(a))
        if not mean_a > 0:
            raise CalibrationError("PRNU: no signal from the all-ON pattern; check the light")
        # the exponential speckle's 99.9th percentile is ~7 times its mean
        exposure_us = float(np.clip(t0 * 0.9 * saturation_dn / (8.0 * mean_a), lo, hi))
    t = float(exposure_us)
    dark = source.acquire(zeros, t).frames.astype(np.float64)
    d_mean = dark.mean(axis=0)
    a_frames = source.acquire(on, t).frames.astype(np.float64)
    a_mean = a_frames.mean(axis=0) - d_mean
    total = np.zeros_like(d_mean)
    n_chunks = math.ceil(n_pat / _CHUNK)
    for c in range(n_chunks):
        pats = hadamard_patterns(n_el, slice(c * _CHUNK, min(n_pat, (c + 1) * _CHUNK)))
        total += source.acquire(pats, t).frames.astype(np.float64).sum(axis=0)
        tick(progress, "PRNU (Hadamard patterns)", c + 1, n_chunks)
    m_mean = total / n_pat - d_mean
    s = 4.0 * m_mean - a_mean
    clip_level = np.minimum(float(source.max_dn) - 0.5, d_mean + 0.95 * saturation_dn)
    clipped = (a_frames >= clip_level).any(axis=0)
    hot = hot_pixel_mask(d_mean)
    ok = ~clipped & ~hot & (s > 0.1 * np.median(s))
    if ok.sum() < 64:
        raise CalibrationError(
            f"PRNU: only {int(ok.sum())} usable pixels (others clip or are defective); "
            "shorten the exposure or enlarge the ROI"
        )
    k = gain_dn_per_e
    v_d = dark_noise_dn**2
    var_t = (
        16.0 * (k * np.maximum(m_mean, 0) + v_d) / n_pat
        + (k * np.maximum(a_mean, 0) + v_d) / n_repeats
        + 9.0 * v_d / n_repeats
    )
    sm = float(s[ok].mean())
    relvar = float(s[ok].var(ddof=1)) / sm**2
    temporal = float(var_t[ok].mean()) / sm**2
    speckle = 1.0 / n_el
    p2 = (relvar - temporal - speckle) / (1.0 + speckle)
    p2_err = relvar * math.sqrt(2.0 / (ok.sum() - 1))
    prnu = math.sqrt(max(p2, 0.0))
    err = p2_err / (2.0 * prnu) if prnu > 0 else math.sqrt(p2_err)
    return PrnuResult(
        prnu_rel=prnu,
        prnu_stderr=float(err),
        speckle_term=speckle,
        temporal_term=temporal,
        relvar_total=relvar,
        n_patterns=n_pat,
        pixels_used=int(ok.sum()),
        exposure_us=t,
    )
