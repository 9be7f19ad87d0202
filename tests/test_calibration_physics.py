"""Calibration steps on the simulator recover the configured truth (DeviceProfile.camera etc.)."""

from __future__ import annotations

import dataclasses as dc

import numpy as np
import pytest

from calibration.defects import measure_defects
from calibration.exposure import choose_exposure
from calibration.linearity import linearity_selftest
from calibration.prnu import hadamard_patterns, measure_prnu
from calibration.ptc import measure_photon_transfer
from calibration.quick import calibrate_for_projection, sample_inputs
from firmware_iface.errors import CalibrationError
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu_sim.bench import OpticalBench
from opu_sim.pixel_maps import sensor_maps
from opu_sim.profile import DeviceProfile

LAYOUT = DmdLayout.fit(256, 256)
CAM = DeviceProfile.default().camera
K = CAM.gain_dn_per_e  # configured truth, DN/e-
DARK_NOISE_DN = float(np.hypot(K * CAM.read_noise_e, np.sqrt(1 / 12)))  # read + quantisation
SATURATION_DN = min(CAM.full_well_e * K, CAM.max_dn - CAM.black_offset_dn)


def bench(n_px: int = 1600, seed: int = 1, **changes) -> OpticalBench:
    prof = DeviceProfile.default()
    for part, fields in changes.items():
        prof = dc.replace(prof, **{part: dc.replace(getattr(prof, part), **fields)})
    return OpticalBench(prof, seed, LAYOUT, CameraRoi.centred(n_px, 1920, 1200))


@pytest.fixture(scope="module")
def ptc_bench():
    b = bench(2500)
    return b, measure_photon_transfer(b)


def test_ptc_recovers_gain_read_noise_full_well(ptc_bench):
    b, r = ptc_bench
    cam = b.profile.camera
    assert r.gain_dn_per_e == pytest.approx(cam.gain_dn_per_e, rel=0.05)
    assert r.read_noise_e == pytest.approx(cam.read_noise_e, rel=0.05)
    assert r.saturation_capacity_e == pytest.approx(cam.full_well_e, rel=0.05)
    # DSNU 1.5 e- is 0.18 DN, below the 0.78 DN temporal noise: 15 %
    assert r.dsnu_e == pytest.approx(cam.dsnu_e, rel=0.15)
    # the simulated chain is linear up to saturation
    assert 0 <= r.linearity_error_pct < 1.0
    snr = r.snr_model(np.array([r.saturation_dn]))[0]
    assert snr == pytest.approx(np.sqrt(cam.full_well_e), rel=0.05)
    # EMVA 1288 completed: dark current by both methods, QE (the simulator knows its photons),
    # saturation also as the variance maximum, which lies below the plateau
    e = r.extra
    assert e["dark_current_mean_e_per_s"] == pytest.approx(cam.dark_current_e_per_s, rel=0.05)
    assert e["dark_current_var_e_per_s"] == pytest.approx(cam.dark_current_e_per_s, rel=0.05)
    assert e["quantum_efficiency"] == pytest.approx(cam.quantum_efficiency, rel=0.05)
    assert 0.9 * r.saturation_capacity_e < e["saturation_capacity_varmax_e"] < (
        r.saturation_capacity_e)


def test_ptc_refuses_no_light():
    with pytest.raises(CalibrationError, match="too little light"):
        measure_photon_transfer(bench(400, laser={"photons_per_mirror_us": 1e-9}))


def test_hadamard_design_second_moment():
    x = hadamard_patterns(11).astype(float)
    n = x.shape[0]
    assert n == 16 and x[0].all()
    np.testing.assert_allclose(x.T @ x, n / 4 * (np.eye(11) + 1))


def test_prnu_recovers_configured_spread():
    b = bench(1600, camera={"prnu_rel": 0.05})
    r = measure_prnu(b, K, DARK_NOISE_DN, SATURATION_DN)
    assert r.prnu_rel == pytest.approx(0.05, rel=0.12)
    assert r.prnu_stderr < 0.005


def test_defects_match_simulator_maps():
    b = bench(2500, camera={"hot_pixel_fraction": 5e-3, "dead_pixel_fraction": 5e-3})
    r = measure_defects(b)
    truth = sensor_maps(b.profile.camera, b.profile.noise, b.profile.camera_seed,
                        b.roi.pixel_ids())
    assert truth["hot"].sum() >= 5 and truth["dead"].sum() >= 5
    np.testing.assert_array_equal(r.hot, truth["hot"])
    np.testing.assert_array_equal(r.dead, truth["dead"])


def _anchor():
    a = np.zeros(LAYOUT.n_anchor, bool)
    a[:181] = True
    return a


def test_exposure_keeps_clipping_near_target():
    b = bench(1225)
    pats = sample_inputs(LAYOUT, _anchor(), 16, 0.5)
    r = choose_exposure(b, pats, clip_target=1e-3, max_exposure_us=1e5)
    big = sample_inputs(LAYOUT, _anchor(), 512, 0.5, seed=9)
    batch = b.acquire(big, r.exposure_us)
    measured = batch.saturated.sum() / batch.frames.size
    assert 0.3e-3 < measured < 2e-3  # the exponential law holds to a factor 2-3
    longer = b.acquire(big, r.exposure_us * 1.5)
    assert longer.saturated.sum() / longer.frames.size > 1e-3
    assert r.steps <= 8


@pytest.mark.parametrize(("photons", "match"), [(300.0 / 256, "too much light"),
                                                (1e-7 / 256, "too little light")])
def test_exposure_refuses_bad_light(photons, match):
    b = bench(400, laser={"photons_per_mirror_us": photons})
    with pytest.raises(CalibrationError, match=match):
        choose_exposure(b, sample_inputs(LAYOUT, _anchor(), 8, 0.5))


def test_linearity_selftest_matches_camera_noise_and_is_exact_without_noise():
    b = bench(1225)
    cal = calibrate_for_projection(b, 256, 1024, b.roi)
    r = linearity_selftest(b, cal, gain_dn_per_e=K, dark_noise_dn=DARK_NOISE_DN)
    assert 0.85 < r.ratio < 1.2 and r.passed
    r2 = linearity_selftest(b, cal)  # camera model estimated from repeated frames
    assert r2.gain_dn_per_e == pytest.approx(K, rel=0.1)
    ideal = OpticalBench(DeviceProfile.ideal(), 1, LAYOUT, CameraRoi.centred(1225, 1920, 1200))
    cal_i = calibrate_for_projection(ideal, 256, 1024, ideal.roi)
    r3 = linearity_selftest(ideal, cal_i, gain_dn_per_e=K, dark_noise_dn=DARK_NOISE_DN)
    assert r3.residual_rms < 1e-4 * r3.signal_rms

# stability: tests/test_calibration_stability.py
