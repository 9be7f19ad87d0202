"""The scattering medium: a seeded complex Gaussian transmission matrix T that need not be stored.

T[p, j] links DMD element j to camera pixel p (global sensor id). Coefficients are a pure
function of (seed, time, p, j) through a counter-based generator, so any tile, ROI, batch or
process gets the same numbers. Tiles are generated on demand; a dense copy is kept only while it
fits the memory budget and is reused while the time has not moved (an optimisation, not the
model).

Drift (opu_sim.drift_model): continuous in time, correlation exp(-|d| / tau), generated entry by
entry at a cost that does not depend on the time, so it works matrix-free at any size. The medium
samples that process on a time grid: at clock time t it shows T(q floor(t / q)), q the drift
quantum (tau / 1024 by default), so that calls within one quantum reuse the same T instead of
re-generating it (correlation error <= 2.8e-4 + q / tau: see DRIFT_QUANTUM_TAU).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from firmware_iface.errors import ConfigurationError, InputError

from . import drift_model
from .drift_cache import (
    STATE_BYTES_PER_ENTRY,
    DriftState,
    drift_state_advance,
    drift_state_fill,
)
from .drift_tiles import fill_drift_tile
from .gaussian_tiles import fill_stacked_tile

# Default drift quantum, in units of tau. A medium held at the grid time t_q = q floor(t / q)
# (0 <= t - t_q < q) has, between clock times t1, t2, the model's correlation at a lag d' with
# |d' - |t2 - t1|| < q; so corr = exp(-|t2 - t1| / tau) within 2.8e-4 (the model's fit at any lag)
# + q / tau (exp is 1/tau-Lipschitz) = 1.26e-3 at q = tau / 1024, at any lag. A power of two, so
# that q is exact in binary for any tau that is.
DRIFT_QUANTUM_TAU = 1.0 / 1024
MAX_COLUMNS = 2**32  # DMD elements the generator addresses (drift knots: counter n * 2**32 + c)


@dataclass
class _DenseEntry:
    time_s: float
    stacked: np.ndarray  # (2n, nc) float32
    state: DriftState | None = None  # per-entry knots of a drifting medium, when they fit


class TransmissionMatrix:
    """Seeded complex Gaussian T (E|T_pj|^2 = 1), generated on demand, cached within a budget.

    seed: medium seed. drift_time_s: decorrelation time constant tau in seconds (None: static).
    cache_budget_bytes: memory the dense copies and cached tiles may use.
    drift_quantum_s: time grid of a drifting medium, seconds (T at clock t is T(q floor(t / q)));
    None: tau * DRIFT_QUANTUM_TAU; 0: no grid (T(t) at every t, every new time regenerates).
    """

    def __init__(
        self,
        seed: int,
        drift_time_s: float | None = None,
        cache_budget_bytes: int = 512 << 20,
        drift_quantum_s: float | None = None,
    ) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0 or seed >= 2**63:
            raise ConfigurationError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        if drift_time_s is not None and not (
            isinstance(drift_time_s, (int, float)) and drift_time_s > 0
            and math.isfinite(drift_time_s)
        ):
            raise ConfigurationError(
                f"drift_time_s must be a positive number of seconds or None, got {drift_time_s!r}"
            )
        if drift_quantum_s is not None and not (
            isinstance(drift_quantum_s, (int, float)) and drift_quantum_s >= 0
            and math.isfinite(drift_quantum_s)
        ):
            raise ConfigurationError(
                f"drift_quantum_s must be a number of seconds >= 0 or None, got {drift_quantum_s!r}"
            )
        self.seed = int(seed)
        self.drift_time_s = None if drift_time_s is None else float(drift_time_s)
        self.drift_quantum_s = 0.0
        if self.drift_time_s is not None:
            self.drift_quantum_s = (self.drift_time_s * DRIFT_QUANTUM_TAU
                                    if drift_quantum_s is None else float(drift_quantum_s))
        self.cache_budget_bytes = int(cache_budget_bytes)
        self._time_s = 0.0
        self._dense: dict[tuple, _DenseEntry] = {}
        self._blocks: dict[tuple, _DenseEntry] = {}
        self._cached_bytes = 0
        self._sweep: np.ndarray | None = None  # buffer of uncached tiles (blocks(reuse_buffer))
        self.draws = 0  # 64-bit generator draws spent so far (cost accounting)
        if self.drift_time_s is not None:
            self._inv_scale_s = drift_model.inverse_scale_times(self.drift_time_s)
            self._scale_lut = drift_model.scale_lookup()

    # ---- time ---------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        """Time of the medium, seconds (T is T(time_s)): the last set_time's clock time floored
        to the drift quantum grid; always 0 while static."""
        return self._time_s

    @property
    def draws_per_entry(self) -> int:
        """Generator draws one coefficient costs at most, at any time (1 static;
        drift_model.DRAWS_PER_ENTRY drifting: 3, and 4 in an entry's second knot interval)."""
        return 1 if self.drift_time_s is None else drift_model.DRAWS_PER_ENTRY

    def set_time(self, t_s: float) -> bool:
        """Move the medium to clock time t_s (seconds >= 0; any order): T becomes
        T(q floor(t_s / q)), q = drift_quantum_s, a pure function of t_s. Returns True if T
        changed (False while the clock stays inside one quantum)."""
        if not (isinstance(t_s, (int, float, np.floating, np.integer)) and math.isfinite(t_s)
                and t_s >= 0):
            raise InputError(f"the medium's time must be a finite number of seconds >= 0, "
                             f"got {t_s!r}")
        if self.drift_time_s is None:
            return False
        q = self.drift_quantum_s
        t = float(t_s) if q == 0 else math.floor(float(t_s) / q) * q
        if t == self._time_s:
            return False
        self._time_s = t
        return True

    # ---- generation ---------------------------------------------------------------------
    def _generate(
        self, pixel_ids: np.ndarray, col0: int, col1: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        rows = np.ascontiguousarray(pixel_ids, dtype=np.int64)
        if out is None:
            out = np.empty((2 * rows.size, col1 - col0), dtype=np.float32)
        if self.drift_time_s is None:
            fill_stacked_tile(np.uint64(self.seed), np.uint64(0), rows, col0, out)
            self.draws += rows.size * (col1 - col0)
        else:
            self.draws += fill_drift_tile(np.uint64(self.seed), self._time_s,
                                          self._inv_scale_s, self._scale_lut, rows, col0, out)
        return out

    def _current(self, entry: _DenseEntry, pixel_ids: np.ndarray, col0: int, col1: int
                 ) -> np.ndarray:
        """A cached copy, brought to the current time if it has moved since (drifting medium:
        from the recorded knots when they were kept, else regenerated in place)."""
        if entry.time_s != self._time_s:
            st = entry.state
            if st is None:
                self._generate(pixel_ids, col0, col1, out=entry.stacked)
            else:
                rows = np.ascontiguousarray(pixel_ids, dtype=np.int64)
                drawn = np.zeros(rows.size, np.int64)
                drift_state_advance(np.uint64(self.seed), self._time_s, self._inv_scale_s, rows,
                                    col0, entry.stacked, st.scale, st.phase, st.knot, st.lo,
                                    st.hi, drawn)
                self.draws += int(drawn.sum())
            entry.time_s = self._time_s
        return entry.stacked

    def coefficients(self, pixel_ids: np.ndarray, col0: int, col1: int) -> np.ndarray:
        """T[pixel_ids, col0:col1] at the current time as complex64 (n_pixels, n_cols)."""
        s = self.stacked(pixel_ids, col0, col1)
        n = len(pixel_ids)
        return (s[:n] + 1j * s[n:]).astype(np.complex64)

    def stacked(self, pixel_ids: np.ndarray, col0: int, col1: int) -> np.ndarray:
        """[Re T; Im T], shape (2n, col1-col0) float32, at the current time (cached if it fits)."""
        self._check_columns(col0, col1)
        pixel_ids = np.asarray(pixel_ids, dtype=np.int64)
        key = (pixel_ids.tobytes(), col0, col1)
        entry = self._dense.get(key)
        if entry is not None:
            return self._current(entry, pixel_ids, col0, col1)
        n, nc = pixel_ids.size, col1 - col0
        if self.drift_time_s is not None and self._reserve((8 + STATE_BYTES_PER_ENTRY) * n * nc):
            out = np.empty((2 * n, nc), dtype=np.float32)
            st = DriftState(n, nc)
            drawn = np.zeros(n, np.int64)
            drift_state_fill(np.uint64(self.seed), self._time_s, self._inv_scale_s,
                             self._scale_lut, np.ascontiguousarray(pixel_ids), col0, out,
                             st.scale, st.phase, st.knot, st.lo, st.hi, drawn)
            self.draws += int(drawn.sum())
            self._dense[key] = _DenseEntry(self._time_s, out, st)
            return out
        out = self._generate(pixel_ids, col0, col1)
        if self._reserve(out.nbytes):
            self._dense[key] = _DenseEntry(self._time_s, out)
        return out

    @staticmethod
    def _check_columns(col0: int, col1: int) -> None:
        if not 0 <= col0 <= col1 <= MAX_COLUMNS:
            raise InputError(f"columns {col0}:{col1} of the medium are outside 0:{MAX_COLUMNS} "
                             "(the generator addresses up to 2**32 DMD elements)")

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
        return self._fits(8 * n_pixels * n_cols)

    def _reserve(self, nbytes: int) -> bool:
        if not self._fits(nbytes):
            return False
        self._cached_bytes += nbytes
        return True

    def has_dense(self, pixel_ids: np.ndarray, col0: int, col1: int) -> bool:
        """Whether a dense copy of exactly this block is held."""
        key = (np.asarray(pixel_ids, dtype=np.int64).tobytes(), col0, col1)
        return key in self._dense

    def blocks(
        self, pixel_ids: np.ndarray, col0: int, col1: int, block_rows: int,
        reuse_buffer: bool = False,
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Matrix-free sweep at the current time: yields (row slice into pixel_ids, stacked tile
        of those rows), equal to the same rows of `stacked()`.

        Tiles that fit the budget are kept (the first ones: a sequential sweep then reuses them
        instead of thrashing) and regenerated in place when the time has moved; the others are
        generated on every sweep. reuse_buffer: generate those into one buffer kept between
        sweeps (no fresh pages to fault in per tile); a yielded tile is then valid only until
        the next one is asked for.
        """
        self._check_columns(col0, col1)
        pixel_ids = np.asarray(pixel_ids, dtype=np.int64)
        pkey = pixel_ids.tobytes()
        for r0 in range(0, pixel_ids.size, block_rows):
            r1 = min(pixel_ids.size, r0 + block_rows)
            key = (pkey, col0, col1, r0, r1)
            entry = self._blocks.get(key)
            if entry is not None:
                tile = self._current(entry, pixel_ids[r0:r1], col0, col1)
            elif reuse_buffer and not self._fits(8 * (r1 - r0) * (col1 - col0)):
                tile = self._generate(pixel_ids[r0:r1], col0, col1,
                                      out=self._sweep_buffer(2 * (r1 - r0), col1 - col0))
            else:
                tile = self._generate(pixel_ids[r0:r1], col0, col1)
                if self._reserve(tile.nbytes):
                    self._blocks[key] = _DenseEntry(self._time_s, tile)
            yield slice(r0, r1), tile

    def _fits(self, nbytes: int) -> bool:
        return self._cached_bytes + nbytes <= self.cache_budget_bytes

    def _sweep_buffer(self, rows: int, cols: int) -> np.ndarray:
        """A (rows, cols) float32 view of the buffer uncached tiles are generated into."""
        if self._sweep is None or self._sweep.size < rows * cols:
            self._sweep = np.empty(rows * cols, np.float32)
        return self._sweep[: rows * cols].reshape(rows, cols)

    def clear_cache(self) -> None:
        """Drop every cached copy (frees the memory budget)."""
        self._dense.clear()
        self._blocks.clear()
        self._cached_bytes = 0
        self._sweep = None
