"""Thread count of the Numba kernels of one `project()` call: small calls use only idle cores.

A parallel region costs a thread wake-up and a barrier: tens of microseconds when a core is
idle, but a scheduler time slice per region when the cores are shared (measured: a B=128
ternary call 10 -> 512 took 218-335 ms with 2 threads under load 10 and 1.5 ms with one).
So a call of `pixel_frames` (frames x output pixels):
  - >= SERIAL_BELOW_PIXEL_FRAMES (~20 ms of single-thread work): the OPU's thread count
    (`OPU(threads=)`, an upper bound), whatever the load;
  - >= PARALLEL_IF_IDLE_ABOVE (~0.3 ms of work) and a core idle right now (runnable tasks
    from /proc/loadavg, this one included, below the usable CPUs): this thread plus the idle
    cores, at most the OPU's count;
  - else one thread.
The same count caps the BLAS library numpy uses (the simulator's field GEMMs, via
threadpoolctl): OpenBLAS splits even a 256 x 10 x 1024 sgemm over every core, and under load
that took 26 ms instead of 0.06 ms on one thread. BLAS's count is process-wide, so BLAS calls
of other threads are capped too while a small call runs. The results are the same bits
either way (the kernels and the exact-sum field GEMMs do not depend on the thread count);
only the time differs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numba as nb

from firmware_iface.threads import blas_threads_at_most, start_numba_pool

SERIAL_BELOW_PIXEL_FRAMES = 1 << 22  # 4.2 M pixel-frames: every B=128 call up to n_out=4096
PARALLEL_IF_IDLE_ABOVE = 1 << 17  # 131 k pixel-frames: a B=64 ternary call to 512 outputs
_LOADAVG = "/proc/loadavg"


def idle_cores() -> int:
    """Usable CPUs not running a task right now, besides the calling thread (Linux: the
    runnable count of /proc/loadavg; 0 where it cannot be read)."""
    try:
        with open(_LOADAVG, encoding="ascii") as f:
            running = int(f.read().split()[3].split("/")[0])
        cpus = len(os.sched_getaffinity(0))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
    return max(0, cpus - max(1, running))


def threads_for_work(pixel_frames: int, configured: int) -> int:
    """Numba threads a call of `pixel_frames` gets (module docstring), at most `configured`."""
    if configured <= 1 or pixel_frames >= SERIAL_BELOW_PIXEL_FRAMES:
        return max(1, configured)
    if pixel_frames < PARALLEL_IF_IDLE_ABOVE:
        return 1
    return min(configured, 1 + idle_cores())


@contextmanager
def threads_for(pixel_frames: int) -> Iterator[int]:
    """Within this context, Numba kernels launched from this thread use `threads_for_work`
    threads (at most the count already set: OPU(threads=), via
    firmware_iface.threads.numba_threads), and BLAS at most that many; yields the count."""
    start_numba_pool()
    configured = nb.get_num_threads()
    n = threads_for_work(pixel_frames, configured)
    if n != configured:
        nb.set_num_threads(n)
    try:
        with blas_threads_at_most(n):
            yield n
    finally:
        if n != configured:
            nb.set_num_threads(configured)
