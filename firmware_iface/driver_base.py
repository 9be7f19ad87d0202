"""What every device driver of the stack shares: lifecycle, a thread guard and statistics.

`DeviceDriver` is the base of the drivers (FPGA timing board, camera, DLPC900) and of the
composed `OPUHardware`. It follows python-microscope's device base: the public lifecycle is
written once here and a driver fills in `_do_*` hooks.

Lifecycle: OPEN -> CLOSED (close(), idempotent) or OPEN -> LOST (`_mark_lost(error)`: the
device vanished; every later call raises DeviceDisconnectedError until the user closes it and
opens a new driver). `state`, `closed`, `lost` and `lost_error` are public, so tools and tests
read them instead of private flags.

Thread guard: `with self._exclusive():` around every device transaction. A second thread
calling in while one is inside raises ConcurrencyError (the drivers are not re-entrant: a
serial or USB transaction cannot interleave with another).

Statistics: a driver's `stats` is a dataclass deriving from `Stats` (counters as int fields,
wall-clock seconds per phase in an optional `seconds` dict): `stats.count("resends")`,
`with stats.timed("upload"):`, `stats.as_dict()`, `stats + other_stats` (the sum).
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self

from .errors import ConcurrencyError, DeviceDisconnectedError

__all__ = ["DeviceDriver", "DriverState", "Stats"]


class DriverState(enum.Enum):
    """Lifecycle state of a driver."""

    OPEN = "open"
    CLOSED = "closed"
    LOST = "lost"


@dataclasses.dataclass
class Stats:
    """Base of every driver's statistics: subclass it as a dataclass of int counters (and,
    for timers, a `seconds: dict[str, float]` field)."""

    def count(self, name: str, n: int = 1) -> None:
        """Add n to the counter `name` (a field of the subclass)."""
        if name not in self._counter_names():
            raise AttributeError(f"{type(self).__name__} has no counter {name!r}")
        setattr(self, name, getattr(self, name) + n)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall-clock time of the block to seconds[phase] (needs a `seconds` field)."""
        seconds: dict[str, float] = self.seconds  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        try:
            yield
        finally:
            seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - t0

    def as_dict(self) -> dict[str, Any]:
        """Plain-data copy (for JSON, tables, comparisons before/after)."""
        return dataclasses.asdict(self)

    def __add__(self, other: Self) -> Self:
        """The sum of two statistics of one type (e.g. over the sessions of a reopened
        device): counters added, and dict fields (`seconds`, per-kind counts) key by key."""
        if type(other) is not type(self):
            return NotImplemented

        def add(a: Any, b: Any) -> Any:
            if isinstance(a, dict):
                return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}
            return a + b

        return type(self)(**{f.name: add(getattr(self, f.name), getattr(other, f.name))
                             for f in dataclasses.fields(self)})

    def _counter_names(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self) if f.type in (int, "int")}


class DeviceDriver:
    """Base of the device drivers: lifecycle (open / closed / lost), thread guard, `stats`.

    Subclasses set `device_name` (used in messages, e.g. "FPGA timing board") and `reopen_hint`
    (what the user does after a loss, e.g. "open a new FPGATimingBoard"), call
    `super().__init__()` first, and implement `_do_close()` (release the device; called once,
    also after a loss). A subclass that opens in its own __init__ calls `self.close()` if that
    fails, so nothing stays claimed.
    """

    device_name: ClassVar[str] = "device"
    reopen_hint: ClassVar[str] = "open it again"

    def __init__(self) -> None:
        self._state = DriverState.OPEN
        self._lost_error: BaseException | None = None
        self._guard = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def state(self) -> DriverState:
        """OPEN, CLOSED or LOST."""
        return self._state

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._state is DriverState.CLOSED

    @property
    def lost(self) -> bool:
        """True once the device vanished (until close())."""
        return self._state is DriverState.LOST

    @property
    def lost_error(self) -> BaseException | None:
        """The error that made the device lost (None if it was not lost)."""
        return self._lost_error

    def close(self) -> None:
        """Release the device (idempotent; also after a loss)."""
        if self._state is DriverState.CLOSED:
            return
        try:
            self._do_close()
        finally:
            self._state = DriverState.CLOSED

    def _do_close(self) -> None:
        """Release the device (subclasses). Called once, by close()."""

    def _mark_lost(self, error: BaseException) -> None:
        """The device vanished with `error`: refuse further work until close()."""
        if self._state is DriverState.OPEN:
            self._state = DriverState.LOST
            self._lost_error = error

    def _check_usable(self) -> None:
        """Raise DeviceDisconnectedError unless the driver is OPEN."""
        if self._state is DriverState.CLOSED:
            raise DeviceDisconnectedError(
                f"the {self.device_name} is closed; {self.reopen_hint}"
            )
        if self._state is DriverState.LOST:
            raise DeviceDisconnectedError(
                f"the {self.device_name} was lost ({self._lost_error}); close() it, reconnect "
                f"the device and {self.reopen_hint}"
            )

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the driver for one transaction: usable, and not in use by another thread."""
        self._check_usable()
        if not self._guard.acquire(blocking=False):
            raise ConcurrencyError(
                f"another thread is using this {self.device_name}; serialise the calls"
            )
        try:
            yield
        finally:
            self._guard.release()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state.value})"
