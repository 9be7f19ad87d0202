"""The `opu` command never loses work: preflight, fallback save, Ctrl-C, one writer per record
folder, file modes, record validity that info, selftest and OPU agree on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import calibration.steps as steps_mod
import opu.cli as cli
import opu.cli_options as cli_options
from calibration.record import Calibration
from calibration.stability import validity_s
from calibration.store import RecordStore, record_validity
from firmware_iface.errors import CalibrationError
from opu.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--n-in", "32", "--n-out", "128", "--seed", "5"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def no_device(monkeypatch):
    """Fail the test if the command opens the device (preflight must refuse first)."""
    def refuse(*a, **k):
        raise AssertionError("the device was opened before the options were checked")
    monkeypatch.setattr(cli, "open_opu", refuse)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    assert main(["calibrate", "exposure", *SMALL, "--record-dir", str(d), "--json"]) == 0
    return d


def test_unwritable_report_dir_refused_before_acquisition(no_device, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "calibrate", "all", *SMALL, "--record-dir", str(tmp_path),
                       "--report", str(blocker / "rep"))
    assert code == 1 and err.count("\n") == 1
    assert "--report" in err and "not writable" in err


@pytest.mark.parametrize(("argv", "match"), [
    (["--stability-duration-s", "0.5"],
     "--stability-duration-s (0.5 s) must be longer than --stability-first-wait-s (1 s)"),
    (["--max-exposure-us", "-3"], "--max-exposure-us must be a positive number"),
    (["--n-out", "0"], "--n-out must be >= 1"),
])
def test_bad_options_refused_before_acquisition(no_device, capsys, tmp_path, argv, match):
    code, _, err = run(capsys, "calibrate", "all", *SMALL, *argv, "--record-dir",
                       str(tmp_path))
    assert code == 1 and match in err and err.count("\n") == 1


def test_profile_value_of_wrong_type_is_refused(no_device, capsys, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"camera": {"prnu_rel": "0.37"}}))
    code, _, err = run(capsys, "calibrate", "all", *SMALL, "--profile", str(f),
                       "--record-dir", str(tmp_path))
    assert code == 1 and "Traceback" not in err
    assert "'camera.prnu_rel' must be float" in err and '"0.37"' in err
    f.write_text(json.dumps({"camera": {"bit_depth": True}}))
    code, _, err = run(capsys, "info", *SMALL, "--profile", str(f))
    assert code == 1 and "camera.bit_depth" in err


def test_failed_save_prints_results_and_saves_to_fallback(monkeypatch, capsys, tmp_path):
    def broken(self, cal):
        raise CalibrationError("cannot write calibration record: Read-only file system")
    monkeypatch.setattr(RecordStore, "save", broken)
    monkeypatch.setattr(cli_options, "fallback_dir", lambda: tmp_path / "fallback")
    code, out, err = run(capsys, "calibrate", "exposure", *SMALL, "--record-dir",
                         str(tmp_path / "rec"))
    assert code == 1
    saved = list((tmp_path / "fallback").glob("*.npz"))
    assert len(saved) == 1 and str(saved[0]) in err and "Read-only" in err
    assert "exposure_us" in out  # the results were printed before the save
    cal = Calibration.load(saved[0])
    assert cal.exposure_us > 0


def test_ctrl_c_prints_one_line_keeps_record_exits_130(record, monkeypatch, capsys):
    path = next(record.glob("*.npz"))
    before = path.read_bytes()

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(steps_mod, "step_dark", interrupted)
    code, _, err = run(capsys, "calibrate", "dark", *SMALL, "--record-dir", str(record))
    assert code == 130 and err.count("\n") == 1
    assert "interrupted during step 1/1 (dark)" in err and "previous record is kept" in err
    assert path.read_bytes() == before


def test_ctrl_c_in_a_real_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    # a shape whose photon-transfer step takes ~1.5 s on a quiet machine (SMALL's whole run
    # takes ~50 ms once compiled: an interrupt could arrive after the end)
    big = ["--n-in", "256", "--n-out", "8192", "--seed", "5"]
    p = subprocess.Popen([sys.executable, "-m", "opu.cli", "calibrate", "all", *big,
                          "--record-dir", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    for line in p.stdout:  # step lines are printed as each step starts
        if "step 3/5" in line:
            break
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err and "interrupted during step" in err
    assert not list(tmp_path.glob("*.npz"))


def test_second_writer_is_refused_naming_the_holder(record, capsys):
    path = next(record.glob("*.npz"))
    before = path.read_bytes()
    with RecordStore(record).writer_lock("opu calibrate ptc"):
        code, _, err = run(capsys, "calibrate", "exposure", *SMALL, "--max-exposure-us", "20",
                           "--record-dir", str(record))
    assert code == 1 and f"pid {os.getpid()}" in err and "`opu calibrate ptc`" in err
    assert path.read_bytes() == before
    with RecordStore(record).writer_lock("again"):  # released: can be taken again
        pass


@pytest.mark.parametrize(("umask", "mode"), [(0o002, 0o664), (0o077, 0o600), (0o022, 0o644)])
def test_record_mode_follows_umask(record, tmp_path, umask, mode):
    cal = Calibration.load(next(record.glob("*.npz")))
    old = os.umask(umask)
    try:
        p = cal.save(tmp_path / "r.npz")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode


def test_calibrate_shows_step_n_of_n(record, capsys):
    code, out, _ = run(capsys, "calibrate", "anchor", *SMALL, "--record-dir", str(record))
    assert code == 0 and "step 1/1: anchor" in out and "linearity self-test" in out


def test_info_is_not_truncated_when_piped(record, capsys):
    code, out, _ = run(capsys, "info", *SMALL, "--record-dir", str(record))
    path = str(next(record.glob("*.npz")))
    assert code == 0 and path in out.replace("\n", "")
    assert path in out  # on one line, not wrapped


def test_validity_without_stability_is_unknown_and_info_selftest_agree(record, capsys):
    cal = Calibration.load(next(record.glob("*.npz")))
    assert "stability" not in cal.results
    v = record_validity(cal)
    assert v.valid_for_s is None and v.stale is None
    code, out, _ = run(capsys, "info", *SMALL, "--record-dir", str(record), "--json")
    info = json.loads(out)
    assert info["record_valid_for_s"] == "unknown" and "unknown" in info["record_stale"]


def test_validity_follows_measured_tau(record, tmp_path, capsys):
    cal = Calibration.load(next(record.glob("*.npz")))
    cal.results["stability"] = {"decorrelation_time_s": 3600.0, "tau_low_s": 3000.0}
    valid = validity_s(3000.0)  # intensity correlation 0.8, where project() warns
    assert record_validity(cal).valid_for_s == pytest.approx(valid)
    cal.created_s = time.time() - 2 * valid
    RecordStore(tmp_path).save(cal)
    code, out, _ = run(capsys, "info", *SMALL, "--record-dir", str(tmp_path), "--json")
    info = json.loads(out)
    assert info["record_valid_for_s"] == pytest.approx(valid) and info["record_stale"].startswith(
        "yes")
    with pytest.warns(UserWarning, match="opu calibrate all"):
        RecordStore(tmp_path).load_for(cal.device_id, cal.geometry)
    cal.created_s = time.time()
    RecordStore(tmp_path).save(cal)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RecordStore(tmp_path).load_for(cal.device_id, cal.geometry)


@pytest.mark.slow
def test_demo_runs_on_the_emulated_stack(capsys):
    code, out, err = run(capsys, "demo", "--device", "emu", *SMALL, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["selftest"]["passed"] and res["ok"]
