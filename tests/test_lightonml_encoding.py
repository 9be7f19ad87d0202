"""opu.lightonml.encoding.base: round trips (hypothesis) and lightonml's documented semantics
(layouts, signed inputs, precision)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from opu.lightonml.encoding.base import (
    BinaryThresholdEncoder,
    ConcatenatedBitPlanEncoder,
    ConcatenatedFloat32Encoder,
    ConcatenatingBitPlanDecoder,
    Float32Encoder,
    MultiThresholdEncoder,
    NoDecoding,
    NoEncoding,
    SeparatedBitPlanDecoder,
    SeparatedBitPlanEncoder,
    SequentialBaseTwoEncoder,
)

SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6)
FLOATS = hnp.arrays(
    np.float64, SHAPES, elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
)
SAMPLE = np.array([[204, 180, 73], [133, 11, 39]], dtype=np.uint8)  # lightonml's tutorial sample


def _roundtrip(enc: SeparatedBitPlanEncoder, x: np.ndarray) -> np.ndarray:
    planes = enc.transform(x)
    return SeparatedBitPlanDecoder(**enc.get_params()).transform(planes.astype(np.float32))


# ---- SeparatedBitPlanEncoder / Decoder -------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(x=FLOATS, p=st.integers(1, 8))
def test_separated_bitplanes_round_trip_within_half_a_step_per_sign(x, p):
    enc = SeparatedBitPlanEncoder(precision=p)
    back = _roundtrip(enc, x)
    assert back.shape == x.shape and back.dtype == np.float32
    m_pos, m_neg = max(x.max(), 0.0), max(-x.min(), 0.0)
    step = np.where(x >= 0, m_pos, m_neg) / (2**p - 1)
    np.testing.assert_array_less(np.abs(back - x), step / 2 + 1e-4 * (np.abs(x) + 1))


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.int16, SHAPES, elements=st.integers(-255, 255)), p=st.integers(1, 8)
)
def test_separated_bitplanes_signed_integers_are_a_shift(x, p):
    """Integers: the magnitude makes quantisation a bit shift (lightonml's integer rule): exact
    when the values fit in `precision` bits, else each value goes to the nearest multiple of
    step = 2**(bits - precision) (halves up), at most (2**precision - 1) steps."""
    back = _roundtrip(SeparatedBitPlanEncoder(precision=p), x).astype(np.float64)
    for side in (x.astype(np.int64), -x.astype(np.int64)):
        bits = int(max(side.max(), 0)).bit_length()
        sel = side > 0
        step = 2.0 ** max(0, bits - p)
        want = np.minimum(np.floor(side[sel] / step + 0.5), 2**p - 1) * step
        np.testing.assert_allclose(np.abs(back[sel]), want, atol=1e-3)
        if bits <= p:
            np.testing.assert_allclose(np.abs(back[sel]), side[sel], atol=1e-3)


def test_separated_layout_is_precision_planes_per_sample_msb_first():
    enc = SeparatedBitPlanEncoder(precision=8)
    planes = enc.transform(SAMPLE)
    assert planes.shape == (2 * 8, 3) and planes.dtype == np.uint8  # (n_samples * p, n_features)
    want = np.unpackbits(SAMPLE[:, None, :], axis=1).reshape(16, 3)  # MSB first per sample
    np.testing.assert_array_equal(planes, want)
    np.testing.assert_allclose(_roundtrip(enc, SAMPLE), SAMPLE)


def test_separated_signed_input_stacks_positive_then_negative_planes():
    x = np.array([[3.0, -1.5], [-3.0, 0.75]])
    enc = SeparatedBitPlanEncoder(precision=2)
    planes = enc.transform(x)
    assert planes.shape == (2 * 2 * 2, 2)  # sides x n_samples x precision
    # q = floor(|x| * 3 / 3 + 1/2): positive part 3 -> 3, 0.75 -> 1; negative part 1.5 -> 2, 3 -> 3
    pos, neg = planes[:4].reshape(2, 2, 2), planes[4:].reshape(2, 2, 2)
    q_pos = pos[:, 0] * 2 + pos[:, 1]
    q_neg = neg[:, 0] * 2 + neg[:, 1]
    np.testing.assert_array_equal(q_pos, [[3, 0], [0, 1]])
    np.testing.assert_array_equal(q_neg, [[0, 2], [3, 0]])
    p = enc.get_params()
    assert p["magnitude_p"] == pytest.approx(3 / (2 * (1 - 0.25)))
    assert p["magnitude_n"] == pytest.approx(3 / (2 * (1 - 0.25)))


@pytest.mark.parametrize("sign", [1, -1])
def test_separated_one_signed_input_has_one_side(sign):
    x = sign * np.abs(np.random.default_rng(0).normal(size=(4, 5))) + sign * 0.1
    enc = SeparatedBitPlanEncoder(precision=5)
    assert enc.transform(x).shape == (4 * 5, 5)
    np.testing.assert_allclose(_roundtrip(enc, x), x, atol=np.abs(x).max() / 31)


def test_separated_all_zero_input_decodes_to_zero():
    enc = SeparatedBitPlanEncoder(3)
    np.testing.assert_array_equal(_roundtrip(enc, np.zeros((2, 4))), 0)


def test_separated_precision_and_legacy_arguments_are_checked():
    with pytest.raises(ValueError, match="precision"):
        SeparatedBitPlanEncoder(precision=9)
    with pytest.raises(ValueError, match="n_bits"):
        SeparatedBitPlanEncoder(n_bits=8)
    assert SeparatedBitPlanEncoder(precision=8, starting_bit=0).precision == 8
    with pytest.raises(ValueError, match="starting_bit"):
        SeparatedBitPlanEncoder(precision=8, starting_bit=2)
    with pytest.raises(ValueError, match="get_params"):
        SeparatedBitPlanEncoder().get_params()


def test_separated_encode_is_pure_and_decoder_reusable_by_for_encoding():
    """lightonml issue 6: transform mutated the encoder, so a decoder built earlier was wrong
    for a later batch. encode() returns the parameters with the planes; a decoder instance's
    for_encoding() gives a configured copy and leaves it unchanged."""
    enc = SeparatedBitPlanEncoder(precision=8)
    dec = SeparatedBitPlanDecoder(precision=8)
    a = np.array([[1.0, -2.0, 0.5]])
    b = np.array([[40.0, 10.0, 20.0]])
    planes_a, params_a = enc.encode(a)
    assert enc.magnitude == (None, None)
    planes_b, params_b = enc.encode(b)
    np.testing.assert_allclose(dec.for_encoding(params_a).transform(planes_a), a, atol=0.01)
    np.testing.assert_allclose(dec.for_encoding(params_b).transform(planes_b), b, atol=0.1)
    assert (dec.magnitude_p, dec.magnitude_n) == (1.0, 0.0)
    with pytest.raises(ValueError, match="multiple"):
        SeparatedBitPlanDecoder(**params_a).transform(planes_b[:7])


def test_encoders_keep_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    x = torch.randn(3, 4)
    planes = SeparatedBitPlanEncoder(4).transform(x)
    assert isinstance(planes, torch.Tensor) and planes.dtype == torch.uint8
    ref = SeparatedBitPlanEncoder(4).transform(x.numpy())
    np.testing.assert_array_equal(planes.numpy(), ref)


# ---- ConcatenatedBitPlanEncoder / ConcatenatingBitPlanDecoder ---------------------------------
@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.uint64]))
def test_concatenated_bitplanes_are_the_little_endian_bits_msb_first_per_byte(data, dtype):
    width = np.dtype(dtype).itemsize * 8
    x = data.draw(hnp.arrays(dtype, SHAPES))
    start = data.draw(st.integers(0, width - 1))
    n_bits = data.draw(st.integers(1, width - start))
    out = ConcatenatedBitPlanEncoder(n_bits, start).transform(x)
    n, f = x.shape
    assert out.shape == (n, f * n_bits) and out.dtype == np.uint8
    full = ConcatenatedBitPlanEncoder(width, 0).transform(x).reshape(n, f, width)
    little = np.dtype(dtype).newbyteorder("<")
    back = np.packbits(full, axis=2).reshape(n, f, -1).copy().view(little)
    np.testing.assert_array_equal(back[..., 0], x)  # all bits: exact round trip
    np.testing.assert_array_equal(out.reshape(n, f, n_bits), full[:, :, start : start + n_bits])


def test_concatenated_uint8_keeps_the_most_significant_bits():
    out = ConcatenatedBitPlanEncoder(n_bits=3).transform(SAMPLE).reshape(2, 3, 3)
    np.testing.assert_array_equal((out * [4, 2, 1]).sum(axis=2), SAMPLE >> 5)
    with pytest.raises(ValueError, match="exceeds"):
        ConcatenatedBitPlanEncoder(n_bits=8, starting_bit=1).transform(SAMPLE)
    with pytest.raises(ValueError, match="n_bits"):
        ConcatenatedBitPlanEncoder(n_bits=0)


def test_concatenating_decoder_weights_and_concatenates_planes():
    y = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2 * 3, 4)
    out = ConcatenatingBitPlanDecoder(n_bits=3, decoding_decay=0.5).transform(y)
    assert out.shape == (2, 3 * 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 4:8], 0.5 * y[4])
    np.testing.assert_allclose(out[0, 8:12], 0.25 * y[2])
    with pytest.raises(ValueError, match="multiple"):
        ConcatenatingBitPlanDecoder(n_bits=4).transform(y)


# ---- Float32 encoders ---------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(x=hnp.arrays(np.float32, SHAPES, elements=st.floats(width=32, allow_nan=False)))
def test_float32_all_bits_round_trip_exactly(x):
    n, f = x.shape
    planes = Float32Encoder().transform(x)
    assert planes.shape == (n * 32, f)
    bits = planes.reshape(n, 32, f).transpose(0, 2, 1)
    back = np.packbits(bits, axis=2).copy().view(">f4")[..., 0]
    np.testing.assert_array_equal(back, x)
    concat = ConcatenatedFloat32Encoder().transform(x)
    np.testing.assert_array_equal(concat.reshape(n, f, 32), bits)


def test_float32_kept_bits_are_sign_then_top_exponent_then_top_mantissa():
    x = np.array([[-1.5, 2.0]], dtype=np.float32)  # -1.5 = 1 01111111 1000...; 2 = 0 10000000 0...
    planes = Float32Encoder(sign_bit=True, exp_bits=2, mantissa_bits=1).transform(x)
    assert planes.shape == (4, 2)
    np.testing.assert_array_equal(planes[:, 0], [1, 0, 1, 1])
    np.testing.assert_array_equal(planes[:, 1], [0, 1, 0, 0])
    with pytest.raises(ValueError, match="exp_bits"):
        Float32Encoder(exp_bits=9)


# ---- threshold and thermometer encoders ---------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(x=FLOATS, t=st.floats(-1e3, 1e3))
def test_binary_threshold_semantics(x, t):
    np.testing.assert_array_equal(BinaryThresholdEncoder(t).transform(x), x > t)
    np.testing.assert_array_equal(BinaryThresholdEncoder(t, greater_is_one=False).transform(x),
                                  x < t)
    assert BinaryThresholdEncoder(t).transform(x).dtype == np.uint8


def test_binary_threshold_auto_is_the_columnwise_median_and_fit_keeps_parameters():
    x = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0]])
    enc = BinaryThresholdEncoder()  # 'auto'
    with pytest.raises(ValueError, match="fit"):
        enc.transform(x)
    out = enc.fit(x).transform(x)
    np.testing.assert_array_equal(enc.threshold_, [2.0, 20.0])
    np.testing.assert_array_equal(out, [[0, 0], [0, 1], [1, 0]])
    assert enc.threshold_enc == "auto"  # lightonml overwrote it; cloning + refit needs it kept
    with pytest.warns(UserWarning, match="outside"):
        BinaryThresholdEncoder(100).fit(x)
    with pytest.raises(ValueError, match="threshold_enc"):
        BinaryThresholdEncoder("median")


@settings(max_examples=50, deadline=None)
@given(x=FLOATS, n_bins=st.integers(2, 9))
def test_multi_threshold_linspace_blocks_count_thresholds_below(x, n_bins):
    enc = MultiThresholdEncoder(thresholds="linspace", n_bins=n_bins).fit(x)
    t = np.linspace(x.min(), x.max(), n_bins + 1)[1:-1]
    np.testing.assert_allclose(enc.thresholds_, t)
    out = enc.transform(x)
    n, f = x.shape
    assert out.shape == (n, (n_bins - 1) * f)
    blocks = out.reshape(n, n_bins - 1, f)  # threshold-major
    np.testing.assert_array_equal(blocks, x[:, None, :] > t[None, :, None])
    np.testing.assert_array_equal(blocks.sum(axis=1), (x[:, None, :] > t[None, :, None]).sum(1))


def test_multi_threshold_columnwise_quantiles_and_given_thresholds():
    x = np.column_stack([np.arange(8.0), 10 * np.arange(8.0)])
    enc = MultiThresholdEncoder(thresholds="quantiles", n_bins=4, columnwise=True).fit(x)
    assert enc.thresholds_.shape == (2, 3)
    np.testing.assert_allclose(enc.thresholds_[1], 10 * enc.thresholds_[0])
    np.testing.assert_array_equal(enc.transform(x).reshape(8, 3, 2).sum(1), [[0, 0], [0, 0]] +
                                  [[1, 1]] * 2 + [[2, 2]] * 2 + [[3, 3]] * 2)
    given_t = MultiThresholdEncoder(thresholds=[0.5, 2.5])
    np.testing.assert_array_equal(given_t.transform(np.array([[0.0, 1.0, 3.0]])),
                                  [[0, 1, 1, 0, 0, 1]])
    with pytest.raises(ValueError, match="columnwise"):
        MultiThresholdEncoder(thresholds=[1.0, 2.0], columnwise=True)


@settings(max_examples=50, deadline=None)
@given(x=FLOATS, g=st.sampled_from([2, 4, 8, 16, 64, 256]))
def test_sequential_base_two_blocks_sum_to_the_level_and_round_trip(x, g):
    enc = SequentialBaseTwoEncoder(n_gray_levels=g).fit(x)
    out = enc.transform(x)
    n, f = x.shape
    assert out.shape == (n, f * (g - 1)) and out.dtype == np.uint8
    levels = out.reshape(n, f, g - 1).sum(axis=2)
    np.testing.assert_array_equal(levels, enc.normalize(x))
    if enc.scale > 0:
        back = levels * enc.scale / (g - 1) + enc.offset
        assert np.all(np.abs(back - x) <= enc.scale / (2 * (g - 1)) * (1 + 1e-9) + 1e-9)


def test_sequential_base_two_documented_example():
    enc = SequentialBaseTwoEncoder(n_gray_levels=8).fit(np.array([[0, 7]]))
    np.testing.assert_array_equal(enc.transform(np.array([[5]]).repeat(2, 1))[0, :7],
                                  [1, 1, 1, 1, 0, 0, 1])  # 5 = 101 -> 1111 00 1
    with pytest.raises(ValueError, match="power of two"):
        SequentialBaseTwoEncoder(12)
    with pytest.raises(ValueError, match="fit"):
        SequentialBaseTwoEncoder().transform(np.zeros((1, 1)))


def test_no_encoding_and_no_decoding_are_the_identity():
    x = np.arange(6).reshape(2, 3)
    assert NoEncoding().transform(x) is x and NoDecoding().fit_transform(x) is x
