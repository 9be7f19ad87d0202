"""Training time per sample against hidden width and depth: backprop vs optical DFA, for each
pattern path of the DLPC900 with its real rate.

Like figure 4 of Launay et al. (optical DFA vs backprop): an MLP (784 -> depth x width
tanh -> 10) trained with SGD on random data, batch B. For each (width, depth):

    BP           forward + backward + SGD step, measured on this CPU
    DFA-cpu      the same step under DFA, measured on this CPU, with a projector that costs
                 nothing (returns a fixed random tensor): forward, ternarisation, weight
                 gradients of every layer from its own feedback slice, SGD step
    OPU          the device's time for one project() call on a pattern path, from that path's
                 time model (firmware_iface.dlpc900.timing.PathTiming.call_s):
                 frames = (frames_per_row (4 for a ternary row in linear mode) * B rows
                           + the anchor-only frames of each acquisition)
                          * ceil(n_out / camera pixels) * ceil(n_in / DMD elements)
                 video 120 Hz / 60 Hz: 24 patterns per video frame, VSYNC-locked
                     (ceil(frames / 24) + 1 video frames); no upload
                 usb upload: every call's patterns are new, so each is uploaded over USB 1.1
                     full-speed HID (1 report/ms per direction: one LUT definition per pattern,
                     ERLE images measured for the call's layout) and then shown at 110 us each
                 pre-stored (ideal): 110 us per frame with nothing to upload, the old model:
                     the sequencer's rate for patterns already on the controller, which a
                     DFA step never has
                 seed paper's device: 340 Hz at 1e6 x 2e6 (reference line)
    optical DFA  DFA-cpu + OPU (no overlap of device and CPU work: a conservative model)
    DFA-gemm     for reference, DFA with the projection done exactly on this CPU

The crossover width is where optical DFA per sample becomes cheaper than BP, interpolated
in log(width) between measured widths.

    .venv/bin/python benchmarks/bench_dfa_scaling.py [--widths 256 512 ...] [--depths 2 4]
        [--batch 64] [--plot bench_dfa_scaling.png]
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

from firmware_iface.dlpc900.images import prepare_upload_elements
from firmware_iface.dlpc900.timing import PathTiming
from firmware_iface.geometry import DmdLayout
from opu import OPU
from opu.dfa import DFA, GaussianProjector, Ternarizer

D_IN, V = 784, 10


@dataclass(frozen=True)
class DeviceTimingModel:
    """Frame count and device time of one OPU projection on one pattern path.

    path: a PathTiming (its call_s gives the device time of a call); frames_per_row: frames
    per ternary input row in linear mode (e+ and e- each with and without the anchor), plus
    ``OPU.reference_frames`` anchor-only frames per acquisition; camera_pixels and
    dmd_elements: outputs / inputs one frame can hold (larger sizes take several passes);
    image_bytes: ERLE bytes of one 24-pattern image of the call's layout (usb path).
    """

    path: PathTiming
    frames_per_row: int = 4
    camera_pixels: int = 1920 * 1200
    dmd_elements: int = 1920 * 1080 // 2  # half of the DMD: data, the other half anchor
    image_bytes: int | None = None

    def frames(self, rows: int, n_in: int, n_out: int) -> int:
        """Frames of one project() call of `rows` ternary rows."""
        passes = math.ceil(n_out / self.camera_pixels) * math.ceil(n_in / self.dmd_elements)
        data = rows * self.frames_per_row
        return (data + OPU.reference_frames(data)) * passes

    def projection_us(self, rows: int, n_in: int, n_out: int) -> float:
        """Device time of one project() call of `rows` ternary rows (microseconds)."""
        return 1e6 * self.path.call_s(self.frames(rows, n_in, n_out),
                                      image_bytes=self.image_bytes)


def erle_image_bytes(n_in: int) -> int:
    """Measured ERLE size of one 24-pattern image of random n_in-element patterns (+ anchor)."""
    layout = DmdLayout.fit(n_in, n_in)
    el = np.random.default_rng(0).random((24, layout.n_elements)) < 0.5
    return prepare_upload_elements(el, layout).n_bytes


def path_models(n_in: int) -> dict[str, DeviceTimingModel]:
    """The pattern paths of the study, by label."""
    return {
        "video 120 Hz": DeviceTimingModel(PathTiming.video(120.0)),
        "video 60 Hz": DeviceTimingModel(PathTiming.video(60.0)),
        "usb upload": DeviceTimingModel(PathTiming.usb(110.0), image_bytes=erle_image_bytes(n_in)),
        "pre-stored (ideal)": DeviceTimingModel(_Fixed(110.0)),
        "seed paper 340 Hz": DeviceTimingModel(_Fixed(1e6 / 340)),
    }


@dataclass(frozen=True)
class _Fixed:
    """A device that shows any pattern at a fixed frame period, nothing to upload."""

    frame_period_us: float

    def call_s(self, n_frames: int, n_new_patterns: int | None = None,
               image_bytes: int | None = None) -> float:
        return n_frames * self.frame_period_us * 1e-6


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


def main(argv: list[str] | None = None) -> dict:
    """Run the sweep, print the table and crossovers per pattern path, save the plot; returns
    {depth: rows}, each row (width, BP s, DFA-cpu s, {path: OPU s}, DFA-gemm s) per sample."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192])
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default="bench_dfa_scaling.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = path_models(V)
    b = args.batch
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(b, D_IN, generator=g), torch.randint(0, V, (b,), generator=g)
    frames = models["video 120 Hz"].frames(b, V, 1)
    print(f"MLP 784 -> depth x width (tanh) -> 10, SGD, batch {b}, {args.threads} CPU threads; "
          f"OPU: {frames} frames per call ({models['video 120 Hz'].frames_per_row} per ternary "
          f"row + {OPU.reference_frames(b * 4)} anchor-only), device time per call:")
    for name, m in models.items():
        print(f"  {name:<20}{m.projection_us(b, V, 1) / 1e3:>10.1f} ms"
              f"{m.projection_us(b, V, 1) / b:>10.0f} us/sample")
    res: dict = {}
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
            opu = {k: m.projection_us(b, V, depth * w) * 1e-6 / b for k, m in models.items()}
            rows.append((w, t_bp, t_cpu, opu, t_gemm))
        res[depth] = rows
    names = list(models)
    print("\ntime per sample (us): BP, DFA-cpu, DFA-gemm, and optical DFA (DFA-cpu + OPU) per "
          "path")
    print(f"{'depth':>5}{'width':>7}{'BP':>9}{'DFA-cpu':>9}{'DFA-gemm':>10}"
          + "".join(f"{n:>21}" for n in names))
    for depth, rows in res.items():
        for w, t_bp, t_cpu, opu, t_gemm in rows:
            print(f"{depth:>5}{w:>7}{t_bp * 1e6:>9.1f}{t_cpu * 1e6:>9.1f}{t_gemm * 1e6:>10.1f}"
                  + "".join(f"{(t_cpu + opu[n]) * 1e6:>21.1f}" for n in names))
    print("\ncrossover width (optical DFA faster than BP per sample):")
    for depth, rows in res.items():
        ws, bp = [r[0] for r in rows], [r[1] for r in rows]
        parts = []
        for n in names:
            c = crossover(ws, bp, [r[2] + r[3][n] for r in rows])
            parts.append(f"{n}: " + (f"~{c:.0f}" if c else f"none up to {ws[-1]}"))
        print(f"  depth {depth}: " + "; ".join(parts))
    print("\nassumptions: the OPU time is modelled, not measured (each path's PathTiming: video "
          "frames at the refresh rate; usb: HID reports at 1/ms plus 110 us per pattern; "
          "calibration and encoding free); device and CPU work do not overlap; all other work "
          "is measured on this CPU; n_out = depth x width fits in one camera frame.")
    if args.plot:
        plot(res, names, b, args.plot)
    return res


def plot(res: dict, names: list[str], batch: int, path: str) -> None:
    """One panel per depth: BP, DFA-gemm and optical DFA on each pattern path vs width."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(res), figsize=(6 * len(res), 4.5), squeeze=False)
    for ax, (depth, rows) in zip(axes[0], res.items(), strict=True):
        ws = [r[0] for r in rows]
        ax.loglog(ws, [r[1] * 1e6 for r in rows], "ko-", lw=2, label="backprop (CPU)")
        ax.loglog(ws, [r[4] * 1e6 for r in rows], "k:", label="DFA, CPU GEMM projection")
        for k, n in enumerate(names):
            ax.loglog(ws, [(r[2] + r[3][n]) * 1e6 for r in rows], "s--", color=f"C{k}",
                      label=f"optical DFA, {n}")
        ax.set(xlabel="hidden width", ylabel="training time per sample (us)",
               title=f"depth {depth}, batch {batch}")
        ax.set_xticks(ws, [str(w) for w in ws])
        ax.minorticks_off()
        ax.legend(fontsize=7)
    fig.suptitle("BP vs optical DFA per DLPC900 pattern path (device time from each path's "
                 "timing model)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot saved to {path}")


if __name__ == "__main__":
    main()
