"""Progress reporting for long calibration steps: a callback (stage, done, total) or None.

Calibration code never prints; the `opu` command turns these calls into a progress bar."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def tick(progress: Progress | None, stage: str, done: int, total: int) -> None:
    """Report that `done` of `total` units of `stage` are finished (no-op without a callback)."""
    if progress is not None:
        progress(stage, done, total)
