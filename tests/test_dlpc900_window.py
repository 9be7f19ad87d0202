"""The video-pattern window for real: a virtual X server (Debian's xvfb) on a free display, a
borderless full-screen pygame (SDL2) window on it, frames presented and read back twice: from
the window's surface and from the X server's own framebuffer (Xvfb -fbdir, XWD format), with
every bit plane checked against the patterns.

Skipped only when Xvfb is missing and OPU_REQUIRE_XVFB is unset (.ci/run installs xvfb and sets
it, so CI cannot skip)."""

import time

import numpy as np
import pytest

from firmware_iface.dlpc900.video import pack_frame_elements, unpack_frame
from firmware_iface.geometry import DmdLayout
from opu_sim.emulators.dlpc900_screen import read_xwd as _read_xwd

W, H = 1920, 1080  # the xvfb fixture's screen (conftest.py)


def read_xwd(path) -> np.ndarray:
    return _read_xwd(path.read_bytes())


def test_window_presents_frames_and_the_bit_planes_survive(xvfb):
    from firmware_iface.dlpc900.window import VideoWindow

    layout = DmdLayout.fit(1000, 1000)
    rng = np.random.default_rng(7)
    with VideoWindow(W, H) as win:
        for _ in range(3):
            el = rng.random((24, layout.n_elements)) < 0.5
            frame = pack_frame_elements(el, layout)
            t = win.present(frame)
            assert isinstance(t, int)
            shown = win.read_back()
            assert np.array_equal(shown, frame)
            # the X server's framebuffer holds the same pixels (give it a moment to damage)
            deadline = time.monotonic() + 5
            while not np.array_equal(read_xwd(xvfb), frame) and time.monotonic() < deadline:
                time.sleep(0.05)
            screen = read_xwd(xvfb)
            planes = unpack_frame(np.ascontiguousarray(screen))
            assert np.array_equal(planes, layout.render(el).reshape(24, H, W))
        assert win.presented == 3


def test_window_refuses_wrong_frames_and_missing_displays(xvfb):
    from firmware_iface.dlpc900.window import VideoWindow
    from firmware_iface.errors import ConfigurationError, InputError

    with pytest.raises(ConfigurationError, match="display 5"):
        VideoWindow(W, H, display=5)
    with VideoWindow(W, H) as win:
        with pytest.raises(InputError, match="uint8"):
            win.present(np.zeros((H, W, 3), np.uint16))
        with pytest.raises(InputError, match=r"\(1080, 1920, 3\)"):
            win.present(np.zeros((H, W), np.uint8))
