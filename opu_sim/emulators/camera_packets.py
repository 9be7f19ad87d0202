"""The emulated camera's stream endpoint at the USB packet level.

The device queues transfers (leader, payload, trailer bytes); the bus carries them as packets of
at most MAX_PACKET_SIZE bytes. A host bulk IN read with a buffer of B bytes completes when a
short packet (< MAX_PACKET_SIZE) arrives or when B bytes have arrived, as on a real bus: a device
transfer whose length is a multiple of the packet size ends with a full packet and no
zero-length packet (USB3 Vision devices configure their transfer sizes in the SIRM instead), so a
host buffer larger than it runs on into the next transfer. A packet larger than the room left
in the buffer is an overflow (libusb LIBUSB_ERROR_OVERFLOW) and is lost.
"""

from __future__ import annotations

from collections import deque

from firmware_iface.camera import usb_layout as L

from .camera_usb import overflow

PACKET = L.MAX_PACKET_SIZE


class PacketStream:
    """Queued device transfers, read by the host in bulk IN transfers of its chosen size."""

    def __init__(self) -> None:
        self._queue: deque[bytes] = deque()
        self._offset = 0  # bytes of the head transfer already sent

    def __len__(self) -> int:
        """Device transfers queued (partly sent ones included)."""
        return len(self._queue)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __iter__(self):  # noqa: ANN204 - iterator over bytes
        """The queued device transfers (the head one from the bytes not yet sent)."""
        for k, t in enumerate(self._queue):
            yield t[self._offset :] if k == 0 else t

    def extend(self, transfers: list[bytes]) -> None:
        """Queue device transfers (each a bytes object)."""
        self._queue.extend(transfers)

    def append(self, transfer: bytes) -> None:
        """Queue one device transfer."""
        self._queue.append(bytes(transfer))

    def clear(self) -> None:
        """Drop everything queued (a new acquisition starts with an empty stream)."""
        self._queue.clear()
        self._offset = 0

    def read(self, room: int) -> bytes:
        """Bytes one host read with a `room`-byte buffer receives (call only when non-empty).
        Raises the pyusb overflow error when a packet does not fit the buffer's remaining room."""
        out: list[bytes] = []
        while self._queue and room > 0:
            head = self._queue[0]
            avail = len(head) - self._offset
            if avail <= room:
                out.append(head[self._offset :] if self._offset else head)
                room -= avail
                self._queue.popleft()
                self._offset = 0
                if avail % PACKET or avail == 0:
                    break  # ended with a short packet: the host transfer completes
                continue  # ended on a packet boundary: the host keeps receiving
            take = room // PACKET * PACKET  # whole packets that fit; take < avail
            if take == room:  # the buffer fills on a packet boundary: the host read completes
                out.append(head[self._offset : self._offset + take])
                self._offset += take
                break
            lost = min(avail, take + PACKET)  # the next packet does not fit: babble
            self._offset += lost
            if self._offset >= len(head):
                self._queue.popleft()
                self._offset = 0
            raise overflow(
                f"Overflow: a {lost - take}-byte packet into the {room - take} bytes left of "
                "the host's buffer"
            )
        return b"".join(out) if len(out) != 1 else out[0]
