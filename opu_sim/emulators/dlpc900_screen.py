"""The DLPC900's video input fed by a real X server: what a real window shows, read back from
the server's framebuffer at each VSYNC of the timing board.

For testing the bench's video path for real without a controller: the host presents frames in
a real VideoWindow on a virtual X server (Xvfb, whose `-fbdir` option keeps the screen in an
XWD file); this input samples that file at each VSYNC edge of a run on the board's clock (the
FPGA emulator in realtime mode: board time = host monotonic time + an offset) on a capture
thread, and the rig shows each captured frame's 24 bit planes, as the controller in
video-pattern mode latches the newest frame at each VSYNC. Where the real host is late, the
captured frames show it, exactly as the timing board would count it.

A capture is taken within `capture_slack` of a VSYNC period after its edge; one taken later
than that could see the next frame (the host flips in the middle of each interval) and is
counted in `late_captures` (a test asserts there were none: the emulator, not the host code
under test, missed its deadline). Faults: `faults.lost_vsyncs` (VideoLinkFaults: VSYNC edges
the board's counter misses); late and dropped flips come from the real host.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from firmware_iface.dlpc900.video import PATTERNS_PER_FRAME
from firmware_iface.errors import ConfigurationError

from .dlpc900_video import VideoLinkFaults, VideoRun

__all__ = ["ScreenVideoInput", "read_xwd"]


def read_xwd(data: bytes | np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB view of an XWD image (Xvfb -fbdir: big-endian header, ZPixmap, 24-bit
    depth in 32-bit LSB-first pixels). ConfigurationError for any other layout."""
    buf = np.frombuffer(data, np.uint8)
    head = struct.unpack(">25I", buf[:100].tobytes())
    header_size, depth, width, height = head[0], head[3], head[4], head[5]
    byte_order, bpp, bytes_per_line, ncolors = head[7], head[11], head[12], head[19]
    if (depth, bpp, byte_order) != (24, 32, 0) or head[14:17] != (0xFF0000, 0x00FF00, 0x0000FF):
        raise ConfigurationError(
            f"unsupported XWD framebuffer (depth {depth}, {bpp} bpp, byte order {byte_order}): "
            "start Xvfb with -screen 0 WxHx24"
        )
    off = header_size + 12 * ncolors
    px = buf[off : off + bytes_per_line * height].reshape(height, bytes_per_line)
    return px[:, : 4 * width].reshape(height, width, 4)[:, :, 2::-1]  # B, G, R, pad -> R, G, B


class ScreenVideoInput:
    """The controller's video input reading an Xvfb framebuffer file at each VSYNC.

    fb_path: the server's XWD file (`<fbdir>/Xvfb_screen0`). width, height: the DMD's size
    (the top-left of the screen). board_to_host_ns: host monotonic time of a board time (the
    realtime FPGA emulator's `board_to_host_ns`). capture_slack: fraction of a VSYNC period a
    capture may lag its edge before it counts as late.
    Rig side, as EmulatedVideoLink: start_run(...), finish_run(...), counted_vsync_frames,
    locked, faults (lost_vsyncs).
    """

    def __init__(self, fb_path: str | Path, width: int, height: int,
                 board_to_host_ns: Callable[[float], int], capture_slack: float = 0.25) -> None:
        self.fb_path = Path(fb_path)
        self.width, self.height = width, height
        self._to_host = board_to_host_ns
        self.capture_slack = capture_slack
        self.faults = VideoLinkFaults()
        self.counted_vsync_frames: list[int] = []
        self.late_captures = 0
        self.captures = 0
        self.capture_lag_us: list[float] = []  # per capture: start of the read after its edge
        self._thread: threading.Thread | None = None
        self._shown: list[np.ndarray | None] = []

    @property
    def locked(self) -> bool:
        """A source is present: the X server's screen exists and covers the DMD."""
        try:
            rgb = read_xwd(self.fb_path.read_bytes())
        except (OSError, ConfigurationError, struct.error, ValueError):
            return False
        return rgb.shape[0] >= self.height and rgb.shape[1] >= self.width

    def _grab(self) -> np.ndarray:
        rgb = read_xwd(np.fromfile(self.fb_path, np.uint8))
        return np.ascontiguousarray(rgb[: self.height, : self.width])

    def start_run(self, start_us: int, n_triggers: int, pattern_period_us: int) -> None:
        """A run was accepted: capture the screen at each of its VSYNC edges (a thread)."""
        period = PATTERNS_PER_FRAME * pattern_period_us
        n_vsync = -(-n_triggers // PATTERNS_PER_FRAME)
        keep = [k for k in range(n_vsync) if k not in self.faults.lost_vsyncs]
        self.counted_vsync_frames = [PATTERNS_PER_FRAME * k for k in keep]
        edges = [self._to_host(start_us + v * period) for v in range(n_vsync)]
        slack_ns = self.capture_slack * period * 1000
        self._shown = [None] * n_vsync
        self._thread = threading.Thread(target=self._capture, args=(edges, slack_ns),
                                        daemon=True, name="screen-video-input")
        self._thread.start()

    def _capture(self, edges: list[int], slack_ns: float) -> None:
        previous = None
        for v, t in enumerate(edges):
            wait = t - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            lag_ns = time.monotonic_ns() - t
            self.capture_lag_us.append(lag_ns / 1000)
            if lag_ns > slack_ns:
                self.late_captures += 1
            frame = self._grab()
            if previous is not None and np.array_equal(frame, previous):
                frame = previous  # the same object: the rig samples each distinct frame once
            self._shown[v] = previous = frame
            self.captures += 1

    def finish_run(self, start_us: int, n_triggers: int, pattern_period_us: int) -> VideoRun:
        """The run ended: the frames captured at its VSYNCs."""
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.faults.clear()
        return VideoRun(start_us, PATTERNS_PER_FRAME * pattern_period_us, list(self._shown))
