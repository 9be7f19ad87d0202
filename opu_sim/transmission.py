"""The scattering medium: a seeded complex Gaussian transmission matrix T that need not be stored.

T[p, j] links DMD element j to camera pixel p (global sensor id). Coefficients are addressed by
(seed, drift epoch, p, j) through a counter-based generator, so any tile, ROI or batch gets the
same numbers. Tiles are generated on demand; a dense copy is kept only while it fits the memory
budget (an optimisation, not the model).

Drift: the medium decorrelates as an Ornstein-Uhlenbeck process on a fixed time grid of step
`drift_step_s`: T_k = rho T_{k-1} + sqrt(1 - rho^2) W_k, rho = exp(-drift_step_s / tau), so the
correlation of T at two times decays as exp(-|dt| / tau). History older than `_DRIFT_MEMORY`
(correlation < 1e-4) is dropped. Drift needs the dense copy (it is state).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import ConfigurationError

from .gaussian_tiles import fill_stacked_tile, ou_step_stacked_tile

_DRIFT_MEMORY = 1e-4


@dataclass
class _DenseEntry:
    pixel_ids: np.ndarray
    col0: int
    col1: int
    epoch: int
    stacked: np.ndarray  # (2n, nc) float32


class TransmissionMatrix:
    """Seeded complex Gaussian T (E|T_pj|^2 = 1), generated on demand, cached within a budget.

    seed: medium seed. drift_time_s: decorrelation time constant tau in seconds (None: static).
    drift_step_s: time grid of the drift (default tau / 20). cache_budget_bytes: memory the
    dense copies and cached tiles may use.
    """

    def __init__(
        self,
        seed: int,
        drift_time_s: float | None = None,
        drift_step_s: float | None = None,
        cache_budget_bytes: int = 512 << 20,
    ) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0 or seed >= 2**63:
            raise ConfigurationError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        if drift_time_s is not None and not (drift_time_s > 0 and math.isfinite(drift_time_s)):
            raise ConfigurationError(
                f"drift_time_s must be a positive number of seconds or None, got {drift_time_s!r}"
            )
        self.seed = int(seed)
        self.drift_time_s = drift_time_s
        self.drift_step_s = (
            drift_step_s if drift_step_s is not None else (drift_time_s or 1.0) / 20.0
        )
        if not self.drift_step_s > 0:
            raise ConfigurationError(f"drift_step_s must be > 0, got {drift_step_s!r}")
        self.cache_budget_bytes = int(cache_budget_bytes)
        self._epoch = 0
        self._dense: dict[tuple, _DenseEntry] = {}
        self._blocks: dict[tuple, np.ndarray] = {}
        self._cached_bytes = 0

    # ---- time ---------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Current drift epoch (0 while static)."""
        return self._epoch

    @property
    def rho(self) -> float:
        """Correlation between consecutive drift epochs."""
        if self.drift_time_s is None:
            return 1.0
        return math.exp(-self.drift_step_s / self.drift_time_s)

    def set_time(self, t_s: float) -> bool:
        """Move the medium to time t_s (seconds since start). Returns True if T changed."""
        if self.drift_time_s is None:
            return False
        k = int(math.floor(t_s / self.drift_step_s))
        if k == self._epoch:
            return False
        if k < self._epoch:
            raise ConfigurationError("the medium's clock cannot run backwards")
        self._epoch = k
        return True

    def _history_start(self, k: int) -> int:
        if self.drift_time_s is None or k == 0:
            return k
        rho = self.rho
        memory = int(math.ceil(math.log(_DRIFT_MEMORY) / math.log(rho))) if rho > 0 else 0
        return max(0, k - memory)

    # ---- generation ---------------------------------------------------------------------
    def _generate(self, pixel_ids: np.ndarray, col0: int, col1: int, epoch: int) -> np.ndarray:
        rows = np.ascontiguousarray(pixel_ids, dtype=np.int64)
        out = np.empty((2 * rows.size, col1 - col0), dtype=np.float32)
        start = self._history_start(epoch)
        fill_stacked_tile(np.uint64(self.seed), np.uint64(start), rows, col0, out)
        self._advance(out, rows, col0, start, epoch)
        return out

    def _advance(self, state: np.ndarray, rows: np.ndarray, col0: int, e0: int, e1: int) -> None:
        rho = self.rho
        for e in range(e0 + 1, e1 + 1):
            ou_step_stacked_tile(np.uint64(self.seed), np.uint64(e), rows, col0, rho, state)

    def coefficients(self, pixel_ids: np.ndarray, col0: int, col1: int) -> np.ndarray:
        """T[pixel_ids, col0:col1] at the current epoch as complex64 (n_pixels, n_cols)."""
        s = self.stacked(pixel_ids, col0, col1)
        n = len(pixel_ids)
        return (s[:n] + 1j * s[n:]).astype(np.complex64)

    def stacked(self, pixel_ids: np.ndarray, col0: int, col1: int) -> np.ndarray:
        """[Re T; Im T], shape (2n, col1-col0) float32, at the current epoch (cached if it fits)."""
        pixel_ids = np.asarray(pixel_ids, dtype=np.int64)
        key = (pixel_ids.tobytes(), col0, col1)
        entry = self._dense.get(key)
        if entry is not None:
            if entry.epoch != self._epoch:
                start = self._history_start(self._epoch)
                if start > entry.epoch:
                    entry.stacked[:] = self._generate(pixel_ids, col0, col1, self._epoch)
                else:
                    self._advance(entry.stacked, pixel_ids, col0, entry.epoch, self._epoch)
                entry.epoch = self._epoch
            return entry.stacked
        out = self._generate(pixel_ids, col0, col1, self._epoch)
        if self._reserve(out.nbytes):
            self._dense[key] = _DenseEntry(pixel_ids.copy(), col0, col1, self._epoch, out)
        return out

    @property
    def dense_copies(self) -> int:
        """Dense copies of blocks of T held in the cache."""
        return len(self._dense)

    @property
    def cached_bytes(self) -> int:
        """Bytes of T cached (dense copies and tiles), at most cache_budget_bytes."""
        return self._cached_bytes

    def fits_dense(self, n_pixels: int, n_cols: int) -> bool:
        """Whether a dense stacked copy of that shape fits the remaining budget."""
        return 8 * n_pixels * n_cols <= self.cache_budget_bytes - self._cached_bytes

    def _reserve(self, nbytes: int) -> bool:
        if self._cached_bytes + nbytes > self.cache_budget_bytes:
            return False
        self._cached_bytes += nbytes
        return True

    def has_dense(self, pixel_ids: np.ndarray, col0: int, col1: int) -> bool:
        """Whether a dense copy of exactly this block is held."""
        key = (np.asarray(pixel_ids, dtype=np.int64).tobytes(), col0, col1)
        return key in self._dense

    def blocks(
        self, pixel_ids: np.ndarray, col0: int, col1: int, block_rows: int, static: bool = False
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Matrix-free sweep: yields (row slice into pixel_ids, stacked tile of those rows).

        Tiles that fit the budget are kept (the first ones: a sequential sweep then reuses them
        instead of thrashing); the others are generated again on every sweep. A drifting medium
        cannot be swept (its state is the dense copy) unless static=True, which uses epoch 0.
        """
        if self.drift_time_s is not None and not static:
            raise ConfigurationError(
                "medium drift needs the transmission matrix stored densely, and this one exceeds "
                f"the cache budget of {self.cache_budget_bytes / 2**30:.2f} GiB: raise "
                "cache_budget_bytes or set drift_time_s=None"
            )
        pixel_ids = np.asarray(pixel_ids, dtype=np.int64)
        pkey = pixel_ids.tobytes()
        for r0 in range(0, pixel_ids.size, block_rows):
            r1 = min(pixel_ids.size, r0 + block_rows)
            key = (pkey, col0, col1, r0, r1)
            tile = self._blocks.get(key)
            if tile is None:
                tile = self._generate(pixel_ids[r0:r1], col0, col1, 0)
                if self._reserve(tile.nbytes):
                    self._blocks[key] = tile
            yield slice(r0, r1), tile

    def clear_cache(self) -> None:
        """Drop every cached copy (frees the memory budget)."""
        self._dense.clear()
        self._blocks.clear()
        self._cached_bytes = 0
