"""The calibration report a technician reads: one self-contained HTML page.

Overall PASS/FAIL at the top; then one section per step in the order it ran, each with a
table (quantity, value, unit, acceptable range, status) and its plot embedded as a PNG data
URI, so the page is a single file that opens anywhere. Quantities without an acceptance
criterion are shown as "info". `render_html` is pure (record data in, text out).
"""

from __future__ import annotations

import base64
import html
import math
import time
from pathlib import Path

# step -> [(key, label, unit, (low, high) or None)]; None bounds are open
Spec = list[tuple[str, str, str, tuple[float | None, float | None] | None]]
QUANTITIES: dict[str, Spec] = {
    "exposure": [
        ("exposure_us", "exposure", "us", (0.0, None)),
        ("clipped_fraction", "saturated fraction of sample inputs", "", (0.0, 1e-4)),
        ("mean_signal_dn", "mean signal of sample inputs", "DN", (0.0, None)),
        ("noise_dn", "temporal dark noise", "DN", None),
        ("headroom_dn", "saturation level above dark", "DN", (0.0, None)),
        ("steps", "search acquisitions", "", (1, 16)),
    ],
    "dark": [
        ("exposure_us", "exposure", "us", None),
        ("frames", "frames averaged", "", (2, None)),
        ("dark_mean_dn", "mean dark level", "DN", None),
        ("dsnu_dn", "spatial spread of the dark frame", "DN", None),
        ("temporal_noise_dn", "temporal dark noise", "DN", None),
        ("hot_pixels", "hot pixels in the dark frame", "pixels", None),
    ],
    "defects": [
        ("hot_pixels", "hot pixels (long dark exposure)", "pixels", None),
        ("dead_pixels", "dead pixels", "pixels", None),
        ("pixels", "pixels examined", "pixels", None),
        ("median_dark_excess_dn", "median dark excess at long exposure", "DN", None),
    ],
    "ptc": [
        ("gain_dn_per_e", "system gain K", "DN/e-", (0.0, None)),
        ("gain_stderr", "standard error of K", "DN/e-", None),
        ("read_noise_e", "read noise", "e-", (0.0, None)),
        ("dark_noise_dn", "temporal dark noise", "DN", None),
        ("saturation_capacity_e", "saturation capacity (plateau)", "e-", (0.0, None)),
        ("saturation_capacity_varmax_e", "saturation capacity (EMVA variance maximum)", "e-",
         None),
        ("dark_current_mean_e_per_s", "dark current (mean method)", "e-/s", None),
        ("dark_current_var_e_per_s", "dark current (variance method)", "e-/s", None),
        ("quantum_efficiency", "quantum efficiency", "", (0.0, 1.0)),
        ("dsnu_e", "DSNU", "e-", None),
        ("prnu_rel", "PRNU", "", (0.0, 0.1)),
        ("linearity_error_pct", "linearity error (EMVA LE)", "%", (0.0, 3.0)),
        ("snr_max", "maximum SNR", "", None),
        ("dynamic_range_db", "dynamic range", "dB", (30.0, None)),
        ("pixels_used", "pixels used", "pixels", (64, None)),
    ],
    "anchor": [
        ("anchor_elements", "anchor elements ON", "elements", (1, None)),
        ("usable_pixels", "usable pixels in the ROI", "pixels", None),
        ("usable_fraction", "usable fraction of the ROI", "", (0.85, 1.0)),
        ("output_pixels", "output pixels", "pixels", None),
        ("scale_dn_per_unit", "scale", "DN per ON element", (0.0, None)),
        ("anchor_mean_dn", "mean anchor intensity I(r)", "DN", (0.0, None)),
    ],
    "linearity": [
        ("ratio_to_camera_noise", "residual / camera-model noise", "", (0.0, 1.5)),
        ("signal_to_residual", "signal / residual", "", None),
        ("residual_rms", "residual rms", "sqrt(DN)", None),
        ("predicted_rms", "predicted noise rms", "sqrt(DN)", None),
        ("pairs", "input pairs", "", None),
    ],
    "stability": [
        ("decorrelation_time_s", "decorrelation time tau", "s", (0.0, None)),
        ("tau_low_s", "tau, lower 95 % bound", "s", None),
        ("tau_high_s", "tau, upper 95 % bound", "s", None),
        ("max_age_s", "record stays valid for", "s", (0.0, None)),
        ("min_correlation", "validity: intensity correlation above", "", None),
        ("noise_correlation", "same-time correlation c0", "", (0.2, 1.0)),
        ("duration_s", "run duration", "s", None),
        ("repeats", "repeats", "", None),
        ("stop_reason", "schedule ended", "", None),
    ],
}
QUANTITIES["selftest"] = QUANTITIES["linearity"]
TITLES = {"exposure": "Exposure", "dark": "Dark frame", "defects": "Defective pixels",
          "ptc": "Photon transfer (EMVA 1288)", "anchor": "Anchor and output pixels",
          "linearity": "Linearity self-test", "stability": "Stability of the medium",
          "selftest": "Self-test"}
STEP_PLOTS = {"exposure": "exposure", "dark": "dark_map", "defects": "dark_map",
              "ptc": "ptc", "anchor": "speckle", "linearity": "linearity",
              "stability": "stability", "selftest": "linearity"}


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isinf(v):
            return "unbounded" if v > 0 else "-unbounded"
        return f"{v:.4g}"
    return str(v)


def _range_text(r: tuple[float | None, float | None] | None) -> str:
    if r is None:
        return ""
    lo, hi = r
    if hi is None:
        return f"> {_fmt(lo)}" if lo == 0 else f">= {_fmt(lo)}"
    return f"{_fmt(lo)} .. {_fmt(hi)}"


def status(value: object, r: tuple[float | None, float | None] | None) -> str:
    """PASS / FAIL against the acceptable range, 'info' without one."""
    if r is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "info"
    if isinstance(value, float) and math.isnan(value):
        return "FAIL"
    lo, hi = r
    ok = (lo is None or (value > lo if lo == 0 and hi is None else value >= lo)) and (
        hi is None or value <= hi)
    return "PASS" if ok else "FAIL"


def rows(step: str, res: dict) -> list[tuple[str, str, str, str, str]]:
    """(label, value, unit, range, status) for the known quantities of a step, then any other
    number it reported (as info, its key as label)."""
    spec = QUANTITIES.get(step, [])
    out = []
    for key, label, unit, r in spec:
        if key in res:
            out.append((label, _fmt(res[key]), unit, _range_text(r), status(res[key], r)))
    known = {k for k, *_ in spec}
    for key, v in res.items():
        if key not in known and key != "passed" and not isinstance(v, (dict, list)):
            label, unit = _label_unit(key)
            out.append((label, _fmt(v), unit, "", "info"))
    if "passed" in res:
        out.append(("test passed", _fmt(res["passed"]), "", "yes",
                    "PASS" if res["passed"] else "FAIL"))
    return out


_SUFFIX_UNITS = (("_e_per_s", "e-/s"), ("_dn2", "DN^2"), ("_us", "us"), ("_dn", "DN"),
                 ("_pct", "%"), ("_db", "dB"), ("_s", "s"), ("_e", "e-"))


def _label_unit(key: str) -> tuple[str, str]:
    """A readable label and the unit its suffix names (exposure_us -> 'exposure', 'us')."""
    for suffix, unit in _SUFFIX_UNITS:
        if key.endswith(suffix):
            return key[: -len(suffix)].replace("_", " "), unit
    return key.replace("_", " "), ""


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


_CSS = """
body{font-family:sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{margin-bottom:.2em} .verdict{font-size:1.6em;font-weight:bold;padding:.4em .8em;
display:inline-block;border-radius:.3em;color:#fff} .PASS{background:#2a7d2a}
.FAIL{background:#b22222} table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left} td.v{text-align:right}
td.s-PASS{color:#2a7d2a;font-weight:bold} td.s-FAIL{color:#b22222;font-weight:bold}
td.s-info{color:#777} img{max-width:100%;border:1px solid #ddd}
"""


def render_html(header: dict[str, str], sections: list[tuple[str, dict]],
                plots: dict[str, Path]) -> tuple[str, bool]:
    """The page and its overall verdict. header: label -> text (device, geometry, ...);
    sections: (step, results) in the order run; plots: plot name -> PNG path."""
    body, failed, shown = [], [], set()
    for step, res in sections:
        if not isinstance(res, dict):
            continue
        table = rows(step, res)
        failed += [f"{TITLES.get(step, step)}: {label}" for label, *_, st in table
                   if st == "FAIL"]
        if step != "dark" or "defects" not in {k for k, _ in sections}:
            shown_now = STEP_PLOTS.get(step)
        else:
            shown_now = None  # the dark map goes with the defects, where hot/dead are marked
        trs = "".join(
            f"<tr><td>{html.escape(label)}</td><td class=v>{html.escape(v)}</td>"
            f"<td>{html.escape(u)}</td><td>{html.escape(r)}</td><td class=s-{st}>{st}</td></tr>"
            for label, v, u, r, st in table
        )
        body.append(
            f"<section id={step}><h2>{html.escape(TITLES.get(step, step))}</h2><table>"
            "<tr><th>quantity</th><th>value</th><th>unit</th><th>acceptable</th>"
            f"<th>status</th></tr>{trs}</table>"
            + ("" if shown_now is None or shown_now in shown else
               _img(plots.get(shown_now), f"{step} plot")) + "</section>"
        )
        shown.add(shown_now)
    ok = not failed
    verdict = "PASS" if ok else "FAIL"
    why = ("every quantity within its acceptable range" if ok
           else "out of range: " + "; ".join(failed))
    head = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in header.items())
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>OPU calibration report: {verdict}</title><style>{_CSS}</style></head><body>"
        f"<h1>OPU calibration report</h1><p><span class='verdict {verdict}' id=verdict>"
        f"{verdict}</span> {html.escape(why)}</p><table>{head}</table>"
        + "".join(body) + "</body></html>\n"
    )
    return page, ok


def local_time(unix_s: float) -> str:
    """A time with its zone and UTC offset, e.g. 2026-12-01 09:14:03 CET (+0100)."""
    t = time.localtime(unix_s)
    return time.strftime("%Y-%m-%d %H:%M:%S %Z (%z)", t)
