"""Calibration works for any consistent camera and for every shape the default OPU accepts.

Cameras: 8/10/12 bit, K 0.05-2 DN/e-, full well from 10 % to beyond 100 % of the ADC range
(the light scaled with the full well, as a user sets the laser for the camera). Photon
transfer recovers K, read noise and saturation within 5 %; the quick calibration (exposure,
dark, anchor) and the linearity self-test pass. Inconsistent profiles are refused by name.
"""

from __future__ import annotations

import dataclasses as dc
import warnings

import pytest

from calibration.linearity import linearity_selftest
from calibration.ptc import measure_photon_transfer
from calibration.quick import calibrate_for_projection
from firmware_iface.errors import ConfigurationError
from firmware_iface.geometry import CameraRoi
from opu.device import OPU
from opu_sim.bench import OpticalBench
from opu_sim.profile import DeviceProfile
from tools.camera_grid import LAYOUT, camera_profile, refused, saturation_e

# (bits, K, full well / ADC range): corners and middle of the consistent region, including
# the 8-bit, K = 0.05 corner (25 DN of signal, 0.3 DN read noise: below one DN step)
FAST_CAMERAS = [(8, 0.05, 0.1), (8, 0.134, 0.1), (10, 0.05, 0.3), (12, 2.0, 0.3),
                (12, 0.134, 0.6)]
SLOW_CAMERAS = [(b, k, f) for b in (8, 10, 12) for k in (0.05, 0.134, 0.5, 2.0)
                for f in (0.1, 0.3, 1.2) if (b, k, f) not in FAST_CAMERAS]


def _profile_or_refusal(bits: int, k: float, frac: float) -> DeviceProfile | None:
    """The profile; None (after checking the refusal) where the grid expects one."""
    if refused(bits, k, frac):
        with pytest.raises(ConfigurationError, match="below 30x the read noise"):
            camera_profile(bits, k, frac)
        return None
    return camera_profile(bits, k, frac)


def _check_ptc(bits: int, k: float, frac: float) -> None:
    p = _profile_or_refusal(bits, k, frac)
    if p is None:
        return
    b = OpticalBench(p, 1, LAYOUT, CameraRoi.centred(1600, 1920, 1200))
    r = measure_photon_transfer(b)
    assert r.gain_dn_per_e == pytest.approx(k, rel=0.05)
    assert r.read_noise_e == pytest.approx(p.camera.read_noise_e, rel=0.05)
    assert r.saturation_capacity_e == pytest.approx(saturation_e(p), rel=0.05)
    # below half a DN of dark noise the rounding is not dithered: the exact-moment fit
    sub_dn = k * p.camera.read_noise_e < 0.5
    assert (r.extra["read_noise_method"] == "dark_frames_ml") == sub_dn


@pytest.mark.parametrize(("bits", "k", "frac"), FAST_CAMERAS)
def test_photon_transfer_any_camera(bits, k, frac):
    _check_ptc(bits, k, frac)


@pytest.mark.slow
@pytest.mark.parametrize(("bits", "k", "frac"), SLOW_CAMERAS)
def test_photon_transfer_camera_grid(bits, k, frac):
    _check_ptc(bits, k, frac)


QUICK_FAST = [(8, 0.05, 0.1), (12, 2.0, 0.1), (10, 0.5, 1.2)]


def _check_quick(bits: int, k: float, frac: float) -> None:
    p = _profile_or_refusal(bits, k, frac)
    if p is None:
        return
    b = OpticalBench(p, 1, LAYOUT, CameraRoi.centred(1221, 1920, 1200))
    cal = calibrate_for_projection(b, 256, 1024, b.roi)
    # target 1e-5 of the 16 sample inputs' values, or 2 values when that is less than one
    assert cal.results["exposure"]["clipped_fraction"] <= max(1e-5, 2.0 / (16 * 1221))
    lin = linearity_selftest(b, cal)
    assert lin.passed and 0.85 < lin.ratio < 1.2


@pytest.mark.parametrize(("bits", "k", "frac"), QUICK_FAST)
def test_quick_calibration_any_camera(bits, k, frac):
    _check_quick(bits, k, frac)


@pytest.mark.slow
@pytest.mark.parametrize(("bits", "k", "frac"), [c for c in FAST_CAMERAS + SLOW_CAMERAS
                                                 if c not in QUICK_FAST and c[2] == 0.1])
def test_quick_calibration_camera_grid(bits, k, frac):
    _check_quick(bits, k, frac)


@pytest.mark.parametrize(("change", "match"), [
    ({"black_offset_dn": 1.0}, "black_offset_dn=1.0 DN is within 3 read-noise sigmas"),
    ({"full_well_e": 100.0}, "fills less than 5 % of the ADC range"),
    ({"bit_depth": 8, "gain_dn_per_e": 2.0, "black_offset_dn": 60.0},
     "below 30x the read noise"),
    ({"quantum_efficiency": 1.2}, "quantum_efficiency=1.2"),
    ({"min_exposure_us": 10.0, "max_exposure_us": 5.0}, "exposure range"),
    ({"black_offset_dn": 3000.0}, "half the 12-bit range"),
])
def test_inconsistent_profiles_are_refused(change, match):
    p = DeviceProfile.default()
    with pytest.raises(ConfigurationError, match=match):
        dc.replace(p, camera=dc.replace(p.camera, **change))


def _calibrates(n_in: int, n_out: int, seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with OPU(n_in=n_in, n_out=n_out, seed=seed) as opu:
            cal = opu.calibrate()
            n_values = 16 * opu.roi.n_pixels  # the search's 16 sample inputs
    assert cal.results["exposure"]["clipped_fraction"] <= max(1e-5, 2.0 / n_values)
    assert cal.output_pixels.size == n_out


# the shapes whose exposure search used not to converge, and a few others
@pytest.mark.parametrize(("n_in", "n_out", "seed"),
                         [(10, 4096, 0), (10, 8192, 0), (32, 8192, 0), (16, 1024, 2)])
def test_default_opu_calibrates_dfa_shapes(n_in, n_out, seed):
    _calibrates(n_in, n_out, seed)


@pytest.mark.slow
@pytest.mark.parametrize("n_in", [10, 16, 32])
@pytest.mark.parametrize("n_out", [1024, 2048, 4096, 8192])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_opu_calibrates_shape_grid(n_in, n_out, seed):
    _calibrates(n_in, n_out, seed)
