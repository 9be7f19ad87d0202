"""Overhead of the lightonml compat layer: opu.lightonml.OPU.transform / linear_transform
against the ceiling, opu.OPU.project() on the same calibrated device and input, in the same run.

Prints a table: per row the median call time of each and the ratio (compat / project; 1.00
means no overhead). Usage: .venv/bin/python benchmarks/bench_lightonml.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from opu.lightonml import OPU
from opu.lightonml.internal.simulated_device import SimulatedOpuDevice


def _medians_s(a, b, repeats: int) -> tuple[float, float]:
    """Median call times of a and b, alternated call by call (the machine's load drifts)."""
    a()
    b()  # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return float(np.median(ta)), float(np.median(tb))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-features", type=int, default=784)
    ap.add_argument("--n-components", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    opu = OPU(n_components=args.n_components, opu_device=SimulatedOpuDevice(seed=0),
              max_n_features=args.n_features)
    opu.fit1d(n_features=args.n_features)
    stack = opu.device.stack
    print(f"n_features={args.n_features} n_components={args.n_components} "
          f"repeats={args.repeats} (simulator with noise)")
    print(f"{'call':<28}{'batch':>7}{'compat ms':>12}{'project ms':>12}{'ratio':>8}")
    for batch in (1, 64, 1024):
        x = rng.integers(0, 2, size=(batch, args.n_features), dtype=np.uint8)
        xf = rng.normal(size=(batch, args.n_features)).astype(np.float32)
        rows = [
            ("transform (binary)", lambda x=x: opu.transform(x),
             lambda x=x: stack.project(x, mode="intensity")),
            ("linear_transform (binary)", lambda x=x: opu.linear_transform(x),
             lambda x=x: stack.project(x, mode="linear")),
        ]
        if batch <= 64:
            rows.append(("linear_transform (float)", lambda xf=xf: opu.linear_transform(xf),
                         lambda xf=xf: stack.project(xf, mode="linear")))
        for name, compat, ceiling in rows:
            c, p = _medians_s(compat, ceiling, args.repeats)
            print(f"{name:<28}{batch:>7}{c * 1e3:>12.2f}{p * 1e3:>12.2f}{c / p:>8.2f}")
    opu.close()


if __name__ == "__main__":
    main()
