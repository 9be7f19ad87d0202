"""How well the stability step finds the medium's decorrelation time: 20 simulated media per
tau, the CLI's default geometry (256 inputs, 1221 pixels), simulated clock.

    python tools/stability_seeds.py [--taus 40,600,3600] [--seeds 20] [--first-seed 0]
                                    [--n-in 256] [--pixels 1221]

Prints, per tau: estimates within 20 %, the largest error, how often the 95 % interval covers
the truth, and the run length over tau (docs/calibration.md).
"""

from __future__ import annotations

import argparse
import dataclasses as dc
import warnings

import numpy as np

from calibration.stability import measure_stability
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu_sim.bench import OpticalBench
from opu_sim.profile import DeviceProfile


def main() -> None:
    """Run the seeds and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--taus", default="40,600,3600")
    ap.add_argument("--seeds", type=int, default=20, help="media per tau")
    ap.add_argument("--first-seed", type=int, default=0, help="seed of the first medium")
    ap.add_argument("--n-in", type=int, default=256)
    ap.add_argument("--pixels", type=int, default=1221)
    args = ap.parse_args()
    layout = DmdLayout.fit(args.n_in, args.n_in)
    print("| tau (s) | within 20 % | largest error | interval covers | run length / tau |")
    print("|---|---|---|---|---|")
    for tau in (float(t) for t in args.taus.split(",")):
        err, covered, length = [], 0, []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            p = DeviceProfile.default()
            p = dc.replace(p, medium=dc.replace(p.medium, drift_time_s=tau),
                           noise_seed=1000 + seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                b = OpticalBench(p, seed, layout, CameraRoi.centred(args.pixels, 1920, 1200))
                r = measure_stability(b, 110.0, seed=seed)
            err.append(r.decorrelation_time_s / tau - 1.0)
            covered += r.tau_low_s <= tau <= r.tau_high_s
            length.append(r.times_s.max() / tau)
        e = np.abs(err)
        print(f"| {tau:g} | {int(np.sum(e <= 0.2))}/{args.seeds} | {e.max():.1%} | "
              f"{covered}/{args.seeds} | {np.median(length):.2f} |", flush=True)


if __name__ == "__main__":
    main()
