"""The examples of lightonml's documentation, run with only the import changed.

Each example below is lightonml's code (its get_started notebook, the OPU input/output
tutorial, the kernel, pipeline, saving, randomized linear algebra and NEWMA notebooks) with
smaller sizes and synthetic data where the notebook downloads a data set. `port()` replaces
`lightonml` by `opu.lightonml` in the import lines -- and nothing else, which the tests check.
The machine's OPU config ($OPU_LIGHTONML_CONFIG) names this stack's simulator, as
/etc/lighton/opu.json named the OPU for lightonml.
"""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pytest

from opu.lightonml.context import ContextArray
from opu.lightonml.internal.simulated_device import CONFIG_ENV

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

_IMPORT = re.compile(r"^(\s*)(from|import) lightonml\b", re.M)


def port(src: str) -> str:
    """lightonml code -> opu.lightonml code: the import lines only."""
    src = textwrap.dedent(src)
    out = _IMPORT.sub(r"\1\2 opu.lightonml", src)
    changed = [(a, b) for a, b in zip(src.splitlines(), out.splitlines(), strict=True) if a != b]
    assert changed and all(re.match(r"\s*(from|import) ", b) for _, b in changed)
    return out


def run(src: str) -> dict:
    ns: dict = {}
    exec(compile(port(src), "<lightonml example>", "exec"), ns)
    return ns


@pytest.fixture(autouse=True)
def machine_config(tmp_path, monkeypatch):
    cfg = tmp_path / "opu.json"
    cfg.write_text(json.dumps({"device": "sim", "seed": 0}))
    monkeypatch.setenv(CONFIG_ENV, str(cfg))


GET_STARTED = """
import numpy as np
import torch

numpy_data = np.random.randint(0, 2, size=(30, 100), dtype=np.uint8)
torch_data = torch.randint(0, 2, size=(30, 100), dtype=torch.uint8)

from lightonml import OPU
opu = OPU(n_components=100)
try:
    opu.transform(numpy_data)
except AssertionError as e:
    print(e)
opu.fit1d(numpy_data)
y_np = opu.transform(numpy_data)
ctx = y_np.context.as_dict()
plain = np.array(y_np)
y_torch = opu.fit_transform1d(torch_data)
data_2d = np.random.randint(0, 2, size=(30, 9, 9), dtype=np.uint8)
opu.fit2d(data_2d)
y = opu.transform(data_2d)
ctx_2d = y.context.as_dict()
opu.close()

from lightonml.projections.sklearn import OPUMap
opumap_np = OPUMap(n_components=100)
output = opumap_np.fit_transform(numpy_data)
opumap_np.close()

from lightonml.projections.torch import OPUMap
opumap_torch = OPUMap(n_components=100)
output_torch = opumap_torch(torch_data)
opumap_torch.close()

opu = OPU(n_components=100, max_n_features=100, simulated=True)
"""


def test_get_started(capsys):
    ns = run(GET_STARTED)
    assert "Call fit1d or fit2d before transform" in capsys.readouterr().out
    assert isinstance(ns["y_np"], ContextArray) and ns["y_np"].shape == (30, 100)
    assert type(ns["plain"]) is np.ndarray
    assert {"exposure_us", "frametime_us", "output_roi", "start", "end", "input_roi", "n_ones",
            "fmt_type", "fmt_factor"} <= set(ns["ctx"])
    assert ns["ctx"]["fmt_type"] == "lined" and ns["ctx_2d"]["n_ones"] > 0
    assert isinstance(ns["y_torch"], torch.Tensor) and ns["y_torch"].shape == (30, 100)
    assert ns["y"].shape == (30, 100)
    assert isinstance(ns["output"], np.ndarray) and ns["output"].shape == (30, 100)
    assert isinstance(ns["output_torch"], torch.Tensor) and ns["output_torch"].shape == (30, 100)
    # intensity scale: an output averages the number of ON features (about 50 of 100 here)
    assert ns["output"].mean() == pytest.approx(ns["numpy_data"].sum(1).mean(), rel=0.3)
    ns["opu"].close()


INPUT_OUTPUT = """
from lightonml import OPU
import numpy as np


def random_bin(shape):
    return np.random.randint(0, 2, size=shape, dtype=bool)


opu = OPU(n_components=64)
shapes = {}
inp_1d = random_bin((20, 100))
shapes["fit_transform1d"] = opu.fit_transform1d(inp_1d).shape
inp_1d_b = random_bin((20, 100))
opu.fit1d(inp_1d)
out1 = opu.transform(inp_1d)
shapes["two batches"] = (out1.shape, opu.transform(inp_1d_b).shape)
shapes["linear"] = opu.linear_transform(inp_1d).shape
opu.fit1d(n_features=inp_1d.shape[1])
shapes["n_features"] = opu.transform(inp_1d).shape
shapes["single"] = opu.fit_transform1d(inp_1d[0]).shape
inp_2d = random_bin((20, 13, 10))
shapes["2d"] = opu.fit_transform2d(inp_2d).shape
inp_3d = random_bin((3, 4, 300))
shapes["3d batch"] = opu.fit_transform1d(inp_3d).shape
inp_1d_p = np.packbits(inp_1d, axis=1)
shapes["packed"] = opu.fit_transform1d(inp_1d_p, packed=True).shape
inp_2d_p = np.packbits(inp_2d.reshape(20, -1), axis=1)
shapes["packed 2d"] = opu.fit_transform2d(inp_2d_p, packed=True, n_2d_features=(13, 10)).shape
n_features1d = 120
opu.fit1d(n_features=n_features1d, online=True)
for _ in range(3):
    online_out = opu.transform(random_bin(n_features1d))
shapes["online"] = online_out.shape
n_features2d = (5, 5)
opu.fit2d(n_features=n_features2d, online=True)
for _ in range(3):
    online_out = opu.transform(random_bin(n_features2d))
shapes["online 2d"] = online_out.shape
opu.close()
"""


def test_input_output_tutorial():
    s = run(INPUT_OUTPUT)["shapes"]
    assert s == {
        "fit_transform1d": (20, 64), "two batches": ((20, 64), (20, 64)), "linear": (20, 64),
        "n_features": (20, 64), "single": (64,), "2d": (20, 64), "3d batch": (3, 4, 64),
        "packed": (20, 64), "packed 2d": (20, 64), "online": (64,), "online 2d": (64,),
    }


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images * 255 / 16).astype(np.uint8)  # MNIST-like uint8 images, 8x8
    return images[:1200], d.target[:1200], images[1200:], d.target[1200:]


KERNELS = """
from lightonml.encoding.base import BinaryThresholdEncoder
encoder = BinaryThresholdEncoder(threshold_enc=25)
X_train_encoded = encoder.transform(X_train)
X_test_encoded = encoder.transform(X_test)

from lightonml.projections.sklearn import OPUMap
n_components = 400
random_mapping = OPUMap(n_components=n_components, ndims=2)
train_random_features = random_mapping.fit_transform(X_train_encoded)
test_random_features = random_mapping.transform(X_test_encoded)
dtypes = train_random_features.dtype, test_random_features.dtype
train_random_features = train_random_features.astype('float32')
test_random_features = test_random_features.astype('float32')

from sklearn.linear_model import RidgeClassifier
classifier = RidgeClassifier()
classifier.fit(train_random_features, y_train)
test_accuracy = classifier.score(test_random_features, y_test)
linear = RidgeClassifier().fit(X_train_encoded.reshape(len(X_train), -1), y_train)
linear_accuracy = linear.score(X_test_encoded.reshape(len(X_test), -1), y_test)
random_mapping.close()
"""


def test_kernels_and_random_features():
    x_train, y_train, x_test, y_test = _digits()
    src = port(KERNELS)
    ns = {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test}
    exec(compile(src, "<kernels>", "exec"), ns)
    assert ns["dtypes"] == (np.float32, np.float32)  # lightonml: uint8 camera counts
    assert ns["test_accuracy"] > max(0.84, ns["linear_accuracy"] + 0.03)  # features help


PIPELINE = """
from sklearn.pipeline import Pipeline
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import ShuffleSplit, GridSearchCV
import numpy as np
from lightonml.encoding.base import BinaryThresholdEncoder, NoDecoding
from lightonml.projections.sklearn import OPUMap

pipeline_steps = []
encoder = BinaryThresholdEncoder(threshold_enc=24)
pipeline_steps.append(('encoder', encoder))
random_mapping = OPUMap(n_components=300, simulated=True, max_n_features=1000, ndims=2)
pipeline_steps.append(('mapping', random_mapping))
pipeline_steps.append(('decoding', NoDecoding()))
pipeline_steps.append(('classifier', RidgeClassifier()))
pipe = Pipeline(steps=pipeline_steps)
pipe.fit(X_train, y_train)
test_accuracy = pipe.score(X_test, y_test)

alpha_values = 10. ** np.arange(-1, 1)
grid_parameters = [{'classifier__alpha': alpha_values}]
cv_scheme = ShuffleSplit(n_splits=2, test_size=0.15)
grid_search = GridSearchCV(pipe, grid_parameters, scoring="accuracy", cv=cv_scheme, refit=False,
                           return_train_score=True)
grid_search.fit(X_train, y_train)
"""


def test_pipeline_and_grid_search():
    x_train, y_train, x_test, y_test = _digits()
    ns = {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test}
    exec(compile(port(PIPELINE), "<pipeline>", "exec"), ns)
    assert ns["test_accuracy"] > 0.8
    scores = ns["grid_search"].cv_results_["mean_test_score"]
    assert scores.shape == (2,) and np.all(scores > 0.8)


SAVING = """
import pickle
import numpy as np
import torch
from lightonml import OPU

train_data = np.random.randint(0, 2, (30, 100), dtype=np.uint8)
opu = OPU(n_components=50)
opu.fit1d(train_data)
train_y = opu.transform(train_data)
ctx = train_y.context.as_dict()
with open(path / "opu.pkl", "wb") as f:
    pickle.dump(opu, f)
with open(path / "opu.pkl", "rb") as f:
    opu = pickle.load(f)
test_y = opu.transform(train_data)

from lightonml.projections.sklearn import OPUMap
mapping = OPUMap(opu=opu, n_components=50)
mapping.fit(train_data)
fitted_before = mapping.fitted
with open(path / "mapping.pkl", "wb") as f:
    pickle.dump(mapping, f)
with open(path / "mapping.pkl", "rb") as f:
    mapping = pickle.load(f)
fitted_after = mapping.fitted
sk_y = mapping.transform(train_data)
mapping.close()

from lightonml.projections.torch import OPUMap
tmapping = OPUMap(n_components=50)
tmapping.fit(torch.from_numpy(train_data))
with open(path / "tmapping.pkl", "wb") as f:
    pickle.dump(tmapping, f)
with open(path / "tmapping.pkl", "rb") as f:
    tmapping = pickle.load(f)
torch_fitted = tmapping.fitted
torch_y = tmapping(torch.from_numpy(train_data))
"""


def test_saving_and_loading(tmp_path):
    ns = {"path": tmp_path}
    exec(compile(port(SAVING), "<saving>", "exec"), ns)
    assert ns["fitted_before"] and ns["fitted_after"] and ns["torch_fitted"]
    # the reloaded OPU projects with the same medium and calibration: equal up to camera noise
    a, b = np.asarray(ns["train_y"]), np.asarray(ns["test_y"])
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97
    assert ns["test_y"].context.exposure_us == ns["ctx"]["exposure_us"]
    assert np.corrcoef(a.ravel(), ns["sk_y"].ravel())[0, 1] > 0.97
    assert ns["torch_y"].shape == (30, 50)


LINEAR_ALGEBRA = """
import lightonml
from lightonml import OPU
import numpy as np
from lightonml.encoding import base

opu = OPU(n_components=400)
encoder = base.SeparatedBitPlanEncoder
decoder = base.SeparatedBitPlanDecoder


def trace_estimation(A, m):
    n = A.shape[0]
    opu.fit1d(A)
    s = np.random.normal(0,1,(100, n))

    opu_var = opu.linear_transform(s, encoder, decoder).var()
    AR   = opu.linear_transform(A,    encoder, decoder)[:, :m]
    RTAR = opu.linear_transform(AR.T, encoder, decoder)[:, :m]
    return RTAR.trace() / m * n / opu_var


def randomized_svd(A, m, num_iter = 0):
    Q = opu.linear_transform(A, encoder, decoder)[:, :m]
    opu.fit1d(A)
    Q, _ = np.linalg.qr(Q)
    for it in range(num_iter): # power_iteration
        Q = A@Q
        Q, _ = np.linalg.qr(Q)
        Q = (Q.T@ A).T
        Q, _ = np.linalg.qr(Q)
    U, s, Ra = np.linalg.svd(A@Q, full_matrices=False)
    Va = Ra@Q.T
    return U[:, :m], s[:m], Va[:m, :]


A = np.random.uniform(0,1,(60,60))
opu.fit1d(A)
m = 400
estimated_trace = trace_estimation(A, m)
real_trace = np.trace(A)

rng = np.random.default_rng(0)
B = (rng.normal(size=(60, 4)) * [8, 4, 2, 1]) @ rng.normal(size=(4, 60))
opu.fit1d(B)
Ur, Sr, Vr = randomized_svd(B, 20, num_iter = 2)
Se = np.linalg.svd(B, compute_uv=False)
opu.close()
"""


def test_randomized_linear_algebra_with_bitplane_encoders():
    ns = run(LINEAR_ALGEBRA)
    assert ns["estimated_trace"] == pytest.approx(ns["real_trace"], rel=0.2)
    np.testing.assert_allclose(ns["Sr"][:4], ns["Se"][:4], rtol=1e-3)


NEWMA_ONLINE = """
import numpy as np
from lightonml import OPU

Xencode = np.random.randint(0, 2, size=(40, 120), dtype=np.uint8)
opu = OPU(n_components=32)
opu.fit1d(n_features=Xencode.shape[1], online=True)


def feature_function(x):
    return opu.transform(x).astype('float32')


features = np.stack([feature_function(x) for x in Xencode])
opu.close()
"""


def test_newma_online_features():
    ns = run(NEWMA_ONLINE)
    assert ns["features"].shape == (40, 32) and ns["features"].dtype == np.float32
