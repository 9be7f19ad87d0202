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


def test_from_opu_is_the_devices_own_matrix_both_ways():
    """Exact and optical projections on the same G agree to float32 rounding with noise off,
    directly and inside DFA (same signals), also through ReplicatedInput."""
    from torch import nn

    from opu import OPU
    from opu.dfa import DFA, ReplicatedInput

    rng = np.random.default_rng(0)
    with OPU(device="sim", n_in=40, n_out=96, seed=5, noise=False) as dev:
        exact = GaussianProjector.from_opu(dev)
        assert (exact.n_in, exact.n_out, exact.seed) == (40, 96, 5)
        np.testing.assert_array_equal(exact.exact_linear_matrix(), dev.exact_linear_matrix())
        x = rng.integers(-1, 2, (32, 40)).astype(np.float32)
        y_opt, y_ex = dev.project(x), exact.project(x)
        assert np.linalg.norm(y_opt - y_ex) <= 1e-5 * np.linalg.norm(y_ex)

        rep = ReplicatedInput(dev, 4)
        exact4 = GaussianProjector.from_opu(rep)
        assert (exact4.n_in, exact4.output_variance) == (10, 4.0)
        signals = []
        for proj in (rep, exact4):
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(5, 48), nn.Tanh(), nn.Linear(48, 48), nn.Tanh(),
                                  nn.Linear(48, 10))
            dfa = DFA(model, ["1", "3"], proj, rounding_seed=3)
            nn.functional.cross_entropy(dfa(torch.randn(16, 5, generator=torch.Generator()
                                                         .manual_seed(1))),
                                        torch.arange(16) % 10).backward()
            signals.append(torch.cat(dfa.last_signals, dim=1))
        assert torch.linalg.norm(signals[0] - signals[1]) <= 1e-5 * torch.linalg.norm(signals[1])
        # the entry variance travels with the state
        again = GaussianProjector(10, 96)
        again.load_state_dict(exact4.state_dict())
        assert again.output_variance == 4.0 and torch.equal(again.matrix, exact4.matrix)


def test_from_opu_refuses_what_has_no_matrix():
    class Blind:
        n_in, n_out = 3, 4

        def project(self, x, mode="linear"):
            return x

    with pytest.raises(DFAConfigurationError, match="exact_linear_matrix"):
        GaussianProjector.from_opu(Blind())
