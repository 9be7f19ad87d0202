"""The README's example scripts run end to end (tiny settings; their figures are in docs/dfa.md)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_transformer_example_runs_all_four_kinds(tmp_path, capsys):
    mod = load("dfa_transformer")
    plot = tmp_path / "curves.png"
    res = mod.main(["--steps", "4", "--eval-every", "2", "--d", "16", "--layers", "1",
                    "--heads", "2", "--context", "8", "--batch", "2", "--replicate", "2",
                    "--runs", *mod.RUNS, "--plot", str(plot)])
    assert list(res) == list(mod.RUNS)
    for r in res.values():
        assert r["steps"] == [2, 4] and len(r["train"]) == 4
        assert all(math.isfinite(v) for v in r["eval"])
    out = capsys.readouterr().out
    assert "unigram baseline" in out and "sample from dfa-optical" in out
    assert plot.stat().st_size > 10_000


def test_transformer_example_refuses_an_unknown_run():
    with pytest.raises(SystemExit):
        load("dfa_transformer").main(["--runs", "dfa-opu"])


def test_digits_example_runs(capsys):
    res = load("dfa_digits").main(["--epochs", "1"])
    assert set(res) == {"backprop", "dfa-exact", "dfa-exact-ternary", "dfa-optical"}
    assert all(50 < r[0]["acc"] <= 100 for r in res.values())
    assert "optical vs exact DFA" in capsys.readouterr().out
