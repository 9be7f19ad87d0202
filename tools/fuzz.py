"""Fuzz every codec of the stack with random and mutated bytes for a bounded time.

    PYTHONPATH=. .venv/bin/python tools/fuzz.py --seconds 120 [--target fpga] [--seed 1]

Each target (tools/fuzz_targets.py) gets an equal share of the time. Inputs are golden messages
mutated by bit flips, byte edits, truncation, extension, insertion, deletion, splicing,
length-field edits (0, max, off by one, random), or plain random bytes. Per input it checks:
only the target's typed errors come out, the call returns within `--time-limit-s` and its
traced memory peak (tracemalloc: Python and numpy allocations) stays under `--memory-limit-mb`.
A hard watchdog (faulthandler) ends the process if one input hangs for 20x the time limit; the
input then sits in `<out>/current.bin`. Prints executions per target and the findings; exit 1
if there are findings.
"""

from __future__ import annotations

import argparse
import faulthandler
import mmap
import random
import sys
import time
import traceback
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.fuzz_targets import Target, all_targets  # noqa: E402

MAX_INPUT = 4096
"""Largest input the mutator builds, bytes."""


@dataclass
class Finding:
    """An input that made a target misbehave."""

    target: str
    kind: str  # "exception", "slow", "memory"
    detail: str
    data: bytes
    where: str = ""

    def key(self) -> tuple[str, str, str]:
        """Deduplication key: target, kind, and exception type + location."""
        return (self.target, self.kind, self.where or self.detail[:60])


@dataclass
class Stats:
    """Executions of one target and what they found."""

    target: str
    executions: int = 0
    seconds: float = 0.0
    max_input_s: float = 0.0
    max_peak_bytes: int = 0
    typed_errors: int = 0
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)


# ---- mutation -------------------------------------------------------------------------------
def _boundary(size: int, rng: random.Random, actual: int) -> int:
    top = (1 << (8 * size)) - 1
    v = rng.choice([0, 1, top, top - 1, top >> 1, actual + 1, actual - 1, rng.randrange(top + 1)])
    return min(max(v, 0), top)


def _flip_bits(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    for _ in range(rng.randrange(1, 5)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return data


def _set_byte(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    data[rng.randrange(len(data))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    return data


def _truncate(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    del data[rng.randrange(len(data) + 1):]
    return data


def _extend(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    tail = rng.randbytes(rng.randrange(1, 65)) if rng.random() < 0.7 else bytes(
        rng.randrange(1, 300))
    data += tail
    return data


def _insert(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    i = rng.randrange(len(data) + 1)
    data[i:i] = rng.randbytes(rng.randrange(1, 17))
    return data


def _delete(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    i = rng.randrange(len(data))
    del data[i:i + rng.randrange(1, 17)]
    return data


def _duplicate(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    n = len(data)
    i = rng.randrange(n)
    j = min(n, i + rng.randrange(1, 65))
    k = rng.randrange(n + 1)
    data[k:k] = data[i:j]
    return data


def _splice(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    other = rng.choice(target.seeds)
    i = rng.randrange(len(data) + 1)
    j = rng.randrange(len(other) + 1)
    return data[:i] + bytearray(other[j:])


def _edit_length_field(data: bytearray, rng: random.Random, target: Target) -> bytearray:
    off, size = rng.choice(target.length_fields)
    if off + size <= len(data):
        actual = int.from_bytes(data[off:off + size], "little")
        data[off:off + size] = _boundary(size, rng, actual).to_bytes(size, "little")
    return data


# (mutation, needs a non-empty input, needs the target's length fields), by op number
_MUTATIONS = (
    (_flip_bits, True, False),
    (_set_byte, True, False),
    (_truncate, False, False),
    (_extend, False, False),
    (_insert, False, False),
    (_delete, True, False),
    (_duplicate, True, False),
    (_splice, False, False),
    (_edit_length_field, False, True),
)


def mutate(seed: bytes, target: Target, rng: random.Random) -> bytes:
    """One mutated input from a seed (1-3 stacked mutations, or fresh random bytes)."""
    r = rng.random()
    if r < 0.05:
        return rng.randbytes(rng.randrange(0, 600))
    data = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op, needs_data, needs_fields = _MUTATIONS[rng.randrange(len(_MUTATIONS))]
        if (needs_data and not data) or (needs_fields and not target.length_fields):
            continue
        data = op(data, rng, target)
    return bytes(data[:MAX_INPUT])


# ---- execution ------------------------------------------------------------------------------
def run_input(
    target: Target, data: bytes, stats: Stats, time_limit_s: float, memory_limit: int
) -> Finding | None:
    """Run one input under the time and (traced) memory bounds; record it in stats."""
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    t0 = time.perf_counter()
    finding = None
    try:
        target.run(data)
    except target.allowed:
        stats.typed_errors += 1
    except Exception as exc:  # noqa: BLE001 - any other exception is what we look for
        tb = traceback.extract_tb(exc.__traceback__)
        last = tb[-1] if tb else None
        where = f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}" if last else ""
        finding = Finding(target.name, "exception", f"{type(exc).__name__}: {exc}", data, where)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    used = max(0, peak - base)
    stats.executions += 1
    stats.max_input_s = max(stats.max_input_s, dt)
    stats.max_peak_bytes = max(stats.max_peak_bytes, used)
    if finding is None and dt > time_limit_s:
        finding = Finding(target.name, "slow", f"{dt:.3f} s > {time_limit_s} s", data)
    if finding is None and used > memory_limit:
        finding = Finding(target.name, "memory", f"traced peak {used / 2**20:.1f} MiB", data)
    if finding is not None:
        stats.findings.setdefault(finding.key(), finding)
    return finding


class _CurrentInput:
    """The input being run, mirrored in an mmap'd file so a watchdog exit leaves it on disk."""

    def __init__(self, path: Path | None) -> None:
        self._mm = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(bytes(MAX_INPUT + 64))
            self._fh = open(path, "r+b")  # noqa: SIM115 - kept open for the mmap
            self._mm = mmap.mmap(self._fh.fileno(), MAX_INPUT + 64)

    def set(self, name: str, data: bytes) -> None:
        if self._mm is not None:
            tag = name.encode()[:56].ljust(56, b" ")
            self._mm[:64] = tag + len(data).to_bytes(8, "little")
            self._mm[64:64 + len(data)] = data


def fuzz_target(
    target: Target,
    *,
    seconds: float | None = None,
    executions: int | None = None,
    seed: int = 0,
    time_limit_s: float = 1.0,
    memory_limit: int = 64 << 20,
    current: _CurrentInput | None = None,
    watchdog_s: float | None = None,
) -> Stats:
    """Fuzz one target for `seconds` or `executions` (whichever is given; seeds run first)."""
    if seconds is None and executions is None:
        raise ValueError("give seconds or executions")
    rng = random.Random(f"{seed}:{target.name}")
    stats = Stats(target.name)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    t_end = time.perf_counter() + (seconds if seconds is not None else float("inf"))
    limit = executions if executions is not None else sys.maxsize
    try:
        for s in target.seeds:  # warm-up (numba caches)
            try:
                target.run(s)
            except target.allowed:
                pass
        t0 = time.perf_counter()
        while stats.executions < limit and time.perf_counter() < t_end:
            data = mutate(rng.choice(target.seeds), target, rng)
            if current is not None:
                current.set(target.name, data)
            if watchdog_s:
                faulthandler.dump_traceback_later(watchdog_s, exit=True)
            run_input(target, data, stats, time_limit_s, memory_limit)
        stats.seconds = time.perf_counter() - t0
    finally:
        if watchdog_s:
            faulthandler.cancel_dump_traceback_later()
        if started:
            tracemalloc.stop()
    return stats


def _table(rows: list[Stats]) -> str:
    lines = [f"{'target':26} {'execs':>9} {'execs/s':>9} {'typed err':>9} {'max ms':>8} "
             f"{'peak KiB':>9} {'findings':>8}"]
    for s in rows:
        rate = s.executions / s.seconds if s.seconds else 0.0
        lines.append(
            f"{s.target:26} {s.executions:9d} {rate:9.0f} {s.typed_errors:9d} "
            f"{1e3 * s.max_input_s:8.2f} {s.max_peak_bytes / 1024:9.0f} {len(s.findings):8d}"
        )
    total = sum(s.executions for s in rows)
    lines.append(f"{'total':26} {total:9d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 when there are findings)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="total fuzzing time, s")
    ap.add_argument("--target", default="", help="only targets whose name contains this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit-s", type=float, default=1.0, help="per-input time bound")
    ap.add_argument("--memory-limit-mb", type=float, default=64.0, help="per-input traced peak")
    ap.add_argument("--out", type=Path, default=Path("fuzz-findings"),
                    help="directory for finding inputs and current.bin")
    args = ap.parse_args(argv)
    targets = [t for t in all_targets() if args.target in t.name]
    if not targets:
        print(f"no target matches {args.target!r}", file=sys.stderr)
        return 2
    current = _CurrentInput(args.out / "current.bin")
    share = args.seconds / len(targets)
    rows = []
    for t in targets:
        rows.append(fuzz_target(
            t, seconds=share, seed=args.seed, time_limit_s=args.time_limit_s,
            memory_limit=int(args.memory_limit_mb * 2**20), current=current,
            watchdog_s=max(20 * args.time_limit_s, 10.0),
        ))
        # progress on stderr; the table is printed once, at the end, on stdout
        print(f"fuzzed {t.name} ({len(rows)}/{len(targets)})", file=sys.stderr, flush=True)
    print(_table(rows))
    findings = [f for s in rows for f in s.findings.values()]
    for i, f in enumerate(findings):
        path = args.out / f"{f.target}-{f.kind}-{i}.bin"
        path.write_bytes(f.data)
        print(f"FINDING {f.target} {f.kind}: {f.where or ''} {f.detail[:200]}\n    input "
              f"({len(f.data)} bytes) -> {path}: {f.data[:48].hex()}")
    print(f"{len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
