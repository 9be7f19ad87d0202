"""The HTML calibration report: self-contained, verdict on top, units, ranges and status per
quantity, a plot per step, rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from opu.cli import main
from opu.report_html import render_html, rows, status

SMALL = ["--n-in", "32", "--n-out", "128", "--seed", "2"]
STEP_TITLES = ["Exposure", "Dark frame", "Defective pixels", "Photon transfer (EMVA 1288)",
               "Anchor and output pixels", "Linearity self-test", "Stability of the medium"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("rep")
    assert main(["calibrate", "all", *SMALL, "--record-dir", str(d), "--report",
                 str(d / "report"), "--json"]) == 0
    return d / "report" / "report.html"


def test_page_is_self_contained_with_verdict_units_and_sections_in_order(report):
    page = report.read_text()
    assert re.search(r"id=verdict>(PASS|FAIL)</span>", page)
    assert page.index("id=verdict") < page.index("<section")
    # no external resources: every image is embedded
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "href=" not in page
    positions = [page.index(f"<h2>{t}</h2>") for t in STEP_TITLES]
    assert positions == sorted(positions)
    assert len(srcs) == 6  # exposure, dark map (with defects), ptc, speckle, linearity, stability
    for unit in ("DN/e-", "<td>e-</td>", "<td>us</td>", "<td>s</td>"):
        assert unit in page
    assert re.search(r"\(\+\d{4}\)|\(-\d{4}\)", page)  # time with its UTC offset
    assert "&quot;n_in&quot;" not in page and '{"n_in"' not in page  # no JSON dump


def test_status_and_overall_verdict():
    assert status(1.0, (0.0, 1.5)) == "PASS" and status(2.0, (0.0, 1.5)) == "FAIL"
    assert status(0.0, (0.0, None)) == "FAIL" and status(3.0, None) == "info"
    assert status(float("nan"), (0.0, 1.0)) == "FAIL"
    page, ok = render_html({"device": "x"}, [("linearity", {"ratio_to_camera_noise": 2.1,
                                                             "passed": False})], {})
    assert not ok and "id=verdict>FAIL" in page and "residual / camera-model noise" in page
    labels = [r[0] for r in rows("exposure", {"exposure_us": 50.0, "new_thing_dn": 1.0})]
    assert labels == ["exposure", "new thing"]


def _chromium() -> str | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and os.environ.get("OPU_REQUIRE_CHROMIUM"):
        pytest.fail("chromium is required (.ci/run installs it) but not installed")
    return exe


def _browser(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_renders_in_headless_chromium(report, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    url = report.resolve().as_uri()
    dom = _browser(exe, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<table") == 1 + len(STEP_TITLES)
    assert dom.stdout.count("<img") == 6 and "PASS" in dom.stdout
    shot = tmp_path / "shot.png"
    r = _browser(exe, tmp_path, "--window-size=1000,3000", f"--screenshot={shot}", url)
    assert r.returncode == 0 and shot.stat().st_size > 20_000, r.stderr[-2000:]
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), dtype=float)
    assert img.shape[0] >= 2000 and img.std() > 20  # not a blank page
    assert (img < 100).mean() > 0.01  # text and plots drawn in dark ink
