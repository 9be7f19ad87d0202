"""Simulator truth: the exact matrices a simulated OPU's outputs follow (for tests, benchmarks
and the CLI's self-test). Needs the OpticalBench behind the device."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from calibration.record import Calibration
from firmware_iface.errors import ConfigurationError

__all__ = ["linear_matrix", "transmission_matrix"]


def _bench(bench: Any) -> Any:
    if bench is None:
        raise ConfigurationError(
            "the exact matrix is known only for simulated devices (device='sim' or 'emu')"
        )
    return bench


def transmission_matrix(bench: Any, cal: Calibration, n_in: int) -> np.ndarray:
    """Complex (n_out, n_in) T_s such that intensity mode returns |T_s x|^2 without noise
    (includes the calibrated scale and each pixel's gain)."""
    bench = _bench(bench)
    t = bench.transmission(0, n_in, pixel_ids=cal.output_pixels)
    g = np.sqrt(bench.dn_per_unit(cal.exposure_us, pixel_ids=cal.output_pixels) / cal.scale_dn)
    return (t * g[:, None]).astype(np.complex64)


def linear_matrix(bench: Any, cal: Calibration, n_in: int, n_elements: int) -> np.ndarray:
    """Real (n_out, n_in) float32 G that linear mode recovers:
    G_ij = sqrt(2) Re(e^{-i phi_i} T_ij) sqrt(c_i / scale), phi_i the anchor field's phase."""
    bench = _bench(bench)
    ids = cal.output_pixels
    t = bench.transmission(0, n_in, pixel_ids=ids)
    ta = bench.transmission(n_in, n_elements, pixel_ids=ids)
    a = ta.astype(np.complex128) @ cal.anchor.astype(np.float64)
    phase = np.conj(a) / np.abs(a)
    g = np.sqrt(bench.dn_per_unit(cal.exposure_us, pixel_ids=ids) / cal.scale_dn)
    return (math.sqrt(2.0) * (phase[:, None] * t).real * g[:, None]).astype(np.float32)
