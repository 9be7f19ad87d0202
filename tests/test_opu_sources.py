"""OPU over any frame source, device strings parsed once, explicit first-use calibration."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.errors import CalibrationError, ConfigurationError
from opu import OPU
from opu.emulated import EmulatedHardware, open_hardware, rig_of
from opu.sources import DeviceSpec, parse_device, simulator_of
from opu_sim.bench import OpticalBench
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile


def test_parse_device_once():
    assert parse_device("sim") == DeviceSpec("sim", "", "sim")
    assert parse_device("emu:bench7") == DeviceSpec("emu", "bench7", "emu:bench7")
    assert parse_device("hw:/x/opu.json").kind == "hw"
    assert parse_device("rig.toml").kind == "hw" and not parse_device("rig.toml").simulated
    with pytest.raises(ConfigurationError, match="unknown device"):
        parse_device("simulator")
    with pytest.raises(ConfigurationError, match="string"):
        parse_device(3)


def test_opu_over_a_bench_equals_opu_over_the_device_string():
    prof = DeviceProfile.ideal()
    layout, roi = OPU.plan_geometry(24, 32, (prof.dmd.width, prof.dmd.height),
                                    (prof.camera.sensor_width, prof.camera.sensor_height))
    x = np.random.default_rng(0).integers(-1, 2, (6, 24))
    bench = OpticalBench(prof, 5, layout, roi)
    with OPU(bench, n_in=24, n_out=32) as a:
        assert a.source is bench and a.simulator is bench and a.profile is prof
        ya = a.project(x)
        g = a.exact_linear_matrix()
    bench.acquire(np.zeros((1, layout.n_elements), np.uint8), 100.0)  # still open: the caller's
    with OPU("sim", n_in=24, n_out=32, seed=5, profile=prof) as b:
        yb = b.project(x)
    np.testing.assert_allclose(ya, yb, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ya, x @ g.T, rtol=1e-3, atol=1e-3)


def test_opu_refuses_a_source_of_another_geometry():
    prof = DeviceProfile.ideal()
    layout, roi = OPU.plan_geometry(24, 32, (1920, 1080), (1920, 1200))
    bench = OpticalBench(prof, 5, layout, roi)
    with pytest.raises(ConfigurationError, match="24 data and 24 anchor"):
        OPU(bench, n_in=25, n_out=32)
    with pytest.raises(ConfigurationError, match="ROI has"):
        OPU(bench, n_in=24, n_out=400)
    with pytest.raises(ConfigurationError, match="frame source"):
        OPU(object(), n_in=24, n_out=32)


def test_opu_over_emulated_hardware_and_its_simulator():
    prof = DeviceProfile.deterministic()
    layout, roi = OPU.plan_geometry(16, 16, (1920, 1080), (1920, 1200))
    rig = EmulatedRig(prof, 3, layout)
    hw = open_hardware(rig, roi)
    try:
        assert isinstance(hw, EmulatedHardware) and rig_of(hw) is rig
        assert simulator_of(hw) is rig.bench
        with OPU(hw, n_in=16, n_out=16, exposure_us=150.0) as dev:
            assert dev.simulator is rig.bench
            y = dev.project(np.ones((2, 16)))
            assert y.shape == (2, 16)
        assert not hw.closed  # the caller's source
    finally:
        hw.close()
    assert hw.closed and simulator_of(object()) is None
    with pytest.raises(ConfigurationError, match="not an emulated"):
        rig_of(rig.bench)


def test_calibration_is_explicit():
    with OPU(n_in=8, n_out=8, seed=1, noise=False) as dev:
        assert not dev.is_calibrated
        with pytest.raises(CalibrationError, match="not calibrated yet"):
            _ = dev.calibration
        assert dev.source.frames_taken == 0  # reading the accessor took no frames
        cal = dev.ensure_calibrated()
        taken = dev.source.frames_taken
        assert dev.is_calibrated and dev.calibration is cal and taken > 0
        assert dev.ensure_calibrated() is cal and dev.source.frames_taken == taken
        dev.project(np.ones(8))
        assert dev.calibration is cal  # project() used the one in place
