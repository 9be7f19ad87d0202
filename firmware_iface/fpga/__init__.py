"""FPGA timing board (DMD + camera trigger sequencer) over UART: our own COBS-framed protocol.

Layers: `cobs` and `crc` (pure byte functions), `frame` (framing: header, CRC, COBS, 0x00
delimiter), `messages` (typed messages, error codes, limits), `driver` (`FPGATimingBoard`:
state, retries, timeouts). The protocol is specified in docs/fpga.md.
"""

from .driver import FPGATimingBoard, LinkStats
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
