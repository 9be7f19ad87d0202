"""Calibration plots (PNG, matplotlib Agg) and the HTML report that embeds them.

Every plot is FIG_SIZE_IN at FIG_DPI: PLOT_PIXELS = (width, height) pixels. Each function takes
plain arrays (from a Calibration record) and writes one PNG; `write_report` draws whatever the
record holds and writes report.html (self-contained, see opu.report_html) next to the plots.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from calibration.record import Calibration
from firmware_iface.errors import CalibrationError

from .report_html import local_time, render_html

FIG_SIZE_IN = (6.4, 4.0)
FIG_DPI = 100
PLOT_PIXELS = (640, 400)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=FIG_DPI)
    _plt().close(fig)
    return path


def plot_photon_transfer(path: Path, mean_dn: np.ndarray, var_dn2: np.ndarray, gain: float,
                         dark_var_dn2: float, saturation_dn: float) -> Path:
    """Photon transfer curve: temporal variance (DN^2) against mean signal (DN), with the fit."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    ax.plot(mean_dn, var_dn2, "o", ms=3, label="measured (binned pixels)")
    x = np.linspace(0.0, float(np.max(mean_dn)) if len(mean_dn) else 1.0, 50)
    ax.plot(x, gain * x + dark_var_dn2, "-", label=f"K = {gain:.4f} DN/e-")
    ax.axvline(0.7 * saturation_dn, ls=":", c="gray", label="70 % of saturation")
    ax.set(xlabel="mean signal - dark (DN)", ylabel="temporal variance (DN$^2$)",
           title="Photon transfer (EMVA 1288)")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_speckle_histogram(path: Path, intensity: np.ndarray) -> Path:
    """Histogram of I / <I> against the exponential law of fully developed speckle."""
    plt = _plt()
    i = np.asarray(intensity, dtype=np.float64)
    i = i[np.isfinite(i)]
    r = i / i.mean() if i.size and i.mean() > 0 else i
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    ax.hist(r, bins=40, range=(0, 6), density=True, alpha=0.6, label="anchor intensity I(r)")
    x = np.linspace(0, 6, 200)
    ax.plot(x, np.exp(-x), "k-", label="exp(-I/<I>)")
    ax.set_yscale("log")
    ax.set(xlabel="I / <I>", ylabel="density", title="Speckle statistics")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_linearity(path: Path, sum_ab: np.ndarray, z_union: np.ndarray, ratio: float,
                   max_ratio: float = 1.5, predicted_rms: float | None = None) -> Path:
    """Scatter of z(a) + z(b) against z(a u b), with the band the camera noise allows
    (+- max_ratio x the predicted residual rms, 2 sigma wide)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    a, b = np.ravel(z_union), np.ravel(sum_ab)
    ax.plot(a, b, ".", ms=1, alpha=0.4, label="pairs x output pixels")
    lim = float(np.max(np.abs(np.concatenate([a, b])))) if a.size else 1.0
    ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.8, label="exact linearity")
    if predicted_rms is not None and predicted_rms > 0:
        w = 2.0 * max_ratio * predicted_rms
        for sgn in (-1, 1):
            ax.plot([-lim, lim], [-lim + sgn * w, lim + sgn * w], "r--", lw=0.8,
                    label=f"limit: 2 x {max_ratio} x predicted noise" if sgn > 0 else None)
    ax.legend(loc="upper left", fontsize=8)
    ax.set(xlabel="z(a OR b)", ylabel="z(a) + z(b)",
           title=f"Linearity self-test (residual / camera noise = {ratio:.2f}, "
                 f"limit {max_ratio})")
    fig.tight_layout()
    return _save(fig, path)


def plot_decorrelation(path: Path, times_s: np.ndarray, corr: np.ndarray, tau_s: float,
                       tau_low_s: float | None = None, tau_high_s: float | None = None,
                       valid_s: float | None = None) -> Path:
    """Correlation of the reference projection against time, with exp(-2 t / tau), its 95 %
    band and the age up to which the record counts as valid."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    ax.semilogx(times_s, corr, "o-", ms=3, label="measured")
    t = np.geomspace(max(float(np.min(times_s)), 1e-3), float(np.max(times_s)), 100)
    if math.isfinite(tau_s):
        ax.semilogx(t, np.exp(-2 * t / tau_s), "k--", label=f"exp(-2t/tau), tau = {tau_s:.3g} s")
    if tau_low_s and tau_high_s is not None and tau_low_s > 0:
        hi_c = np.exp(-2 * t / tau_high_s) if math.isfinite(tau_high_s) else np.ones_like(t)
        ax.fill_between(t, np.exp(-2 * t / tau_low_s), hi_c, color="gray", alpha=0.3,
                        label="95 % interval of tau")
    if valid_s is not None and math.isfinite(valid_s):
        ax.axvline(valid_s, color="tab:red", ls=":", label=f"record valid for {valid_s:.3g} s")
    ax.set(xlabel="time (s)", ylabel="intensity correlation", title="Stability")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_exposure(path: Path, noise_dn: float, mean_signal_dn: float, headroom_dn: float,
                  clipped: float, exposure_us: float) -> Path:
    """Where the chosen exposure puts the signal: dark noise, mean signal and saturation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    names = ["temporal dark noise", "mean signal (sample inputs)", "saturation above dark"]
    vals = [max(noise_dn, 1e-3), max(mean_signal_dn, 1e-3), max(headroom_dn, 1e-3)]
    ax.barh(names, vals, color=["gray", "tab:blue", "tab:red"])
    ax.set_xscale("log")
    ax.set_xlim(min(vals) / 3.0, max(vals) * 20.0)  # room for the labels
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.3g} DN", va="center")
    ax.set(xlabel="DN (log)", title=f"Exposure {exposure_us:.1f} us: saturated fraction "
                                    f"{clipped:.1e}")
    fig.tight_layout()
    return _save(fig, path)


def plot_dark_map(path: Path, dark_dn: np.ndarray, width: int, height: int,
                  hot: np.ndarray | None = None, dead: np.ndarray | None = None) -> Path:
    """Dark frame over the camera ROI, hot (red) and dead (blue) pixels marked."""
    plt = _plt()
    img = np.asarray(dark_dn, dtype=np.float64).reshape(height, width)
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    lo, hi = np.percentile(img, [1, 99])
    im = ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    fig.colorbar(im, ax=ax, label="DN")
    for mask, colour, name in ((hot, "r", "hot"), (dead, "c", "dead")):
        if mask is not None and np.any(mask):
            ys, xs = np.nonzero(np.asarray(mask).reshape(height, width))
            ax.plot(xs, ys, "s", mfc="none", mec=colour, ms=5, label=f"{name} ({xs.size})")
    if (hot is not None and np.any(hot)) or (dead is not None and np.any(dead)):
        ax.legend(loc="upper right", fontsize=7)
    ax.set(title="Dark frame", xlabel="x (pixels)", ylabel="y (pixels)")
    fig.tight_layout()
    return _save(fig, path)


def write_plots(cal: Calibration, directory: Path, roi_size: tuple[int, int]) -> dict[str, Path]:
    """Every plot the record has data for; returns {name: png path}."""
    directory.mkdir(parents=True, exist_ok=True)
    r, x = cal.results, cal.extra_arrays
    out: dict[str, Path] = {}
    w, h = roi_size
    if cal.dark_dn.size == w * h:
        out["dark_map"] = plot_dark_map(directory / "dark_map.png", cal.dark_dn, w, h,
                                        x.get("defect_hot", cal.hot_pixels), x.get("defect_dead"))
    if cal.anchor_dn.size:
        out["speckle"] = plot_speckle_histogram(directory / "speckle_histogram.png", cal.anchor_dn)
    if "ptc_mean_dn" in x and "ptc" in r:
        p = r["ptc"]
        out["ptc"] = plot_photon_transfer(directory / "photon_transfer.png", x["ptc_mean_dn"],
                                          x["ptc_var_dn2"], p["gain_dn_per_e"],
                                          p["dark_noise_dn"] ** 2, p["saturation_dn"])
    if "lin_sum_ab" in x and "linearity" in r:
        lin = r["linearity"]
        out["linearity"] = plot_linearity(directory / "linearity.png", x["lin_sum_ab"],
                                          x["lin_z_union"], lin["ratio_to_camera_noise"],
                                          lin.get("max_ratio", 1.5), lin.get("predicted_rms"))
    e = r.get("exposure")
    if isinstance(e, dict) and {"noise_dn", "mean_signal_dn", "headroom_dn"} <= set(e):
        out["exposure"] = plot_exposure(directory / "exposure.png", e["noise_dn"],
                                        e["mean_signal_dn"], e["headroom_dn"],
                                        e["clipped_fraction"], e["exposure_us"])
    if "stab_times_s" in x and "stability" in r:
        st = r["stability"]
        out["stability"] = plot_decorrelation(
            directory / "decorrelation.png", x["stab_times_s"], x["stab_correlation"],
            float(st["decorrelation_time_s"]), _float(st.get("tau_low_s")),
            _float(st.get("tau_high_s")), _float(st.get("max_age_s")))
    return out


def _float(v: object) -> float | None:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


ORDER = ("exposure", "dark", "defects", "ptc", "anchor", "linearity", "stability")


def write_report(cal: Calibration, directory: str | Path, roi_size: tuple[int, int],
                 extra: dict | None = None) -> Path:
    """Plots plus report.html (overall PASS/FAIL, every step's quantities with unit,
    acceptable range and status, plots embedded); returns the report path. Raises
    CalibrationError if the directory cannot be written."""
    d = Path(directory)
    results = {**cal.results, **(extra or {})}
    sections = [(k, results[k]) for k in ORDER if k in results]
    sections += [(k, v) for k, v in results.items() if k not in ORDER]
    g = cal.geometry
    header = {
        "device": cal.device_id,
        "inputs x outputs": f"{g.n_in} x {g.n_out}",
        "DMD layout (data, anchor, macro-pixel, columns)": ", ".join(str(v) for v in g.layout),
        "camera ROI (x, y, width, height)": ", ".join(str(v) for v in g.roi),
        "calibrated": local_time(cal.created_s),
        "exposure": f"{cal.exposure_us:.1f} us",
        "software": cal.software_version,
    }
    try:
        plots = write_plots(cal, d, roi_size)
        page, _ = render_html(header, sections, plots)
        path = d / "report.html"
        path.write_text(page)
    except OSError as exc:
        raise CalibrationError(
            f"cannot write the report in {d}: {exc.strerror or exc}; choose a writable "
            "directory (--report DIR)"
        ) from exc
    return path
