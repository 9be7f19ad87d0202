"""Digits MLP trained by backprop, by exact DFA and by optical DFA through the simulated OPU.

Data: scikit-learn's bundled 8x8 digits (1797 images, offline). Model: 64-256-256-10 tanh
MLP; DFA feedback goes to both hidden activations (n_in = 10 classes, n_out = 512).
Runs (same init, same batches, and every DFA run on the same feedback matrix G: the exact
runs use GaussianProjector.from_opu(dev), the simulated OPU's own noise-free G):

    backprop           true gradients everywhere
    dfa-exact          DFA, float error, exact projector
    dfa-exact-ternary  DFA, the default error encoding (Ternarizer(): unbiased stochastic
                       rounding per sign), exact projector
    dfa-optical        DFA, the defaults, opu.OPU(device="sim", n_in=10, n_out=512,
                       noise=True) in linear mode

Prints test accuracy, wall time and per-layer alignment angles (degrees, DFA update vs the
true gradient, on the test set after training).

    .venv/bin/python examples/dfa_digits.py [--epochs 40] [--seeds 0 1 2] [--plot out.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

try:
    import opu.dfa  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/_figures.py

from _figures import saved_axes

from opu import OPU
from opu.dfa import DFA, GaussianProjector, Ternarizer, measure_alignment

HIDDEN = 256
MARKS = ["act1", "act2"]


def make_mlp(seed: int) -> nn.Sequential:
    """64-256-256-10 tanh MLP with named layers; init depends on ``seed`` only."""
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(64, HIDDEN), act1=nn.Tanh(),
        fc2=nn.Linear(HIDDEN, HIDDEN), act2=nn.Tanh(),
        out=nn.Linear(HIDDEN, 10),
    ))


def load_data(seed: int = 0):
    """Standardised digits split 75/25: (x_train, y_train, x_test, y_test) torch tensors."""
    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(
        d.data.astype(np.float32), d.target, test_size=0.25, random_state=seed,
        stratify=d.target,
    )
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    return (torch.from_numpy(xtr), torch.from_numpy(ytr).long(),
            torch.from_numpy(xte), torch.from_numpy(yte).long())


def optical_device(seed: int) -> OPU:
    """The simulated OPU with its full noise model: n_in = 10 classes, n_out = 2 x HIDDEN
    (it calibrates on first use, about a second)."""
    return OPU(device="sim", n_in=10, n_out=2 * HIDDEN, seed=seed + 1000, noise=True)


def train(run: str, data, seed: int, epochs: int, batch: int = 64, lr: float = 2e-3):
    """Train one run; returns dict(acc %, time s, angles {layer: deg}, curve [test acc])."""
    xtr, ytr, xte, yte = data
    model = make_mlp(seed)
    dfa, dev = None, None
    if run != "backprop":
        dev = optical_device(seed)
        proj = dev if run == "dfa-optical" else GaussianProjector.from_opu(dev)
        tern = Ternarizer(rule="off") if run == "dfa-exact" else Ternarizer()
        dfa = DFA(model, MARKS, proj, ternarizer=tern, rounding_seed=seed)
        dev.ensure_calibrated()  # calibrated now, so the wall time below is training only
    net = dfa if dfa is not None else model
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    curve = []
    t0 = time.perf_counter()
    try:
        for _ in range(epochs):
            net.train()
            for idx in torch.randperm(len(xtr), generator=gen).split(batch):
                opt.zero_grad()
                F.cross_entropy(net(xtr[idx]), ytr[idx]).backward()
                opt.step()
            with torch.no_grad():
                curve.append(100 * (model(xte).argmax(1) == yte).float().mean().item())
        elapsed = time.perf_counter() - t0
        angles = {}
        if dfa is not None:
            for a in measure_alignment(dfa, lambda o: F.cross_entropy(o, yte), xte):
                angles[a.name] = a.weight_angle_deg
    finally:
        if dev is not None:
            dev.close()
    return dict(acc=curve[-1], time=elapsed, angles=angles, curve=curve)


def main(argv: list[str] | None = None) -> dict:
    """Run all four trainings for each seed, print the table; returns the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--plot", default=None, help="save test-accuracy curves to this PNG")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is fastest on a shared, loaded machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_data()
    runs = ["backprop", "dfa-exact", "dfa-exact-ternary", "dfa-optical"]
    res = {r: [train(r, data, s, args.epochs) for s in args.seeds] for r in runs}
    print(f"\ndigits, MLP 64-{HIDDEN}-{HIDDEN}-10 tanh, {args.epochs} epochs, Adam 2e-3, "
          f"batch 64, seeds {args.seeds}; test set {len(data[3])} images")
    print(f"{'run':<19}{'test acc %':>11}{'wall s':>9}   alignment angle (deg) act1 / act2")
    for r in runs:
        acc = np.mean([x["acc"] for x in res[r]])
        t = np.mean([x["time"] for x in res[r]])
        ang = " / ".join(f"{np.mean([x['angles'][m] for x in res[r]]):5.1f}" for m in MARKS
                         ) if res[r][0]["angles"] else "-"
        print(f"{r:<19}{acc:>11.2f}{t:>9.2f}   {ang}")
    acc = {r: np.mean([x["acc"] for x in res[r]]) for r in runs}
    print(f"\nDFA (exact) vs backprop: {acc['dfa-exact'] - acc['backprop']:+.2f} points; "
          f"optical vs exact DFA: {acc['dfa-optical'] - acc['dfa-exact']:+.2f} points")
    if args.plot:
        with saved_axes(args.plot, figsize=(6, 4)) as ax:
            for r in runs:
                ax.plot(np.mean([x["curve"] for x in res[r]], axis=0), label=r)
            ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="digits: BP vs DFA",
                   ylim=(80, 100))
    return res


if __name__ == "__main__":
    main()
