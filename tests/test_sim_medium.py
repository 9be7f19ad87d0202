"""Transmission matrix: seeded, addressed by (seed, element, pixel), reproducible across tilings
and processes; different seeds uncorrelated; drift decays with the configured time constant."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.errors import ConfigurationError
from opu_sim.transmission import TransmissionMatrix

PIXELS = np.array([5, 17, 123456, 2_000_000, 42, 7], dtype=np.int64)


def test_same_coefficients_whatever_the_tiling():
    t = TransmissionMatrix(seed=7)
    whole = t.coefficients(PIXELS, 0, 300)
    left = t.coefficients(PIXELS, 0, 120)
    right = t.coefficients(PIXELS, 120, 300)
    np.testing.assert_array_equal(whole, np.concatenate([left, right], axis=1))
    # rows asked in another order / alone give the same values
    np.testing.assert_array_equal(t.coefficients(PIXELS[::-1], 0, 300), whole[::-1])
    np.testing.assert_array_equal(t.coefficients(PIXELS[2:3], 50, 60), whole[2:3, 50:60])


@settings(max_examples=25, deadline=None)
@given(c0=st.integers(0, 5000), width=st.integers(1, 64), row=st.integers(0, 2**40))
def test_any_tile_matches(c0, width, row):
    t = TransmissionMatrix(seed=1)
    ids = np.array([row, row + 1], dtype=np.int64)
    big = t.coefficients(ids, max(0, c0 - 3), c0 + width + 3)
    small = t.coefficients(ids, c0, c0 + width)
    off = c0 - max(0, c0 - 3)
    np.testing.assert_array_equal(big[:, off : off + width], small)


def test_cache_does_not_change_values():
    cached = TransmissionMatrix(seed=3)
    free = TransmissionMatrix(seed=3, cache_budget_bytes=0)
    a = cached.stacked(PIXELS, 0, 100)
    b = cached.stacked(PIXELS, 0, 100)  # from the cache
    c = np.concatenate([tile for _, tile in free.blocks(PIXELS, 0, 100, 6)])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


_CHILD = (
    "import hashlib, numpy as np; from opu_sim.transmission import TransmissionMatrix;"
    "t = TransmissionMatrix(seed=11).coefficients(np.arange(64, dtype=np.int64) * 977, 0, 256);"
    "print(hashlib.sha256(t.tobytes()).hexdigest())"
)


def test_two_processes_agree():
    here = TransmissionMatrix(seed=11).coefficients(np.arange(64, dtype=np.int64) * 977, 0, 256)
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == hashlib.sha256(here.tobytes()).hexdigest()


def test_distribution_and_seed_independence():
    ids = np.arange(400, dtype=np.int64)
    a = TransmissionMatrix(seed=1).coefficients(ids, 0, 2500).ravel()
    b = TransmissionMatrix(seed=2).coefficients(ids, 0, 2500).ravel()
    n = a.size
    assert abs(np.mean(np.abs(a) ** 2) - 1) < 0.01  # E|T|^2 = 1
    assert abs(np.mean(a.real * a.imag)) < 5 / np.sqrt(n)  # Re, Im independent
    corr = np.abs(np.vdot(a, b)) / np.sqrt(np.vdot(a, a).real * np.vdot(b, b).real)
    assert corr < 5 / np.sqrt(n)


def test_drift_decorrelates_with_time_constant():
    tau = 2.0
    t = TransmissionMatrix(seed=4, drift_time_s=tau)
    ids = np.arange(300, dtype=np.int64)
    t0 = t.coefficients(ids, 0, 300).ravel()
    for dt in (0.5, 1.0, 2.0, 4.0):
        t.set_time(dt)
        tt = t.coefficients(ids, 0, 300).ravel()
        corr = np.vdot(t0, tt).real / np.vdot(t0, t0).real
        expected = np.exp(-np.floor(dt / t.drift_step_s) * t.drift_step_s / tau)
        assert abs(corr - expected) < 0.02, (dt, corr, expected)
    # a fresh object asked for the same time agrees with the one that stepped there
    fresh = TransmissionMatrix(seed=4, drift_time_s=tau)
    fresh.set_time(4.0)
    np.testing.assert_allclose(fresh.coefficients(ids, 0, 300), t.coefficients(ids, 0, 300),
                               atol=2e-5)


def test_drift_needs_dense_storage():
    t = TransmissionMatrix(seed=4, drift_time_s=1.0, cache_budget_bytes=0)
    with pytest.raises(ConfigurationError, match="drift"):
        next(t.blocks(PIXELS, 0, 10, 4))


def test_clock_cannot_run_backwards():
    t = TransmissionMatrix(seed=4, drift_time_s=1.0)
    t.set_time(3.0)
    with pytest.raises(ConfigurationError):
        t.set_time(1.0)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "x"])
def test_bad_seed(seed):
    with pytest.raises(ConfigurationError):
        TransmissionMatrix(seed=seed)


def test_projection_decorrelates_on_device():
    """A repeated projection through the whole device decays as exp(-t / tau)."""
    from dataclasses import replace

    from opu import OPU
    from opu_sim.profile import DeviceProfile, MediumProfile, NoiseSwitches

    tau = 5.0
    prof = replace(DeviceProfile.default(), medium=MediumProfile(drift_time_s=tau),
                   noise=replace(NoiseSwitches.none(), drift=True))
    rng = np.random.default_rng(0)
    x = (rng.random((4, 300)) < 0.5).astype(np.uint8)
    with OPU(n_in=300, n_out=600, seed=2, profile=prof) as dev:
        y0 = dev.project(x, mode="intensity")
        step = dev.source.medium.drift_step_s
        for wait in (2.5, 5.0):
            t_before = dev.source.clock_us * 1e-6
            dev.source.wait_s(wait)
            y = dev.project(x, mode="intensity")
            t_now = dev.source.clock_us * 1e-6
            # intensity correlation of speckle = |field correlation|^2
            c = np.corrcoef((y - y.mean()).ravel(), (y0 - y0.mean()).ravel())[0, 1]
            lag = np.floor(t_now / step) * step
            assert t_now >= t_before + wait
            assert abs(c - np.exp(-2 * lag / tau)) < 0.05, (wait, c)
