"""Input conversion for project(): numpy or torch in, numpy for the work, the same kind out.

torch is never imported here unless the caller passed a torch tensor (so `opu` imports without
torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from firmware_iface.errors import InputError

_ALLOWED_KINDS = "biuf"


def is_torch(x: Any) -> bool:
    """True for a torch.Tensor (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view/copy of x (numpy array, torch tensor on any device, or nested sequence)."""
    if isinstance(x, np.ndarray):
        return x
    if is_torch(x):
        x = x.detach()
        if x.dtype.is_complex:
            raise InputError(f"complex input is not supported, got torch {x.dtype}")
        if x.dtype.itemsize == 2 and x.dtype.is_floating_point:  # float16, bfloat16
            x = x.float()
        return (x if x.device.type == "cpu" else x.cpu()).numpy()
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x)
        except ValueError as exc:
            raise InputError(f"input is a ragged sequence: {exc}") from None
    raise InputError(f"input must be a numpy array or torch tensor, got {type(x).__name__}")


def check_batch(x: np.ndarray, n_in: int) -> tuple[np.ndarray, bool]:
    """Validate x's dtype and shape, (n_in,) or (B, n_in); returns (2-D array, was_1d). Its
    values (NaN, infinity) are checked by opu.encoding.classify."""
    if x.dtype.kind not in _ALLOWED_KINDS:
        raise InputError(f"unsupported dtype {x.dtype}: use bool, integer or floating point values")
    if x.ndim not in (1, 2):
        raise InputError(f"input must have shape ({n_in},) or (B, {n_in}); got ndim {x.ndim}")
    was_1d = x.ndim == 1
    x2 = x[None] if was_1d else x
    if x2.shape[1] != n_in:
        raise InputError(f"input width {x2.shape[1]} does not match the device's n_in={n_in}")
    if x2.shape[0] == 0:
        raise InputError("empty batch: give at least one input row")
    return x2, was_1d


def like_input(y: np.ndarray, x: Any, was_1d: bool) -> Any:
    """Return float32 y shaped like the input and of its kind (numpy, or torch on x's device)."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if was_1d:
        y = y[0]
    if is_torch(x):
        import torch

        t = torch.from_numpy(y)
        return t if x.device.type == "cpu" else t.to(x.device)
    return y
