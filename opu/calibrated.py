"""How an OPU comes by its calibration: explicitly, never as a side effect of reading it.

`OPU.calibration` is a plain accessor (CalibrationError before there is one);
`ensure_calibrated()` establishes one on first use (the stored record, else `calibrate()`);
`project()` calls it. A mixin of `opu.OPU`, which provides `calibrate()`, `use_calibration()`
and the state used here (`_cal`, `_store`, `_fresh`, `_shard`, `_source`, `geometry`).
"""

from __future__ import annotations

from typing import Any

from calibration.record import Calibration
from firmware_iface.errors import CalibrationError
from firmware_iface.geometry import ProjectionGeometry

__all__ = ["FirstUseCalibration"]


class FirstUseCalibration:
    """The calibration accessors of an OPU (see the module docstring)."""

    _cal: Calibration | None
    _store: Any
    _fresh: bool
    _shard: Any
    _source: Any
    geometry: ProjectionGeometry

    def calibrate(self) -> Calibration:  # pragma: no cover - provided by opu.OPU
        raise NotImplementedError

    def use_calibration(self, cal: Calibration) -> None:  # pragma: no cover - opu.OPU's
        raise NotImplementedError

    @property
    def calibration(self) -> Calibration:
        """The calibration in use. Raises CalibrationError before there is one: project()
        calibrates on first use, or call ensure_calibrated() / calibrate()."""
        if self._cal is None:
            raise CalibrationError(
                "this OPU is not calibrated yet: call ensure_calibrated() (load the stored "
                "record or calibrate), calibrate() (measure now), or project() (calibrates on "
                "first use)"
            )
        return self._cal

    @property
    def is_calibrated(self) -> bool:
        """True once a calibration is in use."""
        return self._cal is not None

    def ensure_calibrated(self) -> Calibration:
        """The calibration in use, established now if there is none: the record from
        `record_dir` if one exists (and calibration was not "fresh"), else calibrate()."""
        if self._cal is None:
            dev_id = self._source.device_id
            stored = self._store is not None and not self._fresh and self._store.exists(dev_id)
            if self._shard is not None:  # every rank must take the same branch (collectives)
                stored = self._shard.broadcast_object(stored)
            if stored:
                self.use_calibration(self._store.load_for(dev_id, self.geometry))
            else:
                self.calibrate()
        return self._cal  # type: ignore[return-value]
