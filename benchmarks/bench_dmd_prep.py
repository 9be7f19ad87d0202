"""Host-side DMD preparation throughput (pack 24 patterns per 24-bit image, ERLE, header) for
1920x1080 patterns, on one core, against a plain memory copy (np.copyto) of the same input
bytes measured in the same run.

Run: NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dmd_prep.py
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _timing import best_time  # noqa: E402

from firmware_iface.dlpc900.images import prepare_upload, prepare_upload_elements  # noqa: E402
from firmware_iface.geometry import DmdLayout  # noqa: E402


def copy_time(a: np.ndarray, repeats: int) -> float:
    dst = np.empty_like(a)
    return best_time(lambda: np.copyto(dst, a), repeats)


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    n = 96
    for n_el, mp in ((4096, 16), (4096, 8), (16384, 8)):
        layout = DmdLayout.fit(n_el - 64, 64, max_macro_pixel=mp)
        el = rng.random((n, layout.n_elements)) < 0.5
        t = best_time(lambda el=el, lay=layout: prepare_upload_elements(el, lay), 5)
        tc = copy_time(el, 20)
        size = prepare_upload_elements(el, layout).n_bytes / (n // 24)
        name = f"elements -> ERLE ({layout.n_elements} el, {layout.macro_pixel}px)"
        rows.append((name, n / t, t / tc, size))
        if n_el == 4096 and mp == 16:
            full = layout.render(el[:48])
            t = best_time(lambda full=full: prepare_upload(full), 2)
            tc = copy_time(full, 3)
            size = prepare_upload(full).n_bytes / 2
            rows.append(("rendered macro-pixel images -> ERLE", 48 / t, t / tc, size))
    rand = rng.random((24, 1080, 1920)) < 0.5
    t = best_time(lambda: prepare_upload(rand), 2)
    tc = copy_time(rand, 3)
    size = len(prepare_upload(rand).images[0])
    rows.append(("random full-resolution images -> ERLE", 24 / t, t / tc, size))

    print(f"{'input':<44} {'patterns/s':>12} {'time / copy':>12} {'bytes/image':>12}")
    for name, rate, ratio, size in rows:
        print(f"{name:<44} {rate:>12,.0f} {ratio:>12.1f} {size:>12,.0f}")
    print("time / copy: preparation time over np.copyto of the same input bytes (same run).")
    print("Target >= 10,000 patterns/s (the DLPC900's 1-bit maximum is ~9.5 kHz).")


if __name__ == "__main__":
    main()
