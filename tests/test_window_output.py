"""The bench's window output without a display: BoardClock's offset and error bound from round
trips, WindowVideoOutput's flip intervals on the board clock, and the refusal of unlocked flips
(torn frames) unless asked for."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_iface.errors import ConfigurationError
from firmware_iface.hardware.window_output import BoardClock, WindowVideoOutput


class FakeClocks:
    """A host clock (ns) and a board clock 5 s ahead of it; each board read costs 400 us of host
    time, the board stamping at 100 us into it (an asymmetric round trip)."""

    def __init__(self):
        self.host_ns = 1_000_000_000

    def host(self):
        return self.host_ns

    def read_board(self):
        self.host_ns += 100_000
        board = self.host_ns / 1000 + 5e6
        self.host_ns += 300_000
        return board


def test_board_clock_offset_is_within_its_error_bound():
    c = FakeClocks()
    clock = BoardClock(probes=3, drift_ppm=50.0, host_ns=c.host)
    with pytest.raises(ConfigurationError, match="not been synchronised"):
        clock.now_us()
    clock.sync(c.read_board)
    assert clock.round_trip_us == pytest.approx(400.0)
    true = c.host_ns / 1000 + 5e6
    err = clock.error_us(c.host_ns)
    assert abs(clock.to_board_us(c.host_ns) - true) <= err  # 100 us off, bound 201 us
    assert err == pytest.approx(200.0 + 1.0, abs=0.1)
    later = c.host_ns + 10_000_000_000  # 10 s on: 500 us of drift allowance
    assert clock.error_us(later) == pytest.approx(err + 500.0, abs=0.1)
    assert clock.to_host_ns(clock.to_board_us(later)) == later


class FakeWindow:
    def __init__(self, vsync, host):
        self.vsync, self.host, self.presented, self.closed = vsync, host, 0, False

    def present(self, frame):
        self.host.host_ns += 2_000_000  # 2 ms blit + swap
        self.presented += 1
        return self.host.host_ns

    def close(self):
        self.closed = True


def test_window_output_reports_flips_as_board_time_intervals():
    c = FakeClocks()
    out = WindowVideoOutput(FakeWindow(True, c), BoardClock(probes=2, host_ns=c.host),
                            sleep=lambda s: setattr(c, "host_ns", c.host_ns + round(s * 1e9)))
    out._host_ns = c.host
    with pytest.raises(ConfigurationError, match="no timing board"):
        out.sync()
    out.attach_board(c.read_board)
    t_call = c.host_ns / 1000 + 5e6
    lo, hi = out.present(np.zeros((2, 2, 3), np.uint8))
    e = out.clock.error_us(c.host_ns)
    assert lo <= t_call <= t_call + 2000 <= hi  # the whole call, widened by the clock error
    assert hi - lo == pytest.approx(2000 + 2 * e, abs=1)
    out.wait_until_us(hi + 10_000)  # sleeps on the host clock until that board time
    assert abs(out.board_now_us() - (hi + 10_000)) < 1
    out.close()
    assert out.window.closed


def test_unlocked_flips_are_refused_unless_asked_for():
    c = FakeClocks()
    with pytest.raises(ConfigurationError, match="torn frames"):
        WindowVideoOutput(FakeWindow(False, c))
    assert WindowVideoOutput(FakeWindow(False, c), allow_unlocked=True).window.vsync is False


def test_board_clock_against_a_realtime_fpga_emulator_over_its_serial_protocol():
    import time

    from firmware_iface.fpga.driver import FPGATimingBoard
    from opu_sim.emulators.fpga import FPGAEmulator, register_emulator, unregister_emulator

    emu = FPGAEmulator(realtime=True)
    url = register_emulator("rt-clock-test", emu)
    try:
        with FPGATimingBoard(url) as board:
            clock = BoardClock(probes=3)
            clock.sync(lambda: board.status().device_time_us)
            now = time.monotonic_ns()
            truth = (now - emu.board_to_host_ns(0)) / 1000  # the board time at host time `now`
            assert abs(clock.to_board_us(now) - truth) <= clock.error_us(now)
            assert abs(clock.offset_us) > 1e6  # the board's clock is not the host's
            board.configure(frame_period_us=2000, exposure_us=500, dmd_delay_us=0,
                            camera_delay_us=0)
            board.arm()
            t0 = time.monotonic()
            accepted = board.run(10)
            events = board.wait_run_complete()
            assert time.monotonic() - t0 >= 0.018  # 10 frames of 2 ms, in real time
            assert len(events) == 10
            start_host = emu.board_to_host_ns(accepted.start_time_us)
            assert abs(clock.to_host_ns(accepted.start_time_us) - start_host) <= (
                clock.error_us(start_host) * 1000 + 1000)
    finally:
        unregister_emulator("rt-clock-test")
