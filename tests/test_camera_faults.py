"""The Camera driver against each fault the emulator injects: lost, duplicated and damaged frames
are reported per frame; timeouts are retried or raised; a vanished device raises."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.camera import (
    Camera,
    CameraCommandError,
    CameraStreamTimeout,
    FrameStatus,
    Status,
    control,
    stream,
)
from firmware_iface.errors import (
    DeviceDisconnectedError,
    DeviceNotFoundError,
    DeviceTimeoutError,
)
from opu_sim.emulators.camera import CameraBackend, CameraEmulator, CameraFaults

OK, DROPPED = FrameStatus.OK, FrameStatus.DROPPED


@pytest.fixture
def emu() -> CameraEmulator:
    return CameraEmulator(sensor_width=40, sensor_height=30, bit_depth=12)


@pytest.fixture
def cam(emu: CameraEmulator) -> Camera:
    c = Camera(backend=CameraBackend(emu), timeout_ms=100, retries=3)
    c.set_pixel_format("Mono12p")
    c["TriggerMode"] = "On"
    c.start()
    yield c
    emu.faults = CameraFaults()
    c.close()


def deliver(emu: CameraEmulator, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 4096, size=(n, 30, 40), dtype=np.uint16)
    emu.deliver(frames, np.arange(n) * 1000.0)
    return frames


def test_dropped_frame_is_reported_in_its_slot(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(drop_frames={2})
    frames = deliver(emu, 5)
    out = cam.read_frames(5)
    assert out.statuses.tolist() == [OK, OK, DROPPED, OK, OK]
    assert out.bad_ids.tolist() == [2]
    assert np.array_equal(out.frames[out.ok], frames[out.ok])
    assert not out.frames[2].any() and np.isnan(out.timestamps_us[2])


def test_dropped_last_frame_times_out_then_resumes(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(drop_frames={3})
    frames = deliver(emu, 4)
    with pytest.raises(CameraStreamTimeout) as e:
        cam.read_frames(4, timeout_ms=30)
    partial = e.value.partial
    assert partial.statuses.tolist() == [OK, OK, OK, FrameStatus.NOT_RECEIVED]
    assert np.array_equal(partial.frames[:3], frames[:3])
    more = deliver(emu, 1, seed=1)  # frame 4 shows frame 3 was lost
    out = cam.read_frames(4)  # resumes at id 0: nothing received was lost
    assert out.frame_ids.tolist() == [0, 1, 2, 3]
    assert out.statuses.tolist() == [OK, OK, OK, DROPPED]
    nxt = cam.read_frames(1)
    assert nxt.frame_ids.tolist() == [4] and np.array_equal(nxt.frames, more)


def test_drop_rate_is_seeded(emu: CameraEmulator) -> None:
    def run() -> list[int]:
        e = CameraEmulator(sensor_width=40, sensor_height=30)
        with Camera(backend=CameraBackend(e)) as c:
            c["TriggerMode"] = "On"
            c.start()
            e.faults = CameraFaults(drop_rate=0.3, seed=11)
            rng = np.random.default_rng(0)
            frames = rng.integers(0, 4096, size=(40, 30, 40), dtype=np.uint16)
            e.deliver(frames, np.zeros(40))
            out = c.read_frames(30)
            assert np.array_equal(out.frames[out.ok], frames[:30][out.ok])
            return out.statuses.tolist()

    first = run()
    assert first == run()
    assert 3 <= first.count(DROPPED) <= 20 and set(first) == {OK, DROPPED}


def test_duplicated_frame_is_discarded_and_counted(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(duplicate_frames={1})
    frames = deliver(emu, 3)
    out = cam.read_frames(3)
    assert out.ok.all() and out.duplicates == 1
    assert np.array_equal(out.frames, frames)
    # the duplicate is not handed out as the next frame
    nxt = deliver(emu, 1, seed=2)
    assert np.array_equal(cam.read_frames(1).frames, nxt)


def test_corrupt_trailer_is_an_id_mismatch(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(corrupt_trailer={1})
    deliver(emu, 3)
    out = cam.read_frames(3)
    assert out.statuses.tolist() == [OK, FrameStatus.ID_MISMATCH, OK]


def test_trailer_error_status_is_reported(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(trailer_error={0})
    deliver(emu, 2)
    out = cam.read_frames(2)
    assert out.statuses.tolist() == [FrameStatus.DEVICE_STATUS, OK]
    assert out.trailer_status.tolist() == [Status.DATA_DISCARDED, 0]


def test_short_payload_is_incomplete(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(truncate_payload={1})
    frames = deliver(emu, 3)
    out = cam.read_frames(3)
    assert out.statuses.tolist() == [OK, FrameStatus.INCOMPLETE, OK]
    assert not out.frames[1].any()
    assert np.array_equal(out.frames[[0, 2]], frames[[0, 2]])


def test_lost_payload_and_trailer_resynchronise(cam: Camera, emu: CameraEmulator) -> None:
    frames = deliver(emu, 3)
    with emu._lock:  # remove frame 1's payload and trailer transfers from the wire
        blocks = list(emu._stream)
        leaders = [k for k, b in enumerate(blocks) if stream.is_leader(b) and len(b) == 52]
        del blocks[leaders[1] + 1 : leaders[2]]
        emu._stream.clear()
        emu._stream.extend(blocks)
    out = cam.read_frames(3)
    assert out.statuses.tolist() == [OK, FrameStatus.INCOMPLETE, OK]
    assert np.array_equal(out.frames[2], frames[2])


def test_control_timeouts_are_retried(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(usb_timeouts=3)  # command lost, then acknowledge reads time out
    cam["ExposureTime"] = 42.0
    assert emu.exposure_us == 42.0
    emu.faults = CameraFaults(usb_timeouts=50)
    with pytest.raises(DeviceTimeoutError, match="did not acknowledge"):
        cam["Gain"] = 3.0
    emu.faults = CameraFaults()
    assert cam["Gain"] == 0.0  # the camera still works afterwards


def test_write_retried_after_lost_ack_executes_once(cam: Camera, emu: CameraEmulator) -> None:
    sends, executions = [], []
    handle, execute, bulk_read = emu.handle_command, emu._execute, emu.bulk_read

    def spy_handle(data: bytes) -> bytes:
        sends.append(data)
        return handle(data)

    def spy_execute(cmd):  # noqa: ANN001, ANN202
        executions.append(cmd)
        return execute(cmd)

    def lose_first_ack(ep, size, timeout_ms):  # noqa: ANN001, ANN202
        if ep == 0x81 and len(sends) == 1:
            emu.faults = CameraFaults(usb_timeouts=1)  # this acknowledge read times out
        return bulk_read(ep, size, timeout_ms)

    emu.handle_command, emu._execute, emu.bulk_read = spy_handle, spy_execute, lose_first_ack
    cam["ExposureTime"] = 5.0
    # the command went out twice with the same request id, the second time with the resend
    # flag (bit 15 of the flags), and the device executed it once
    first, again = (control.decode_command(s) for s in sends)
    assert len(sends) == 2 and first.request_id == again.request_id != 0
    assert (first.resend, again.resend) == (False, True)
    assert first.data == again.data and sends[0][6:] == sends[1][6:]
    assert len(executions) == 1 and emu.exposure_us == 5.0
    # the extra acknowledge left queued is skipped by request id in the next transaction
    assert cam["ExposureTime"] == 5.0


def test_stream_timeouts_are_retried(cam: Camera, emu: CameraEmulator) -> None:
    frames = deliver(emu, 2)
    emu.faults = CameraFaults(usb_timeouts=4)
    out = cam.read_frames(2, timeout_ms=500)
    assert out.ok.all() and np.array_equal(out.frames, frames)


def test_busy_is_retried_then_raised(cam: Camera, emu: CameraEmulator) -> None:
    emu.faults = CameraFaults(busy_commands=2)
    cam["ExposureTime"] = 77.0
    assert emu.exposure_us == 77.0
    emu.faults = CameraFaults(busy_commands=10)
    with pytest.raises(CameraCommandError) as e:
        cam["ExposureTime"] = 78.0
    assert e.value.status == Status.BUSY and emu.exposure_us == 77.0


def test_disconnect(cam: Camera, emu: CameraEmulator) -> None:
    deliver(emu, 1)
    emu.faults = CameraFaults(disconnect=True)
    with pytest.raises(DeviceDisconnectedError, match="vanished"):
        cam["ExposureTime"] = 10.0
    with pytest.raises(DeviceDisconnectedError):
        cam.read_frames(1)
    with pytest.raises(DeviceNotFoundError):
        Camera(backend=CameraBackend(emu))
    cam.close()  # closing a vanished camera does not raise
    with pytest.raises(DeviceDisconnectedError, match="closed"):
        cam.get_feature("Gain")
