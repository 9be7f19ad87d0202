"""The video-pattern window for real: a virtual X server (Debian's xvfb) on a free display, a
borderless full-screen pygame (SDL2) window on it, frames presented and read back twice: from
the window's surface and from the X server's own framebuffer (Xvfb -fbdir, XWD format), with
every bit plane checked against the patterns.

Skipped only when Xvfb is missing and OPU_REQUIRE_XVFB is unset (.ci/run installs xvfb and sets
it, so CI cannot skip)."""

import os
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest

from firmware_iface.dlpc900.video import pack_frame_elements, unpack_frame
from firmware_iface.geometry import DmdLayout

W, H = 1920, 1080


@pytest.fixture
def xvfb(tmp_path, monkeypatch):
    exe = shutil.which("Xvfb")
    if exe is None:
        if os.environ.get("OPU_REQUIRE_XVFB"):
            pytest.fail("Xvfb is required (OPU_REQUIRE_XVFB is set): apt-get install xvfb")
        pytest.skip("Xvfb not installed (apt-get install xvfb; .ci/run does)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(w), "-screen", "0", f"{W}x{H}x24", "-fbdir", str(tmp_path),
         "-nolisten", "tcp"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(w)
    try:
        with os.fdopen(r) as f:
            display = f.readline().strip()  # Xvfb picks a free display and reports it here
        assert display.isdigit(), "Xvfb did not start"
        monkeypatch.setenv("DISPLAY", f":{display}")
        monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
        yield tmp_path / "Xvfb_screen0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def read_xwd(path) -> np.ndarray:
    """(H, W, 3) RGB of an Xvfb framebuffer file (XWD: big-endian header, ZPixmap, 32 bpp)."""
    data = path.read_bytes()
    head = struct.unpack(">25I", data[:100])
    header_size, depth, width, height = head[0], head[3], head[4], head[5]
    byte_order, bpp, bytes_per_line, ncolors = head[7], head[11], head[12], head[19]
    assert (depth, bpp, byte_order) == (24, 32, 0)
    masks = head[14:17]
    assert masks == (0xFF0000, 0x00FF00, 0x0000FF)
    off = header_size + 12 * ncolors
    px = np.frombuffer(data, np.uint8, bytes_per_line * height, off)
    px = px.reshape(height, bytes_per_line)[:, : 4 * width].reshape(height, width, 4)
    return px[:, :, 2::-1]  # LSB-first B, G, R, pad -> R, G, B


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
