"""Technician calibration steps over any frame source, each updating a Calibration record.

    STEPS = exposure, dark, ptc, anchor, stability      ("all" runs them in that order)

exposure: chooses the exposure and redoes what depends on it (dark frame, anchor), keeping the
camera and medium results (ptc, stability) of the previous record. dark: dark frame plus hot and
dead pixels, then the anchor's usable pixels again. ptc: EMVA 1288 photon transfer and PRNU.
anchor: I(r), usable pixels and outputs, and the linearity self-test. stability: decorrelation
time and how long the record stays valid. A step never writes a file: the caller saves the
returned record (atomically) only when every step succeeded.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_iface.errors import CalibrationError, InputError
from firmware_iface.frames import FrameSource
from firmware_iface.geometry import CameraRoi

from .anchor import calibrate_anchor
from .dark import DarkFrame, measure_dark
from .defects import measure_defects
from .linearity import linearity_selftest
from .prnu import measure_prnu
from .progress import Progress
from .ptc import measure_photon_transfer
from .quick import calibrate_for_projection
from .record import Calibration
from .results import STEP_ARRAYS
from .stability import DEFAULT_FIRST_WAIT_S, DEFAULT_MAX_DURATION_S, measure_stability

STEPS = ("exposure", "dark", "ptc", "anchor", "stability")
# what each step re-measures besides its own quantities (shown by `opu calibrate`)
RERUNS = {
    "exposure": "then the dark frame and the anchor at the new exposure",
    "dark": "hot and dead pixels, then the anchor's usable pixels",
    "ptc": "PRNU (unless --no-prnu)",
    "anchor": "usable output pixels, then the linearity self-test",
    "stability": "",
}
StepCallback = Callable[[int, int, str], None]
_KEEP_ACROSS_EXPOSURE = ("ptc", "stability", "defects")


@dataclass
class StepSettings:
    """What the steps need besides the source. n_in, n_out, roi: the OPU geometry;
    max_exposure_us: exposure ceiling (None: the frame period); stability_duration_s: the
    longest stability run, s (it stops as soon as tau is known); stability_first_wait_s: its
    first wait, s; prnu: run the PRNU part of ptc;
    seed: pattern seed; clip_target: clipped-pixel fraction the exposure allows."""

    n_in: int
    n_out: int
    roi: CameraRoi
    max_exposure_us: float | None = None
    stability_duration_s: float = DEFAULT_MAX_DURATION_S
    stability_first_wait_s: float = DEFAULT_FIRST_WAIT_S
    prnu: bool = True
    seed: int = 0


def _fresh(source: FrameSource, s: StepSettings) -> Calibration:
    source.set_output_pixels(None)
    return calibrate_for_projection(
        source, s.n_in, s.n_out, s.roi, max_exposure_us=s.max_exposure_us
    )


def _dark_frame(cal: Calibration, source: FrameSource) -> DarkFrame:
    return DarkFrame(dark_dn=cal.dark_dn, hot=cal.hot_pixels, pixel_ids=source.roi.pixel_ids())


def step_exposure(source: FrameSource, cal: Calibration | None, s: StepSettings) -> Calibration:
    """New exposure, dark frame and anchor; keeps ptc/stability/defects of `cal`."""
    new = _fresh(source, s)
    if cal is not None:
        for key in _KEEP_ACROSS_EXPOSURE:
            if key in cal.results:
                new.results[key] = cal.results[key]
        keep = {name for step in _KEEP_ACROSS_EXPOSURE for name in STEP_ARRAYS.get(step, ())}
        new.extra_arrays.update({k: v for k, v in cal.extra_arrays.items() if k in keep})
    return new


def _redo_anchor(source: FrameSource, cal: Calibration, s: StepSettings) -> None:
    source.set_output_pixels(None)
    anc = calibrate_anchor(
        source, _dark_frame(cal, source), s.n_out, int(cal.anchor.sum()), cal.exposure_us
    )
    cal.output_pixels, cal.anchor, cal.anchor_dn = anc.output_pixels, anc.anchor, anc.anchor_dn
    cal.scale_dn = anc.scale_dn
    cal.results["anchor"] = anc.summary()


def step_dark(
    source: FrameSource, cal: Calibration, s: StepSettings, progress: Progress | None = None
) -> Calibration:
    """Dark frame (32 frames) at the record's exposure, hot and dead pixels, usable pixels."""
    cal = copy.deepcopy(cal)
    source.set_output_pixels(None)
    dark = measure_dark(source, cal.exposure_us, n_frames=32)
    defects = measure_defects(source, seed=s.seed, progress=progress)
    cal.dark_dn = dark.dark_dn
    cal.hot_pixels = dark.hot | defects.hot | defects.dead
    cal.results["dark"] = dark.summary()
    cal.results["defects"] = defects.summary()
    cal.extra_arrays.update(
        defect_hot=defects.hot, defect_dead=defects.dead, dark_long_dn=defects.dark_long_dn
    )
    _redo_anchor(source, cal, s)
    return cal


def step_ptc(
    source: FrameSource, cal: Calibration, s: StepSettings, progress: Progress | None = None
) -> Calibration:
    """EMVA 1288 photon transfer over the ROI, then PRNU (Hadamard design) if s.prnu."""
    cal = copy.deepcopy(cal)
    source.set_output_pixels(None)
    ptc = measure_photon_transfer(source, progress=progress)
    res = ptc.summary()
    if s.prnu:
        pr = measure_prnu(
            source, ptc.gain_dn_per_e, ptc.dark_noise_dn, ptc.saturation_dn, progress=progress
        )
        res.update(prnu_rel=pr.prnu_rel, prnu_stderr=pr.prnu_stderr,
                   prnu_speckle_term=pr.speckle_term, prnu_patterns=pr.n_patterns)
    cal.results["ptc"] = res
    cal.extra_arrays.update(ptc.arrays())
    return cal


def step_anchor(
    source: FrameSource, cal: Calibration, s: StepSettings, progress: Progress | None = None
) -> Calibration:
    """Re-measure I(r) and the usable pixels, then the linearity self-test (camera model from
    the record's ptc step when present, else estimated from repeated frames)."""
    cal = copy.deepcopy(cal)
    _redo_anchor(source, cal, s)
    ptc = cal.ptc
    lin = linearity_selftest(
        source,
        cal,
        gain_dn_per_e=ptc.gain_dn_per_e if ptc else None,
        dark_noise_dn=ptc.dark_noise_dn if ptc else None,
        seed=s.seed,
        progress=progress,
    )
    cal.results["linearity"] = lin.summary()
    cal.extra_arrays.update(lin_sum_ab=lin.sum_ab[:8], lin_z_union=lin.z_union[:8])
    if not lin.passed:
        raise CalibrationError(
            f"linearity self-test failed: residual {lin.ratio:.2f}x the camera noise "
            f"(limit {lin.max_ratio}); check for drift, vibration or stray light and rerun "
            "`opu calibrate anchor`"
        )
    return cal


def step_stability(
    source: FrameSource, cal: Calibration, s: StepSettings, progress: Progress | None = None
) -> Calibration:
    """Decorrelation time on an adaptive schedule (at most s.stability_duration_s)."""
    cal = copy.deepcopy(cal)
    source.set_output_pixels(None)
    st = measure_stability(
        source,
        cal.exposure_us,
        max_duration_s=s.stability_duration_s,
        first_wait_s=s.stability_first_wait_s,
        seed=s.seed,
        progress=progress,
    )
    cal.results["stability"] = st.summary()
    cal.extra_arrays.update(stab_times_s=st.times_s, stab_correlation=st.correlation,
                            stab_sigma=st.correlation_sigma)
    return cal


def run_steps(
    source: FrameSource,
    steps: list[str],
    cal: Calibration | None,
    s: StepSettings,
    progress: Progress | None = None,
    on_step: StepCallback | None = None,
) -> Calibration:
    """Run `steps` in STEPS order on `cal` (None: a fresh exposure/dark/anchor record first).
    on_step(n, total, name) is called as step n of total starts."""
    unknown = [x for x in steps if x not in STEPS]
    if unknown:
        raise InputError(f"unknown calibration step(s) {unknown}; choose from {STEPS}")
    plan = [x for x in STEPS if x in steps]
    if cal is None and "exposure" not in plan:
        plan.insert(0, "exposure")  # nothing to update yet: a fresh record first
    funcs = {"dark": step_dark, "ptc": step_ptc, "anchor": step_anchor,
             "stability": step_stability}
    for i, name in enumerate(plan):
        if on_step is not None:
            on_step(i + 1, len(plan), name)
        cal = step_exposure(source, cal, s) if name == "exposure" else funcs[name](
            source, cal, s, progress)
    source.set_output_pixels(cal.output_pixels)
    cal.created_s = time.time()
    return cal
