"""ProjectionGeometry: the typed geometry a calibration record is valid for (compared by value,
stored in the record file as its JSON object)."""

from __future__ import annotations

import dataclasses

import pytest

from calibration.record import Calibration
from firmware_iface.errors import CalibrationError
from firmware_iface.geometry import CameraRoi, DmdLayout, ProjectionGeometry
from tools.fuzz_targets import sample_record

FILE_FORM = {"n_in": 4, "n_out": 6, "layout": [4, 4, 8, 4], "roi": [0, 0, 3, 3]}


def test_of_layout_and_roi_and_value_equality():
    layout = DmdLayout(30, 16, 8, 12)
    roi = CameraRoi(8, 4, 12, 10, 1920, 1200)
    g = ProjectionGeometry.of(30, 40, layout, roi)
    assert g == ProjectionGeometry(30, 40, (30, 16, 8, 12), (8, 4, 12, 10))
    assert g == ProjectionGeometry(30, 40, [30, 16, 8, 12], [8, 4, 12, 10])  # lists -> tuples
    assert g != dataclasses.replace(g, n_out=41)
    assert g != ProjectionGeometry.of(30, 40, DmdLayout(30, 16, 4, 12), roi)
    assert g.n_anchor == 16 and g.n_roi_pixels == 120
    assert hash(g) == hash(ProjectionGeometry(30, 40, (30, 16, 8, 12), (8, 4, 12, 10)))


def test_file_form_round_trip():
    g = ProjectionGeometry.from_dict(FILE_FORM)
    assert g.as_dict() == FILE_FORM
    assert ProjectionGeometry.from_dict(g.as_dict()) == g


@pytest.mark.parametrize(
    "bad",
    [
        {"n_in": 4},
        {**FILE_FORM, "extra": 1},
        {**FILE_FORM, "n_out": True},
        {**FILE_FORM, "n_out": 6.0},
        {**FILE_FORM, "n_in": -1},
        {**FILE_FORM, "layout": [4, 4, 8]},
        {**FILE_FORM, "roi": [0, 0, "3", 3]},
        [1, 2],
    ],
)
def test_from_dict_refuses_what_is_not_a_geometry(bad):
    with pytest.raises(ValueError, match="geometry"):
        ProjectionGeometry.from_dict(bad)


def test_record_holds_the_typed_value_and_checks_by_value():
    cal = sample_record()
    assert isinstance(cal.geometry, ProjectionGeometry)  # the file form is converted
    cal.check_matches(cal.device_id, ProjectionGeometry.from_dict(FILE_FORM))
    with pytest.raises(CalibrationError, match="6 outputs.*not .*7 outputs"):
        cal.check_matches(cal.device_id, dataclasses.replace(cal.geometry, n_out=7))
    with pytest.raises(ValueError, match="n_out"):
        Calibration(**{**vars(cal), "geometry": {**FILE_FORM, "n_out": "6"}})
