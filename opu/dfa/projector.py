"""Exact in-memory Gaussian random projection: the reference feedback source for DFA.

It has the same ``project(x, mode="linear")`` interface as ``opu.OPU`` so that DFA code can
swap one for the other. Its matrix is a torch buffer, hence part of ``state_dict()``.
``GaussianProjector.from_opu(dev)`` takes a simulated OPU's own matrix, so exact and optical
runs can be compared on the same G.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from opu.dfa.errors import DFAConfigurationError, DFAInputError


@runtime_checkable
class Projector(Protocol):
    """Anything DFA can use: ``project(x (rows, n_in), mode="linear") -> (rows, n_out)``."""

    n_in: int
    n_out: int

    def project(self, x: Any, mode: str = "linear") -> Any: ...


class GaussianProjector(nn.Module):
    """y = x @ G.T with G (n_out, n_in) float32, entries i.i.d. N(0, 1), seeded.

    n_in: input width; n_out: output width; seed: the matrix is a function of the seed only
    (generated on the CPU, so identical on every device); device: where the matrix lives and
    the projection runs; noise_std: std of i.i.d. Gaussian noise added to every output
    (absolute units of y; 0 = exact), drawn from a generator seeded with ``seed + 1``.
    """

    output_variance: float = 1.0  # variance of G's entries

    def __init__(
        self,
        n_in: int,
        n_out: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
        noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DFAConfigurationError(f"{name} must be a positive int, got {v!r}")
        if not (noise_std >= 0.0):
            raise DFAConfigurationError(f"noise_std must be >= 0, got {noise_std!r}")
        self.n_in, self.n_out, self.seed, self.noise_std = n_in, n_out, int(seed), noise_std
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        matrix = torch.randn(n_out, n_in, generator=gen, dtype=torch.float32)
        self.register_buffer("matrix", matrix.to(device))
        self._noise_gen: torch.Generator | None = None

    @classmethod
    def from_opu(
        cls, opu: Any, device: str | torch.device = "cpu", noise_std: float = 0.0
    ) -> GaussianProjector:
        """The exact projector with the matrix G that ``opu``'s linear mode recovers.

        opu: a simulated ``opu.OPU`` (device "sim" or "emu"), a ``ReplicatedInput`` around
        one, or anything with ``exact_linear_matrix()`` (n_out, n_in), ``n_in``, ``n_out``.
        The matrix is a snapshot of G at the device's current time (on a drifting medium the
        optical G moves on; on ``noise=False`` devices it does not drift). ``seed`` and
        ``output_variance`` are the source's, so ``DFA`` scales the feedback identically and
        ``exact.project(x)`` equals ``opu.project(x)`` up to the device's noise (to float32
        rounding with noise off). A hardware OPU does not know its matrix:
        ``ConfigurationError``.
        """
        if not callable(getattr(opu, "exact_linear_matrix", None)):
            raise DFAConfigurationError(
                f"{type(opu).__name__} has no exact_linear_matrix(); from_opu needs a simulated "
                "opu.OPU (device='sim' or 'emu') or a ReplicatedInput around one"
            )
        g = np.asarray(opu.exact_linear_matrix(), dtype=np.float32)
        want = (int(opu.n_out), int(opu.n_in))
        if g.shape != want or not np.isfinite(g).all():
            raise DFAConfigurationError(
                f"{type(opu).__name__}.exact_linear_matrix() gave shape {g.shape} (finite: "
                f"{bool(np.isfinite(g).all())}); expected a finite {want} matrix"
            )
        seed = getattr(opu, "seed", None)
        proj = cls(1, 1, seed=int(seed) if isinstance(seed, (int, np.integer)) else 0,
                   device=device, noise_std=noise_std)
        proj.n_in, proj.n_out = want[1], want[0]
        proj.matrix = torch.from_numpy(g.copy()).to(device)
        proj.output_variance = float(getattr(opu, "output_variance", 1.0))
        return proj

    @property
    def device(self) -> torch.device:
        """Device of the matrix (where projections run)."""
        return self.matrix.device

    def exact_linear_matrix(self) -> np.ndarray:
        """The matrix G as numpy (n_out, n_in) float32 (a copy)."""
        return self.matrix.detach().cpu().numpy().copy()

    def project(self, x: Any, mode: str = "linear") -> Any:
        """Project x (n_in,) or (rows, n_in), numpy or torch on any device.

        Returns float32 (n_out,) or (rows, n_out) of the same kind (numpy/torch) and, for
        torch, on x's device. Only mode="linear" exists here.
        """
        if mode != "linear":
            raise DFAConfigurationError(
                f"GaussianProjector only supports mode='linear', got mode={mode!r}"
            )
        is_numpy = isinstance(x, np.ndarray)
        if not is_numpy and not isinstance(x, torch.Tensor):
            raise DFAInputError(f"project() takes a numpy array or torch tensor, got {type(x)}")
        t = torch.from_numpy(np.asarray(x)) if is_numpy else x
        if t.ndim not in (1, 2) or t.shape[-1] != self.n_in:
            raise DFAInputError(
                f"project() expects shape ({self.n_in},) or (rows, {self.n_in}), "
                f"got {tuple(t.shape)}"
            )
        if t.is_complex():
            raise DFAInputError("project() takes real input")
        out_device = t.device
        t = t.to(device=self.matrix.device, dtype=torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise DFAInputError("project() input contains NaN or inf")
        y = t @ self.matrix.T
        if self.noise_std > 0:
            y = y + self.noise_std * self._noise(y.shape).to(y.device)
        if is_numpy:
            return y.cpu().numpy()
        return y.to(out_device)

    def _noise(self, shape: torch.Size) -> torch.Tensor:
        if self._noise_gen is None:
            self._noise_gen = torch.Generator(device="cpu").manual_seed(self.seed + 1)
        return torch.randn(shape, generator=self._noise_gen, dtype=torch.float32)

    def get_extra_state(self) -> dict:
        """Seed, noise level and entry variance (the matrix itself is the ``matrix`` buffer)."""
        return {"seed": self.seed, "noise_std": self.noise_std,
                "output_variance": self.output_variance}

    def set_extra_state(self, state: dict) -> None:
        """Restore seed, noise level and entry variance; the noise generator restarts from
        the seed."""
        self.seed, self.noise_std = int(state["seed"]), float(state["noise_std"])
        self.output_variance = float(state.get("output_variance", 1.0))
        self._noise_gen = None

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, n_out={self.n_out}, seed={self.seed}, "
                f"noise_std={self.noise_std}, output_variance={self.output_variance}")


class ReplicatedInput:
    """Show each input element on ``k`` device inputs: y = (G_1 + ... + G_k) x.

    Wraps a projector of width k * n_in (e.g. an OPU too narrow to calibrate, or too dim for
    a good signal-to-noise ratio, at n_in). x (rows, n_in) is sent as [x, x, ..., x]
    (rows, k * n_in); the summed matrix is again i.i.d. Gaussian with k times the entry
    variance, so ``output_variance`` = k * the inner projector's. ``seed`` is the inner one.
    """

    def __init__(self, projector: Any, k: int) -> None:
        if not isinstance(k, int) or k < 1 or projector.n_in % k:
            raise DFAConfigurationError(
                f"replication k={k!r} must be a positive int dividing the projector's "
                f"n_in={projector.n_in}"
            )
        self.inner, self.k = projector, k
        self.n_in, self.n_out = projector.n_in // k, projector.n_out
        self.seed = getattr(projector, "seed", None)
        self.output_variance = k * float(getattr(projector, "output_variance", 1.0))

    def project(self, x: Any, mode: str = "linear") -> Any:
        """Project x (rows, n_in) [numpy or torch] through the inner projector."""
        if isinstance(x, np.ndarray):
            return self.inner.project(np.tile(x, self.k), mode=mode)
        return self.inner.project(x.repeat(*([1] * (x.ndim - 1)), self.k), mode=mode)

    def exact_linear_matrix(self) -> np.ndarray:
        """The effective (n_out, n_in) matrix: the sum of the inner matrix's k column blocks."""
        g = np.asarray(self.inner.exact_linear_matrix())
        return g.reshape(self.n_out, self.k, self.n_in).sum(axis=1).astype(np.float32)
