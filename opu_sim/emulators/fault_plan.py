"""One fault-injection mechanism for every emulator: `FaultPlan`.

An emulator's fault settings are a dataclass deriving from `FaultPlan`; its fields are the
faults, set at construction or changed in place at any time (`emu.faults.lost_acks = 2`):

- countdowns (int): the next N occurrences fail. The emulator asks `take("lost_acks")` at each
  occurrence; `skip=` names a countdown of occurrences let through first;
- one-off events after N occurrences (int | None): `elapse("disconnect_after_frames")` is True
  once, when the count reaches zero (the field then returns to None);
- index sets (frozenset[int]): `hit("drop_frames", frame_id)`;
- rates (float 0..1): `chance("crc_error_rate")`, drawn from the plan's RNG seeded by `seed`;
- flags (bool): read directly; the emulator calls `fire("disconnect")` when it acts on one.

Every fault that fires is counted in `fired` (name -> count), so tools and tests can tell
whether an injected fault took effect without reading an emulator's private state.

Named one-shot hooks replace swapping an emulator's callbacks: `once(point, action)` runs
`action(*args)` the next time the emulator reaches `point` (e.g. the FPGA emulator's "run",
just before it plans and renders a run), `after=n` skips n occurrences first. The points an
emulator offers are its plan's `HOOK_POINTS`; hooks run in the emulator's thread, under its lock.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any, ClassVar

from firmware_iface.errors import ConfigurationError

__all__ = ["FaultPlan"]


@dataclasses.dataclass
class FaultPlan:
    """Base of the emulators' fault settings (see the module docstring).

    seed: seed of the RNG behind rate faults (reproducible faults); reseeded when assigned.
    """

    HOOK_POINTS: ClassVar[tuple[str, ...]] = ()

    seed: int = dataclasses.field(default=0, kw_only=True)
    fired: dict[str, int] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._hooks: dict[str, list[list[Any]]] = {}
        self.rng = random.Random(self.seed)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "seed":
            super().__setattr__("rng", random.Random(value))

    # ---- asked by the emulator at each occurrence -------------------------------------------
    def take(self, name: str, *, skip: str | None = None) -> bool:
        """One occurrence of what countdown `name` counts: True (one fewer left, counted in
        `fired`) if the fault fires now. With `skip`, that countdown's occurrences pass first."""
        left = getattr(self, name)
        if left <= 0:
            return False
        if skip is not None and getattr(self, skip) > 0:
            setattr(self, skip, getattr(self, skip) - 1)
            return False
        setattr(self, name, left - 1)
        self.fire(name)
        return True

    def elapse(self, name: str) -> bool:
        """One occurrence passes for the one-off event `name` (None: not scheduled): True when
        its count reaches zero (the field is reset to None and the firing counted)."""
        left = getattr(self, name)
        if left is None:
            return False
        left -= 1
        if left > 0:
            setattr(self, name, left)
            return False
        setattr(self, name, None)
        self.fire(name)
        return True

    def hit(self, name: str, index: int) -> bool:
        """True (counted) if `index` is in the index-set fault `name`."""
        if index in getattr(self, name):
            self.fire(name)
            return True
        return False

    def chance(self, name: str) -> bool:
        """True (counted) with the probability of rate fault `name`, from the seeded RNG."""
        p = getattr(self, name)
        if p > 0 and self.rng.random() < p:
            self.fire(name)
            return True
        return False

    def fire(self, name: str) -> None:
        """Count one firing of fault `name` (for faults the emulator applies itself)."""
        self.fired[name] = self.fired.get(name, 0) + 1

    def fired_count(self, name: str) -> int:
        """How many times fault `name` fired since the plan was made."""
        return self.fired.get(name, 0)

    # ---- one-shot hooks ------------------------------------------------------------------------
    def once(self, point: str, action: Callable[..., object], *, after: int = 0) -> None:
        """Run action(*args) once, at the (after+1)-th time the emulator reaches `point`."""
        if point not in self.HOOK_POINTS:
            raise ConfigurationError(
                f"{type(self).__name__} has no hook point {point!r}; points: {self.HOOK_POINTS}"
            )
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ConfigurationError(f"after must be an integer >= 0, got {after!r}")
        self._hooks.setdefault(point, []).append([after, action])

    def run_hooks(self, point: str, *args: Any) -> None:
        """Called by the emulator at `point`: runs (and forgets) the hooks due now."""
        hooks = self._hooks.get(point)
        if not hooks:
            return
        due = []
        for h in list(hooks):
            if h[0] > 0:
                h[0] -= 1
            else:
                hooks.remove(h)
                due.append(h[1])
        for action in due:
            action(*args)

    def pending_hooks(self, point: str | None = None) -> int:
        """Hooks not run yet (at `point`, or at every point)."""
        if point is not None:
            return len(self._hooks.get(point, ()))
        return sum(len(v) for v in self._hooks.values())

    def clear(self) -> None:
        """Every fault back to its default and every hook dropped; `fired` is kept."""
        for f in dataclasses.fields(self):
            if f.init and f.name != "seed":
                default = (
                    f.default_factory()  # type: ignore[misc]
                    if f.default_factory is not dataclasses.MISSING
                    else f.default
                )
                setattr(self, f.name, default)
        self._hooks.clear()
