"""Stream side of the emulated camera (a mixin of CameraEmulator): frames handed to deliver()
become leader / payload / trailer transfers on the packet-level stream endpoint, faults applied.
"""

from __future__ import annotations

import numpy as np

from firmware_iface.camera import stream
from firmware_iface.camera.pixel_formats import SIGNIFICANT_BITS, pack
from firmware_iface.camera.status import Status
from firmware_iface.errors import InputError


class StreamSide:
    """deliver() and the frame transfers of CameraEmulator (which holds the state used here)."""

    def deliver(self, frames_dn: np.ndarray, timestamps_us: np.ndarray) -> np.ndarray:
        """Queue frames exposed by the rig; returns the frame ids assigned (int64).

        frames_dn: (n, Height, Width) uint8 or uint16 counts at the sensor bit depth (DN).
        timestamps_us: (n,) device time of each exposure start, microseconds (>= 0, finite);
            sent in the leader as integer nanoseconds (rounded to 1 ns; 1 tick = 1 ns).
        Frames arriving while not acquiring or with TriggerMode Off are not acquired (the camera
        ignores the trigger): they count in MissedTriggerCounter and get no id. Frames acquired
        while the stream interface is disabled get an id but are not sent.
        Raises InputError for a wrong shape, dtype or out-of-range values.
        """
        f = np.asarray(frames_dn)
        t = np.asarray(timestamps_us)
        with self._lock:
            t_ns = self._check_frames(f, t)
            if not self._acquiring or not self._trigger_mode or self._faults.disconnect:
                self._missed_triggers += f.shape[0]
                return np.empty(0, dtype=np.int64)
            ids = np.arange(self._frame_counter, self._frame_counter + f.shape[0], dtype=np.int64)
            self._frame_counter += f.shape[0]
            if self.bootstrap.stream_enabled:
                for k, fid in enumerate(ids.tolist()):
                    self._stream.extend(self._frame_transfers(fid, f[k], int(t_ns[k])))
            self._faults.run_hooks("deliver", ids)
            self._stream_ready.notify_all()
            return ids

    def _check_frames(self, f: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Timestamps in ns after checking the frames and timestamps (InputError)."""
        h, w = self._height, self._width
        if f.ndim != 3 or f.shape[1:] != (h, w):
            raise InputError(
                f"frames must have shape (n, {h}, {w}) to match the current ROI, got {f.shape}"
            )
        if f.dtype not in (np.uint8, np.uint16):
            raise InputError(f"frames must be uint8 or uint16 DN, got dtype {f.dtype}")
        top = (1 << self.bit_depth) - 1
        if f.size and int(f.max()) > top:
            raise InputError(
                f"frame values up to {int(f.max())} DN exceed the {self.bit_depth}-bit sensor's "
                f"maximum {top}"
            )
        if t.shape != (f.shape[0],) or t.dtype.kind not in "uif":
            raise InputError(
                f"timestamps_us must be a ({f.shape[0]},) number array, got {t.shape} {t.dtype}"
            )
        t_ns = np.rint(t.astype(np.float64) * 1000.0)
        if not np.all(np.isfinite(t_ns)) or np.any(t_ns < 0) or np.any(t_ns >= 2.0**63):
            raise InputError("timestamps_us must be finite, >= 0 and below 2**63 ns")
        return t_ns

    def _frame_transfers(self, fid: int, frame: np.ndarray, t_ns: int) -> list[bytes]:
        """Leader, payload and trailer transfers of one frame, faults applied."""
        faults = self._faults
        if faults.hit("drop_frames", fid) or faults.chance("drop_rate"):
            return []
        fmt, h = self._format, self._height
        shift = self.bit_depth - SIGNIFICANT_BITS[fmt]
        leader = stream.Leader(fid, t_ns, fmt, self._width, h, self._offset_x, self._offset_y)
        payload = pack(frame >> shift if shift else frame, fmt)
        size = len(payload)
        if faults.hit("truncate_payload", fid):
            payload = payload[: size // 2]
        trailer = stream.Trailer(
            fid ^ 1 if faults.hit("corrupt_trailer", fid) else fid,
            Status.DATA_DISCARDED if faults.hit("trailer_error", fid) else Status.SUCCESS,
            size,
            h,
        )
        blocks = [
            stream.encode_leader(leader),
            *self._payload_transfers(payload),
            stream.encode_trailer(trailer),
        ]
        return blocks * 2 if faults.hit("duplicate_frames", fid) else blocks

    def _payload_transfers(self, payload: bytes) -> list[bytes]:
        """The payload cut into the transfers the host configured in the SIRM (payload
        transfers, final transfer 1, final transfer 2); the last one carries what is left."""
        sizes = self.bootstrap.plan().payload_transfers
        if len(sizes) <= 1 or len(payload) <= sizes[0]:
            return [payload]
        view, out, at = memoryview(payload), [], 0
        for size in sizes:
            if at >= len(payload):
                break
            out.append(bytes(view[at : at + size]))
            at += size
        if at < len(payload):  # more payload than the transfers hold: the rest goes in the last
            out[-1] += bytes(view[at:])
        return out

    def queue_transfers(self, *transfers: bytes) -> None:
        """Put raw stream transfers on the wire as they are (a misbehaving device, in tests)."""
        with self._lock:
            self._stream.extend([bytes(t) for t in transfers])
            self._stream_ready.notify_all()
