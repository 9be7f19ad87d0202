"""OpticalBench: the simulated OPU at level 0. Physics straight from patterns to camera frames.

Fields are linear in the pattern: the bench splits each pattern into its data region and its
anchor region (firmware_iface.geometry.DmdLayout), computes the field of each distinct region
content once (batch-invariant products with the stacked [Re T; Im T], dense or tile by tile:
exact sums for binary patterns, opu_sim.field_kernels) and adds them per frame inside the
camera kernel. That is exact physics, and it makes the anchor scheme's repeated sub-patterns
cost nothing extra.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from firmware_iface.camera.pixel_formats import output_dtype
from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.frames import FrameBatch, check_exposure_us, check_pattern_batch, check_wait_s
from firmware_iface.geometry import CameraRoi, DmdLayout

from .camera_model import laser_factors, render_frames
from .field_kernels import fields as field_products
from .field_kernels import prepare as prepare_rows
from .pixel_maps import sensor_maps
from .profile import DeviceProfile
from .transmission import TransmissionMatrix

_BLOCK_ROWS = 2048
SUMMED_FIELDS_MAX_COLS = 32  # binary data regions up to this wide: fields summed per frame
SUMMED_FIELDS_MAX_BYTES = 8 << 20  # ... whose transposed block of T (K x 2P float32) is this small
# the camera kernel's summed-field arguments when fields are given (one compiled signature)
_NO_SUM = (np.empty((0, 0), np.float32), np.empty(0, np.int64), np.empty(0, np.int64))
_ANCHOR_CACHE_ROWS = 16  # distinct anchor-region contents whose fields are kept
_ANCHOR_CACHE_SETS = 8  # ... and sets of them as one call shows them (one lookup a call)


_HASH_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)  # tests set 0 to make every row collide


@nb.njit(cache=True)
def _group_rows(packed: np.ndarray, mask: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct row, in order of appearance; index of each row's distinct
    row) of a uint64 matrix: an open-addressing table keyed by a 64-bit FNV-1a-style hash
    (& mask) of the row's words, every match checked word for word (exact whatever the
    hash). Serial: a few words per row, cheaper than waking threads or sorting."""
    n, w = packed.shape
    size = 2
    while size < 2 * n:
        size *= 2
    table = np.full(size, -1, np.int64)
    first = np.empty(n, np.int64)
    inverse = np.empty(n, np.int64)
    n_unique = 0
    for i in range(n):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(w):
            h = (h ^ packed[i, j]) * np.uint64(0x100000001B3)
        slot = np.int64((h ^ (h >> np.uint64(29))) & mask & np.uint64(size - 1))
        while True:
            g = table[slot]
            if g < 0:
                table[slot] = n_unique
                first[n_unique] = i
                inverse[i] = n_unique
                n_unique += 1
                break
            r = first[g]
            same = True
            for j in range(w):
                if packed[r, j] != packed[i, j]:
                    same = False
                    break
            if same:
                inverse[i] = g
                break
            slot = (slot + 1) & (size - 1)
    return first[:n_unique], inverse


@nb.njit(cache=True)
def _pack_binary_rows(p: np.ndarray) -> np.ndarray:
    """Rows of a 0/1 (or bool-as-byte) matrix as bit words: bit j % 64 of word j // 64 is
    p[i, j] != 0 (as fast as np.packbits on wide rows, 4x faster on narrow ones, and no
    bool copy of a strided region)."""
    n, m = p.shape
    nw = (m + 63) // 64
    out = np.empty((n, nw), np.uint64)
    for i in range(n):
        row = p[i]
        for w in range(nw):
            acc = np.uint64(0)
            j0 = 64 * w
            for j in range(min(64, m - j0)):
                acc |= np.uint64(row[j0 + j] != 0) << np.uint64(j)
            out[i, w] = acc
    return out


@nb.njit(cache=True)
def _group_binary_rows(p: np.ndarray, mask: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """`_group_rows` of a 0/1 matrix's packed rows (one dispatch instead of two)."""
    return _group_rows(_pack_binary_rows(p), mask)


@nb.njit(cache=True)
def _grouped_on_columns(p: np.ndarray, mask: np.uint64) -> tuple:
    """`_group_binary_rows` of a 0/1 matrix, and the distinct rows' ON columns as (ptr, cols):
    distinct row r's are cols[ptr[r]:ptr[r + 1]], ascending (int64); one dispatch."""
    first, inverse = _group_binary_rows(p, mask)
    n, m = first.size, p.shape[1]
    ptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        c = 0
        for j in range(m):
            c += p[first[r], j] != 0
        ptr[r + 1] = ptr[r] + c
    cols = np.empty(ptr[n], np.int64)
    for r in range(n):
        i = ptr[r]
        for j in range(m):
            if p[first[r], j] != 0:
                cols[i] = j
                i += 1
    return inverse, ptr, cols


def _unique_rows(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of p (in order of first appearance) and, per row of p, the index of its
    distinct row (exact: rows are compared bit for bit; uint8 rows must be 0/1 as
    check_patterns makes them)."""
    if p.shape[0] == 1:
        return p, np.zeros(1, dtype=np.int64)
    if p.dtype == np.bool_ or p.dtype == np.uint8:  # DMD patterns: one bit a mirror
        first, inverse = _group_binary_rows(p.view(np.uint8), _HASH_MASK)
        return p[first], inverse
    raw = np.ascontiguousarray(p).view(np.uint8).reshape(p.shape[0], -1)
    words = np.zeros((p.shape[0], -(-raw.shape[1] // 8)), np.uint64)  # zero-padded rows
    words.view(np.uint8)[:, : raw.shape[1]] = raw
    first, inverse = _group_rows(words, _HASH_MASK)
    return p[first], inverse


class OpticalBench:
    """Simulated OPU frame source: DMD -> medium -> camera, on a simulated clock.

    profile: the device; seed: medium seed; layout: where the elements sit on the DMD;
    roi: camera ROI (default: centred, as large as needed for `layout`'s data elements).
    cache_budget_bytes: memory the transmission matrix may keep (above it, matrix-free).
    """

    def __init__(
        self,
        profile: DeviceProfile,
        seed: int,
        layout: DmdLayout,
        roi: CameraRoi,
        cache_budget_bytes: int = 512 << 20,
    ) -> None:
        cam = profile.camera
        if (layout.dmd_width, layout.dmd_height) != (profile.dmd.width, profile.dmd.height):
            raise ConfigurationError(
                f"layout is for a {layout.dmd_width}x{layout.dmd_height} DMD but the profile's "
                f"DMD is {profile.dmd.width}x{profile.dmd.height}"
            )
        if (roi.sensor_width, roi.sensor_height) != (cam.sensor_width, cam.sensor_height):
            raise ConfigurationError("camera ROI is for another sensor size than the profile's")
        self.profile = profile
        self.seed = int(seed)
        self.layout = layout
        self.roi = roi
        drift = profile.medium.drift_time_s if profile.noise.drift else None
        self.medium = TransmissionMatrix(seed, drift, cache_budget_bytes=cache_budget_bytes)
        self.clock_us = 0.0
        self.frames_taken = 0
        self._pixel_ids = roi.pixel_ids()
        self._maps = self._make_maps()
        self._exposure_cache: tuple | None = None  # (exposure us, camera args, dtype)
        self._summed_wt: tuple | None = None  # ((medium time, K), data block of T transposed)
        self._anchor_fields: dict[bytes, np.ndarray] = {}
        self._anchor_sets: dict[tuple, np.ndarray] = {}
        self._closed = False

    # ---- FrameSource --------------------------------------------------------------------
    @property
    def max_dn(self) -> float:
        """Largest count (2**bit_depth - 1), DN."""
        return float(self.profile.camera.max_dn)

    @property
    def frame_period_us(self) -> float:
        """Time between frames on the simulated clock, microseconds."""
        return self.profile.frame_period_us

    @property
    def device_id(self) -> str:
        """'sim:<profile fingerprint>:<seed>'."""
        return f"sim:{self.profile.fingerprint}:{self.seed}"

    @property
    def pixel_ids(self) -> np.ndarray:
        """Global sensor ids of the returned frame columns."""
        return self._pixel_ids

    def set_output_pixels(self, pixel_ids: np.ndarray | None) -> None:
        """Return only these pixels (global sensor ids inside the ROI); None: the whole ROI."""
        if pixel_ids is None:
            ids = self.roi.pixel_ids()
        else:
            self.roi.columns(pixel_ids)  # validates: integer ids inside the ROI
            ids = np.asarray(pixel_ids).astype(np.int64)
        self._pixel_ids = ids
        self._maps = self._make_maps()
        self._exposure_cache = None
        self._drop_caches()  # tiles of the previous pixel set would only hold memory

    def wait_s(self, seconds: float) -> None:
        """Let time pass (the medium drifts); instant on the simulated clock."""
        self.clock_us += check_wait_s(seconds) * 1e6

    def close(self) -> None:
        """Release cached matrices; the bench stays usable (it re-generates on demand)."""
        self._drop_caches()

    def _drop_caches(self) -> None:
        """Forget every copy derived from T: the medium's cache, the transposed data block,
        the anchor fields."""
        self.medium.clear_cache()
        self._summed_wt = None
        self._anchor_fields.clear()
        self._anchor_sets.clear()

    def check_exposure(self, exposure_us: float) -> float:
        """Validate an exposure time against the camera's limits; returns it as float."""
        lo, hi = self.exposure_range_us
        return check_exposure_us(exposure_us, lo, hi, "the camera's")

    @property
    def exposure_range_us(self) -> tuple[float, float]:
        """(shortest, longest) camera exposure, microseconds."""
        return self.profile.camera.min_exposure_us, self.profile.camera.max_exposure_us

    def check_patterns(self, patterns: np.ndarray) -> np.ndarray:
        """Validate patterns ((B, n_elements), values in [0, 1]); returns a 2-D array."""
        p = check_pattern_batch(patterns, self.layout.n_elements)
        if p.dtype == np.bool_:
            return p
        if p.dtype.kind == "f":
            if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
                raise InputError("float patterns are mirror fractions and must lie in [0, 1]")
            return p.astype(np.float32, copy=False)
        if (p.dtype.kind == "i" and p.min() < 0) or p.max() > 1:
            raise InputError("integer patterns must be binary (0 or 1)")
        return p.astype(np.uint8, copy=False)

    def acquire(self, patterns: np.ndarray, exposure_us: float) -> FrameBatch:
        """Show each pattern, expose the camera for exposure_us, return one frame per pattern."""
        p = self.check_patterns(patterns)
        exposure = self.check_exposure(exposure_us)
        b = p.shape[0]
        self.medium.set_time(self.clock_us * 1e-6)
        nd = self.layout.n_data
        summed = self._summed_data(p[:, :nd])
        if summed is None:
            fd, idx_d = self._region_fields(p[:, :nd], 0, nd, cache=False)
        else:
            fd, idx_d = np.empty((0, 2 * self._pixel_ids.size), np.float32), summed[0]
        if self.layout.n_anchor:
            fa, idx_a = self._region_fields(p[:, nd:], nd, self.layout.n_elements, cache=True)
        else:
            fa, idx_a = np.zeros((1, 2 * self._pixel_ids.size), np.float32), np.zeros(b, np.int64)
        return self._render(fd, fa, idx_d, idx_a, exposure, summed[1:] if summed else _NO_SUM)

    def _summed_data(self, p: np.ndarray) -> tuple | None:
        """For a narrow binary data region held densely (SUMMED_FIELDS_MAX_COLS columns, a
        transposed block within SUMMED_FIELDS_MAX_BYTES): (index of each frame's distinct data
        row, [Re T; Im T] of the region transposed (K, 2P), the distinct rows' ON columns as
        ptr, cols) for the camera kernel to sum each frame's data field itself (the same bits
        as the field product: exact sums), so no (rows, 2P) field array is written and read
        back; None otherwise."""
        ids, nd = self._pixel_ids, p.shape[1]
        if (nd > SUMMED_FIELDS_MAX_COLS or 8 * nd * ids.size > SUMMED_FIELDS_MAX_BYTES
                or not (p.dtype == np.bool_ or p.dtype == np.uint8)
                or not (self.medium.fits_dense(ids.size, nd) or self.medium.has_dense(ids, 0, nd))):
            return None
        inverse, ptr, cols = _grouped_on_columns(p.view(np.uint8), _HASH_MASK)
        key = (self.medium.time_s, nd)
        if self._summed_wt is None or self._summed_wt[0] != key:
            self._summed_wt = (key, np.ascontiguousarray(self.medium.stacked(ids, 0, nd).T))
        return inverse, self._summed_wt[1], ptr, cols

    # ---- physics ------------------------------------------------------------------------
    def _make_maps(self) -> dict[str, np.ndarray]:
        return sensor_maps(
            self.profile.camera, self.profile.noise, self.profile.camera_seed, self._pixel_ids
        )

    def electrons_per_unit(
        self, exposure_us: float, pixel_ids: np.ndarray | None = None
    ) -> np.ndarray:
        """Mean photo-electrons per unit of |T x|^2 per pixel at this exposure (PRNU included);
        for the current output pixels or the given global ids."""
        gain = (
            self._maps["gain"]
            if pixel_ids is None
            else sensor_maps(
                self.profile.camera, self.profile.noise, self.profile.camera_seed, pixel_ids
            )["gain"]
        )
        return (
            self.profile.laser.photons_per_mirror_us
            * self.layout.macro_pixel**2
            * exposure_us
            * self.profile.camera.quantum_efficiency
            * gain.astype(np.float64)
        )

    def photon_count(self, pattern: np.ndarray, exposure_us: float) -> np.ndarray:
        """Mean photons reaching each current output pixel during one exposure of `pattern`
        ((n_elements,) of {0, 1}), before quantum efficiency and PRNU (simulator truth: what
        a calibrated radiometer would give on hardware)."""
        t = self.transmission(0, self.layout.n_elements)
        field = t.astype(np.complex128) @ np.asarray(pattern, dtype=np.float64)
        return (self.profile.laser.photons_per_mirror_us * self.layout.macro_pixel**2
                * exposure_us * np.abs(field) ** 2)

    def dn_per_unit(self, exposure_us: float, pixel_ids: np.ndarray | None = None) -> np.ndarray:
        """Mean DN per unit of |T x|^2 per pixel (the exact intensity scale the camera applies)."""
        return self.profile.camera.gain_dn_per_e * self.electrons_per_unit(exposure_us, pixel_ids)

    def transmission(self, col0: int, col1: int, pixel_ids: np.ndarray | None = None) -> np.ndarray:
        """T[pixels, col0:col1] at the current epoch, complex64 (simulator truth); pixels are
        the current output pixels unless global ids are given."""
        ids = self._pixel_ids if pixel_ids is None else np.asarray(pixel_ids, dtype=np.int64)
        return self.medium.coefficients(ids, col0, col1)

    def _fields(self, rows: np.ndarray, col0: int, col1: int) -> np.ndarray:
        """Fields [Re | Im] (n_rows, 2P) of region patterns `rows` over columns col0:col1.

        Batch-invariant (opu_sim.field_kernels): binary rows are summed exactly (T is on the
        coefficient grid; BLAS in exact column chunks), other rows in a fixed order, so a row's
        field is the same bits alone, in any batch, in the dense or the tile-by-tile path, on
        any thread count, CPU and BLAS kernel."""
        ids = self._pixel_ids
        npx = ids.size
        live = np.flatnonzero(rows.any(axis=1))  # an all-OFF region contributes no field
        if live.size == 0:
            return np.zeros((rows.shape[0], 2 * npx), dtype=np.float32)
        # a few all-OFF rows: cheaper through the kernel (exact zeros, and a row's field does
        # not depend on the others) than a gather and a scatter of the rest
        sel = slice(None) if live.size >= 0.9 * rows.shape[0] else live
        x = rows[sel]
        binary = x.dtype == np.bool_ or x.dtype == np.uint8  # check_patterns: 0/1 only
        dense = self.medium.fits_dense(npx, col1 - col0) or self.medium.has_dense(ids, col0, col1)
        if dense:
            f = field_products(prepare_rows(x, binary), self.medium.stacked(ids, col0, col1))
            if isinstance(sel, slice):
                return f
            out = np.zeros((rows.shape[0], 2 * npx), dtype=np.float32)
            out[sel] = f
            return out
        out = np.zeros((rows.shape[0], 2 * npx), dtype=np.float32)
        prepared = prepare_rows(x, binary)  # once for every tile
        size = x.shape[0] * 2 * min(npx, _BLOCK_ROWS)
        buffers = np.empty(size, np.float32), np.empty(size, np.float32)  # reused per tile
        for sl, tile in self.medium.blocks(ids, col0, col1, _BLOCK_ROWS, reuse_buffer=True):
            part = field_products(prepared, tile, buffers)
            nb_ = sl.stop - sl.start
            out[sel, sl] = part[:, :nb_]
            out[sel, npx + sl.start : npx + sl.stop] = part[:, nb_:]
        return out

    def _region_fields(
        self, p: np.ndarray, col0: int, col1: int, cache: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        uniq, inverse = _unique_rows(p)
        if not cache:
            return self._fields(uniq, col0, col1), inverse
        small = uniq.shape[0] <= _ANCHOR_CACHE_ROWS
        set_key = small and (self.medium.time_s, uniq.dtype.str, uniq.shape, uniq.tobytes())
        known = self._anchor_sets.get(set_key) if small else None  # e.g. [anchor, all-OFF]
        if known is not None:
            return known, inverse
        fields = np.empty((uniq.shape[0], 2 * self._pixel_ids.size), dtype=np.float32)
        keys = [(self.medium.time_s, row.dtype.str, row.tobytes()) for row in uniq]
        missing = []
        for i, k in enumerate(keys):
            f = self._anchor_fields.get(k)
            if f is None:
                missing.append(i)
            else:
                fields[i] = f
        if missing:  # one GEMM for every distinct content not cached yet
            new = self._fields(uniq[missing], col0, col1)
            fields[missing] = new
            if len(self._anchor_fields) + len(missing) > _ANCHOR_CACHE_ROWS:
                self._anchor_fields.clear()
            if len(missing) <= _ANCHOR_CACHE_ROWS:
                self._anchor_fields.update((keys[i], f) for i, f in zip(missing, new, strict=True))
        if small:
            if len(self._anchor_sets) >= _ANCHOR_CACHE_SETS:
                self._anchor_sets.clear()
            self._anchor_sets[set_key] = fields  # read-only from here on
        return fields, inverse

    def _camera_args(self, exposure_us: float) -> tuple[tuple, np.dtype]:
        """The camera kernel's per-pixel and scalar arguments at this exposure (pixel ids,
        electrons per unit of |T x|^2, dark electrons, DSNU, then the profile's camera
        constants and noise switches), and the frames' dtype; kept for the last exposure and
        pixel set (every call of a calibrated OPU uses one exposure)."""
        if self._exposure_cache is None or self._exposure_cache[0] != exposure_us:
            cam, noise = self.profile.camera, self.profile.noise
            dark = (cam.dark_current_e_per_s * exposure_us * 1e-6 * self._maps["dark_rel"]
                    if noise.dark_current else np.zeros(self._pixel_ids.size))
            args = (self._pixel_ids, self.electrons_per_unit(exposure_us).astype(np.float32),
                    dark.astype(np.float32), self._maps["offset_e"], float(cam.read_noise_e),
                    float(cam.full_well_e), float(cam.gain_dn_per_e), float(cam.black_offset_dn),
                    float(cam.max_dn), noise.shot, noise.read, noise.saturation,
                    noise.quantization)
            dtype = (output_dtype(f"Mono{cam.bit_depth}") if noise.quantization
                     else np.dtype(np.float32))
            self._exposure_cache = (exposure_us, args, dtype)
        return self._exposure_cache[1], self._exposure_cache[2]

    def _render(
        self,
        fd: np.ndarray,
        fa: np.ndarray,
        idx_d: np.ndarray,
        idx_a: np.ndarray,
        exposure_us: float,
        summed: tuple = _NO_SUM,
    ) -> FrameBatch:
        prof = self.profile
        b = idx_d.size
        # an exposure longer than the frame period stretches the frame
        period = max(self.frame_period_us, exposure_us)
        frame0 = self.frames_taken
        if prof.noise.laser and prof.laser.power_fluctuation_rel > 0:  # keyed per frame index
            laser = laser_factors(
                np.uint64(prof.noise_seed), np.int64(frame0), b, prof.laser.power_fluctuation_rel
            )
        else:
            laser = np.ones(b, np.float32)
        camera, dtype = self._camera_args(exposure_us)
        out = np.empty((b, self._pixel_ids.size), dtype=dtype)
        saturated = np.zeros(b, dtype=np.int64)
        render_frames(fd, fa, idx_d, idx_a, laser, np.int64(frame0), np.uint64(prof.noise_seed),
                      *camera, out, saturated, 4 * nb.get_num_threads(), *summed)
        t0 = self.clock_us
        self.clock_us += b * period
        self.frames_taken += b
        return FrameBatch(
            frames=out,
            frame_ids=np.arange(frame0, frame0 + b, dtype=np.int64),
            timestamps_us=t0 + period * np.arange(b, dtype=np.float64),
            exposure_us=exposure_us,
            pixel_ids=self._pixel_ids,
            saturated=saturated,
        )
