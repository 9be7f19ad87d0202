"""OPUHardware unchanged over the GenTL camera backend: the emulated rig's camera reached through
an ImageAcquirer-shaped adapter (GenTL buffers with frame ids, ns timestamps and 2-D image
components, the node map of the camera's own XML), so triggered acquisition, frame ids and
timestamps from GenTL buffers go through the same integrity checks and give the simulator's
exact frames. (No GenTL producer of the emulator exists; viky.cti, which has no trigger, is
tested in test_camera_gentl.py.)"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
from genicam.gentl import TimeoutException

import firmware_iface.hardware.opening as opening
from firmware_iface.camera import Camera, CameraStreamTimeout
from firmware_iface.camera.gentl import GenTLCamera
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu.emulated import hardware_config, open_hardware
from opu_sim.bench import OpticalBench
from opu_sim.emulators.camera import CameraBackend
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

FRAME_ID_ORIGIN = 100  # GenTL frame ids need not start at 0


class _Buffer:
    def __init__(self, fid: int, ts_us: float, pixels: np.ndarray) -> None:
        self.module = SimpleNamespace(frame_id=fid, is_complete=lambda: True)
        self.timestamp_ns = int(round(ts_us * 1000))
        h, w = pixels.shape
        comp = SimpleNamespace(width=w, height=h, data=pixels.reshape(-1))
        self.payload = SimpleNamespace(components=[comp])

    def __enter__(self) -> _Buffer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class EmulatedAcquirer:
    """The rig's camera behind harvesters' ImageAcquirer interface (what GenTLCamera uses)."""

    min_num_buffers = 1

    def __init__(self, cam: Camera) -> None:
        self._cam = cam
        self.remote_device = SimpleNamespace(node_map=cam.features.node_map)
        self.device = SimpleNamespace(module=SimpleNamespace(serial_number=cam.serial_number))
        self.fetched = 0

    def start(self) -> None:
        self._cam.start()

    def stop(self) -> None:
        self._cam.stop()

    def is_acquiring(self) -> bool:
        return self._cam.acquiring

    def fetch(self, timeout: float) -> _Buffer:
        try:
            out = self._cam.read_frames(1, timeout_ms=max(1, int(timeout * 1000)))
        except CameraStreamTimeout as e:
            raise TimeoutException("no buffer") from e
        self.fetched += 1
        return _Buffer(int(out.frame_ids[0]) + FRAME_ID_ORIGIN, out.timestamps_us[0], out.frames[0])

    def destroy(self) -> None:
        self._cam.close()


def test_opu_hardware_runs_unchanged_over_the_gentl_backend(monkeypatch) -> None:  # noqa: ANN001
    prof = DeviceProfile.deterministic()
    layout = DmdLayout.fit(32, 32)
    roi = CameraRoi.centred(64, prof.camera.sensor_width, prof.camera.sensor_height)
    rig = EmulatedRig(prof, 3, layout)
    acquirers: list[EmulatedAcquirer] = []

    def gentl(backend: str, *, usb_backend: object, **kw: object) -> GenTLCamera:
        ia = EmulatedAcquirer(Camera(CameraBackend(rig.camera), timeout_ms=200))
        acquirers.append(ia)
        return GenTLCamera.from_acquirer(ia, timeout_ms=200)

    monkeypatch.setattr(opening, "open_camera", gentl)
    base = hardware_config(rig)  # the upload path: one camera frame per pattern, ids 0..29
    hw = open_hardware(rig, roi, replace(base, dmd=replace(base.dmd, pattern_path="usb")))
    try:
        assert isinstance(hw.camera, GenTLCamera)
        rng = np.random.default_rng(5)
        p = (rng.random((30, layout.n_elements)) < 0.5).astype(np.uint8)
        batch = hw.acquire(p, 150.0)
    finally:
        hw.close()
    assert acquirers[0].fetched == 30 and batch.reacquired == 0
    assert batch.frame_ids.tolist() == list(range(30))  # from the buffers' ids, origin removed
    assert np.all(np.diff(batch.timestamps_us) > 0)  # from the buffers' ns timestamps
    sim = OpticalBench(prof, 3, layout, roi)
    expected = sim.acquire(p, 150.0).frames
    expected = np.clip(np.rint(expected), 0, prof.camera.max_dn).astype(np.uint16)
    assert np.array_equal(batch.frames, expected.reshape(batch.frames.shape))
