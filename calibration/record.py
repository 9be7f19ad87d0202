"""The calibration record: what calibration measured on one device, in one geometry.

`Calibration` holds the arrays `opu.OPU` needs (dark frame, output pixels, anchor, scale) plus
free-form step results. Records are saved as one .npz file (arrays + a JSON header), written
atomically: to a temporary file in the same directory, fsync'ed, then renamed over the old one,
so a crash mid-write leaves the previous record intact.
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import struct
import tempfile
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_iface.errors import CalibrationError, CodecError
from firmware_iface.geometry import ProjectionGeometry

from .results import AnchorSummary, PtcSummary, StabilitySummary, anchor_of, ptc_of, stability_of

RECORD_FORMAT_VERSION = 1
SOFTWARE_VERSION = "0.1.0"
_MAX_RECORD_BYTES = 1 << 31


@dataclass
class Calibration:
    """Calibration of one device for one geometry.

    device_id: identity of the device; geometry: the ProjectionGeometry it is valid for (a dict
    of its file form is converted);
    exposure_us: camera exposure, us; dark_dn: (n_roi,) mean dark frame over the ROI, DN;
    hot_pixels: (n_roi,) bool; output_pixels: (n_out,) global sensor ids used as outputs;
    anchor: (n_anchor,) bool anchor pattern r; anchor_dn: (n_out,) mean dark-subtracted I(r), DN;
    scale_dn: mean DN per unit |T x|^2 (E|T|^2 = 1), so that intensities / scale_dn are in units
    of ON elements; created_s: Unix time; results: step summaries (JSON-able).
    """

    device_id: str
    geometry: ProjectionGeometry
    exposure_us: float
    dark_dn: np.ndarray
    hot_pixels: np.ndarray
    output_pixels: np.ndarray
    anchor: np.ndarray
    anchor_dn: np.ndarray
    scale_dn: float
    created_s: float = field(default_factory=time.time)
    software_version: str = SOFTWARE_VERSION
    results: dict = field(default_factory=dict)
    extra_arrays: dict = field(default_factory=dict)

    _ARRAYS = ("dark_dn", "hot_pixels", "output_pixels", "anchor", "anchor_dn")

    def __post_init__(self) -> None:
        if isinstance(self.geometry, dict):
            self.geometry = ProjectionGeometry.from_dict(self.geometry)

    @property
    def ptc(self) -> PtcSummary | None:
        """The photon transfer summary, typed (None without a ptc step)."""
        return ptc_of(self.results)

    @property
    def stability(self) -> StabilitySummary | None:
        """The stability summary, typed (None without a stability step)."""
        return stability_of(self.results)

    @property
    def anchor_summary(self) -> AnchorSummary | None:
        """The anchor step's summary, typed."""
        return anchor_of(self.results)

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the record was made."""
        return (time.time() if now is None else now) - self.created_s

    def dark_at(self, roi_pixel_ids: np.ndarray, pixel_ids: np.ndarray) -> np.ndarray:
        """Dark frame values for `pixel_ids` (global ids inside the ROI given by roi_pixel_ids)."""
        pos = np.searchsorted(roi_pixel_ids, pixel_ids)
        return self.dark_dn[pos]

    def check_matches(self, device_id: str, geometry: ProjectionGeometry) -> None:
        """Raise CalibrationError unless this record is for that device and geometry."""
        if device_id != self.device_id:
            raise CalibrationError(
                f"calibration record is for device {self.device_id!r}, not {device_id!r}: "
                "run `opu calibrate all` on this device"
            )
        if geometry != self.geometry:
            raise CalibrationError(
                f"calibration record is for geometry ({self.geometry}), not ({geometry}): "
                "run `opu calibrate all` with these n_in/n_out"
            )

    # ---- file ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the record atomically to `path` (.npz). Returns the path."""
        path = Path(path)
        header = {
            "format_version": RECORD_FORMAT_VERSION,
            "device_id": self.device_id,
            "geometry": self.geometry.as_dict(),
            "exposure_us": self.exposure_us,
            "scale_dn": self.scale_dn,
            "created_s": self.created_s,
            "software_version": self.software_version,
            "results": self.results,
            "extra_arrays": sorted(self.extra_arrays),
        }
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        arrays.update({f"extra__{k}": v for k, v in self.extra_arrays.items()})
        buf = io.BytesIO()
        np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        except OSError as exc:
            raise CalibrationError(
                f"cannot write calibration record in {path.parent}: {exc.strerror}; "
                "choose a writable directory (--record-dir)"
            ) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp made it 0600
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        remove_stale_temp_files(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        """Read a record; raises CodecError for a malformed file, CalibrationError if missing."""
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise CalibrationError(
                f"no calibration record at {path}: run `opu calibrate all`"
            ) from exc
        if size > _MAX_RECORD_BYTES:
            raise CodecError(f"{path} is {size} bytes, too large for a calibration record")
        try:
            _check_members(path)
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                if not isinstance(header, dict):
                    raise ValueError(f"header is a JSON {type(header).__name__}, not an object")
                names = header.get("extra_arrays", [])
                if not isinstance(names, list) or not all(isinstance(k, str) for k in names):
                    raise ValueError("header field extra_arrays is not a list of names")
                arrays = {k: np.array(z[k]) for k in cls._ARRAYS}
                extras = {k: np.array(z[f"extra__{k}"]) for k in names}
        except _READ_ERRORS as exc:
            raise CodecError(
                f"{path} is not a readable calibration record ({type(exc).__name__}: {exc}); "
                "delete it and run `opu calibrate all`"
            ) from exc
        if header.get("format_version") != RECORD_FORMAT_VERSION:
            raise CodecError(
                f"{path} has calibration format {header.get('format_version')!r}, this software "
                f"reads {RECORD_FORMAT_VERSION}; run `opu calibrate all` to refresh it"
            )
        try:
            cal = cls(
                device_id=str(header["device_id"]),
                geometry=ProjectionGeometry.from_dict(header["geometry"]),
                exposure_us=float(header["exposure_us"]),
                scale_dn=float(header["scale_dn"]),
                created_s=float(header["created_s"]),
                software_version=str(header["software_version"]),
                results=dict(header.get("results", {})),
                extra_arrays=extras,
                **arrays,
            )
        except KeyError as exc:
            raise CodecError(f"{path} misses calibration field {exc}; recalibrate") from exc
        except (TypeError, ValueError) as exc:
            raise CodecError(f"{path} has a calibration field of the wrong type ({exc}); "
                             "recalibrate") from exc
        problem = _inconsistency(cal)
        if problem:
            raise CodecError(f"{path} is not a consistent calibration record: {problem}; "
                             "delete it and run `opu calibrate all`")
        return cal


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Everything reading a damaged or hostile .npz can raise (zipfile, zlib, numpy's .npy parser).
_READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    zipfile.BadZipFile,
    EOFError,
    TypeError,
    UnicodeDecodeError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    struct.error,
    OverflowError,
)


STALE_TEMP_S = 3600.0  # no save takes this long: an older temp file's writer is gone


def remove_stale_temp_files(path: str | os.PathLike, older_than_s: float = STALE_TEMP_S) -> int:
    """Delete the temp files that writers of `path` killed mid-save left behind
    (`<name>*.tmp` beside it, last modified more than older_than_s seconds ago; younger ones
    may belong to a save in progress). Returns how many were removed; errors are ignored."""
    path = Path(path)
    now = time.time()
    removed = 0
    for tmp in path.parent.glob(glob.escape(path.name) + "*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _check_members(path: Path) -> None:
    """Refuse .npz members that could make loading use unbounded memory: compressed members
    (Calibration.save never writes them) and .npy headers announcing more data than the member
    holds (numpy allocates the announced array before reading it)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise ValueError(f"member {info.filename} is compressed")
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise ValueError(
                    f"member {info.filename} announces shape {shape} of {dtype}, more than "
                    f"its {info.file_size} bytes"
                )


def _inconsistency(cal: Calibration) -> str:
    """What is wrong with a loaded record's values and array shapes ('' when nothing)."""
    g = cal.geometry  # whole numbers (checked by ProjectionGeometry)
    n_out, n_anchor, n_roi = g.n_out, g.n_anchor, g.n_roi_pixels
    if not (math.isfinite(cal.exposure_us) and cal.exposure_us > 0):
        return f"exposure_us={cal.exposure_us} is not a positive number"
    if not (math.isfinite(cal.scale_dn) and cal.scale_dn > 0):
        return f"scale_dn={cal.scale_dn} is not a positive number"
    expect = {
        "dark_dn": (n_roi, "f"),
        "hot_pixels": (n_roi, "b"),
        "output_pixels": (n_out, "iu"),
        "anchor": (n_anchor, "b"),
        "anchor_dn": (n_out, "f"),
    }
    for name, (n, kinds) in expect.items():
        a = getattr(cal, name)
        if a.shape != (n,) or a.dtype.kind not in kinds:
            return f"{name} is {a.dtype} of shape {a.shape}, expected ({n},) of kind {kinds!r}"
    if not (np.isfinite(cal.dark_dn).all() and np.isfinite(cal.anchor_dn).all()):
        return "dark_dn or anchor_dn holds NaN or infinity"
    if (cal.anchor_dn <= 0).any():
        return "anchor_dn holds values <= 0"
    return ""


def warn_if_stale(cal: Calibration, max_age_s: float, command: str = "opu calibrate all") -> None:
    """Warn (UserWarning) when the record is older than max_age_s."""
    age = cal.age_s()
    if age > max_age_s:
        warnings.warn(
            f"calibration is {age / 60:.0f} min old, beyond the {max_age_s / 60:.0f} min the "
            f"medium stays stable; refresh it with `{command}`",
            stacklevel=3,
        )
