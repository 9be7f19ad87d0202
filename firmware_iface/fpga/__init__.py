"""FPGA timing board (DMD + camera trigger sequencer) over UART: our own COBS-framed protocol.

Layers: `cobs` and `crc` (pure byte functions), `frame` (framing: header, CRC, COBS, 0x00
delimiter), `messages` (typed messages, error codes, limits), `driver` (`FPGATimingBoard`:
state, retries, timeouts). The protocol is specified in docs/fpga.md.

The driver names are loaded lazily, so the emulator (opu_sim) can import the codec modules
without importing the driver.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import FPGACommandError, FPGARunAbortedError, FrameCodecError
from .messages import (
    BoardState,
    CounterReport,
    ErrorCode,
    MsgType,
    RunAccepted,
    RunComplete,
    RunEndReason,
    StatusReport,
    TriggerEvent,
    TriggerFlags,
)

__all__ = [
    "BoardState",
    "CounterReport",
    "ErrorCode",
    "FPGACommandError",
    "FPGARunAbortedError",
    "FPGATimingBoard",
    "LinkStats",
    "FrameCodecError",
    "MsgType",
    "RunAccepted",
    "RunComplete",
    "RunEndReason",
    "StatusReport",
    "TriggerEvent",
    "TriggerFlags",
]


_LAZY = {"FPGATimingBoard": "driver", "LinkStats": "driver"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
