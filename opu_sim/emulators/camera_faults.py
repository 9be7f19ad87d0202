"""Fault injection settings of the emulated camera (CameraFaults, a FaultPlan)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_iface.errors import ConfigurationError

from .fault_plan import FaultPlan

_ID_SETS = ("drop_frames", "duplicate_frames", "corrupt_trailer", "trailer_error",
            "truncate_payload")


def _ids(value: object, name: str) -> frozenset[int]:
    try:
        out = frozenset(int(v) for v in value)  # type: ignore[union-attr]
    except TypeError:
        raise ConfigurationError(
            f"{name} must be a collection of frame ids, got {value!r}"
        ) from None
    if any(v < 0 for v in out):
        raise ConfigurationError(f"{name} holds negative frame ids: {sorted(out)}")
    return out


@dataclass
class CameraFaults(FaultPlan):
    """Fault injection settings of the emulated camera (frame ids count from AcquisitionStart).

    drop_frames: ids whose three stream transfers are never sent.
    drop_rate: probability (0..1) that any other frame is dropped, drawn from `seed`.
    duplicate_frames: ids whose leader/payload/trailer are sent twice.
    corrupt_trailer: ids whose trailer carries a wrong block id (bit 0 flipped).
    trailer_error: ids whose trailer status is DATA_DISCARDED (payload intact).
    truncate_payload: ids whose payload transfer loses its second half (trailer unchanged).
    usb_timeouts: the next N bulk transfers (any endpoint) time out; the data stays queued and a
        timed-out command is lost (a countdown: decremented as they fire).
    busy_commands: the next N commands are answered BUSY without being executed (countdown).
    disconnect: the device vanishes: it no longer enumerates and every transfer fails (ENODEV).
    Hook point "deliver": runs with the frame ids a deliver() call assigned.
    """

    HOOK_POINTS = ("deliver",)

    drop_frames: frozenset[int] = frozenset()
    drop_rate: float = 0.0
    duplicate_frames: frozenset[int] = frozenset()
    corrupt_trailer: frozenset[int] = frozenset()
    trailer_error: frozenset[int] = frozenset()
    truncate_payload: frozenset[int] = frozenset()
    usb_timeouts: int = 0
    busy_commands: int = 0
    disconnect: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in _ID_SETS:
            setattr(self, name, _ids(getattr(self, name), name))
        if not 0.0 <= float(self.drop_rate) <= 1.0:
            raise ConfigurationError(f"drop_rate must be in 0..1, got {self.drop_rate}")
        for name in ("usb_timeouts", "busy_commands"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigurationError(f"{name} must be an integer >= 0, got {v!r}")
