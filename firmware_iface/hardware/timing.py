"""Frame timing of one acquisition: how the camera exposure, the DMD pattern time and the FPGA
frame period fit together (pure arithmetic, microseconds).

Within each frame of period P the FPGA pulses the DMD trigger at `dmd_delay_us` (the DMD shows
the next pattern for `dmd_exposure_us`, then clears it) and the camera trigger at
`camera_delay_us` (pulse width = the exposure, rounded up to a whole microsecond). The pattern
covers the whole exposure window, and both fit inside the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..dlpc900.commands import MAX_24BIT, MIN_EXPOSURE_1BIT_US
from ..errors import ConfigurationError
from ..fpga.timing import (
    MAX_EXPOSURE_US,
    MAX_FRAME_PERIOD_US,
    MIN_EXPOSURE_US,
    MIN_FRAME_PERIOD_US,
    Timing,
)


@dataclass(frozen=True)
class FrameTiming:
    """Timing of every frame of a run, microseconds.

    exposure_us: camera ExposureTime (exact, may be fractional). dmd_exposure_us: DLPC900 LUT
    exposure of each pattern. board: what the FPGA board is set to (its camera pulse is the
    exposure rounded up to a whole microsecond).
    """

    exposure_us: float
    dmd_exposure_us: int
    board: Timing

    @property
    def pulse_us(self) -> int:
        """FPGA camera trigger width, microseconds."""
        return self.board.exposure_us

    @property
    def frame_period_us(self) -> int:
        """FPGA frame period, microseconds."""
        return self.board.frame_period_us

    @property
    def dmd_delay_us(self) -> int:
        """DMD trigger delay from each frame's start, microseconds."""
        return self.board.dmd_delay_us

    @property
    def camera_delay_us(self) -> int:
        """Camera trigger delay from each frame's start, microseconds."""
        return self.board.camera_delay_us


def camera_exposure_range_us(camera: Any, limits: Any) -> tuple[float, float]:
    """The camera's ExposureTime range as it reports it (GenApi min/max, us), narrowed by
    `limits` (a CameraConfig: min_exposure_us / max_exposure_us, None = the camera's).
    ConfigurationError when the configured limits leave nothing of the camera's range."""
    cam_lo, cam_hi = (float(v) for v in camera.features.range("ExposureTime"))
    lo = cam_lo if limits.min_exposure_us is None else max(cam_lo, limits.min_exposure_us)
    hi = cam_hi if limits.max_exposure_us is None else min(cam_hi, limits.max_exposure_us)
    if not lo <= hi:
        raise ConfigurationError(
            f"camera exposure limits [{limits.min_exposure_us}, {limits.max_exposure_us}] us "
            f"leave nothing of the camera's ExposureTime range [{cam_lo:g}, {cam_hi:g}] us; "
            "widen them or remove them from the hardware config"
        )
    return lo, hi


def exposure_limits_us(
    camera_min_us: float, camera_max_us: float, dmd_delay_us: int, camera_delay_us: int
) -> tuple[float, float]:
    """(shortest, longest) camera exposure the three devices allow together, microseconds.

    Shortest: the camera's minimum (at least the FPGA's 1 us pulse); a shorter exposure than
    the DMD's minimum pattern time (105 us) is fine: the pattern stays up for 105 us and the
    camera exposes inside that window. Longest: the camera's maximum, the FPGA's pulse limit
    and the DMD's 24-bit exposure field, whichever is smallest."""
    lo = max(float(camera_min_us), float(MIN_EXPOSURE_US))
    lead = camera_delay_us - dmd_delay_us
    hi = min(
        float(camera_max_us),
        float(MAX_EXPOSURE_US),
        float(MAX_24BIT - lead),
        float(MAX_FRAME_PERIOD_US - camera_delay_us),
    )
    return lo, hi


def plan_timing(
    exposure_us: float, min_period_us: float, dmd_delay_us: int, camera_delay_us: int
) -> FrameTiming:
    """The frame timing for a camera exposure (already checked against exposure_limits_us):
    the period is the configured minimum unless the pattern or the exposure needs longer."""
    pulse = math.ceil(exposure_us)
    dmd_exposure = max(MIN_EXPOSURE_1BIT_US, camera_delay_us - dmd_delay_us + pulse)
    period = max(
        math.ceil(min_period_us),
        dmd_delay_us + dmd_exposure,
        camera_delay_us + pulse,
        MIN_FRAME_PERIOD_US,
    )
    return FrameTiming(
        float(exposure_us), dmd_exposure, Timing(period, pulse, dmd_delay_us, camera_delay_us)
    )
