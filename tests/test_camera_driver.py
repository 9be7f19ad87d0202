"""The unchanged Camera driver against the CameraEmulator through usb.core.find(backend=...):
features, ROI, every pixel format end to end, device status codes, and bad host input."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from firmware_iface.camera import (
    Camera,
    CameraCommandError,
    CameraStateError,
    CameraStreamError,
    CameraStreamTimeout,
    FrameStatus,
    PixelFormat,
    Status,
    control,
    stream,
)
from firmware_iface.camera.pixel_formats import significant_bits
from firmware_iface.errors import (
    ConfigurationError,
    DeviceNotFoundError,
    InputError,
)
from firmware_iface.geometry import CameraRoi
from opu_sim.emulators.camera import CameraBackend, CameraEmulator, CameraFaults

SW, SH = 64, 48


@pytest.fixture
def emu() -> CameraEmulator:
    return CameraEmulator(sensor_width=SW, sensor_height=SH, bit_depth=12, serial="EMU-TEST-7")


@pytest.fixture
def cam(emu: CameraEmulator) -> Camera:
    c = Camera(backend=CameraBackend(emu), timeout_ms=200)
    yield c
    c.close()


@pytest.fixture
def sent(emu: CameraEmulator) -> list[bytes]:
    """Every command the emulator receives from now on."""
    log: list[bytes] = []
    original = emu.handle_command

    def spy(data: bytes) -> bytes:
        log.append(data)
        return original(data)

    emu.handle_command = spy  # type: ignore[method-assign]
    return log


def frames_for(emu: CameraEmulator, n: int, seed: int = 0) -> np.ndarray:
    roi = emu.roi
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << emu.bit_depth, size=(n, roi.height, roi.width), dtype=np.uint16)


def test_identity_and_defaults(cam: Camera) -> None:
    assert cam.serial_number == "EMU-TEST-7"
    assert (cam.sensor_width, cam.sensor_height, cam.bit_depth) == (SW, SH, 12)
    assert cam.roi == CameraRoi(0, 0, SW, SH, SW, SH)
    assert cam.pixel_format == PixelFormat.Mono12
    assert cam["TriggerMode"] == "Off" and cam["AcquisitionStatus"] == 0


def test_features_reach_the_device(cam: Camera, emu: CameraEmulator) -> None:
    cam["ExposureTime"] = 123.5
    assert emu.exposure_us == 123.5 and cam["ExposureTime"] == 123.5
    cam.set_feature("Gain", 6.0)
    assert emu.gain_db == 6.0 and cam.get_feature("Gain") == 6.0
    cam["TriggerMode"] = "On"
    cam["TriggerSource"] = "Line1"
    assert emu.trigger_mode == "On" and emu.trigger_source == "Line1"
    cam.set_pixel_format("Mono10p")
    assert emu.pixel_format == PixelFormat.Mono10p and cam.pixel_format == PixelFormat.Mono10p
    assert cam["PayloadSize"] == SW * SH * 10 // 8


def test_set_roi_reaches_the_device(cam: Camera, emu: CameraEmulator) -> None:
    # from a ROI at the far corner to one whose Width exceeds the old free space: write order
    # (offsets zeroed first) keeps every single write valid on the device
    cam.set_roi(CameraRoi(50, 40, 14, 8, SW, SH))
    roi = CameraRoi(3, 5, 60, 30, SW, SH)
    cam.set_roi(roi)
    assert emu.roi == roi and cam.roi == roi


@pytest.mark.parametrize("fmt", list(PixelFormat), ids=lambda f: f.name)
def test_end_to_end_every_pixel_format(cam: Camera, emu: CameraEmulator, fmt: PixelFormat) -> None:
    roi = CameraRoi(7, 3, 33, 11, SW, SH)  # odd pixel count exercises the packed tails
    cam.set_roi(roi)
    cam.set_pixel_format(fmt)
    cam["TriggerMode"] = "On"
    cam.start()
    frames = frames_for(emu, 4, seed=int(fmt) & 0xFF)
    ts = np.array([0.0, 1000.25, 2000.5, 1e6])
    assert emu.deliver(frames, ts).tolist() == [0, 1, 2, 3]
    out, ids, ts_out, statuses = cam.read_frames(4, timeout_ms=500)
    # a 12-bit sensor keeps its top bits in narrower formats, like a real camera
    expected = frames >> (12 - significant_bits(fmt))
    assert out.dtype == (np.uint8 if fmt == PixelFormat.Mono8 else np.uint16)
    assert out.shape == (4, 11, 33)
    assert np.array_equal(out, expected)
    assert ids.tolist() == [0, 1, 2, 3]
    assert np.array_equal(ts_out, ts)
    assert statuses.tolist() == [FrameStatus.OK] * 4


def test_full_sensor_mono12p_and_consecutive_reads() -> None:
    emu = CameraEmulator()  # 1920 x 1200, 12 bit
    with Camera(backend=CameraBackend(emu)) as cam:
        cam.set_pixel_format("Mono12p")
        cam["TriggerMode"] = "On"
        cam.start()
        frames = frames_for(emu, 3, seed=5)
        emu.deliver(frames, np.array([10.0, 20.0, 30.0]))
        first = cam.read_frames(2)
        second = cam.read_frames(1)
    assert np.array_equal(first.frames, frames[:2]) and np.array_equal(second.frames, frames[2:])
    assert first.frame_ids.tolist() == [0, 1] and second.frame_ids.tolist() == [2]
    assert second.timestamps_us.tolist() == [30.0]


def test_frames_delivered_from_another_thread(cam: Camera, emu: CameraEmulator) -> None:
    cam["TriggerMode"] = "On"
    cam.start()
    frames = frames_for(emu, 2)
    timer = threading.Timer(0.05, emu.deliver, (frames, np.array([1.0, 2.0])))
    timer.start()
    out = cam.read_frames(2, timeout_ms=2000)
    timer.join()
    assert np.array_equal(out.frames, frames) and out.ok.all()


def test_no_trigger_mode_or_not_acquiring_ignores_frames(cam: Camera, emu: CameraEmulator) -> None:
    frames = frames_for(emu, 2)
    assert emu.deliver(frames, np.zeros(2)).size == 0  # not acquiring
    cam.start()
    assert emu.deliver(frames, np.zeros(2)).size == 0  # TriggerMode Off
    assert cam["MissedTriggerCounter"] == 4 and emu.pending_transfers == 0
    t0 = time.monotonic()
    with pytest.raises(CameraStreamTimeout) as e:
        cam.read_frames(1, timeout_ms=30)
    assert time.monotonic() - t0 < 1.0
    assert e.value.partial.statuses.tolist() == [FrameStatus.NOT_RECEIVED]


def test_restart_resets_frame_ids_and_counter(cam: Camera, emu: CameraEmulator) -> None:
    cam["TriggerMode"] = "On"
    cam.start()
    emu.deliver(frames_for(emu, 3), np.zeros(3))
    assert cam["FrameCounter"] == 3
    cam.stop()
    cam.start()  # stale frames are flushed, ids restart at 0
    assert emu.pending_transfers == 0 and cam["FrameCounter"] == 0
    frames = frames_for(emu, 1, seed=9)
    emu.deliver(frames, np.zeros(1))
    out = cam.read_frames(1)
    assert out.frame_ids.tolist() == [0] and np.array_equal(out.frames, frames)


# ------------------------------------------------------------------ device status codes


def test_device_refuses_with_status_codes(cam: Camera, emu: CameraEmulator) -> None:
    def status_of(fn, *args) -> int:  # noqa: ANN001
        with pytest.raises(CameraCommandError) as e:
            fn(*args)
        return e.value.status

    f64 = lambda v: np.float64(v).tobytes()  # noqa: E731
    u32 = lambda v: int(v).to_bytes(4, "little")  # noqa: E731
    assert status_of(cam.read_register, 0x9000, 4) == Status.INVALID_ADDRESS
    assert status_of(cam.read_register, 0x10202, 4) == Status.BAD_ALIGNMENT
    assert status_of(cam.read_register, 0x10020, 8) == Status.INVALID_PARAMETER
    assert status_of(cam.write_register, 0x10020, u32(16)) == Status.WRITE_PROTECT  # RO
    assert status_of(cam.write_register, 0x144, b"x" * 4) == Status.WRITE_PROTECT  # ABRM
    assert status_of(cam.read_register, 0x10400, 4) == Status.ACCESS_DENIED  # WO command
    assert status_of(cam.write_register, 0x10400, u32(2)) == Status.INVALID_PARAMETER
    # the device enforces its ranges itself (raw writes bypass the XML's host-side checks)
    assert status_of(cam.write_register, 0x10100, u32(SW + 1)) == Status.INVALID_PARAMETER
    assert status_of(cam.write_register, 0x10200, f64(1e9)) == Status.INVALID_PARAMETER
    assert status_of(cam.write_register, 0x10208, f64(30.0)) == Status.INVALID_PARAMETER
    cam.set_roi(CameraRoi(0, 0, 32, 16, SW, SH))
    assert status_of(cam.write_register, 0x10108, u32(SW - 31)) == Status.INVALID_PARAMETER
    # the same values through the features are refused by GenApi before anything is sent
    for name, value in (("Width", SW + 1), ("ExposureTime", 1e9), ("Gain", 30.0),
                        ("OffsetX", SW - 31)):
        with pytest.raises(InputError, match=name):
            cam[name] = value
    # nothing changed on the device after the refusals
    assert emu.roi == CameraRoi(0, 0, 32, 16, SW, SH) and emu.exposure_us == 1000.0
    cam.start()
    assert status_of(cam.set_feature, "Width", 16) == Status.ACCESS_DENIED  # while acquiring
    with pytest.raises(CameraCommandError) as e:
        cam.set_feature("PixelFormat", "Mono8")
    assert e.value.status == Status.ACCESS_DENIED and e.value.feature == "PixelFormat"
    assert cam["Width"] == 32  # the refused write left no stale value in the node map
    cam["ExposureTime"] = 50.0  # exposure stays writable while acquiring
    assert emu.exposure_us == 50.0 and cam.roi.width == 32


def test_a_refusal_through_a_feature_names_it_and_keeps_the_device_error(cam: Camera) -> None:
    cam.start()
    with pytest.raises(CameraCommandError, match="^PixelFormat: ") as e:
        cam.set_feature("PixelFormat", "Mono8")
    device_error = e.value.__cause__  # the control channel's error, not rewritten in place
    assert isinstance(device_error, CameraCommandError)
    assert not str(device_error).startswith("PixelFormat")
    assert e.value.status == device_error.status == Status.ACCESS_DENIED


def test_unsupported_pixel_format_on_a_10_bit_sensor() -> None:
    emu = CameraEmulator(sensor_width=16, sensor_height=8, bit_depth=10)
    with Camera(backend=CameraBackend(emu)) as cam:
        assert cam.pixel_format == PixelFormat.Mono10 and cam.bit_depth == 10
        # the XML marks the 12-bit entries unavailable on this sensor: refused on the host
        with pytest.raises(InputError, match="Mono12p"):
            cam.set_pixel_format("Mono12p")
        with pytest.raises(CameraCommandError) as e:  # and the device refuses it too
            cam.write_register(0x10110, int(PixelFormat.Mono12p).to_bytes(4, "little"))
        assert e.value.status == Status.INVALID_PARAMETER
        cam.set_pixel_format("Mono10p")
        assert emu.pixel_format == PixelFormat.Mono10p


def test_emulator_protocol_strictness(emu: CameraEmulator) -> None:
    bad_prefix = b"\0\0\0\0" + control.encode_read_command(3, 0x10020, 4)[4:]
    assert control.decode_ack(emu.handle_command(bad_prefix)).status == Status.INVALID_HEADER
    unknown = bytearray(control.encode_read_command(4, 0x10020, 4))
    unknown[6:8] = (0x0900).to_bytes(2, "little")
    ack = control.decode_ack(emu.handle_command(bytes(unknown)))
    assert (ack.status, ack.request_id, ack.command_id) == (Status.NOT_IMPLEMENTED, 4, 0x0901)
    w = lambda rid, v: control.encode_write_command(rid, 0x10200, np.float64(v).tobytes())  # noqa: E731
    assert control.decode_ack(emu.handle_command(w(7, 5.0))).ok
    assert control.decode_ack(emu.handle_command(w(8, 6.0))).ok
    # a command repeating the last request id is a host retry: answered again, not executed
    again = control.decode_ack(emu.handle_command(w(8, 7.0)))
    assert again.ok and again.request_id == 8 and emu.exposure_us == 6.0


def test_stream_leader_for_another_roi_raises(cam: Camera, emu: CameraEmulator) -> None:
    cam["TriggerMode"] = "On"
    cam.start()
    # a device bug: a leader that contradicts the registers
    emu.queue_transfers(stream.encode_leader(stream.Leader(0, 0, PixelFormat.Mono8, 2, 2, 0, 0)))
    with pytest.raises(CameraStreamError, match="Mono8 2x2"):
        cam.read_frames(1)


def test_stray_transfers_are_skipped(cam: Camera, emu: CameraEmulator) -> None:
    cam["TriggerMode"] = "On"
    cam.start()
    emu.queue_transfers(b"garbage")
    frames = frames_for(emu, 1)
    emu.deliver(frames, np.zeros(1))
    out = cam.read_frames(1)
    assert out.discarded_transfers == 1 and out.ok.all() and np.array_equal(out.frames, frames)


# ------------------------------------------------------------------ bad host input


def test_bad_host_input_raises_before_sending(cam: Camera, emu: CameraEmulator, sent) -> None:  # noqa: ANN001
    cases = [
        (InputError, lambda: cam.set_feature("Exposure", 10.0)),
        (InputError, lambda: cam["NoSuchFeature"]),
        (InputError, lambda: cam.__setitem__("ExposureTime", 0.0)),
        (InputError, lambda: cam.__setitem__("ExposureTime", -3.0)),
        (InputError, lambda: cam.__setitem__("ExposureTime", float("nan"))),
        (InputError, lambda: cam.__setitem__("SensorWidth", 10)),
        (InputError, lambda: cam.__setitem__("Width", 10.5)),
        (InputError, lambda: cam.__setitem__("PixelFormat", "Mono16")),
        (InputError, lambda: cam.__setitem__("TriggerMode", "Sometimes")),
        (InputError, lambda: cam.__setitem__("AcquisitionStart", 1)),
        (InputError, lambda: cam["AcquisitionStop"]),
        (InputError, lambda: cam.set_roi(CameraRoi(0, 0, 10, 10, 1920, 1200))),
        (InputError, lambda: cam.set_roi((0, 0, 10, 10))),
        (ConfigurationError, lambda: cam.set_roi(CameraRoi(60, 0, 10, 10, SW, SH))),
        (InputError, lambda: cam.set_pixel_format("Mono14")),
        (CameraStateError, lambda: cam.read_frames(1)),
    ]
    for exc, call in cases:
        with pytest.raises(exc):
            call()
    assert sent == []
    cam["TriggerMode"] = "On"
    cam.start()
    n_sent = len(sent)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InputError):
            cam.read_frames(bad)
    with pytest.raises(InputError):
        cam.read_frames(1, timeout_ms=0)
    assert len(sent) == n_sent


def test_bad_constructor_and_emulator_input(emu: CameraEmulator) -> None:
    with pytest.raises(InputError):
        Camera(backend=CameraBackend(emu), timeout_ms=0)
    with pytest.raises(DeviceNotFoundError, match="no camera with USB ids"):
        Camera(backend=CameraBackend(emu), product_id=0x9999)
    with pytest.raises(ConfigurationError):
        CameraEmulator(bit_depth=14)
    with pytest.raises(ConfigurationError):
        CameraFaults(drop_rate=1.5)
    with pytest.raises(ConfigurationError):
        CameraFaults(usb_timeouts=-1)
    emu._acquiring, emu._trigger_mode = True, 1
    good = frames_for(emu, 1)
    with pytest.raises(InputError, match="shape"):
        emu.deliver(good[:, :-1], np.zeros(1))
    with pytest.raises(InputError, match="dtype"):
        emu.deliver(good.astype(np.int32), np.zeros(1))
    with pytest.raises(InputError, match="exceed"):
        emu.deliver(good | 0x1000, np.zeros(1))
    with pytest.raises(InputError, match="timestamps"):
        emu.deliver(good, np.array([-1.0]))
    with pytest.raises(InputError, match="timestamps"):
        emu.deliver(good, np.zeros(2))
    assert emu.pending_transfers == 0 and emu.frame_counter == 0


def test_pending_ack_extends_the_wait(cam: Camera, emu: CameraEmulator) -> None:
    handle = emu.handle_command

    def pending_first(data: bytes) -> bytes:
        rid = control.decode_command(data).request_id
        emu._acks.append(control.encode_pending_ack(rid, 50))
        return handle(data)

    emu.handle_command = pending_first  # type: ignore[method-assign]
    cam["ExposureTime"] = 12.0
    assert emu.exposure_us == 12.0 and cam["ExposureTime"] == 12.0
