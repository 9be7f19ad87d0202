"""Typed views of the step results a calibration record holds.

The file keeps each step's summary as JSON (`Calibration.results[step]`) and its curves as
named arrays, so records written by any version still load. Code reads them through these
types, each parsed in one place and tolerant of older records (a quantity a record predates
is None), instead of `results.get("ptc", {}).get(...)` string lookups; the arrays belonging to
each step are listed here too, instead of being recognised by a name prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

# curves each step stores as record arrays (kept together when another step replaces the rest)
STEP_ARRAYS: dict[str, tuple[str, ...]] = {
    "ptc": ("ptc_exposures_us", "ptc_mean_dn", "ptc_var_dn2", "ptc_count",
            "ptc_lin_exposure_us", "ptc_lin_mean_dn"),
    "stability": ("stab_times_s", "stab_correlation", "stab_sigma"),
    "defects": ("defect_hot", "defect_dead", "dark_long_dn"),
    "linearity": ("lin_sum_ab", "lin_z_union"),
}


def _num(d: dict, key: str) -> float | None:
    """d[key] as a float, None when missing or not a number (old or damaged records)."""
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        return float(v)  # JSON keeps inf/nan as strings ("inf")
    except ValueError:
        return None


@dataclass(frozen=True)
class _Summary:
    @classmethod
    def from_results(cls, results: dict, step: str) -> Any:
        """The step's typed summary, None when the record has no such step."""
        d = results.get(step)
        if not isinstance(d, dict):
            return None
        return cls(**{f.name: _num(d, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class PtcSummary(_Summary):
    """Photon transfer: the camera model later steps use (DN, e-)."""

    gain_dn_per_e: float | None
    dark_noise_dn: float | None
    read_noise_e: float | None
    saturation_dn: float | None
    saturation_capacity_e: float | None


@dataclass(frozen=True)
class StabilitySummary(_Summary):
    """Decorrelation time tau and its 95 % interval (s); tau_low_s is None in records made
    before the interval existed."""

    decorrelation_time_s: float | None
    tau_low_s: float | None
    tau_high_s: float | None
    max_age_s: float | None

    @property
    def tau_for_validity_s(self) -> float | None:
        """The lower bound of tau when known, else the estimate (None: neither usable)."""
        for v in (self.tau_low_s, self.decorrelation_time_s):
            if v is not None and not math.isnan(v):
                return v
        return None


@dataclass(frozen=True)
class AnchorSummary(_Summary):
    """Anchor calibration: frames averaged into I(r)."""

    repeats: float | None


def ptc_of(results: dict) -> PtcSummary | None:
    """The record's photon transfer summary (None without a ptc step)."""
    return PtcSummary.from_results(results, "ptc")


def stability_of(results: dict) -> StabilitySummary | None:
    """The record's stability summary (None without a stability step)."""
    return StabilitySummary.from_results(results, "stability")


def anchor_of(results: dict) -> AnchorSummary | None:
    """The record's anchor summary (None without one)."""
    return AnchorSummary.from_results(results, "anchor")
