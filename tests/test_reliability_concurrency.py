"""One OPU used from several threads: calls serialise, no frames interleave between callers,
and each thread gets exactly what a sequential call returns."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from opu import OPU

N_THREADS = 4


def _hammer(dev: OPU, inputs: list[np.ndarray], mode: str, repeats: int) -> list[list]:
    """Each thread projects its own input `repeats` times, all threads at once."""
    results: list[list] = [[] for _ in inputs]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(repeats):
                results[i].append(dev.project(inputs[i], mode=mode))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a projecting thread hung"
    assert not errors, errors
    return results


@pytest.mark.parametrize("mode", ["linear", "intensity"])
def test_threads_get_exactly_the_sequential_results(ideal_opu, mode):
    rng = np.random.default_rng(42)
    # different batch sizes and kinds, so interleaved frames could not go unnoticed
    inputs = [rng.integers(0, 2, (b, ideal_opu.n_in)).astype(np.uint8) for b in (3, 17, 40, 9)]
    if mode == "linear":
        inputs[1] = rng.integers(-1, 2, (17, ideal_opu.n_in)).astype(np.int8)  # ternary
    sequential = [ideal_opu.project(x, mode=mode) for x in inputs]
    results = _hammer(ideal_opu, inputs, mode, repeats=5)
    for seq, got in zip(sequential, results, strict=True):
        for y in got:
            np.testing.assert_array_equal(y, seq)


def test_threads_match_the_exact_linear_matrix(ideal_opu):
    g = ideal_opu.exact_linear_matrix().astype(np.float64)
    rng = np.random.default_rng(7)
    inputs = [rng.integers(0, 2, (8, ideal_opu.n_in)).astype(np.float32) for _ in range(4)]
    results = _hammer(ideal_opu, inputs, "linear", repeats=3)
    for x, got in zip(inputs, results, strict=True):
        want = x.astype(np.float64) @ g.T
        scale = np.abs(want).max()
        for y in got:
            np.testing.assert_allclose(y, want, atol=1e-4 * scale)


def test_threads_on_the_emulated_stack_serialise():
    pytest.importorskip("opu_sim.emulators.rig")
    with OPU(device="emu", n_in=32, n_out=32, seed=2, noise=False) as dev:
        rng = np.random.default_rng(3)
        inputs = [rng.integers(0, 2, (b, 32)).astype(np.uint8) for b in (2, 5, 3, 4)]
        sequential = [dev.project(x) for x in inputs]
        results = _hammer(dev, inputs, "linear", repeats=2)
    for seq, got in zip(sequential, results, strict=True):
        for y in got:
            np.testing.assert_array_equal(y, seq)
