"""OPU(device="emu"): the real driver stack over the emulated rig gives the simulator's answers.

With every random noise source off (quantisation and clipping on, as a camera always has), the
emulated device's frames, calibration and projections are bit-identical to OPU(device="sim")
with the same seed and profile. With full noise, recovery quality matches the simulator's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_iface.hardware import OPUHardware
from opu import OPU
from opu.cli import main
from opu.emulated import open_hardware, rig_of
from opu_sim.profile import DeviceProfile


def quantised_profile() -> DeviceProfile:
    return DeviceProfile.deterministic()


@pytest.fixture(scope="module")
def pair():
    prof = quantised_profile()
    with OPU(device="sim", n_in=64, n_out=64, seed=7, profile=prof) as sim, OPU(
        device="emu", n_in=64, n_out=64, seed=7, profile=prof
    ) as emu:
        yield sim, emu


def test_emu_source_is_the_hardware_stack(pair):
    _, emu = pair
    assert isinstance(emu.source, OPUHardware)
    assert emu.source.device_id.startswith("camera:EMU-")
    assert emu.source.exposure_range_us == (10.0, 1.0e6)  # the camera's range
    assert emu.source.max_dn == 4095.0


def test_calibration_is_identical(pair):
    sim, emu = pair
    cs, ce = sim.ensure_calibrated(), emu.ensure_calibrated()
    assert ce.exposure_us == cs.exposure_us
    assert np.array_equal(ce.output_pixels, cs.output_pixels)
    assert np.array_equal(ce.dark_dn, cs.dark_dn)
    assert np.array_equal(ce.anchor_dn, cs.anchor_dn)
    assert ce.scale_dn == cs.scale_dn


def test_frames_are_bit_identical_across_lut_chunks(pair):
    sim, emu = pair
    rng = np.random.default_rng(3)
    p = (rng.random((450, sim.layout.n_elements)) < 0.5).astype(np.uint8)  # 400 + 50 on emu
    a = sim.source.acquire(p, 150.0)
    b = emu.source.acquire(p, 150.0)
    assert b.frames.dtype == a.frames.dtype == np.uint16
    assert np.array_equal(a.pixel_ids, b.pixel_ids)
    assert np.array_equal(a.frames, b.frames)
    assert b.reacquired == 0 and len(b.info.run_ids) == 2


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_projections_are_equal(pair, kind):
    sim, emu = pair
    rng = np.random.default_rng(4)
    x = rng.integers(0 if kind == "binary" else -1, 2, size=(40, 64)).astype(np.float32)
    ys, ye = sim.project(x), emu.project(x)
    assert np.array_equal(ys, ye)
    assert np.array_equal(sim.project(x, mode="intensity") if kind == "binary" else ys,
                          emu.project(x, mode="intensity") if kind == "binary" else ye)


def test_full_noise_statistics_match_the_simulator():
    rng = np.random.default_rng(5)
    x = (rng.random((64, 128)) < 0.5).astype(np.float32)
    stats = {}
    for dev in ("sim", "emu"):
        with OPU(device=dev, n_in=128, n_out=128, seed=5) as o:
            truth = x @ o.exact_linear_matrix().T
            y = o.project(x)
            stats[dev] = (
                np.corrcoef(y.ravel(), truth.ravel())[0, 1],
                float(np.std(y - truth) / np.std(truth)),
            )
    # measured: corr 0.983 on both, relative error 0.18-0.19 on both
    assert stats["sim"][0] > 0.97 and stats["emu"][0] > 0.97
    assert abs(stats["emu"][0] - stats["sim"][0]) < 0.01
    assert stats["emu"][1] == pytest.approx(stats["sim"][1], rel=0.1)


def test_wait_advances_the_emulated_clock_and_reopen_works():
    prof = quantised_profile()
    with OPU(device="emu", n_in=16, n_out=16, seed=1, profile=prof, exposure_us=120.0) as o:
        hw = o.source
        rig = rig_of(hw)
        p = np.zeros((2, o.layout.n_elements), np.uint8)
        t0 = hw.acquire(p, 120.0).timestamps_us[-1]
        hw.wait_s(2.5)
        t1 = hw.acquire(p, 120.0).timestamps_us[0]
        # the wait, the rest of the first run (16.3 ms: its spare VSYNC), half a VSYNC period
        # between the next run's first flip and its start (4.2 ms), its UART traffic (~2 ms)
        assert 2.5e6 < t1 - t0 < 2.5e6 + 2.5e4
        first = hw.acquire(p, 120.0).frames
        dev_id = hw.device_id
        hw.close()
        hw2 = open_hardware(rig, o.roi)  # the devices were released: they open again
        try:
            assert np.array_equal(hw2.acquire(p, 120.0).frames, first)
            assert hw2.device_id == dev_id
        finally:
            hw2.close()


def test_opu_cli_calibrates_the_emulated_device(tmp_path, capsys):
    rc = main([
        "calibrate", "all", "--device", "emu", "--n-in", "64", "--n-out", "64",
        "--record-dir", str(tmp_path), "--json", "--stability-duration-s", "60",
    ])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"]
    assert (tmp_path / out["record"].split("/")[-1]).is_file()
    ptc = out["results"]["ptc"]
    # the emulated camera is the profile's K and read noise (within 6 %)
    assert ptc["gain_dn_per_e"] == pytest.approx(
        DeviceProfile.default().camera.gain_dn_per_e, rel=0.06
    )
    assert ptc["read_noise_e"] == pytest.approx(6.0, rel=0.06)
    assert out["results"]["linearity"]["passed"]
