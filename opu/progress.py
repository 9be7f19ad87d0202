"""Progress of long `OPU.project()` calls, counted in camera frames (opt-in).

`project(x, progress=True)` draws a rich progress bar on stderr; `progress=callable` calls
``callable(frames_done, frames_total)`` after each acquisition instead (for GUIs, logs,
tests). The total is known before the first frame (`OPU.frames_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from firmware_iface.errors import InputError

Progress = bool | Callable[[int, int], Any] | None


def check_progress(progress: Any) -> None:
    """Refuse anything but False/None, True or a callable(frames_done, frames_total)."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise InputError(
        f"progress must be True, False or a callable(frames_done, frames_total), got "
        f"{type(progress).__name__}"
    )


@contextmanager
def frame_progress(
    progress: Progress, total: int, description: str
) -> Iterator[Callable[[int], None] | None]:
    """Yields ``advance(n_frames)`` reporting to `progress`, or None when it is off."""
    if not progress:
        yield None
        return
    done = 0
    if callable(progress) and not isinstance(progress, bool):

        def advance(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total)

        yield advance
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar  # noqa: PLC0415

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
