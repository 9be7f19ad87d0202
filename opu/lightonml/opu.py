"""`lightonml.OPU` on this stack: fit1d/fit2d set the input shape, transform gives |R x|^2 and
linear_transform R x, both through `opu.OPU.project()` (intensity / linear mode).

Each distinct features width gets its own `opu.OPU` (n_in = n_features with
InputRoiStrategy.full/auto: macro-pixels fill the DMD; n_in = max_n_features with `small`:
features use the first elements), created and calibrated at the first fit for it and kept, so
repeated fits and transforms use one matrix. Outputs are float32: transform in units where
E[y_i] = number of ON features (E|R_ij|^2 = 1), linear_transform R x with R_ij ~ N(0, 1) before
`rescale`.
"""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import math
from typing import Any

import numpy as np

import opu as stack_api
from firmware_iface.errors import ConfigurationError, InputError

from ..arrays import is_torch
from ..encoding import classify
from .context import Context, ContextArray
from .encoding.core import NoDecoding, NoEncoding
from .encoding.core import as_numpy as numpy_of
from .inputs import InputTraits, rows_of, traits_of
from .internal.shared import (
    ROI_MARGIN,
    SIM_CALIBRATIONS,
    accepts,
    dmd_and_camera,
    on_level,
    shared_key,
)
from .internal.simulated_device import STACK_KEYS, SimulatedOpuDevice, resolve_device
from .types import FeaturesFormat, InputRoiStrategy, OutputRescaling

_PBAR_ROWS = 1024  # vectors per part when a progress bar is shown


class NotFittedError(InputError, AssertionError):
    """transform before fit1d/fit2d (an AssertionError too: lightonml asserted, and its
    documentation catches AssertionError)."""


class NotOpenError(ConfigurationError, AssertionError):
    """transform on a closed OPU (open() or `with opu:` first)."""


def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


class OPU:
    """lightonml's OPU interface (parameters and defaults as lightonml 1.4); see
    docs/lightonml.md for what each does on this stack.

    opu_device: a SimulatedOpuDevice (seed, noise) or a device string of this stack ('sim',
    'emu', 'hw:<config.json>'). simulated=True: SimulatedOpuDevice(). Otherwise config_file (or
    $OPU_LIGHTONML_CONFIG) names a JSON config {"device": ..., opu.OPU arguments}, which
    config_override updates. max_n_features: the widest input (the device's capacity for
    hardware and emulated devices, as lightonml).
    """

    def __init__(
        self,
        n_components: int = 200000,
        opu_device: Any = None,
        max_n_features: int = 1000,
        config_file: str = "",
        config_override: dict | None = None,
        verbose_level: int = -1,
        input_roi_strategy: InputRoiStrategy = InputRoiStrategy.full,
        open_at_init: bool | None = None,
        disable_pbar: bool = False,
        simulated: bool = False,
        rescale: OutputRescaling | str = OutputRescaling.variance,
    ) -> None:
        self._spec, self._sim = resolve_device(opu_device, simulated, config_file, config_override)
        self._dmd, self._camera = dmd_and_camera(self._spec)
        capacity = self._dmd[0] * self._dmd[1] // 2  # data + anchor regions share the DMD
        self._max_n_features = (
            _positive_int("max_n_features", max_n_features) if self.simulated else capacity
        )
        if self._max_n_features > capacity:
            raise ConfigurationError(
                f"max_n_features={max_n_features} exceeds the DMD's capacity of {capacity}"
            )
        self._stacks: dict[int, Any] = {}
        self._calibrations: dict[tuple[int, int], Any] = {}
        self._traits: InputTraits | None = None
        self._active = False
        self.n_components = n_components
        self.input_roi_strategy = input_roi_strategy
        self.rescale = rescale
        if verbose_level != -1:  # deprecated in lightonml for set_verbose_level; still honoured
            from . import set_verbose_level

            set_verbose_level(verbose_level)
        self.verbose_level = verbose_level
        self.disable_pbar = disable_pbar
        if open_at_init is None or open_at_init:
            self.open()

    # ---- properties ---------------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """True for simulated=True or a SimulatedOpuDevice (a config naming 'sim' plays the
        machine's OPU, as lightonml's config named the hardware)."""
        return self._sim is not None

    @property
    def config(self) -> dict:
        """The device string and opu.OPU arguments in use (a copy)."""
        return dict(self._spec)

    @property
    def device(self) -> Any:
        """The SimulatedOpuDevice, or the opu.OPU of the latest fit (None before it)."""
        if self._sim is not None:
            return self._sim
        return self._stacks.get(self._n_in()) if self._traits else None

    @property
    def n_components(self) -> int:
        return self._n_components

    @n_components.setter
    def n_components(self, value: int) -> None:
        value = _positive_int("n_components", value)
        if value > self.max_n_components:
            raise ConfigurationError(
                f"n_components={value} exceeds the camera's {self.max_n_components} outputs"
            )
        if getattr(self, "_n_components", None) != value:
            self._close_stacks()
            self._n_components = value
            if self._traits is not None and self._active:
                self._stack_for(self._traits)

    @property
    def max_n_components(self) -> int:
        """The most outputs the camera gives."""
        return int((self._camera[0] * self._camera[1] - 16) * ROI_MARGIN)

    @property
    def max_n_features(self) -> int:
        return self._max_n_features

    @max_n_features.setter
    def max_n_features(self, value: int) -> None:
        if not self.simulated:
            raise AttributeError("max_n_features can't be set if the device is real")
        self._max_n_features = _positive_int("max_n_features", value)
        if self.input_roi_strategy is InputRoiStrategy.small:
            self._close_stacks()

    @property
    def rescale(self) -> OutputRescaling:
        return self._rescale

    @rescale.setter
    def rescale(self, value: OutputRescaling | str) -> None:
        if isinstance(value, str):
            try:
                value = OutputRescaling[value.lower()]
            except KeyError:
                raise ConfigurationError(
                    f"rescale must be one of {[r.name for r in OutputRescaling]}, got {value!r}"
                ) from None
        if not isinstance(value, OutputRescaling):
            raise ConfigurationError(f"rescale must be an OutputRescaling, got {value!r}")
        self._rescale = value

    @property
    def input_roi_strategy(self) -> InputRoiStrategy:
        return self._strategy

    @input_roi_strategy.setter
    def input_roi_strategy(self, value: InputRoiStrategy) -> None:
        if not isinstance(value, InputRoiStrategy):
            raise ConfigurationError(
                f"input_roi_strategy must be an InputRoiStrategy, got {value!r}"
            )
        self._strategy = value

    # ---- lifecycle ----------------------------------------------------------------------
    def open(self) -> None:
        """Acquire the device (the opu.OPU of each fit opens when first needed)."""
        self._active = True
        if self._sim is not None:
            self._sim.open()

    def close(self) -> None:
        """Release the device; calibrations are kept for the next open()."""
        self._close_stacks()
        self._active = False
        if self._sim is not None:
            self._sim.close()

    def __enter__(self) -> OPU:
        self._was_active = self._active
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        if not getattr(self, "_was_active", False):
            self.close()

    def _close_stacks(self) -> None:
        for s in self._stacks.values():
            s.close()
        self._stacks.clear()

    def __getstate__(self) -> dict:
        self._close_stacks()
        return {k: v for k, v in self.__dict__.items() if k != "_stacks"}

    def __deepcopy__(self, memo: dict) -> OPU:
        """A copy that opens its own device when used; self stays open (sklearn's clone)."""
        new = OPU.__new__(OPU)
        memo[id(self)] = new
        state = {k: copy.deepcopy(v, memo) for k, v in self.__dict__.items() if k != "_stacks"}
        new.__setstate__(state)
        return new

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._stacks = {}

    # ---- fit ----------------------------------------------------------------------------
    def fit1d(self, X: Any = None, n_features: int | None = None, packed: bool = False,
              online: bool = False, **override: Any) -> None:
        """Set up transforms of 1-D vectors, from X or from n_features (8 x bytes if packed).
        online: accepted (single vectors are always fine here)."""
        self._fit(X, n_features, packed, False, override)

    def fit2d(self, X: Any = None, n_features: tuple[int, int] | None = None,
              packed: bool = False, online: bool = False, **override: Any) -> None:
        """Set up transforms of 2-D vectors (height, width), from X or n_features (needed
        when packed). The features are laid out row-major on the DMD."""
        self._fit(X, n_features, packed, True, override)

    def fit_transform1d(self, X: Any, packed: bool = False, **override: Any) -> Any:
        """fit1d(X) then transform(X)."""
        self.fit1d(X, None, packed, False, **override)
        return self.transform(X)

    def fit_transform2d(self, X: Any, packed: bool = False, n_2d_features: Any = None,
                        **override: Any) -> Any:
        """fit2d(X) then transform(X)."""
        self.fit2d(X, n_2d_features, packed, False, **override)
        return self.transform(X)

    def transform1d(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("transform1d is deprecated: use fit1d and transform")

    def transform2d(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("transform2d is deprecated: use fit2d and transform")

    def _fit(self, X: Any, n_features: Any, packed: bool, is_2d: bool, override: dict) -> None:
        unknown = set(override) - {"exposure_us"}
        if unknown:
            raise ConfigurationError(
                f"unsupported fit settings {sorted(unknown)}: this stack accepts exposure_us"
            )
        if "exposure_us" in override:
            self._spec["exposure_us"] = override["exposure_us"]
            self._close_stacks()
            self._calibrations.clear()
        x = numpy_of(X) if X is not None else None
        traits = traits_of(x, n_features, packed, is_2d)
        if traits.n_features_s > self._max_n_features:
            raise InputError(
                f"input's number of features ({traits.n_features_s}) can't be greater than "
                f"max_n_features={self._max_n_features}"
            )
        self._traits = traits
        on_fraction = None
        if x is not None and x.size:
            rows, _ = rows_of(x, traits)
            on_fraction = float(np.count_nonzero(rows)) / rows.size
        self._on_fraction = on_fraction
        if self._active:  # else the device is set up by the first transform after open()
            self._stack_for(traits, on_fraction)

    def _n_in(self, traits: InputTraits | None = None) -> int:
        t = traits or self._traits
        if self._strategy is InputRoiStrategy.small:
            return self._max_n_features
        return t.n_features_s  # type: ignore[union-attr]

    def _stack_for(self, traits: InputTraits, on_fraction: float | None = None) -> Any:
        n_in = self._n_in(traits)
        s = self._stacks.get(n_in)
        if s is None:
            s = self._new_stack(n_in, on_fraction)
        if self._sim is not None:
            self._sim.stack = s
        return s

    def _new_stack(self, n_in: int, on_fraction: float | None) -> Any:
        kwargs = {k: self._spec[k] for k in STACK_KEYS if k in self._spec}
        if on_fraction is not None and "expected_on_fraction" not in kwargs:
            kwargs["expected_on_fraction"] = on_level(on_fraction)
        shared = shared_key(self._spec, n_in, self._n_components, kwargs)
        cal = self._calibrations.get((n_in, self._n_components)) or SIM_CALIBRATIONS.get(shared)
        if cal is not None:
            kwargs["calibration"] = cal
        s = stack_api.OPU(self._spec["device"], n_in=n_in, n_out=self._n_components, **kwargs)
        try:
            if "calibration" in kwargs or "record_dir" in kwargs:
                cal = s.ensure_calibrated()  # the given or stored record, or measured now
            else:
                cal = s.calibrate()
                if shared is not None:
                    SIM_CALIBRATIONS[shared] = cal
        except BaseException:
            s.close()
            raise
        self._calibrations[(n_in, self._n_components)] = cal
        self._stacks[n_in] = s
        return s

    def _check_active(self) -> None:
        if not self._active:
            raise NotOpenError("OPU device isn't active, use opu.open() or \"with opu:\"")

    # ---- transforms ---------------------------------------------------------------------
    def transform(self, X: Any, encoder_cls: Any = NoEncoding, decoder_cls: Any = NoDecoding):
        """|R x|^2 of binary vectors (after encoder_cls), shaped batch + (n_components,),
        float32; a ContextArray for numpy input, a torch tensor for torch input."""
        return self._run(X, encoder_cls, decoder_cls, linear=False)

    def linear_transform(self, X: Any, encoder_cls: Any = NoEncoding,
                         decoder_cls: Any = NoDecoding):
        """R x with rescale applied after decoding; X binary, ternary or real-valued (real
        values are bit-plane encoded by the stack, 8 magnitude bits), packed binary too."""
        return self._run(X, encoder_cls, decoder_cls, linear=True)

    def _run(self, X: Any, encoder_cls: Any, decoder_cls: Any, linear: bool) -> Any:
        if self._traits is None:
            raise NotFittedError(
                f"Call fit1d or fit2d before {'linear_transform' if linear else 'transform'}"
            )
        self._check_active()
        encoder = encoder_cls() if inspect.isclass(encoder_cls) else encoder_cls
        x_enc = encoder.transform(X)
        torch_in = is_torch(x_enc)
        rows, batch = rows_of(numpy_of(x_enc), self._traits)
        if rows.shape[0] == 0:
            raise InputError("empty batch: give at least one input vector")
        if not linear and classify(rows) != "binary":  # one pass (np.isin sorts: 30 us)
            raise InputError(
                "The input array should be binary - contain only 0s and 1s: use an encoder "
                "(opu.lightonml.encoding.base) or linear_transform for real values"
            )
        stack = self._stack_for(self._traits, getattr(self, "_on_fraction", None))
        if rows.shape[1] < stack.n_in:
            rows = np.pad(rows, ((0, 0), (0, stack.n_in - rows.shape[1])))
        start = dt.datetime.now()
        y = self._project(stack, rows, "linear" if linear else "intensity")
        ctx = self._context(stack, rows, start, dt.datetime.now())
        y = y.reshape(*batch, self._n_components)
        decoder = decoder_cls
        params = encoder.get_params() if hasattr(encoder, "get_params") else None
        if inspect.isclass(decoder_cls):
            takes = params is not None and accepts(decoder_cls, params)
            decoder = decoder_cls(**params) if takes else decoder_cls()
        elif params is not None and hasattr(decoder, "for_encoding"):
            decoder = decoder.for_encoding(params)
        out = np.asarray(decoder.transform(y), dtype=np.float32)
        if linear:
            out = out / np.float32(self._rescale_factor())
        if torch_in or is_torch(X):
            import torch

            dev = x_enc.device if torch_in else X.device
            return torch.from_numpy(np.ascontiguousarray(out)).to(dev)
        return ContextArray(out, ctx)

    def _project(self, stack: Any, rows: np.ndarray, mode: str) -> np.ndarray:
        """stack.project(rows), in parts under a progress bar at verbose level >= 1 (unless
        disable_pbar) for batches of more than _PBAR_ROWS vectors."""
        from . import get_verbose_level

        n = rows.shape[0]
        if get_verbose_level() < 1 or self.disable_pbar or n <= _PBAR_ROWS:
            return stack.project(rows, mode=mode)
        from rich.progress import Progress

        out = np.empty((n, stack.n_out), dtype=np.float32)
        with Progress(transient=True) as bar:
            task = bar.add_task(f"OPU: {mode} projections", total=n)
            for i in range(0, n, _PBAR_ROWS):
                out[i : i + _PBAR_ROWS] = stack.project(rows[i : i + _PBAR_ROWS], mode=mode)
                bar.advance(task, min(_PBAR_ROWS, n - i))
        return out

    def _rescale_factor(self) -> float:
        if self._rescale is OutputRescaling.variance:
            return math.sqrt(self._traits.n_features_s)  # type: ignore[union-attr]
        if self._rescale is OutputRescaling.norm:
            return math.sqrt(self._n_components)
        return 1.0

    def _context(self, stack: Any, rows: np.ndarray, start: dt.datetime,
                 end: dt.datetime) -> Context:
        lay, roi = stack.layout, stack.roi
        mp = lay.macro_pixel
        data_rows = math.ceil(self._traits.n_features_s / lay.grid_cols)  # type: ignore[union-attr]
        x0, y0 = lay.origin
        return Context(
            frametime=stack.frame_period_us,
            exposure=float(self._calibrations[(stack.n_in, stack.n_out)].exposure_us),
            output_roi=((roi.offset_x, roi.offset_y), (roi.width, roi.height)),
            start=start,
            end=end,
            input_roi=((x0, y0), (min(lay.grid_cols, self._traits.n_features_s) * mp,  # type: ignore[union-attr]
                                  data_rows * mp)),
            n_ones=float(np.count_nonzero(rows)) / rows.shape[0] * mp * mp,
            fmt_type=FeaturesFormat.lined,
            fmt_factor=mp,
        )

    def version(self, devices: bool = False) -> str:
        """Name and version of this package and the device in use."""
        from . import __version__

        lines = [f"opu.lightonml {__version__} (lightonml 1.4 API on the OPU stack)",
                 f"device {self._spec['device']!r}"]
        if devices:
            lines.extend(repr(s) for s in self._stacks.values())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"OPU(n_components={self._n_components}, device={self._spec['device']!r}, "
                f"max_n_features={self._max_n_features})")


__all__ = ["OPU", "SimulatedOpuDevice", "NotFittedError", "NotOpenError"]
