"""Transmission matrix: seeded, addressed by (seed, element, pixel), reproducible across tilings
and processes; different seeds uncorrelated; drift is continuous (the model; the medium holds
it on a tau/1024 time grid), decorrelates as exp(-d / tau) at any time, costs the same at any
time and is the same tile by tile as dense."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.errors import ConfigurationError, InputError
from opu_sim import drift_model
from opu_sim.coefficient_grid import STEP
from opu_sim.transmission import DRIFT_QUANTUM_TAU, TransmissionMatrix

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


TAU = 7.0
DRIFT_IDS = np.arange(250, dtype=np.int64) * 31 + 3


def _corr(a: np.ndarray, b: np.ndarray) -> complex:
    a, b = a.ravel().astype(np.complex128), b.ravel().astype(np.complex128)
    return np.vdot(a, b) / np.sqrt(np.vdot(a, a).real * np.vdot(b, b).real)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("t0", [0.0, 0.37 * TAU, 1e6 * TAU])
def test_drift_correlation_follows_exp(seed, t0):
    """corr(T(t0), T(t0 + d)) = exp(-d / tau) within 0.02 for lags tau/100 .. 2 tau, at any t0.
    100,000 entries: the estimate's standard error is <= 1/sqrt(1e5) = 0.003, so 0.02 is a
    6-sigma bound (the model itself is within 1e-4)."""
    t = TransmissionMatrix(seed=seed, drift_time_s=TAU)
    t.set_time(t0)
    a = t.coefficients(DRIFT_IDS, 0, 400)
    e = np.abs(a) ** 2
    assert abs(e.mean() - 1) < 0.015  # E|T|^2 = 1 at every time
    for lag in np.geomspace(0.01, 2.0, 9):
        t.set_time(t0 + lag * TAU)
        c = _corr(a, t.coefficients(DRIFT_IDS, 0, 400))
        assert abs(c.real - np.exp(-lag)) < 0.02, (lag, c)
        assert abs(c.imag) < 0.02


def test_drift_model_table_fits_exp():
    lags = np.geomspace(0.01, 2.0, 400)
    err = np.abs(drift_model.model_correlation(lags) - np.exp(-lags))
    assert err.max() < drift_model.FIT_TOLERANCE
    assert drift_model.SCALE_COUNTS.sum() == 2**16
    # the phase-averaged kernel correlation R is what one entry's process has: Monte Carlo
    rng = np.random.default_rng(0)
    s = rng.random(200_000) * 50
    for x in (0.2, 0.9, 1.6):
        w0 = np.cos(np.pi * (s % 1) / 2), np.sin(np.pi * (s % 1) / 2)
        s1 = s + x
        w1 = np.cos(np.pi * (s1 % 1) / 2), np.sin(np.pi * (s1 % 1) / 2)
        same = np.floor(s1) == np.floor(s)
        nxt = np.floor(s1) == np.floor(s) + 1
        mc = np.where(same, w0[0] * w1[0] + w0[1] * w1[1], 0) + np.where(nxt, w0[1] * w1[0], 0)
        assert abs(mc.mean() - drift_model.kernel_correlation(x)) < 0.005


def test_drift_is_continuous():
    """The model has no steps (medium without a time grid, drift_quantum_s=0): over 100 times
    1e-5 tau apart (one full period of the finest knot grid, so entries on it cross a knot) no
    entry of 40,000 moves by more than 0.1 (a step would move it by ~|G_n - G_n+1| ~ 1.4), and
    the correlation with the start falls smoothly."""
    t = TransmissionMatrix(seed=3, drift_time_s=TAU, drift_quantum_s=0)
    ids = np.arange(100, dtype=np.int64)
    t0 = 123.4
    t.set_time(t0)
    first = prev = t.coefficients(ids, 0, 400)
    corrs = []
    for k in range(1, 101):
        t.set_time(t0 + k * 1e-5 * TAU)
        now = t.coefficients(ids, 0, 400)
        assert np.abs(now - prev).max() < 0.1, k
        corrs.append(_corr(first, now).real)
        prev = now
    assert 0 < 1 - corrs[-1] < 5e-3
    assert np.all(np.diff(corrs) < 0)  # moves at every step, never jumps back


def test_drift_is_held_on_the_quantum_grid():
    """By default the medium shows T(q floor(t / q)), q = tau / 1024: inside one quantum T
    is held (no draws), and at any clock time it is bit for bit the continuous model at the
    grid time; the grid is a function of t alone (any order, any quantum history)."""
    q = TAU * DRIFT_QUANTUM_TAU
    held = TransmissionMatrix(seed=6, drift_time_s=TAU)
    assert held.drift_quantum_s == q
    exact = TransmissionMatrix(seed=6, drift_time_s=TAU, drift_quantum_s=0)
    held.set_time(37 * q)
    a = held.stacked(PIXELS, 0, 200)
    d0 = held.draws
    for frac in (0.25, 0.5, 0.999):
        assert not held.set_time(37 * q + frac * q)
        np.testing.assert_array_equal(held.stacked(PIXELS, 0, 200), a)
    assert held.draws == d0 and held.time_s == 37 * q
    for clock in (38 * q, 1234.5678, 0.3 * q, 1e6 * TAU + 0.7 * q, 40.5 * q):
        assert held.set_time(clock)
        exact.set_time(np.floor(clock / q) * q)
        assert held.time_s == exact.time_s
        np.testing.assert_array_equal(held.stacked(PIXELS, 0, 200), exact.stacked(PIXELS, 0, 200))
    # one quantum step moves T by what the continuous model moves in q: corr = rho(q / tau)
    held.set_time(1000 * q)
    before = held.coefficients(DRIFT_IDS, 0, 400)
    held.set_time(1001 * q)
    c = _corr(before, held.coefficients(DRIFT_IDS, 0, 400)).real
    assert abs(c - drift_model.model_correlation(DRIFT_QUANTUM_TAU)) < 0.003, c


@pytest.mark.parametrize("quantum", [-1.0, float("nan"), float("inf"), "1"])
def test_bad_drift_quantum(quantum):
    with pytest.raises(ConfigurationError):
        TransmissionMatrix(seed=1, drift_time_s=TAU, drift_quantum_s=quantum)


def test_drift_cost_does_not_grow_with_time():
    """At most DRAWS_PER_ENTRY draws per entry early on (3, and 4 in an entry's second knot
    interval), exactly 3 at t = 1e6 tau, and no more time there (timed alternately, best of 7,
    so that load from other processes hits both alike)."""
    ids = np.arange(300, dtype=np.int64)
    mats = {t0: TransmissionMatrix(seed=2, drift_time_s=TAU, cache_budget_bytes=0)
            for t0 in (0.0, 1e6 * TAU)}
    costs = {t0: 0 for t0 in mats}
    best = {t0: np.inf for t0 in mats}
    for t0, t in mats.items():
        t.set_time(t0 + 0.5)
        t.stacked(ids[:8], 0, 500)  # compiled, warm
    for k in range(7):
        for t0, t in mats.items():
            t.set_time(t0 + k + 1.0)
            d0 = t.draws
            start = time.perf_counter()
            t.stacked(ids, 0, 500)
            best[t0] = min(best[t0], time.perf_counter() - start)
            costs[t0] = t.draws - d0
    n = 300 * 500
    assert costs[1e6 * TAU] == 3 * n  # every entry past its second knot interval
    assert 3 * n < costs[0.0] <= drift_model.DRAWS_PER_ENTRY * n
    assert best[1e6 * TAU] < 3 * best[0.0], best


def test_drift_tiles_equal_dense_and_time_is_a_pure_function():
    dense = TransmissionMatrix(seed=4, drift_time_s=TAU)
    free = TransmissionMatrix(seed=4, drift_time_s=TAU, cache_budget_bytes=0)
    for when in (0.0, 5.5, 2.25, 1e4):  # any order: T(t) depends on t alone
        dense.set_time(when)
        free.set_time(when)
        whole = dense.stacked(PIXELS, 0, 300)
        tiles = list(free.blocks(PIXELS, 0, 300, 4))
        n = PIXELS.size
        re = np.concatenate([tile[: sl.stop - sl.start] for sl, tile in tiles])
        im = np.concatenate([tile[sl.stop - sl.start :] for sl, tile in tiles])
        np.testing.assert_array_equal(np.concatenate([re, im]), whole)
        np.testing.assert_array_equal(whole[:n, 100:150], free.stacked(PIXELS, 100, 150)[:n])
        fresh = TransmissionMatrix(seed=4, drift_time_s=TAU)
        fresh.set_time(when)
        np.testing.assert_array_equal(fresh.stacked(PIXELS, 0, 300), whole)


@pytest.mark.parametrize("when", [0.0, 0.05, 3.0, 40.0, 1e5])
def test_drift_values_do_not_depend_on_the_pass(when):
    """The tile kernel computes knot cases m = 0 and m >= 2 in one vectorised pass and m = 1
    on column lists, or (when m = 1 is common: here at 3.0) all three in one pass; the dense
    cache computes entry by entry. Whichever way, and in tiles of any width and offset, an
    entry is the same bits (at these times the cases mix in every proportion)."""
    ids = np.array([3, 99, 12345], dtype=np.int64)
    dense = TransmissionMatrix(seed=8, drift_time_s=TAU)
    dense.set_time(when)
    whole = dense.stacked(ids, 0, 3000)
    free = TransmissionMatrix(seed=8, drift_time_s=TAU, cache_budget_bytes=0)
    free.set_time(when)
    for c0, c1 in ((0, 3000), (1, 2), (5, 12), (1000, 2100), (17, 1041)):
        np.testing.assert_array_equal(free.stacked(ids, c0, c1), whole[:, c0:c1])


def test_dense_copy_is_reused_while_time_stands_still():
    t = TransmissionMatrix(seed=4, drift_time_s=TAU)
    t.set_time(3.0)
    t.stacked(PIXELS, 0, 100)
    d0 = t.draws
    assert not t.set_time(3.0)
    t.stacked(PIXELS, 0, 100)
    assert t.draws == d0
    assert t.set_time(3.5)
    moved = t.stacked(PIXELS, 0, 100)
    # the dense copy keeps every entry's knots: only entries that crossed a knot draw again
    assert 0 < t.draws - d0 < drift_model.DRAWS_PER_ENTRY * PIXELS.size * 100 / 4
    fresh = TransmissionMatrix(seed=4, drift_time_s=TAU, cache_budget_bytes=0)
    fresh.set_time(3.5)
    np.testing.assert_array_equal(moved, fresh.stacked(PIXELS, 0, 100))


_DRIFT_CHILD = (
    "import hashlib, numpy as np; from opu_sim.transmission import TransmissionMatrix;"
    "t = TransmissionMatrix(seed=11, drift_time_s=7.0); t.set_time(12345.678);"
    "print(hashlib.sha256(t.coefficients(np.arange(64, dtype=np.int64) * 977, 0, 256)"
    ".tobytes()).hexdigest())"
)


def test_drifting_medium_is_the_same_in_another_process():
    t = TransmissionMatrix(seed=11, drift_time_s=7.0)
    t.set_time(12345.678)
    here = t.coefficients(np.arange(64, dtype=np.int64) * 977, 0, 256)
    out = subprocess.run([sys.executable, "-c", _DRIFT_CHILD], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == hashlib.sha256(here.tobytes()).hexdigest()


@pytest.mark.parametrize("when", [-1.0, float("nan"), float("inf"), "3"])
def test_bad_time(when):
    t = TransmissionMatrix(seed=4, drift_time_s=1.0)
    with pytest.raises(InputError):
        t.set_time(when)


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
        dev.ensure_calibrated()
        t0 = dev.source.clock_us * 1e-6  # intensity mode: one acquisition, taken at its start
        y0 = dev.project(x, mode="intensity")
        for wait in (2.5, 5.0):
            t_before = dev.source.clock_us * 1e-6
            dev.source.wait_s(wait)
            y = dev.project(x, mode="intensity")
            t_now = dev.source.clock_us * 1e-6
            # intensity correlation of speckle = |field correlation|^2
            c = np.corrcoef((y - y.mean()).ravel(), (y0 - y0.mean()).ravel())[0, 1]
            assert t_now >= t_before + wait
            lag = t_before + wait - t0
            assert abs(c - np.exp(-2 * lag / tau)) < 0.05, (wait, c)


def test_drift_starts_from_the_static_medium():
    """T(0) of a drifting medium is the static medium of its seed (what noise=False uses), and
    it decorrelates from it as exp(-t / tau)."""
    ids = np.arange(200, dtype=np.int64) * 7
    static = TransmissionMatrix(seed=5).coefficients(ids, 0, 500)
    t = TransmissionMatrix(seed=5, drift_time_s=TAU)
    # before rounding to the coefficient grid the two agree to 2e-5 (float32 arithmetic of the
    # drift recombination); on the grid they are equal but where a value sat within that of a
    # rounding boundary, and there one grid step apart
    d = np.abs(np.concatenate([(t.coefficients(ids, 0, 500) - static).real.ravel(),
                               (t.coefficients(ids, 0, 500) - static).imag.ravel()]))
    assert d.max() <= STEP
    assert np.mean(d == 0) > 0.999
    for lag in (0.05, 0.5, 2.0):
        t.set_time(lag * TAU)
        assert abs(_corr(static, t.coefficients(ids, 0, 500)).real - np.exp(-lag)) < 0.02
