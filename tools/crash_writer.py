"""Write calibration records in a loop until killed (crash-safety tests kill it with SIGKILL).

    python tools/crash_writer.py RECORD.npz --mb 8

Record k holds results["version"] = k and an extra array `payload` of `--mb` MiB whose every
value is k, so a reader can tell a whole record from a torn one. Prints "wrote k" after each
save (flushed), so the killer knows writes are under way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.fuzz_targets import sample_record  # noqa: E402


def record(version: int, mb: float) -> object:
    """Record number `version` with a payload of `mb` MiB (float32, every value = version)."""
    cal = sample_record()
    cal.results = {"version": version}
    cal.extra_arrays = {"payload": np.full(int(mb * 2**20) // 4, version, np.float32)}
    return cal


def check(cal: object) -> int:
    """The version of a loaded record; ValueError if its payload does not match it."""
    v = int(cal.results["version"])  # type: ignore[attr-defined]
    payload = cal.extra_arrays["payload"]  # type: ignore[attr-defined]
    if not (payload == v).all():
        raise ValueError(f"record {v} carries a payload of another version")
    return v


def main(argv: list[str] | None = None) -> int:
    """Write records version start, start+1, ... to the path forever."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--mb", type=float, default=8.0)
    ap.add_argument("--start", type=int, default=1)
    args = ap.parse_args(argv)
    v = args.start
    while True:
        record(v, args.mb).save(args.path)  # type: ignore[attr-defined]
        print(f"wrote {v}", flush=True)
        v += 1


if __name__ == "__main__":
    raise SystemExit(main())
