"""opu.lightonml.projections: the torch OPUMap (an nn.Module) and the scikit-learn OPUMap, which
passes scikit-learn's estimator checks; the only expected failures are the ones a noisy
physical OPU or a binary input device genuinely cannot pass, each with its reason."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from opu.lightonml import OPU
from opu.lightonml.internal.simulated_device import SimulatedOpuDevice

torch = pytest.importorskip("torch")
sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from opu.lightonml.projections.sklearn import OPUMap as SkOPUMap  # noqa: E402
from opu.lightonml.projections.torch import OPUMap as TorchOPUMap  # noqa: E402


def test_package_imports_without_torch_or_sklearn():
    code = (
        "import sys, opu.lightonml, opu.lightonml.encoding.base, opu.lightonml.context, "
        "opu.lightonml.types, opu.lightonml.internal.types, opu.lightonml.projections\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_opumap_is_a_detached_module():
    m = TorchOPUMap(n_components=16, opu_device=SimulatedOpuDevice(noise=False),
                    max_n_features=64)
    assert isinstance(m, torch.nn.Module) and m.n_components == 16 and not m.fitted
    x = torch.randint(0, 2, (5, 30), dtype=torch.uint8)
    y = m(x)  # fits on the first batch, as lightonml
    assert m.fitted and isinstance(y, torch.Tensor) and y.shape == (5, 16)
    assert y.dtype == torch.float32 and not y.requires_grad
    r = m.opu.device.random_matrix
    np.testing.assert_allclose(y.numpy(), np.abs(x.numpy() @ r) ** 2, rtol=1e-4, atol=1e-3)
    m.n_components = 8
    assert m(x).shape == (5, 8)
    lin = TorchOPUMap(n_components=8, opu=m.opu, linear=True, simulated=True)
    lin.fit(n_features=30)
    xf = torch.randn(4, 30, requires_grad=True)
    assert lin(xf).shape == (4, 8)
    two_d = TorchOPUMap(n_components=8, opu=m.opu, ndims=2, simulated=True)
    assert two_d(torch.randint(0, 2, (3, 5, 6))).shape == (3, 8)
    online = TorchOPUMap(n_components=8, opu=m.opu, simulated=True).fit(x, online=True)
    assert online(x).shape == (5, 8)
    with pytest.raises(ValueError, match="max_n_features"):
        TorchOPUMap(n_components=8, simulated=True)
    with pytest.raises(ValueError, match="1 or 2"):
        TorchOPUMap(n_components=8, opu=m.opu, ndims=3, simulated=True)
    m.close()


def test_sklearn_opumap_in_a_pipeline_and_its_lightonml_attributes():
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    from opu.lightonml.encoding.base import BinaryThresholdEncoder

    x = np.random.default_rng(1).normal(size=(20, 12))
    m = SkOPUMap(n_components=8, simulated=True, max_n_features=30)
    assert not m.fitted
    pipe = make_pipeline(BinaryThresholdEncoder(0.0), m).fit(x)
    assert pipe[-1].fitted and pipe.transform(x).shape == (20, 8)
    assert clone(m).get_params() == m.get_params()
    with pytest.raises(ValueError, match="max_n_features"):
        SkOPUMap(n_components=8, simulated=True).fit(x > 0)
    shared = OPU(n_components=4, simulated=True, max_n_features=30)
    two = SkOPUMap(n_components=6, opu=shared, ndims=2, simulated=True)
    assert two.fit_transform(np.ones((3, 2, 5), np.uint8)).shape == (3, 6)
    assert two.opu_ is shared and shared.n_components == 6
    shared.close()


def _shown(v):
    return type(v).__name__ if isinstance(v, SimulatedOpuDevice) else v


def _outcome(make):
    """(simulated, max_n_features) of the OPU a map uses, or (error type, message)."""
    try:
        o = make()
    except ValueError as e:
        return type(e).__name__, str(e)
    return o.simulated, o.max_n_features


@pytest.mark.parametrize(
    "kw",
    [
        {"simulated": True},
        {"simulated": True, "max_n_features": 40},
        {"opu_device": "sim"},
        {"opu_device": "sim", "max_n_features": 40},
        {"opu_device": "sim", "simulated": True},
        {"opu_device": "sim", "simulated": True, "max_n_features": 40},
        {"opu_device": SimulatedOpuDevice(noise=False)},
        {"opu_device": SimulatedOpuDevice(noise=False), "max_n_features": 40},
        {"opu_device": SimulatedOpuDevice(noise=False), "simulated": True, "max_n_features": 40},
    ],
    ids=lambda kw: ",".join(f"{k}={_shown(v)}" for k, v in kw.items()),
)
def test_torch_and_sklearn_opumaps_make_the_same_opu(kw):
    """One rule for both maps (lightonml's: simulated=True needs max_n_features; here also a
    SimulatedOpuDevice; a device string is the machine's OPU, its width the DMD's capacity;
    opu_device with simulated=True conflicts). The sklearn map applies it at fit."""
    torch_side = _outcome(lambda: TorchOPUMap(n_components=8, **kw).opu)
    sk_side = _outcome(lambda: SkOPUMap(n_components=8, **kw).fit(n_features=20).opu_)
    assert torch_side == sk_side
    simulated = kw.get("simulated", False) or isinstance(kw.get("opu_device"), SimulatedOpuDevice)
    if "opu_device" in kw and kw.get("simulated"):
        assert torch_side == ("ConfigurationError",
                              "simulated=True and opu_device are conflicting: give one")
    elif simulated and "max_n_features" not in kw:
        assert torch_side[0] == "ConfigurationError" and "max_n_features" in torch_side[1]
    elif simulated:
        assert torch_side == (True, 40)
    else:  # the machine's OPU: 'sim' plays it, max_n_features is the DMD's capacity
        assert torch_side[0] is False and torch_side[1] > 10**5


def test_both_opumaps_warn_when_simulated_disagrees_with_the_given_opu():
    shared = OPU(n_components=4, opu_device="sim")
    with pytest.warns(UserWarning, match="simulated=True but the given OPU is not simulated"):
        TorchOPUMap(n_components=6, opu=shared, simulated=True)
    with pytest.warns(UserWarning, match="simulated=True but the given OPU is not simulated"):
        SkOPUMap(n_components=6, opu=shared, simulated=True).fit(n_features=10)
    for make in (lambda: TorchOPUMap(4, opu=shared, opu_device="sim"),
                 lambda: SkOPUMap(4, opu=shared, opu_device="sim").fit(n_features=10)):
        with pytest.raises(ValueError, match="opu and opu_device are conflicting"):
            make()
    shared.close()


# ---- scikit-learn's estimator checks ----------------------------------------------------------
BINARY = (
    "transform (intensity mode) takes binary input -- DMD mirrors are ON or OFF -- and the "
    "check feeds real values; put an encoder before it or use linear=True"
)
_REAL_INPUT = (  # the checks that feed real values to transform
    "check_fit_score_takes_y",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_dict_unchanged",
    "check_fit_idempotent",
)


def _expected_failures(est):
    return {} if est.linear else {c: BINARY for c in _REAL_INPUT}


def test_noisy_devices_declare_themselves_non_deterministic():
    """A camera's noise makes repeated projections differ: the noisy OPUMap says so with
    scikit-learn's non_deterministic tag (which skips the checks of bit-exact repeatability)
    instead of failing them; the noise-free simulator keeps them."""
    noisy = SkOPUMap(8, opu_device=SimulatedOpuDevice(noise=True))
    assert noisy.__sklearn_tags__().non_deterministic
    assert SkOPUMap(8, opu_device="emu").__sklearn_tags__().non_deterministic
    quiet = SkOPUMap(8, opu_device=SimulatedOpuDevice(noise=False))
    assert not quiet.__sklearn_tags__().non_deterministic


@parametrize_with_checks(
    [
        SkOPUMap(n_components=8, opu_device=SimulatedOpuDevice(noise=False), max_n_features=50,
                 linear=True),
        SkOPUMap(n_components=8, opu_device=SimulatedOpuDevice(noise=True), max_n_features=50,
                 linear=True),
        SkOPUMap(n_components=8, opu_device=SimulatedOpuDevice(noise=False), max_n_features=50),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
