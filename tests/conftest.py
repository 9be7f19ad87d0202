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


# Modules whose assertions depend on float arithmetic order (bit-identical frames or
# projections across batches, chunkings, dense/tiled paths, sim/emu; tight float tolerances).
# They carry the `numerics` marker: `make test` runs them a second time under
# OPENBLAS_CORETYPE=Haswell (OpenBLAS's AVX2 kernels) besides the machine's own kernel.
NUMERICS_MODULES = {
    "test_batch_invariance",
    "test_emu_equivalence",
    "test_emu_faults",
    "test_project_exact",
    "test_project_records",
    "test_readout_host_stall",
    "test_reliability_concurrency",
    "test_sim_camera",
    "test_sim_medium",
    "test_sharded",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in NUMERICS_MODULES:
            item.add_marker(pytest.mark.numerics)
