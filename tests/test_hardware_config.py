"""OPUHardware configuration (JSON/TOML), frame timing, integrity checks, and clean errors when
devices are missing. Real hardware is not available here: opening a real config must fail with
DeviceNotFoundError, and partial openings must release what they opened."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_iface.camera.driver import FrameReadout, FrameStatus
from firmware_iface.errors import ConfigurationError, DeviceNotFoundError
from firmware_iface.fpga.timing import Timing
from firmware_iface.geometry import CameraRoi, DmdLayout
from firmware_iface.hardware import HardwareConfig, OPUHardware, exposure_limits_us, plan_timing
from firmware_iface.hardware.integrity import check_frames
from opu import OPU
from opu.emulated import hardware_config, open_hardware
from opu.sources import open_source
from opu_sim.emulators.camera import CameraFaults
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

EXAMPLE = {
    "format": "opu-hardware/1",
    "dmd": {"usb_vendor_id": "0x0451", "usb_product_id": "0xC900", "timeout_ms": 500},
    "fpga": {"url": "/dev/ttyUSB3", "baudrate": 230400, "timeout_s": 0.5, "retries": 5},
    "camera": {"usb_vendor_id": "0x2676", "usb_product_id": 0xBA02, "pixel_format": "Mono12",
               "min_exposure_us": 20, "max_exposure_us": 500000},
    "timing": {"frame_period_us": 125, "dmd_delay_us": 0, "camera_delay_us": 4},
    "acquisition": {"max_reacquire": 2, "camera_clock": "relative"},
}
LAYOUT = DmdLayout.fit(16, 16)
ROI = CameraRoi.centred(16, 1920, 1200)


def test_json_and_toml_configs_parse(tmp_path):
    path = tmp_path / "opu.json"
    path.write_text(json.dumps(EXAMPLE))
    c = HardwareConfig.load(f"hw:{path}")
    assert (c.dmd.usb_vendor_id, c.dmd.usb_product_id, c.dmd.timeout_ms) == (0x0451, 0xC900, 500)
    assert (c.fpga.url, c.fpga.baudrate, c.fpga.retries) == ("/dev/ttyUSB3", 230400, 5)
    assert (c.camera.usb_vendor_id, c.camera.usb_product_id) == (0x2676, 0xBA02)
    assert c.camera.pixel_format == "Mono12" and c.camera.min_exposure_us == 20.0
    assert c.timing.camera_delay_us == 4 and c.acquisition.camera_clock == "relative"
    assert c.camera.retries == 3  # unspecified settings keep their defaults
    toml = tmp_path / "opu.toml"
    toml.write_text('[fpga]\nurl = "socket://127.0.0.1:7000"\n[timing]\nframe_period_us = 200\n')
    t = HardwareConfig.load(toml)
    assert t.fpga.url == "socket://127.0.0.1:7000" and t.timing.frame_period_us == 200.0


@pytest.mark.parametrize(
    "change, match",
    [
        ({"format": "opu-hardware/9"}, "not supported"),
        ({"lasers": {}}, "unknown config section"),
        ({"fpga": {"port": "/dev/ttyUSB0"}}, "unknown setting"),
        ({"dmd": {"usb_vendor_id": "TI"}}, "must be an integer"),
        ({"dmd": {"usb_vendor_id": 0x10000}}, "16-bit"),
        ({"camera": {"timeout_ms": 1.5}}, "must be an integer"),
        ({"fpga": {"timeout_s": "fast"}}, "must be a number"),
        ({"timing": {"dmd_delay_us": 10, "camera_delay_us": 5}}, "camera must expose"),
        ({"camera": {"min_exposure_us": 100, "max_exposure_us": 50}}, "min_exposure_us"),
        ({"acquisition": {"camera_clock": "ptp"}}, "shared"),
        ({"acquisition": {"max_reacquire": -1}}, ">= 0"),
    ],
)
def test_bad_configs_are_refused(change, match):
    with pytest.raises(ConfigurationError, match=match):
        HardwareConfig.from_dict({**EXAMPLE, **change})


def test_missing_or_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        HardwareConfig.load(f"hw:{tmp_path / 'nope.json'}")
    with pytest.raises(ConfigurationError, match="no hardware config path"):
        HardwareConfig.load("hw:")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="does not parse"):
        OPUHardware.from_config(str(bad), LAYOUT, ROI)


def test_real_config_without_devices_raises_device_not_found(tmp_path):
    path = tmp_path / "opu.json"
    path.write_text(json.dumps(EXAMPLE))
    with pytest.raises(DeviceNotFoundError):
        OPUHardware.from_config(f"hw:{path}", LAYOUT, ROI)
    with pytest.raises(DeviceNotFoundError):
        open_source(f"hw:{path}", LAYOUT, ROI, 0, None, 1 << 20)
    with pytest.raises(DeviceNotFoundError):
        OPU(device=f"hw:{path}", n_in=16, n_out=16)


@pytest.fixture
def rig():
    return EmulatedRig(DeviceProfile.default(), 0, LAYOUT, cache_budget_bytes=1 << 22)


def test_missing_camera_releases_the_devices_already_opened(rig):
    rig.camera.faults = CameraFaults(disconnect=True)
    with pytest.raises(DeviceNotFoundError, match="camera"):
        open_hardware(rig, ROI)
    assert not rig.dmd.running
    rig.camera.faults = CameraFaults()
    open_hardware(rig, ROI).close()  # DMD interface and FPGA port were released


def test_missing_timing_board_is_reported(rig):
    cfg = hardware_config(rig).with_fpga_url("fpgaemu://nobody-registered-this")
    with pytest.raises(DeviceNotFoundError, match="FPGA"):
        open_hardware(rig, ROI, cfg)
    open_hardware(rig, ROI).close()


def test_geometry_and_format_mismatches_are_configuration_errors(rig):
    with pytest.raises(ConfigurationError, match="sensor"):
        open_hardware(rig, CameraRoi.centred(16, 1280, 1024))
    c = hardware_config(rig)
    bad = HardwareConfig.from_dict({"camera": {"pixel_format": "Mono8"}})
    cfg = c.__class__(c.dmd, c.fpga, bad.camera, c.timing, c.acquisition)
    with pytest.raises(ConfigurationError, match="carries 8 bits"):
        open_hardware(rig, ROI, cfg)


def test_frame_timing():
    t = plan_timing(150.0, 110.0, 0, 0)
    assert (t.pulse_us, t.dmd_exposure_us, t.frame_period_us) == (150, 150, 150)
    t = plan_timing(105.5, 110.0, 2, 5)  # pattern shown from 2 us until the exposure ends
    assert (t.pulse_us, t.dmd_exposure_us, t.frame_period_us) == (106, 109, 111)
    assert t.board == Timing(111, 106, 2, 5)
    t = plan_timing(40.0, 110.0, 0, 0)  # short exposure: the pattern stays up 105 us
    assert (t.pulse_us, t.dmd_exposure_us, t.frame_period_us) == (40, 105, 110)
    assert exposure_limits_us(10.0, 1e6, 0, 0) == (10.0, 1e6)
    assert exposure_limits_us(200.0, 1e8, 0, 0) == (200.0, 1e7)  # the FPGA's pulse limit


def _readout(ts, statuses=None, first=10):
    n = len(ts)
    st = np.zeros(n, np.uint8) if statuses is None else np.asarray(statuses, np.uint8)
    return FrameReadout(np.zeros((n, 1, 1), np.uint16), np.arange(first, first + n),
                        np.asarray(ts, float), st, np.zeros(n, np.uint16))


def test_integrity_checks_catch_lag_drops_and_count_mismatch():
    expected = 1000.0 + 150.0 * np.arange(5)
    ok = check_frames(_readout(expected), 10, 15, 5, expected, "shared", 1.0)
    assert ok == []
    lagged = expected.copy()
    lagged[2] = expected[3]  # frame 2 exposed at frame 3's trigger
    for clock in ("shared", "relative"):
        kinds = [p.kind for p in check_frames(_readout(lagged), 10, 15, 5, expected, clock, 1.0)]
        assert kinds == ["timestamp"]
    # a camera clock with an offset: only "relative" accepts it
    shifted = expected + 12345.0
    assert check_frames(_readout(shifted), 10, 15, 5, expected, "relative", 1.0) == []
    assert check_frames(_readout(shifted), 10, 15, 5, expected, "shared", 1.0)
    dropped = _readout(expected, [0, FrameStatus.DROPPED, 0, 0, 0])
    assert [p.kind for p in check_frames(dropped, 10, 15, 5, expected, "shared", 1.0)] == [
        "frame_status"
    ]
    extra = check_frames(_readout(expected), 10, 16, 5, expected, "shared", 1.0)
    assert [p.kind for p in extra] == ["frame_count"]
    wrong_ids = check_frames(_readout(expected, first=11), 10, 15, 5, expected, "shared", 1.0)
    assert "frame_ids" in [p.kind for p in wrong_ids]
