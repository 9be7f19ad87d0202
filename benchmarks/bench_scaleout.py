"""Scale-out of the simulated OPU over torch.distributed ranks (`OPU(sharded=True)`).

Measured on this machine, one thread per rank (OMP/NUMBA threads = 1):
  - projection time per call and peak memory per rank at world size 1 and 2 (torchrun, gloo),
    against the same-run single-process figure (sharded=False, no torch.distributed);
  - per-rank tile generation rate of T (entries/s; static and drifting medium) and field-product
    rate (multiply-adds/s of the batch-invariant field kernels, the simulator's "GEMM");
  - from those, a model of the time per projection of a 1e6 x 2e6 OPU against the number of
    CPU ranks and of GPUs (assumptions printed with it).

Usage: python benchmarks/bench_scaleout.py [--quick]
       (runs its own torchrun jobs; needs 2 free cores to mean anything)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def _shape(quick: bool) -> dict:
    return {"n_in": 256, "n_out": 4096 if quick else 8192, "batch": 64, "calls": 3 if quick else 5}


def measure(shape: dict, sharded: bool) -> dict:
    """Time per ternary linear projection (best of `calls`), peak traced memory and RSS."""
    from opu import OPU

    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, size=(shape["batch"], shape["n_in"])).astype(np.int8)
    dev = OPU(n_in=shape["n_in"], n_out=shape["n_out"], seed=0, noise=False, sharded=sharded)
    dev.project(x[:2])  # calibration and compilation out of the timing
    tracemalloc.start()
    best = np.inf
    for _ in range(shape["calls"]):
        dev.source.wait_s(1.0)
        t = time.perf_counter()
        dev.project(x)
        best = min(best, time.perf_counter() - t)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cols = dev.output_slice
    dev.close()
    return {
        "time_s": best,
        "traced_peak_mb": peak / 2**20,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "columns": cols.stop - cols.start,
    }


def rates(n_rows: int, n_cols: int, batch: int) -> dict:
    """Tile generation (entries/s) and field products (multiply-adds/s) on one thread."""
    from opu_sim.field_kernels import fields
    from opu_sim.transmission import TransmissionMatrix

    ids = np.arange(n_rows, dtype=np.int64)
    out = {}
    for name, tau in (("static", None), ("drift", 3600.0)):
        t = TransmissionMatrix(seed=1, drift_time_s=tau, cache_budget_bytes=0)
        t.stacked(ids[:64], 0, n_cols)
        best = np.inf
        for k in range(3):
            t.set_time(float(k + 1))
            s = time.perf_counter()
            w = t.stacked(ids, 0, n_cols)
            best = min(best, time.perf_counter() - s)
        out[f"gen_{name}_entries_per_s"] = n_rows * n_cols / best
    x = (np.random.default_rng(0).random((batch, n_cols)) < 0.5).astype(np.uint8)
    fields(x[:2], w[:64])
    best = np.inf
    for _ in range(3):
        s = time.perf_counter()
        fields(x, w)
        best = min(best, time.perf_counter() - s)
    out["field_madds_per_s"] = batch * w.shape[0] * n_cols / best
    return out


def worker(out_dir: str, quick: bool) -> None:
    """One rank of a torchrun job: measure, write rank<r>.json."""
    shape = _shape(quick)
    res = measure(shape, sharded=True)
    import torch.distributed as dist

    rows = shape["n_out"] // dist.get_world_size()
    res.update(rates(rows, 2 * shape["n_in"], 2 * shape["batch"]))
    Path(out_dir, f"rank{dist.get_rank()}.json").write_text(json.dumps(res))
    dist.barrier()
    dist.destroy_process_group()


def run_job(world: int, quick: bool, tmp: Path) -> list[dict]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    d = tmp / f"w{world}"
    d.mkdir(parents=True, exist_ok=True)
    cmd = [torchrun, "--standalone", f"--nproc-per-node={world}", str(HERE), "--worker", str(d)]
    if quick:
        cmd.append("--quick")
    subprocess.run(cmd, env=_one_thread_env(), check=True, capture_output=True)
    return [json.loads((d / f"rank{r}.json").read_text()) for r in range(world)]


def _one_thread_env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        env.pop(k, None)
    return env


def model_table(gen_rate: float, madd_rate: float) -> list[str]:
    """Time per projection of a 1e6 x 2e6 OPU (ternary batch of 64, matrix-free, drifting)."""
    n_in, n_out, batch = 1_000_000, 2_000_000, 64
    entries = n_out * 2 * n_in  # data + anchor region, regenerated per call (drift, no cache)
    madds = 2 * batch * (2 * n_out) * n_in  # 2 distinct data contents per ternary row, [Re;Im]
    out_bytes = batch * n_out * 4
    lines = [
        "model: 1e6 x 2e6 OPU, ternary batch 64, drifting medium (T regenerated every call, "
        "never stored),",
        f"  per call: {entries:.1e} coefficients generated, {madds:.1e} multiply-adds, "
        f"gather of {out_bytes / 2**20:.0f} MiB",
        f"  CPU rank = this machine's one-thread rates: {gen_rate:.2e} entries/s, "
        f"{madd_rate:.2e} madds/s; network 10 GB/s (ring all-gather: (W-1)/W of the output "
        "per rank)",
        "  GPU = assumed 2e11 entries/s (counter RNG + Box-Muller at ~50 flop/entry on ~10 "
        "TFLOP/s fp32) and 1e13 madds/s (dense fp32 GEMM),",
        "        NVLink/IB 50 GB/s; the GPU kernels are NOT implemented here (CPU-only code)",
        f"  {'ranks':>8} {'CPU s/call':>12} {'GPU s/call':>12}",
    ]
    for w in (1, 2, 8, 64, 512, 4096):
        comm_cpu = (w - 1) / w * out_bytes / 10e9
        comm_gpu = (w - 1) / w * out_bytes / 50e9
        cpu = entries / w / gen_rate + madds / w / madd_rate + comm_cpu
        gpu = entries / w / 2e11 + madds / w / 1e13 + comm_gpu
        lines.append(f"  {w:>8} {cpu:>12.3g} {gpu:>12.3g}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.quick)
        return
    import tempfile

    shape = _shape(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        code = (f"import json,sys; sys.path.insert(0, {str(HERE.parent)!r}); "
                "import bench_scaleout as b; "
                f"print(json.dumps(b.measure(b._shape({args.quick!r}), sharded=False)))")
        single = json.loads(subprocess.run([sys.executable, "-c", code], env=_one_thread_env(),
                                           check=True, capture_output=True, text=True).stdout)
        jobs = {w: run_job(w, args.quick, Path(tmp)) for w in (1, 2)}
    print(f"sharded OPU, ternary linear projection B={shape['batch']}, n_in={shape['n_in']}, "
          f"n_out={shape['n_out']}, noise off, one thread per rank")
    print(f"{'run':<22} {'cols/rank':>9} {'s/call':>9} {'x single':>9} {'traced MB':>10} "
          f"{'x single':>9} {'RSS MB':>8}")
    print(f"{'single process':<22} {shape['n_out']:>9} {single['time_s']:>9.4f} {1.0:>9.2f} "
          f"{single['traced_peak_mb']:>10.1f} {1.0:>9.2f} {single['rss_mb']:>8.0f}")
    for w, ranks in jobs.items():
        for r, res in enumerate(ranks):
            print(f"{f'world {w} rank {r}':<22} {res['columns']:>9} {res['time_s']:>9.4f} "
                  f"{res['time_s'] / single['time_s']:>9.2f} {res['traced_peak_mb']:>10.1f} "
                  f"{res['traced_peak_mb'] / single['traced_peak_mb']:>9.2f} "
                  f"{res['rss_mb']:>8.0f}")
    r0 = jobs[1][0]
    print("\nper-rank rates (one thread, world 1 | world 2 mean):")
    for key in ("gen_static_entries_per_s", "gen_drift_entries_per_s", "field_madds_per_s"):
        w2 = np.mean([res[key] for res in jobs[2]])
        print(f"  {key:<26} {r0[key]:.3e} | {w2:.3e}")
    print()
    # the model takes the world-1 rank's rates: one thread alone, without its sibling rank
    # competing for the same two cores
    print("\n".join(model_table(r0["gen_drift_entries_per_s"], r0["field_madds_per_s"])))


if __name__ == "__main__":
    main()
