"""Typed step results: parsed in one place, tolerant of records written before a field
existed; the arrays of each step are listed, not found by name prefix."""

from __future__ import annotations

import math

import numpy as np

from calibration.quick import calibrate_for_projection
from calibration.record import Calibration
from calibration.results import STEP_ARRAYS
from calibration.stability import validity_s
from calibration.steps import StepSettings, step_exposure
from calibration.store import record_validity
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu_sim.bench import OpticalBench
from opu_sim.profile import DeviceProfile

LAYOUT = DmdLayout.fit(32, 32)


def _cal(tmp_path) -> tuple[OpticalBench, Calibration]:
    b = OpticalBench(DeviceProfile.default(), 3, LAYOUT, CameraRoi.centred(200, 1920, 1200))
    return b, calibrate_for_projection(b, 32, 128, b.roi)


def test_old_record_loads_with_typed_views(tmp_path):
    _, cal = _cal(tmp_path)
    # a record from before the stability interval and the EMVA additions
    cal.results["ptc"] = {"gain_dn_per_e": 0.128, "dark_noise_dn": 0.8, "saturation_dn": 4000}
    cal.results["stability"] = {"decorrelation_time_s": 3600.0, "max_age_s": 92.3}
    old = Calibration.load(cal.save(tmp_path / "old.npz"))
    assert old.ptc.gain_dn_per_e == 0.128 and old.ptc.read_noise_e is None
    assert old.stability.tau_low_s is None and old.stability.tau_for_validity_s == 3600.0
    assert record_validity(old).valid_for_s == validity_s(3600.0)
    assert old.anchor_summary.repeats == 16
    old.results["stability"]["decorrelation_time_s"] = "inf"  # how JSON keeps infinity
    assert math.isinf(old.stability.decorrelation_time_s)
    del old.results["ptc"]
    assert old.ptc is None


def test_exposure_step_keeps_exactly_the_other_steps_arrays(tmp_path):
    b, cal = _cal(tmp_path)
    cal.results["ptc"] = {"gain_dn_per_e": 0.128}
    keep = {n: np.arange(3.0) for n in STEP_ARRAYS["ptc"] + STEP_ARRAYS["stability"]}
    cal.extra_arrays.update(keep, ptc_unrelated_scratch=np.zeros(2), lin_sum_ab=np.zeros(2))
    new = step_exposure(b, cal, StepSettings(n_in=32, n_out=128, roi=b.roi))
    assert set(new.extra_arrays) == set(keep)  # no name-prefix guesswork
    assert new.ptc.gain_dn_per_e == 0.128
