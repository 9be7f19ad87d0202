"""One FrameSource conformance suite (firmware_iface.frames), in the style of python-microscope's
device test mixins: `FrameSourceConformance` states the contract once, and each source class
below runs all of it. The same bad input gets the same typed error (InputError) from the
simulator (OpticalBench) and the emulated hardware stack (OPUHardware on the rig).
"""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.errors import InputError
from firmware_iface.frames import FrameBatch, FrameSource
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu.emulated import open_hardware
from opu_sim.bench import OpticalBench
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

LAYOUT = DmdLayout.fit(24, 24)
ROI = CameraRoi.centred(48, 1920, 1200)
EXPOSURE_US = 150.0


def _patterns(b: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((b, LAYOUT.n_elements)) < 0.5).astype(np.uint8)


class FrameSourceConformance:
    """The FrameSource contract; subclasses provide a class-scoped `source` fixture."""

    def test_is_a_frame_source(self, source):
        assert isinstance(source, FrameSource)
        assert source.layout == LAYOUT and source.roi == ROI
        lo, hi = source.exposure_range_us
        assert 0 < lo < hi and source.max_dn == 4095.0 and source.frame_period_us > 0
        assert isinstance(source.device_id, str) and source.device_id

    def test_one_frame_per_pattern_in_order(self, source):
        source.set_output_pixels(None)
        b = source.acquire(_patterns(5), EXPOSURE_US)
        assert isinstance(b, FrameBatch)
        assert b.frames.shape == (5, ROI.n_pixels) and b.frames.dtype == np.uint16
        assert np.array_equal(b.pixel_ids, ROI.pixel_ids())
        assert np.all(np.diff(b.frame_ids) == 1) and np.all(np.diff(b.timestamps_us) > 0)
        assert b.exposure_us == EXPOSURE_US and b.saturated.shape == (5,)
        one = source.acquire(_patterns(5)[2], EXPOSURE_US)  # a single row as a vector
        assert one.frames.shape == (1, ROI.n_pixels)

    @pytest.mark.parametrize(
        "bad",
        [
            np.zeros((2, LAYOUT.n_elements + 1), np.uint8),  # wrong width
            np.zeros((0, LAYOUT.n_elements), np.uint8),  # no rows
            np.zeros((1, 2, LAYOUT.n_elements), np.uint8),  # 3-D
            np.full((1, LAYOUT.n_elements), 2, np.uint8),  # not binary
            np.full((1, LAYOUT.n_elements), -1, np.int8),
            np.full((1, LAYOUT.n_elements), np.nan, np.float32),
            np.full((1, LAYOUT.n_elements), 1.5, np.float64),
            np.array([["a"] * LAYOUT.n_elements]),  # not numbers
        ],
        ids=["width", "empty", "3d", "two", "minus_one", "nan", "above_one", "strings"],
    )
    def test_bad_patterns_raise_input_error(self, source, bad):
        with pytest.raises(InputError):
            source.acquire(bad, EXPOSURE_US)

    @pytest.mark.parametrize(
        "exposure",
        [
            lambda lo, hi: lo * 0.5,
            lambda lo, hi: hi * 2,
            lambda lo, hi: np.nan,
            lambda lo, hi: np.inf,
            lambda lo, hi: True,
            lambda lo, hi: "150",
            lambda lo, hi: None,
        ],
        ids=["below", "above", "nan", "inf", "bool", "string", "none"],
    )
    def test_exposure_outside_the_range_raises_input_error(self, source, exposure):
        with pytest.raises(InputError, match="exposure"):
            source.acquire(_patterns(1), exposure(*source.exposure_range_us))

    def test_shortest_exposure_is_accepted(self, source):
        lo, _ = source.exposure_range_us
        assert source.acquire(_patterns(1), lo).exposure_us == lo

    @pytest.mark.parametrize(
        "ids",
        [
            "outside",
            np.array([], np.int64),
            np.zeros((2, 2), np.int64),
            np.array([1.0, 2.0]),
            np.array([-1]),
        ],
        ids=["outside", "empty", "2d", "float", "negative"],
    )
    def test_output_pixels_outside_the_roi_raise_input_error(self, source, ids):
        if isinstance(ids, str):
            ids = np.array([ROI.pixel_ids()[0], ROI.pixel_ids()[-1] + 1])
        with pytest.raises(InputError, match="output pixels"):
            source.set_output_pixels(ids)

    def test_output_pixels_select_columns(self, source):
        source.set_output_pixels(None)
        p = _patterns(3, seed=9)
        full = source.acquire(p, EXPOSURE_US).frames
        ids = ROI.pixel_ids()[[40, 3, 17]]
        source.set_output_pixels(ids)
        try:
            part = source.acquire(p, EXPOSURE_US)
        finally:
            source.set_output_pixels(None)
        assert np.array_equal(part.pixel_ids, ids)
        assert np.array_equal(part.frames, full[:, [40, 3, 17]])  # deterministic profile

    @pytest.mark.parametrize("seconds", [-1.0, np.nan, np.inf, True, "1"])
    def test_bad_wait_raises_input_error(self, source, seconds):
        with pytest.raises(InputError, match="wait time"):
            source.wait_s(seconds)

    def test_wait_zero_is_fine(self, source):
        source.wait_s(0)
        source.wait_s(np.float64(0.001))


@pytest.fixture(scope="module")
def bench_source():
    bench = OpticalBench(DeviceProfile.deterministic(), 4, LAYOUT, ROI)
    yield bench
    bench.close()


@pytest.fixture(scope="module")
def hardware_source():
    rig = EmulatedRig(DeviceProfile.deterministic(), 4, LAYOUT)
    hw = open_hardware(rig, ROI)
    yield hw
    hw.close()
    rig.close()


class TestOpticalBench(FrameSourceConformance):
    @pytest.fixture
    def source(self, bench_source):
        return bench_source


class TestEmulatedHardware(FrameSourceConformance):
    @pytest.fixture
    def source(self, hardware_source):
        return hardware_source


def test_both_sources_see_the_same_frames():
    """Same profile and seed: the hardware stack returns the simulator's frames."""
    prof = DeviceProfile.deterministic()
    bench = OpticalBench(prof, 4, LAYOUT, ROI)
    rig = EmulatedRig(prof, 4, LAYOUT)
    with open_hardware(rig, ROI) as hw:
        p = _patterns(6, seed=2)
        a, b = bench.acquire(p, EXPOSURE_US).frames, hw.acquire(p, EXPOSURE_US).frames
    # at most one ADC count: float rounding of the field GEMMs differs with batch history
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
