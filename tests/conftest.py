"""Shared fixtures: small simulated OPUs (module-scoped, they cost a calibration each)."""

from __future__ import annotations

import os
import shutil
import subprocess

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


@pytest.fixture
def xvfb(tmp_path, monkeypatch):
    """A virtual X server (Xvfb) with a 1920x1080x24 screen on a free display, DISPLAY and
    SDL_VIDEODRIVER set for it; yields its framebuffer file (XWD, `-fbdir`). Skipped when Xvfb
    is missing, a failure when OPU_REQUIRE_XVFB is set (CI)."""
    exe = shutil.which("Xvfb")
    if exe is None:
        if os.environ.get("OPU_REQUIRE_XVFB"):
            pytest.fail("Xvfb is required (OPU_REQUIRE_XVFB is set): apt-get install xvfb")
        pytest.skip("Xvfb not installed (apt-get install xvfb; .ci/run does)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        # -noreset: without it the server resets when its last client disconnects, and a
        # client connecting during the reset (a window reopened at once, on a loaded machine)
        # fails with "x11 not available"
        [exe, "-displayfd", str(w), "-screen", "0", "1920x1080x24", "-fbdir", str(tmp_path),
         "-nolisten", "tcp", "-noreset"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(w)
    try:
        with os.fdopen(r) as f:
            display = f.readline().strip()  # Xvfb picks a free display and reports it here
        assert display.isdigit(), "Xvfb did not start"
        monkeypatch.setenv("DISPLAY", f":{display}")
        monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
        yield tmp_path / "Xvfb_screen0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
