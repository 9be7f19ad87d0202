"""Host driver of the USB camera: features by SFNC name, ROI, acquisition and frame readout.

State, retries and timeouts live here; bytes are built by the codecs (control, stream,
pixel_formats, registers) and moved by the transport (pyusb bulk endpoints).

Frame readout policy (`read_frames`): slot k of a readout is the frame with id first_id + k,
where first_id is the id after the last one returned (0 after start()). Faults are reported per
slot in `statuses` for the caller to re-acquire, never raised:

- DROPPED: no block arrived for this id, but a later id did (the frame was lost on the way);
- INCOMPLETE: payload shorter/longer than the leader announces, or the trailer says fewer valid
  bytes or lines; pixels are zero;
- ID_MISMATCH: the trailer's block id differs from the leader's; pixels unverified;
- TRAILER_CORRUPT: the trailer is missing or does not decode; pixels unverified;
- DEVICE_STATUS: the trailer's status is not SUCCESS (e.g. DATA_DISCARDED); pixels unverified.

Duplicated blocks (an id already filled or already returned) are discarded and counted in
`FrameReadout.duplicates`; transfers that are not a leader where one is expected are skipped and
counted in `FrameReadout.discarded_transfers`. What raises instead:

- no frame for a slot before the deadline -> CameraStreamTimeout (a DeviceTimeoutError) whose
  `.partial` holds the slots resolved so far; the frames received stay buffered, so calling
  read_frames again resumes at the same first id. The deadline bounds the wait for the camera,
  not the host's own time: transfers already queued when the host gets to them past the
  deadline (descheduled on a loaded machine, say) are still read (see _StreamDeadline);
- a leader whose format or ROI differs from the camera's -> CameraStreamError;
- the device vanishing -> DeviceDisconnectedError; an error acknowledge -> CameraCommandError.
"""

from __future__ import annotations

import array
import enum
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    CameraCommandError,
    CameraProtocolError,
    CameraStateError,
    CameraStreamError,
    CameraStreamTimeout,
    CodecError,
    ConcurrencyError,
    DeviceError,
    DeviceTimeoutError,
    InputError,
)
from ..geometry import CameraRoi
from . import control, pixel_formats, registers, stream
from . import usb_layout as L
from .pixel_formats import PixelFormat, output_dtype, payload_size, pixel_format, unpack
from .registers import Kind, Register
from .status import Status, describe
from .transport import UsbCameraTransport


class FrameStatus(enum.IntEnum):
    """Per-frame outcome in FrameReadout.statuses (uint8 codes)."""

    OK = 0
    DROPPED = 1
    INCOMPLETE = 2
    ID_MISMATCH = 3
    TRAILER_CORRUPT = 4
    DEVICE_STATUS = 5
    NOT_RECEIVED = 6  # only in CameraStreamTimeout.partial


@dataclass(frozen=True)
class FrameReadout:
    """Frames for consecutive ids; unpacks as (frames, frame_ids, timestamps_us, statuses).

    frames: (n, Height, Width) uint8 (Mono8) or uint16 (other formats), DN.
    frame_ids: (n,) int64, consecutive. timestamps_us: (n,) float64 device time of exposure start,
    microseconds (NaN where no leader arrived). statuses: (n,) uint8 FrameStatus codes.
    trailer_status: (n,) uint16 device status from each trailer (0 where none arrived).
    """

    frames: np.ndarray
    frame_ids: np.ndarray
    timestamps_us: np.ndarray
    statuses: np.ndarray
    trailer_status: np.ndarray
    duplicates: int = 0
    discarded_transfers: int = 0

    def __iter__(self):  # noqa: ANN204 - tuple unpacking
        return iter((self.frames, self.frame_ids, self.timestamps_us, self.statuses))

    @property
    def ok(self) -> np.ndarray:
        """(n,) bool: frames that can be used."""
        return self.statuses == FrameStatus.OK

    @property
    def bad_ids(self) -> np.ndarray:
        """Frame ids to re-acquire (every status other than OK), int64."""
        return self.frame_ids[~self.ok]


@dataclass
class _Received:
    pixels: np.ndarray | None
    timestamp_us: float
    status: FrameStatus
    trailer_status: int


def _check_timeout_ms(value: Any, name: str = "timeout_ms") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be an integer >= 1 (milliseconds), got {value!r}")
    return int(value)


_LATE_POLL_MS = 1  # past the deadline, a stream read waits this long for a transfer


class _StreamDeadline:
    """When read_frames stops waiting for stream transfers.

    The deadline is measured on the wall clock, so it also runs while the host is not reading:
    descheduled on a loaded machine, or unpacking. Such a host can find the deadline passed
    while every frame it waits for is already queued; raising then would make the caller
    re-acquire frames that arrived in time, and the re-acquisition would meet the same loaded
    host. So past the deadline, transfers already queued are still taken (each read waits at
    most _LATE_POLL_MS), and the first read that finds the stream empty ends the wait. That late
    draining stops `timeout_s` after it began, so a device that never stops streaming cannot
    hold the host.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._at = time.monotonic() + timeout_s
        self._late_until: float | None = None

    @property
    def late(self) -> bool:
        """True once a read was made past the deadline."""
        return self._late_until is not None

    def wait_ms(self) -> int | None:
        """How long the next transfer may be waited for, ms; None when the wait is over."""
        now = time.monotonic()
        remaining = math.ceil((self._at - now) * 1000.0)
        if remaining >= 1:
            return remaining
        if self._late_until is None:
            self._late_until = now + self._timeout_s
        return _LATE_POLL_MS if now < self._late_until else None


class Camera:
    """A USB camera found by vendor/product id through pyusb (`backend` None = system libusb).

    timeout_ms: per-transfer timeout of control transactions, milliseconds.
    retries: extra attempts of a control transaction after a timeout or a BUSY acknowledge.
    Opening stops any acquisition left running, so the camera starts in a known state.
    """

    def __init__(
        self,
        backend: object | None = None,
        vendor_id: int = L.DEFAULT_VENDOR_ID,
        product_id: int = L.DEFAULT_PRODUCT_ID,
        timeout_ms: int = 1000,
        retries: int = 3,
    ) -> None:
        self.timeout_ms = _check_timeout_ms(timeout_ms)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"retries must be an integer >= 0, got {retries!r}")
        self.retries = retries
        self._lock = threading.Lock()
        self._request_id = 0
        pixel_formats.warm_up()  # no kernel compilation inside a read deadline
        self._transport = UsbCameraTransport(backend, vendor_id, product_id)
        try:
            self.serial_number = str(self.get_feature("DeviceSerialNumber"))
            self.sensor_width = int(self.get_feature("SensorWidth"))
            self.sensor_height = int(self.get_feature("SensorHeight"))
            self.bit_depth = int(self.get_feature("PixelBitDepth"))
            self.execute("AcquisitionStop")
            self._acquiring = False
            self._refresh_format()
        except BaseException:
            self._transport.close()
            raise
        self._reset_stream_state()

    # ------------------------------------------------------------------ control transactions

    def _next_request_id(self) -> int:
        self._request_id = (self._request_id + 1) & 0xFFFF
        return self._request_id

    def _transact(
        self, build: Any, expected_ack: int, what: str, feature: str | None
    ) -> control.Ack:
        """Send a command built by build(request_id) and return its successful acknowledge."""
        if not self._lock.acquire(blocking=False):
            raise ConcurrencyError("the camera is in use by another thread; wait for it to finish")
        try:
            rid = self._next_request_id()
            last_error: Exception | None = None
            for attempt in range(self.retries + 1):
                try:
                    self._transport.write_control(build(rid), self.timeout_ms)
                    ack = self._read_ack(rid)
                except DeviceTimeoutError as e:
                    last_error = e  # resend with the same request id: the device answers again
                    continue
                except control.ControlCodecError as e:
                    last_error = e
                    continue
                if ack.status == Status.BUSY:
                    last_error = CameraCommandError(
                        f"camera stayed busy during {what}", Status.BUSY, feature
                    )
                    time.sleep(0.001 * (attempt + 1))
                    rid = self._next_request_id()
                    continue
                if ack.command_id != expected_ack:
                    raise CameraProtocolError(
                        f"{what}: expected acknowledge {expected_ack:#06x}, "
                        f"got {ack.command_id:#06x}"
                    )
                if ack.status != Status.SUCCESS:
                    raise CameraCommandError(
                        f"camera refused {what}: {describe(ack.status)} ({ack.status:#06x})",
                        ack.status,
                        feature,
                    )
                return ack
            if isinstance(last_error, CameraCommandError):
                raise last_error
            if isinstance(last_error, control.ControlCodecError):
                raise CameraProtocolError(
                    f"{what}: malformed acknowledge ({last_error})"
                ) from last_error
            raise DeviceTimeoutError(
                f"camera did not acknowledge {what} after {self.retries + 1} attempts of "
                f"{self.timeout_ms} ms; check the connection"
            ) from last_error
        finally:
            self._lock.release()

    def _read_ack(self, rid: int) -> control.Ack:
        deadline = time.monotonic() + self.timeout_ms / 1000.0
        while True:
            remaining = math.ceil((deadline - time.monotonic()) * 1000.0)
            raw = self._transport.read_control(control.MAX_TRANSFER_SIZE, max(remaining, 1))
            ack = control.decode_ack(raw)
            if ack.request_id != rid:
                continue  # stale acknowledge of an earlier, timed-out attempt
            if ack.command_id == control.CommandId.PENDING_ACK:
                deadline = time.monotonic() + (ack.pending_ms + self.timeout_ms) / 1000.0
                continue
            return ack

    def read_register(self, address: int, count: int) -> bytes:
        """Raw read of `count` bytes at `address` (no host-side checks beyond the codec's)."""
        ack = self._transact(
            lambda rid: control.encode_read_command(rid, address, count),
            control.CommandId.READMEM_ACK,
            f"read of {count} bytes at {address:#x}",
            None,
        )
        if len(ack.data) != count:
            raise CameraProtocolError(
                f"asked for {count} bytes at {address:#x}, got {len(ack.data)}"
            )
        return ack.data

    def write_register(self, address: int, data: bytes) -> None:
        """Raw write of `data` at `address` (no host-side checks beyond the codec's)."""
        ack = self._transact(
            lambda rid: control.encode_write_command(rid, address, data),
            control.CommandId.WRITEMEM_ACK,
            f"write of {len(data)} bytes at {address:#x}",
            None,
        )
        if ack.bytes_written != len(data):
            raise CameraProtocolError(f"camera wrote {ack.bytes_written} of {len(data)} bytes")

    # ------------------------------------------------------------------ features

    def get_feature(self, name: str) -> int | float | str:
        """Current value of an SFNC feature (enumerations as their name, e.g. "Mono12p")."""
        reg = registers.register(name)
        if not reg.readable:
            raise InputError(f"{name} is write-only (a command); it has no value to read")
        ack = self._transact(
            lambda rid: control.encode_read_command(rid, reg.address, reg.size),
            control.CommandId.READMEM_ACK,
            f"read of {name}",
            name,
        )
        try:
            return registers.decode_value(reg, ack.data)
        except CodecError as e:  # wrong size or unknown enum code
            raise CameraProtocolError(f"camera answered {name} with {ack.data.hex()}: {e}") from e

    def set_feature(self, name: str, value: Any) -> None:
        """Write an SFNC feature. Host checks (unknown name, read-only, wrong type, exposure <= 0)
        raise InputError before anything is sent; device refusals raise CameraCommandError."""
        reg = registers.register(name)
        if reg.kind == Kind.COMMAND:
            raise InputError(f"{name} is a command: use camera.execute({name!r})")
        if not reg.writable:
            raise InputError(f"{name} is read-only")
        self._write(reg, value)

    def execute(self, name: str) -> None:
        """Run a command feature (AcquisitionStart, AcquisitionStop)."""
        reg = registers.register(name)
        if reg.kind != Kind.COMMAND:
            raise InputError(f"{name} is not a command; use set_feature")
        if name == "AcquisitionStart":
            self.start()
        elif name == "AcquisitionStop":
            self.stop()
        else:  # pragma: no cover - no other commands in the map
            self._write(reg, 1)

    def _write(self, reg: Register, value: Any) -> None:
        data = registers.encode_value(reg, value)
        self._transact(
            lambda rid: control.encode_write_command(rid, reg.address, data),
            control.CommandId.WRITEMEM_ACK,
            f"write of {reg.name} = {value!r}",
            reg.name,
        )
        if reg.name in ("Width", "Height", "OffsetX", "OffsetY", "PixelFormat"):
            self._refresh_format()

    def __getitem__(self, name: str) -> int | float | str:
        return self.get_feature(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set_feature(name, value)

    def _refresh_format(self) -> None:
        w, h = int(self.get_feature("Width")), int(self.get_feature("Height"))
        ox, oy = int(self.get_feature("OffsetX")), int(self.get_feature("OffsetY"))
        self._roi = CameraRoi(ox, oy, w, h, self.sensor_width, self.sensor_height)
        self._format = pixel_format(str(self.get_feature("PixelFormat")))

    @property
    def roi(self) -> CameraRoi:
        """The camera's ROI (as last read from its registers)."""
        return self._roi

    @property
    def pixel_format(self) -> PixelFormat:
        """The camera's pixel format (as last read from its register)."""
        return self._format

    @property
    def acquiring(self) -> bool:
        """True between start() and stop()."""
        return self._acquiring

    def set_roi(self, roi: CameraRoi) -> None:
        """Set OffsetX/OffsetY/Width/Height (offsets zeroed first so every step stays valid).

        Raises InputError before sending when roi is not a CameraRoi of this camera's sensor.
        """
        if not isinstance(roi, CameraRoi):
            raise InputError(f"set_roi needs a CameraRoi, got {type(roi).__name__}")
        if (roi.sensor_width, roi.sensor_height) != (self.sensor_width, self.sensor_height):
            raise InputError(
                f"ROI is for a {roi.sensor_width}x{roi.sensor_height} sensor, this camera's is "
                f"{self.sensor_width}x{self.sensor_height}"
            )
        for name, value in (
            ("OffsetX", 0),
            ("OffsetY", 0),
            ("Width", roi.width),
            ("Height", roi.height),
            ("OffsetX", roi.offset_x),
            ("OffsetY", roi.offset_y),
        ):
            self.set_feature(name, value)

    def set_pixel_format(self, fmt: PixelFormat | int | str) -> None:
        """Set PixelFormat (name, PFNC code or PixelFormat)."""
        self.set_feature("PixelFormat", pixel_format(fmt).name)

    # ------------------------------------------------------------------ acquisition

    def start(self) -> None:
        """AcquisitionStart: frame ids restart at 0 and the host stream state is cleared."""
        reg = registers.REGISTERS["AcquisitionStart"]
        self._write(reg, 1)
        self._acquiring = True
        self._refresh_format()
        self._reset_stream_state()

    def stop(self) -> None:
        """AcquisitionStop (frames already queued on the device can still be read)."""
        self._write(registers.REGISTERS["AcquisitionStop"], 1)
        self._acquiring = False

    def _reset_stream_state(self) -> None:
        self._next_id = 0
        self._buffered: dict[int, _Received] = {}
        self._pushback: deque[bytes] = deque()
        self._max_seen = -1

    def _read_transfer(self, buf: array.array, deadline: _StreamDeadline) -> bytes:
        """One stream transfer; retries timed-out transfers until the deadline, then takes
        only a transfer that is already queued (DeviceTimeoutError when there is none)."""
        if self._pushback:
            return self._pushback.popleft()
        while True:
            wait_ms = deadline.wait_ms()
            if wait_ms is None:
                raise DeviceTimeoutError("stream deadline passed")
            try:
                n = self._transport.read_stream(buf, wait_ms)
            except DeviceTimeoutError:
                if deadline.late:  # past the deadline and nothing queued: stop waiting
                    raise
                continue
            return bytes(memoryview(buf)[:n])

    def _receive_frame(self, buf: array.array, deadline: _StreamDeadline, counters: dict) -> None:
        """Read one leader/payload/trailer group and file it under its block id.

        On a timeout the transfers already taken are pushed back, so nothing is lost.
        """
        consumed: list[bytes] = []

        def take() -> bytes:
            try:
                data = self._read_transfer(buf, deadline)
            except DeviceTimeoutError:
                self._pushback.extendleft(reversed(consumed))
                raise
            consumed.append(data)
            return data

        data = take()
        if not stream.is_leader(data):
            counters["discarded"] += 1
            return
        try:
            leader = stream.decode_leader(data)
        except CodecError:  # a damaged leader is skipped like any stray transfer
            counters["discarded"] += 1
            return
        roi, fmt = self._roi, self._format
        if (
            leader.pixel_format,
            leader.width,
            leader.height,
            leader.offset_x,
            leader.offset_y,
            leader.padding_x,
        ) != (fmt, roi.width, roi.height, roi.offset_x, roi.offset_y, 0):
            raise CameraStreamError(
                f"frame {leader.block_id} is {leader.pixel_format.name} {leader.width}x"
                f"{leader.height}+{leader.offset_x}+{leader.offset_y} (padding {leader.padding_x}),"
                f" the camera is set to {fmt.name} {roi.width}x{roi.height}+{roi.offset_x}"
                f"+{roi.offset_y}; stop, reconfigure and start again"
            )
        expected = payload_size(fmt, roi.n_pixels)
        status = FrameStatus.OK
        trailer_raw: bytes | None = None
        next_leader = False
        payload = take()
        if len(payload) != expected and stream.is_trailer(payload):
            trailer_raw, payload, status = payload, b"", FrameStatus.INCOMPLETE
        elif len(payload) != expected and stream.is_leader(payload):
            # payload and trailer lost: this is the next frame's leader
            self._pushback.appendleft(payload)
            payload, status, next_leader = b"", FrameStatus.INCOMPLETE, True
        if status == FrameStatus.OK and len(payload) != expected:
            status = FrameStatus.INCOMPLETE
        trailer: stream.Trailer | None = None
        if not next_leader:
            if trailer_raw is None:
                trailer_raw = take()
            if stream.is_leader(trailer_raw):
                self._pushback.appendleft(trailer_raw)
            else:
                try:
                    trailer = stream.decode_trailer(trailer_raw)
                except CodecError:
                    trailer = None
        if status == FrameStatus.OK:
            if trailer is None:
                status = FrameStatus.TRAILER_CORRUPT
            elif trailer.block_id != leader.block_id:
                status = FrameStatus.ID_MISMATCH
            elif trailer.status != Status.SUCCESS:
                status = FrameStatus.DEVICE_STATUS
            elif trailer.valid_payload_size != expected or trailer.height != roi.height:
                status = FrameStatus.INCOMPLETE
        pixels = None
        if status != FrameStatus.INCOMPLETE:
            pixels = unpack(payload, fmt, roi.n_pixels).reshape(roi.height, roi.width)
        bid = leader.block_id
        self._max_seen = max(self._max_seen, bid)
        old = self._buffered.get(bid)
        if bid < self._next_id or (
            old is not None and (old.status == FrameStatus.OK or status != FrameStatus.OK)
        ):
            counters["duplicates"] += 1
            return
        self._buffered[bid] = _Received(
            pixels, leader.timestamp_ns / 1000.0, status, trailer.status if trailer else 0
        )

    def read_frames(self, n: int, timeout_ms: int | None = None) -> FrameReadout:
        """The next n frames (ids first_id .. first_id + n - 1), waiting up to timeout_ms in all
        for the camera (frames already queued are read even past it: see _StreamDeadline).

        See the module docstring for per-frame statuses and what raises.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be an integer >= 1, got {n!r}")
        n = int(n)
        timeout = self.timeout_ms if timeout_ms is None else _check_timeout_ms(timeout_ms)
        if not self._acquiring:
            raise CameraStateError("the camera is not acquiring; call start() before read_frames()")
        roi, fmt = self._roi, self._format
        first = self._next_id
        last = first + n - 1
        size = max(payload_size(fmt, roi.n_pixels), stream.MAX_LEADER_SIZE)
        size = -(-size // L.MAX_PACKET_SIZE) * L.MAX_PACKET_SIZE + L.MAX_PACKET_SIZE
        buf = array.array("B", bytes(size))
        counters = {"duplicates": 0, "discarded": 0}
        deadline = _StreamDeadline(timeout / 1000.0)
        try:
            while last not in self._buffered and self._max_seen <= last:
                self._receive_frame(buf, deadline, counters)
        except DeviceTimeoutError as e:
            partial = self._assemble(first, n, counters, final=False)
            raise CameraStreamTimeout(
                f"{int((partial.statuses != FrameStatus.NOT_RECEIVED).sum())} of {n} frames "
                f"(ids {first}..{last}) resolved within {timeout} ms; is the trigger running? "
                "read_frames again resumes at the same ids",
                partial,
            ) from e
        readout = self._assemble(first, n, counters, final=True)
        for fid in range(first, last + 1):
            self._buffered.pop(fid, None)
        self._next_id = last + 1
        return readout

    def skip_to(self, frame_id: int) -> None:
        """Continue reading at frame id `frame_id` (>= the next id to be read): frames with
        lower ids, buffered or still to arrive, are discarded as stale. Resynchronises the host
        after a faulty readout, e.g. with skip_to(camera["FrameCounter"])."""
        if isinstance(frame_id, bool) or not isinstance(frame_id, (int, np.integer)):
            raise InputError(f"frame_id must be an integer, got {frame_id!r}")
        if frame_id < self._next_id:
            raise InputError(
                f"cannot skip back to frame {frame_id}: frames up to {self._next_id - 1} were "
                "already returned"
            )
        self._next_id = int(frame_id)
        self._buffered = {k: v for k, v in self._buffered.items() if k >= self._next_id}

    def _assemble(self, first: int, n: int, counters: dict, final: bool) -> FrameReadout:
        roi = self._roi
        frames = np.zeros((n, roi.height, roi.width), dtype=output_dtype(self._format))
        ids = np.arange(first, first + n, dtype=np.int64)
        ts = np.full(n, np.nan)
        statuses = np.empty(n, dtype=np.uint8)
        tstat = np.zeros(n, dtype=np.uint16)
        for k in range(n):
            got = self._buffered.get(first + k)
            if got is None:
                late = self._max_seen > first + k
                statuses[k] = FrameStatus.DROPPED if (late or final) else FrameStatus.NOT_RECEIVED
                continue
            if got.pixels is not None:
                frames[k] = got.pixels
            ts[k] = got.timestamp_us
            statuses[k] = got.status
            tstat[k] = got.trailer_status
        return FrameReadout(
            frames, ids, ts, statuses, tstat, counters["duplicates"], counters["discarded"]
        )

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Stop acquiring (if the device is still there) and release the USB device."""
        if self._transport.closed:
            return
        try:
            if self._acquiring:
                self.stop()
        except DeviceError:
            pass
        finally:
            self._transport.close()

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
