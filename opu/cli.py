"""The `opu` command: calibrate, check and demonstrate an OPU.

    opu info                                   device, geometry, record status
    opu calibrate {exposure,dark,ptc,anchor,stability,all}
    opu selftest                               linearity (and, on the simulator, truth) checks
    opu demo                                   the whole stack on the simulated device

Common options: --device sim|emu|<hardware config> (default sim), --n-in, --n-out, --seed,
--record-dir (default $OPU_RECORD_DIR or ./opu-calibration), --json, --plot, --report DIR.
Simulated devices take --profile FILE.json (DeviceProfile fields to override, nested as in
DeviceProfile.to_dict(), e.g. {"laser": {"photons_per_mirror_us": 1e-6}}) and the shortcuts
--photons-per-mirror-us and --drift-time-s. Exit status: 0 success, 1 a calibration or device
failure (one line on stderr, no traceback), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from calibration.record import Calibration
from calibration.stability import (
    DEFAULT_FIRST_WAIT_S,
    DEFAULT_MAX_DURATION_S,
    DEFAULT_REL_PRECISION,
)
from calibration.steps import RERUNS, STEPS, StepSettings, run_steps
from calibration.store import RecordStore, default_record_dir, record_validity
from firmware_iface.errors import ConfigurationError, OPUError
from opu.sources import parse_device

from .cli_options import build_profile, preflight, save_with_fallback

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class ResultsKeptError(OPUError):
    """The run's results exist (printed, saved elsewhere) but something failed after them."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result


# ---- output ----------------------------------------------------------------------------------
class Ui:
    """Progress bars (stderr) and summary tables (stdout) with rich; silent under --json."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.quiet = quiet
        # not a terminal (a pipe, a file): wide enough that no value is cut or wrapped
        self.out = Console(file=sys.stdout, highlight=False,
                           width=None if sys.stdout.isatty() else 400)
        self.step_now = ""  # "step n/N: name" while a calibration step runs
        self.err = Console(file=sys.stderr)
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Ui:
        self._tasks = {}
        if not self.quiet and self.err.is_terminal:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TaskProgressColumn(), console=self.err, transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def progress(self, stage: str, done: int, total: int) -> None:
        """Calibration progress callback."""
        if self._bar is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done, total=total)

    def step(self, n: int, total: int, name: str) -> None:
        """Announce calibration step n of total (and what it re-runs)."""
        self.step_now = f"step {n}/{total} ({name})"
        also = RERUNS.get(name, "")
        self.note(f"[bold]step {n}/{total}: {name}[/bold]" + (f" -- {also}" if also else ""))

    def note(self, text: str) -> None:
        """A line of plain text (not under --json)."""
        if not self.quiet:
            self.out.print(text)

    def table(self, title: str, rows: dict) -> None:
        """A two-column summary table."""
        if self.quiet:
            return
        from rich.table import Table

        t = Table(title=title, title_justify="left")
        t.add_column("quantity")
        t.add_column("value", justify="right")
        for k, v in rows.items():
            t.add_row(str(k), f"{v:.4g}" if isinstance(v, float) else str(v))
        self.out.print(t)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ---- device ----------------------------------------------------------------------------------
def open_opu(args: argparse.Namespace, calibration: Calibration | None = None) -> Any:
    """An opu.OPU for the command-line options (no calibration is run here)."""
    from opu.device import OPU

    profile = getattr(args, "profile_obj", None) or build_profile(args)
    return OPU(device=args.device, n_in=args.n_in, n_out=args.n_out, seed=args.seed,
               profile=profile, calibration=calibration)


@contextmanager
def _opened(args: argparse.Namespace, opu: Any = None) -> Iterator[Any]:
    """The OPU a command works on: `opu` if one is open already (left open), else a new one
    for the options (closed afterwards), so a command sequence opens the device once."""
    if opu is not None:
        yield opu
        return
    with open_opu(args) as fresh:
        yield fresh


def _settings(args: argparse.Namespace, opu: Any) -> StepSettings:
    return StepSettings(
        n_in=opu.n_in, n_out=opu.n_out, roi=opu.roi, max_exposure_us=args.max_exposure_us,
        stability_duration_s=args.stability_duration_s,
        stability_first_wait_s=args.stability_first_wait_s, prnu=not args.no_prnu,
        seed=args.seed,
    )


def _report(args: argparse.Namespace, cal: Calibration, opu: Any, ui: Ui,
            extra: dict | None = None) -> str | None:
    target = args.report or (str(Path(args.record_dir) / "report") if args.plot else None)
    if target is None:
        return None
    from opu.report import write_report

    path = write_report(cal, target, (opu.roi.width, opu.roi.height), extra)
    ui.note(f"report: {path}")
    return str(path)


# ---- commands --------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace, ui: Ui) -> dict:
    """Device identity, geometry, limits and the state of its calibration record."""
    store = RecordStore(args.record_dir)
    with open_opu(args) as opu:
        src = opu.source
        info = {
            "device_id": src.device_id, "n_in": opu.n_in, "n_out": opu.n_out,
            "dmd_elements": opu.layout.n_elements, "macro_pixel": opu.layout.macro_pixel,
            "roi": f"{opu.roi.width}x{opu.roi.height}+{opu.roi.offset_x}+{opu.roi.offset_y}",
            "exposure_range_us": list(src.exposure_range_us),
            "frame_period_us": src.frame_period_us, "max_dn": src.max_dn,
            "record": str(store.path_for(src.device_id)),
        }
        if store.exists(src.device_id):
            try:
                cal = store.load(src.device_id)
                info["record_age_s"] = cal.age_s()
                info["record_steps"] = ",".join(sorted(cal.results))
                info["record_matches_geometry"] = cal.geometry == opu.geometry
                v = record_validity(cal)
                info["record_valid_for_s"] = v.valid_for_s if v.valid_for_s is not None else (
                    "unknown")
                info["record_stale"] = {True: "yes: run `opu calibrate all`", False: "no",
                                        None: "unknown (no stability step)"}[v.stale]
            except OPUError as exc:
                info["record_problem"] = str(exc)
        else:
            info["record"] += " (none yet: run `opu calibrate all`)"
    ui.table("OPU", info)
    return info


def _load_base(store: RecordStore, opu: Any) -> Calibration | None:
    """The device's record if there is one; refuses another device's or geometry's."""
    dev = opu.source.device_id
    if not store.path_for(dev).exists():
        return None
    cal = store.load(dev)
    if cal.geometry != opu.geometry:
        raise OPUError(
            f"the record {store.path_for(dev)} is for geometry ({cal.geometry}), not "
            f"({opu.geometry}); run `opu calibrate all` with these --n-in/--n-out to replace it"
        )
    return cal


def cmd_calibrate(args: argparse.Namespace, ui: Ui, opu: Any = None) -> dict:
    """Run calibration steps, print their results, then save the record atomically (only if
    all succeed; to a fallback path, named, when the record folder cannot be written). One
    writer per record folder: a concurrent run is refused, naming the holder."""
    steps = list(STEPS) if args.step == "all" else [args.step]
    store = RecordStore(args.record_dir)
    with _opened(args, opu) as opu, store.writer_lock(f"opu calibrate {args.step}"):
        base = None if args.step == "all" else _load_base(store, opu)
        t0 = time.perf_counter()
        with ui:
            cal = run_steps(opu.source, steps, base, _settings(args, opu), ui.progress,
                            on_step=ui.step)
        ui.step_now = "saving the record"
        shown = ["exposure", "dark", "anchor"] if args.step == "exposure" else steps
        for step in shown:
            key = {"dark": ["dark", "defects"], "anchor": ["anchor", "linearity"]}.get(step, [step])
            for k in key:
                if k in cal.results:
                    ui.table(k, cal.results[k])
        path, problem = save_with_fallback(store, cal)
        ui.note(f"record: {path} ({time.perf_counter() - t0:.1f} s)")
        result = {"record": str(path), "report": None, "steps": steps,
                  "results": {k: cal.results[k] for k in cal.results}}
        if problem:
            raise ResultsKeptError(problem, result)
        result["report"] = _report(args, cal, opu, ui)
    return result


def _truth_check(opu: Any, n: int, seed: int) -> dict:
    """Linear and intensity projections against the simulator's exact matrices."""
    rng = np.random.default_rng(seed + 7)
    x = (rng.random((n, opu.n_in)) < 0.5).astype(np.float32)
    g = opu.exact_linear_matrix()
    y = opu.project(x, mode="linear")
    ref = x @ g.T
    t = opu.exact_transmission_matrix()
    yi = opu.project(x, mode="intensity")
    refi = np.abs(x.astype(np.complex64) @ t.T) ** 2
    return {
        "linear_corr_with_truth": float(np.corrcoef(y.ravel(), ref.ravel())[0, 1]),
        "linear_rel_rms_error": float(np.sqrt(np.mean((y - ref) ** 2) / np.mean(ref**2))),
        "linear_output_std": float(y.std()),
        "intensity_corr_with_truth": float(np.corrcoef(yi.ravel(), refi.ravel())[0, 1]),
    }


def cmd_selftest(args: argparse.Namespace, ui: Ui, min_corr: float = 0.9, opu: Any = None) -> dict:
    """Linearity self-test on the stored record; recovery against truth on the simulator."""
    from calibration.linearity import linearity_selftest

    store = RecordStore(args.record_dir)
    with _opened(args, opu) as opu:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cal = store.load_for(opu.source.device_id, opu.geometry)
        for w in caught:
            ui.err.print(f"warning: {w.message}")
        opu.use_calibration(cal)
        ptc = cal.ptc
        with ui:
            lin = linearity_selftest(opu.source, cal,
                                     gain_dn_per_e=ptc.gain_dn_per_e if ptc else None,
                                     dark_noise_dn=ptc.dark_noise_dn if ptc else None,
                                     seed=args.seed, progress=ui.progress)
        opu.source.set_output_pixels(cal.output_pixels)
        out = {"linearity": lin.summary()}
        ui.table("linearity self-test", out["linearity"])
        ok = lin.passed
        if opu.simulator is not None:
            truth = _truth_check(opu, 64, args.seed)
            truth["passed"] = truth["linear_corr_with_truth"] >= min_corr
            ok = ok and truth["passed"]
            out["simulator_truth"] = truth
            ui.table("recovery vs simulator truth", truth)
        out["passed"] = bool(ok)
        _report(args, cal, opu, ui, extra={"selftest": out["linearity"]})
    if not ok:
        raise OPUError(
            "selftest failed: "
            + (f"linearity residual {lin.ratio:.2f}x camera noise; " if not lin.passed else "")
            + "recalibrate with `opu calibrate all`"
        )
    return out


def cmd_demo(args: argparse.Namespace, ui: Ui) -> dict:
    """Calibrate all, selftest and project in both modes on the simulator, one device
    opened once (DFA training: examples/dfa_digits.py)."""
    if not parse_device(args.device).simulated:
        raise ConfigurationError(
            "`opu demo` runs on simulated devices only (--device sim or emu)"
        )
    tmp = None
    if not args.record_dir_given:
        tmp = tempfile.TemporaryDirectory(prefix="opu-demo-")
        args.record_dir = tmp.name
    args.step = "all"
    out: dict = {}
    t0 = time.perf_counter()
    try:
        ui.note(f"[bold]OPU demo[/bold]: {args.device} device, n_in={args.n_in}, "
                f"n_out={args.n_out}")
        with open_opu(args) as opu:
            out["calibrate"] = cmd_calibrate(args, ui, opu)
            # the stability step let hours of device time pass: on a drifting medium the anchor
            # measured before it is stale, so measure it again (what the drift warning asks)
            args.step = "anchor"
            out["recalibrate_anchor"] = cmd_calibrate(args, ui, opu)
            out["selftest"] = cmd_selftest(args, ui, opu=opu)
            rng = np.random.default_rng(args.seed)
            x = (rng.random((32, opu.n_in)) < 0.5).astype(np.float32)
            t1 = time.perf_counter()
            yl = opu.project(x, mode="linear")
            t2 = time.perf_counter()
            yi = opu.project(x, mode="intensity")
            t3 = time.perf_counter()
            out["projection"] = {
                "batch": 32, "linear_std": float(yl.std()), "linear_ms": (t2 - t1) * 1e3,
                "intensity_mean_over_on_inputs": float(yi.mean() / x.sum(axis=1).mean()),
                "intensity_ms": (t3 - t2) * 1e3,
            }
        ui.table("projection (32 random binary inputs)", out["projection"])
        ui.note("DFA training through the OPU: python examples/dfa_digits.py")
    finally:
        if tmp is not None:
            tmp.cleanup()
    out["total_s"] = time.perf_counter() - t0
    ui.note(f"demo finished in {out['total_s']:.1f} s")
    return out


# ---- entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the `opu` command."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("device and geometry")
    g.add_argument("--device", default="sim",
                   help="sim (default), emu, or a hardware config (hw:<config.json>)")
    g.add_argument("--n-in", type=int, default=256, help="input elements (default 256)")
    g.add_argument("--n-out", type=int, default=1024, help="output pixels (default 1024)")
    g.add_argument("--seed", type=int, default=0, help="medium seed (simulated devices)")
    g.add_argument("--profile", help="JSON file of DeviceProfile overrides (simulator)")
    g.add_argument("--photons-per-mirror-us", type=float, help="simulated light level")
    g.add_argument("--drift-time-s", type=float, help="simulated medium decorrelation time, s")
    o = common.add_argument_group("output")
    o.add_argument("--record-dir", default=None,
                   help="calibration records (default $OPU_RECORD_DIR or ./opu-calibration)")
    o.add_argument("--json", action="store_true", help="print machine-readable results only")
    o.add_argument("--plot", action="store_true", help="write PNG plots to <record-dir>/report")
    o.add_argument("--report", metavar="DIR", help="write PNG plots and report.md to DIR")
    c = common.add_argument_group("calibration settings")
    c.add_argument("--max-exposure-us", type=float, default=None,
                   help="exposure ceiling, us (default: the frame period)")
    c.add_argument("--stability-duration-s", type=float, default=DEFAULT_MAX_DURATION_S,
                   help=f"longest stability run, s (default {DEFAULT_MAX_DURATION_S:g}; it stops "
                   f"as soon as tau is known within +-{100 * DEFAULT_REL_PRECISION:g} %%)")
    c.add_argument("--stability-first-wait-s", type=float, default=DEFAULT_FIRST_WAIT_S,
                   help=f"first stability wait, s (default {DEFAULT_FIRST_WAIT_S:g}; shortened "
                   "automatically for a fast medium)")
    c.add_argument("--no-prnu", action="store_true", help="skip the PRNU part of ptc")

    p = argparse.ArgumentParser(prog="opu", description="Calibrate, test and demo an OPU.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", parents=[common], help="device, geometry and record status")
    cal = sub.add_parser("calibrate", parents=[common], help="run a calibration step")
    cal.add_argument("step", choices=[*STEPS, "all"])
    sub.add_parser("selftest", parents=[common], help="linearity self-test and truth check")
    sub.add_parser("demo", parents=[common], help="the whole stack on the simulated device")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the `opu` command; returns the exit status (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    args.record_dir_given = args.record_dir is not None
    if args.record_dir is None:
        args.record_dir = str(default_record_dir())
    ui = Ui(quiet=args.json)
    handlers = {"info": cmd_info, "calibrate": cmd_calibrate, "selftest": cmd_selftest,
                "demo": cmd_demo}
    try:
        args.profile_obj = preflight(args)
        result = handlers[args.command](args, ui)
    except KeyboardInterrupt:
        where = f" during {ui.step_now}" if ui.step_now else ""
        kept = " nothing was saved; the previous record is kept" if args.command in (
            "calibrate", "demo") else ""
        print(f"opu: interrupted{where};{kept or ' nothing was changed'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OPUError, OSError) as exc:
        msg = " ".join("; ".join([str(exc), *getattr(exc, "__notes__", ())]).split())
        if args.json:
            extra = getattr(exc, "result", {})
            print(json.dumps(_jsonable({"ok": False, "error": msg, **extra})))
        print(f"opu: error: {msg}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps(_jsonable({"ok": True, "command": args.command, **result})))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
