"""Long project() calls: the frame count is known before the call, and progress is reported."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.errors import InputError
from opu import OPU


@pytest.fixture(scope="module")
def small_opu():
    with OPU(n_in=16, n_out=32, seed=2, noise=False) as dev:
        dev.ensure_calibrated()
        yield dev


def taken(dev: OPU, fn) -> int:
    before = dev.source.frames_taken
    fn()
    return dev.source.frames_taken - before


@pytest.mark.parametrize(
    "make, mode, per_row",
    [
        (lambda r, b: (r.random((b, 16)) < 0.5).astype(np.uint8), "linear", 2),
        (lambda r, b: r.integers(-1, 2, (b, 16)), "linear", 4),
        (lambda r, b: (r.random((b, 16)) < 0.5), "intensity", 1),
    ],
    ids=["binary", "ternary", "intensity"],
)
@pytest.mark.parametrize("b", [1, 7, 4100])  # 4100 ternary rows: two acquisitions
def test_frames_for_is_what_the_call_takes(small_opu, rng, make, mode, per_row, b):
    x = make(rng, b)
    n = small_opu.frames_for(x, mode=mode)
    assert n == taken(small_opu, lambda: small_opu.project(x, mode=mode))
    if mode == "linear":  # data frames plus each acquisition's anchor-only frames
        chunks = -(-b * per_row // 16384)
        assert b * per_row + chunks * 2 <= n <= b * per_row + chunks * 16
    else:
        assert n == b


def test_frames_for_float_counts_only_non_zero_bit_planes(small_opu, rng):
    x = rng.standard_normal((5, 16))
    x[2] = 0.0  # an all-zero row costs nothing
    x[3] = 0.0
    x[3, 0] = 1.0  # 255 = 0b11111111: all 8 planes, one ON element
    n = small_opu.frames_for(x, precision=8)
    assert n == taken(small_opu, lambda: small_opu.project(x, precision=8))
    assert 8 * 4 * 4 < n <= 8 * (4 * 4 + 2)  # 8 planes of at most 4 rows (+ anchor frames)
    one = np.zeros((1, 16))
    one[0, :2] = 0.5, 0.25  # q = 15, 8 at 4 bits: every plane has an ON element
    assert small_opu.frames_for(one, precision=4) == 4 * (4 + small_opu.reference_frames(4))
    assert small_opu.frames_for(one > 0) == 2 + small_opu.reference_frames(2)  # binary


def test_progress_callback_counts_up_to_the_total(small_opu, rng):
    x = rng.standard_normal((600, 16))  # float: several acquisitions
    seen = []
    y = small_opu.project(x, progress=lambda done, total: seen.append((done, total)))
    total = small_opu.frames_for(x)
    assert len(seen) > 2 and all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == total
    np.testing.assert_array_equal(y, small_opu.project(x))  # progress changes nothing


def test_progress_bar_goes_to_stderr(small_opu, rng, capsys):
    small_opu.project(rng.integers(-1, 2, (9, 16)), progress=True)
    out = capsys.readouterr()
    assert out.out == "" and "frames" in out.err and "project 9 x ternary" in out.err


def test_bad_progress_and_input_are_refused_before_any_frame(small_opu, rng):
    x = rng.integers(-1, 2, (3, 16))
    with pytest.raises(InputError, match="progress"):
        taken(small_opu, lambda: small_opu.project(x, progress="yes"))
    with pytest.raises(InputError, match="n_in=16"):
        small_opu.frames_for(np.zeros((2, 15)))
    with pytest.raises(InputError, match="intensity"):
        small_opu.frames_for(x, mode="intensity")


def test_small_calls_run_serially_with_the_same_bits(monkeypatch, rng):
    """Small calls take one Numba thread (opu/kernel_threads.py); the result does not depend on
    it, and the configured thread count is restored."""
    import numba as nb

    import opu.kernel_threads as kt

    x = rng.integers(-1, 2, (24, 16))
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    configured = nb.get_num_threads()
    blas_before = blas_threads()
    assert blas_before  # numpy has loaded its BLAS
    from firmware_iface.threads import capped_blas

    with kt.threads_for(10) as n:
        assert n == 1 and nb.get_num_threads() == 1
        assert blas_threads() == blas_before  # nothing changed until a GEMM runs ...
        with capped_blas():
            assert blas_threads() == [1] * len(blas_before)  # ... which is capped too
        assert blas_threads() == blas_before
    with capped_blas():  # outside a call: no limit
        assert blas_threads() == blas_before
    assert nb.get_num_threads() == configured
    assert blas_threads() == blas_before
    with OPU(n_in=16, n_out=32, seed=4) as a, OPU(n_in=16, n_out=32, seed=4) as b:
        serial = a.project(x)
        monkeypatch.setattr(kt, "SERIAL_BELOW_PIXEL_FRAMES", 0)  # every call on all threads
        parallel = b.project(x)
    np.testing.assert_array_equal(serial, parallel)
    assert nb.get_num_threads() == configured


def test_mid_size_calls_use_idle_cores_only(monkeypatch, tmp_path):
    """Between PARALLEL_IF_IDLE_ABOVE and SERIAL_BELOW_PIXEL_FRAMES a call takes this thread
    plus the cores idle right now and over the last minute (/proc/loadavg), never more than
    configured; below, one thread; above, the configured count whatever the load."""
    import os

    import opu.kernel_threads as kt

    cpus = len(os.sched_getaffinity(0))
    fake = tmp_path / "loadavg"
    monkeypatch.setattr(kt, "_LOADAVG", str(fake))
    monkeypatch.setattr(kt, "own_load", lambda: 0.0)  # this process idle over the last minute
    monkeypatch.setattr(kt, "recent_other_load", lambda: None)  # no /proc/stat window yet
    monkeypatch.setattr(kt, "own_runnable_threads", lambda: 1)  # only this thread runs
    mid = kt.PARALLEL_IF_IDLE_ABOVE
    # (1-min load, runnable tasks, idle cores when only this thread is ours)
    for load, running, idle in ((0.5, 1, cpus - 1), (0.5, cpus, 0), (0.5, cpus + 7, 0),
                                (cpus - 0.4, 1, 0)):  # busy over the last minute: serial
        fake.write_text(f"{load:.2f} 0.40 0.30 {running}/321 4242\n")
        assert kt.idle_cores() == idle
        # a call configured for 2 threads counts its own spinning worker as its own
        assert kt.threads_for_work(mid, 2) == min(2, 1 + kt.idle_cores(2))
        assert kt.threads_for_work(mid - 1, 64) == 1
        assert kt.threads_for_work(kt.SERIAL_BELOW_PIXEL_FRAMES, 64) == 64
        assert kt.threads_for_work(mid, 1) == 1
    fake.write_text(f"0.50 0.40 0.30 {cpus + 7}/321 4242\n")  # others on every core
    assert kt.threads_for_work(mid, 2) == 1
    fake.write_text("0.50 0.40 0.30 2/321 4242\n")  # this call and its spinning worker
    assert kt.idle_cores(own_threads=2) == cpus - 1 and kt.idle_cores() == cpus - 2
    # the load average was this process's own (e.g. a loop of calls): the cores are idle
    fake.write_text(f"{cpus - 0.3:.2f} 0.40 0.30 2/321 4242\n")
    assert kt.idle_cores(own_threads=2) == 0
    monkeypatch.setattr(kt, "own_load", lambda: cpus - 0.5)
    assert kt.idle_cores(own_threads=2) == cpus - 1
    fake.write_text(f"{cpus - 0.3:.2f} 0.40 0.30 {cpus + 1}/321 4242\n")  # others busy now
    assert kt.idle_cores(own_threads=2) == 0
    fake.write_text("garbage\n")
    assert kt.idle_cores() == 0  # unreadable: serial, the safe choice under load
    monkeypatch.setattr(kt, "_LOADAVG", str(tmp_path / "missing"))
    assert kt.idle_cores() == 0


def test_this_process_spinning_workers_are_not_others_load(monkeypatch, tmp_path):
    """Runnable threads of this process (BLAS/OpenMP workers spinning after a parallel
    region) do not count as other processes' load in idle_cores(); the real /proc gives at
    least this thread."""
    import os

    import opu.kernel_threads as kt

    assert kt.own_runnable_threads() >= 1  # the calling thread is running
    tasks = tmp_path / "task"
    states = {"101": "R", "102": "R", "103": "S", "104": "R"}
    for tid, st in states.items():
        (tasks / tid).mkdir(parents=True)
        (tasks / tid / "stat").write_text(f"{tid} (py thr) {st} 1 2 3 4\n")
    monkeypatch.setattr(kt, "_TASKS", str(tasks))
    monkeypatch.setattr(kt, "_task_fds", {})
    assert kt.own_runnable_threads() == 3
    os.unlink(tasks / "104" / "stat")  # a thread ended: its descriptor is still open...
    (tasks / "104").rmdir()
    assert kt.own_runnable_threads() == 2  # ... and is dropped
    assert set(kt._task_fds) == {"101", "102", "103"}
    monkeypatch.setattr(kt, "MAX_SCANNED_THREADS", 2)
    assert kt.own_runnable_threads() is None  # too many threads to scan on every call
    monkeypatch.setattr(kt, "MAX_SCANNED_THREADS", 32)
    monkeypatch.setattr(kt, "_cpus", 2)
    monkeypatch.setattr(kt, "own_load", lambda: 0.0)
    monkeypatch.setattr(kt, "recent_other_load", lambda: 0.0)
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(kt, "_LOADAVG", str(loadavg))
    loadavg.write_text("1.20 1.00 1.00 2/321 4242\n")  # both runnable tasks are ours
    assert kt.idle_cores(1) == 1
    loadavg.write_text("1.20 1.00 1.00 3/321 4242\n")  # one more task: another process's
    assert kt.idle_cores(1) == 0
    monkeypatch.setattr(kt, "_TASKS", str(tmp_path / "missing"))
    assert kt.own_runnable_threads() is None
    loadavg.write_text("1.20 1.00 1.00 2/321 4242\n")  # unreadable: the old allowance only
    assert kt.idle_cores(1) == 0


def test_recent_other_load_is_the_machines_busy_time_minus_this_process(monkeypatch, tmp_path):
    """recent_other_load(): (machine busy CPU s - this process's CPU s) per wall second from
    /proc/stat, exponentially averaged over RECENT_WINDOW_S; it replaces the 1-minute load
    average in idle_cores() once it has a window, so a job that ended seconds ago (still in
    the load average for a minute) no longer keeps calls serial, while a busy one does."""
    import math
    import os

    import opu.kernel_threads as kt

    hz = os.sysconf("SC_CLK_TCK")
    clock = {"wall": 50.0, "cpu": 2.0}
    ticks = {"busy": 1000 * hz}

    class FakeTime:
        monotonic = staticmethod(lambda: clock["wall"])
        process_time = staticmethod(lambda: clock["cpu"])

    stat = tmp_path / "stat"

    def write_stat() -> None:  # user nice system idle iowait irq softirq steal
        stat.write_text(f"cpu  {ticks['busy'] - 30} 0 20 777 5 4 3 3 0 0\ncpu0 1 2 3 4\n")

    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.90 1.50 1.00 2/321 4242\n")  # busy for the last minute...
    monkeypatch.setattr(kt, "time", FakeTime)
    monkeypatch.setattr(kt, "_STAT", str(stat))
    monkeypatch.setattr(kt, "_LOADAVG", str(loadavg))
    monkeypatch.setattr(kt, "_recent", [])
    monkeypatch.setattr(kt, "own_load", lambda: 0.0)
    monkeypatch.setattr(kt, "own_runnable_threads", lambda: 1)
    monkeypatch.setattr(kt, "_cpus", 2)
    write_stat()
    assert kt.recent_other_load() is None  # first look: no window yet
    assert kt.idle_cores(3) == 0  # ... so the load-average rule decides: serial
    # 1 s: the machine busy 1.0 CPU s, all of it this process's own
    clock["wall"] += 1.0
    clock["cpu"] += 1.0
    ticks["busy"] += hz
    write_stat()
    assert math.isclose(kt.recent_other_load(), 0.0, abs_tol=1e-12)
    assert kt.idle_cores(3) == 1  # the minute's load was a finished job: the core is idle
    assert kt.recent_other_load() == 0.0  # within RECENT_SAMPLE_S: the last value, no read
    # 2 s more: another process kept a core busy (machine 2.0 CPU s per s, ours 1.0)
    clock["wall"] += 2.0
    clock["cpu"] += 2.0
    ticks["busy"] += 4 * hz
    write_stat()
    w = math.exp(-2.0 / kt.RECENT_WINDOW_S)
    assert math.isclose(kt.recent_other_load(), (1 - w) * 1.0)
    assert kt.idle_cores(3) == 0  # 0.63 of a core busy by others: serial
    stat.write_text("garbage\n")
    clock["wall"] += 1.0
    assert kt.recent_other_load() is None  # unreadable: back to the load-average rule


def test_own_load_averages_this_process_cpu_time_like_the_load_average(monkeypatch):
    """own_load(): CPU seconds per wall second, exponentially averaged over LOAD_WINDOW_S."""
    import math

    import opu.kernel_threads as kt

    clock = {"wall": 100.0, "cpu": 5.0}

    class FakeTime:
        monotonic = staticmethod(lambda: clock["wall"])
        process_time = staticmethod(lambda: clock["cpu"])

    assert 0 < kt._process_age_s() < 1e7  # the real one reads /proc
    monkeypatch.setattr(kt, "time", FakeTime)
    monkeypatch.setattr(kt, "_process_age_s", lambda: 10.0)  # 5 CPU s in 10 s: rate 0.5
    monkeypatch.setattr(kt, "_own", [])
    w = kt.LOAD_WINDOW_S
    first = 0.5 * (1 - math.exp(-10 / w))
    assert math.isclose(kt.own_load(), first)
    clock["wall"] += w  # one window busy on 1.5 cores
    clock["cpu"] += 1.5 * w
    busy = math.exp(-1) * first + (1 - math.exp(-1)) * 1.5
    assert math.isclose(kt.own_load(), busy)
    clock["wall"] += 3 * w  # three windows idle
    assert math.isclose(kt.own_load(), busy * math.exp(-3))


def test_call_work_counts_the_field_gemm():
    """A B=128 ternary 1000 -> 4096 call is mostly field GEMM (~35 ms on one thread): it counts
    as large (configured threads whatever the load), the same shape from 10 inputs does not."""
    import opu.kernel_threads as kt

    pf = 128 * 4 * 4096
    assert kt.call_work(pf, 10) < kt.SERIAL_BELOW_PIXEL_FRAMES
    assert kt.call_work(pf, 1000) >= kt.SERIAL_BELOW_PIXEL_FRAMES
    assert kt.call_work(pf, 0) == pf
