"""Emulate a host starved of CPU: stop a process for a random time after every slice it runs.

    .venv/bin/python tools/throttle.py PID [--run-ms 20] [--max-stop-ms 900] [--seed 1]

Sends SIGSTOP after `run-ms` milliseconds and SIGCONT after a stop drawn uniformly from
0..max-stop-ms, until the process exits (POSIX only). Used to check that wall-clock deadlines
(the camera readout, the FPGA waits) do not turn a descheduled host into device faults; see
docs/reliability.md section 5. Signal only a process you started.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time


def main(argv: list[str] | None = None) -> int:
    """Throttle PID until it exits; exit status 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("--run-ms", type=float, default=20.0)
    ap.add_argument("--max-stop-ms", type=float, default=900.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.run_ms <= 0 or args.max_stop_ms < 0:
        ap.error("--run-ms must be > 0 and --max-stop-ms >= 0")
    rnd = random.Random(args.seed)
    try:
        while True:
            time.sleep(args.run_ms / 1000)
            os.kill(args.pid, signal.SIGSTOP)
            try:
                time.sleep(rnd.uniform(0, args.max_stop_ms) / 1000)
            finally:
                os.kill(args.pid, signal.SIGCONT)
    except ProcessLookupError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
