"""Device side of the FPGA timing board (docs/fpga.md), on a simulated clock.

`FPGAEmulator` (board.py) speaks the board's UART protocol strictly: malformed, unknown or
out-of-order commands get the NAK the board gives. Its clock is in microseconds and never
sleeps. A run is handed to the test rig in one call, `on_run(RunRequest)` (runs.py), with every
DMD and camera trigger time, so the rig can render the whole batch at once; `on_run_end`
tells it how the run ended. Faults are a FaultPlan (`FPGAFaults`, faults.py), changeable at
any time, with one-shot hooks at the points "run" and "run_rendered".

Transports, both explicit: `register_emulator(name, emu)` (registry.py) makes
`serial.serial_for_url("fpgaemu://name")` reach it (installing the handler
`protocol_fpgaemu` with pyserial then, not on import); `serve_tcp(emu)` (tcp.py) serves it on
loopback TCP for `socket://127.0.0.1:PORT`. Both talk to the emulator through an
`EmulatorLink` (link.py), the host's end of the wire.
"""

from __future__ import annotations

from firmware_iface.errors import LinkDownError

from .board import RUN_START_LATENCY_US, UNKNOWN_SEQ, FPGAEmulator
from .faults import FPGAFaults
from .link import EmulatorLink
from .registry import (
    HANDLER_PACKAGE,
    get_emulator,
    install_url_handler,
    register_emulator,
    unregister_emulator,
)
from .runs import RunRequest
from .tcp import TcpEmulatorServer, serve_tcp

__all__ = [
    "FPGAFaults",
    "RunRequest",
    "FPGAEmulator",
    "EmulatorLink",
    "LinkDownError",
    "HANDLER_PACKAGE",
    "install_url_handler",
    "register_emulator",
    "unregister_emulator",
    "get_emulator",
    "serve_tcp",
    "TcpEmulatorServer",
    "UNKNOWN_SEQ",
    "RUN_START_LATENCY_US",
]
