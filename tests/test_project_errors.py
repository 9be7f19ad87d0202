"""Every bad input to OPU and project() raises its typed error with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.errors import ConfigurationError, InputError
from opu import OPU


@pytest.fixture(scope="module")
def dev():
    with OPU(n_in=50, n_out=60, seed=1, noise=False) as d:
        yield d


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros(49), "width 49"),
        (np.zeros((3, 51)), "width 51"),
        (np.zeros((2, 3, 50)), "ndim 3"),
        (np.zeros((0, 50)), "empty"),
        (np.full(50, np.nan), "NaN"),
        (np.full(50, np.inf), "NaN or infinity"),
        (np.zeros(50, dtype=complex), "dtype"),
        (np.array(["a"] * 50), "dtype"),
        (np.zeros(50, dtype=object), "dtype"),
        ("not an array", "numpy array or torch"),
        (np.array(5.0), "ndim 0"),
    ],
)
def test_bad_inputs(dev, x, match):
    with pytest.raises(InputError, match=match):
        dev.project(x)


def test_non_binary_in_intensity_mode(dev):
    with pytest.raises(InputError, match="intensity mode needs binary"):
        dev.project(np.array([0, 1, -1] + [0] * 47), mode="intensity")
    with pytest.raises(InputError, match="intensity mode needs binary"):
        dev.project(np.linspace(0, 1, 50), mode="intensity")


def test_unknown_mode_and_encoding(dev):
    with pytest.raises(InputError, match="mode must be one of"):
        dev.project(np.zeros(50), mode="holographic")
    with pytest.raises(InputError, match="encoding must be one of"):
        dev.project(np.zeros(50), encoding="gray")
    with pytest.raises(InputError, match="encoding='binary' but the input has ternary"):
        dev.project(np.array([0, 1, -1] + [0] * 47), encoding="binary")
    with pytest.raises(InputError, match="precision"):
        dev.project(np.linspace(-1, 1, 50), precision=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_in=2_000_000, n_out=10), "reduce n_in"),
        (dict(n_in=10, n_out=3_000_000), "reduce n_out"),
        (dict(n_in=0, n_out=10), "n_in must be a positive integer"),
        (dict(n_in=10, n_out=2.5), "n_out must be a positive integer"),
        (dict(n_in=True, n_out=10), "n_in must be a positive integer"),
        (dict(device="quantum", n_in=10, n_out=10), "unknown device"),
    ],
)
def test_bad_device_arguments(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        OPU(**kwargs)


def test_closed_device_refuses():
    d = OPU(n_in=10, n_out=10, noise=False)
    d.close()
    with pytest.raises(ConfigurationError, match="closed"):
        d.project(np.zeros(10))


def test_bad_input_leaves_no_partial_state(dev):
    before = dev.source.frames_taken
    with pytest.raises(InputError):
        dev.project(np.full((4, 50), np.nan))
    assert dev.source.frames_taken == before
