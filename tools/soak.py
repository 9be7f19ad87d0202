"""Soak the emulated hardware stack: many frames through OPUHardware (the real DLPC900, FPGA and
camera drivers) against the emulated rig, with faults injected at realistic rates.

    PYTHONPATH=. .venv/bin/python tools/soak.py --frames 100000 [--batch 200] [--seed 0]

The profile is noise-free (the camera still quantises), so a frame depends on its pattern only.
A pool of distinct patterns is acquired once without faults (the reference); every batch then
draws its patterns from the pool, and every returned frame must equal its pattern's reference
frame bit for bit. A frame equal to another pool pattern's reference counts as *misattributed*
(the failure integrity checks exist to prevent). Each batch gets at most one fault kind, drawn
with the rates in FAULT_RATES; a typed error is counted as raised and the batch retried (after a
disconnect: the device is reconnected and a new OPUHardware opened), as a user would.
Prints a table of faults injected, fired (the emulator consumed the fault), detected (host-side
evidence: an integrity problem, re-acquired frames, an FPGA link retry, or a typed error),
recovered (the batch came back correct without an error) and raised. Exit 1 on any wrong frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_iface.errors import DeviceDisconnectedError, OPUError  # noqa: E402
from firmware_iface.geometry import CameraRoi, DmdLayout  # noqa: E402
from firmware_iface.hardware.stats import HardwareStats  # noqa: E402
from opu.emulated import hardware_config, open_hardware  # noqa: E402
from opu_sim.emulators.camera import CameraFaults  # noqa: E402
from opu_sim.emulators.dlpc900 import DLPC900Faults  # noqa: E402
from opu_sim.emulators.fpga import FPGAFaults  # noqa: E402
from opu_sim.emulators.rig import EmulatedRig  # noqa: E402
from opu_sim.profile import DeviceProfile  # noqa: E402

EXPOSURE_US = 150.0
POOL = 400

FAULT_RATES = {
    # probability per batch (of --batch frames, default 200)
    "camera_drop": 0.10,
    "camera_duplicate": 0.06,
    "trigger_lag": 0.06,
    "camera_trigger_missing": 0.03,
    "camera_trigger_extra": 0.03,
    "uart_crc_errors": 0.06,
    "uart_lost_ack": 0.04,
    "uart_lost_event": 0.03,
    "dmd_usb_timeout": 0.04,
    "camera_usb_timeout": 0.04,
    "dmd_nack": 0.04,
    "camera_disconnect": 0.004,
    "fpga_disconnect": 0.002,
}


_TRIGGER_FAULTS = {  # soak fault kind -> FPGAFaults index-set field
    "trigger_lag": "trigger_lag_frames",
    "camera_trigger_missing": "missing_camera_triggers",
    "camera_trigger_extra": "extra_camera_triggers",
}
_FPGA_LINK_FAULTS = {  # soak fault kind -> (FPGAFaults field, value)
    "uart_crc_errors": ("crc_error_rate", 0.05),
    "uart_lost_ack": ("lost_acks", 1),
    "uart_lost_event": ("lost_events", 1),
}


def quantised_profile() -> DeviceProfile:
    """No random noise, no drift; the camera still quantises and clips."""
    return DeviceProfile.deterministic()


@dataclass
class Row:
    """Counts of one fault kind."""

    injected: int = 0
    fired: int = 0
    detected: int = 0
    recovered: int = 0
    raised: int = 0


@dataclass
class SoakResult:
    """Outcome of a soak run: batches of `batch` frames checked, frames wrong or attributed to
    another pattern, reopens, the fault table, typed errors by class, and `hardware`, the host
    stack's statistics summed over every OPUHardware the soak opened."""

    batch: int
    rows: dict[str, Row]
    hardware: HardwareStats = field(default_factory=HardwareStats)
    errors: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    wrong_frames: int = 0
    misattributed: int = 0
    reopened: int = 0
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        """Frames delivered and checked."""
        return self.batches * self.batch

    @property
    def reacquired_frames(self) -> int:
        """Frames the host stack acquired again (integrity problems, failed runs)."""
        return self.hardware.reacquired_frames

    def table(self) -> str:
        """The fault table and the totals, as text."""
        lines = [f"{'fault':24} {'injected':>8} {'fired':>6} {'detected':>8} {'recovered':>9} "
                 f"{'raised':>6}"]
        for name, r in self.rows.items():
            lines.append(f"{name:24} {r.injected:8d} {r.fired:6d} {r.detected:8d} "
                         f"{r.recovered:9d} {r.raised:6d}")
        rate = self.frames / self.seconds if self.seconds else 0.0
        lines += [
            "",
            f"frames delivered and checked: {self.frames}  batches: {self.batches}  "
            f"({self.seconds:.0f} s, {rate:.0f} frames/s)",
            f"re-acquired frames: {self.reacquired_frames}  failed runs: "
            f"{self.hardware.failed_runs}  integrity problems: {dict(self.hardware.problems)}",
            f"reopened: {self.reopened}  typed errors: {dict(self.errors) or 0}",
            f"wrong frames: {self.wrong_frames}  misattributed to another pattern: "
            f"{self.misattributed}",
        ]
        return "\n".join(lines)


class Soak:
    """The rig, the host stack, the reference pool and the fault injectors."""

    def __init__(self, seed: int = 0, batch: int = 200) -> None:
        self.rng = np.random.default_rng(seed)
        self.batch = batch
        self.layout = DmdLayout.fit(48, 48)
        self.roi = CameraRoi.centred(64, 1920, 1200)
        self.rig = EmulatedRig(quantised_profile(), 11 + seed, self.layout)
        self.hw = open_hardware(self.rig, self.roi, self._config())
        self.pool = (self.rng.random((POOL, self.layout.n_elements)) < 0.5).astype(np.uint8)
        self.ref = self.hw.acquire(self.pool, EXPOSURE_US).frames.copy()
        self._ref_index = {r.tobytes(): i for i, r in enumerate(self.ref)}
        if len(self._ref_index) != POOL:
            raise RuntimeError("reference frames are not distinct; misattribution would hide")
        self.result = SoakResult(batch, rows={k: Row() for k in FAULT_RATES})
        self._closed_stats = HardwareStats()  # of the OPUHardware sessions closed by reopen()
        self._fired: Callable[[], bool] = lambda: False

    # ---- fault injection ----------------------------------------------------------------------
    def _for_next_run(self, apply: Callable[[], None], clear: Callable[[], None]) -> None:
        """Apply a fault when the next run starts (before the FPGA plans its triggers and the
        rig renders it); clear it once that run is rendered (the FPGA fault plan's hooks)."""
        faults = self.rig.fpga.faults
        faults.once("run", apply)
        faults.once("run_rendered", clear)

    def inject(self, kind: str) -> None:
        """Set up one fault of `kind` for the next batch; self._fired tells if it fired."""
        rig, b = self.rig, self.batch
        k = int(self.rng.integers(0, b))
        fired = {"v": False}

        def mark() -> None:
            fired["v"] = True

        self._fired = lambda: fired["v"]
        if kind in ("camera_drop", "camera_duplicate"):
            def apply() -> None:
                ids = frozenset({rig.camera.frame_counter + k})
                rig.camera.faults = (CameraFaults(drop_frames=ids) if kind == "camera_drop"
                                     else CameraFaults(duplicate_frames=ids))
                mark()
            self._for_next_run(apply, lambda: setattr(rig.camera, "faults", CameraFaults()))
        elif kind in _TRIGGER_FAULTS:
            plan, name = rig.fpga.faults, _TRIGGER_FAULTS[kind]
            self._for_next_run(lambda: setattr(plan, name, frozenset({k})),
                               lambda: setattr(plan, name, frozenset()))
            self._fired = lambda: plan.fired_count(name) > 0
        elif kind in _FPGA_LINK_FAULTS:
            name, value = _FPGA_LINK_FAULTS[kind]
            plan = rig.fpga.faults = FPGAFaults(**{name: value},
                                                seed=int(self.rng.integers(1 << 30)))
            self._fired = lambda: plan.fired_count(name) > 0
        elif kind == "dmd_usb_timeout":
            dmd = rig.dmd.faults = DLPC900Faults(
                usb_timeouts=1, timeouts_after_reports=int(self.rng.integers(0, 50)))
            self._fired = lambda: dmd.usb_timeouts == 0
        elif kind == "camera_usb_timeout":
            cam = rig.camera.faults = CameraFaults(usb_timeouts=1)
            self._fired = lambda: cam.fired_count("usb_timeouts") > 0
        elif kind == "dmd_nack":
            dmd = rig.dmd.faults = DLPC900Faults(nack_uploads=1)
            self._fired = lambda: dmd.nack_uploads == 0
        elif kind == "camera_disconnect":
            def unplug() -> None:
                rig.camera.faults = CameraFaults(disconnect=True)
                mark()
            self._for_next_run(unplug, lambda: None)
        elif kind == "fpga_disconnect":
            self._for_next_run(lambda: (setattr(rig.fpga.faults, "disconnect", True), mark()),
                               lambda: None)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")

    def clear_faults(self) -> None:
        """Every emulator back to fault-free, devices plugged in."""
        rig = self.rig
        rig.camera.faults = CameraFaults()
        rig.dmd.faults = DLPC900Faults()
        rig.fpga.faults = FPGAFaults()

    def reopen(self) -> None:
        """Reconnect every device and open a new OPUHardware (what a technician does)."""
        self.clear_faults()
        self.rig.dmd.reconnect()
        self.rig.fpga.reconnect()
        self._closed_stats += self.hw.stats
        self.hw.close()
        self.hw = open_hardware(self.rig, self.roi, self._config())
        self.result.reopened += 1

    def _config(self):  # noqa: ANN202
        """The rig's config on the on-the-fly upload path, where the DMD's USB faults apply
        (the video-pattern path's faults: tests/test_emu_video.py)."""
        base = hardware_config(self.rig)
        return dataclasses.replace(base, dmd=dataclasses.replace(base.dmd, pattern_path="usb"))

    # ---- one batch ------------------------------------------------------------------------------
    def _evidence(self) -> tuple:
        st, fpga = self.hw.stats, self.hw.fpga
        link = fpga.link_stats if fpga is not None else None
        return (st.reacquired_frames, sum(st.problems.values()), st.failed_runs,
                (link.resends, link.decode_errors, link.events_lost, link.log_reads)
                if link is not None else None)

    def run_batch(self, kind: str | None) -> None:
        """One batch with at most one fault; retried after typed errors until it succeeds."""
        res = self.result
        idx = self.rng.integers(0, POOL, self.batch)
        row = res.rows[kind] if kind else None
        if kind:
            row.injected += 1
            self.inject(kind)
        detected = raised = False
        for _attempt in range(6):
            before = self._evidence()
            try:
                frames = self.hw.acquire(self.pool[idx], EXPOSURE_US).frames
            except OPUError as exc:
                res.errors[type(exc).__name__] += 1
                detected = raised = True
                if isinstance(exc, DeviceDisconnectedError) or self.hw.lost:
                    self.reopen()
                else:
                    self.clear_faults()
                continue
            if self._evidence() != before:
                detected = True
            self._check(idx, frames)
            break
        else:
            raise RuntimeError(f"batch with fault {kind} failed 6 times in a row")
        if row is not None:
            row.fired += bool(self._fired())
            row.detected += detected
            row.raised += raised
            row.recovered += not raised
        self.clear_faults()
        res.batches += 1
        res.hardware = self._closed_stats + self.hw.stats

    def _check(self, idx: np.ndarray, frames: np.ndarray) -> None:
        bad = np.flatnonzero((frames != self.ref[idx]).any(axis=1))
        self.result.wrong_frames += bad.size
        for i in bad:
            if self._ref_index.get(np.ascontiguousarray(frames[i]).tobytes()) is not None:
                self.result.misattributed += 1

    def run(self, n_frames: int, progress: bool = False) -> SoakResult:
        """Soak for n_frames frames (rounded up to whole batches)."""
        kinds = list(FAULT_RATES)
        probs = np.array([FAULT_RATES[k] for k in kinds])
        t0 = time.perf_counter()
        n_batches = -(-n_frames // self.batch)
        for i in range(n_batches):
            u = self.rng.random()
            cum = np.cumsum(probs)
            j = int(np.searchsorted(cum, u, side="right"))
            self.run_batch(kinds[j] if j < len(kinds) else None)
            if progress and (i + 1) % 50 == 0:
                print(f"  {self.result.frames} frames, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr, flush=True)
        self.result.seconds = time.perf_counter() - t0
        return self.result

    def close(self) -> None:
        """Release the host stack."""
        self.hw.close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit 1 when any frame was wrong."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=200, help="frames per acquire call")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    soak = Soak(seed=args.seed, batch=args.batch)
    try:
        res = soak.run(args.frames, progress=True)
    finally:
        soak.close()
    print(res.table())
    return 1 if res.wrong_frames or res.misattributed else 0


if __name__ == "__main__":
    raise SystemExit(main())
