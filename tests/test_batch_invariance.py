"""Batch invariance: with noise off a row's output is the same bits alone, in any batch, in any
chunking (the OPU's, the DMD LUT's), dense or tile by tile, on any thread count.

These are the `numerics` tests: CI runs them again under OPENBLAS_CORETYPE=Haswell (the AVX2
kernel, whose GEMM rounding depends on the call shape; the simulator's binary fields are exact
sums, see opu_sim/coefficient_grid.py and opu_sim/field_kernels.py).
"""

from __future__ import annotations

from dataclasses import replace

import numba as nb
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import firmware_iface.hardware.opu_hardware as hw_mod
import opu.device as device_mod
import opu_sim.bench as bench_mod
from opu import OPU
from opu.emulated import hardware_config, open_hardware
from opu_sim.coefficient_grid import CHUNK_COLS, LIMIT, STEP, is_on_grid, quantise
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.field_kernels import fields
from opu_sim.profile import DeviceProfile
from opu_sim.transmission import TransmissionMatrix

pytestmark = pytest.mark.numerics

BATCHES = (1, 2, 5, 13, 64, 150)


def _with_threads(n: int, f):
    old = nb.get_num_threads()
    nb.set_num_threads(n)
    try:
        return f()
    finally:
        nb.set_num_threads(old)


def _grid_matrix(rng, m, k):
    """A random W on the coefficient grid (what every generator of T returns)."""
    return quantise(rng.standard_normal((m, k)).astype(np.float32) * np.float32(np.sqrt(0.5)))


@pytest.mark.parametrize("kind", ["binary", "ternary", "float"])
def test_field_of_a_row_is_the_same_bits_in_any_batch_tile_and_thread_count(kind):
    rng = np.random.default_rng(10)
    k, m = 9301, 130  # three column chunks; neither a multiple of the kernels' blocks
    w = _grid_matrix(rng, m, k)
    x = (rng.random((150, k)) < 0.5).astype(np.uint8)
    if kind == "ternary":
        x = rng.integers(-1, 2, (150, k)).astype(np.int8)
    if kind == "float":
        x = x * rng.random((150, k)).astype(np.float32)
    row = x[37]
    alone = fields(row[None], w)[0]
    for b in BATCHES:
        batch = x[:b].copy()
        batch[rng.integers(b)] = row
        got = fields(batch, w)
        pos = int(np.flatnonzero((batch == row).all(axis=1))[0])
        assert np.array_equal(got[pos], alone), b
    tiles = np.concatenate([fields(row[None], w[a : a + 48]) for a in range(0, m, 48)], axis=1)
    assert np.array_equal(tiles[0], alone)
    for t in range(1, nb.config.NUMBA_NUM_THREADS + 1):
        assert np.array_equal(_with_threads(t, lambda: fields(x[:64], w))[37], alone)
        with threadpool_limits(t, user_api="blas"):
            assert np.array_equal(fields(x[:64], w)[37], alone)
    truth = row.astype(np.float64) @ w.T.astype(np.float64)
    if kind == "float":
        np.testing.assert_allclose(alone, truth, rtol=0, atol=2e-5 * np.abs(w).sum(axis=1).max())
    else:  # every partial sum is a multiple of STEP below 2**24 STEP: no rounding
        assert np.array_equal(alone, truth)


def test_exact_fields_equal_the_float64_sum_at_a_projection_size():
    """Exact truth: fields of binary rows over 9000 columns of a generated T (three column
    chunks) are the float64 sums bit for bit, for every row of a batch, on this BLAS kernel."""
    tm = TransmissionMatrix(seed=21)
    w = tm.stacked(np.arange(150, dtype=np.int64) * 9973, 0, 9000)
    x = (np.random.default_rng(22).random((97, 9000)) < 0.5).astype(np.uint8)
    got = fields(x, w)
    truth = x.astype(np.float64) @ w.T.astype(np.float64)
    assert np.array_equal(got, truth)
    assert np.array_equal(fields(x[40:41], w)[0], got[40])


def test_generated_coefficients_lie_on_the_grid_within_the_bound():
    """Every entry of T, static or drifting, dense, tile or recorded-knot cache, is a multiple
    of STEP with |value| <= LIMIT, and LIMIT over a chunk of columns stays within 2**24 steps."""
    assert CHUNK_COLS * LIMIT <= 2**24 * STEP and CHUNK_COLS == 4096
    ids = np.arange(64, dtype=np.int64) * 31
    static = TransmissionMatrix(seed=3)
    drifting = TransmissionMatrix(seed=3, drift_time_s=2.0)
    free = TransmissionMatrix(seed=3, drift_time_s=2.0, cache_budget_bytes=0)
    blocks = [static.stacked(ids, 0, 700)]
    for t in (0.0, 0.7, 55.0):
        drifting.set_time(t)
        free.set_time(t)
        blocks.append(drifting.stacked(ids, 0, 700))  # knot cache (advanced in place)
        blocks += [tile for _, tile in free.blocks(ids, 0, 700, 16)]
    for b in blocks:
        assert is_on_grid(b)
        assert np.abs(b).max() <= LIMIT
    assert np.abs(blocks[0]).max() > 2.5  # tails present, not clipped away
    # rounding to the grid is a perturbation of the Gaussian, not a change of it
    assert abs(np.mean(blocks[0].astype(np.float64) ** 2) - 0.5) < 0.01
    assert np.array_equal(quantise(blocks[0]), blocks[0])
    assert np.array_equal(quantise(np.float32([0.3 * STEP, -0.7 * STEP, 9.0, -1e30])),
                          np.float32([0.0, -STEP, LIMIT, -LIMIT]))


def test_exact_rows_take_the_exact_path_whatever_their_dtype():
    rng = np.random.default_rng(11)
    w = _grid_matrix(rng, 70, 90)
    xb = (rng.random((4, 90)) < 0.5).astype(np.uint8)
    mixed = np.vstack([xb.astype(np.float32), rng.random((3, 90)).astype(np.float32)])
    assert np.array_equal(fields(mixed, w)[:4], fields(xb, w))
    assert np.array_equal(fields(xb.astype(bool), w), fields(xb, w))
    xt = rng.integers(-1, 2, (3, 90)).astype(np.int8)
    assert np.array_equal(fields(xt.astype(np.float64), w), fields(xt, w))
    assert np.array_equal(fields(xt, w), xt.astype(np.float64) @ w.T.astype(np.float64))


@pytest.fixture(scope="module")
def ideal():
    with OPU(n_in=96, n_out=80, seed=12, noise=False) as dev:
        dev.ensure_calibrated()
        yield dev


@pytest.mark.parametrize(
    "mode,values", [("intensity", (0, 2)), ("linear", (0, 2)), ("linear", (-1, 2))]
)
def test_project_of_a_row_is_the_same_alone_in_batches_and_chunked(ideal, monkeypatch, mode,
                                                                   values):
    rng = np.random.default_rng(13)
    x = rng.integers(*values, (150, 96)).astype(np.int8)
    x[:, 0] = values[1] - 1  # the batch's kind is the row's kind (binary or ternary)
    enc = "binary" if values[0] == 0 else "ternary"
    row = x[70]
    alone = ideal.project(row, mode=mode, encoding=enc)
    for b in BATCHES:
        batch = x[:b].copy()
        batch[b // 2] = row
        assert np.array_equal(ideal.project(batch, mode=mode, encoding=enc)[b // 2], alone), b
    whole = ideal.project(x, mode=mode, encoding=enc)
    assert np.array_equal(whole[70], alone)
    for frames_per_call in (16, 100):  # the OPU's own chunking of a batch
        monkeypatch.setattr(device_mod, "_MAX_FRAMES_PER_CALL", frames_per_call)
        assert np.array_equal(ideal.project(x, mode=mode, encoding=enc), whole)


def test_matrix_free_tiles_give_the_dense_frames(monkeypatch):
    prof = DeviceProfile.deterministic()
    rng = np.random.default_rng(14)
    with OPU(n_in=64, n_out=100, seed=15, profile=prof) as dense:
        p = (rng.random((9, dense.layout.n_elements)) < 0.5).astype(np.uint8)
        ref = dense.source.acquire(p, 150.0).frames
        ids = dense.source.pixel_ids
    monkeypatch.setattr(bench_mod, "_BLOCK_ROWS", 24)  # several tiles of output pixels
    with OPU(n_in=64, n_out=100, seed=15, profile=prof, cache_budget_bytes=0) as tiled:
        tiled.source.set_output_pixels(ids)
        got = tiled.source.acquire(p, 150.0).frames
        assert len(tiled.source.medium._dense) == 0  # really matrix-free
    assert np.array_equal(got, ref)


@pytest.fixture(scope="module")
def pair():
    """The simulator and the emulated stack on the on-the-fly upload path (the LUT chunking
    under test; the video-pattern path chunks by video frames, tests/test_emu_video.py)."""
    prof = DeviceProfile.deterministic()
    with OPU(device="sim", n_in=64, n_out=64, seed=16, profile=prof) as sim:
        rig = EmulatedRig(prof, 16, sim.layout)
        base = hardware_config(rig)
        usb = replace(base, dmd=replace(base.dmd, pattern_path="usb"))
        with open_hardware(rig, sim.source.roi, usb) as emu:
            yield sim.source, emu
        rig.close()


@pytest.mark.parametrize("lut", [1, 7, 64, 400])
def test_emulated_stack_equals_simulator_for_any_lut_chunking(pair, monkeypatch, lut):
    sim, emu = pair
    monkeypatch.setattr(hw_mod, "MAX_LUT_ENTRIES", lut)  # the host may send shorter sequences
    rng = np.random.default_rng(17)
    p = (rng.random((130 if lut > 1 else 9, sim.layout.n_elements)) < 0.5).astype(np.uint8)
    a = sim.acquire(p, 150.0)
    b = emu.acquire(p, 150.0)
    assert np.array_equal(a.frames, b.frames)
    assert b.info.pattern_path == "usb"
    assert len(b.info.run_ids) == -(-p.shape[0] // lut)


def test_noisy_intensity_depends_on_frame_indices_not_on_chunking(monkeypatch):
    prof = DeviceProfile.default().with_noise(drift=False)  # laser, shot, read, ... all on
    x = (np.random.default_rng(19).random((30, 48)) < 0.5).astype(np.uint8)

    def run(x, frames_per_call=None):
        if frames_per_call:
            monkeypatch.setattr(device_mod, "_MAX_FRAMES_PER_CALL", frames_per_call)
        with OPU(n_in=48, n_out=40, seed=18, profile=prof) as d:
            return d.project(x, mode="intensity")

    whole = run(x)
    assert np.array_equal(run(x, 7), whole)  # the same frames get the same frame indices
    alone = run(x[5])  # first frame after calibration: another frame index, other noise
    assert not np.array_equal(alone, whole[5])
    assert np.array_equal(run(x[5]), alone)  # the same device history gives the same bits
