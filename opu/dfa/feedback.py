"""The DFA autograd machinery: a wrapper that trains marked layers by direct feedback alignment.

How it works (one training step)::

    forward:  every marked module's output h_l (rows..., width_l) is recorded and passed on
              *detached*, so no gradient flows back through the layers above it; the wrapped
              model's output y (rows..., V) goes through one autograd node that also takes
              every recorded h_l as input.
    backward: that node receives e = dL/dy. It hands e unchanged to y's graph (the layers
              after the last mark train with their true gradient) and gives each h_l the
              DFA signal in place of the backpropagated gradient:

        E      = e.reshape(-1, V)                      one row per sample (or per token)
        t, a   = ternarizer(E)                         t in {-1,0,1}, E ~ a * t (a per row)
        P      = a * projector.project(t, mode="linear")   ONE call per batch (rows, sum w_l)
                 (split_signs: E ~ a+ b+ - a- b-, project [b+; b-] in one call, combine)
        S      = gain * P / sqrt(projector.output_variance)
        s_l    = S[:, off_l : off_l + w_l].reshape(h_l.shape)     slices in marking order

      so dL/dh_l := s_l, and autograd carries it through the marked block's own
      nonlinearity to its parameters (the f'(a_l) factor of Nøkland's DFA).

gain defaults to 1/sqrt(V): the effective feedback matrix then has entries N(0, 1/V).
output_variance is the variance of the projector's matrix entries (1 for opu.OPU and
GaussianProjector; read from ``projector.output_variance`` when present).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from opu.dfa.errors import DFAConfigurationError, DFAInputError, ProjectorError
from opu.dfa.ternarize import THRESHOLD_RULES, Ternarizer


class DFA(nn.Module):
    """Wrap ``model`` so that the ``marked`` modules receive DFA feedback from ``projector``.

    model: any nn.Module whose forward returns one tensor y of shape (B, V) or (B, T, V)
    (per-token feedback: one projection row per token position).
    marked: the modules (objects or dotted names in ``model``) whose outputs receive
    feedback, in the order their slices are taken from the projection; each must return one
    tensor whose leading dims equal y's leading dims and be called once per forward. Mark
    post-activation outputs (a block, or the activation module) so that the signal passes
    through the nonlinearity's derivative.
    projector: anything with ``project(x, mode="linear")``, ``n_in`` == V and
    ``n_out`` == sum of the marked widths (opu.OPU, a hardware OPU, GaussianProjector).
    ternarizer: error ternarisation rule; default Ternarizer(), unbiased stochastic rounding
    (the rule that trains best, docs/dfa.md); Ternarizer(rule="off") sends floats.
    gain: dimensionless feedback scale; None means 1/sqrt(V).
    rounding_seed: seed of the CPU generator the stochastic ternarisation rule draws from
    (its state is part of ``state_dict()``, so a round trip continues the same draws).

    State: an nn.Module projector (GaussianProjector) is a submodule, so its matrix is in
    ``state_dict()``; otherwise the projector's seed is stored and checked on load.
    """

    def __init__(
        self,
        model: nn.Module,
        marked: Sequence[str | nn.Module],
        projector: Any,
        *,
        ternarizer: Ternarizer | None = None,
        gain: float | None = None,
        rounding_seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise DFAConfigurationError(f"model must be a torch nn.Module, got {type(model)}")
        if isinstance(marked, (str, nn.Module)) or len(marked) == 0:
            raise DFAConfigurationError(
                "DFA needs a non-empty list of marked layers (modules or dotted names in the "
                "model) that receive the feedback; got none"
            )
        if not callable(getattr(projector, "project", None)):
            raise DFAConfigurationError(
                f"projector {type(projector).__name__} has no project(x, mode) method; pass "
                "an opu.OPU or an opu.dfa.GaussianProjector"
            )
        for attr in ("n_in", "n_out"):
            if not isinstance(getattr(projector, attr, None), int):
                raise DFAConfigurationError(
                    f"projector {type(projector).__name__} has no integer {attr} attribute"
                )
        if gain is not None and not (math.isfinite(gain) and gain > 0):
            raise DFAConfigurationError(f"gain must be a positive finite number, got {gain!r}")
        self.model = model
        self.projector = projector
        self.ternarizer = ternarizer if ternarizer is not None else Ternarizer()
        self.gain = gain
        if not isinstance(rounding_seed, int) or isinstance(rounding_seed, bool):
            raise DFAConfigurationError(f"rounding_seed must be an int, got {rounding_seed!r}")
        self.rounding = torch.Generator().manual_seed(rounding_seed)
        self.marked_names = self._resolve(marked)
        self._captured: list[tuple[int, torch.Tensor]] | None = None
        self._detach = True
        self._mode = "dfa"
        self.last_signals: list[torch.Tensor] | None = None
        modules = dict(model.named_modules())
        self._hooks = [
            modules[name].register_forward_hook(self._make_hook(i))
            for i, name in enumerate(self.marked_names)
        ]

    # ---- set-up -------------------------------------------------------------------------
    def _resolve(self, marked: Sequence[str | nn.Module]) -> list[str]:
        names_by_id = {id(m): n for n, m in self.model.named_modules()}
        names = []
        for m in marked:
            if isinstance(m, str):
                try:
                    self.model.get_submodule(m)
                except AttributeError as exc:
                    raise DFAConfigurationError(
                        f"marked layer {m!r} is not a submodule of the model; use a name "
                        "listed by model.named_modules()"
                    ) from exc
                names.append(m)
            elif isinstance(m, nn.Module) and id(m) in names_by_id:
                names.append(names_by_id[id(m)])
            else:
                raise DFAConfigurationError(
                    f"marked layer {m!r} is not a module of the wrapped model"
                )
        if len(set(names)) != len(names):
            raise DFAConfigurationError(f"a layer is marked twice: {names}")
        if "" in names:
            raise DFAConfigurationError("the whole model cannot be a marked layer")
        return names

    def _make_hook(self, index: int):
        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            if self._captured is None:
                return None
            if not isinstance(output, torch.Tensor):
                raise DFAConfigurationError(
                    f"marked layer {self.marked_names[index]!r} returned "
                    f"{type(output).__name__}; a marked layer must return one tensor"
                )
            self._captured.append((index, output))
            return output.detach() if self._detach else None

        return hook

    @property
    def feedback_gain(self) -> float:
        """The gain in use (dimensionless): ``gain`` or 1/sqrt(projector.n_in)."""
        return self.gain if self.gain is not None else 1.0 / math.sqrt(self.projector.n_in)

    @contextmanager
    def backprop(self) -> Iterator[DFA]:
        """Within this context the wrapper is transparent: plain backpropagation."""
        old, self._mode = self._mode, "bp"
        try:
            yield self
        finally:
            self._mode = old

    # ---- forward ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Run the model; y as the model returns it, wired for DFA feedback when grad is on."""
        if self._mode == "bp" or not torch.is_grad_enabled():
            return self.model(*args, **kwargs)
        y, hidden = self.forward_capture(args, kwargs, detach=True)
        return _DFAFeedback.apply(self, y, *hidden)

    def forward_capture(
        self, args: tuple, kwargs: dict, detach: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward pass recording the marked outputs -> (y, [marked output per layer]).

        detach=True cuts the graph after each marked output (the DFA forward: the error
        reaches the layers only through the projected feedback); False keeps the full graph
        (backprop, as measure_alignment compares). DFAInputError / DFAConfigurationError if
        the model's output or its marked layers do not fit the projector."""
        self._captured, self._detach = [], detach
        try:
            y = self.model(*args, **kwargs)
            captured = self._captured
        finally:
            self._captured, self._detach = None, True
        if not isinstance(y, torch.Tensor) or y.ndim < 2:
            raise DFAInputError(
                "the wrapped model must return one tensor of shape (B, V) or (B, T, V); got "
                + (f"shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__)
            )
        order = [i for i, _ in captured]
        if sorted(order) != list(range(len(self.marked_names))):
            seen = [self.marked_names[i] for i in order]
            raise DFAConfigurationError(
                f"each marked layer must run exactly once per forward; marked "
                f"{self.marked_names}, ran {seen}"
            )
        hidden = [h for _, h in sorted(captured, key=lambda c: c[0])]
        self._check_shapes(y, hidden)
        return y, hidden

    def widths(self, y: torch.Tensor, hidden: Sequence[torch.Tensor]) -> list[int]:
        """Feedback width of each marked output: numel per row of y (rows = y.numel()/V)."""
        lead = tuple(y.shape[:-1])
        out = []
        for name, h in zip(self.marked_names, hidden, strict=True):
            if tuple(h.shape[: len(lead)]) != lead or h.ndim == len(lead):
                raise DFAInputError(
                    f"marked layer {name!r} output has shape {tuple(h.shape)}; its leading "
                    f"dims must equal the model output's leading dims {lead} plus at least "
                    "one feature dim (one feedback row per sample / token)"
                )
            out.append(math.prod(h.shape[len(lead) :]))
        return out

    def _check_shapes(self, y: torch.Tensor, hidden: Sequence[torch.Tensor]) -> None:
        widths = self.widths(y, hidden)
        n_in, n_out = self.projector.n_in, self.projector.n_out
        if n_in != y.shape[-1] or n_out != sum(widths):
            raise DFAConfigurationError(
                f"projector has n_in={n_in}, n_out={n_out} but the model's output width is "
                f"{y.shape[-1]} and the marked layers {self.marked_names} have widths "
                f"{widths} (sum {sum(widths)}); open the projector with "
                f"n_in={y.shape[-1]}, n_out={sum(widths)}"
            )

    # ---- backward -----------------------------------------------------------------------
    def feedback(self, grad_y: torch.Tensor, shapes: Sequence[torch.Size]) -> list[torch.Tensor]:
        """DFA signals for the marked outputs from e = dL/dy (..., V); see the module doc.

        shapes: the marked outputs' shapes. Returns one float tensor per shape, on
        grad_y's device, and calls the projector exactly once.
        """
        v = grad_y.shape[-1]
        e = grad_y.detach().reshape(-1, v).float()
        # A data-parallel projector (opu.sharded.DataParallelProjector) gathers every rank's
        # errors first: the global batch is ternarised once, with the same rounding draws on
        # every rank, exactly as one process would on the concatenated batch.
        gather = getattr(self.projector, "gather_errors", None)
        mine = slice(None)
        if gather is not None:
            e, mine = gather(e)
        if self.ternarizer.split_signs:
            bp, bn, ap, an = self.ternarizer.split(e, self.rounding)
            p = self._project(torch.cat([bp, bn]).contiguous(), gather is not None)
            p = ap * p[: e.shape[0]] - an * p[e.shape[0] :]
        else:
            t, alpha = self.ternarizer(e, self.rounding)
            p = alpha * self._project(t.contiguous(), gather is not None)
        p = p[mine]
        var = float(getattr(self.projector, "output_variance", 1.0))
        s = p * (self.feedback_gain / math.sqrt(var))
        widths = [math.prod(sh[len(grad_y.shape) - 1 :]) for sh in shapes]
        return [
            part.reshape(sh) for part, sh in zip(torch.split(s, widths, dim=1), shapes, strict=True)
        ]

    def _project(self, t: torch.Tensor, gathered: bool = False) -> torch.Tensor:
        project = self.projector.project_all if gathered else self.projector.project
        out = project(t, mode="linear")
        if isinstance(out, np.ndarray):
            out = torch.from_numpy(np.ascontiguousarray(out))
        if not isinstance(out, torch.Tensor):
            raise ProjectorError(
                f"projector.project returned {type(out).__name__}; expected a tensor or array"
            )
        want = (t.shape[0], self.projector.n_out)
        if tuple(out.shape) != want:
            raise ProjectorError(
                f"projector.project returned shape {tuple(out.shape)} for {t.shape[0]} rows; "
                f"expected {want}"
            )
        out = out.to(device=t.device, dtype=torch.float32)
        if not bool(torch.isfinite(out).all()):
            raise ProjectorError("projector.project returned NaN or inf; recalibrate the device")
        return out

    # ---- state --------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        """DFA settings, the rounding generator's state and, for non-module projectors, the
        feedback seed."""
        return {
            "format": 3,
            "rounding_state": self.rounding.get_state(),
            "marked": list(self.marked_names),
            "n_in": self.projector.n_in,
            "n_out": self.projector.n_out,
            "seed": getattr(self.projector, "seed", None),
            "ternarizer": (self.ternarizer.threshold, self.ternarizer.rule,
                           self.ternarizer.split_signs),
            "gain": self.gain,
        }

    def set_extra_state(self, state: dict) -> None:
        """Restore settings; refuse a state trained with another feedback source."""
        if state.get("marked") != self.marked_names:
            raise DFAConfigurationError(
                f"state was saved with marked layers {state.get('marked')}, this DFA marks "
                f"{self.marked_names}; mark the same layers"
            )
        if (state["n_in"], state["n_out"]) != (self.projector.n_in, self.projector.n_out):
            raise DFAConfigurationError(
                f"state was saved with a ({state['n_in']} -> {state['n_out']}) projector, this "
                f"one is ({self.projector.n_in} -> {self.projector.n_out})"
            )
        seed = getattr(self.projector, "seed", None)
        if not isinstance(self.projector, nn.Module) and state["seed"] != seed:
            raise DFAConfigurationError(
                f"state was trained with feedback seed {state['seed']}, but the projector has "
                f"seed {seed}; open the OPU with seed={state['seed']} to continue training"
            )
        threshold, rule, split = state["ternarizer"]
        if rule not in THRESHOLD_RULES:  # states before format 3 stored 0.25 for every rule
            threshold = None
        self.ternarizer = Ternarizer(threshold=threshold, rule=rule, split_signs=split)
        self.gain = state["gain"]
        if "rounding_state" in state:  # format 1 states predate stochastic rounding
            self.rounding.set_state(state["rounding_state"])


class _DFAFeedback(torch.autograd.Function):
    """Identity on y whose backward also emits the DFA signals for the marked outputs."""

    @staticmethod
    def forward(ctx: Any, dfa: DFA, y: torch.Tensor, *hidden: torch.Tensor) -> torch.Tensor:
        ctx.dfa = dfa
        ctx.shapes = [h.shape for h in hidden]
        ctx.dtypes = [h.dtype for h in hidden]
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple:
        signals = ctx.dfa.feedback(grad_y, ctx.shapes)
        signals = [s.to(dt) for s, dt in zip(signals, ctx.dtypes, strict=True)]
        ctx.dfa.last_signals = [s.detach() for s in signals]
        return (None, grad_y, *signals)
