"""The GenTL camera backend against a producer nobody here wrote: MVTec's simulated viky.cti
shipped in the genicam wheel. Also the GenApi feature layer over the XML a viky device serves,
read through its GenTL port: the node-map code is not tuned to the project's own XML."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.camera import CameraStreamTimeout, FrameStatus
from firmware_iface.camera.common import KNOWN_BITS
from firmware_iface.camera.features import Features, sensor_bit_depth, sensor_size
from firmware_iface.camera.gentl import GenTLCamera, viky_producer
from firmware_iface.errors import DeviceNotFoundError, InputError
from firmware_iface.geometry import CameraRoi

VIKY = viky_producer()
needs_viky = pytest.mark.skipif(
    VIKY is None,
    reason="the installed genicam wheel ships no viky.cti (MVTec's simulated GenTL producer): "
    "the GenTL backend is untested on this machine",
)


@needs_viky
def test_gentl_backend_acquires_from_viky() -> None:
    with GenTLCamera(VIKY, serial="1", timeout_ms=3000) as cam:
        assert cam.serial_number == "1"
        assert (cam.sensor_width, cam.sensor_height, cam.bit_depth) == (800, 800, 8)
        cam.set_pixel_format("Mono8")
        cam.set_roi(CameraRoi(0, 0, 128, 100, 800, 800))
        assert (cam["Width"], cam["Height"]) == (128, 100) and cam.roi.n_pixels == 12800
        with pytest.raises(InputError, match="OffsetX"):  # viky has no offsets
            cam.set_roi(CameraRoi(8, 0, 128, 100, 800, 800))
        cam.start()
        out = cam.read_frames(3)
        nxt = cam.read_frames(2)
        cam.stop()
    assert out.frame_ids.tolist() == [0, 1, 2] and nxt.frame_ids.tolist() == [3, 4]
    assert out.statuses.tolist() == [FrameStatus.OK] * 3
    assert out.frames.shape == (3, 100, 128) and out.frames.dtype == np.uint8
    assert out.frames.any() and not np.array_equal(out.frames[0], out.frames[2])  # it plays
    assert np.isnan(out.timestamps_us).all()  # viky's buffers carry no timestamp


@needs_viky
def test_gentl_backend_errors() -> None:
    with pytest.raises(DeviceNotFoundError, match="does not exist"):
        GenTLCamera("/nonexistent/vendor.cti")
    with pytest.raises(DeviceNotFoundError, match=r"lists \['0', '1', '2'\]"):
        GenTLCamera(VIKY, serial="no-such-camera")
    with pytest.raises(DeviceNotFoundError, match="3 cameras"):
        GenTLCamera(VIKY)  # ambiguous: the producer lists three
    with GenTLCamera(VIKY, serial="2") as cam:
        with pytest.raises(Exception, match="not acquiring"):
            cam.read_frames(1)
        cam.set_pixel_format("Mono8")
        cam.start()
        with pytest.raises(CameraStreamTimeout) as e:
            cam.read_frames(50, timeout_ms=120)  # ~20 frames/s: not 50 in 120 ms
        partial = e.value.partial
        assert (partial.statuses == FrameStatus.NOT_RECEIVED).sum() > 40


@needs_viky
def test_feature_layer_over_the_xml_viky_serves() -> None:
    from harvesters.core import Harvester

    h = Harvester()
    h.add_file(str(VIKY))
    h.update()
    ia = h.create({"serial_number": "0"})
    try:
        port = ia.remote_device.port
        url = port.url_info_list[0]
        xml = port.read(url.file_register_address, url.file_size)[1].decode("utf-8")
        assert "Viky" in xml and "OPUStack" not in xml
        f = Features(xml, lambda a, n: port.read(a, n)[1], lambda a, d: port.write(a, d))
        assert sensor_size(f) == (800, 800) and sensor_bit_depth(f, KNOWN_BITS) == 8
        assert f.kind("AcquisitionStart") == "ICommand" and f.kind("Width") == "IInteger"
        assert set(f.symbolics("PixelFormat")) >= {"Mono8"}
        f.set("Width", 256)
        f.set("PixelFormat", "Mono8")
        # the write reached the device: the producer's own node map reads it back
        assert ia.remote_device.node_map.Width.value == 256 == f.get("Width")
        assert ia.remote_device.node_map.PixelFormat.value == "Mono8"
        assert f.range("Width") == (100, 800)
        for bad in (lambda: f.set("Width", 10**9), lambda: f.set("Width", 2.5),
                    lambda: f.set("PixelFormat", "Mono12p"), lambda: f.get("ExposureTime"),
                    lambda: f.set("PayloadSize", 5)):
            with pytest.raises(InputError):
                bad()
        assert not f.has("ExposureTime") and f.has("Width")
    finally:
        ia.destroy()
        h.reset()


def test_hardware_config_selects_the_camera_backend() -> None:
    from firmware_iface.errors import ConfigurationError
    from firmware_iface.hardware.config import HardwareConfig

    assert HardwareConfig().camera.backend == "u3v"  # the default: USB3 Vision over pyusb
    cfg = HardwareConfig.from_dict(
        {"camera": {"backend": "gentl", "gentl_producer": "/opt/vendor/x.cti",
                    "gentl_serial": "21234567"}}
    )
    assert (cfg.camera.backend, cfg.camera.gentl_serial) == ("gentl", "21234567")
    with pytest.raises(ConfigurationError, match="gentl_producer"):
        HardwareConfig.from_dict({"camera": {"backend": "gentl"}})
    with pytest.raises(ConfigurationError, match="'u3v' or 'gentl'"):
        HardwareConfig.from_dict({"camera": {"backend": "firewire"}})


@needs_viky
def test_open_camera_selects_gentl() -> None:
    from firmware_iface.camera.select import open_camera

    with open_camera("gentl", producer=VIKY, serial="0") as cam:
        assert isinstance(cam, GenTLCamera) and cam.serial_number == "0"
