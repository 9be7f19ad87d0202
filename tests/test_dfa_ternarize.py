"""Ternarisation rule of opu.dfa (exact values by hand)."""

import pytest

torch = pytest.importorskip("torch")

from opu.dfa import DFAConfigurationError, DFAInputError, Ternarizer  # noqa: E402


def test_max_rule_by_hand():
    e = torch.tensor([[0.9, -0.5, 0.1, -1.0], [0.0, 0.0, 0.0, 0.0], [0.2, 0.2, -0.2, 0.05]])
    t, a = Ternarizer(threshold=0.3, rule="max")(e)
    # row 0: thr 0.3 -> keep 0.9, -0.5, -1.0; alpha = (0.9 + 0.5 + 1.0) / 3
    # row 1: all zero -> t 0, alpha 0;  row 2: thr 0.06 -> keep the three 0.2s
    assert t.tolist() == [[1, -1, 0, -1], [0, 0, 0, 0], [1, 1, -1, 0]]
    assert a[:, 0].tolist() == pytest.approx([0.8, 0.0, 0.2])


def test_std_rule_by_hand():
    e = torch.tensor([[3.0, -1.0, 1.0, -3.0]])  # population std = sqrt(5)
    t, a = Ternarizer(threshold=1.0, rule="std")(e)
    assert t.tolist() == [[1, 0, 0, -1]]
    assert a.item() == pytest.approx(3.0)
    t, a = Ternarizer(threshold=0.4, rule="std")(e)  # thr 0.894: keep all
    assert t.tolist() == [[1, -1, 1, -1]]
    assert a.item() == pytest.approx(2.0)


def test_off_rule_is_identity():
    e = torch.randn(5, 7)
    t, a = Ternarizer(rule="off")(e)
    assert torch.equal(t, e) and torch.equal(a, torch.ones(5, 1))
    assert not Ternarizer(rule="off").is_ternary and Ternarizer().is_ternary


def test_alpha_is_least_squares_scale():
    e = torch.randn(50, 30, generator=torch.Generator().manual_seed(0))
    t, a = Ternarizer(threshold=0.2, rule="max")(e)
    assert set(t.unique().tolist()) <= {-1.0, 0.0, 1.0}
    best = (e * t).sum(1, keepdim=True) / (t * t).sum(1, keepdim=True)
    assert torch.allclose(a, best, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(rule="abs"), dict(threshold=1.0, rule="max"),
                                dict(threshold=-0.1, rule="std"),
                                dict(threshold=float("nan"), rule="max"),
                                dict(threshold=float("inf"), rule="std"),
                                dict(threshold="0.1", rule="max"), dict(split_signs=1)])
def test_bad_settings_raise(kw):
    with pytest.raises(DFAConfigurationError):
        Ternarizer(**kw)


def test_default_is_unbiased_stochastic_rounding_and_thresholds_are_explicit():
    assert Ternarizer() == Ternarizer(rule="stochastic", split_signs=True)
    assert Ternarizer().threshold is None and Ternarizer(rule="stochastic").split_signs
    assert not Ternarizer(rule="stochastic", split_signs=False).split_signs
    for rule in ("max", "std", "off"):  # the other rules keep one row per error row
        assert Ternarizer(rule=rule).split_signs is False
    assert Ternarizer(rule="max").threshold == 0.25 == Ternarizer(rule="std").threshold
    for rule in ("stochastic", "off"):  # a threshold there would be silently ignored: refused
        with pytest.raises(DFAConfigurationError, match="rule='max'"):
            Ternarizer(threshold=0.1, rule=rule)
    with pytest.raises(DFAConfigurationError, match="takes no threshold"):
        Ternarizer(threshold=0.1)


def test_bad_input_raises():
    with pytest.raises(DFAInputError, match="NaN"):
        Ternarizer()(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(DFAInputError, match="rows, V"):
        Ternarizer()(torch.ones(3))


def test_split_signs_by_hand():
    e = torch.tensor([[0.02, 0.3, -0.8, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    bp, bn, ap, an = Ternarizer(threshold=0.3, rule="max", split_signs=True).split(e)
    # positives: max 0.3, thr 0.09 -> keep 0.3 and 0.1 (a+ = 0.2); negatives: keep -0.8
    assert bp.tolist() == [[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]
    assert bn.tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    assert ap[:, 0].tolist() == pytest.approx([0.2, 0.0])
    assert an[:, 0].tolist() == pytest.approx([0.8, 0.0])
    with pytest.raises(DFAConfigurationError, match="'stochastic', 'max' or 'std'"):
        Ternarizer(rule="off", split_signs=True)


E_ROW = torch.tensor([[0.6, -0.3, 0.05, 0.0, -0.01, 0.2]])


def test_stochastic_rule_values_and_certain_entries():
    t, a = Ternarizer(rule="stochastic")(E_ROW.repeat(500, 1), torch.Generator().manual_seed(0))
    assert set(t.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.all(a == 0.6)  # alpha = row max |e|
    assert torch.all(t[:, 0] == 1) and torch.all(t[:, 3] == 0)  # max always kept, zero never
    assert torch.all(t[:, 1] <= 0) and torch.all(t[:, 2] >= 0)  # signs are kept
    zero, _ = Ternarizer(rule="stochastic")(torch.zeros(2, 3))
    assert torch.all(zero == 0)


@pytest.mark.parametrize("split", [False, True])
def test_stochastic_rule_is_unbiased(split):
    """Mean of the reconstruction over n draws equals e within 4.5 standard errors, where
    Var(alpha t_j) = |e_j| (m - |e_j|) (m: the row max, per sign with split_signs)."""
    n = 40000
    tz = Ternarizer(rule="stochastic", split_signs=split)
    g = torch.Generator().manual_seed(1)
    e = E_ROW.double().repeat(n, 1)
    if split:
        bp, bn, ap, an = tz.split(e, g)
        rec = ap * bp - an * bn
        m = torch.where(E_ROW[0] > 0, 0.6, 0.3).double()
    else:
        t, a = tz(e, g)
        rec = a * t
        m = torch.full((6,), 0.6).double()
    mag = E_ROW[0].double().abs()
    se = torch.sqrt(mag * (m - mag) / n).clamp(min=1e-12)
    z = (rec.mean(0) - E_ROW[0].double()) / se
    assert torch.all(z.abs() < 4.5), z
    # and the draws are not degenerate: the small entries are kept sometimes, not always
    kept = (rec[:, 2] != 0).double().mean().item()
    assert kept == pytest.approx(0.05 / 0.6, abs=0.01)


def test_stochastic_rule_is_reproducible_from_its_generator():
    e = torch.randn(20, 9, generator=torch.Generator().manual_seed(0))
    tz = Ternarizer(rule="stochastic", split_signs=False)
    t1, _ = tz(e, torch.Generator().manual_seed(5))
    t2, _ = tz(e, torch.Generator().manual_seed(5))
    t3, _ = tz(e, torch.Generator().manual_seed(6))
    assert torch.equal(t1, t2) and not torch.equal(t1, t3)
