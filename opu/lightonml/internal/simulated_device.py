"""`lightonml.internal.simulated_device.SimulatedOpuDevice`, and the device specification behind
every compat OPU (which device string and which `opu.OPU` arguments).

lightonml's simulated device was a dense complex Gaussian matrix with seed 0 and no noise; here
it is this stack's physical simulator, so seed and noise are real choices.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from firmware_iface.errors import ConfigurationError

from .open_close import OpenCloseContext

CONFIG_ENV = "OPU_LIGHTONML_CONFIG"
"""Environment variable naming the JSON config OPU() uses when given no device (the role of
lightonml's /etc/lighton/opu.json)."""

STACK_KEYS = (
    "seed",
    "noise",
    "exposure_us",
    "calibration",
    "record_dir",
    "anchor_on",
    "expected_on_fraction",
    "cache_budget_bytes",
    "profile",
    "threads",
)
"""opu.OPU arguments a config may set (besides "device")."""

_INFO_KEYS = ("name", "type", "version", "location", "core_type", "core_version")

NO_CONFIG_MESSAGE = (
    "No OPU configuration was found: pass simulated=True for this stack's simulator, "
    "opu_device='emu' (emulated hardware) or a hardware config ('hw:<config.json>'), "
    "config_file=<json> / config_override={'device': ...}, or set the environment variable "
    f"{CONFIG_ENV} to a JSON file holding {{\"device\": ...}}"
)


class NoConfigError(ConfigurationError, RuntimeError):
    """No device was given and no configuration names one (lightonml raised RuntimeError)."""


class SimulatedOpuDevice(OpenCloseContext):
    """This stack's simulator, as lightonml's simulated device.

    seed: the scattering medium (the random matrix) -- lightonml always used 0; noise: False
    gives lightonml's noise-free projections, True (default) the camera's shot, read and
    quantisation noise of a real OPU. exposure_us: fixed camera exposure (default: chosen by
    calibration). frametime_us is the device's own frame period and cannot be set; `linear` is
    accepted and ignored, as in lightonml (the OPU chooses per call).
    """

    def __init__(
        self,
        frametime_us: float | None = None,
        exposure_us: float | None = None,
        verbose: bool = False,
        linear: bool = False,
        *,
        seed: int = 0,
        noise: bool = True,
    ) -> None:
        if frametime_us is not None:
            raise ConfigurationError(
                "frametime_us is the simulated device's frame period (profile.frame_period_us) "
                "and cannot be chosen here; leave it unset"
            )
        self.exposure_us = exposure_us
        self.verbose = verbose
        self.linear = linear
        self.seed = seed
        self.noise = bool(noise)
        self.active = False
        self.stack: Any = None
        """The opu.OPU behind the latest fit (set by the compat OPU; None before a fit)."""

    def build_random_matrix(self, n_features: int, n_components: int, seed: int = 0) -> None:
        """lightonml built its matrix here; on this stack the medium is chosen by `seed` (the
        matrix's shape follows the OPU's fit): sets the seed."""
        self.seed = seed

    @property
    def random_matrix(self) -> Any:
        """The exact complex matrix R (n_features, n_components) of the latest fit, such that
        noise-free transform gives |X R|^2 (None before the first fit)."""
        if self.stack is None:
            return None
        return self.stack.exact_transmission_matrix().T

    @property
    def linear_matrix(self) -> Any:
        """The exact real matrix (n_features, n_components), N(0, 1) entries, such that
        noise-free linear_transform with rescale=none gives X @ linear_matrix (extension)."""
        if self.stack is None:
            return None
        return self.stack.exact_linear_matrix().T

    def open(self) -> None:
        self.active = True

    def close(self) -> None:
        self.active = False

    def __repr__(self) -> str:
        exp = f", exposure_us={self.exposure_us}" if self.exposure_us is not None else ""
        return f"SimulatedOpuDevice(seed={self.seed}, noise={self.noise}{exp})"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "stack"} | {"stack": None}

    def spec(self) -> dict:
        """The device string and opu.OPU arguments this device stands for."""
        s: dict[str, Any] = {"device": "sim", "seed": self.seed, "noise": self.noise}
        if self.exposure_us is not None:
            s["exposure_us"] = self.exposure_us
        return s


def check_spec(spec: dict, where: str) -> dict:
    """spec with only known keys (device, opu.OPU arguments, informational OPU names)."""
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where} must be a dict, got {type(spec).__name__}")
    unknown = set(spec) - {"device", *STACK_KEYS, *_INFO_KEYS}
    if unknown:
        raise ConfigurationError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: 'device', "
            f"{', '.join(repr(k) for k in STACK_KEYS)} (and the informational "
            f"{', '.join(repr(k) for k in _INFO_KEYS)})"
        )
    if "device" in spec and not isinstance(spec["device"], str):
        raise ConfigurationError(
            f"{where}['device'] must be a device string, got {spec['device']!r}"
        )
    return dict(spec)


def load_config(config_file: str | os.PathLike = "") -> dict:
    """The JSON config at config_file, else at $OPU_LIGHTONML_CONFIG, else {}."""
    path = str(config_file) if config_file else os.environ.get(CONFIG_ENV, "")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"OPU config file {path!r} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"OPU config file {path!r} is not readable JSON: {exc}") from None
    return check_spec(data, f"config file {path!r}")


def resolve_device(
    opu_device: Any, simulated: bool, config_file: str, config_override: dict | None
) -> tuple[dict, SimulatedOpuDevice | None]:
    """(spec, simulated device or None): spec["device"] is a device string of this stack and
    the other keys opu.OPU arguments."""
    if simulated and opu_device is not None:
        raise ConfigurationError("simulated=True and opu_device are conflicting: give one")
    override = check_spec(config_override, "config_override") if config_override else {}
    sim: SimulatedOpuDevice | None = None
    if isinstance(opu_device, SimulatedOpuDevice):
        sim = opu_device
    elif simulated:
        sim = SimulatedOpuDevice()
    if sim is not None:
        spec = sim.spec()
    elif isinstance(opu_device, str):
        spec = {"device": opu_device}
    elif opu_device is not None:
        raise ConfigurationError(
            "opu_device must be a SimulatedOpuDevice or a device string of this stack ('sim', "
            f"'emu', 'hw:<config.json>'), got {type(opu_device).__name__}"
        )
    else:
        spec = load_config(config_file)
    spec.update(override)
    if "device" not in spec:
        raise NoConfigError(NO_CONFIG_MESSAGE)
    if sim is not None and spec["device"] != "sim":
        raise ConfigurationError(
            f"a simulated OPU cannot use device {spec['device']!r} from config_override"
        )
    return spec, sim
