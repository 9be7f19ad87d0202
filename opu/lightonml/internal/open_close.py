"""The `with` protocol of the compat objects that hold a device: open on entry, close on exit."""

from __future__ import annotations

from typing import Self


class OpenCloseContext:
    """Mixin: `with obj:` calls obj.open() on entry (returning obj) and obj.close() on exit.
    The class defines open() and close()."""

    def open(self) -> None:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
