"""Crash safety: a writer killed with SIGKILL mid-record leaves the previous record loadable and
whole; a device closed in the middle of a batch can be reopened and gives the same results."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calibration.record import Calibration  # noqa: E402
from calibration.store import RecordStore  # noqa: E402
from firmware_iface.errors import OPUError  # noqa: E402
from opu import OPU  # noqa: E402
from tools.crash_writer import check, record  # noqa: E402

WRITER = ROOT / "tools" / "crash_writer.py"


def _kill_rounds(path: Path, rounds: int, mb: float, seed: int) -> tuple[list[int], int]:
    """Start the writer, let it write for a random while, SIGKILL it; `rounds` times.
    Returns the versions read back after each kill and the kills that left a temp file."""
    rng = random.Random(seed)
    versions = []
    mid_write = 0
    for _ in range(rounds):
        before = set(path.parent.glob("*.tmp"))
        start = (versions[-1] if versions else 0) + 1
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), "--mb", str(mb), "--start", str(start)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout.readline().startswith("wrote")  # writes are under way
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        mid_write += len(set(path.parent.glob("*.tmp")) - before)
        cal = Calibration.load(path)  # never torn: the old or the new record, whole
        versions.append(check(cal))
    return versions, mid_write


def test_sigkill_while_writing_records_leaves_a_whole_record(tmp_path):
    path = RecordStore(tmp_path).path_for("sim:seed=0")
    record(0, 8).save(path)
    # 9 of 30 kills landed inside a write on a quiet machine (machine-dependent); one
    # fresh-clone CI run saw none in 10 rounds, so 30: a miss of all is < 1e-4 at 0.3 each
    versions, mid_write = _kill_rounds(path, rounds=30, mb=8, seed=11)
    assert versions == sorted(versions) and versions[0] >= 1  # each round's saves landed
    assert mid_write >= 1, "no kill landed inside a write; the test did not test anything"
    # the temp files that killed writers leave behind do not disturb loading
    litter = list(tmp_path.glob("*.tmp"))
    assert len(litter) == mid_write
    assert all(p.name.startswith(path.name) for p in litter)
    store = RecordStore(tmp_path)
    assert check(store.load("sim:seed=0")) == versions[-1]
    record(99, 1).save(path)  # and a later save still works
    assert check(Calibration.load(path)) == 99


def test_record_store_ignores_a_truncated_temp_file(tmp_path):
    path = tmp_path / "sim_seed_0.npz"
    record(4, 1).save(path)
    (tmp_path / (path.name + "abcd.tmp")).write_bytes(path.read_bytes()[:1000])
    assert check(RecordStore(tmp_path).load("sim:seed=0")) == 4


def test_save_removes_only_stale_temp_files_of_its_record(tmp_path):
    import os

    path = tmp_path / "sim_seed_0.npz"
    stale = tmp_path / (path.name + "dead.tmp")
    live = tmp_path / (path.name + "busy.tmp")  # a save in progress elsewhere
    other = tmp_path / "sim_seed_1.npzdead.tmp"  # another device's record
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    record(5, 1).save(path)
    assert not stale.exists() and live.exists() and other.exists()
    assert check(Calibration.load(path)) == 5


# ---- device closed mid-batch ----------------------------------------------------------------
def _close_mid_batch(device: str) -> None:
    kw = dict(device=device, n_in=64, n_out=64, seed=4, noise=False)
    rng = np.random.default_rng(0)
    probe = rng.integers(0, 2, (8, 64)).astype(np.uint8)
    with OPU(**kw) as dev:
        want = dev.project(probe)
        cal = dev.calibration
    big = rng.integers(0, 2, (40_000, 64)).astype(np.uint8)
    dev = OPU(**kw, calibration=cal)
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["y"] = dev.project(big)
        except OPUError as exc:  # a typed error is acceptable, anything else is not
            outcome["error"] = exc
        except BaseException as exc:  # noqa: BLE001
            outcome["untyped"] = exc

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.3)
    dev.close()
    t.join(120)
    assert not t.is_alive()
    assert "untyped" not in outcome, repr(outcome.get("untyped"))
    with pytest.raises(OPUError, match="closed"):
        dev.project(probe)
    with OPU(**kw, calibration=cal) as again:  # re-openable, same device, same answers
        np.testing.assert_array_equal(again.project(probe), want)


def test_sim_device_closed_mid_batch_reopens():
    _close_mid_batch("sim")


def test_emu_device_closed_mid_batch_reopens():
    pytest.importorskip("opu_sim.emulators.rig")
    _close_mid_batch("emu")
