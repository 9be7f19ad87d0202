"""DFA-shaped project() calls on the simulated OPU against a floor measured in the same run.

Calls: B=128 ternary rows (density 1/2 per sign), n_in in {10, 100, 1000}, n_out in {512,
4096}, noise on (default profile) and off (ideal profile). Each call takes 4B data frames plus
`OPU.reference_frames(4B)` anchor-only frames (528 frames for B=128).

Floor (what the physics of that call cannot avoid), timed alternately with the call:
  - the GEMMs of the distinct fields: the 2B distinct data-region contents (e+ and e- of each
    row) times the stacked [Re T; Im T] (n_in x 2 n_out), one BLAS sgemm (the anchor field is
    cached, as in the bench);
  - one Gaussian draw per pixel-frame with the project's own counter RNG
    (opu_sim.counter_rng: derive_key, draw, gauss_pair) in a bare Numba kernel that also
    forms each frame's intensity |f_data + f_anchor|^2 and writes it out.
  The floor is timed with the default thread counts (Numba and BLAS) and with one thread for
  both; the faster of the two is the floor (the shape and the machine's load decide which
  wins). Each time is the best of --repeats, the call and its floor timed alternately.
Target: call <= 2x floor at every shape (moonshot 1.3x).

Epoch: one epoch of the digits MLP (examples/dfa_digits.py: 64-256-256-10 tanh, batch 64,
Adam 2e-3, 1347 training images = 22 feedback calls of 64 rows) with optical DFA
(opu.OPU(device="sim", n_in=10, n_out=512, noise=True)) against exact DFA on the same matrix
(GaussianProjector.from_opu), both with the default Ternarizer(), torch on 1 thread, timed
alternately. Target: optical <= 1.5x exact.

Usage: python benchmarks/bench_dfa_calls.py [--repeats 7] [--quick] [--breakdown CALLS]
       [--fields-product]
(--breakdown: where a call's CPU time goes instead, per shape, on one thread, and where the
optical digits epoch's extra time goes: inside project() or in the torch work around it.)
Ratios are what to quote; absolute times depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numba as nb
import numpy as np
from _timing import best_time, judge, paired_best

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import ThreadpoolController  # noqa: E402  (scikit-learn's dependency)

from opu import OPU  # noqa: E402
from opu_sim.counter_rng import derive_key, draw, gauss_pair  # noqa: E402

B = 128
_BLAS = ThreadpoolController()




@nb.njit(parallel=True, cache=True)
def _intensity_and_draw(fd, fa, idx_d, idx_a, seed, out):
    """out[f, p] = |fd[idx_d[f]] + fa[idx_a[f]]|^2 + z, one counter-RNG Gaussian per pixel-frame."""
    npx = out.shape[1]
    for f in nb.prange(out.shape[0]):
        key = derive_key(seed, np.uint64(1), np.uint64(f))
        d = fd[idx_d[f]]
        a = fa[idx_a[f]]
        for p in range(npx):
            re = d[p] + a[p]
            im = d[npx + p] + a[npx + p]
            z, _ = gauss_pair(draw(key, np.uint64(p)))
            out[f, p] = re * re + im * im + z


def make_floor(n_in: int, n_out: int, n_frames: int):
    """The floor of one call (module docstring) as a callable, and its thread-count variant."""
    rng = np.random.default_rng(0)
    rows = (rng.random((2 * B, n_in)) < 0.5).astype(np.float32)
    w = rng.standard_normal((2 * n_out, n_in), dtype=np.float32)
    fa = rng.standard_normal((2, 2 * n_out), dtype=np.float32)
    idx_d = np.zeros(n_frames, np.int64)
    idx_d[n_frames - 4 * B :] = np.repeat(np.arange(2 * B), 2)
    idx_a = np.zeros(n_frames, np.int64)
    idx_a[n_frames - 4 * B :: 2] = 1
    fd = np.empty((2 * B, 2 * n_out), np.float32)
    out = np.empty((n_frames, n_out), np.float32)

    def run() -> None:
        np.matmul(rows, w.T, out=fd)
        _intensity_and_draw(fd, fa, idx_d, idx_a, np.uint64(7), out)

    def run_1thread() -> None:
        old = nb.get_num_threads()
        nb.set_num_threads(1)
        try:
            with _BLAS.limit(limits=1, user_api="blas"):
                run()
        finally:
            nb.set_num_threads(old)

    run()
    run_1thread()
    return run, run_1thread


def call_rows(repeats: int, shapes) -> list[dict]:
    rng = np.random.default_rng(1)
    rows = []
    for noise in (True, False):
        for n_in, n_out in shapes:
            x = rng.integers(-1, 2, (B, n_in)).astype(np.float32)
            with OPU(device="sim", n_in=n_in, n_out=n_out, seed=3, noise=noise) as dev:
                dev.ensure_calibrated()  # calibrate outside the timing
                frames = dev.frames_for(x)
                floor, floor1 = make_floor(n_in, n_out, frames)
                dev.project(x)
                t, f = paired_best(lambda: dev.project(x), floor, repeats)  # noqa: B023
                t1, f1 = paired_best(lambda: dev.project(x), floor1, repeats)  # noqa: B023
            rows.append(dict(case=f"noise {'on ' if noise else 'off'} {n_in:>4} -> {n_out:<4}",
                             seconds=min(t, t1), floor=min(f, f1), target=2.0,
                             note=f"{frames} frames"))
    return rows


def digits_epochs():
    """(epoch(name), optical device) for one epoch of the digits MLP with name "optical"
    (the simulated OPU) or "exact" (GaussianProjector.from_opu, the same matrix); torch on
    one thread, so the OPU takes one thread too (its default follows torch's count)."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415

    from opu.dfa import DFA, GaussianProjector  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import dfa_digits  # noqa: PLC0415

    torch.set_num_threads(1)
    xtr, ytr, _, _ = dfa_digits.load_data()
    dev = dfa_digits.optical_device(0)
    nets = {}
    for name, proj in (("optical", dev), ("exact", GaussianProjector.from_opu(dev))):
        model = dfa_digits.make_mlp(0)
        dfa = DFA(model, dfa_digits.MARKS, proj)
        nets[name] = (dfa, torch.optim.Adam(dfa.parameters(), lr=2e-3))

    def epoch(name: str) -> None:
        dfa, opt = nets[name]
        gen = torch.Generator().manual_seed(0)
        for idx in torch.randperm(len(xtr), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(dfa(xtr[idx]), ytr[idx]).backward()
            opt.step()

    epoch("optical")
    epoch("exact")
    return epoch, dev, -(-len(xtr) // 64)


def epoch_row(repeats: int) -> dict:
    epoch, dev, calls = digits_epochs()
    t, f = paired_best(lambda: epoch("optical"), lambda: epoch("exact"), repeats)
    dev.close()
    return dict(case="digits epoch optical/exact", seconds=t, floor=f, target=1.5,
                note=f"{calls} project() calls per epoch")


def epoch_breakdown(repeats: int) -> None:
    """Where the optical epoch's extra time goes: best-of epoch times (ms) of the exact
    epoch, the optical one, the optical one with project() replaced by a free stub (zeros of
    the right shape: the torch work alone), and the time spent inside project() in the
    fastest optical epoch."""
    import time  # noqa: PLC0415

    import torch  # noqa: PLC0415

    epoch, dev, calls = digits_epochs()
    real = dev.project
    inside = [0.0]

    def timed(x, **kw):
        t = time.perf_counter()
        try:
            return real(x, **kw)
        finally:
            inside[0] += time.perf_counter() - t

    def best(name: str, project) -> tuple[float, float]:
        dev.project = project
        b = (float("inf"), 0.0)
        for _ in range(repeats):
            inside[0] = 0.0
            t = time.perf_counter()
            epoch(name)
            b = min(b, (time.perf_counter() - t, inside[0]))
        return b

    exact = best("exact", real)[0]
    optical, in_project = best("optical", timed)
    free = best("optical", lambda x, **kw: torch.zeros(x.shape[0], dev.n_out))[0]
    dev.project = real
    rows = torch.from_numpy(np.random.default_rng(0).integers(0, 2, (128, dev.n_in)).astype(
        np.float32))  # an epoch call's shape: 64 rows of each sign
    loop = min(best_time(lambda: real(rows), 20) for _ in range(repeats))
    dev.close()
    print(f"digits epoch (ms, best of {repeats}; {calls} project() calls, torch on 1 thread):")
    print(f"  exact DFA {exact * 1e3:.2f}; optical {optical * 1e3:.2f} ({optical / exact:.2f}x), "
          f"of which inside project() {in_project * 1e3:.2f} ({in_project / calls * 1e3:.3f} "
          f"ms a call, {loop * 1e3:.3f} in a loop of calls); optical with a free project() "
          f"{free * 1e3:.2f}: the call costs "
          f"{(optical - free) * 1e3:.2f} per epoch, {(optical - free - in_project) * 1e3:.2f} of "
          "it in the torch work around it (caches)")


def breakdown(shapes, calls: int) -> None:
    """CPU seconds of this thread per call in each phase (thread_time; one Numba/BLAS thread,
    so all the work is on this thread): camera kernel (with the data fields it sums itself
    for n_in <= SUMMED_FIELDS_MAX_COLS), field products (the anchor's when not cached, and
    the data's for wider inputs), distinct-row grouping, the rest of the bench's acquire, and
    everything outside acquire (input checks, patterns, I(r), recovery, thread handling)."""
    import time  # noqa: PLC0415

    import opu_sim.bench as bench  # noqa: PLC0415

    acc: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[name] = acc.get(name, 0.0) + time.thread_time() - t
        return wrapper

    saved = {n: getattr(bench, n)
             for n in ("render_frames", "field_products", "_unique_rows", "_grouped_on_columns")}
    acquire = bench.OpticalBench.acquire
    for n, fn in saved.items():
        setattr(bench, n, timed(n, fn))
    bench.OpticalBench.acquire = timed("acquire", acquire)
    old = nb.get_num_threads()
    nb.set_num_threads(1)
    print(f"CPU ms per call, one thread, {calls} calls per row (load average "
          f"{os.getloadavg()[0]:.2f})")
    print(f"{'case':24s} {'total':>7s} {'camera':>7s} {'fields':>7s} {'rows':>6s} "
          f"{'acq.rest':>8s} {'outside':>8s}")
    rng = np.random.default_rng(1)
    try:
        with _BLAS.limit(limits=1, user_api="blas"):
            for noise in (True, False):
                for n_in, n_out in shapes:
                    x = rng.integers(-1, 2, (B, n_in)).astype(np.float32)
                    with OPU(device="sim", n_in=n_in, n_out=n_out, seed=3, noise=noise) as dev:
                        dev.ensure_calibrated()
                        for _ in range(3):
                            dev.project(x)
                        acc.clear()
                        t = time.thread_time()
                        for _ in range(calls):
                            dev.project(x)
                        total = (time.thread_time() - t) / calls * 1e3
                    a = {k: acc.get(k, 0.0) / calls * 1e3 for k in (*saved, "acquire")}
                    rows_ms = a["_unique_rows"] + a["_grouped_on_columns"]
                    inner = a["render_frames"] + a["field_products"] + rows_ms
                    print(f"noise {'on ' if noise else 'off'} {n_in:>4} -> {n_out:<4}     "
                          f"{total:7.2f} {a['render_frames']:7.2f} {a['field_products']:7.2f} "
                          f"{rows_ms:6.2f} {a['acquire'] - inner:8.2f} "
                          f"{total - a['acquire']:8.2f}")
    finally:
        for n, fn in saved.items():
            setattr(bench, n, fn)
        bench.OpticalBench.acquire = acquire
        nb.set_num_threads(old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="n_in 10 and 100, n_out 512 only")
    ap.add_argument("--breakdown", type=int, default=0, metavar="CALLS",
                    help="instead: CPU time per phase of CALLS calls per shape, one thread")
    ap.add_argument("--fields-product", action="store_true",
                    help="data fields through the field product at every input width (the "
                         "camera kernel's summed data fields off), to compare")
    a = ap.parse_args()
    if a.fields_product:
        import opu_sim.bench as bench  # noqa: PLC0415

        bench.SUMMED_FIELDS_MAX_COLS = 0
    shapes = [(n_in, n_out) for n_out in (512, 4096) for n_in in (10, 100, 1000)]
    if a.quick:
        shapes = [(10, 512), (100, 512)]
    if a.breakdown:
        breakdown(shapes, a.breakdown)
        epoch_breakdown(max(3, a.repeats))
        return 0
    load0 = os.getloadavg()[0]
    rows = call_rows(a.repeats, shapes) + [epoch_row(a.repeats)]
    blas = [f"{i['internal_api']} {i.get('architecture')}" for i in _BLAS.info()
            if i["user_api"] == "blas"]
    print(f"B={B} ternary project() calls (ms) and a digits DFA epoch (s) against the floor "
          f"of the same run; numba threads {nb.get_num_threads()}, BLAS {', '.join(blas)}; "
          f"load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print(f"{'case':30s} {'time':>9s} {'floor':>9s} {'ratio':>6s} {'target':>7s}  ok")
    ok_all = judge(rows, "floor")
    for r in rows:
        unit, k = ("s", 1.0) if "epoch" in r["case"] else ("ms", 1e3)
        print(f"{r['case']:30s} {r['seconds'] * k:7.2f}{unit:>2s} {r['floor'] * k:7.2f}{unit:>2s} "
              f"{r['ratio']:6.2f} {r['target']:7.2f}  {'yes' if r['ok'] else 'NO'}   {r['note']}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
