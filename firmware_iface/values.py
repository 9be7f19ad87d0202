"""Strict checks of user-supplied numbers, shared by the config reader and the feature layer.

A bool is not a number here (True would silently become 1), and a float must be finite. The
caller names the error class, so each layer keeps its own place in the error hierarchy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import OPUError


def strict_int(value: Any, what: str, error: type[OPUError]) -> int:
    """`value` as an int; `error("<what> must be an integer, got ...")` for anything else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{what} must be an integer, got {value!r}")
    return int(value)


def strict_float(value: Any, what: str, error: type[OPUError]) -> float:
    """`value` as a finite float; `error(...)` for a non-number, a bool, NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise error(f"{what} must be finite, got {value!r}")
    return v
