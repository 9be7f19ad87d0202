"""Any GenICam camera through its vendor's GenTL producer (a .cti file from Basler pylon, FLIR
Spinnaker, Allied Vision Vimba X, MATRIX VISION, ...), on `harvesters` (the GenICam committee's
acquisition library).

`GenTLCamera` has the interface `OPUHardware` uses from `Camera` (features by name, ROI, pixel
format, start/stop, read_frames -> FrameReadout, skip_to, close), so the hardware OPU runs
unchanged over either backend. Features go through the same `Features` layer as the U3V driver,
here over the node map the producer built from the camera's own XML.

Frame ids and timestamps come from the GenTL buffers: the id is the buffer's frame id minus the
frame id of the first buffer after start() (so ids count from 0 like the U3V driver's; a frame
lost before the first one received cannot be told from the ids); the timestamp is the buffer's
timestamp in ns when the producer gives one (NaN otherwise). A buffer the producer marks
incomplete is INCOMPLETE. "FrameCounter" reads the camera's feature when its XML has one, else
the number of frames the host has seen (ids up to the highest received + 1).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    CameraStreamTimeout,
    DeviceNotFoundError,
    DeviceTimeoutError,
)
from .channel import CameraStats
from .common import KNOWN_BITS, FeatureCamera, check_count, check_frame_id
from .features import Features, sensor_bit_depth, sensor_size
from .pixel_formats import output_dtype, payload_size, unpack
from .readout import FrameReadout, FrameStatus


def viky_producer() -> Path | None:
    """Path of MVTec's simulated producer viky.cti shipped in the genicam wheel (None if absent)."""
    try:
        import genicam
    except ImportError:  # pragma: no cover - genicam is a dependency
        return None
    path = Path(genicam.__file__).parent / "viky.cti"
    return path if path.is_file() else None


class GenTLCamera(FeatureCamera):
    """A camera opened through a GenTL producer. producer: path of the .cti file; serial: the
    camera's serial number (None: the only camera the producer lists). timeout_ms: default
    read_frames wait; num_buffers: GenTL buffers announced to the producer."""

    def __init__(
        self,
        producer: str | Path,
        serial: str | None = None,
        timeout_ms: int = 1000,
        num_buffers: int = 16,
    ) -> None:
        self.timeout_ms = check_count(timeout_ms, "timeout_ms", "milliseconds")
        super().__init__()
        self.stats = CameraStats()
        path = Path(producer).expanduser()
        if not path.is_file():
            raise DeviceNotFoundError(
                f"GenTL producer {str(path)!r} does not exist; install the camera vendor's SDK "
                "and give the path of its .cti file (camera.gentl_producer)"
            )
        from harvesters.core import Harvester  # noqa: PLC0415 - loads the GenTL runtime

        self._harvester = Harvester()
        self._ia = None
        try:
            self._harvester.add_file(str(path))
            self._harvester.update()
            self._ia = self._harvester.create(self._search_key(serial))
            self._ia.num_buffers = max(int(num_buffers), self._ia.min_num_buffers)
            self._open()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_acquirer(cls, acquirer: Any, timeout_ms: int = 1000) -> GenTLCamera:
        """A GenTLCamera over an already created harvesters ImageAcquirer (or an object with
        its interface: remote_device.node_map, device.module.serial_number, start, stop,
        is_acquiring, fetch, destroy), e.g. one a caller configured itself."""
        self = cls.__new__(cls)
        self.timeout_ms = check_count(timeout_ms, "timeout_ms", "milliseconds")
        FeatureCamera.__init__(self)
        self.stats = CameraStats()
        self._harvester = None
        self._ia = acquirer
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _search_key(self, serial: str | None) -> dict[str, str]:
        found = [d.serial_number for d in self._harvester.device_info_list]
        if serial is None:
            if len(found) != 1:
                raise DeviceNotFoundError(
                    f"the GenTL producer lists {len(found)} cameras {found}; set camera."
                    "gentl_serial to choose one"
                )
            serial = found[0]
        if serial not in found:
            raise DeviceNotFoundError(
                f"no camera with serial {serial!r} on this GenTL producer; it lists {found}"
            )
        return {"serial_number": serial}

    def _open(self) -> None:
        self.features = Features.from_node_map(self._ia.remote_device.node_map)
        self.serial_number = str(self._ia.device.module.serial_number)
        self.sensor_width, self.sensor_height = sensor_size(self.features)
        self.bit_depth = sensor_bit_depth(self.features, KNOWN_BITS)
        for name, value in (("TriggerSelector", "FrameStart"), ("AcquisitionMode", "Continuous")):
            f = self.features
            if f.has(name) and f.writable(name) and value in f.symbolics(name):
                f.set(name, value)
        self._acquiring = False
        self._reset()
        self._refresh_format()

    def _reset(self) -> None:
        self._origin: int | None = None
        self._next_id = 0
        self._max_seen = -1
        self._buffered: dict[int, tuple[np.ndarray | None, float, FrameStatus]] = {}

    # ---- acquisition ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the producer's acquisition (AcquisitionStart); ids restart at 0."""
        self._refresh_format()
        self.pixel_format  # noqa: B018 - raises CameraStateError for a format we cannot read
        self._reset()
        self._ia.start()
        self._acquiring = True

    def stop(self) -> None:
        """Stop the acquisition (AcquisitionStop)."""
        if self._ia is not None and self._ia.is_acquiring():
            self._ia.stop()
        self._acquiring = False

    def get_feature(self, name: str) -> int | float | str | bool:
        """A feature's value; "FrameCounter" falls back to the frames seen (see module doc)."""
        if name == "FrameCounter" and not self.features.has(name):
            return self._max_seen + 1
        return super().get_feature(name)

    def read_frames(self, n: int, timeout_ms: int | None = None) -> FrameReadout:
        """The next n frames (ids next .. next + n - 1) from the producer's buffers; statuses and
        timeouts as for the U3V driver (CameraStreamTimeout keeps what was received)."""
        n, timeout = self._read_request(n, timeout_ms)
        first, last = self._next_id, self._next_id + n - 1
        deadline = time.monotonic() + timeout / 1000.0
        try:
            with self._transaction(), self.stats.timed("readout"):
                while last not in self._buffered and self._max_seen <= last:
                    self._fetch_one(deadline)
        except DeviceTimeoutError as e:
            partial = self._assemble(first, int(n), final=False)
            raise CameraStreamTimeout(
                f"{int((partial.statuses != FrameStatus.NOT_RECEIVED).sum())} of {n} frames "
                f"(ids {first}..{last}) arrived within {timeout} ms from the GenTL producer; is "
                "the trigger running?",
                partial,
            ) from e
        out = self._assemble(first, int(n), final=True)
        self.stats.count("frames", int(n))
        for fid in range(first, last + 1):
            self._buffered.pop(fid, None)
        self._next_id = last + 1
        return out

    def _fetch_one(self, deadline: float) -> None:
        from genicam.gentl import TimeoutException  # noqa: PLC0415

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceTimeoutError("GenTL fetch deadline passed")
        try:
            with self._ia.fetch(timeout=remaining) as buf:
                fid, entry = self._decode(buf)
        except TimeoutException as e:
            raise DeviceTimeoutError(f"no GenTL buffer in time ({e})") from e
        self._max_seen = max(self._max_seen, fid)
        if fid >= self._next_id and fid not in self._buffered:
            self._buffered[fid] = entry

    def _decode(self, buf: Any) -> tuple[int, tuple[np.ndarray | None, float, FrameStatus]]:
        """(host frame id, (pixels, timestamp_us, status)) of a GenTL buffer (copied)."""
        module = buf.module
        raw_id = int(module.frame_id)
        if self._origin is None:
            self._origin = raw_id
        fid = raw_id - self._origin
        ts = _timestamp_us(buf)
        if not _complete(module):
            return fid, (None, ts, FrameStatus.INCOMPLETE)
        comp = buf.payload.components[0]
        roi, fmt = self._roi, self.pixel_format
        if (int(comp.width), int(comp.height)) != (roi.width, roi.height):
            return fid, (None, ts, FrameStatus.INCOMPLETE)
        data = np.asarray(comp.data)
        if data.size == roi.n_pixels:
            pixels = data.reshape(roi.height, roi.width).astype(output_dtype(fmt), copy=True)
        elif data.nbytes >= payload_size(fmt, roi.n_pixels):
            raw = data.view(np.uint8)[: payload_size(fmt, roi.n_pixels)]
            pixels = unpack(raw.tobytes(), fmt, roi.n_pixels).reshape(roi.height, roi.width)
        else:
            return fid, (None, ts, FrameStatus.INCOMPLETE)
        return fid, (pixels, ts, FrameStatus.OK)

    def skip_to(self, frame_id: int) -> None:
        """Continue at frame id `frame_id` (>= the next id): lower ids are discarded."""
        self._next_id = check_frame_id(frame_id, self._next_id)
        self._buffered = {k: v for k, v in self._buffered.items() if k >= self._next_id}

    def _assemble(self, first: int, n: int, final: bool) -> FrameReadout:
        roi = self._roi
        frames = np.zeros((n, roi.height, roi.width), dtype=output_dtype(self.pixel_format))
        ts = np.full(n, np.nan)
        statuses = np.empty(n, dtype=np.uint8)
        for k in range(n):
            got = self._buffered.get(first + k)
            if got is None:
                lost = final or self._max_seen > first + k
                statuses[k] = FrameStatus.DROPPED if lost else FrameStatus.NOT_RECEIVED
                continue
            pixels, ts[k], statuses[k] = got
            if pixels is not None:
                frames[k] = pixels
        ids = np.arange(first, first + n, dtype=np.int64)
        return FrameReadout(frames, ids, ts, statuses, np.zeros(n, dtype=np.uint16))

    def _do_close(self) -> None:
        """Stop and release the camera and the producer (errors of a vanished camera ignored)."""
        ia, self._ia = self._ia, None
        if ia is not None:
            try:
                if ia.is_acquiring():
                    ia.stop()
                ia.destroy()
            except Exception:  # noqa: BLE001 - already closing; the producer releases it
                pass
        harvester, self._harvester = getattr(self, "_harvester", None), None
        if harvester is not None:
            harvester.reset()
        self._acquiring = False


def _complete(module: Any) -> bool:
    try:
        return bool(module.is_complete())
    except (AttributeError, TypeError):
        return True
    except Exception:  # noqa: BLE001 - producer without the info: trust the buffer
        return True


def _timestamp_us(buf: Any) -> float:
    try:
        ns = float(buf.timestamp_ns)
    except Exception:  # noqa: BLE001 - NotAvailable from producers without timestamps
        return math.nan
    return ns / 1000.0 if ns > 0 else math.nan


__all__ = ["GenTLCamera", "viky_producer"]
