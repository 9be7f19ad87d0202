"""lightonml's enums (`lightonml.types` and `lightonml.internal.types`), same names and values."""

from __future__ import annotations

from enum import Enum


class OutputRescaling(Enum):
    """How `OPU.linear_transform` scales its output y = R x (R_ij i.i.d. N(0, 1) on this stack).

    variance: y / sqrt(n_features): unit-variance outputs for a standard Gaussian input.
    norm: y / sqrt(n_components): E||y||^2 = ||x||^2 (norm conservation, RIP).
    none: R x itself.
    """

    variance = 1
    norm = 2
    none = 3


class InputRoiStrategy(Enum):
    """How features are displayed on the input device (see docs/lightonml.md)."""

    full = 1
    """zoom the features' elements to fill the whole DMD (this stack: one element per feature,
    macro-pixels as large as the DMD allows)"""
    small = 2
    """one-to-one mapping: the features use the first n_features of max_n_features elements"""
    auto = 3
    """lightonml chose between the two from the ones' count; here it is `full`, whose larger
    macro-pixels give the better signal on every device"""


class FeaturesFormat(Enum):
    """How features were mapped to the input device (reported in the context)."""

    lined = 1
    macro_2d = 2
    auto = 3
    none = 4


class OutputRoiStrategy(Enum):
    """lightonml's output-ROI strategies; this stack always reads a centred camera ROI."""

    mid_width = 1
    mid_square = 2
