"""The examples' shared plot tail: a headless matplotlib figure saved as a PNG."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def saved_axes(path: str, figsize: tuple[float, float]) -> Iterator[Any]:
    """Yield the Axes of a new figure (figsize in inches, Agg backend: no display needed); on
    exit add the legend, save the figure to `path` (PNG, 120 dpi) and say so."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=figsize)
    yield ax
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot saved to {path}")
