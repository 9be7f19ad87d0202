"""Frame readout of the USB3 Vision stream channel: leader / payload / trailer groups read in
exactly the transfers configured in the SIRM (bootstrap.StreamPlan), reassembled per block id.

Readout policy (`StreamReader.read_frames`): slot k of a readout is the frame with id
first_id + k, where first_id is the id after the last one returned (0 after start()). Faults are
reported per slot in `statuses` for the caller to re-acquire, never raised:

- DROPPED: no block arrived for this id, but a later id did (the frame was lost on the way);
- INCOMPLETE: payload shorter/longer than the leader announces, or the trailer says fewer valid
  bytes or lines; pixels are zero;
- ID_MISMATCH: the trailer's block id differs from the leader's; pixels unverified;
- TRAILER_CORRUPT: the trailer is missing or does not decode; pixels unverified;
- DEVICE_STATUS: the trailer's status is not SUCCESS (e.g. DATA_DISCARDED); pixels unverified.

Chunk-mode blocks (payload type 0x4001, 36-byte trailer) are accepted: the image is the start
of the payload, the chunk data after it is skipped. Duplicated blocks (an id already filled or
already returned) are discarded and counted in `FrameReadout.duplicates`; transfers that are not
a leader where one is expected are skipped and counted in `FrameReadout.discarded_transfers`.
What raises instead:

- no frame for a slot before the deadline -> CameraStreamTimeout (a DeviceTimeoutError) whose
  `.partial` holds the slots resolved so far; the frames received stay buffered, so calling
  read_frames again resumes at the same first id. The deadline bounds the wait for the camera,
  not the host's own time: transfers already queued when the host gets to them past the
  deadline (descheduled on a loaded machine, say) are still read (see _StreamDeadline);
- a leader whose format or ROI differs from the camera's -> CameraStreamError;
- the device vanishing -> DeviceDisconnectedError.
"""

from __future__ import annotations

import array
import enum
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import CameraStreamError, CameraStreamTimeout, CodecError, DeviceTimeoutError
from ..geometry import CameraRoi
from . import stream
from .bootstrap import StreamPlan
from .pixel_formats import PixelFormat, output_dtype, payload_size, unpack
from .status import Status


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


_LATE_POLL_MS = 1  # past the deadline, a stream read waits this long for a transfer


class _StreamDeadline:
    """When read_frames stops waiting for stream transfers.

    The deadline is measured on the wall clock, so it also runs while the host is not reading:
    descheduled on a loaded machine, unpacking, or compiling a pixel kernel on first use. Such
    a host can find the deadline passed while every frame it waits for is already queued;
    raising then would make the caller re-acquire frames that arrived in time, and the
    re-acquisition would meet the same slow host. So past the deadline, transfers already
    queued are still taken (each read waits at most _LATE_POLL_MS), and the first read that
    finds the stream empty ends the wait. That late draining is bounded by a number of
    transfers (`late_transfers`: the caller allows for the frames it asked for), not by time,
    so it does not depend on how fast the host is, and a device that never stops streaming
    cannot hold the host.
    """

    def __init__(self, timeout_s: float, late_transfers: int) -> None:
        self._at = time.monotonic() + timeout_s
        self._late_left = late_transfers
        self._late = False

    @property
    def late(self) -> bool:
        """True once a read was made past the deadline."""
        return self._late

    def wait_ms(self) -> int | None:
        """How long the next transfer may be waited for, ms; None when the wait is over."""
        if not self._late:
            remaining = math.ceil((self._at - time.monotonic()) * 1000.0)
            if remaining >= 1:
                return remaining
            self._late = True
        if self._late_left <= 0:
            return None
        self._late_left -= 1
        return _LATE_POLL_MS


@dataclass(frozen=True)
class StreamFormat:
    """What the camera was set to when the stream started: the leaders must agree.
    tick_ns: nanoseconds per leader timestamp tick (ABRM timestamp increment)."""

    pixel_format: PixelFormat
    roi: CameraRoi
    tick_ns: int = 1

    @property
    def image_bytes(self) -> int:
        """Bytes of one image in the payload."""
        return payload_size(self.pixel_format, self.roi.n_pixels)


class _Group:
    """The transfers of one leader/payload/trailer group; pushed back on a timeout.
    read(size, deadline): the reader's next transfer; pushback: the reader's queue of
    transfers to deliver again (the group's go back to its front, in order)."""

    def __init__(
        self,
        read: Callable[[int, _StreamDeadline], bytes],
        pushback: deque[bytes],
        deadline: _StreamDeadline,
    ) -> None:
        self._read = read
        self._pushback = pushback
        self._deadline = deadline
        self.consumed: list[bytes] = []

    def take(self, size: int) -> bytes:
        try:
            data = self._read(size, self._deadline)
        except DeviceTimeoutError:
            self._pushback.extendleft(reversed(self.consumed))
            raise
        self.consumed.append(data)
        return data


def _is_block(data: bytes, is_kind: Callable[[bytes], bool], sizes: tuple[int, ...]) -> bool:
    return len(data) in sizes and is_kind(data)


def _is_block_start(data: bytes) -> bool:
    """True for a transfer that is a whole trailer or leader (not payload)."""
    return _is_block(
        data, stream.is_trailer, (stream.TRAILER_SIZE, stream.CHUNK_TRAILER_SIZE)
    ) or _is_block(data, stream.is_leader, (stream.LEADER_SIZE,))


class StreamReader:
    """Reassembles frames from stream transfers read by `read_stream(buffer, timeout_ms)`."""

    def __init__(
        self, read_stream: Callable[[array.array, int], int], plan: StreamPlan, fmt: StreamFormat
    ) -> None:
        self._read_stream = read_stream
        self.plan = plan
        self.format = fmt
        self._buffers: dict[int, array.array] = {}
        self.next_id = 0
        self._buffered: dict[int, _Received] = {}
        self._pushback: deque[bytes] = deque()
        self._max_seen = -1

    def _buffer(self, size: int) -> array.array:
        buf = self._buffers.get(size)
        if buf is None:
            buf = self._buffers[size] = array.array("B", bytes(size))
        return buf

    def _read_transfer(self, size: int, deadline: _StreamDeadline) -> bytes:
        """One stream transfer into a `size`-byte buffer; retries timed-out transfers until the
        deadline, then takes only a transfer that is already queued (DeviceTimeoutError when
        there is none)."""
        if self._pushback:
            return self._pushback.popleft()
        buf = self._buffer(size)
        while True:
            wait_ms = deadline.wait_ms()
            if wait_ms is None:
                raise DeviceTimeoutError("stream deadline passed")
            try:
                n = self._read_stream(buf, wait_ms)
            except DeviceTimeoutError:
                if deadline.late:  # past the deadline and nothing queued: stop waiting
                    raise
                continue
            return bytes(memoryview(buf)[:n])

    # ---- one group ---------------------------------------------------------------------------
    def _receive_frame(self, deadline: _StreamDeadline, counters: dict) -> None:
        """Read one leader/payload/trailer group and file it under its block id."""
        group = _Group(self._read_transfer, self._pushback, deadline)
        leader = self._leader(group.take(self.plan.leader_size), counters)
        if leader is None:
            return
        payload, tail = self._payload(group)
        trailer, ended = self._trailer(group, tail)
        status = self._status(leader, payload, trailer, ended)
        pixels = None
        if status != FrameStatus.INCOMPLETE:
            fmt = self.format
            image = payload[: fmt.image_bytes]
            pixels = unpack(image, fmt.pixel_format, fmt.roi.n_pixels).reshape(
                fmt.roi.height, fmt.roi.width
            )
        self._file(
            leader,
            _Received(
                pixels,
                leader.timestamp_ns * self.format.tick_ns / 1000.0,
                status,
                trailer.status if trailer else 0,
            ),
            counters,
        )

    def _leader(self, data: bytes, counters: dict) -> stream.Leader | None:
        """The decoded leader, or None (counted as discarded) for anything else."""
        if not stream.is_leader(data):
            counters["discarded"] += 1
            return None
        try:
            leader = stream.decode_leader(data)
        except CodecError:  # a damaged leader is skipped like any stray transfer
            counters["discarded"] += 1
            return None
        fmt, roi = self.format.pixel_format, self.format.roi
        seen = (
            leader.pixel_format,
            leader.width,
            leader.height,
            leader.offset_x,
            leader.offset_y,
            leader.padding_x,
        )
        if seen != (fmt, roi.width, roi.height, roi.offset_x, roi.offset_y, 0):
            raise CameraStreamError(
                f"frame {leader.block_id} is {leader.pixel_format.name} {leader.width}x"
                f"{leader.height}+{leader.offset_x}+{leader.offset_y} (padding {leader.padding_x}),"
                f" the camera is set to {fmt.name} {roi.width}x{roi.height}+{roi.offset_x}"
                f"+{roi.offset_y}; stop, reconfigure and start again"
            )
        return leader

    def _payload(self, group: _Group) -> tuple[bytes, bytes | None]:
        """(payload, tail): the payload transfers as configured; a transfer that comes back
        short ends the payload (the device sent a short packet). When that short transfer is a
        trailer or a leader instead, it is returned as the tail and not part of the payload."""
        parts: list[bytes] = []
        total = 0
        for size in self.plan.payload_transfers:
            data = group.take(size)
            short = len(data) < size
            if short and total + len(data) != self.format.image_bytes and _is_block_start(data):
                return b"".join(parts), data
            parts.append(data)
            total += len(data)
            if short:
                break
        return (parts[0] if len(parts) == 1 else b"".join(parts)), None

    def _trailer(self, group: _Group, tail: bytes | None) -> tuple[stream.Trailer | None, bool]:
        """(trailer or None when missing/corrupt, True when the payload ended early)."""
        raw = tail if tail is not None else group.take(self.plan.trailer_size)
        if _is_block(raw, stream.is_leader, (stream.LEADER_SIZE,)):
            self._pushback.appendleft(raw)  # payload and/or trailer lost: the next frame's leader
            return None, tail is not None
        try:
            return stream.decode_trailer(raw), tail is not None
        except CodecError:
            return None, tail is not None

    def _status(
        self, leader: stream.Leader, payload: bytes, trailer: stream.Trailer | None, ended: bool
    ) -> FrameStatus:
        image = self.format.image_bytes
        chunked = leader.payload_type == stream.PAYLOAD_TYPE_IMAGE_CHUNK
        if ended or (len(payload) < image if chunked else len(payload) != image):
            return FrameStatus.INCOMPLETE
        if trailer is None:
            return FrameStatus.TRAILER_CORRUPT
        if trailer.block_id != leader.block_id:
            return FrameStatus.ID_MISMATCH
        if trailer.status != Status.SUCCESS:
            return FrameStatus.DEVICE_STATUS
        if trailer.valid_payload_size != len(payload) or trailer.height != leader.height:
            return FrameStatus.INCOMPLETE
        return FrameStatus.OK

    def _file(self, leader: stream.Leader, got: _Received, counters: dict) -> None:
        bid = leader.block_id
        self._max_seen = max(self._max_seen, bid)
        old = self._buffered.get(bid)
        if bid < self.next_id or (
            old is not None and (old.status == FrameStatus.OK or got.status != FrameStatus.OK)
        ):
            counters["duplicates"] += 1
            return
        self._buffered[bid] = got

    # ---- readouts ----------------------------------------------------------------------------
    def read_frames(self, n: int, timeout_ms: int) -> FrameReadout:
        """The next n frames (ids next_id .. next_id + n - 1), waiting up to timeout_ms in all."""
        first = self.next_id
        last = first + n - 1
        counters = {"duplicates": 0, "discarded": 0}
        # past the deadline: the transfers of twice the frames asked for (room for stray and
        # duplicated ones), each only if already queued
        per_frame = 2 + len(self.plan.payload_transfers)
        deadline = _StreamDeadline(timeout_ms / 1000.0, 2 * n * per_frame)
        try:
            while last not in self._buffered and self._max_seen <= last:
                self._receive_frame(deadline, counters)
        except DeviceTimeoutError as e:
            partial = self._assemble(first, n, counters, final=False)
            raise CameraStreamTimeout(
                f"{int((partial.statuses != FrameStatus.NOT_RECEIVED).sum())} of {n} frames "
                f"(ids {first}..{last}) resolved within {timeout_ms} ms; is the trigger running? "
                "read_frames again resumes at the same ids",
                partial,
            ) from e
        readout = self._assemble(first, n, counters, final=True)
        for fid in range(first, last + 1):
            self._buffered.pop(fid, None)
        self.next_id = last + 1
        return readout

    def skip_to(self, frame_id: int) -> None:
        """Continue at frame id `frame_id` (>= next_id): lower ids are discarded as stale."""
        self.next_id = int(frame_id)
        self._buffered = {k: v for k, v in self._buffered.items() if k >= self.next_id}

    def _assemble(self, first: int, n: int, counters: dict, final: bool) -> FrameReadout:
        roi = self.format.roi
        frames = np.zeros((n, roi.height, roi.width), dtype=output_dtype(self.format.pixel_format))
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
