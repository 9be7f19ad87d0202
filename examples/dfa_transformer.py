"""A small causal Transformer trained by optical DFA with per-token feedback.

Corpus (offline, ships with every CPython): the Python reference manual's help topics,
``pydoc_data.topics`` (~465 kB of English prose and code). Character level; the last 10 %
is held out. Model: token + position embeddings, ``--layers`` pre-LN blocks (causal
self-attention + MLP), final LayerNorm and a linear head. DFA feedback goes to every block's
output (the residual stream, (B, T, d)): one projection row per token position, so each
training step sends B*T error rows to the projector in one project() call.

Runs from the same init and batches (``--runs``):
- backprop;
- dfa-exact: DFA with the exact GaussianProjector and the float error (the reference DFA);
- dfa-exact-binary: the exact projector with the optical run's binarised error (isolates what
  binarisation costs from what the optics cost; not in the default runs);
- dfa-optical: DFA through opu.OPU(device="sim", noise=True), linear mode, the error binarised
  per sign by unbiased stochastic rounding (Ternarizer(rule="stochastic", split_signs=True)).

Prints held-out loss against the unigram baseline (nats/char), a text sample from each model,
and saves the loss curves to a PNG.

    .venv/bin/python examples/dfa_transformer.py [--steps 600] [--plot dfa_transformer.png]
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

try:
    import opu.dfa  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/_figures.py

from _figures import saved_axes

from opu.dfa import DFA, GaussianProjector, ReplicatedInput, Ternarizer


def load_corpus() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(train ids, held-out ids, vocabulary): printable-ASCII characters of pydoc topics."""
    from pydoc_data.topics import topics  # noqa: PLC0415

    text = "\n".join(topics[k] for k in sorted(topics))
    text = "".join(c if (32 <= ord(c) < 127 or c == "\n") else "?" for c in text)
    vocab = sorted(set(text))
    lut = np.zeros(128, dtype=np.int64)
    lut[[ord(c) for c in vocab]] = np.arange(len(vocab))
    ids = torch.from_numpy(lut[np.frombuffer(text.encode("ascii"), dtype=np.uint8)])
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], vocab


class Block(nn.Module):
    """Pre-LN Transformer block: x + attn(LN x), then + MLP(LN x); (B, T, d) -> (B, T, d)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """Causal character model: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, vocab: int, d: int = 128, layers: int = 2, heads: int = 4,
                 context: int = 64) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


def batches(ids: torch.Tensor, n: int, b: int, t: int, seed: int):
    """n batches of (input (b, t), target (b, t)) random windows."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        s = torch.randint(0, len(ids) - t - 1, (b,), generator=g)
        w = torch.stack([ids[i : i + t + 1] for i in s.tolist()])
        yield w[:, :-1], w[:, 1:]


@torch.no_grad()
def eval_loss(model: nn.Module, ids: torch.Tensor, t: int, n: int = 8) -> float:
    """Mean held-out cross-entropy (nats/char) over n fixed batches of 32 windows."""
    model.eval()
    out = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
           for x, y in batches(ids, n, 32, t, seed=123)]
    model.train()
    return float(np.mean(out))


@torch.no_grad()
def generate(model: CharTransformer, vocab: list[str], prompt: str, n: int, t: int) -> str:
    """Sample n characters (temperature 0.8, seeded) after prompt."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    ids = [vocab.index(c) for c in prompt]
    for _ in range(n):
        logits = model(torch.tensor([ids[-t:]]))[0, -1] / 0.8
        ids.append(int(torch.multinomial(logits.softmax(-1), 1, generator=g)))
    return "".join(vocab[i] for i in ids)


RUNS = ("backprop", "dfa-exact", "dfa-exact-binary", "dfa-optical")


def binarizer(args) -> Ternarizer:
    """The per-sign binarisation of the optical run (and of dfa-exact-binary)."""
    threshold = args.threshold if args.rule in ("max", "std") else None  # stochastic: none
    return Ternarizer(threshold=threshold, rule=args.rule, split_signs=True)


def run(kind: str, data, args, progress=None) -> dict:
    """Train one model (a name from RUNS); curves and wall time."""
    train_ids, test_ids, vocab = data
    torch.manual_seed(args.seed)
    model = CharTransformer(len(vocab), args.d, args.layers, args.heads, args.context)
    marks = [f"blocks.{i}" for i in range(args.layers)]
    v, n_out = len(vocab), args.layers * args.d
    dev = None
    if kind == "backprop":
        net = model
    elif kind == "dfa-exact":
        net = DFA(model, marks, GaussianProjector(v, n_out, seed=args.seed + 1),
                  ternarizer=Ternarizer(rule="off"))
    elif kind == "dfa-exact-binary":
        net = DFA(model, marks, GaussianProjector(v, n_out, seed=args.seed + 1),
                  ternarizer=binarizer(args), rounding_seed=args.seed)
    else:
        from opu import OPU  # noqa: PLC0415

        # binarised per-token errors light few elements: size the anchor and the exposure for
        # sparse inputs (shot-noise optimum, see opu.device.OPU)
        dev = OPU(device="sim", n_in=v * args.replicate, n_out=n_out, seed=args.seed + 1,
                  noise=True, expected_on_fraction=args.on_fraction)
        net = DFA(model, marks, ReplicatedInput(dev, args.replicate),
                  ternarizer=binarizer(args), rounding_seed=args.seed)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps, train_curve, eval_curve = [], [], []
    task = progress.add_task(kind, total=args.steps) if progress is not None else None
    t0 = time.perf_counter()
    try:
        for i, (x, y) in enumerate(batches(train_ids, args.steps, args.batch, args.context,
                                           seed=args.seed)):
            opt.zero_grad()
            loss = F.cross_entropy(net(x).flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            train_curve.append(loss.item())
            if (i + 1) % args.eval_every == 0 or i + 1 == args.steps:
                steps.append(i + 1)
                eval_curve.append(eval_loss(model, test_ids, args.context))
                line = f"  {kind:<16} step {i + 1:4d}  held-out loss {eval_curve[-1]:.3f}"
                if progress is not None:
                    progress.console.print(line)
                else:
                    print(line, flush=True)
            if task is not None:
                progress.advance(task)
    finally:
        if dev is not None:
            dev.close()
    return dict(model=model, train=train_curve, steps=steps, eval=eval_curve,
                time=time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    """Train the three models, print the comparison and a sample, save the plot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rule", choices=("stochastic", "max", "std"), default="stochastic",
                    help="per-sign binarisation rule of the optical run (opu.dfa.Ternarizer)")
    ap.add_argument("--threshold", type=float, default=0.1,
                    help="binarisation threshold for the (biased) rules 'max' and 'std'")
    ap.add_argument("--on-fraction", type=float, default=0.05,
                    help="expected fraction of ON elements per error row (anchor sizing)")
    ap.add_argument("--replicate", type=int, default=8, help="DMD elements per error entry")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", nargs="+", choices=RUNS,
                    default=["backprop", "dfa-exact", "dfa-optical"])
    ap.add_argument("--plot", default="dfa_transformer.png")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is fastest on a shared, loaded machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_corpus()
    train_ids, test_ids, vocab = data
    counts = torch.bincount(train_ids, minlength=len(vocab)).double() + 1
    p = counts / counts.sum()
    unigram = float(-(torch.bincount(test_ids, minlength=len(vocab)).double()
                      * p.log()).sum() / len(test_ids))
    print(f"corpus: pydoc_data.topics, {len(train_ids)} train / {len(test_ids)} held-out chars, "
          f"V={len(vocab)}; unigram baseline {unigram:.3f} nats/char")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as progress:
        res = {k: run(k, data, args, progress) for k in args.runs}
    print(f"\n{'run':<18}{'held-out loss':>14}{'best':>8}{'vs unigram':>12}{'wall s':>9}")
    for k, r in res.items():
        print(f"{k:<18}{r['eval'][-1]:>14.3f}{min(r['eval']):>8.3f}"
              f"{r['eval'][-1] - unigram:>+12.3f}{r['time']:>9.1f}")
    for k, r in res.items():
        print(f"\nsample from {k} (prompt 'The ', temperature 0.8):\n"
              + generate(r["model"], vocab, "The ", 300, args.context))
    if args.plot:
        print()
        with saved_axes(args.plot, figsize=(7, 4.5)) as ax:
            for k, r in res.items():
                w = min(10, len(r["train"]))
                sm = np.convolve(r["train"], np.ones(w) / w, mode="valid")
                line, = ax.plot(np.arange(w, len(r["train"]) + 1), sm, alpha=0.4, lw=1,
                                label=f"{k} (train, {w}-step mean)")
                ax.plot(r["steps"], r["eval"], "o-", color=line.get_color(),
                        label=f"{k} (held-out)")
            ax.axhline(unigram, color="k", ls="--", label=f"unigram baseline ({unigram:.2f})")
            ax.set(xlabel="step", ylabel="cross-entropy (nats/char)",
                   title=f"char Transformer ({args.layers} blocks, d={args.d}): BP vs DFA")
    return res


if __name__ == "__main__":
    main()
