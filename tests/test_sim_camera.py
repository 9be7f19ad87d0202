"""The EMVA 1288 camera chain of the simulator: mean/variance follow K, read noise, full well."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.geometry import CameraRoi, DmdLayout
from opu_sim.bench import OpticalBench
from opu_sim.profile import DeviceProfile


def make_bench(profile: DeviceProfile, n: int = 200, n_pix: int = 2000) -> OpticalBench:
    lay = DmdLayout.fit(n, n)
    roi = CameraRoi.centred(n_pix, profile.camera.sensor_width, profile.camera.sensor_height)
    return OpticalBench(profile, 11, lay, roi)


def temporal_stats(bench: OpticalBench, pattern: np.ndarray, exposure: float, n: int = 200):
    f = bench.acquire(np.repeat(pattern[None], n, axis=0), exposure).frames.astype(np.float64)
    return f.mean(axis=0), f.var(axis=0, ddof=1)


@pytest.fixture(scope="module")
def quiet_profile():
    # laser fluctuation and PRNU/DSNU do not change per-pixel temporal statistics except the
    # laser; turn the laser off to test the camera alone.
    return DeviceProfile.default().with_noise(laser=False, drift=False)


def test_variance_follows_gain_and_read_noise(quiet_profile):
    cam = quiet_profile.camera
    bench = make_bench(quiet_profile)
    pat = np.zeros(400, np.uint8)
    pat[:150] = 1
    mean, var = temporal_stats(bench, pat, 100.0)
    dmean, dvar = temporal_stats(bench, np.zeros(400, np.uint8), 100.0)
    signal = mean - dmean
    ok = (mean < 0.9 * cam.max_dn) & (signal > 5)
    # photon transfer: var = K * signal + var_dark  (var_dark = K^2 sigma_r^2 + 1/12)
    k_fit, c_fit = np.polyfit(signal[ok], var[ok], 1)
    assert abs(k_fit / cam.gain_dn_per_e - 1) < 0.05
    expected_dark = (cam.gain_dn_per_e * cam.read_noise_e) ** 2 + 1 / 12
    assert abs(np.median(dvar) / expected_dark - 1) < 0.1
    assert abs(c_fit / expected_dark - 1) < 0.5


def test_black_offset_and_dark_mean(quiet_profile):
    cam = quiet_profile.camera
    bench = make_bench(quiet_profile)
    dmean, _ = temporal_stats(bench, np.zeros(400, np.uint8), 100.0, n=50)
    assert abs(np.median(dmean) - cam.black_offset_dn) < 0.2


def test_full_well_clips(quiet_profile):
    cam = quiet_profile.camera
    bench = make_bench(quiet_profile)
    pat = np.ones(400, np.uint8)
    batch = bench.acquire(np.repeat(pat[None], 4, axis=0), 50_000.0)
    top = min(cam.full_well_e * cam.gain_dn_per_e + cam.black_offset_dn, cam.max_dn)
    bright = batch.frames.astype(np.float64)
    # saturated pixels sit at the full-well level or the ADC maximum, whichever comes first
    assert bright.max() <= cam.max_dn
    sat = bright[bright > top - 5]
    assert sat.size > 0.5 * bright.size
    assert abs(np.median(sat) - top) < 2.0
    assert batch.saturated.sum() >= sat.size * 0.9


def test_ideal_camera_is_exact_float():
    prof = DeviceProfile.ideal()
    bench = make_bench(prof)
    pat = (np.arange(400) % 3 == 0).astype(np.uint8)
    f = bench.acquire(pat[None], 80.0).frames
    assert f.dtype == np.float32
    t = bench.transmission(0, 400)  # data and anchor regions: the field is their sum
    expected = bench.dn_per_unit(80.0) * np.abs(t @ pat.astype(np.float64)) ** 2
    np.testing.assert_allclose(f[0], expected + prof.camera.black_offset_dn, rtol=2e-6)


def test_eight_bit_camera_dtype():
    from dataclasses import replace

    prof = DeviceProfile.default()
    prof = replace(prof, camera=replace(prof.camera, bit_depth=8, gain_dn_per_e=0.007))
    bench = make_bench(prof)
    f = bench.acquire(np.ones((2, 400), np.uint8), 100.0).frames
    assert f.dtype == np.uint8


def test_anchor_field_cache_overflow_keeps_every_row():
    """Many distinct anchor contents in one call, some cached before: all rows correct."""
    prof = DeviceProfile.ideal()
    bench = make_bench(prof)
    rng = np.random.default_rng(5)
    pats = np.zeros((30, 400), np.uint8)
    pats[:, 200:] = rng.random((30, 200)) < 0.5
    first = bench.acquire(pats[:10], 50.0).frames  # caches 10 anchor contents
    both = bench.acquire(pats, 50.0).frames  # 20 new ones overflow the cache
    t = bench.transmission(0, 400)
    expected = bench.dn_per_unit(50.0) * np.abs(pats.astype(np.float64) @ t.T) ** 2
    np.testing.assert_allclose(both, expected + prof.camera.black_offset_dn, rtol=2e-6)
    np.testing.assert_array_equal(first, both[:10])


@pytest.mark.parametrize("collide", [False, True])
def test_unique_rows_reconstructs_every_pattern(monkeypatch, collide):
    import opu_sim.bench as bench_mod

    if collide:  # every row hashes alike: the byte comparison must still separate them
        monkeypatch.setattr(bench_mod, "_HASH_MASK", np.uint64(0))
    rng = np.random.default_rng(3)
    base = (rng.random((7, 50)) < 0.5).astype(np.uint8)
    p = base[rng.integers(0, 7, 40)]
    uniq, inv = bench_mod._unique_rows(p)
    np.testing.assert_array_equal(uniq[inv], p)
    assert len(uniq) == len({r.tobytes() for r in p})
    f = rng.random((9, 5)).astype(np.float32)[[0, 1, 0, 2, 1, 3, 4, 5, 6]]
    uf, iv = bench_mod._unique_rows(f)
    np.testing.assert_array_equal(uf[iv], f)


@pytest.mark.parametrize("noise", [True, False])
@pytest.mark.parametrize("n_data", [7, 32, 33])
def test_summed_data_fields_give_the_field_products_bits(monkeypatch, noise, n_data):
    """Narrow binary data regions (<= SUMMED_FIELDS_MAX_COLS) have their fields summed per
    frame inside the camera kernel; the frames are the same bits as through the field
    product (all-OFF data rows, repeated rows, bool patterns, a drifting medium included)."""
    import opu_sim.bench as bench_mod

    prof = DeviceProfile.default() if noise else DeviceProfile.ideal()
    rng = np.random.default_rng(n_data)
    lay = DmdLayout.fit(n_data, n_data)
    pats = (rng.random((61, lay.n_elements)) < 0.4).astype(np.uint8)
    pats[::5, :n_data] = 0  # data-OFF frames (dark when the anchor is off too)
    pats[::10, n_data:] = 0
    pats[20:30] = pats[10:20]  # repeated rows
    taken = []
    real = bench_mod.OpticalBench._summed_data

    def spy(self, p):
        out = real(self, p)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(bench_mod.OpticalBench, "_summed_data", spy)
    frames = {}
    for limit in (bench_mod.SUMMED_FIELDS_MAX_COLS, 0):
        monkeypatch.setattr(bench_mod, "SUMMED_FIELDS_MAX_COLS", limit)
        roi = CameraRoi.centred(300, prof.camera.sensor_width, prof.camera.sensor_height)
        bench = OpticalBench(prof, 11, lay, roi)
        a = bench.acquire(pats, 40.0)
        bench.wait_s(600.0)  # the medium moves on (default profile: it drifts)
        frames[limit] = (a, bench.acquire(pats.astype(bool), 40.0))
    assert taken == [n_data <= 32] * 2 + [False] * 2
    for got, want in zip(*frames.values(), strict=True):
        np.testing.assert_array_equal(got.frames, want.frames)
        np.testing.assert_array_equal(got.saturated, want.saturated)
