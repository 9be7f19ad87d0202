"""torch in, torch out: same kind, float32, same device; numpy stays numpy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_torch_cpu_round_trip(ideal_opu):
    g = torch.from_numpy(ideal_opu.exact_linear_matrix())
    x = torch.randint(-1, 2, (5, 1000))
    y = ideal_opu.project(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.device == x.device
    assert torch.linalg.norm(y - x.float() @ g.T) / torch.linalg.norm(x.float() @ g.T) < 1e-5


def test_torch_half_and_bool(ideal_opu):
    x = torch.rand(3, 1000) > 0.5
    y = ideal_opu.project(x, mode="intensity")
    assert y.shape == (3, 1000) and y.dtype == torch.float32
    y16 = ideal_opu.project(torch.randint(-1, 2, (2, 1000)).half())
    assert y16.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_cuda(ideal_opu):
    x = torch.randint(-1, 2, (4, 1000), device="cuda")
    y = ideal_opu.project(x)
    assert y.device == x.device


def test_numpy_stays_numpy(ideal_opu):
    y = ideal_opu.project(np.ones(1000, dtype=np.uint8), mode="intensity")
    assert isinstance(y, np.ndarray) and y.dtype == np.float32


def test_opu_imports_without_torch():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import opu, opu_sim, firmware_iface, calibration\n"
        "from opu import OPU\n"
        "import numpy as np\n"
        "d = OPU(n_in=20, n_out=20, noise=False); d.project(np.ones(20)); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
