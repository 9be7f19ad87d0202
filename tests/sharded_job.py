"""Scenarios for the sharded-OPU test: run under torchrun (sharded) or in one process (reference).

    torchrun --standalone --nproc-per-node=2 tests/sharded_job.py OUT_DIR

writes OUT_DIR/rank<r>.npz; tests/test_sharded.py runs the same scenarios with sharded=False in
its own process and compares bit for bit.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np

from opu import OPU

N_IN, N_OUT, SEED = 48, 301, 3  # 301 columns: blocks of unequal size over 2 ranks
DFA_ROWS, DFA_STEPS = 32, 4


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ternary = rng.integers(-1, 2, size=(9, N_IN)).astype(np.int8)
    binary = (rng.random((7, N_IN)) < 0.4).astype(np.uint8)
    floats = rng.standard_normal((3, N_IN)).astype(np.float32)
    return {"ternary": ternary, "binary": binary, "float": floats}


def _record(dev: OPU, prefix: str, out: dict) -> None:
    cal = dev.ensure_calibrated()
    out[f"{prefix}cal_exposure"] = np.array(cal.exposure_us)
    out[f"{prefix}cal_scale"] = np.array(cal.scale_dn)
    for name in ("dark_dn", "hot_pixels", "output_pixels", "anchor", "anchor_dn"):
        out[f"{prefix}cal_{name}"] = np.asarray(getattr(cal, name))


def projections(sharded: bool) -> dict[str, np.ndarray]:
    """Noise off and on: every mode and encoding, gathered and (sharded) this rank's block."""
    out: dict[str, np.ndarray] = {}
    x = _inputs()
    for noise in (False, True):
        p = f"noise{int(noise)}_"
        with OPU(n_in=N_IN, n_out=N_OUT, seed=SEED, noise=noise, sharded=sharded) as dev:
            _record(dev, p, out)
            out[p + "ternary"] = dev.project(x["ternary"])
            out[p + "binary"] = dev.project(x["binary"])
            out[p + "intensity"] = dev.project(x["binary"], mode="intensity")
            if not noise:
                out[p + "float"] = dev.project(x["float"], precision=4)
            dev.source.wait_s(30.0)  # the medium drifts (noise on): still identical
            out[p + "ternary_later"] = dev.project(x["ternary"])
            out[p + "block"] = dev.project(x["ternary"], gather=False)
            out[p + "slice"] = np.array([dev.output_slice.start, dev.output_slice.stop])
            out[p + "anchor_correlation"] = np.array(dev.anchor_correlation)
    return out


def dfa_training(sharded: bool) -> dict[str, np.ndarray]:
    """A small MLP trained by DFA through the (noisy) OPU: under DDP over the ranks (each rank
    its rows of the batch) or in one process on the whole batch."""
    import torch
    from torch import nn

    from opu.dfa import DFA

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 10))
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(DFA_STEPS, DFA_ROWS, 20, generator=gen)
    labels = torch.randint(0, 10, (DFA_STEPS, DFA_ROWS), generator=gen)
    dev = OPU(n_in=10, n_out=64, seed=7, sharded=sharded)
    rows = slice(0, DFA_ROWS)
    if sharded:
        import torch.distributed as dist

        from opu.sharded import DataParallelProjector

        projector = DataParallelProjector(dev)
        r, w = dist.get_rank(), dist.get_world_size()
        rows = slice(DFA_ROWS * r // w, DFA_ROWS * (r + 1) // w)
    else:
        projector = dev
    net = DFA(model, [model[1]], projector)  # the default: stochastic rounding per sign
    if sharded:
        net = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for step in range(DFA_STEPS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(data[step, rows]), labels[step, rows])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    dev.close()
    out = {f"dfa_param{i}": p.detach().numpy().copy() for i, p in enumerate(model.parameters())}
    out["dfa_losses"] = np.array(losses)
    return out


def main() -> None:
    import torch.distributed as dist

    out = projections(sharded=True)  # the first sharded OPU initialises the process group
    out.update(dfa_training(sharded=True))
    np.savez(Path(sys.argv[1]) / f"rank{dist.get_rank()}.npz", **out)
    # the DDP module of dfa_training sits in reference cycles: free it while the process group
    # lives (destroyed only at interpreter exit, its reducer aborted the job now and then:
    # "terminate called without an active exception")
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
