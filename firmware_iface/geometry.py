"""Geometry shared by host and device sides: how input elements sit on the DMD as macro-pixels,
and how camera pixels are numbered. Pure functions and frozen dataclasses, no device state.

Element layout: all elements (the data region first, then the anchor region) are laid out
row-major on a grid of `grid_cols` macro-pixels of `macro_pixel` x `macro_pixel` mirrors, the grid
centred on the DMD. Data and anchor regions are therefore disjoint. Mirrors outside the grid are
OFF (0). Camera pixel id = y * sensor_width + x (global sensor index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigurationError, InputError


@dataclass(frozen=True)
class DmdLayout:
    """Placement of `n_data + n_anchor` input elements on a `dmd_width` x `dmd_height` DMD."""

    n_data: int
    n_anchor: int
    macro_pixel: int
    grid_cols: int
    dmd_width: int = 1920
    dmd_height: int = 1080

    def __post_init__(self) -> None:
        if self.n_data < 1 or self.n_anchor < 0:
            raise ConfigurationError(
                f"DmdLayout needs n_data >= 1 and n_anchor >= 0, got {self.n_data}, {self.n_anchor}"
            )
        if self.macro_pixel < 1 or self.grid_cols < 1:
            raise ConfigurationError("DmdLayout needs macro_pixel >= 1 and grid_cols >= 1")
        if self.grid_cols * self.macro_pixel > self.dmd_width or (
            self.grid_rows * self.macro_pixel > self.dmd_height
        ):
            raise ConfigurationError(
                f"{self.n_elements} elements of {self.macro_pixel}x{self.macro_pixel} mirrors in "
                f"{self.grid_cols} columns do not fit a {self.dmd_width}x{self.dmd_height} DMD; "
                "use fewer inputs or a smaller macro-pixel"
            )

    @property
    def n_elements(self) -> int:
        """Data plus anchor elements."""
        return self.n_data + self.n_anchor

    @property
    def grid_rows(self) -> int:
        """Rows of macro-pixels the elements occupy."""
        return math.ceil(self.n_elements / self.grid_cols)

    @property
    def origin(self) -> tuple[int, int]:
        """(x0, y0) of the grid's top-left mirror; the grid is centred on the DMD."""
        x0 = (self.dmd_width - self.grid_cols * self.macro_pixel) // 2
        y0 = (self.dmd_height - self.grid_rows * self.macro_pixel) // 2
        return x0, y0

    @classmethod
    def fit(
        cls,
        n_data: int,
        n_anchor: int,
        dmd_width: int = 1920,
        dmd_height: int = 1080,
        max_macro_pixel: int | None = 16,
    ) -> DmdLayout:
        """The layout with the largest square macro-pixel (<= max_macro_pixel; None: no cap,
        as large as the DMD allows) that fits.

        Raises ConfigurationError when the elements do not fit even at one mirror each.
        """
        n = n_data + n_anchor
        if n_data < 1 or n_anchor < 0:
            raise ConfigurationError(
                f"n_data must be >= 1 and n_anchor >= 0, got {n_data}, {n_anchor}"
            )
        if n > dmd_width * dmd_height:
            raise ConfigurationError(
                f"{n} input elements (data {n_data} + anchor {n_anchor}) exceed the "
                f"{dmd_width}x{dmd_height} DMD's {dmd_width * dmd_height} mirrors; reduce n_in"
            )
        cap = max_macro_pixel if max_macro_pixel is not None else min(dmd_width, dmd_height)
        for mp in range(cap, 0, -1):
            cols = dmd_width // mp
            if math.ceil(n / cols) * mp <= dmd_height:
                # narrowest grid with that many rows keeps the pattern compact
                rows = math.ceil(n / cols)
                cols = math.ceil(n / rows)
                return cls(n_data, n_anchor, mp, cols, dmd_width, dmd_height)
        raise ConfigurationError(f"{n} elements do not fit the DMD")  # unreachable in practice

    def element_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of each element's top-left mirror, each shape (n_elements,) int64."""
        idx = np.arange(self.n_elements, dtype=np.int64)
        x0, y0 = self.origin
        return x0 + (idx % self.grid_cols) * self.macro_pixel, y0 + (idx // self.grid_cols) * (
            self.macro_pixel
        )

    def render(self, elements: np.ndarray) -> np.ndarray:
        """Mirror images for element patterns.

        elements: (B, n_elements) or (n_elements,) of {0, 1}. Returns (B, dmd_height, dmd_width)
        bool (or (dmd_height, dmd_width) for a single pattern); mirrors outside the grid are OFF.
        """
        e = np.asarray(elements)
        single = e.ndim == 1
        e = np.atleast_2d(e)
        if e.ndim != 2 or e.shape[1] != self.n_elements:
            raise InputError(
                f"patterns must have shape (B, {self.n_elements}), got {np.shape(elements)}"
            )
        b = e.shape[0]
        grid = np.zeros((b, self.grid_rows * self.grid_cols), dtype=bool)
        grid[:, : self.n_elements] = e != 0
        grid = grid.reshape(b, self.grid_rows, self.grid_cols)
        mp = self.macro_pixel
        block = np.repeat(np.repeat(grid, mp, axis=1), mp, axis=2)
        out = np.zeros((b, self.dmd_height, self.dmd_width), dtype=bool)
        x0, y0 = self.origin
        out[:, y0 : y0 + block.shape[1], x0 : x0 + block.shape[2]] = block
        return out[0] if single else out

    def sample(self, mirrors: np.ndarray) -> np.ndarray:
        """Fraction of ON mirrors in each element's macro-pixel: the element amplitude seen
        by the optics. mirrors: (B, H, W) or (H, W) bool. Returns (B, n_elements) float32."""
        m = np.asarray(mirrors)
        single = m.ndim == 2
        m = m[None] if single else m
        if m.ndim != 3 or m.shape[1:] != (self.dmd_height, self.dmd_width):
            raise InputError(
                f"mirror images must be ({self.dmd_height}, {self.dmd_width}), "
                f"got {np.shape(mirrors)}"
            )
        out = self._block_means(m[:, self._grid_rows_slice, self._grid_cols_slice])
        return out[0] if single else out

    def sample_bitplane(self, words: np.ndarray, bit: int) -> np.ndarray:
        """sample() of bit `bit` of a (dmd_height, dmd_width) integer image (e.g. a DLPC900
        24-bit pattern image), decoding only the mirrors under the element grid. Returns
        (n_elements,) float32."""
        w = np.asarray(words)
        if w.shape != (self.dmd_height, self.dmd_width) or w.dtype.kind not in "iu":
            raise InputError(
                f"a pattern image must be ({self.dmd_height}, {self.dmd_width}) integers, got "
                f"{w.shape} {w.dtype}"
            )
        sub = (w[self._grid_rows_slice, self._grid_cols_slice] >> bit) & 1
        return self._block_means(sub[None])[0]

    @property
    def _grid_rows_slice(self) -> slice:
        y0 = self.origin[1]
        return slice(y0, y0 + self.grid_rows * self.macro_pixel)

    @property
    def _grid_cols_slice(self) -> slice:
        x0 = self.origin[0]
        return slice(x0, x0 + self.grid_cols * self.macro_pixel)

    def _block_means(self, sub: np.ndarray) -> np.ndarray:
        """(B, n_elements) fraction of ON mirrors per macro-pixel of (B, grid mirrors) images."""
        mp = self.macro_pixel
        b = sub.shape[0]
        blocks = sub.astype(np.float32).reshape(b, self.grid_rows, mp, self.grid_cols, mp)
        return blocks.mean(axis=(2, 4)).reshape(b, -1)[:, : self.n_elements]


@dataclass(frozen=True)
class CameraRoi:
    """A rectangle of the camera sensor (GenICam OffsetX/OffsetY/Width/Height), in pixels."""

    offset_x: int
    offset_y: int
    width: int
    height: int
    sensor_width: int
    sensor_height: int

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or self.offset_x < 0 or self.offset_y < 0:
            raise ConfigurationError(f"invalid camera ROI {self}")
        if self.offset_x + self.width > self.sensor_width or (
            self.offset_y + self.height > self.sensor_height
        ):
            raise ConfigurationError(
                f"camera ROI {self.width}x{self.height}+{self.offset_x}+{self.offset_y} exceeds "
                f"the {self.sensor_width}x{self.sensor_height} sensor"
            )

    @property
    def n_pixels(self) -> int:
        """Pixels in the ROI."""
        return self.width * self.height

    def pixel_ids(self) -> np.ndarray:
        """Global sensor ids (y * sensor_width + x) of the ROI, row-major, int64."""
        ys = np.arange(self.offset_y, self.offset_y + self.height, dtype=np.int64)
        xs = np.arange(self.offset_x, self.offset_x + self.width, dtype=np.int64)
        return (ys[:, None] * self.sensor_width + xs[None, :]).ravel()

    def columns(self, pixel_ids: np.ndarray) -> np.ndarray:
        """Column of each global sensor id within a frame of this ROI (row-major), int64.
        Raises InputError unless pixel_ids is a non-empty 1-D integer array inside the ROI."""
        ids = np.asarray(pixel_ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise InputError("output pixels must be a non-empty 1-D array of integer ids")
        ids = ids.astype(np.int64)
        x, y = ids % self.sensor_width, ids // self.sensor_width
        inside = (
            (ids >= 0)
            & (x >= self.offset_x)
            & (x < self.offset_x + self.width)
            & (y >= self.offset_y)
            & (y < self.offset_y + self.height)
        )
        if not inside.all():
            raise InputError(
                f"output pixels must all lie inside the camera ROI {self.width}x{self.height}"
                f"+{self.offset_x}+{self.offset_y}; {int((~inside).sum())} do not"
            )
        return (y - self.offset_y) * self.width + (x - self.offset_x)

    @classmethod
    def centred(cls, n_pixels: int, sensor_width: int, sensor_height: int) -> CameraRoi:
        """The most square centred ROI holding at least n_pixels pixels."""
        if n_pixels < 1:
            raise ConfigurationError(f"camera ROI needs at least one pixel, got {n_pixels}")
        if n_pixels > sensor_width * sensor_height:
            raise ConfigurationError(
                f"{n_pixels} output pixels exceed the {sensor_width}x{sensor_height} camera; "
                "reduce n_out"
            )
        w = min(sensor_width, max(1, math.ceil(math.sqrt(n_pixels))))
        h = math.ceil(n_pixels / w)
        if h > sensor_height:
            h = sensor_height
            w = math.ceil(n_pixels / h)
        return cls(
            (sensor_width - w) // 2, (sensor_height - h) // 2, w, h, sensor_width, sensor_height
        )


def _whole(name: str, value: object) -> int:
    """value as a non-negative int; ValueError for bools, floats, strings, negatives."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"geometry field {name} must be a whole number >= 0, got {value!r}")
    return int(value)


def _four(name: str, value: object) -> tuple[int, int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError(f"geometry field {name} must hold 4 whole numbers, got {value!r}")
    a, b, c, d = (_whole(f"{name}[{i}]", v) for i, v in enumerate(value))
    return a, b, c, d


@dataclass(frozen=True)
class ProjectionGeometry:
    """The geometry a calibration record is valid for, compared by value.

    n_in inputs, n_out outputs; layout: the DmdLayout's (n_data, n_anchor, macro_pixel,
    grid_cols); roi: the CameraRoi's (offset_x, offset_y, width, height), pixels. The record
    file keeps it as a JSON object (`as_dict` / `from_dict`)."""

    n_in: int
    n_out: int
    layout: tuple[int, int, int, int]
    roi: tuple[int, int, int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_in", _whole("n_in", self.n_in))
        object.__setattr__(self, "n_out", _whole("n_out", self.n_out))
        object.__setattr__(self, "layout", _four("layout", self.layout))
        object.__setattr__(self, "roi", _four("roi", self.roi))

    @classmethod
    def of(cls, n_in: int, n_out: int, layout: DmdLayout, roi: CameraRoi) -> ProjectionGeometry:
        """The geometry of a device driven with this layout and ROI."""
        return cls(
            n_in,
            n_out,
            (layout.n_data, layout.n_anchor, layout.macro_pixel, layout.grid_cols),
            (roi.offset_x, roi.offset_y, roi.width, roi.height),
        )

    @classmethod
    def from_dict(cls, data: object) -> ProjectionGeometry:
        """From the record file's object {"n_in", "n_out", "layout": [4], "roi": [4]};
        ValueError if a field is missing or not whole numbers."""
        if not isinstance(data, dict) or set(data) != {"n_in", "n_out", "layout", "roi"}:
            raise ValueError(
                f"geometry must be an object with exactly n_in, n_out, layout and roi, "
                f"got {data!r}"
            )
        return cls(data["n_in"], data["n_out"], data["layout"], data["roi"])

    def as_dict(self) -> dict:
        """The record file's form (JSON-able)."""
        return {"n_in": self.n_in, "n_out": self.n_out, "layout": list(self.layout),
                "roi": list(self.roi)}

    @property
    def n_anchor(self) -> int:
        """Anchor elements of the layout."""
        return self.layout[1]

    @property
    def n_roi_pixels(self) -> int:
        """Pixels in the camera ROI."""
        return self.roi[2] * self.roi[3]

    def __str__(self) -> str:
        x, y, w, h = self.roi
        n_data, n_anchor, mp, cols = self.layout
        return (f"{self.n_in} inputs -> {self.n_out} outputs, DMD layout {n_data} data + "
                f"{n_anchor} anchor elements of {mp}x{mp} mirrors in {cols} columns, camera ROI "
                f"{w}x{h}+{x}+{y}")
