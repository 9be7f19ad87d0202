"""lightonml's API on this stack: replace `lightonml` by `opu.lightonml` in the imports.

`OPU` (this package), `opu.lightonml.context`, `opu.lightonml.encoding.base`,
`opu.lightonml.projections.torch` / `.sklearn`, `opu.lightonml.types`; see docs/lightonml.md.
Imports without torch and scikit-learn (only the matching OPUMap needs them).
"""

from .opu import OPU

__version__ = "1.4.3+opu"
"""The lightonml version whose API this follows, marked as this stack's port."""

_verbose_level = 0


def set_verbose_level(verbose_level: int) -> None:
    """lightonml's log level (0 nothing, 1 info, 2 debug, 3 trace); 1+ shows progress notes."""
    global _verbose_level
    _verbose_level = int(verbose_level)


def get_verbose_level() -> int:
    """The level set by set_verbose_level (default 0)."""
    return _verbose_level


def _blank(*args: object, **kwargs: object) -> None:
    """A logging function that logs nothing."""


def get_print_fn():
    """print at verbose level 1 and above, else a no-op (lightonml's helper)."""
    return print if _verbose_level >= 1 else _blank


def get_debug_fn():
    """print at verbose level 2 and above, else a no-op."""
    return print if _verbose_level >= 2 else _blank


def get_trace_fn():
    """print at verbose level 3 and above, else a no-op."""
    return print if _verbose_level >= 3 else _blank


__all__ = [
    "OPU",
    "__version__",
    "get_debug_fn",
    "get_print_fn",
    "get_trace_fn",
    "get_verbose_level",
    "set_verbose_level",
]
