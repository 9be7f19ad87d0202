"""`lightonml.context`: the metadata of a transform (`Context`) and the numpy array that carries
it (`ContextArray`).

Fields are filled from the acquisition that produced the array: exposure_us and frametime_us
are the camera exposure and frame period used, output_roi the camera ROI read out and
input_roi the DMD region showing the features, both as ((x, y) offset, (width, height)) in
pixels / mirrors; start and end are datetimes; n_ones is the mean number of ON mirrors of the
features' region per input vector; fmt_type and fmt_factor say how features were laid out
(`FeaturesFormat.lined`, macro-pixel side in mirrors).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from firmware_iface.errors import InputError

from .types import FeaturesFormat

Roi = tuple[tuple[int, int], tuple[int, int]]


def from_epoch(datetime_or_epoch: dt.datetime | float) -> dt.datetime:
    """A datetime from a datetime or a POSIX timestamp (seconds)."""
    if isinstance(datetime_or_epoch, dt.datetime):
        return datetime_or_epoch
    if isinstance(datetime_or_epoch, (int, float)) and not isinstance(datetime_or_epoch, bool):
        return dt.datetime.fromtimestamp(float(datetime_or_epoch))
    raise InputError(f"need a datetime or an epoch in seconds, got {datetime_or_epoch!r}")


class Context:
    """Describes the acquisition behind an OPU transform (lightonml's fields and methods)."""

    def __init__(
        self,
        frametime: float | None = None,
        exposure: float | None = None,
        output_roi: Roi | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        gain: float | None = None,
        input_roi: Roi | None = None,
        n_ones: float | None = None,
        fmt_type: FeaturesFormat | None = None,
        fmt_factor: int | None = None,
    ) -> None:
        self.info: Any = None
        self.exposure_us = exposure
        self.frametime_us = frametime
        self.output_roi_upper, self.output_roi_shape = output_roi or (None, None)
        self.input_roi_upper, self.input_roi_shape = input_roi or (None, None)
        self.start = start
        self.end = end
        self.gain = gain
        self.n_ones = n_ones
        self.fmt_type = fmt_type
        self.fmt_factor = fmt_factor

    @property
    def output_roi(self) -> Roi | None:
        """((x, y) offset, (width, height)) of the camera ROI, pixels."""
        if self.output_roi_upper is None:
            return None
        return (self.output_roi_upper, self.output_roi_shape)

    @property
    def input_roi(self) -> Roi | None:
        """((x, y) offset, (width, height)) of the features' DMD region, mirrors."""
        if self.input_roi_upper is None:
            return None
        return (self.input_roi_upper, self.input_roi_shape)

    def add_info(self, info: Any) -> None:
        """Attach free-form information (kept by as_dict under 'info')."""
        self.info = info

    @staticmethod
    def from_timestamps(start: dt.datetime | float, end: dt.datetime | float | None = None):
        """A context with only its times known (other fields -1, as lightonml)."""
        return Context(
            -1, -1, ((-1, -1), (-1, -1)), from_epoch(start), from_epoch(end) if end else None
        )

    def as_dict(self) -> dict:
        """The fields as a dict; optional fields only when set."""
        d: dict[str, Any] = {
            "exposure_us": self.exposure_us,
            "frametime_us": self.frametime_us,
            "output_roi": (self.output_roi_upper, self.output_roi_shape),
            "start": self.start,
        }
        optional = {
            "gain_dB": self.gain,
            "info": self.info,
            "end": self.end,
            "input_roi": self.input_roi,
            "n_ones": self.n_ones,
            "fmt_type": self.fmt_type.name if self.fmt_type is not None else None,
            "fmt_factor": self.fmt_factor,
        }
        d.update({k: v for k, v in optional.items() if v is not None})
        return d

    def as_flat_dict(self) -> dict:
        """as_dict with the ROIs split into output_roi_position_0/1, output_roi_shape_0/1 (and
        input_roi_...)."""
        d = self.as_dict()
        for name in ("output_roi", "input_roi"):
            roi = d.pop(name, None)
            if roi is not None and roi[0] is not None:
                for i in (0, 1):
                    d[f"{name}_position_{i}"] = roi[0][i]
                    d[f"{name}_shape_{i}"] = roi[1][i]
        return d

    @staticmethod
    def from_dict(d: dict) -> Context:
        """The inverse of as_dict / as_flat_dict."""

        def roi(name: str) -> Roi | None:
            if d.get(name) is not None:
                return tuple(tuple(v) for v in d[name])  # type: ignore[return-value]
            if f"{name}_position_0" in d:
                return (
                    (d[f"{name}_position_0"], d[f"{name}_position_1"]),
                    (d[f"{name}_shape_0"], d[f"{name}_shape_1"]),
                )
            return None

        try:
            fmt = d.get("fmt_type")
            ctx = Context(
                d["frametime_us"],
                d["exposure_us"],
                roi("output_roi"),
                d["start"],
                d.get("end"),
                d.get("gain_dB", d.get("gain_db")),
                roi("input_roi"),
                d.get("n_ones"),
                FeaturesFormat[fmt] if isinstance(fmt, str) else fmt,
                d.get("fmt_factor"),
            )
        except KeyError as exc:
            raise InputError(f"context dict lacks the key {exc}") from None
        ctx.add_info(d.get("info"))
        return ctx

    def __str__(self) -> str:
        return str(self.as_dict())

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


class ContextArray(np.ndarray):
    """A numpy array with a `context` attribute (kept by views, slices and pickling)."""

    context: Context | None

    def __new__(cls, input_array: Any, context: Context | None) -> ContextArray:
        obj = np.asarray(input_array).view(cls)
        obj.context = context
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        if obj is not None:
            self.context = getattr(obj, "context", None)

    def __reduce__(self):
        rebuild, args, state = super().__reduce__()[:3]
        return rebuild, args, (state, self.context)

    def __setstate__(self, state: Any) -> None:
        array_state, self.context = state
        super().__setstate__(array_state)
