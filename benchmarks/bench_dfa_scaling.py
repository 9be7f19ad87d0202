"""Training time per sample against hidden width and depth: backprop vs optical DFA.

Like figure 4 of Launay et al. (optical DFA vs backprop): an MLP (784 -> depth x width
tanh -> 10) trained with SGD on random data, batch B. For each (width, depth):

    BP           forward + backward + SGD step, measured on this CPU
    DFA-cpu      the same step under DFA, measured on this CPU, with a projector that costs
                 nothing (returns a fixed random tensor): forward, ternarisation, weight
                 gradients of every layer from its own feedback slice, SGD step
    OPU          the device's time for one project() call, from its frame-rate model:
                 frames = (frames_per_row (4 for a ternary row in linear mode) * B rows
                           + the anchor-only frames of each acquisition, <= 16)
                          * ceil(n_out / camera pixels) * ceil(n_in / DMD elements)
                 time   = frames * frame_period_us
    optical DFA  DFA-cpu + OPU (no overlap of device and CPU work: a conservative model)
    DFA-gemm     for reference, DFA with the projection done exactly on this CPU

The crossover width is where optical DFA per sample becomes cheaper than BP, interpolated
in log(width) between measured widths, and also from a fit t(w) = a + b w^2 per curve.

    .venv/bin/python benchmarks/bench_dfa_scaling.py [--widths 256 512 ...] [--depths 2 4]
        [--batch 64] [--frame-period-us 110] [--plot bench_dfa_scaling.png]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:
    import opu.dfa  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opu import OPU
from opu.dfa import DFA, GaussianProjector, Ternarizer

D_IN, V = 784, 10


@dataclass(frozen=True)
class DeviceTimingModel:
    """Frame-rate model of one OPU projection (times in microseconds).

    frame_period_us: time per DMD/camera frame; frames_per_row: frames per ternary input
    row in linear mode (e+ and e- each with and without the anchor), plus
    ``OPU.reference_frames`` anchor-only frames per acquisition; camera_pixels and
    dmd_elements: outputs / inputs one frame can hold (larger sizes take several passes).
    """

    frame_period_us: float = 110.0
    frames_per_row: int = 4
    camera_pixels: int = 1920 * 1200
    dmd_elements: int = 1920 * 1080 // 2  # half of the DMD: data, the other half anchor

    def projection_us(self, rows: int, n_in: int, n_out: int) -> float:
        """Device time of one project() call of `rows` ternary rows (microseconds)."""
        passes = math.ceil(n_out / self.camera_pixels) * math.ceil(n_in / self.dmd_elements)
        data = rows * self.frames_per_row
        return (data + OPU.reference_frames(data)) * passes * self.frame_period_us


class FreeProjector:
    """A projector that costs (almost) nothing: returns a fixed random (rows, n_out) tensor."""

    def __init__(self, n_in: int, n_out: int, rows: int) -> None:
        self.n_in, self.n_out = n_in, n_out
        self._out = torch.randn(rows, n_out)
        self.calls = 0

    def project(self, x: torch.Tensor, mode: str = "linear") -> torch.Tensor:
        self.calls += 1
        return self._out[: x.shape[0]]


def mlp(width: int, depth: int) -> nn.Sequential:
    """784 -> depth x (Linear(width), Tanh) -> Linear(10)."""
    layers, d = [], D_IN
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.Tanh()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, V))


def time_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    """Median wall time (s) of one SGD training step on (x, y), after one warm-up."""
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    out = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if i:
            out.append(time.perf_counter() - t0)
    return statistics.median(out)


def crossover(widths: list[int], bp: list[float], odfa: list[float]) -> float | None:
    """First width where odfa < bp, interpolated in log(width); None if never."""
    d = np.log(np.array(odfa)) - np.log(np.array(bp))
    for i in range(1, len(widths)):
        if d[i - 1] >= 0 > d[i]:
            f = d[i - 1] / (d[i - 1] - d[i])
            return float(math.exp(math.log(widths[i - 1]) + f * math.log(widths[i] /
                                                                         widths[i - 1])))
    return float(widths[0]) if d[0] < 0 else None


def fitted_crossover(widths: list[int], bp: list[float], cpu: list[float],
                     opt_s: float) -> float | None:
    """Width where a + b w^2 fits of BP and DFA-cpu (+ OPU time) meet; None if they don't."""
    w2 = np.array(widths, dtype=float) ** 2
    a = np.vstack([np.ones_like(w2), w2]).T
    (a_bp, b_bp), (a_c, b_c) = (np.linalg.lstsq(a, np.array(t), rcond=None)[0] for t in (bp, cpu))
    if b_bp <= b_c:
        return None
    return float(math.sqrt(max(0.0, (a_c + opt_s - a_bp) / (b_bp - b_c))))


def main(argv: list[str] | None = None) -> dict:
    """Run the sweep, print the table and crossovers, save the plot; returns the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frame-period-us", type=float, default=None,
                    help="default: opu_sim's default device profile (110 us)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default="bench_dfa_scaling.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    period = args.frame_period_us
    if period is None:
        try:
            from opu_sim.profile import DeviceProfile  # noqa: PLC0415

            period = DeviceProfile.default().frame_period_us
        except Exception:  # noqa: BLE001 - the simulator is optional for this benchmark
            period = 110.0
    model = DeviceTimingModel(frame_period_us=period)
    b = args.batch
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(b, D_IN, generator=g), torch.randint(0, V, (b,), generator=g)
    res: dict = {}
    print(f"MLP 784 -> depth x width (tanh) -> 10, SGD, batch {b}, {args.threads} CPU threads; "
          f"OPU: {model.frames_per_row} frames per ternary row "
          f"(+ {OPU.reference_frames(b * model.frames_per_row)} anchor-only frames per call) "
          f"at {period:g} us/frame")
    hdr = (f"{'depth':>5}{'width':>7}{'BP us':>10}{'DFA-cpu us':>12}{'OPU us':>9}"
           f"{'optDFA us':>11}{'DFA-gemm us':>13}{'BP/optDFA':>11}")
    print("time per sample\n" + hdr)
    for depth in args.depths:
        rows = []
        for w in args.widths:
            torch.manual_seed(0)
            net = mlp(w, depth)
            t_bp = time_step(net, x, y, args.repeats) / b
            marks = [str(2 * i + 1) for i in range(depth)]
            free = FreeProjector(V, depth * w, b)
            dfa = DFA(net, marks, free, ternarizer=Ternarizer(threshold=0.1, rule="max"))
            t_cpu = time_step(dfa, x, y, args.repeats) / b
            gemm = DFA(net, marks, GaussianProjector(V, depth * w, seed=0),
                       ternarizer=Ternarizer(threshold=0.1, rule="max"))
            t_gemm = time_step(gemm, x, y, args.repeats) / b
            t_opu = model.projection_us(b, V, depth * w) * 1e-6 / b
            rows.append((w, t_bp, t_cpu, t_opu, t_cpu + t_opu, t_gemm))
            print(f"{depth:>5}{w:>7}{t_bp * 1e6:>10.1f}{t_cpu * 1e6:>12.1f}{t_opu * 1e6:>9.1f}"
                  f"{(t_cpu + t_opu) * 1e6:>11.1f}{t_gemm * 1e6:>13.1f}"
                  f"{t_bp / (t_cpu + t_opu):>11.2f}", flush=True)
        res[depth] = rows
    print("\ncrossover width (optical DFA faster than BP per sample):")
    for depth, rows in res.items():
        ws, bp, cpu, opt = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], \
            rows[0][3]
        meas = crossover(ws, bp, [r[4] for r in rows])
        fit = fitted_crossover(ws, bp, cpu, opt)
        print(f"  depth {depth}: measured "
              + (f"~{meas:.0f}" if meas else f"none up to {ws[-1]}")
              + "; fit a+b*w^2: " + (f"~{fit:.0f}" if fit else "never (DFA-cpu not cheaper)"))
    print("\nassumptions: the OPU time is modelled, not measured (frame period x frames; "
          "calibration, host<->device transfer and encoding are free); device and CPU work do "
          "not overlap; all other work is measured on this CPU; n_out = depth x width fits "
          "in one camera frame.")
    if args.plot:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k, (depth, rows) in enumerate(res.items()):
            ws = [r[0] for r in rows]
            c = f"C{k}"
            ax.loglog(ws, [r[1] * 1e6 for r in rows], "o-", color=c, label=f"BP, depth {depth}")
            ax.loglog(ws, [r[4] * 1e6 for r in rows], "s--", color=c,
                      label=f"optical DFA, depth {depth}")
            ax.loglog(ws, [r[5] * 1e6 for r in rows], ":", color=c, alpha=0.6,
                      label=f"DFA, CPU GEMM projection, depth {depth}")
        ax.set(xlabel="hidden width", ylabel="training time per sample (us)",
               title=f"BP vs optical DFA (batch {b}, {period:g} us/frame, 4 frames/row)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot saved to {args.plot}")
    return res


if __name__ == "__main__":
    main()
