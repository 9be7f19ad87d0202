"""`lightonml.internal.types`: the enums, re-exported from `opu.lightonml.types`."""

from ..types import FeaturesFormat, InputRoiStrategy, OutputRescaling, OutputRoiStrategy

__all__ = ["FeaturesFormat", "InputRoiStrategy", "OutputRescaling", "OutputRoiStrategy"]
