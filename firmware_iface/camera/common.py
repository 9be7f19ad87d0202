"""What the U3V and GenTL camera drivers share: GenICam features by name, the ROI and pixel
format as last read from them, and the context-manager protocol. A driver sets `features`,
`sensor_width`, `sensor_height` and `_acquiring`, and implements start/stop/close."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..driver_base import DeviceDriver
from ..errors import CameraStateError, DeviceDisconnectedError, InputError
from ..geometry import CameraRoi
from .features import Features
from .pixel_formats import SIGNIFICANT_BITS, PixelFormat, pixel_format

#: pixel formats the drivers unpack -> significant bits
KNOWN_BITS = {f.name: b for f, b in SIGNIFICANT_BITS.items()}
_IMAGE_FORMAT = ("Width", "Height", "OffsetX", "OffsetY", "PixelFormat")


def check_count(value: Any, name: str, unit: str = "") -> int:
    """`value` as an int >= 1 (a count, or milliseconds / bytes with `unit`); InputError for
    anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        what = f" ({unit})" if unit else ""
        raise InputError(f"{name} must be an integer >= 1{what}, got {value!r}")
    return int(value)


def check_frame_id(frame_id: Any, next_id: int) -> int:
    """A skip_to target: an integer >= the next frame id to be read (InputError otherwise)."""
    if isinstance(frame_id, bool) or not isinstance(frame_id, (int, np.integer)):
        raise InputError(f"frame_id must be an integer, got {frame_id!r}")
    if frame_id < next_id:
        raise InputError(
            f"cannot skip back to frame {frame_id}: frames up to {next_id - 1} were already "
            "returned"
        )
    return int(frame_id)


class FeatureCamera(DeviceDriver):
    """Feature access, ROI and pixel format of a GenICam camera, on the DeviceDriver base
    (lifecycle open/closed/lost, thread guard). Drivers implement start/stop/_do_close."""

    device_name = "camera"
    reopen_hint = "open the camera again"
    features: Features
    sensor_width: int
    sensor_height: int
    _acquiring: bool = False

    timeout_ms: int

    def _read_request(self, n: Any, timeout_ms: Any) -> tuple[int, int]:
        """The checked (n, timeout in ms) of a read_frames call; the camera must be usable and
        acquiring (CameraStateError otherwise)."""
        n = check_count(n, "n")
        timeout = self.timeout_ms if timeout_ms is None else check_count(
            timeout_ms, "timeout_ms", "milliseconds"
        )
        self._check_usable()
        if not self._acquiring:
            raise CameraStateError("the camera is not acquiring; call start() before read_frames()")
        return n, timeout

    def start(self) -> None:  # pragma: no cover - implemented by the drivers
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - implemented by the drivers
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One device transaction: usable and not in use by another thread; a vanished device
        marks the driver lost."""
        with self._exclusive():
            try:
                yield
            except DeviceDisconnectedError as e:
                self._mark_lost(e)
                raise
    def get_feature(self, name: str) -> int | float | str | bool:
        """Current value of a GenICam feature (enumerations as their name, e.g. "Mono12p")."""
        self._check_usable()
        return self.features.get(name)

    def set_feature(self, name: str, value: Any) -> None:
        """Write a feature. Host checks from the XML (unknown name, read-only, wrong type, out
        of range, entry unavailable) raise InputError before anything is sent; device refusals
        raise CameraCommandError."""
        self._check_usable()
        self.features.set(name, value)
        if name in _IMAGE_FORMAT:
            self._refresh_format()

    def execute(self, name: str) -> None:
        """Run a command feature (AcquisitionStart and AcquisitionStop go through start/stop)."""
        if name == "AcquisitionStart":
            self.start()
        elif name == "AcquisitionStop":
            self.stop()
        else:
            self.features.execute(name)

    def __getitem__(self, name: str) -> int | float | str | bool:
        return self.get_feature(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set_feature(name, value)

    def _refresh_format(self) -> None:
        f = self.features
        w, h = int(f.get("Width")), int(f.get("Height"))
        ox = int(f.get("OffsetX")) if f.has("OffsetX") else 0
        oy = int(f.get("OffsetY")) if f.has("OffsetY") else 0
        self._roi = CameraRoi(ox, oy, w, h, self.sensor_width, self.sensor_height)
        try:
            self._format: PixelFormat | None = pixel_format(str(f.get("PixelFormat")))
        except InputError:
            self._format = None  # a format this driver cannot unpack; set one before start()

    @property
    def roi(self) -> CameraRoi:
        """The camera's ROI (as last read through its features)."""
        return self._roi

    @property
    def pixel_format(self) -> PixelFormat:
        """The camera's pixel format (CameraStateError when it is one this driver cannot read)."""
        if self._format is None:
            raise CameraStateError(
                f"the camera sends {self.features.get('PixelFormat')}, which this driver cannot "
                f"unpack; set one of {[p.name for p in PixelFormat]}"
            )
        return self._format

    @property
    def acquiring(self) -> bool:
        """True between start() and stop()."""
        return self._acquiring

    def set_roi(self, roi: CameraRoi) -> None:
        """Set OffsetX/OffsetY/Width/Height (offsets zeroed first so every step stays valid).

        Raises InputError before sending when roi is not a CameraRoi of this camera's sensor,
        or has an offset on a camera without OffsetX/OffsetY features.
        """
        if not isinstance(roi, CameraRoi):
            raise InputError(f"set_roi needs a CameraRoi, got {type(roi).__name__}")
        if (roi.sensor_width, roi.sensor_height) != (self.sensor_width, self.sensor_height):
            raise InputError(
                f"ROI is for a {roi.sensor_width}x{roi.sensor_height} sensor, this camera's is "
                f"{self.sensor_width}x{self.sensor_height}"
            )
        has = {n: self.features.has(n) for n in ("OffsetX", "OffsetY")}
        for name, offset in (("OffsetX", roi.offset_x), ("OffsetY", roi.offset_y)):
            if offset and not has[name]:
                raise InputError(f"the camera has no {name} feature: use a ROI at offset 0")
        for name, value in (
            ("OffsetX", 0),
            ("OffsetY", 0),
            ("Width", roi.width),
            ("Height", roi.height),
            ("OffsetX", roi.offset_x),
            ("OffsetY", roi.offset_y),
        ):
            if has.get(name, True):
                self.set_feature(name, value)

    def set_pixel_format(self, fmt: PixelFormat | int | str) -> None:
        """Set PixelFormat (name, PFNC code or PixelFormat)."""
        self.set_feature("PixelFormat", pixel_format(fmt).name)


