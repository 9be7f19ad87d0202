"""Upload preparation: the element fast path equals the general pack+ERLE path byte for byte."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.dlpc900.images import (
    decode_image,
    prepare_upload,
    prepare_upload_elements,
    unpack_pattern,
)
from firmware_iface.errors import InputError
from firmware_iface.geometry import DmdLayout


@settings(max_examples=25, deadline=None)
@given(
    n_data=st.integers(1, 60),
    mp=st.integers(1, 4),
    n=st.integers(1, 30),
    density=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_fast_path_is_byte_identical(n_data, mp, n, density, seed):
    layout = DmdLayout.fit(n_data, 2, dmd_width=40, dmd_height=24, max_macro_pixel=mp)
    el = np.random.default_rng(seed).random((n, layout.n_elements)) < density
    fast = prepare_upload_elements(el, layout)
    slow = prepare_upload(layout.render(el).reshape(n, 24, 40), width=40, height=24)
    assert fast.images == slow.images
    assert np.array_equal(fast.slots, slow.slots)


def test_fast_path_full_dmd_decodes_to_rendered_patterns():
    layout = DmdLayout.fit(4000, 96)
    el = np.random.default_rng(0).random((26, layout.n_elements)) < 0.5
    plan = prepare_upload_elements(el, layout)
    assert len(plan.images) == 2
    _, words = decode_image(plan.images[1])
    assert np.array_equal(unpack_pattern(words, 1), layout.render(el[25]))
    # ERLE exploits identical lines: far smaller than the 6.2 MB of an uncompressed image
    assert plan.n_bytes < 100_000


def test_random_full_resolution_roundtrip():
    imgs = np.random.default_rng(1).random((3, 1080, 1920)) < 0.5
    plan = prepare_upload(imgs)
    _, words = decode_image(plan.images[0])
    assert all(np.array_equal(unpack_pattern(words, k), imgs[k]) for k in range(3))


def test_element_input_checks():
    layout = DmdLayout.fit(10, 0, dmd_width=40, dmd_height=24)
    with pytest.raises(InputError, match="binary"):
        prepare_upload_elements(np.full((1, 10), 3), layout)
    with pytest.raises(InputError, match="dtype"):
        prepare_upload_elements(np.zeros((1, 10), np.float32), layout)
