"""Counters and wall-clock timers of an OPUHardware session (for benchmarks and diagnostics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..driver_base import Stats

PHASES = ("dmd_prepare", "dmd_upload", "fpga_run", "camera_read", "integrity", "host_other")


@dataclass
class HardwareStats(Stats):
    """What an OPUHardware did since it was opened (`timed(phase)`, `as_dict()`: Stats).

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
