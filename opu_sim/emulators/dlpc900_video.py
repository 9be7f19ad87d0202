"""The DLPC900's video input in emulation: the cable from the host's video output (a stand-in
for the full-screen window, firmware_iface.dlpc900.window) to the controller, and the VSYNC and
pattern-trigger lines the timing board counts.

The timing board's VSYNC input is wired to the link: after each video run the FPGA emulator
marks the events of the frames where an edge was counted (TriggerFlags.VSYNC), so the host
reads VSYNC edges and pattern triggers from the board, as on a bench.

Model (docs/dlpc900.md, "Video-pattern mode"): the host flips frames; at each VSYNC the
controller latches the newest flipped frame and shows its 24 bit planes, one per pattern
trigger, pattern period = VSYNC period / 24. The timing board starts a run on a VSYNC edge and
fires the camera on every pattern trigger, so VSYNC v of a run is at start + v * 24 * P for the
board's frame period P. Faults (`VideoLinkFaults`, each applies to the next run only):
late_flips (frame flipped after its VSYNC: the previous frame is shown twice), dropped_frames
(a frame overwritten by the next flip before any VSYNC: never shown; the last frame of a run has
no next flip and is not dropped) and lost_vsyncs (VSYNC edges the counter misses; the display is
unaffected).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from firmware_iface.dlpc900.video import BIT_PLANE_CHANNEL, PATTERNS_PER_FRAME
from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.geometry import DmdLayout


@dataclass
class VideoLinkFaults:
    """Faults of the next run (every run with every_run), by index within the run: host frames
    flipped late, host frames dropped, VSYNC edges the counter misses."""

    late_flips: set[int] = field(default_factory=set)
    dropped_frames: set[int] = field(default_factory=set)
    lost_vsyncs: set[int] = field(default_factory=set)
    every_run: bool = False

    def clear(self) -> None:
        """Forget the faults after a run (kept when every_run is set)."""
        if self.every_run:
            return
        self.late_flips.clear()
        self.dropped_frames.clear()
        self.lost_vsyncs.clear()


@dataclass
class VideoRun:
    """One run as the link played it: per VSYNC the RGB888 frame shown (None: nothing shown
    yet; a repeated frame is the same object) and the host's flip times (board clock, us)."""

    start_us: int
    vsync_period_us: int
    shown: list[np.ndarray | None]
    flip_times_us: np.ndarray


class EmulatedVideoLink:
    """Host video output -> DLPC900 video input, plus the VSYNC/trigger counter lines.

    Host side: open() (source present, sync locked), present(frame) (queue a flip), close(),
    take_run() (flip times of the last run). Rig side: play(...) at each run.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.locked = False
        self.faults = VideoLinkFaults()
        self.frames_presented = 0
        self._queue: list[np.ndarray] = []
        self._on_screen: np.ndarray | None = None  # the frame the controller holds
        self._last: VideoRun | None = None
        self.counted_vsync_frames: list[int] = []  # last run: frames with a VSYNC edge seen

    # ---- host side ------------------------------------------------------------------------
    def open(self) -> None:
        """The host's output is up: the controller sees a locked source."""
        self.locked = True

    def close(self) -> None:
        """The host's output is gone: the source is lost."""
        self.locked = False
        self._queue.clear()

    def present(self, frame: np.ndarray) -> None:
        """Flip one (H, W, 3) uint8 RGB888 frame; it is latched at the run's next free VSYNC."""
        if not self.locked:
            raise ConfigurationError("the video output is closed: open() it first")
        f = np.asarray(frame)
        if f.shape != (self.height, self.width, 3) or f.dtype != np.uint8:
            raise InputError(f"video frames are ({self.height}, {self.width}, 3) uint8, got "
                             f"{f.dtype} {f.shape}")
        self._queue.append(f)
        self.frames_presented += 1

    def take_run(self) -> VideoRun:
        """The last run's record (the host reads flip times and counts after the run)."""
        if self._last is None:
            raise ConfigurationError("no video run has been played")
        run, self._last = self._last, None
        return run

    # ---- rig side -------------------------------------------------------------------------
    def play(self, start_us: int, n_triggers: int, pattern_period_us: int) -> VideoRun:
        """Latch the queued frames on the run's VSYNC grid (faults applied) and record what
        the host sees (flip times) and the frames whose VSYNC edge the board's input counts
        (`counted_vsync_frames`). Consumes the queue and the faults."""
        period = PATTERNS_PER_FRAME * pattern_period_us
        n_vsync = -(-n_triggers // PATTERNS_PER_FRAME)
        t = start_us + period * np.arange(n_vsync + 1, dtype=np.int64)
        f = self.faults
        shown: list[np.ndarray | None] = [None] * n_vsync
        flips: list[float] = []
        v = 0
        for i, frame in enumerate(self._queue):
            tv = float(t[min(v, n_vsync)])
            if i in f.dropped_frames and i + 1 < len(self._queue):
                # overwritten by the next flip before VSYNC v (a last frame has no next flip)
                flips.append(tv - 0.5 * period)
                continue
            if i in f.late_flips:  # misses VSYNC v: the previous frame stays up for it
                v += 1
                flips.append(tv + 0.25 * period)
            else:
                flips.append(tv - 0.25 * period)
            if v < n_vsync:
                shown[v] = frame
            v += 1
        prev = self._on_screen
        for k in range(n_vsync):
            if shown[k] is None:
                shown[k] = prev
            prev = shown[k]
        self._on_screen = prev
        keep = [k for k in range(n_vsync) if k not in f.lost_vsyncs]
        self.counted_vsync_frames = [PATTERNS_PER_FRAME * k for k in keep]
        run = VideoRun(start_us, period, shown, np.array(flips, np.float64))
        self._queue.clear()
        f.clear()
        self._last = run
        return run


def plane_fractions(frame: np.ndarray, bit_positions: list[int], layout: DmdLayout) -> np.ndarray:
    """(len(bit_positions), layout.n_elements) float32: the fraction of ON mirrors of each
    element for the bit planes at these LUT bit positions of an RGB888 frame (the numbers
    DmdLayout.sample gives for each rendered plane, without unpacking the frame)."""
    chan = np.array([BIT_PLANE_CHANNEL[b // 8] for b in bit_positions], np.int64)
    bit = np.array([b % 8 for b in bit_positions], np.int64)
    x0, y0 = layout.origin
    out = np.empty((chan.size, layout.grid_rows * layout.grid_cols), np.float32)
    _plane_fractions(frame, chan, bit, y0, x0, layout.grid_rows, layout.grid_cols,
                     layout.macro_pixel, out)
    return out[:, : layout.n_elements]


@nb.njit(cache=True)
def _plane_fractions(frame, chan, bit, y0, x0, rows, cols, mp, out):  # noqa: ANN001, ANN202
    n = chan.size
    counts = np.zeros(n, np.int64)
    for r in range(rows):
        for c in range(cols):
            counts[:] = 0
            for dy in range(mp):
                row = frame[y0 + r * mp + dy]
                for dx in range(mp):
                    px = row[x0 + c * mp + dx]
                    for p in range(n):
                        counts[p] += (px[chan[p]] >> bit[p]) & 1
            for p in range(n):
                out[p, r * cols + c] = counts[p] / (mp * mp)
