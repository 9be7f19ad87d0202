"""The USB3 Vision control channel of the host: GenCP register reads and writes with request
ids, retries, the resend flag and PENDING_ACK, over the bulk transport.

Request ids run 1..65535 and never 0 (control.next_request_id). A transaction whose acknowledge
does not come within the timeout is resent with the same request id and the resend flag set, so
the device answers it again without executing it twice. BUSY is retried with a new request id
after 1, 2, 3 ... ms. Reads and writes larger than the device's transfer limits (SBRM) are split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from ..driver_base import Stats
from ..errors import (
    CameraCommandError,
    CameraProtocolError,
    DeviceTimeoutError,
    InputError,
)
from . import control
from .status import ADVICE, Status, describe

#: acknowledge buffer before the SBRM is known; the GenCP minimum a device must accept
BOOTSTRAP_MAX_ACK = 12 + 64 + 8
BOOTSTRAP_MAX_CMD = 12 + 8 + 64


@dataclass
class CameraStats(Stats):
    """What a camera driver did: control transactions, resends (timeouts or malformed
    acknowledges), BUSY answers, frames returned, and seconds per phase."""

    commands: int = 0
    resends: int = 0
    busy: int = 0
    frames: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False)
class ControlChannel:
    """GenCP transactions on a transport with write_control(data, timeout_ms) and
    read_control(max_size, timeout_ms). timeout_ms: per-transfer timeout; retries: extra
    attempts after a timeout or BUSY; guard(): the driver's transaction context (thread guard,
    lifecycle); stats: counters (CameraStats); max_ack_transfer / max_cmd_transfer: the
    device's transfer limits, bytes (the GenCP minimum until set_limits gives the SBRM's)."""

    transport: object = field(repr=False)
    timeout_ms: int
    retries: int
    guard: Callable[[], AbstractContextManager[None]] = field(repr=False)
    stats: CameraStats = field(repr=False)
    max_ack_transfer: int = BOOTSTRAP_MAX_ACK
    max_cmd_transfer: int = BOOTSTRAP_MAX_CMD
    _request_id: int = field(default=0, init=False, repr=False)

    def set_limits(self, max_cmd_transfer: int, max_ack_transfer: int) -> None:
        """The device's transfer limits from its SBRM, bytes."""
        self.max_cmd_transfer = int(max_cmd_transfer)
        self.max_ack_transfer = int(max_ack_transfer)

    @property
    def max_read(self) -> int:
        """Largest READMEM count per acknowledge, bytes."""
        return min(self.max_ack_transfer - control.HEADER_SIZE, control.MAX_READ_COUNT)

    @property
    def max_write(self) -> int:
        """Largest WRITEMEM data per command, bytes."""
        return min(self.max_cmd_transfer - control.HEADER_SIZE - 8, control.MAX_WRITE_DATA)

    def read(self, address: int, count: int, what: str | None = None) -> bytes:
        """`count` bytes at `address`, in READMEMs of at most max_read bytes."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InputError(f"read count must be an integer >= 1, got {count!r}")
        parts = []
        for off in range(0, count, self.max_read):
            n = min(self.max_read, count - off)
            ack = self._transact(
                lambda rid, resend, a=address + off, n=n: control.encode_read_command(
                    rid, a, n, resend
                ),
                control.CommandId.READMEM_ACK,
                what or f"read of {n} bytes at {address + off:#x}",
            )
            if len(ack.data) != n:
                raise CameraProtocolError(
                    f"asked for {n} bytes at {address + off:#x}, got {len(ack.data)}"
                )
            parts.append(ack.data)
        return b"".join(parts)

    def write(self, address: int, data: bytes, what: str | None = None) -> None:
        """Write `data` at `address` in WRITEMEMs of at most max_write bytes."""
        data = bytes(data)
        if not data:
            raise InputError("nothing to write: data is empty")
        for off in range(0, len(data), self.max_write):
            piece = data[off : off + self.max_write]
            ack = self._transact(
                lambda rid, resend, a=address + off, p=piece: control.encode_write_command(
                    rid, a, p, resend
                ),
                control.CommandId.WRITEMEM_ACK,
                what or f"write of {len(piece)} bytes at {address + off:#x}",
            )
            if ack.bytes_written != len(piece):
                raise CameraProtocolError(
                    f"camera wrote {ack.bytes_written} of {len(piece)} bytes at {address + off:#x}"
                )

    def _transact(
        self, build: Callable[[int, bool], bytes], expected_ack: int, what: str
    ) -> control.Ack:
        """Send build(request_id, resend) and return its successful acknowledge."""
        with self.guard():
            self.stats.count("commands")
            return self._attempts(build, expected_ack, what)

    def _attempts(
        self, build: Callable[[int, bool], bytes], expected_ack: int, what: str
    ) -> control.Ack:
        rid = self._request_id = control.next_request_id(self._request_id)
        resend = False
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                self.transport.write_control(build(rid, resend), self.timeout_ms)
                ack = self._read_ack(rid)
            except (DeviceTimeoutError, control.ControlCodecError) as e:
                last_error, resend = e, True  # same request id, resend flag set
                self.stats.count("resends")
                continue
            if ack.status == Status.BUSY:
                self.stats.count("busy")
                last_error = CameraCommandError(f"camera stayed busy during {what}", Status.BUSY)
                time.sleep(0.001 * (attempt + 1))
                rid = self._request_id = control.next_request_id(self._request_id)
                resend = False
                continue
            return _checked(ack, expected_ack, what)
        raise _exhausted(last_error, what, self.retries + 1, self.timeout_ms)

    def _read_ack(self, rid: int) -> control.Ack:
        deadline = time.monotonic() + self.timeout_ms / 1000.0
        while True:
            remaining = math.ceil((deadline - time.monotonic()) * 1000.0)
            raw = self.transport.read_control(self.max_ack_transfer, max(remaining, 1))
            ack = control.decode_ack(raw)
            if ack.request_id != rid:
                continue  # stale acknowledge of an earlier, timed-out attempt
            if ack.command_id == control.CommandId.PENDING_ACK:
                deadline = time.monotonic() + (ack.pending_ms + self.timeout_ms) / 1000.0
                continue
            return ack


def _checked(ack: control.Ack, expected_ack: int, what: str) -> control.Ack:
    if ack.command_id != expected_ack:
        raise CameraProtocolError(
            f"{what}: expected acknowledge {expected_ack:#06x}, got {ack.command_id:#06x}"
        )
    if ack.status != Status.SUCCESS:
        advice = ADVICE.get(ack.status)
        raise CameraCommandError(
            f"camera refused {what}: {describe(ack.status)} ({ack.status:#06x})"
            + (f"; {advice}" if advice else ""),
            ack.status,
        )
    return ack


def _exhausted(
    last_error: Exception | None, what: str, attempts: int, timeout_ms: int
) -> Exception:
    if isinstance(last_error, CameraCommandError):
        return last_error
    if isinstance(last_error, control.ControlCodecError):
        err: Exception = CameraProtocolError(f"{what}: malformed acknowledge ({last_error})")
    else:
        err = DeviceTimeoutError(
            f"camera did not acknowledge {what} after {attempts} attempts of {timeout_ms} ms; "
            "check the connection"
        )
    err.__cause__ = last_error
    return err
