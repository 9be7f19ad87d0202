"""Short soak of the emulated hardware stack with faults (the long run is tools/soak.py):
no frame is ever attributed to the wrong pattern and every batch equals the fault-free one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("opu_sim.emulators.rig")

from tools.soak import FAULT_RATES, Soak  # noqa: E402


@pytest.fixture(scope="module")
def soak():
    s = Soak(seed=3, batch=100)
    yield s
    s.close()


def test_short_soak_with_random_faults_loses_nothing(soak):
    res = soak.run(2_000)
    assert res.frames == 2_000
    assert res.wrong_frames == 0 and res.misattributed == 0
    assert sum(r.injected for r in res.rows.values()) >= 5
    assert res.reacquired_frames > 0  # the faults did force re-acquisitions


@pytest.mark.parametrize("kind", list(FAULT_RATES))
def test_each_fault_kind_fires_and_is_survived(soak, kind):
    row = soak.result.rows[kind]
    wrong, mis = soak.result.wrong_frames, soak.result.misattributed
    injected, fired = row.injected, row.fired
    soak.run_batch(kind)
    assert row.injected == injected + 1
    assert row.fired == fired + 1, f"{kind} was injected but never fired"
    assert row.recovered + row.raised == row.injected
    assert (soak.result.wrong_frames, soak.result.misattributed) == (wrong, mis)


def test_a_wrong_frame_would_be_counted(soak):
    # the check itself can fail: hand it frames of shuffled patterns
    idx = soak.rng.integers(0, 400, 10)
    before = soak.result.misattributed
    soak._check(idx, soak.ref[(idx + 1) % 400])
    assert soak.result.misattributed - before == (idx != (idx + 1) % 400).sum()
    soak.result.wrong_frames = soak.result.misattributed = 0
