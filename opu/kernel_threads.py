"""Thread count of the Numba kernels of one `project()` call: small calls use only idle cores.

A parallel region costs a thread wake-up and a barrier: tens of microseconds when a core is
idle, but a scheduler time slice per region when the cores are shared (measured: a B=128
ternary call 10 -> 512 took 218-335 ms with 2 threads under load 10 and 1.5 ms with one).
So a call of `pixel_frames` (frames x output pixels, plus its field GEMM in the same units:
`call_work`):
  - >= SERIAL_BELOW_PIXEL_FRAMES (~20 ms of single-thread work): the OPU's thread count
    (`OPU(threads=)`, an upper bound), whatever the load;
  - >= PARALLEL_IF_IDLE_ABOVE (~0.3 ms of work) and a core idle right now and over the last
    seconds (/proc/loadavg: runnable tasks of others below the usable CPUs; /proc/stat: the
    CPU time other processes used over the last RECENT_WINDOW_S, i.e. the machine's busy time
    minus this process's, below CPUs - 0.5; before a first window exists, the 1-minute load
    average minus this process's share of it): this thread plus the idle cores, at most the
    OPU's count;
  - else one thread.
The same count caps the BLAS library numpy uses for the simulator's field GEMMs (via
threadpoolctl, applied around each GEMM: firmware_iface.threads.capped_blas): OpenBLAS splits
even a 256 x 10 x 1024 sgemm over every core, and under load that took 26 ms instead of
0.06 ms on one thread. Below SERIAL_BELOW_PIXEL_FRAMES only one of BLAS and Numba gets more
than one thread (`threads_for`). BLAS's count is process-wide, so BLAS calls of other threads
are capped too while a small call's GEMM runs. The results are the same bits
either way (the kernels and the exact-sum field GEMMs do not depend on the thread count);
only the time differs.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numba as nb

from firmware_iface.threads import blas_limit_for_call, start_numba_pool

SERIAL_BELOW_PIXEL_FRAMES = 1 << 22  # 4.2 M pixel-frames: every B=128 call up to n_out=4096
PARALLEL_IF_IDLE_ABOVE = 1 << 17  # 131 k pixel-frames: a B=64 ternary call to 512 outputs
MADDS_PER_PIXEL_FRAME = 300  # field-GEMM multiply-adds that cost one camera pixel-frame
_LOADAVG = "/proc/loadavg"
_cpus: int | None = None  # CPUs this process may run on, read once
_loadavg_fd: tuple[str, int] | None = None  # (path, descriptor) of the open load file
LOAD_WINDOW_S = 60.0  # the kernel's 1-minute load average: an exponential average over 60 s
_own: list[float] = []  # [wall s, process CPU s, own load] at the last look
_STAT = "/proc/stat"
_stat_fd: tuple[str, int] | None = None  # (path, descriptor) of the open /proc/stat
RECENT_WINDOW_S = 2.0  # time constant of the others' recent CPU use (catches intermittent jobs)
RECENT_SAMPLE_S = 0.05  # /proc/stat is read at most this often (jiffies are 10 ms)
_recent: list[float] = []  # [wall s, machine busy CPU s, process CPU s, others' cores, n]
_TASKS = "/proc/self/task"
MAX_SCANNED_THREADS = 32  # own_runnable_threads() scans processes of at most this many threads
_task_fds: dict[str, int] = {}  # thread id -> open descriptor of its stat file
_task_lock = threading.Lock()


def _process_age_s() -> float:
    """Seconds since this process started (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def own_load() -> float:
    """This process's share of the 1-minute load average: its CPU time (every thread) per
    second of wall time, averaged exponentially over LOAD_WINDOW_S as the kernel averages the
    runnable count. Before the first look, the average rate since the process started, as
    the window would have seen it. A microsecond."""
    now, cpu = time.monotonic(), time.process_time()
    if not _own:
        age = _process_age_s()
        rate = cpu / age if age > 0 else 0.0
        _own[:] = [now, cpu, rate * (1.0 - math.exp(-age / LOAD_WINDOW_S))]
        return _own[2]
    t0, c0, load = _own
    dt = now - t0
    if dt > 0:
        w = math.exp(-dt / LOAD_WINDOW_S)
        load = w * load + (1.0 - w) * (cpu - c0) / dt
        _own[:] = [now, cpu, load]
    return load


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat's first line: every
    state but idle and iowait, stolen time included); raises OSError/ValueError if unreadable."""
    global _stat_fd
    if _stat_fd is None or _stat_fd[0] != _STAT:
        _stat_fd = (_STAT, os.open(_STAT, os.O_RDONLY))
    line = os.pread(_stat_fd[1], 256, 0).split(b"\n", 1)[0].split()
    if not line or line[0] != b"cpu" or len(line) < 9:
        raise ValueError("no aggregate cpu line in /proc/stat")
    ticks = [int(v) for v in line[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def recent_other_load() -> float | None:
    """CPU cores other processes kept busy over the last seconds: the machine's busy CPU time
    minus this process's, per wall second, averaged exponentially over RECENT_WINDOW_S; None
    until a first window of RECENT_SAMPLE_S exists or where /proc/stat cannot be read. Unlike
    the 1-minute load average, it forgets a job that ended a few seconds ago."""
    now = time.monotonic()
    if _recent and now - _recent[0] < RECENT_SAMPLE_S:  # no read: the last value
        return _recent[3] if _recent[4] else None
    try:
        busy, cpu = _machine_busy_s(), time.process_time()
    except (OSError, ValueError):
        return None
    if not _recent:
        _recent[:] = [now, busy, cpu, 0.0, 0.0]
        return None
    t0, b0, c0, others, samples = _recent
    dt = now - t0
    rate = max(0.0, (busy - b0) - (cpu - c0)) / dt
    w = math.exp(-dt / RECENT_WINDOW_S) if samples else 0.0
    _recent[:] = [now, busy, cpu, w * others + (1.0 - w) * rate, samples + 1]
    return _recent[3]


def own_runnable_threads() -> int | None:
    """Threads of this process that are runnable right now (state R in
    /proc/self/task/*/stat): the calling thread, and BLAS or OpenMP workers still spinning
    after their last parallel region; None where it cannot be read, or for a process of more
    than MAX_SCANNED_THREADS threads (~3 us a thread: ~10 us with 4)."""
    try:
        tids = os.listdir(_TASKS)
    except OSError:
        return None
    if len(tids) > MAX_SCANNED_THREADS:
        return None
    with _task_lock:  # calls from several threads share the descriptors
        for tid in set(_task_fds) - set(tids):  # threads that ended
            os.close(_task_fds.pop(tid))
        n = 0
        for tid in tids:
            try:
                fd = _task_fds.get(tid)
                if fd is None:
                    fd = _task_fds[tid] = os.open(f"{_TASKS}/{tid}/stat", os.O_RDONLY)
                state = os.pread(fd, 512, 0).rsplit(b")", 1)[1][1:2]
            except (OSError, IndexError):  # the thread ended meanwhile (its id may come back)
                if tid in _task_fds:
                    os.close(_task_fds.pop(tid))
                continue
            n += state == b"R"
    return n


def idle_cores(own_threads: int = 1) -> int:
    """Usable CPUs not running a task right now, besides the calling thread, and not kept
    busy by other processes over the last seconds either (Linux: /proc/loadavg's runnable
    count, which counts this process too, and `recent_other_load()`; until that has a window,
    the 1-minute load average minus `own_load()`, this process's share of it; 0 where
    /proc/loadavg cannot be read). Runnable tasks of this process (`own_runnable_threads`:
    its thread, and the BLAS and Numba/OpenMP workers that spin for a while after each
    parallel region), and at least `own_threads` of them, are not counted as others'. A few
    microseconds (~10 more when the runnable count exceeds `own_threads`).

    Measured (B=128 ternary call 10 -> 512 right after a 2-thread sgemm, whose OpenBLAS worker
    spins): counting that worker as another process's kept the call serial at 0.72 ms; on 2
    threads it takes 0.47-0.50 ms."""
    global _cpus, _loadavg_fd
    try:
        if _cpus is None:
            _cpus = len(os.sched_getaffinity(0))
        if _loadavg_fd is None or _loadavg_fd[0] != _LOADAVG:
            _loadavg_fd = (_LOADAVG, os.open(_LOADAVG, os.O_RDONLY))  # kept open: 5 us a read
        fields = os.pread(_loadavg_fd[1], 128, 0).split()
        load_1min, running = float(fields[0]), int(fields[3].split(b"/")[0])
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
    # idle now, and over the last seconds (a core that others keep busy is idle only between
    # their time slices: a parallel region there waits for a slice)
    ours = max(1, own_threads)
    if running > ours:  # this process's spinning workers are no one else's load
        ours = max(ours, own_runnable_threads() or 0)
    others = max(0, running - ours)
    recent = recent_other_load()
    busy = max(0.0, load_1min - own_load()) if recent is None else recent
    return max(0, min(_cpus - 1 - others, int(_cpus - 1 - busy + 0.5)))


def call_work(pixel_frames: int, n_in: int) -> int:
    """Size of a call in single-thread pixel-frames: its camera pixel-frames plus its field
    GEMM (about n_in multiply-adds per pixel-frame, MADDS_PER_PIXEL_FRAME of which cost one
    camera pixel-frame: 2.6 ns against ~0.009 ns per sgemm multiply-add on one thread here)."""
    return int(pixel_frames * (1 + n_in / MADDS_PER_PIXEL_FRAME))


def threads_for_work(pixel_frames: int, configured: int) -> int:
    """Numba threads a call of `pixel_frames` gets (module docstring), at most `configured`."""
    if configured <= 1 or pixel_frames >= SERIAL_BELOW_PIXEL_FRAMES:
        return max(1, configured)
    if pixel_frames < PARALLEL_IF_IDLE_ABOVE:
        return 1
    # this call's own runnable threads: the caller and the Numba workers that spin for a
    # while after each parallel region
    return min(configured, 1 + idle_cores(configured))


@contextmanager
def threads_for(
    pixel_frames: int, gemm_dominates: bool = False, configured: int | None = None
) -> Iterator[int]:
    """Within this context, Numba kernels launched from this thread use `threads_for_work`
    threads (at most `configured`, OPU(threads=); None: the count already set), and the
    simulator's GEMMs (`capped_blas`) at most that many BLAS threads; yields the Numba count.
    Numba's count is restored on exit.

    Below SERIAL_BELOW_PIXEL_FRAMES only one of the two runs parallel: BLAS workers spin after
    each sgemm and Numba's after each parallel region, each taking the core the other's next
    parallel region then waits a time slice for (measured: a 10 -> 512 call, 0.3 ms on one
    thread, took 4-8 ms with both on 2 threads). gemm_dominates (the field GEMM costs more
    than the camera: n_in > MADDS_PER_PIXEL_FRAME) gives the threads to BLAS, else to Numba."""
    start_numba_pool()
    current = nb.get_num_threads()
    n = threads_for_work(pixel_frames, current if configured is None else configured)
    numba_n, blas_n = n, n
    if pixel_frames < SERIAL_BELOW_PIXEL_FRAMES:
        numba_n, blas_n = (1, n) if gemm_dominates else (n, 1)
    if numba_n != current:
        nb.set_num_threads(numba_n)
    try:
        with blas_limit_for_call(blas_n):  # applied where a GEMM runs (capped_blas)
            yield numba_n
    finally:
        if numba_n != current:
            nb.set_num_threads(current)
