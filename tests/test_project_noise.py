"""With noise: linearity of the recovered projection within the noise the camera predicts."""

from __future__ import annotations

import numpy as np


def predicted_z_var(dev, intensities_dn: list[np.ndarray]) -> np.ndarray:
    """Variance of z per pixel from shot + read + quantisation + laser noise of the frames."""
    prof = dev.profile
    cam = prof.camera
    k = cam.gain_dn_per_e
    var_dark = (k * cam.read_noise_e) ** 2 + 1 / 12
    sl = prof.laser.power_fluctuation_rel
    v = sum(k * i + var_dark + (sl * i) ** 2 for i in intensities_dn)
    return v / (4 * dev.calibration.anchor_dn)


def test_linearity_disjoint_sum(noisy_opu, rng):
    dev = noisy_opu
    n = dev.n_in
    b = 60
    perm = np.argsort(rng.random((b, n)), axis=1)
    a = np.zeros((b, n), np.uint8)
    c = np.zeros((b, n), np.uint8)
    rows = np.arange(b)[:, None]
    a[rows, perm[:, : n // 4]] = 1
    c[rows, perm[:, n // 4 : n // 2]] = 1
    za, zc, zac = dev.project(a), dev.project(c), dev.project(a | c)
    d = za + zc - zac
    # predicted variance of each term from the noise-free intensities of its two frames
    t = dev.exact_transmission_matrix()  # sqrt(DN per unit / scale) folded in
    cal = dev.calibration
    bench = dev.source
    ids = cal.output_pixels
    ta = bench.transmission(n, 2 * n, pixel_ids=ids)
    gain_px = np.sqrt(bench.dn_per_unit(cal.exposure_us, pixel_ids=ids))
    anchor_field = (ta @ cal.anchor.astype(np.complex64)) * gain_px  # sqrt(DN)

    def frames(x):
        field = (x.astype(np.complex64) @ t.T) * np.sqrt(cal.scale_dn)  # sqrt(DN)
        return [np.abs(field) ** 2, np.abs(field + anchor_field) ** 2]

    gain = 2.0 / cal.scale_dn  # z -> y scale squared
    var = gain * (
        predicted_z_var(dev, frames(a)) + predicted_z_var(dev, frames(c))
        + predicted_z_var(dev, frames(a | c))
    )
    r = d / np.sqrt(var)
    # residuals normalised by the predicted noise: unit spread (calibration error of I(r)
    # and PRNU add a little), no bias
    print("normalised residual std", r.std(), "mean", r.mean())
    assert 0.85 < r.std() < 1.15
    assert abs(r.mean()) < 0.1


def test_noisy_linear_close_to_truth(noisy_opu, rng):
    g = noisy_opu.exact_linear_matrix()
    x = rng.integers(-1, 2, (50, noisy_opu.n_in))
    y = noisy_opu.project(x)
    ref = x @ g.T
    corr = np.corrcoef(y.ravel(), ref.ravel())[0, 1]
    assert corr > 0.99
