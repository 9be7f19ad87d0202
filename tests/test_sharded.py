"""Sharded OPU: a 2-process torchrun job (gloo) is bit-identical to one process, noise off and
on, calibration included; DFA under DistributedDataParallel equals one-process training."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_iface.errors import ConfigurationError
from opu import OPU
from opu.sharded import block_bounds

HERE = Path(__file__).parent
WORLD = 2


def _job_module():
    spec = importlib.util.spec_from_file_location("sharded_job", HERE / "sharded_job.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Run the scenarios under torchrun (2 ranks, one thread each) and in this process."""
    out = tmp_path_factory.mktemp("sharded")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun comes with torch (make install)"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        env.pop(k, None)
    # --standalone: a c10d rendezvous on a free local port
    cmd = [torchrun, "--standalone", f"--nproc-per-node={WORLD}", str(HERE / "sharded_job.py"),
           str(out)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in range(WORLD)]
    mod = _job_module()
    ref = {**mod.projections(sharded=False), **mod.dfa_training(sharded=False)}
    return ranks, ref, mod


@pytest.mark.slow
def test_sharded_outputs_and_calibration_are_bit_identical(job):
    ranks, ref, mod = job
    gathered = [k for k in ref if not k.startswith("dfa_") and not k.endswith(("block", "slice"))]
    assert any(k.startswith("noise1_") for k in gathered) and "noise0_float" in gathered
    for key in gathered:
        for r, got in enumerate(ranks):
            np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{key} on rank {r}")
    for noise in (0, 1):
        p = f"noise{noise}_"
        for r, got in enumerate(ranks):
            a, b = block_bounds(mod.N_OUT, r, WORLD)
            assert tuple(got[p + "slice"]) == (a, b)
            np.testing.assert_array_equal(got[p + "block"], ref[p + "block"][:, a:b])
    # the medium moved in the 30 s (noise on), so the second projection is a different one
    assert not np.array_equal(ref["noise1_ternary"], ref["noise1_ternary_later"])


@pytest.mark.slow
def test_ddp_dfa_training_equals_one_process(job):
    """Projections are bit-identical; what differs is float summation order (the gradient
    all-reduce, batch-size-dependent CPU GEMMs): parameters agree to 1e-5 after 4 steps."""
    ranks, ref, _ = job
    losses = np.mean([got["dfa_losses"] for got in ranks], axis=0)  # each rank: its half
    np.testing.assert_allclose(losses, ref["dfa_losses"], rtol=1e-5)
    for key in (k for k in ref if k.startswith("dfa_param")):
        for got in ranks:
            np.testing.assert_allclose(got[key], ref[key], atol=1e-5, rtol=0)
    assert not np.allclose(ref["dfa_param0"], ranks[0]["dfa_param0"] + 1e-3)  # it trained


def test_sharded_needs_a_distributed_job(monkeypatch):
    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigurationError, match="torchrun"):
        OPU(n_in=8, n_out=16, sharded=True)
    with pytest.raises(ConfigurationError, match="simulated device"):
        OPU(device="emu", n_in=8, n_out=16, sharded=True)


def test_unsharded_device_owns_every_column():
    with OPU(n_in=8, n_out=16, noise=False) as dev:
        assert dev.output_slice == slice(0, 16)
        x = np.ones((2, 8), np.uint8)
        np.testing.assert_array_equal(dev.project(x, gather=False), dev.project(x))
