"""`OPU`: the one interface training code uses. Simulated, emulated and hardware devices differ
only in their frame source; encoding and recovery are written once, here.

Output scale (identical on every device):
- mode="linear": y = G x with G_ij i.i.d. N(0, 1) (unit variance, averaged over pixels).
- mode="intensity": y = |T x|^2 with E|T_ij|^2 = 1, so E[y_i] = number of ON inputs.
Both are normalised by the calibrated mean DN per unit intensity (scale_dn), so the pixel-to-pixel
gain spread (PRNU, ~1 %) remains in the outputs.

Drift: linear recovery needs the anchor's own intensity I(r) per pixel. The medium drifts, so
every linear-mode acquisition starts with a few anchor-only frames and uses the I(r) measured
then (`last_anchor_dn`), not the calibrated one: G follows the medium (G(t) =
`exact_linear_matrix()` at the time of the call) instead of going stale in minutes. When that
I(r) correlates less than ANCHOR_DRIFT_WARN_CORRELATION with the calibrated one
(`anchor_correlation`), a UserWarning (once per calibration) says to recalibrate.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from calibration.quick import calibrate_for_projection
from calibration.record import Calibration
from calibration.stability import DRIFT_WARN_CORRELATION
from calibration.store import RecordStore
from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.frames import FrameSource
from firmware_iface.geometry import ProjectionGeometry
from firmware_iface.threads import check_threads, default_threads, numba_threads

from . import truth
from .arrays import check_batch, like_input, to_numpy
from .calibrated import FirstUseCalibration
from .encoding import check_float_range, float_planes, linear_patterns, resolve_kind
from .kernel_threads import MADDS_PER_PIXEL_FRAME, call_work, threads_for
from .layout import check_size, plan_geometry
from .progress import Progress, check_progress, frame_progress
from .recovery import (
    anchor_intensity,
    centred_correlation,
    combine_differences,
    normalise_intensity,
)
from .sources import load_calibration, simulator_of, use_device

MODES = ("linear", "intensity")
_MAX_FRAMES_PER_CALL = 16384
ANCHOR_DRIFT_WARN_CORRELATION = DRIFT_WARN_CORRELATION  # also what a record's validity uses
MAX_OUTPUT_BYTES = 4 << 30  # project() refuses batches whose output would exceed this


class OPU(FirstUseCalibration):
    """An optical processing unit computing random projections.

    device: 'sim' (simulator), 'emu' (the real driver stack against emulated devices), a
    hardware config, or any open frame source (firmware_iface.frames.FrameSource: an
    opu_sim.OpticalBench, an OPUHardware, ...; its layout must hold n_in data + n_in anchor
    elements and its ROI room for n_out outputs, see `plan_geometry`). A source passed in is
    the caller's: close() leaves it open. n_in: input width (DMD elements); n_out: output
    width (camera pixels). seed: medium seed (simulated devices). noise: False gives the exact
    noise-free model. profile: an opu_sim.DeviceProfile (simulated devices). exposure_us: fixed
    camera exposure (default: chosen by calibration). anchor_on: anchor size in elements
    (default sqrt(2) * n_in / 2). cache_budget_bytes: memory the simulated transmission matrix
    may keep. expected_on_fraction: fraction of data elements ON in the inputs you will send
    (per frame: e+ or e- of a ternary row); calibration sizes the anchor (sqrt(2) x ON
    elements, the shot-noise optimum) and the exposure for it. Sparse inputs (e.g. ternarised
    errors) get a better signal-to-noise ratio with a small value. threads: threads of the
    stack's own kernels (simulator physics, recovery) during this OPU's calls; None (default):
    torch's intra-op count when torch is imported, else the CPUs the process may use. The
    process's and torch's thread settings are never changed (firmware_iface.threads).

    calibration: None (default): on first use (`project()`, or `ensure_calibrated()`), load
    this device's record from `record_dir` if one is given and exists (refused with
    CalibrationError if it is for another geometry; a warning if it is stale), otherwise
    calibrate then and save the record to `record_dir`. "fresh": calibrate on first use
    whatever is stored (and save). A Calibration or a record path: use exactly that (refused
    if it is another device's or geometry's). `calibrate()` calibrates now, explicitly;
    `calibration` is the record in use (CalibrationError before there is one).

    sharded: split a simulated device over the ranks of a torch.distributed job (torchrun):
    each rank generates only its block of output pixels (`output_slice`), inputs are
    broadcast from rank 0, and results are bit-identical to sharded=False (opu/sharded.py,
    docs/scaleout.md). Every rank must make the same calls.
    """

    def __init__(
        self,
        device: str | FrameSource = "sim",
        n_in: int = 1000,
        n_out: int = 1000,
        seed: int = 0,
        noise: bool = True,
        profile: Any = None,
        exposure_us: float | None = None,
        calibration: Calibration | str | Path | None = None,
        anchor_on: int | None = None,
        cache_budget_bytes: int = 512 << 20,
        record_dir: str | Path | None = None,
        expected_on_fraction: float = 0.5,
        sharded: bool = False,
        threads: int | None = None,
    ) -> None:
        self.n_in, self.n_out = check_size("n_in", n_in), check_size("n_out", n_out)
        self.seed = seed
        if not (isinstance(expected_on_fraction, (int, float)) and 0 < expected_on_fraction <= 1):
            raise ConfigurationError(
                f"expected_on_fraction must be in (0, 1], got {expected_on_fraction!r}"
            )
        self._on_fraction = float(expected_on_fraction)
        self._exposure_us = exposure_us
        self._anchor_on = anchor_on
        self._threads = check_threads(threads)
        with numba_threads(self._threads):
            used = use_device(
                device, self.n_in, self.n_out, seed, noise, profile, cache_budget_bytes
            )
        self.device, self.profile, self.layout, self.roi = used.name, used.profile, *used.geometry
        self._source, self._owns_source = used.source, used.owned
        self._bench = simulator_of(self._source)
        self._shard = None
        self._cols = slice(0, self.n_out)
        if sharded:
            from .sharded import shard_source

            try:
                self._shard, self._source = shard_source(self._source, self.device)
            except BaseException:
                if self._owns_source:
                    self._source.close()
                raise
            self._cols = slice(*self._shard.bounds(self.n_out))
        self._lock = threading.Lock()
        self._advance: Callable[[int], None] | None = None  # progress of the running call
        self._closed = False
        self._cal: Calibration | None = None
        self._store = RecordStore(record_dir) if record_dir is not None else None
        self._fresh = isinstance(calibration, str) and calibration == "fresh"
        if calibration is not None and not self._fresh:
            try:
                self.use_calibration(load_calibration(calibration))
            except BaseException:
                self.close()
                raise

    plan_geometry = staticmethod(plan_geometry)

    # ---- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> OPU:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def threads(self) -> int:
        """Threads the stack's kernels use in this OPU's calls (now, if the setting is None)."""
        return default_threads() if self._threads is None else self._threads

    def close(self) -> None:
        """Release the device (idempotent); a frame source passed in stays open."""
        if not self._closed:
            self._closed = True
            if self._owns_source:
                self._source.close()

    @property
    def source(self) -> Any:
        """The level-0 frame source (OpticalBench or OPUHardware)."""
        return self._source

    @property
    def output_slice(self) -> slice:
        """The output columns this process computes: all of them, or this rank's contiguous
        block on a sharded device (what project(x, gather=False) returns)."""
        return self._cols

    @property
    def simulator(self) -> Any | None:
        """The OpticalBench behind the device (simulator truth), or None on hardware."""
        return self._bench

    @property
    def geometry(self) -> ProjectionGeometry:
        """The geometry a calibration record must match."""
        return ProjectionGeometry.of(self.n_in, self.n_out, self.layout, self.roi)

    @property
    def frame_period_us(self) -> float:
        """Time between two frames on the device, microseconds."""
        return float(self._source.frame_period_us)

    @staticmethod
    def frames_per_input(mode: str = "linear", kind: str = "ternary", precision: int = 8) -> int:
        """Camera frames one input row costs: intensity 1; linear binary 2, ternary 4, float
        4 per non-zero bit plane (at most 4 * precision). Each linear-mode acquisition adds
        `reference_frames(data frames)` anchor-only frames (<= 1/16 of a batch of 8+ rows)."""
        if mode == "intensity":
            return 1
        return {"binary": 2, "ternary": 4, "float": 4 * precision}[kind]

    # ---- calibration --------------------------------------------------------------------
    def calibrate(self) -> Calibration:
        """Run the minimal calibration project() needs (exposure, dark frame, anchor); the
        record is saved to `record_dir` when one was given."""
        self._check_open()
        self._source.set_output_pixels(None)
        with numba_threads(self._threads):
            cal = calibrate_for_projection(
                self._source,
                self.n_in,
                self.n_out,
                self.roi,
                exposure_us=self._exposure_us,
                anchor_on=self._anchor_on,
                on_fraction=self._on_fraction,
            )
            self.use_calibration(cal)
        if self._store is not None and (self._shard is None or self._shard.rank == 0):
            self._store.save(cal)
        return cal

    def use_calibration(self, cal: Calibration) -> None:
        """Adopt a calibration record (checked against this device and geometry)."""
        cal.check_matches(self._source.device_id, self.geometry)
        self._source.set_output_pixels(cal.output_pixels)
        self._cal = cal
        roi_ids = self.roi.pixel_ids()
        self._dark_out = cal.dark_at(roi_ids, cal.output_pixels).astype(np.float32)[self._cols]
        # floor for a freshly measured I(r): an anchor speckle that faded with drift must not
        # divide by ~0 (1 % of the calibrated median; such pixels are noisy until recalibration)
        self._anchor_floor_dn = np.float32(0.01 * float(np.median(cal.anchor_dn)))
        self.last_anchor_dn = cal.anchor_dn.astype(np.float32)  # all n_out, also when sharded
        self._anchor_drift_warned = False
        ref = cal.anchor_dn.astype(np.float64)
        ref -= ref.mean()
        self._anchor_ref = (ref, float(np.sqrt(ref @ ref)))  # centred, and its norm
        self._lin_gain = math.sqrt(2.0 / cal.scale_dn)

    # ---- projection ---------------------------------------------------------------------
    def project(
        self,
        x: Any,
        mode: str = "linear",
        encoding: str = "auto",
        precision: int = 8,
        gather: bool = True,
        progress: Progress = False,
    ) -> Any:
        """Project x ((n_in,) or (B, n_in), numpy or torch) to (n_out,) or (B, n_out) float32.

        mode 'linear': G x (see module docstring); inputs binary, ternary, or float (bit-plane
        encoded with `precision` magnitude bits). mode 'intensity': |T x|^2 for binary x.
        progress: True draws a progress bar on stderr (in camera frames, `frames_for(x)` in
        all); a callable is called with (frames_done, frames_total) after each acquisition.
        Returns the same kind as x (numpy, or torch on x's device). Sharded device: x is
        rank 0's (broadcast); gather=False returns only this rank's columns `output_slice`.
        """
        self._check_open()
        check_progress(progress)
        # sharded: rank 0's input on every rank (validated after, so all ranks agree on errors)
        xin = x if self._shard is None else self._shard.broadcast_array(np.asarray(to_numpy(x)))
        xn, was_1d, kind = self._check_input(xin, mode, encoding, precision)
        b = xn.shape[0]
        y = np.empty((b, self._n_cols), dtype=np.float32)
        total = sum(self._acquisition_frames(xn, mode, kind, precision)) if progress else 0
        local = self._source.local() if self._shard is not None else contextlib.nullcontext()
        with self._lock, frame_progress(progress, total, f"project {b} x {kind}") as advance:
            self.ensure_calibrated()
            self._advance = advance
            work = call_work(b * self.frames_per_input(mode, kind, precision) * self._n_cols,
                             self.n_in)
            try:
                # small calls: one thread; mid-size ones the idle cores (kernel_threads.py)
                gemm_dominates = self.n_in > MADDS_PER_PIXEL_FRAME
                with local, threads_for(work, gemm_dominates, self.threads):
                    for s, part in self._chunks(xn, mode, kind, precision):
                        rows = slice(s, s + len(part))
                        if mode == "intensity":
                            y[rows] = self._intensity(part.astype(np.uint8))
                        elif kind in ("binary", "ternary"):
                            group = 2 if kind == "binary" else 4
                            self._linear(part.astype(np.int8), group, out=y[rows])
                        else:
                            y[rows] = self._linear_float(part, precision)
            finally:
                self._advance = None
        if self._shard is not None and gather:
            y = self._shard.gather_columns(y, self.n_out)
        return like_input(y, x, was_1d)

    def frames_for(
        self, x: Any, mode: str = "linear", encoding: str = "auto", precision: int = 8
    ) -> int:
        """Camera frames `project(x, mode, encoding, precision)` will take, anchor-only
        reference frames included (not a first-use calibration). Times `frame_period_us`,
        that is the device time of the call. Validates x as project() does."""
        xn, _, kind = self._check_input(x, mode, encoding, precision)
        return sum(self._acquisition_frames(xn, mode, kind, precision))

    def _check_input(
        self, x: Any, mode: str, encoding: str, precision: int
    ) -> tuple[np.ndarray, bool, str]:
        """Validated (2-D numpy batch, was_1d, kind) for project()/frames_for()."""
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        xn, was_1d = check_batch(to_numpy(x), self.n_in)
        kind = resolve_kind(xn, encoding)
        if mode == "intensity" and kind != "binary":
            raise InputError(
                f"intensity mode needs binary input (0/1), got {kind} values; "
                "use mode='linear' for ternary or float input"
            )
        if kind == "float" and mode == "linear":
            float_planes(xn[:1], precision)  # validates precision before any frame is taken
            check_float_range(xn)
        b = xn.shape[0]
        if b * self.n_out * 4 > MAX_OUTPUT_BYTES:
            raise InputError(
                f"the output of {b} x {self.n_out} float32 would take "
                f"{b * self.n_out * 4 / 2**30:.1f} GiB (limit {MAX_OUTPUT_BYTES / 2**30:.0f} GiB): "
                "project the batch in parts"
            )
        return xn, was_1d, kind

    def _chunks(
        self, xn: np.ndarray, mode: str, kind: str, precision: int
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of each chunk of at most _MAX_FRAMES_PER_CALL data frames."""
        rows = max(1, _MAX_FRAMES_PER_CALL // self.frames_per_input(mode, kind, precision))
        for s in range(0, xn.shape[0], rows):
            yield s, xn[s : s + rows]

    def _acquisition_frames(
        self, xn: np.ndarray, mode: str, kind: str, precision: int
    ) -> list[int]:
        """Frames of each acquisition project() will make for xn, in order."""
        if mode == "intensity":
            return [len(part) for _, part in self._chunks(xn, mode, kind, precision)]
        if kind in ("binary", "ternary"):
            group = self.frames_per_input(mode, kind)
            data = [len(part) * group for _, part in self._chunks(xn, mode, kind, precision)]
        else:  # one ternary acquisition per bit plane with a non-zero row
            data = [
                4 * int(n)
                for _, part in self._chunks(xn, mode, kind, precision)
                for n in float_planes(part, precision).planes.any(axis=2).sum(axis=1)
                if n
            ]
        return [d + self.reference_frames(d) for d in data]

    @property
    def _n_cols(self) -> int:
        return self._cols.stop - self._cols.start

    @property
    def anchor_correlation(self) -> float:
        """Pearson correlation (over output pixels) between the anchor intensity I(r) measured
        in the latest linear-mode acquisition and the calibrated one: 1 right after
        calibration, falling as the medium decorrelates (speckle: |field correlation|^2)."""
        self.calibration  # noqa: B018  (raises CalibrationError before there is one)
        ref, ref_norm = self._anchor_ref  # centred at use_calibration (once per record)
        return float(centred_correlation(self.last_anchor_dn, ref, ref_norm))

    @staticmethod
    def reference_frames(data_frames: int) -> int:
        """Anchor-only frames a linear-mode acquisition of `data_frames` frames adds to
        measure I(r) afresh: data_frames // 16, clipped to [2, 16] (overhead <= 1/16 from 32
        data frames on)."""
        return min(16, max(2, data_frames // 16))

    def _acquire_linear(
        self, x: np.ndarray, group: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Acquire the linear-mode patterns of x (int8 rows; `linear_patterns`, group 2 for
        binary, 4 for ternary), led by reference_frames() anchor-only frames; returns (data
        frames, I(r) in DN measured now from those (n_out,), 1 / (2 sqrt(I(r)))). The medium
        drifts: a calibrated I(r) goes stale in minutes, and binary recovery subtracts it, so
        every acquisition measures its own."""
        k = self.reference_frames(x.shape[0] * group)
        frames = self._acquire(linear_patterns(x, self._cal.anchor, k, group))
        ir, inv_2sqrt_ir = np.empty((2, frames.shape[1]), np.float32)
        anchor_intensity(frames, k, self._dark_out, self._anchor_floor_dn, ir, inv_2sqrt_ir)
        self.last_anchor_dn = (
            ir if self._shard is None else self._shard.gather_columns(ir[None], self.n_out)[0]
        )
        if not self._anchor_drift_warned:
            corr = self.anchor_correlation
            if corr < ANCHOR_DRIFT_WARN_CORRELATION:
                self._anchor_drift_warned = True
                warnings.warn(
                    f"the medium has drifted since calibration: the anchor's speckle now "
                    f"correlates {corr:.2f} with the calibrated one. Linear outputs follow the "
                    "medium (G has changed accordingly) and pixels whose anchor faded are "
                    "noisier; recalibrate (OPU.calibrate(), or `opu calibrate anchor` for a stored "
                    "record)",
                    stacklevel=4,
                )
        return frames[k:], ir, inv_2sqrt_ir

    def _acquire(self, patterns: np.ndarray) -> np.ndarray:
        """Raw frames (F, n_out) for patterns; project() keeps F <= _MAX_FRAMES_PER_CALL."""
        frames = self._source.acquire(patterns, self._cal.exposure_us).frames
        if self._advance is not None:
            self._advance(patterns.shape[0])
        return frames

    def _intensity(self, x: np.ndarray) -> np.ndarray:
        flat = np.zeros((x.shape[0], self.layout.n_elements), dtype=np.uint8)  # anchor OFF
        flat[:, : self.n_in] = x
        out = np.empty((x.shape[0], self._n_cols), dtype=np.float32)
        normalise_intensity(self._acquire(flat), self._dark_out, 1.0 / self._cal.scale_dn, out)
        return out

    def _linear(self, x: np.ndarray, group: int, out: np.ndarray | None = None) -> np.ndarray:
        """Linear mode of int8 rows: binary (group 2: [x u r, x]) or ternary (group 4:
        [e+ u r, e+, e- u r, e-]); opu.recovery combines the frames into out (a new
        (B, n_cols) float32 array if None)."""
        if out is None:
            out = np.empty((x.shape[0], self._n_cols), dtype=np.float32)
        frames, ir, inv_2sqrt_ir = self._acquire_linear(x, group)
        combine_differences(frames, ir, inv_2sqrt_ir, self._lin_gain, out)
        return out

    def _linear_float(self, x: np.ndarray, precision: int) -> np.ndarray:
        fp = float_planes(x, precision)
        y = np.zeros((x.shape[0], self._n_cols), dtype=np.float64)
        for w, plane in zip(fp.weights, fp.planes, strict=True):
            rows = np.flatnonzero(plane.any(axis=1))
            if rows.size:
                y[rows] += w * self._linear(plane[rows], 4)
        return (y * fp.scale[:, None]).astype(np.float32)

    # ---- simulator truth (opu/truth.py) -----------------------------------------------
    def exact_transmission_matrix(self) -> np.ndarray:
        """Complex (n_out, n_in) T_s with intensity mode = |T_s x|^2 without noise
        (simulator only; calibrated scale and pixel gains included)."""
        return truth.transmission_matrix(self._bench, self.ensure_calibrated(), self.n_in)

    def exact_linear_matrix(self) -> np.ndarray:
        """Real (n_out, n_in) float32 G that linear mode recovers (simulator only)."""
        return truth.linear_matrix(
            self._bench, self.ensure_calibrated(), self.n_in, self.layout.n_elements
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this OPU is closed; open a new one")

    def __repr__(self) -> str:
        return f"OPU(device={self.device!r}, n_in={self.n_in}, n_out={self.n_out})"
