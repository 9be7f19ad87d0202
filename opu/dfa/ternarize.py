"""Ternarisation of the output error before it is sent to the OPU.

The default, ``Ternarizer()``, is unbiased stochastic rounding (rule="stochastic") taken per
sign (split_signs=True, below). Stochastic rounding of an error row e of width V (per sample,
or per token for sequence models)::

    m     = max_j |e_j|
    t_j   = sign(e_j) with probability |e_j| / m, else 0     (independent per entry)
    alpha = m

so E[alpha * t] = e exactly, with Var(alpha t_j) = |e_j| (m - |e_j|): the error's small
entries are kept on average instead of being cut. It is the default because it trains best
across data sets (docs/dfa.md, "Choice of the default"); per sign, m+ = max_j e_j+ is closer
to the small positive entries of a softmax error than the target's |e|, so the variance is
lower.

Threshold rules (biased; kept for comparison and for devices that need a fixed sparsity)::

    thr   = threshold * max_j |e_j|          (rule="max")
          = threshold * std_j(e_j)           (rule="std", population std over the row)
    t_j   = sign(e_j) if |e_j| > thr else 0  (t in {-1, 0, 1})
    alpha = mean_{j: t_j != 0} |e_j|         (0 for an all-zero row)

alpha is the least-squares scale that makes ``alpha * t`` closest to ``e``; the DFA layer
multiplies the projection of ``t`` by alpha to undo the ternarisation scale. They are biased:
a ternarised row no longer sums to zero where a softmax error's does (measured mean +0.5 to
+1.4 on a 10-class MLP), so the feedback component shared by the whole batch is 6-20x too
large, and training stalls well below float-error DFA (down to chance with threshold 0.1).
rule="off" sends the error unchanged (t = e, alpha = 1): exact, float-input DFA.

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

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from opu.dfa.errors import DFAConfigurationError, DFAInputError

Rule = Literal["max", "std", "stochastic", "off"]
RULES: tuple[str, ...] = get_args(Rule)
THRESHOLD_RULES = ("max", "std")
DEFAULT_THRESHOLD = 0.25  # of the row max (rule "max") or std (rule "std") when none is given


@dataclass(frozen=True)
class Ternarizer:
    """Per-row ternarisation of a (rows, V) error matrix; see the module docstring.

    rule: "stochastic" (default: unbiased), "max" or "std" (biased threshold rules), "off"
    (float error). threshold: dimensionless fraction of the row's max |e| (rule="max", in
    [0, 1)) or of its std (rule="std", >= 0); None means 0.25. Only threshold rules take
    one: a threshold with rule "stochastic" or "off" is refused rather than ignored.
    split_signs: per-sign binary rows (module docstring); None means the rule's default:
    True for "stochastic" (it trains better), False for "max", "std" and "off".
    The stochastic rule draws from the ``generator`` passed to the call (the DFA layer passes
    its own, whose state is in its ``state_dict``), else from torch's global generator;
    numbers are drawn on the CPU, so a seed gives the same t on every device.
    """

    threshold: float | None = None
    rule: Rule = "stochastic"
    split_signs: bool | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise DFAConfigurationError(
                f"unknown ternarisation rule {self.rule!r}; use one of {', '.join(RULES)}"
            )
        if self.split_signs is None:
            object.__setattr__(self, "split_signs", self.rule == "stochastic")
        if not isinstance(self.split_signs, bool):
            raise DFAConfigurationError(
                f"split_signs must be True, False or None, got {self.split_signs!r}"
            )
        if self.split_signs and self.rule == "off":
            raise DFAConfigurationError(
                "split_signs needs rule 'stochastic', 'max' or 'std', not 'off'"
            )
        if self.rule not in THRESHOLD_RULES:
            if self.threshold is not None:
                raise DFAConfigurationError(
                    f"rule={self.rule!r} takes no threshold (got threshold={self.threshold!r}); "
                    "thresholds belong to the biased rules 'max' and 'std': pass rule='max' "
                    "to use one, or drop the threshold"
                )
            return
        if self.threshold is None:
            object.__setattr__(self, "threshold", DEFAULT_THRESHOLD)
        t = self.threshold
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not (t >= 0.0)
            or not math.isfinite(t)
            or (self.rule == "max" and t >= 1.0)
        ):
            raise DFAConfigurationError(
                f"ternarisation threshold {t!r} is out of range; use 0 <= t < 1 "
                "for rule='max' and a finite t >= 0 for rule='std'"
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
            raise DFAConfigurationError("split() needs rule 'stochastic', 'max' or 'std'")
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
