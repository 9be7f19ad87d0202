"""Ternarisation of the output error before it is sent to the OPU.

Rule (per error row e of width V, i.e. per sample, or per token for sequence models)::

    thr   = threshold * max_j |e_j|          (rule="max")
          = threshold * std_j(e_j)           (rule="std", population std over the row)
    t_j   = sign(e_j) if |e_j| > thr else 0  (t in {-1, 0, 1})
    alpha = mean_{j: t_j != 0} |e_j|         (0 for an all-zero row)

alpha is the least-squares scale that makes ``alpha * t`` closest to ``e``; the DFA layer
multiplies the projection of ``t`` by alpha to undo the ternarisation scale. rule="off"
sends the error unchanged (t = e, alpha = 1): exact, float-input DFA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from opu.dfa.errors import DFAConfigurationError, DFAInputError

Rule = Literal["max", "std", "off"]


@dataclass(frozen=True)
class Ternarizer:
    """Per-row ternarisation of a (rows, V) error matrix; see the module docstring.

    threshold: dimensionless fraction (of the row's max |e| for rule="max", of its std for
    rule="std"); must be in [0, 1) for "max" and >= 0 for "std". Ignored for rule="off".
    """

    threshold: float = 0.25
    rule: Rule = "max"

    def __post_init__(self) -> None:
        if self.rule not in ("max", "std", "off"):
            raise DFAConfigurationError(
                f"unknown ternarisation rule {self.rule!r}; use 'max', 'std' or 'off'"
            )
        if not (self.threshold >= 0.0) or (self.rule == "max" and self.threshold >= 1.0):
            raise DFAConfigurationError(
                f"ternarisation threshold {self.threshold!r} is out of range; use 0 <= t < 1 "
                "for rule='max' and t >= 0 for rule='std'"
            )

    @property
    def is_ternary(self) -> bool:
        """True when the output is in {-1, 0, 1} (rule is not 'off')."""
        return self.rule != "off"

    def __call__(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ternarise e (rows, V) -> (t (rows, V) same dtype, alpha (rows, 1)) with e ~ alpha*t."""
        if e.ndim != 2:
            raise DFAInputError(
                f"ternarisation takes a (rows, V) error matrix, got shape {tuple(e.shape)}"
            )
        if not bool(torch.isfinite(e).all()):
            raise DFAInputError(
                "the output error dL/dy contains NaN or inf; lower the learning rate or "
                "check the loss before training with DFA"
            )
        if self.rule == "off":
            return e, torch.ones(e.shape[0], 1, dtype=e.dtype, device=e.device)
        mag = e.abs()
        if self.rule == "max":
            thr = self.threshold * mag.amax(dim=1, keepdim=True)
        else:
            thr = self.threshold * e.std(dim=1, unbiased=False, keepdim=True)
        keep = mag > thr
        t = torch.sign(e) * keep
        n_kept = keep.sum(dim=1, keepdim=True)
        alpha = (mag * keep).sum(dim=1, keepdim=True) / n_kept.clamp(min=1)
        return t, alpha
