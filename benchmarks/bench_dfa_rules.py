"""Which error ternarisation trains best? DFA feedback rules on several offline data sets.

Each row is one data set; each column one feedback rule, next to the backprop accuracy of
the same run (the ceiling). Model: in-(H)-(H)-C tanh MLP, H=256, both hidden activations
marked, Adam 1e-3, batch 64, --epochs epochs. Feedback matrix: the simulated OPU's own G
(opu.OPU(device="sim", n_in=C, n_out=2H, noise=True)); the exact runs project with
GaussianProjector.from_opu(dev) (the same G, no noise), --optical adds the default DFA through
the device itself. Test accuracy in %, mean over --seeds (the init, batch order,
feedback matrix and rounding draws all follow the seed).

Data sets (all offline; standardised with the training split's mean/std, 80/20 stratified
split with random_state=0):
  classif10   make_classification(n_samples=5000, n_features=40, n_informative=20,
              n_redundant=10, n_classes=10, n_clusters_per_class=2, class_sep=1.0,
              random_state=0)                           4000 / 1000
  classif20   make_classification(n_samples=6000, n_features=60, n_informative=30,
              n_redundant=10, n_classes=20, n_clusters_per_class=1, class_sep=1.5,
              random_state=1)                           4800 / 1200
  quantiles   make_gaussian_quantiles(n_samples=5000, n_features=20, n_classes=6,
              random_state=0)                           4000 / 1000 (hard for DFA itself)
  digits, wine, breast_cancer   scikit-learn's bundled sets

Bias line: on the trained float-DFA model's test errors E (softmax - onehot, rows sum to 0),
the mean row sum of the reconstruction alpha*t (true: 0) and the norm of its batch mean over
that of E (true: 1); the stochastic rules averaged over 100 rounding draws (their expectation).

Usage: python benchmarks/bench_dfa_rules.py [--datasets classif10 classif20] [--seeds 0 1 2]
       [--epochs 40] [--optical [RULE ...]]
Columns: default = Ternarizer() (stochastic rounding per sign); stoch-ternary = stochastic
rounding of the whole row to {-1, 0, 1}; max/std = the threshold rules.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opu import OPU  # noqa: E402
from opu.dfa import DFA, GaussianProjector, Ternarizer  # noqa: E402

HIDDEN = 256
RULES: dict[str, Ternarizer | None] = {
    "backprop": None,
    "float": Ternarizer(rule="off"),
    "default": Ternarizer(),
    "stoch-ternary": Ternarizer(rule="stochastic", split_signs=False),
    "max 0.25": Ternarizer(threshold=0.25, rule="max"),
    "max 0.1": Ternarizer(threshold=0.1, rule="max"),
    "std 1.0": Ternarizer(threshold=1.0, rule="std"),
}
DATASETS = ("classif10", "classif20", "quantiles", "digits", "wine", "breast_cancer")


def load(name: str):
    """(x_train, y_train, x_test, y_test) torch tensors of one data set (module docstring)."""
    from sklearn import datasets  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    if name == "classif10":
        x, y = datasets.make_classification(
            n_samples=5000, n_features=40, n_informative=20, n_redundant=10, n_classes=10,
            n_clusters_per_class=2, class_sep=1.0, random_state=0)
    elif name == "classif20":
        x, y = datasets.make_classification(
            n_samples=6000, n_features=60, n_informative=30, n_redundant=10, n_classes=20,
            n_clusters_per_class=1, class_sep=1.5, random_state=1)
    elif name == "quantiles":
        x, y = datasets.make_gaussian_quantiles(
            n_samples=5000, n_features=20, n_classes=6, random_state=0)
    elif name in ("digits", "wine", "breast_cancer"):
        d = getattr(datasets, f"load_{name}")()
        x, y = d.data, d.target
    else:
        raise SystemExit(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    xtr, xte, ytr, yte = train_test_split(
        x.astype(np.float32), y, test_size=0.2, random_state=0, stratify=y)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    t = lambda a: torch.from_numpy(((a - mu) / sd).astype(np.float32))  # noqa: E731
    return t(xtr), torch.from_numpy(ytr).long(), t(xte), torch.from_numpy(yte).long()


def train(data, rule: str, seed: int, epochs: int, optical: bool = False) -> tuple[float, DFA]:
    """Test accuracy (%) of one run and its DFA wrapper (None for backprop)."""
    xtr, ytr, xte, yte = data
    n_cls = int(ytr.max()) + 1
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(xtr.shape[1], HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN),
                          nn.Tanh(), nn.Linear(HIDDEN, n_cls))
    dev, dfa = None, None
    tern = RULES[rule]
    if tern is not None:
        dev = OPU(device="sim", n_in=n_cls, n_out=2 * HIDDEN, seed=seed + 1000, noise=True)
        proj = dev if optical else GaussianProjector.from_opu(dev)
        dfa = DFA(model, ["1", "3"], proj, ternarizer=tern, rounding_seed=seed)
    net = dfa if dfa is not None else model
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    try:
        for _ in range(epochs):
            for idx in torch.randperm(len(xtr), generator=gen).split(64):
                opt.zero_grad()
                F.cross_entropy(net(xtr[idx]), ytr[idx]).backward()
                opt.step()
    finally:
        if dev is not None:
            dev.close()
    with torch.no_grad():
        acc = 100 * (model(xte).argmax(1) == yte).float().mean().item()
    return acc, dfa


def bias(model: nn.Module, data, tern: Ternarizer) -> tuple[float, float]:
    """On the test errors E of ``model`` (softmax - onehot: every row sums to 0): the mean row
    sum of the reconstruction alpha*t, and |batch mean of alpha*t| / |batch mean of E|. The
    stochastic rules are averaged over 100 rounding draws (their expectation: the bias)."""
    _, _, xte, yte = data
    with torch.no_grad():
        out = model(xte)
    e = F.softmax(out, 1) - F.one_hot(yte, out.shape[1]).float()
    gen = torch.Generator().manual_seed(0)
    draws = 100 if tern.rule == "stochastic" else 1
    rec = torch.zeros_like(e)
    for _ in range(draws):
        if tern.split_signs:
            bp, bn, ap, an = tern.split(e, gen)
            rec += (ap * bp - an * bn) / draws
        else:
            t, a = tern(e, gen)
            rec += a * t / draws
    return float(rec.sum(1).mean()), float(rec.mean(0).norm() / e.mean(0).norm())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["classif10", "classif20", "digits"])
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--optical", nargs="*", default=None,
                    choices=[r for r in RULES if r != "backprop"],
                    help="also train with these rules through the simulated OPU (slow); "
                         "no name: the default rule")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    optical = [] if args.optical is None else (args.optical or ["default"])
    cols = list(args.rules) + [f"opt {r}" for r in optical]
    print(f"test accuracy %, mean of seeds {args.seeds}, {args.epochs} epochs "
          f"(spread: min-max over seeds)")
    print(f"{'data set':<14}" + "".join(f"{c:>16}" for c in cols) + f"{'wall s':>8}")
    for name in args.datasets:
        data = load(name)
        t0 = time.perf_counter()
        cells, models = [], {}
        for col in cols:
            accs = []
            for s in args.seeds:
                rule = col.removeprefix("opt ")
                acc, dfa = train(data, rule, s, args.epochs, optical=col.startswith("opt "))
                accs.append(acc)
                if col == "float" and s == args.seeds[0]:
                    models["float"] = dfa.model
            cells.append(f"{np.mean(accs):6.1f} ({min(accs):.0f}-{max(accs):.0f})")
        print(f"{name:<14}" + "".join(f"{c:>16}" for c in cells)
              + f"{time.perf_counter() - t0:8.0f}", flush=True)
        if "float" in models:
            cells = []
            for r in args.rules:
                if RULES[r] is not None and RULES[r].is_ternary:
                    rowsum, ratio = bias(models["float"], data, RULES[r])
                    cells.append(f"{r} {rowsum:+.2f} / {ratio:.1f}")
            print(f"{'':<14}bias on the float-DFA model's test errors, mean row sum of alpha*t "
                  "(true 0) / batch-mean ratio (true 1): " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
