"""Level 0 of the stack: the frame-source contract that the simulator (`opu_sim.OpticalBench`)
and the hardware (`firmware_iface.OPUHardware`) both fulfil.

`acquire(patterns, exposure_us)` shows each pattern once and returns exactly one camera frame per
pattern, in order, for the configured output pixels only. A frame is never attributed to another
pattern: drops, duplicates and lag are detected and re-acquired, or raised as
FrameIntegrityError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import InputError
from .geometry import CameraRoi, DmdLayout


@dataclass(frozen=True)
class AcquisitionInfo:
    """How a hardware source acquired a batch (FrameBatch.info; None from the simulator).

    run_ids: the FPGA run of each chunk that was kept. frame_period_us / dmd_exposure_us: the
    frame timing used, microseconds. problems: every integrity problem seen on the way (runs
    that were re-acquired), as 'run <id>: <kind>: <detail>'. pattern_path: "usb" (on-the-fly
    upload) or "video" (video-pattern mode), firmware_iface.dlpc900.timing.
    """

    run_ids: tuple[int, ...]
    frame_period_us: int
    dmd_exposure_us: int
    problems: tuple[str, ...] = ()
    pattern_path: str = "usb"


@dataclass(frozen=True)
class FrameBatch:
    """One camera frame per pattern, with metadata.

    frames: (B, n_pixels) counts in DN, uint16 from a real or emulated camera (uint8 at 8 bit);
        float32 from the simulator's ideal camera (noise off: no quantisation, no clipping).
    frame_ids: (B,) camera frame ids, int64.
    timestamps_us: (B,) device time of each exposure start, microseconds, float64.
    exposure_us: exposure time used, microseconds.
    pixel_ids: (n_pixels,) global sensor ids of the frame's columns, int64.
    saturated: (B,) number of pixels at the ADC's maximum (or full well) in each frame.
    reacquired: frames that had to be taken again after a detected fault.
    info: AcquisitionInfo from a hardware source, None from the simulator.
    """

    frames: np.ndarray
    frame_ids: np.ndarray
    timestamps_us: np.ndarray
    exposure_us: float
    pixel_ids: np.ndarray
    saturated: np.ndarray
    reacquired: int = 0
    info: AcquisitionInfo | None = None


@runtime_checkable
class FrameSource(Protocol):
    """What every frame source offers to calibration and to `opu.OPU`."""

    layout: DmdLayout
    roi: CameraRoi

    @property
    def max_dn(self) -> float:
        """Largest count the camera can report (2**bit_depth - 1), DN."""
        ...

    @property
    def frame_period_us(self) -> float:
        """Time between two frames, microseconds (sets the simulated clock and throughput)."""
        ...

    @property
    def exposure_range_us(self) -> tuple[float, float]:
        """(shortest, longest) camera exposure, microseconds."""
        ...

    @property
    def device_id(self) -> str:
        """Identity of the device (serial number or simulator profile hash)."""
        ...

    def set_output_pixels(self, pixel_ids: np.ndarray | None) -> None:
        """Return only these global sensor ids (all inside the ROI); None: the whole ROI."""
        ...

    def acquire(self, patterns: np.ndarray, exposure_us: float) -> FrameBatch:
        """Show each row of `patterns` ((B, layout.n_elements) of {0,1}) and return its frame."""
        ...

    def wait_s(self, seconds: float) -> None:
        """Let time pass (seconds): the simulator advances its clock, hardware sleeps."""
        ...

    def close(self) -> None:
        """Release the device; the source can be reopened afterwards."""
        ...


MAX_FRAMES_PER_CALL = 1 << 20


def check_pattern_batch(patterns: np.ndarray, n_elements: int) -> np.ndarray:
    """Shape checks shared by every frame source: a (B, n_elements) array (one row may be
    given as a vector), 1 <= B <= MAX_FRAMES_PER_CALL, of bool, integer or float dtype.
    Returns the 2-D array; value checks are the source's (binary for a DMD, mirror fractions
    in [0, 1] for the simulator). Raises InputError."""
    p = np.asarray(patterns)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != n_elements:
        raise InputError(f"patterns must have shape (B, {n_elements}), got {np.shape(patterns)}")
    if p.shape[0] == 0:
        raise InputError("no patterns given: need at least one row")
    if p.shape[0] > MAX_FRAMES_PER_CALL:
        raise InputError(f"at most {MAX_FRAMES_PER_CALL} patterns per acquire call")
    if p.dtype != np.bool_ and p.dtype.kind not in "iuf":
        raise InputError(f"patterns must be bool, integer or float, got dtype {p.dtype}")
    return p


def check_wait_s(seconds: object) -> float:
    """A wait time in seconds, validated the same way by every frame source: a real finite
    number >= 0 (not a bool). Raises InputError."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)):
        raise InputError(f"wait time must be a number of seconds, got {seconds!r}")
    s = float(seconds)
    if not (math.isfinite(s) and s >= 0):
        raise InputError(f"wait time must be a finite number of seconds >= 0, got {seconds}")
    return s


def check_exposure_us(exposure_us: object, lo: float, hi: float, limited_by: str) -> float:
    """An exposure in microseconds within [lo, hi], validated the same way by every frame
    source; `limited_by` says whose limits these are (e.g. "the camera's"). Raises InputError."""
    if isinstance(exposure_us, bool) or not isinstance(exposure_us, (int, float, np.number)):
        raise InputError(f"exposure_us must be a number of microseconds, got {exposure_us!r}")
    e = float(exposure_us)
    if not (math.isfinite(e) and lo <= e <= hi):
        raise InputError(
            f"exposure_us={exposure_us} is outside [{lo:g}, {hi:g}] us, {limited_by} range"
        )
    return e
