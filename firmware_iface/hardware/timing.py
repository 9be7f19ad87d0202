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

from ..dlpc900.commands import MAX_24BIT, MIN_EXPOSURE_1BIT_US
from ..fpga.messages import (
    MAX_EXPOSURE_US,
    MAX_FRAME_PERIOD_US,
    MIN_EXPOSURE_US,
    MIN_FRAME_PERIOD_US,
)


@dataclass(frozen=True)
class FrameTiming:
    """Timing of every frame of a run, microseconds.

    exposure_us: camera ExposureTime (exact, may be fractional). pulse_us: FPGA camera trigger
    width. dmd_exposure_us: DLPC900 LUT exposure of each pattern. frame_period_us: FPGA period.
    """

    exposure_us: float
    pulse_us: int
    dmd_exposure_us: int
    frame_period_us: int
    dmd_delay_us: int
    camera_delay_us: int

    def fpga_settings(self) -> tuple[int, int, int, int]:
        """(frame_period_us, exposure_us, dmd_delay_us, camera_delay_us) for the FPGA board."""
        return self.frame_period_us, self.pulse_us, self.dmd_delay_us, self.camera_delay_us


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
        float(exposure_us), pulse, dmd_exposure, period, dmd_delay_us, camera_delay_us
    )
