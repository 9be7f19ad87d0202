"""Video-pattern mode frames: 24 one-bit patterns in one RGB888 frame, in the DLPC900's
bit-plane order (DLPU018, Pattern Display LUT Definition, bit position 0-23)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.dlpc900.video import (
    bit_plane,
    pack_frame,
    pack_frame_elements,
    pack_frames_elements,
    unpack_frame,
)
from firmware_iface.errors import InputError
from firmware_iface.geometry import DmdLayout

# Bit position -> bit plane, written out as TI's table gives it (DLPC350 Programmer's Guide
# DLPU010G Table 2-70 "Pattern Number Mapping"; DLPU018J's 0x1A34 gives only the range 0-23):
# green first, then red, then blue, LSB first.
GUIDE_TABLE = [
    "G0", "G1", "G2", "G3", "G4", "G5", "G6", "G7",
    "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7",
    "B0", "B1", "B2", "B3", "B4", "B5", "B6", "B7",
]
CHANNEL = {"R": 0, "G": 1, "B": 2}  # RGB888 byte order of a frame buffer


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 24),
    h=st.integers(1, 9),
    w=st.integers(1, 17),
    seed=st.integers(0, 2**32 - 1),
)
def test_packing_order_matches_the_guide_table(n, h, w, seed):
    p = np.random.default_rng(seed).random((n, h, w)) < 0.5
    frame = pack_frame(p)
    assert frame.shape == (h, w, 3) and frame.dtype == np.uint8
    for k in range(24):
        name = GUIDE_TABLE[k]
        plane = (frame[:, :, CHANNEL[name[0]]] >> int(name[1])) & 1
        expected = p[k] if k < n else np.zeros((h, w), bool)
        assert np.array_equal(plane.astype(bool), expected), f"bit position {k} ({name})"
        assert bit_plane(k) == (CHANNEL[name[0]], int(name[1]))
    assert np.array_equal(unpack_frame(frame, n), p)


@settings(max_examples=25, deadline=None)
@given(
    n_data=st.integers(1, 60),
    mp=st.integers(1, 4),
    n=st.integers(1, 24),
    seed=st.integers(0, 1000),
)
def test_element_packer_equals_rendered_packing(n_data, mp, n, seed):
    layout = DmdLayout.fit(n_data, 3, dmd_width=40, dmd_height=24, max_macro_pixel=mp)
    el = np.random.default_rng(seed).random((n, layout.n_elements)) < 0.5
    rendered = layout.render(el).reshape(n, 24, 40)
    assert np.array_equal(pack_frame_elements(el, layout), pack_frame(rendered))


def test_many_patterns_fill_frames_in_order():
    layout = DmdLayout.fit(30, 30, dmd_width=64, dmd_height=32)
    el = np.random.default_rng(2).random((50, layout.n_elements)) < 0.5
    frames = pack_frames_elements(el, layout)
    assert frames.shape == (3, 32, 64, 3)
    planes = np.concatenate([unpack_frame(f) for f in frames])
    rendered = layout.render(el).reshape(50, 32, 64)
    assert np.array_equal(planes[:50], rendered)
    assert not planes[50:].any()  # unused planes of the last frame are OFF


def test_reused_buffer_and_input_checks():
    layout = DmdLayout.fit(10, 10, dmd_width=40, dmd_height=24)
    buf = np.full((24, 40, 3), 255, np.uint8)
    el = np.zeros((24, layout.n_elements), np.uint8)
    assert pack_frame_elements(el, layout, out=buf) is buf and not buf.any()
    with pytest.raises(InputError, match="binary"):
        pack_frame_elements(np.full((1, layout.n_elements), 2), layout)
    with pytest.raises(InputError, match="1..24"):
        pack_frame_elements(np.zeros((25, layout.n_elements), bool), layout)
    with pytest.raises(InputError, match="dtype"):
        pack_frame(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(InputError, match="out must be"):
        pack_frame(np.zeros((1, 2, 2), bool), out=np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(InputError, match="0..23"):
        bit_plane(24)


# --- attribution of a video-pattern run (video_sync) ---------------------------------------------

from firmware_iface.dlpc900.video_sync import VsyncCount, attribute, vsync_grid  # noqa: E402

T = 24 * 347.0  # VSYNC period of a 347 us pattern


def _run(n_vsync, lost=()):
    v = np.array([k * T for k in range(n_vsync) if k not in lost])
    trig = np.arange(24 * n_vsync) * 347.0
    return VsyncCount(v, trig)


def test_attribution_of_a_clean_run_and_its_spare_vsync():
    flips = np.array([-0.25 * T, 0.75 * T, 1.75 * T])
    a = attribute(flips, _run(4), T)
    assert not a.problems and a.shown.all()
    assert a.frame.tolist() == [0] * 24 + [1] * 24 + [2] * 24 + [-1] * 24
    assert a.plane[:24].tolist() == list(range(24))


def test_a_late_flip_leaves_the_repeated_vsync_unattributed():
    flips = np.array([-0.25 * T, 1.25 * T, 1.75 * T])  # frame 1 misses VSYNC 1
    a = attribute(flips, _run(4), T)
    assert [k for k, _ in a.problems] == ["late_flip", "dropped_frame"]
    # frame 1 was overwritten by frame 2 before VSYNC 2: never shown
    assert a.frame[24:48].tolist() == [-1] * 24 and a.shown.tolist() == [True, False, True]


def test_lost_vsyncs_are_put_back_and_bad_counts_are_fatal():
    assert vsync_grid(np.array([0.0, 2 * T, 3 * T]), T)[1] == 1
    flips = np.array([-0.25 * T, 0.75 * T, 1.75 * T])
    a = attribute(flips, _run(4, lost={1, 3}), T)
    assert [k for k, _ in a.problems] == ["lost_vsync"] and a.shown.all()
    assert a.frame.tolist()[:72] == [0] * 24 + [1] * 24 + [2] * 24
    assert attribute(flips, _run(4, lost={0}), T).fatal
    short = VsyncCount(np.array([0.0, T]), np.arange(47) * 347.0)
    assert attribute(flips[:2], short, T).fatal


def test_a_flip_within_the_clock_error_of_its_vsync_is_never_attributed():
    from firmware_iface.dlpc900.video_sync import FlipTimes

    # frame 1 became current somewhere in [0.9 T, 1.1 T]: VSYNC 1 may show frame 0 or frame 1
    flips = FlipTimes(np.array([-0.5 * T, 0.9 * T, 1.5 * T]), np.array([-0.4 * T, 1.1 * T,
                                                                          1.6 * T]))
    a = attribute(flips, _run(4), T)
    assert ("uncertain_flip" in [k for k, _ in a.problems])
    assert a.frame[24:48].tolist() == [-1] * 24  # VSYNC 1: not attributed
    # VSYNC 2 shows frame 2 (flipped before it for sure): frame 1 counts as not shown
    assert a.frame[48:72].tolist() == [2] * 24 and a.shown.tolist() == [True, False, True]
    with pytest.raises(InputError, match="earliest <= latest"):
        FlipTimes(np.array([1.0]), np.array([0.0]))
    with pytest.raises(InputError, match="must not decrease"):
        FlipTimes(np.array([1.0, 0.0]), np.array([1.0, 0.5]))


def test_a_display_latency_shifts_which_vsync_shows_a_frame():
    flips = np.array([-0.5 * T, 0.5 * T])  # frames current from edges 0 and 1
    a = attribute(flips, _run(4), T, latency_vsyncs=1)  # shown one VSYNC later
    assert a.frame[::24].tolist() == [-1, 0, 1, -1] and a.shown.all() and not a.problems
