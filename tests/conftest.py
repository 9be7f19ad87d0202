"""Shared fixtures: small simulated OPUs (module-scoped, they cost a calibration each)."""

from __future__ import annotations

import numpy as np
import pytest

from opu import OPU


@pytest.fixture(scope="module")
def ideal_opu():
    """Noise-free OPU, n_in=1000, n_out=1000."""
    with OPU(n_in=1000, n_out=1000, seed=3, noise=False) as dev:
        dev.ensure_calibrated()
        yield dev


@pytest.fixture(scope="module")
def noisy_opu():
    """Full noise model OPU, n_in=400, n_out=800."""
    with OPU(n_in=400, n_out=800, seed=5) as dev:
        dev.ensure_calibrated()
        yield dev


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
