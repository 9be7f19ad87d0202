"""Fault injection settings of the FPGA emulator (a FaultPlan: see ../fault_plan.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..fault_plan import FaultPlan

__all__ = ["FPGAFaults"]


@dataclass
class FPGAFaults(FaultPlan):
    """Fault injection settings of an FPGAEmulator; change them at any time.

    crc_error_rate: probability (0..1) that an outgoing frame (reply or event) has one byte
        corrupted on the line (drawn from the plan's RNG, seeded by `seed`).
    lost_acks: the next N replies (ACK or NAK) are executed but never sent.
    lost_events: the next N events (frame triggers, run complete) are never sent.
    timeouts: the next N received frames are swallowed: neither executed nor answered.
    disconnect: the port vanishes now (transport reads/writes fail); the board stops its run.
    disconnect_after_frames: the port vanishes after this many more received frames.
    trigger_lag_frames: frame indices (within every run) whose camera trigger fires one frame
        period late (shown to the rig and flagged CAMERA_LAGGED in the events).
    missing_camera_triggers: frame indices whose camera trigger does not fire.
    extra_camera_triggers: frame indices after whose camera trigger a spurious extra one fires
        half a period later.

    Hook points (`once(point, action)`, actions take no arguments): "run" when a RUN is
    accepted, before its triggers are planned (faults set here apply to this run); "run_rendered"
    after the run callback (the rig's rendering) has returned, before the RUN's ACK is sent.
    """

    HOOK_POINTS = ("run", "run_rendered")

    crc_error_rate: float = 0.0
    lost_acks: int = 0
    lost_events: int = 0
    timeouts: int = 0
    disconnect: bool = False
    disconnect_after_frames: int | None = None
    trigger_lag_frames: frozenset[int] = field(default_factory=frozenset)
    missing_camera_triggers: frozenset[int] = field(default_factory=frozenset)
    extra_camera_triggers: frozenset[int] = field(default_factory=frozenset)
