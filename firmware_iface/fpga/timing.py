"""Frame timing of the FPGA timing board: the `Timing` value object and the protocol's limits.

One `Timing` is what the board holds between runs (SET_FRAME_PERIOD, SET_EXPOSURE,
SET_TRIGGER_DELAYS) and reports in GET_STATUS: whole microseconds of the board clock. The host
driver, the emulator and the hardware composition all pass this object, never a bare tuple.
Pure data and arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = [
    "DEFAULT_TIMING",
    "MAX_EXPOSURE_US",
    "MAX_FRAME_PERIOD_US",
    "MAX_TRIGGER_DELAY_US",
    "MIN_EXPOSURE_US",
    "MIN_FRAME_PERIOD_US",
    "RANGES_US",
    "Timing",
]

# Protocol limits (the board refuses values outside them with OUT_OF_RANGE), microseconds.
MIN_FRAME_PERIOD_US = 50
MAX_FRAME_PERIOD_US = 10_000_000
MIN_EXPOSURE_US = 1
MAX_EXPOSURE_US = 10_000_000
MAX_TRIGGER_DELAY_US = 1_000_000


@dataclass(frozen=True)
class Timing:
    """Timing of every frame of a run, whole microseconds.

    Within each frame of period `frame_period_us` the board pulses the DMD trigger at
    `dmd_delay_us` and the camera trigger at `camera_delay_us` for `exposure_us`.
    """

    frame_period_us: int
    exposure_us: int
    dmd_delay_us: int = 0
    camera_delay_us: int = 0

    def problem(self) -> str | None:
        """Why this timing cannot be armed (the board's ARM check), or None if it can.

        Rule: dmd_delay_us < frame_period_us and camera_delay_us + exposure_us <=
        frame_period_us, so each frame's triggers and exposure fit inside its period.
        """
        if self.dmd_delay_us >= self.frame_period_us:
            return (
                f"DMD trigger delay {self.dmd_delay_us} us must be shorter than the frame period "
                f"{self.frame_period_us} us"
            )
        if self.camera_delay_us + self.exposure_us > self.frame_period_us:
            return (
                f"camera trigger delay {self.camera_delay_us} us + exposure {self.exposure_us} us "
                f"exceeds the frame period {self.frame_period_us} us"
            )
        return None

    def out_of_range(self) -> tuple[str, int] | None:
        """(field name, violated limit) of the first field outside RANGES_US, or None."""
        for f in fields(self):
            lo, hi = RANGES_US[f.name]
            v = getattr(self, f.name)
            if v < lo:
                return f.name, lo
            if v > hi:
                return f.name, hi
        return None

    def with_(self, **changes: int) -> Timing:
        """A copy with some fields changed (dataclasses.replace)."""
        return replace(self, **changes)

    def run_duration_us(self, n_frames: int) -> int:
        """Nominal duration of a run of n_frames frames, microseconds."""
        return n_frames * self.frame_period_us


# Allowed range of each Timing field, microseconds (inclusive).
RANGES_US: dict[str, tuple[int, int]] = {
    "frame_period_us": (MIN_FRAME_PERIOD_US, MAX_FRAME_PERIOD_US),
    "exposure_us": (MIN_EXPOSURE_US, MAX_EXPOSURE_US),
    "dmd_delay_us": (0, MAX_TRIGGER_DELAY_US),
    "camera_delay_us": (0, MAX_TRIGGER_DELAY_US),
}

# Power-up timing of the board.
DEFAULT_TIMING = Timing(frame_period_us=1000, exposure_us=500, dmd_delay_us=0, camera_delay_us=0)
