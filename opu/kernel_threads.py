"""Thread count of the Numba kernels of one `project()` call: small calls run on one thread.

A parallel region costs a thread wake-up and a barrier, tens of microseconds on a quiet
machine but a scheduler time slice per region when the cores are shared (measured: a B=128
ternary call 10 -> 512 took 218-335 ms with 2 threads under load 10 and 1.5 ms with one).
Calls below SERIAL_BELOW_PIXEL_FRAMES (frames x output pixels; ~20 ms of single-thread work)
therefore run serially, larger ones on the OPU's thread count (`OPU(threads=)`, an upper
bound). The results are
the same bits either way (the kernels do not depend on the thread count).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba as nb

from firmware_iface.threads import start_numba_pool

SERIAL_BELOW_PIXEL_FRAMES = 1 << 22  # 4.2 M pixel-frames: every B=128 call up to n_out=4096


@contextmanager
def threads_for(pixel_frames: int) -> Iterator[int]:
    """Within this context, Numba kernels launched from this thread use one thread when
    `pixel_frames` is small, else the count already set (OPU(threads=), via
    firmware_iface.threads.numba_threads); yields the count in use."""
    start_numba_pool()
    configured = nb.get_num_threads()
    if pixel_frames >= SERIAL_BELOW_PIXEL_FRAMES or configured == 1:
        yield configured
        return
    nb.set_num_threads(1)
    try:
        yield 1
    finally:
        nb.set_num_threads(configured)
