"""Counters and wall-clock timers of an OPUHardware session (for benchmarks and diagnostics)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

PHASES = ("dmd_prepare", "dmd_upload", "fpga_run", "camera_read", "integrity", "host_other")


@dataclass
class HardwareStats:
    """What an OPUHardware did since it was opened.

    seconds: wall-clock time per phase (PHASES): DMD pattern preparation (ERLE), DMD upload and
    sequencer commands, FPGA configure/arm/run/wait (on the emulated rig this includes the
    rig's rendering, which runs inside RUN), camera readout (transfers and unpacking),
    integrity checks and camera counter reads, everything else in acquire.
    """

    frames: int = 0
    runs: int = 0
    chunks: int = 0
    reacquired_frames: int = 0
    failed_runs: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall-clock time of the block to `phase`."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0
