"""Opening a level-0 frame source from a device string: 'sim', 'emu', or a hardware config."""

from __future__ import annotations

from typing import Any

from firmware_iface.errors import ConfigurationError
from firmware_iface.frames import FrameSource
from firmware_iface.geometry import CameraRoi, DmdLayout


def open_source(
    device: str,
    layout: DmdLayout,
    roi: CameraRoi,
    seed: int,
    profile: Any,
    cache_budget_bytes: int,
) -> tuple[FrameSource, Any]:
    """(frame source, simulator bench or None). The bench is the physics behind 'sim' and 'emu'
    sources (simulator truth for tests); hardware has none."""
    if not isinstance(device, str):
        raise ConfigurationError(f"device must be a string, got {type(device).__name__}")
    if device == "sim":
        from opu_sim.bench import OpticalBench

        bench = OpticalBench(profile, seed, layout, roi, cache_budget_bytes=cache_budget_bytes)
        return bench, bench
    if device == "emu" or device.startswith("emu:"):
        try:
            from .emulated import open_emulated_hardware
        except ImportError as exc:
            raise ConfigurationError(
                "the emulated hardware stack is not available in this build"
            ) from exc
        return open_emulated_hardware(device, layout, roi, seed, profile, cache_budget_bytes)
    if device.startswith(("hw:", "usb:", "hardware:")) or device.endswith((".toml", ".json")):
        try:
            from firmware_iface.hardware import OPUHardware
        except ImportError as exc:
            raise ConfigurationError("the hardware driver stack is not available") from exc
        return OPUHardware.from_config(device, layout, roi), None
    raise ConfigurationError(
        f"unknown device {device!r}: use 'sim' (simulator), 'emu' (emulated hardware stack) "
        "or a hardware config ('hw:<config.json>')"
    )
