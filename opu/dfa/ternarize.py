"""Ternarisation of the output error before it is sent to the OPU.

Rule (per error row e of width V, i.e. per sample, or per token for sequence models)::

    thr   = threshold * max_j |e_j|          (rule="max")
          = threshold * std_j(e_j)           (rule="std", population std over the row)
    t_j   = sign(e_j) if |e_j| > thr else 0  (t in {-1, 0, 1})
    alpha = mean_{j: t_j != 0} |e_j|         (0 for an all-zero row)

alpha is the least-squares scale that makes ``alpha * t`` closest to ``e``; the DFA layer
multiplies the projection of ``t`` by alpha to undo the ternarisation scale. rule="off"
sends the error unchanged (t = e, alpha = 1): exact, float-input DFA.

rule="stochastic" (unbiased stochastic rounding; threshold unused)::

    m     = max_j |e_j|
    t_j   = sign(e_j) with probability |e_j| / m, else 0     (independent per entry)
    alpha = m

so E[alpha * t] = e exactly, with Var(alpha t_j) = |e_j| (m - |e_j|): the error's small
entries are kept on average instead of being cut. Threshold rules are biased: for a softmax
error they flatten the predicted distribution into one level, and on the character
Transformer this stalls training near the unigram loss (docs/dfa.md).

split_signs=True treats the positive and negative parts separately (``Ternarizer.split``):
thresholds and scales are taken per sign (thr+ = threshold * max_j e_j+ for rule="max",
threshold * std for rule="std"; m+ = max_j e_j+ for rule="stochastic"),
e ~ a+ * b+ - a- * b- with binary b+, b-; the DFA layer
projects [b+; b-] in ONE call (binary rows: 2 frames each in linear mode, so the same 4
frames per error row as a ternary row) and combines a+ * G b+ - a- * G b-. This keeps the
information of errors dominated by one entry of one sign (softmax outputs: e = p - onehot,
where a single threshold keeps only the target entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from opu.dfa.errors import DFAConfigurationError, DFAInputError

Rule = Literal["max", "std", "stochastic", "off"]
RULES: tuple[str, ...] = get_args(Rule)


@dataclass(frozen=True)
class Ternarizer:
    """Per-row ternarisation of a (rows, V) error matrix; see the module docstring.

    threshold: dimensionless fraction (of the row's max |e| for rule="max", of its std for
    rule="std"); must be in [0, 1) for "max" and >= 0 for "std". Ignored for rules "off" and
    "stochastic". The stochastic rule draws from the ``generator`` passed to the call (the
    DFA layer passes its own, whose state is in its ``state_dict``), else from torch's global
    generator; numbers are drawn on the CPU, so a seed gives the same t on every device.
    """

    threshold: float = 0.25
    rule: Rule = "max"
    split_signs: bool = False

    def __post_init__(self) -> None:
        if self.split_signs and self.rule == "off":
            raise DFAConfigurationError("split_signs needs rule 'max' or 'std', not 'off'")
        if self.rule not in RULES:
            raise DFAConfigurationError(
                f"unknown ternarisation rule {self.rule!r}; use one of {', '.join(RULES)}"
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

    def __call__(
        self, e: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ternarise e (rows, V) -> (t (rows, V) same dtype, alpha (rows, 1)) with e ~ alpha*t.
        generator: CPU torch.Generator for rule="stochastic" (else torch's global one)."""
        self._check(e)
        if self.rule == "off":
            return e, torch.ones(e.shape[0], 1, dtype=e.dtype, device=e.device)
        return self._keep(e, e.abs(), generator)

    def split(
        self, e: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sign binarisation of e (rows, V): (b+, b-, a+, a-), b in {0, 1} (rows, V),
        a (rows, 1) >= 0, with e ~ a+ * b+ - a- * b-."""
        self._check(e)
        if self.rule == "off":
            raise DFAConfigurationError("split() needs rule 'max', 'std' or 'stochastic'")
        bp, ap = self._keep(e, e.clamp(min=0), generator)
        bn, an = self._keep(e, (-e).clamp(min=0), generator)
        return bp.abs(), bn.abs(), ap, an

    def _check(self, e: torch.Tensor) -> None:
        if e.ndim != 2:
            raise DFAInputError(
                f"ternarisation takes a (rows, V) error matrix, got shape {tuple(e.shape)}"
            )
        if not bool(torch.isfinite(e).all()):
            raise DFAInputError(
                "the output error dL/dy contains NaN or inf; lower the learning rate or "
                "check the loss before training with DFA"
            )

    def _keep(
        self, e: torch.Tensor, mag: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """t = sign(e) where mag passes the rule; alpha per row (mean kept mag, or the max)."""
        if self.rule == "stochastic":
            m = mag.amax(dim=1, keepdim=True)
            u = torch.rand(mag.shape, generator=generator, dtype=mag.dtype)
            keep = (u.to(mag.device) * m < mag) & (mag > 0)
            return torch.sign(e) * keep, m
        if self.rule == "max":
            thr = self.threshold * mag.amax(dim=1, keepdim=True)
        else:
            thr = self.threshold * e.std(dim=1, unbiased=False, keepdim=True)
        keep = (mag > thr) & (mag > 0)
        t = torch.sign(e) * keep
        n_kept = keep.sum(dim=1, keepdim=True)
        alpha = (mag * keep).sum(dim=1, keepdim=True) / n_kept.clamp(min=1)
        return t, alpha
