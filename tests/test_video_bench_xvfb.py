"""The bench's video path for real, without a controller: OPUHardware presents its frames in a
real VideoWindow (pygame/SDL2) on a virtual X server (Xvfb), timed on the FPGA board's clock
through GET_STATUS round trips (WindowVideoOutput, BoardClock); the emulated DLPC900's video
input reads what the X server shows at each VSYNC of the board (ScreenVideoInput, the board in
realtime mode), shows its bit planes, and the board counts VSYNC edges and pattern triggers over
its real serial protocol. Frames and project() equal the simulator's with noise off; a host
that flips late or skips its wait (a dropped frame) is detected and nothing is attributed to the
wrong pattern.

Needs Xvfb (conftest.xvfb: skipped without it unless OPU_REQUIRE_XVFB is set). The refresh rate
is 5 Hz so that a present (30-60 ms for a 1920x1080 frame on a loaded 2-core machine) and the
capture thread keep their deadlines
(`late_captures` == 0 is asserted: otherwise the emulator, not the host code, was late)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from firmware_iface.hardware.config import DmdConfig
from firmware_iface.hardware.window_output import WindowVideoOutput
from opu import OPU
from opu.emulated import hardware_config, open_hardware
from opu_sim.bench import OpticalBench
from opu_sim.emulators.dlpc900_screen import ScreenVideoInput
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

REFRESH_HZ = 5.0
EXPOSURE_US = 150.0
N_IN, N_OUT, SEED = 16, 16, 3


class HostFaults(WindowVideoOutput):
    """A real window output whose host misbehaves on chosen flips (index since construction):
    `stall` flips come 3/4 of a VSYNC period late; `hurry` flips skip their wait (the flip
    follows the previous one at once and overwrites it before any VSYNC)."""

    def __init__(self, window, stall=(), hurry=()):
        super().__init__(window, allow_unlocked=True)  # Xvfb: no scan-out, no vsync
        self.stall, self.hurry, self.flips = set(stall), set(hurry), 0
        self.period_s = 1 / REFRESH_HZ
        self.log = []  # (earliest, latest) board time of every flip

    def wait_until_us(self, t_us):
        if self.flips not in self.hurry:
            super().wait_until_us(t_us)

    def present(self, frame):
        if self.flips in self.stall:
            self._sleep(0.75 * self.period_s)
        self.flips += 1
        self.log.append(super().present(frame))
        return self.log[-1]


@pytest.fixture
def bench(xvfb):
    from firmware_iface.dlpc900.window import VideoWindow

    prof = DeviceProfile.deterministic()
    layout, roi = OPU.plan_geometry(N_IN, N_OUT, (prof.dmd.width, prof.dmd.height),
                                    (prof.camera.sensor_width, prof.camera.sensor_height))
    rig = EmulatedRig(prof, SEED, layout, realtime=True)
    screen = ScreenVideoInput(xvfb, prof.dmd.width, prof.dmd.height, rig.fpga.board_to_host_ns)
    rig.attach_video_input(screen)
    out = HostFaults(VideoWindow(prof.dmd.width, prof.dmd.height, vsync=False))
    cfg = replace(hardware_config(rig), dmd=DmdConfig(video_refresh_hz=REFRESH_HZ))
    hw = open_hardware(rig, roi, cfg, video_output=out)
    sim = OpticalBench(prof, SEED, layout, roi)
    yield {"rig": rig, "screen": screen, "out": out, "hw": hw, "sim": sim, "prof": prof}
    hw.close()
    rig.close()


def _ref(env, p):
    frames = env["sim"].acquire(p, EXPOSURE_US).frames
    return np.clip(np.rint(frames), 0, env["prof"].camera.max_dn).astype(np.uint16)


def test_a_real_window_drives_the_video_path_and_frames_equal_the_simulator(bench):
    hw, out, screen = bench["hw"], bench["out"], bench["screen"]
    assert hw.pattern_path == "video" and out.window.presented == 0
    assert out.clock.round_trip_us < 5000  # GET_STATUS over fpgaemu://: in-process
    p = (np.random.default_rng(5).random((60, hw.layout.n_elements)) < 0.5).astype(np.uint8)
    b = hw.acquire(p, EXPOSURE_US)
    assert b.info.problems == () and b.reacquired == 0
    assert out.window.presented == 3  # 60 patterns: 3 RGB888 frames in the real window
    assert np.array_equal(b.frames, _ref(bench, p))
    with OPU(hw, n_in=N_IN, n_out=N_OUT, exposure_us=EXPOSURE_US) as emu, OPU(
        bench["sim"], n_in=N_IN, n_out=N_OUT, exposure_us=EXPOSURE_US
    ) as sim:
        x = (np.random.default_rng(1).random((30, N_IN)) < 0.5).astype(np.float32)
        assert np.array_equal(emu.project(x), sim.project(x))
    assert screen.late_captures == 0 and screen.captures > 0


def test_a_late_flip_of_the_real_window_is_detected(bench):
    hw, out, screen = bench["hw"], bench["out"], bench["screen"]
    out.stall = {1}  # 3/4 of a period late: always past its VSYNC
    p = (np.random.default_rng(6).random((72, hw.layout.n_elements)) < 0.5).astype(np.uint8)
    b = hw.acquire(p, EXPOSURE_US)
    assert any(": late_flip:" in s for s in b.info.problems), b.info.problems
    assert np.array_equal(b.frames, _ref(bench, p))  # never attributed to the wrong pattern
    assert b.reacquired == 0 and out.window.presented == 3  # the spare VSYNC absorbed it
    assert screen.late_captures == 0


def test_a_dropped_flip_of_the_real_window_is_detected(bench):
    """The host skips its wait before frame 2: frames 1 and 2 flip in the same VSYNC interval
    and frame 1 is never shown. (On a very loaded machine frame 1's own present can end so late
    that frame 2 lands after the edge: nothing is dropped then, which is checked from the flip
    and run times, and the call is repeated.)"""
    hw, out, screen = bench["hw"], bench["out"], bench["screen"]
    p = (np.random.default_rng(6).random((72, hw.layout.n_elements)) < 0.5).astype(np.uint8)
    period = 1e6 / REFRESH_HZ
    for _ in range(3):
        out.flips, out.log, out.hurry = 0, [], {2}
        before = out.window.presented
        b = hw.acquire(p, EXPOSURE_US)
        assert np.array_equal(b.frames, _ref(bench, p))  # never attributed to the wrong pattern
        if any(": dropped_frame:" in s for s in b.info.problems):
            assert b.reacquired == 24 and out.window.presented - before == 4  # frame 1 again
            break
        edge1 = hw.fpga.last_run.start_time_us + hw.timing_for(EXPOSURE_US).frame_period_us * 24
        assert out.log[2][0] >= edge1 - 0.01 * period, "frame 1 overwritten, not reported"
    else:
        pytest.fail("the hurried flip never landed in the previous frame's interval")
    assert screen.late_captures == 0
