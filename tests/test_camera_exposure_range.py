"""The camera's exposure range has one source, the camera: the emulated camera states its
profile's range in its GenICam XML and refuses writes outside it; OPUHardware reads that range
and narrows it only by the hardware config's optional camera limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from firmware_iface.camera import Camera
from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu.emulated import hardware_config, open_hardware
from opu_sim.emulators.camera import CameraBackend, CameraEmulator
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

LAYOUT = DmdLayout.fit(8, 8)
ROI = CameraRoi.centred(16, 1920, 1200)


def test_emulated_camera_states_and_enforces_its_range():
    emu = CameraEmulator(64, 48, 12, exposure_range_us=(20.0, 5e5))
    with Camera(backend=CameraBackend(emu)) as cam:
        assert cam.features.range("ExposureTime") == (20.0, 5e5)
        with pytest.raises(InputError, match="ExposureTime"):
            cam["ExposureTime"] = 19.5
        cam["ExposureTime"] = 20.0
        assert emu.exposure_us == 20.0
    assert CameraEmulator(64, 48, 12).exposure_range_us == (1.0, 1e7)  # the register map's
    with pytest.raises(ConfigurationError, match="exposure_range_us"):
        CameraEmulator(64, 48, 12, exposure_range_us=(100.0, 50.0))


@pytest.fixture(scope="module")
def rig():
    base = DeviceProfile.deterministic()
    prof = replace(base, camera=replace(base.camera, min_exposure_us=40.0, max_exposure_us=2e5))
    r = EmulatedRig(prof, 4, LAYOUT)
    yield r
    r.close()


def test_hardware_takes_the_range_from_the_camera(rig):
    with open_hardware(rig, ROI) as hw:
        assert hw.exposure_range_us == (40.0, 2e5)


def test_config_limits_narrow_the_cameras_range(rig):
    base = hardware_config(rig)
    narrow = replace(base, camera=replace(base.camera, min_exposure_us=100.0,
                                          max_exposure_us=1e6))
    with open_hardware(rig, ROI, narrow) as hw:
        assert hw.exposure_range_us == (100.0, 2e5)  # 1e6 is beyond the camera's maximum
        with pytest.raises(InputError, match=r"\[100, 200000\] us"):
            hw.timing_for(50.0)
    outside = replace(base, camera=replace(base.camera, min_exposure_us=3e5))
    with pytest.raises(ConfigurationError, match="leave nothing of the camera's"):
        open_hardware(rig, ROI, outside)
