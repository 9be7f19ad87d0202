"""`lightonml.encoding.base`: every encoder and decoder under lightonml's names."""

from .bitplanes import (
    ConcatenatedBitPlanEncoder,
    ConcatenatedFloat32Encoder,
    ConcatenatingBitPlanDecoder,
    Float32Encoder,
    SeparatedBitPlanDecoder,
    SeparatedBitPlanEncoder,
)
from .core import BaseTransformer, NoDecoding, NoEncoding, preserve_type
from .thresholds import BinaryThresholdEncoder, MultiThresholdEncoder, SequentialBaseTwoEncoder

__all__ = [
    "BaseTransformer",
    "BinaryThresholdEncoder",
    "ConcatenatedBitPlanEncoder",
    "ConcatenatedFloat32Encoder",
    "ConcatenatingBitPlanDecoder",
    "Float32Encoder",
    "MultiThresholdEncoder",
    "NoDecoding",
    "NoEncoding",
    "SeparatedBitPlanDecoder",
    "SeparatedBitPlanEncoder",
    "SequentialBaseTwoEncoder",
    "preserve_type",
]
