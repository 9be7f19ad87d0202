"""Alignment between DFA updates and the true backpropagation gradients, in degrees."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from opu.dfa.feedback import DFA


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle between two tensors seen as flat vectors, in degrees (nan if either is zero)."""
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return math.nan
    c = float((a @ b) / (na * nb))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


@dataclass(frozen=True)
class LayerAlignment:
    """Alignment of one marked layer.

    weight_angle_deg: angle between the DFA update and the backprop gradient of the
    parameters that this layer's feedback trains (its block, from the previous mark up).
    signal_angle_deg: angle between the DFA signal s_l and the true dL/dh_l at its output.
    n_params: number of scalar parameters in that block.
    """

    name: str
    weight_angle_deg: float
    signal_angle_deg: float
    n_params: int


def measure_alignment(
    dfa: DFA,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    *args: Any,
    seed: int = 0,
    **kwargs: Any,
) -> list[LayerAlignment]:
    """Per marked layer, how far the DFA update is from the backprop gradient (degrees).

    loss_fn maps the model output y to a scalar loss; args/kwargs are the model inputs.
    Both passes run with the same torch RNG state (``seed``), so dropout masks agree. The
    projector is called once (with its noise). Parameters' ``.grad`` are not touched, nor is
    the state of the DFA's rounding generator.
    """
    params = [p for p in dfa.model.parameters() if p.requires_grad]
    rounding = dfa.rounding.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        y, hidden = dfa.forward_capture(args, kwargs, detach=True)
    e = torch.autograd.grad(loss_fn(y), y, retain_graph=True)[0]
    try:
        signals = dfa.feedback(e, [h.shape for h in hidden])
    finally:
        dfa.rounding.set_state(rounding)
    dfa_grads = []
    for h, s in zip(hidden, signals, strict=True):
        g = torch.autograd.grad(h, params, s.to(h.dtype), retain_graph=True, allow_unused=True)
        dfa_grads.append(g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        y_bp, hidden_bp = dfa.forward_capture(args, kwargs, detach=False)
    bp = torch.autograd.grad(loss_fn(y_bp), params + hidden_bp, allow_unused=True)
    bp_params, bp_hidden = bp[: len(params)], bp[len(params) :]
    out = []
    for name, g_dfa, s, dh in zip(dfa.marked_names, dfa_grads, signals, bp_hidden, strict=True):
        own = [i for i, g in enumerate(g_dfa) if g is not None]
        v_dfa = torch.cat([g_dfa[i].flatten() for i in own]) if own else torch.zeros(0)
        v_bp = (
            torch.cat(
                [
                    (
                        bp_params[i] if bp_params[i] is not None else torch.zeros_like(params[i])
                    ).flatten()
                    for i in own
                ]
            )
            if own
            else torch.zeros(0)
        )
        sig = angle_deg(s, dh) if dh is not None else math.nan
        out.append(
            LayerAlignment(
                name=name,
                weight_angle_deg=angle_deg(v_dfa, v_bp),
                signal_angle_deg=sig,
                n_params=sum(params[i].numel() for i in own),
            )
        )
    return out
