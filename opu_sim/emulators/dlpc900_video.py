"""The DLPC900's video input in emulation: the cable from the host's video output (a stand-in
for the full-screen window, firmware_iface.dlpc900.window) to the controller, and the VSYNC and
pattern-trigger lines the timing board counts.

The timing board's VSYNC input is wired to the link: after each video run the FPGA emulator
marks the events of the frames where an edge was counted (TriggerFlags.VSYNC), so the host
reads VSYNC edges and pattern triggers from the board, as on a bench.

Model (docs/dlpc900.md, "Video-pattern mode"): the host flips frames one at a time, at times
of the board's clock (the rig's simulated clock; a flip is instantaneous, as a vsync-locked
swap of a double-buffered window); at each VSYNC the controller latches the newest frame
flipped before it and shows its 24 bit planes, one per pattern trigger, pattern period = VSYNC
period / 24. The timing board starts a run on a VSYNC edge and fires the camera on every
pattern trigger, so VSYNC v of a run is at start + v * 24 * P for the board's frame period P.
What a run showed is known only when it ends (`finish_run`): the host presents during the run.
Faults (`VideoLinkFaults`, by index of the frame within the next run; every run with
every_run): late_flips (the host stalls 3/4 of a VSYNC period before that flip, so a frame
aimed at the middle of its interval lands after its VSYNC: the previous frame is shown twice;
the first frame of a run is presented before the RUN, which the stall only delays),
dropped_frames (the next flip follows at once: this frame is overwritten before any VSYNC and
never shown; the last frame of a run has no next flip) and lost_vsyncs (VSYNC edges the
counter misses; the display is unaffected).
"""

from __future__ import annotations

from collections.abc import Callable
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
    """One run as the display played it: per VSYNC the RGB888 frame shown (None: nothing shown
    yet; a repeated frame is the same object)."""

    start_us: int
    vsync_period_us: int
    shown: list[np.ndarray | None]


def latch(start_us: int, period_us: int, n_vsync: int, flips: list[tuple[float, np.ndarray]],
          on_screen: np.ndarray | None) -> list[np.ndarray | None]:
    """Per VSYNC v (at start_us + v * period_us): the newest frame flipped strictly before it,
    else the frame already on screen."""
    shown: list[np.ndarray | None] = []
    i = 0
    for v in range(n_vsync):
        t = start_us + v * period_us
        while i < len(flips) and flips[i][0] < t:
            on_screen = flips[i][1]
            i += 1
        shown.append(on_screen)
    return shown


class EmulatedVideoLink:
    """Host video output -> DLPC900 video input, plus the VSYNC/trigger counter lines.

    clock_us: the board time now; advance_us(dt): let board time pass (the rig wires both to
    the FPGA emulator's clock); vsync_period_us: the VSYNC period the host runs at (the rig:
    24 x the board's frame period). latency_vsyncs: VSYNCs a frame takes from its flip to the
    DMD (0; a bench's display pipeline may add some: the latency check measures it).
    Host side (the video output protocol of firmware_iface.hardware.video_path): open(),
    close(), sync(), present(frame) -> (earliest, latest) board time of the flip, board_now_us(),
    wait_until_us(t). Rig side: start_run(start_us, n_triggers, pattern_period_us) when a run is
    accepted, finish_run(start_us, n_triggers, pattern_period_us) when it ends.
    """

    def __init__(
        self,
        width: int,
        height: int,
        clock_us: Callable[[], float] | None = None,
        advance_us: Callable[[float], None] | None = None,
        vsync_period_us: Callable[[], float] | None = None,
    ) -> None:
        self.width, self.height = width, height
        self.locked = False
        self.faults = VideoLinkFaults()
        self.frames_presented = 0
        self._clock = clock_us if clock_us is not None else (lambda: 0.0)
        self._advance = advance_us if advance_us is not None else (lambda dt: None)
        self._period = vsync_period_us if vsync_period_us is not None else (lambda: 8328.0)
        self._flips: list[tuple[float, np.ndarray]] = []  # since the last run ended
        self._on_screen: np.ndarray | None = None  # the frame the controller holds
        self.counted_vsync_frames: list[int] = []  # current run: frames with a VSYNC edge seen
        self.latency_vsyncs = 0  # a display pipeline that shows frames this many VSYNCs late

    # ---- host side ------------------------------------------------------------------------
    def open(self) -> None:
        """The host's output is up: the controller sees a locked source."""
        self.locked = True

    def close(self) -> None:
        """The host's output is gone: the source is lost."""
        self.locked = False
        self._flips.clear()

    def sync(self) -> None:
        """Nothing to measure: the emulated host reads the board's clock itself."""

    def board_now_us(self) -> float:
        """The board's time now (the host's estimate is exact in emulation), us."""
        return float(self._clock())

    def wait_until_us(self, t_us: float) -> None:
        """Let board time pass until t_us (returns at once if it has)."""
        dt = t_us - self._clock()
        if dt > 0:
            self._advance(dt)

    def present(self, frame: np.ndarray) -> tuple[float, float]:
        """Flip one (H, W, 3) uint8 RGB888 frame now; returns the flip's board time as an
        (earliest, latest) interval (exact here: the two are equal)."""
        if not self.locked:
            raise ConfigurationError("the video output is closed: open() it first")
        f = np.asarray(frame)
        if f.shape != (self.height, self.width, 3) or f.dtype != np.uint8:
            raise InputError(f"video frames are ({self.height}, {self.width}, 3) uint8, got "
                             f"{f.dtype} {f.shape}")
        i = len(self._flips)
        if i in self.faults.late_flips:
            self._advance(0.75 * self._period())  # the host stalled before this flip
        t = float(self._clock())
        if i - 1 in self.faults.dropped_frames and self._flips:
            t = self._flips[-1][0] + 1.0  # came right after the previous flip: overwrites it
        self._flips.append((t, f))  # held, not copied: the host does not reuse a frame
        self.frames_presented += 1
        return t, t

    # ---- rig side -------------------------------------------------------------------------
    def start_run(self, start_us: int, n_triggers: int, pattern_period_us: int) -> None:
        """A run was accepted: the VSYNC edges its counter will see (`counted_vsync_frames`,
        lost_vsyncs applied)."""
        n_vsync = -(-n_triggers // PATTERNS_PER_FRAME)
        keep = [k for k in range(n_vsync) if k not in self.faults.lost_vsyncs]
        self.counted_vsync_frames = [PATTERNS_PER_FRAME * k for k in keep]

    def finish_run(self, start_us: int, n_triggers: int, pattern_period_us: int) -> VideoRun:
        """The run ended: latch the frames flipped so far on its VSYNC grid. Consumes the
        flips and the faults."""
        period = PATTERNS_PER_FRAME * pattern_period_us
        n_vsync = -(-n_triggers // PATTERNS_PER_FRAME)
        shown = latch(start_us - self.latency_vsyncs * period, period, n_vsync, self._flips,
                      self._on_screen)
        if self._flips:
            self._on_screen = self._flips[-1][1]
        self._flips = []
        self.faults.clear()
        return VideoRun(start_us, period, shown)


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
