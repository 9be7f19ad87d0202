"""The hardware OPU: DLPC900 + FPGA timing board + camera composed into the level-0
FrameSource (`OPUHardware`), its configuration (`HardwareConfig`, JSON/TOML), frame timing and
integrity checks. See docs/hardware.md."""

from .config import (
    AcquisitionConfig,
    CameraConfig,
    DmdConfig,
    FpgaConfig,
    HardwareConfig,
    TimingConfig,
)
from .opu_hardware import OPUHardware
from .timing import FrameTiming, exposure_limits_us, plan_timing

__all__ = [
    "AcquisitionConfig",
    "CameraConfig",
    "DmdConfig",
    "FpgaConfig",
    "FrameTiming",
    "HardwareConfig",
    "OPUHardware",
    "TimingConfig",
    "exposure_limits_us",
    "plan_timing",
]
