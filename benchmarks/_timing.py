"""Timing helpers shared by the benchmark scripts (imported as `_timing`: a script's own folder
is on sys.path when it runs as `python benchmarks/bench_x.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of fn() over `repeats` runs after one warm-up (numba compile, cache
    load), seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def paired_best(
    target: Callable[[], object], ceiling: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Fastest wall times (seconds) of target and ceiling (or floor), run alternately so that
    load from other processes hits both alike; no separate warm-up."""
    bt = bc = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        ceiling()
        bc = min(bc, time.perf_counter() - t)
        t = time.perf_counter()
        target()
        bt = min(bt, time.perf_counter() - t)
    return bt, bc


def judge(rows: list[dict], reference: str) -> bool:
    """Add to each row its `ratio` (row["seconds"] / row[reference], the same-run ceiling or
    floor) and `ok` (ratio <= row["target"]); True when every row is ok."""
    for r in rows:
        r["ratio"] = r["seconds"] / r[reference]
        r["ok"] = r["ratio"] <= r["target"]
    return all(r["ok"] for r in rows)


@dataclass
class StackTimes:
    """Best wall times (seconds) of one call on the simulator and on the emulated stack, the
    emulated stack's last batch, and the phase seconds (OPUHardware's, the rig's) summed over
    the timed calls; reacquired: frames the timed emulated calls acquired again."""

    best_sim: float
    best_emu: float
    batch: Any
    hw_s: dict
    rig_s: dict
    reacquired: int


def time_stack(sim: Any, hw: Any, rig: Any, patterns: Any, exposure_us: float,
               repeats: int, warm_up: int) -> StackTimes:
    """Time sim.acquire and hw.acquire of the same patterns alternately, best of `repeats`,
    after one warm-up call of the first `warm_up` patterns on each (numba caches, matrices)."""
    sim.acquire(patterns[:warm_up], exposure_us)
    hw.acquire(patterns[:warm_up], exposure_us)
    hw_before, rig_before = dict(hw.stats.seconds), dict(rig.stats.seconds)
    best_sim = best_emu = float("inf")
    b, reacquired = None, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim.acquire(patterns, exposure_us)
        best_sim = min(best_sim, time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = hw.acquire(patterns, exposure_us)
        best_emu = min(best_emu, time.perf_counter() - t0)
        reacquired += b.reacquired
    hw_s = {k: v - hw_before.get(k, 0.0) for k, v in hw.stats.seconds.items()}
    rig_s = {k: v - rig_before.get(k, 0.0) for k, v in rig.stats.seconds.items()}
    return StackTimes(best_sim, best_emu, b, hw_s, rig_s, reacquired)


def print_stack_phases(
    labels: list[str], hw_s: dict, rig_s: dict, n_frames: int, width: int = 40
) -> None:
    """Print where an emulated-stack acquisition's time went, microseconds per frame and share.

    labels: nine phase names (DMD prepare, DMD upload/present, DMD sample in the rig, FPGA
    protocol, physics, camera stream pack, camera readout, integrity, other host work); hw_s:
    OPUHardware's phase seconds; rig_s: the rig's phase seconds; n_frames: frames timed."""
    rig_total = sum(rig_s.values())
    seconds = [
        hw_s["dmd_prepare"], hw_s["dmd_upload"], rig_s["dmd_sample"],
        hw_s["fpga_run"] - rig_total, rig_s["physics"], rig_s["camera_deliver"],
        hw_s["camera_read"], hw_s["integrity"], hw_s["host_other"],
    ]
    total = sum(seconds)
    print(f"{'phase':<{width}}{'us/frame':>10}{'share':>8}")
    for name, sec in zip(labels, seconds, strict=True):
        print(f"{name:<{width}}{1e6 * sec / n_frames:>10.1f}{100 * sec / total:>7.1f}%")
    print(f"{'total':<{width}}{1e6 * total / n_frames:>10.1f}")
