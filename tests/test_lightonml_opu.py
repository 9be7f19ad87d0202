"""opu.lightonml.OPU: documented shapes, types, contexts and scalings, checked against the
simulator's exact matrices (noise-free) and against statistics (with noise)."""

from __future__ import annotations

import datetime as dt
import json
import math
import pickle

import numpy as np
import pytest

from opu.lightonml import OPU
from opu.lightonml.context import Context, ContextArray
from opu.lightonml.encoding.base import SeparatedBitPlanDecoder, SeparatedBitPlanEncoder
from opu.lightonml.internal.simulated_device import CONFIG_ENV, SimulatedOpuDevice
from opu.lightonml.types import FeaturesFormat, InputRoiStrategy, OutputRescaling

N_C = 24
N_F = 40
RNG = np.random.default_rng(7)


def _bin(*shape):
    return RNG.integers(0, 2, size=shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def exact():
    """A noise-free simulated OPU fit for N_F features (shared: calibration costs ~0.5 s)."""
    o = OPU(n_components=N_C, opu_device=SimulatedOpuDevice(seed=3, noise=False),
            max_n_features=100)
    o.fit1d(n_features=N_F)
    yield o
    o.close()


def test_transform_is_the_intensity_of_the_random_matrix(exact):
    exact.fit1d(n_features=N_F)
    x = _bin(9, N_F)
    y = exact.transform(x)
    assert isinstance(y, ContextArray) and y.dtype == np.float32 and y.shape == (9, N_C)
    r = exact.device.random_matrix
    assert r.shape == (N_F, N_C)
    np.testing.assert_allclose(y, np.abs(x @ r) ** 2, rtol=1e-4, atol=1e-3)
    # scale: E|R_ij|^2 = 1, so outputs average the number of ON features
    assert np.mean(np.abs(r) ** 2) == pytest.approx(1.0, rel=0.25)


@pytest.mark.parametrize(
    "rescale, factor",
    [(OutputRescaling.none, lambda nf, nc: 1.0), ("variance", lambda nf, nc: math.sqrt(nf)),
     (OutputRescaling.norm, lambda nf, nc: math.sqrt(nc))],
)
def test_linear_transform_rescaling_is_the_documented_one(exact, rescale, factor):
    exact.fit1d(n_features=N_F)
    exact.rescale = rescale
    try:
        g = exact.device.linear_matrix
        for x in (_bin(5, N_F), RNG.integers(-1, 2, size=(5, N_F)).astype(np.int8)):
            y = exact.linear_transform(x)
            assert y.dtype == np.float32 and y.shape == (5, N_C)
            np.testing.assert_allclose(y, x @ g / factor(N_F, N_C), rtol=1e-4, atol=1e-4)
    finally:
        exact.rescale = OutputRescaling.variance


def test_linear_transform_of_real_values_with_and_without_bitplane_encoders(exact):
    """Real input: the stack's own 8-bit encoding, or lightonml's Separated encoder pair; one
    encoder/decoder pair serves batches of different magnitudes and signs (lightonml issue 6)."""
    exact.fit1d(n_features=N_F)
    exact.rescale = "none"
    try:
        g = exact.device.linear_matrix.astype(np.float64)
        enc, dec = SeparatedBitPlanEncoder(precision=8), SeparatedBitPlanDecoder(precision=8)
        for x in (RNG.normal(size=(4, N_F)), 50 * np.abs(RNG.normal(size=(3, N_F)))):
            tol = np.abs(x).max() / 255 * np.abs(g).sum(axis=0).max()
            np.testing.assert_allclose(exact.linear_transform(x), x @ g, atol=tol)
            np.testing.assert_allclose(exact.linear_transform(x, enc, dec), x @ g, atol=tol)
        assert dec.magnitude_p == 1.0
        y_cls = exact.linear_transform(x, SeparatedBitPlanEncoder, SeparatedBitPlanDecoder)
        np.testing.assert_allclose(y_cls, x @ g, atol=np.abs(x).max() / 63 * 10)
    finally:
        exact.rescale = "variance"


@pytest.mark.parametrize(
    "shape, fit, out",
    [((N_F,), "1d", (N_C,)), ((1, N_F), "1d", (1, N_C)), ((6, N_F), "1d", (6, N_C)),
     ((2, 3, N_F), "1d", (2, 3, N_C)), ((5, 8), "2d", (N_C,)), ((4, 5, 8), "2d", (4, N_C)),
     ((2, 3, 5, 8), "2d", (2, 3, N_C))],
)
def test_documented_input_and_output_shapes(exact, shape, fit, out):
    x = _bin(*shape)
    y = exact.fit_transform1d(x) if fit == "1d" else exact.fit_transform2d(x)
    assert y.shape == out and isinstance(y, ContextArray)
    flat = x.reshape(-1, x.shape[-1] if fit == "1d" else 40)
    np.testing.assert_allclose(
        y.reshape(-1, N_C), np.abs(flat @ exact.device.random_matrix) ** 2, rtol=1e-4, atol=1e-3
    )


def test_packed_input_equals_unpacked(exact):
    x = _bin(7, N_F)
    want = exact.fit_transform1d(x)
    np.testing.assert_allclose(exact.fit_transform1d(np.packbits(x, axis=1), packed=True), want)
    x2 = x.reshape(7, 5, 8)
    p2 = np.packbits(x2.reshape(7, -1), axis=1)
    np.testing.assert_allclose(exact.fit_transform2d(p2, packed=True, n_2d_features=(5, 8)), want)
    exact.fit1d(n_features=N_F)
    want_linear = exact.linear_transform(x)
    exact.fit1d(n_features=N_F, packed=True)
    np.testing.assert_allclose(exact.linear_transform(np.packbits(x, axis=1)), want_linear)


def test_torch_input_gives_torch_output(exact):
    torch = pytest.importorskip("torch")
    x = torch.randint(0, 2, (3, N_F), dtype=torch.uint8)
    y = exact.fit_transform1d(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (3, N_C)
    np.testing.assert_allclose(y.numpy(), exact.transform(x.numpy()))
    yl = exact.linear_transform(torch.randn(3, N_F))
    assert isinstance(yl, torch.Tensor) and yl.shape == (3, N_C)
    half = exact.transform(x.to(torch.bfloat16))  # half precision tensors are accepted
    np.testing.assert_allclose(half.numpy(), y.numpy())


def test_context_is_filled_from_the_acquisition(exact):
    exact.fit1d(n_features=N_F)
    x = _bin(5, N_F)
    before = dt.datetime.now()
    y = exact.transform(x)
    c = y.context
    stack = exact.device.stack
    assert c.exposure_us == pytest.approx(stack.calibration.exposure_us)
    assert c.frametime_us == pytest.approx(stack.frame_period_us)
    roi = stack.roi
    assert c.output_roi == ((roi.offset_x, roi.offset_y), (roi.width, roi.height))
    assert before <= c.start <= c.end <= dt.datetime.now()
    assert c.fmt_type is FeaturesFormat.lined and c.fmt_factor == stack.layout.macro_pixel
    assert c.n_ones == pytest.approx(x.sum(axis=1).mean() * c.fmt_factor**2)
    (x0, y0), (w, h) = c.input_roi
    assert w * h >= N_F * c.fmt_factor**2 and x0 + w <= 1920 and y0 + h <= 1080
    d = c.as_dict()
    assert {"exposure_us", "frametime_us", "output_roi", "start", "end", "input_roi", "n_ones",
            "fmt_type", "fmt_factor"} <= set(d)
    assert Context.from_dict(d) == c and Context.from_dict(c.as_flat_dict()) == c
    assert y[1:3].context is c  # views keep it
    assert pickle.loads(pickle.dumps(y)).context == c
    np.testing.assert_array_equal(np.array(y), y)


def test_errors_are_typed_and_say_what_to_do():
    o = OPU(n_components=8, simulated=True, max_n_features=20)
    with pytest.raises(AssertionError, match="fit1d or fit2d"):
        o.transform(_bin(2, 10))
    with pytest.raises(ValueError, match="greater than"):
        o.fit1d(n_features=21)
    o.fit1d(n_features=10)
    with pytest.raises(ValueError, match="binary"):
        o.transform(RNG.normal(size=(2, 10)))
    with pytest.raises(ValueError, match="fit1d/fit2d"):
        o.transform(_bin(2, 11))
    with pytest.raises(ValueError, match="n_components"):
        o.n_components = 10**9
    with pytest.raises(ValueError, match="rescale"):
        o.rescale = "unit"
    with pytest.raises(ValueError, match="conflicting"):
        OPU(simulated=True, opu_device=SimulatedOpuDevice())
    o.close()
    with pytest.raises(AssertionError, match="open"):
        o.transform(_bin(2, 10))


def test_close_and_reopen_keep_the_matrix_and_pickle_restores_it(exact):
    o = OPU(n_components=8, opu_device=SimulatedOpuDevice(seed=5, noise=False),
            max_n_features=30)
    x = _bin(4, 12)
    o.fit1d(x)
    y = o.transform(x)
    o.close()
    o.open()
    np.testing.assert_allclose(o.transform(x), y, rtol=1e-5)
    o2 = pickle.loads(pickle.dumps(o))
    np.testing.assert_allclose(o2.transform(x), y, rtol=1e-5)
    with o2:
        pass
    o.close()
    o2.close()


def test_seed_chooses_the_medium_and_noise_is_real():
    x = _bin(3, 12)
    outs = {}
    for seed, noise in ((0, False), (1, False), (0, True)):
        with OPU(n_components=8, opu_device=SimulatedOpuDevice(seed=seed, noise=noise),
                 max_n_features=30) as o:
            outs[seed, noise] = (o.fit_transform1d(x), o.transform(x))
    a, b = outs[0, False]
    np.testing.assert_array_equal(a, b)  # noise-free: repeatable
    assert not np.allclose(outs[1, False][0], a, rtol=0.05)  # another medium
    n1, n2 = outs[0, True]
    assert not np.array_equal(n1, n2)  # camera noise differs between calls
    assert np.corrcoef(n1.ravel(), n2.ravel())[0, 1] > 0.95  # ... around one projection


def test_small_roi_strategy_uses_the_first_columns_of_one_matrix():
    o = OPU(n_components=8, opu_device=SimulatedOpuDevice(noise=False), max_n_features=30,
            input_roi_strategy=InputRoiStrategy.small)
    x = _bin(4, 12)
    y = o.fit_transform1d(x)
    r = o.device.random_matrix
    assert r.shape == (30, 8)
    np.testing.assert_allclose(y, np.abs(x @ r[:12]) ** 2, rtol=1e-4, atol=1e-3)
    o.close()


def test_variance_and_norm_rescaling_statistics_with_noise():
    """variance: unit-variance outputs for a standard Gaussian input; norm: ||y|| ~ ||x||."""
    with OPU(n_components=200, simulated=True, max_n_features=64) as o:
        x = RNG.normal(size=(40, 64))
        o.fit1d(x)
        y = o.linear_transform(x)
        assert np.var(y) == pytest.approx(1.0, rel=0.15)
        o.rescale = OutputRescaling.norm
        ratio = np.sum(o.linear_transform(x) ** 2, axis=1) / np.sum(x**2, axis=1)
        assert np.mean(ratio) == pytest.approx(1.0, rel=0.15)


def test_device_comes_from_config_file_env_or_override(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(RuntimeError, match="simulated=True"):
        OPU(n_components=8)
    cfg = tmp_path / "opu.json"
    cfg.write_text(json.dumps({"device": "sim", "seed": 2, "noise": False, "name": "bench"}))
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    o = OPU(n_components=8)
    assert o.config["device"] == "sim" and o.config["seed"] == 2
    o2 = OPU(n_components=8, config_file=str(cfg), config_override={"seed": 4})
    assert o2.config["seed"] == 4
    with pytest.raises(ValueError, match="unknown keys"):
        OPU(n_components=8, config_override={"frametime": 3})
    cfg.write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        OPU(n_components=8)


def test_emulated_hardware_device():
    """The same calls through the real driver stack against emulated devices."""
    with OPU(n_components=16, opu_device="emu", config_override={"seed": 1}) as o:
        assert not o.simulated and o.max_n_features > 10**5
        x = _bin(6, 20)
        y = o.fit_transform1d(x)
        assert y.shape == (6, 16) and y.context.exposure_us > 0
        # intensity scale: outputs average the number of ON features
        assert np.mean(y) == pytest.approx(x.sum(axis=1).mean(), rel=0.35)
        assert o.linear_transform(x).shape == (6, 16)
        # the documented variance rescaling holds on this device too: Var(y) = ||x||^2 / n
        t = RNG.integers(-1, 2, size=(40, 20)).astype(np.int8)
        want = np.mean(np.sum(t.astype(float) ** 2, axis=1)) / 20
        assert np.var(o.linear_transform(t)) == pytest.approx(want, rel=0.3)


def test_record_dir_in_the_config_stores_and_reuses_the_calibration(tmp_path):
    spec = {"record_dir": str(tmp_path), "noise": False, "seed": 9}
    x = _bin(3, 12)
    with OPU(n_components=8, opu_device="sim", config_override=spec) as o:
        y = o.fit_transform1d(x)
    assert list(tmp_path.iterdir())  # the record was saved
    with OPU(n_components=8, opu_device="sim", config_override=spec) as o2:
        np.testing.assert_allclose(o2.fit_transform1d(x), y, rtol=1e-5)


def test_progress_bar_parts_give_the_same_projection(exact, monkeypatch):
    """At verbose level 1 a large batch is projected in parts under a progress bar."""
    import opu.lightonml as lml
    from opu.lightonml import opu as compat

    monkeypatch.setattr(compat, "_PBAR_ROWS", 4)
    exact.fit1d(n_features=N_F)
    x = _bin(10, N_F)
    want = exact.transform(x)
    monkeypatch.setattr(lml, "_verbose_level", 1)
    stack = exact.device.stack
    calls = []
    real = stack.project
    monkeypatch.setattr(stack, "project", lambda r, mode: calls.append(len(r)) or real(r, mode))
    np.testing.assert_allclose(exact.transform(x), want, rtol=1e-5)
    assert calls == [4, 4, 2]


def test_deepcopy_leaves_the_original_open_and_decoder_classes_without_params(exact):
    import copy

    exact.fit1d(n_features=N_F)
    stack = exact.device.stack
    twin = copy.deepcopy(exact)
    assert exact.device.stack is stack and exact._stacks  # the original keeps its device
    x = _bin(3, N_F)
    np.testing.assert_allclose(twin.transform(x), exact.transform(x), rtol=1e-4, atol=1e-3)
    twin.close()
    from opu.lightonml.encoding.base import NoDecoding

    # an encoder with get_params and a decoder class that takes none: the decoder is made bare
    y = exact.linear_transform(RNG.normal(size=(2, N_F)), SeparatedBitPlanEncoder, NoDecoding)
    assert y.shape == (2 * 2 * 6, N_C)


def test_open_at_init_false_defers_the_device_to_open():
    o = OPU(n_components=8, opu_device=SimulatedOpuDevice(noise=False), max_n_features=30,
            open_at_init=False)
    x = _bin(3, 12)
    o.fit1d(x)  # allowed while closed, as lightonml
    assert o.device.random_matrix is None  # no device opened yet
    with pytest.raises(AssertionError, match="open"):
        o.transform(x)
    with o:
        assert o.transform(x).shape == (3, 8)
    assert not o._active


def test_simulated_device_and_property_setters():
    with pytest.raises(ValueError, match="frame period"):
        SimulatedOpuDevice(frametime_us=500)
    dev = SimulatedOpuDevice(noise=False, linear=True)
    dev.build_random_matrix(12, 8, seed=11)  # lightonml's call: here it picks the medium
    assert dev.seed == 11 and dev.random_matrix is None
    o = OPU(n_components=8, opu_device=dev, max_n_features=30)
    assert o.device is dev and dev.active
    x = _bin(2, 12)
    o.fit1d(x)
    assert dev.random_matrix.shape == (12, 8)
    o.n_components = 6  # a new output count: a new device geometry, same fit
    assert o.transform(x).shape == (2, 6) and dev.random_matrix.shape == (12, 6)
    o.max_n_features = 40
    assert o.max_n_features == 40
    with pytest.raises(ValueError, match="greater than"):
        o.fit1d(n_features=41)
    o.close()
    assert not dev.active
    real = OPU(n_components=8, opu_device="sim")
    with pytest.raises(AttributeError, match="real"):
        real.max_n_features = 10
