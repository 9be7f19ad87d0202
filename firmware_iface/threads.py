"""The process's thread settings left alone: Numba's thread pool is started without changing
OpenMP's thread count, and the stack's own parallelism is set per call and restored after.

Numba's default threading layer ('omp') runs on the same OpenMP runtime as torch. Starting its
pool calls omp_set_num_threads(NUMBA_NUM_THREADS) in the calling thread, so the first parallel
kernel used to change torch.get_num_threads() (1 -> 2 on a 2-core machine) and slow the user's
torch code down. `start_numba_pool` starts the pool once, at import of this module (every
package of the stack imports it before running a kernel), and puts every loaded OpenMP
runtime's thread count back as it was. `numba_threads(n)` then sets Numba's count for the calling
thread only (numba.set_num_threads is thread-local) and restores it on exit.
The simulator's field GEMMs run on numpy's BLAS; `numba_threads(n)` also caps its threads at n
while inside (`blas_threads_at_most`), so OPU(threads=) bounds them too.
"""

from __future__ import annotations

import contextlib
import ctypes
import numbers
import os
import sys
import threading
from collections.abc import Iterator

import numba

from .errors import ConfigurationError

_OPENMP_LIBS = ("libgomp", "libomp", "libiomp5")
_start_lock = threading.Lock()
_started = False
_blas_libs: list | None = None
_blas_scanned_at = 0
_blas_lock = threading.Lock()
_blas_depth = 0
_blas_saved: dict[str, list] = {}  # filepath -> [controller, count to restore, count now]


def _openmp_runtimes() -> list[ctypes.CDLL]:
    """The OpenMP runtimes loaded in this process (read from /proc/self/maps; none elsewhere)."""
    paths = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1]
                if os.path.basename(path).startswith(_OPENMP_LIBS) and ".so" in path:
                    paths.add(path)
    except OSError:
        return []
    libs = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)  # already loaded: this returns that library, not a copy
            lib.omp_get_max_threads.restype = ctypes.c_int
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            continue
        libs.append(lib)
    return libs


def start_numba_pool() -> None:
    """Start Numba's thread pool (once) without changing any OpenMP runtime's thread count."""
    global _started
    if _started:
        return
    with _start_lock:
        if _started:
            return
        before = [(lib, lib.omp_get_max_threads()) for lib in _openmp_runtimes()]
        numba.get_num_threads()  # launches the pool (the 'omp' layer sets OpenMP's count)
        for lib, n in before:
            lib.omp_set_num_threads(n)
        _started = True


def _stack_blas() -> list:
    """threadpoolctl controllers of the BLAS libraries loaded in this process except torch's
    (numpy's bundled OpenBLAS first of all); scanned again when modules have been imported."""
    global _blas_libs, _blas_scanned_at
    if _blas_libs is None or _blas_scanned_at != len(sys.modules):
        import numpy  # noqa: F401  (its BLAS must be loaded to be found)
        from threadpoolctl import ThreadpoolController

        _blas_scanned_at = len(sys.modules)
        _blas_libs = [c for c in ThreadpoolController().lib_controllers
                      if c.user_api == "blas" and "torch" not in c.filepath]
    return _blas_libs


@contextlib.contextmanager
def blas_threads_at_most(threads: int) -> Iterator[None]:
    """Run the block with the BLAS libraries numpy and scipy use (not torch's) on at most
    `threads` threads. OpenBLAS's count is process-wide, so it is lowered only when above
    `threads`, only while some caller is inside such a block, and then restored; results do
    not depend on it (the simulator's GEMMs are exact sums: opu_sim.field_kernels)."""
    global _blas_depth
    with _blas_lock:
        libs = _stack_blas()
        _blas_depth += 1
        for c in libs:
            key = c.filepath
            if key not in _blas_saved:  # outermost block: read the count once
                n = c.num_threads
                _blas_saved[key] = [c, n, n]  # controller, count to restore, count now
            entry = _blas_saved[key]
            if entry[2] > threads:
                c.set_num_threads(threads)
                entry[2] = threads
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                for c, n, now in _blas_saved.values():
                    if now != n:
                        c.set_num_threads(n)
                _blas_saved.clear()


_call_limit = threading.local()  # .blas: the BLAS thread cap of the calling thread's call


@contextlib.contextmanager
def blas_limit_for_call(threads: int) -> Iterator[None]:
    """Within this block, BLAS products that go through `capped_blas()` in this thread run on
    at most `threads` threads. Nothing is changed until such a product runs (a project()
    call whose fields need no GEMM pays nothing); the previous limit is restored on exit."""
    old = getattr(_call_limit, "blas", None)
    _call_limit.blas = threads if old is None else min(old, threads)
    try:
        yield
    finally:
        _call_limit.blas = old


def capped_blas() -> contextlib.AbstractContextManager:
    """`blas_threads_at_most` the calling thread's `blas_limit_for_call` limit, or nothing
    when no limit is set: wrap the simulator's BLAS products in it."""
    limit = getattr(_call_limit, "blas", None)
    return contextlib.nullcontext() if limit is None else blas_threads_at_most(limit)


def max_threads() -> int:
    """Most threads a Numba kernel of this process can use (NUMBA_NUM_THREADS)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def default_threads() -> int:
    """Threads the stack uses unless told: torch's intra-op count when torch is imported,
    else the CPUs this process may run on; at most max_threads()."""
    torch = sys.modules.get("torch")
    if torch is not None:
        n = int(torch.get_num_threads())
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count() or 1
    return max(1, min(n, max_threads()))


def check_threads(threads: object) -> int | None:
    """Validate a `threads` setting: None (default_threads() at each call) or 1..max_threads()."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise ConfigurationError(f"threads must be None or a positive integer, got {threads!r}")
    if not 1 <= threads <= max_threads():
        raise ConfigurationError(
            f"threads={threads} is outside 1..{max_threads()} (NUMBA_NUM_THREADS; set that "
            "environment variable before start-up to allow more)"
        )
    return int(threads)


@contextlib.contextmanager
def numba_threads(threads: int | None) -> Iterator[int]:
    """Run the block with Numba kernels on `threads` threads (None: default_threads()) in the
    calling thread, and numpy's BLAS on at most that many (`blas_threads_at_most`); the
    previous counts are restored on exit. Yields the count used."""
    start_numba_pool()
    n = default_threads() if threads is None else threads
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with blas_threads_at_most(n):
            yield n
    finally:
        numba.set_num_threads(old)


start_numba_pool()
