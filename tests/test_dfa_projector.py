"""GaussianProjector: exact, seeded, same kind/device out as in."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opu.dfa import DFAConfigurationError, DFAInputError, GaussianProjector  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_exact_and_seeded():
    p = GaussianProjector(7, 300, seed=3)
    g = p.exact_linear_matrix()
    assert g.shape == (300, 7) and g.dtype == np.float32
    assert np.array_equal(g, GaussianProjector(7, 300, seed=3).exact_linear_matrix())
    assert not np.array_equal(g, GaussianProjector(7, 300, seed=4).exact_linear_matrix())
    assert abs(g.mean()) < 0.05 and abs(g.var() - 1.0) < 0.06  # N(0, 1) entries
    x = np.array([[1, 0, -1, 1, 0, 0, 1], [0, 1, 1, 0, -1, 1, 0]], dtype=np.float32)
    y = p.project(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, x.astype(np.float64) @ g.T.astype(np.float64), atol=1e-5)
    yt = p.project(torch.from_numpy(x[0]))
    assert isinstance(yt, torch.Tensor) and yt.shape == (300,)
    np.testing.assert_allclose(yt.numpy(), y[0], atol=1e-6)


def test_noise_has_requested_std():
    p = GaussianProjector(4, 2000, seed=0, noise_std=0.5)
    x = torch.ones(8, 4)
    d = p.project(x) - x @ p.matrix.T
    assert abs(d.std().item() - 0.5) < 0.02


def test_errors():
    p = GaussianProjector(4, 5)
    with pytest.raises(DFAInputError, match=r"\(rows, 4\)"):
        p.project(torch.ones(2, 3))
    with pytest.raises(DFAInputError, match="NaN"):
        p.project(torch.tensor([1.0, float("nan"), 0, 0]))
    with pytest.raises(DFAConfigurationError, match="linear"):
        p.project(torch.ones(4), mode="intensity")
    with pytest.raises(DFAConfigurationError):
        GaussianProjector(0, 5)


def test_state_dict_carries_matrix_and_seed():
    a, b = GaussianProjector(3, 6, seed=1), GaussianProjector(3, 6, seed=2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.matrix, b.matrix) and b.seed == 1


@cuda
def test_cuda_projector_returns_to_input_device():
    p = GaussianProjector(5, 9, seed=0, device="cuda")
    x = torch.randn(3, 5)
    y = p.project(x)
    assert y.device.type == "cpu"
    torch.testing.assert_close(y, x @ p.matrix.cpu().T, rtol=1e-4, atol=1e-4)
    assert p.project(x.cuda()).device.type == "cuda"


def test_replicated_input_sums_column_blocks():
    from opu.dfa import ReplicatedInput

    inner = GaussianProjector(12, 20, seed=4)
    p = ReplicatedInput(inner, 3)
    assert (p.n_in, p.n_out, p.seed, p.output_variance) == (4, 20, 4, 3.0)
    g = inner.exact_linear_matrix()
    eff = g[:, :4] + g[:, 4:8] + g[:, 8:]
    np.testing.assert_allclose(p.exact_linear_matrix(), eff, atol=1e-6)
    x = np.array([[1, -1, 0, 1]], dtype=np.float32)
    np.testing.assert_allclose(p.project(x), x @ eff.T, atol=1e-5)
    np.testing.assert_allclose(p.project(torch.from_numpy(x)).numpy(), x @ eff.T, atol=1e-5)
    with pytest.raises(DFAConfigurationError, match="dividing"):
        ReplicatedInput(inner, 5)
