"""DFA wrapper: exact updates by hand, slicing, scaling, per-token rows, state, errors."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from opu.dfa import (  # noqa: E402
    DFA,
    DFAConfigurationError,
    DFAInputError,
    GaussianProjector,
    ProjectorError,
    Ternarizer,
    angle_deg,
    measure_alignment,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def tiny_mlp(seed=0, d=3, h1=4, h2=3, v=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h1), nn.Tanh(), nn.Linear(h1, h2), nn.Tanh(),
                         nn.Linear(h2, v))


class CountingNumpyProjector:
    """A numpy-only projector with a chosen matrix and entry variance; counts calls."""

    def __init__(self, g, output_variance=1.0, seed=None):
        self.g = np.asarray(g, dtype=np.float32)
        self.n_out, self.n_in = self.g.shape
        self.output_variance = output_variance
        self.seed = seed
        self.calls = []

    def project(self, x, mode="linear"):
        assert mode == "linear"
        xn = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        self.calls.append(xn.copy())
        return xn @ self.g.T


def test_each_layer_gets_the_documented_update_by_hand():
    m = tiny_mlp()
    proj = GaussianProjector(4, 7, seed=5)
    dfa = DFA(m, ["1", "3"], proj, ternarizer=Ternarizer(threshold=0.5, rule="max"))
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    target = torch.randn(2, 4, generator=torch.Generator().manual_seed(2))
    y = dfa(x)
    (0.5 * ((y - target) ** 2).sum()).backward()

    # hand computation in float64 numpy
    W = [m[i].weight.detach().double().numpy() for i in (0, 2, 4)]
    b = [m[i].bias.detach().double().numpy() for i in (0, 2, 4)]
    xn = x.double().numpy()
    h1 = np.tanh(xn @ W[0].T + b[0])
    h2 = np.tanh(h1 @ W[1].T + b[1])
    yn = h2 @ W[2].T + b[2]
    e = yn - target.double().numpy()
    thr = 0.5 * np.abs(e).max(axis=1, keepdims=True)
    t = np.sign(e) * (np.abs(e) > thr)
    alpha = (np.abs(e) * (t != 0)).sum(1, keepdims=True) / (t != 0).sum(1, keepdims=True)
    G = proj.exact_linear_matrix().astype(np.float64)
    S = (1 / math.sqrt(4)) * alpha * (t @ G.T)  # gain 1/sqrt(V), output variance 1
    s1, s2 = S[:, :4], S[:, 4:]
    d1, d2 = s1 * (1 - h1**2), s2 * (1 - h2**2)
    expect = {
        0: (d1.T @ xn, d1.sum(0)),
        2: (d2.T @ h1, d2.sum(0)),
        4: (e.T @ h2, e.sum(0)),  # the last layer: its true gradient
    }
    for i, (gw, gb) in expect.items():
        np.testing.assert_allclose(m[i].weight.grad.double().numpy(), gw, atol=1e-5)
        np.testing.assert_allclose(m[i].bias.grad.double().numpy(), gb, atol=1e-5)
    np.testing.assert_allclose(dfa.last_signals[0].double().numpy(), s1, atol=1e-5)


def test_slices_follow_marking_order_and_scaling_rule():
    v, h1, h2 = 4, 4, 3
    g = np.random.default_rng(0).normal(size=(h1 + h2, v))
    proj = CountingNumpyProjector(g, output_variance=4.0)
    m = tiny_mlp()
    dfa = DFA(m, ["3", "1"], proj, ternarizer=Ternarizer(rule="off"), gain=0.7)
    x = torch.randn(5, 3)
    y = dfa(x)
    e = torch.randn(5, v)
    y.backward(e)
    assert len(proj.calls) == 1 and proj.calls[0].shape == (5, v)
    np.testing.assert_allclose(proj.calls[0], e.numpy())  # rule off: the float error
    S = 0.7 * (e.double().numpy() @ g.T) / math.sqrt(4.0)
    s3, s1 = dfa.last_signals  # marking order: "3" first (width 3), then "1" (width 4)
    assert s3.shape == (5, h2) and s1.shape == (5, h1)
    np.testing.assert_allclose(s3.double().numpy(), S[:, :h2], atol=1e-5)
    np.testing.assert_allclose(s1.double().numpy(), S[:, h2:], atol=1e-5)


class TinySeq(nn.Module):
    def __init__(self, v=5, d=6):
        super().__init__()
        self.emb = nn.Embedding(v, d)
        self.block = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.head = nn.Linear(d, v)

    def forward(self, tok):
        return self.head(self.block(self.emb(tok)))


def test_per_token_rows_one_call_per_batch():
    torch.manual_seed(0)
    model = TinySeq()
    proj = CountingNumpyProjector(np.random.default_rng(1).normal(size=(6, 5)))
    dfa = DFA(model, ["block"], proj, ternarizer=Ternarizer(threshold=0.1, rule="max"))
    tok = torch.randint(0, 5, (3, 4))
    y = dfa(tok)
    assert y.shape == (3, 4, 5)
    e = torch.randn(3, 4, 5)
    y.backward(e)
    assert len(proj.calls) == 1 and proj.calls[0].shape == (12, 5)
    t, a = Ternarizer(threshold=0.1, rule="max")(e.reshape(12, 5))
    np.testing.assert_array_equal(proj.calls[0], t.numpy())
    S = (a.numpy() * (t.numpy() @ proj.g.T) / math.sqrt(5)).reshape(3, 4, 6)
    np.testing.assert_allclose(dfa.last_signals[0].numpy(), S, atol=1e-5)
    # row (b, t) of the projection is the token at (b, t): check one position by hand
    np.testing.assert_allclose(
        S[2, 1], float(a[9]) * (t[9].numpy() @ proj.g.T) / math.sqrt(5), atol=1e-5
    )
    assert model.emb.weight.grad is not None  # the embedding trains through the block


def test_alignment_is_zero_when_feedback_is_the_transpose():
    m = tiny_mlp(d=3, h1=4, h2=3, v=4)
    proj = CountingNumpyProjector(m[4].weight.detach().numpy().T)  # G = W3^T (3, 4)
    dfa = DFA(m, ["3"], proj, ternarizer=Ternarizer(rule="off"), gain=1.0)
    x, tgt = torch.randn(6, 3), torch.randint(0, 4, (6,))
    res = measure_alignment(dfa, lambda o: nn.functional.cross_entropy(o, tgt), x)
    assert len(res) == 1 and res[0].name == "3"
    assert res[0].n_params == (3 * 4 + 4) + (4 * 3 + 3)  # both layers below the only mark
    assert res[0].weight_angle_deg < 0.05 and res[0].signal_angle_deg < 0.05
    assert all(p.grad is None for p in m.parameters())


def test_angle_deg():
    a = torch.tensor([1.0, 0.0])
    assert angle_deg(a, torch.tensor([0.0, 2.0])) == pytest.approx(90)
    assert angle_deg(a, torch.tensor([3.0, 0.0])) == pytest.approx(0, abs=1e-6)
    assert angle_deg(a, -a) == pytest.approx(180)
    assert math.isnan(angle_deg(a, torch.zeros(2)))


def test_state_dict_round_trip_gives_identical_training():
    def run(dfa, steps, x, y):
        opt = torch.optim.SGD(dfa.parameters(), lr=0.1)
        for i in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(dfa(x[i]), y[i]).backward()
            opt.step()

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 8, 3, generator=g), torch.randint(0, 4, (6, 8), generator=g)
    a = DFA(tiny_mlp(), ["1", "3"], GaussianProjector(4, 7, seed=11))
    run(a, 3, x[:3], y[:3])
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in a.state_dict().items()}
    b = DFA(tiny_mlp(seed=9), ["1", "3"], GaussianProjector(4, 7, seed=99),
            ternarizer=Ternarizer(threshold=0.9, rule="max"), gain=3.0)
    b.load_state_dict(state)
    assert b.projector.seed == 11 and b.ternarizer == a.ternarizer and b.gain is None
    run(a, 3, x[3:], y[3:])
    run(b, 3, x[3:], y[3:])
    for (n, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if torch.is_tensor(pa):
            assert torch.equal(pa, pb), n


def test_state_round_trip_continues_the_stochastic_rounding_draws():
    def run(dfa, x, y):
        opt = torch.optim.SGD(dfa.parameters(), lr=0.1)
        for xi, yi in zip(x, y, strict=True):
            opt.zero_grad()
            nn.functional.cross_entropy(dfa(xi), yi).backward()
            opt.step()

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 8, 3, generator=g), torch.randint(0, 4, (6, 8), generator=g)
    tz = Ternarizer(rule="stochastic", split_signs=True)
    a = DFA(tiny_mlp(), ["1", "3"], GaussianProjector(4, 7, seed=11), ternarizer=tz)
    run(a, x[:3], y[:3])
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in a.state_dict().items()}
    b = DFA(tiny_mlp(seed=9), ["1", "3"], GaussianProjector(4, 7, seed=99), rounding_seed=7)
    b.load_state_dict(state)
    c = DFA(tiny_mlp(seed=9), ["1", "3"], GaussianProjector(4, 7, seed=99), rounding_seed=7)
    c.load_state_dict({k: v for k, v in state.items()})
    c.rounding.manual_seed(123)  # same weights, other draws: training must differ
    for m in (a, b, c):
        run(m, x[3:], y[3:])
    pa, pb, pc = (dict(m.state_dict()) for m in (a, b, c))
    assert b.ternarizer == tz
    assert all(torch.equal(pa[k], pb[k]) for k in pa if torch.is_tensor(pa[k]))
    assert not torch.equal(pa["model.0.weight"], pc["model.0.weight"])


def test_seeded_device_projector_state_is_checked():
    g = np.ones((7, 4))
    a = DFA(tiny_mlp(), ["1", "3"], CountingNumpyProjector(g, seed=3))
    b = DFA(tiny_mlp(), ["1", "3"], CountingNumpyProjector(g, seed=4))
    with pytest.raises(DFAConfigurationError, match="seed=3"):
        b.load_state_dict(a.state_dict())
    c = DFA(tiny_mlp(), ["1", "3"], CountingNumpyProjector(g, seed=3))
    c.load_state_dict(a.state_dict())


def test_configuration_errors():
    m = tiny_mlp()
    with pytest.raises(DFAConfigurationError, match="non-empty"):
        DFA(m, [], GaussianProjector(4, 7))
    with pytest.raises(DFAConfigurationError, match="not a submodule"):
        DFA(m, ["nope"], GaussianProjector(4, 7))
    with pytest.raises(DFAConfigurationError, match="not a module of"):
        DFA(m, [nn.Tanh()], GaussianProjector(4, 7))
    with pytest.raises(DFAConfigurationError, match="project"):
        DFA(m, ["1"], object())
    with pytest.raises(DFAConfigurationError, match="n_in=4, n_out=7"):
        DFA(m, ["1", "3"], GaussianProjector(4, 8))(torch.randn(2, 3))
    with pytest.raises(DFAConfigurationError, match="n_in=4, n_out=7"):
        DFA(m, ["1", "3"], GaussianProjector(5, 7))(torch.randn(2, 3))
    with pytest.raises(DFAConfigurationError, match="gain"):
        DFA(m, ["1"], GaussianProjector(4, 4), gain=-1.0)


def test_no_grad_forward_is_plain_and_needs_no_projector_call():
    proj = CountingNumpyProjector(np.ones((7, 4)))
    m = tiny_mlp()
    dfa = DFA(m, ["1", "3"], proj)
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.equal(dfa(x), m(x))
    with dfa.backprop():
        dfa(x).sum().backward()
    assert proj.calls == []


def test_bad_projector_output_raises():
    class Broken(CountingNumpyProjector):
        def project(self, x, mode="linear"):
            return super().project(x)[:, :3]

    dfa = DFA(tiny_mlp(), ["1", "3"], Broken(np.ones((7, 4))))
    with pytest.raises(ProjectorError, match="expected"):
        dfa(torch.randn(2, 3)).sum().backward()


def test_marked_output_shape_errors():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 4)

        def forward(self, x):
            return self.a(x)[:2]  # 2 output rows for 5 marked rows

    dfa = DFA(Bad(), ["a"], GaussianProjector(4, 4))
    with pytest.raises(DFAInputError, match="leading dims"):
        dfa(torch.randn(5, 3))


@cuda
def test_cuda_model_with_cpu_projector_and_back():
    for model_dev, proj_dev in (("cuda", "cpu"), ("cpu", "cuda"), ("cuda", "cuda")):
        m = tiny_mlp().to(model_dev)
        proj = GaussianProjector(4, 7, seed=2, device=proj_dev)
        dfa = DFA(m, ["1", "3"], proj)
        x = torch.randn(4, 3, device=model_dev)
        nn.functional.cross_entropy(dfa(x), torch.zeros(4, dtype=torch.long,
                                                        device=model_dev)).backward()
        assert all(p.grad.device.type == model_dev for p in m.parameters())
        ref = DFA(tiny_mlp(), ["1", "3"], GaussianProjector(4, 7, seed=2))
        nn.functional.cross_entropy(ref(x.cpu()), torch.zeros(4, dtype=torch.long)).backward()
        for p, q in zip(m.parameters(), ref.model.parameters(), strict=True):
            torch.testing.assert_close(p.grad.cpu(), q.grad, rtol=1e-4, atol=1e-5)


def test_split_signs_one_call_with_binary_rows():
    g = np.random.default_rng(3).normal(size=(7, 4))
    proj = CountingNumpyProjector(g)
    tern = Ternarizer(threshold=0.3, rule="max", split_signs=True)
    dfa = DFA(tiny_mlp(), ["1", "3"], proj, ternarizer=tern)
    y = dfa(torch.randn(3, 3))
    e = torch.randn(3, 4)
    y.backward(e)
    assert len(proj.calls) == 1 and proj.calls[0].shape == (6, 4)
    bp, bn, ap, an = tern.split(e)
    np.testing.assert_array_equal(proj.calls[0], torch.cat([bp, bn]).numpy())
    assert set(np.unique(proj.calls[0])) <= {0.0, 1.0}
    S = (ap.numpy() * (bp.numpy() @ g.T) - an.numpy() * (bn.numpy() @ g.T)) / math.sqrt(4)
    np.testing.assert_allclose(dfa.last_signals[0].numpy(), S[:, :4], atol=1e-5)
    np.testing.assert_allclose(dfa.last_signals[1].numpy(), S[:, 4:], atol=1e-5)


def test_default_feedback_is_stochastic_and_older_states_still_load():
    a = DFA(tiny_mlp(), ["1", "3"], GaussianProjector(4, 7, seed=11))
    assert a.ternarizer == Ternarizer(rule="stochastic", split_signs=True)
    state = a.state_dict()
    old = dict(state["_extra_state"], format=2, ternarizer=(0.25, "stochastic", True))
    b = DFA(tiny_mlp(), ["1", "3"], GaussianProjector(4, 7, seed=11))
    b.load_state_dict({**state, "_extra_state": old})  # format 2 stored 0.25 for every rule
    assert b.ternarizer == Ternarizer(rule="stochastic", split_signs=True)
    old = dict(old, ternarizer=(0.1, "max", False))
    b.load_state_dict({**state, "_extra_state": old})
    assert b.ternarizer == Ternarizer(threshold=0.1, rule="max")
