"""A run's time limit is on the board's clock (firmware_iface/fpga/run_deadline.py): a host that
is slow itself (descheduled, or an emulator rendering the run at its end) does not stop a run
the board is within its time for, and a run that is late on the board's clock, or a board whose
clock has stopped, is still given up on with the board left stopped."""

from __future__ import annotations

import itertools
import time

import pytest

from firmware_iface.errors import DeviceTimeoutError
from firmware_iface.fpga.driver import FPGATimingBoard
from firmware_iface.fpga.messages import BoardState
from firmware_iface.fpga.run_deadline import RunDeadline
from opu_sim.emulators.fpga import FPGAEmulator, register_emulator, unregister_emulator

_names = itertools.count()


@pytest.fixture
def board_on():
    """board_on(emu): an FPGATimingBoard (reply timeout 50 ms) on emu over fpgaemu://."""
    names: list[str] = []

    def open_board(emu: FPGAEmulator) -> FPGATimingBoard:
        names.append(f"fpga-deadline-{next(_names)}")
        return FPGATimingBoard(register_emulator(names[-1], emu), timeout_s=0.05)

    yield open_board
    for name in names:
        unregister_emulator(name)


def test_a_host_slow_at_the_run_end_does_not_stop_a_run_within_its_board_time(board_on):
    # the rig's run-end work (rendering a video-pattern run, a JIT compilation) takes 0.4 s of
    # host time and no board time: the run is 10 frames of 1 ms against a 0.15 s limit
    emu = FPGAEmulator(on_run_end=lambda summary: time.sleep(0.4))
    with board_on(emu) as b:
        b.configure(frame_period_us=1000, exposure_us=500)
        b.arm()
        b.run(10)
        t0 = time.monotonic()
        events = b.wait_run_complete(timeout_s=0.15)
        assert time.monotonic() - t0 >= 0.4  # the wall-clock limit did pass
        assert [e.frame_index for e in events] == list(range(10))
        assert b.last_run.frames_done == 10 and emu.state == BoardState.IDLE


def test_a_run_longer_than_its_limit_on_the_simulated_clock_times_out(board_on):
    # 200 frames of 10 ms = 2 s of board time against 0.5 s: late on the board's clock, which
    # is the emulator's simulated one (so this takes no wall time and does not depend on load)
    emu = FPGAEmulator()
    with board_on(emu) as b:
        b.configure(frame_period_us=10_000, exposure_us=500)
        b.arm()
        b.run(200)
        with pytest.raises(DeviceTimeoutError, match=r"did not complete in time \(0\.5"):
            b.wait_run_complete(timeout_s=0.5)
        assert emu.state == BoardState.IDLE  # stopped by the driver
        assert emu.counters["runs_aborted"] == 1
        assert 50 <= emu.counters["dmd_triggers"] <= 52  # stopped just past 0.5 s of frames


def test_a_run_longer_than_its_limit_on_a_realtime_board_times_out(board_on):
    # a board whose clock is the host's (as hardware's is): 100 frames of 20 ms = 2 s against
    # 0.2 s; given up within a look (one reply timeout) of the limit, not at the run's end
    emu = FPGAEmulator(realtime=True)
    with board_on(emu) as b:
        b.configure(frame_period_us=20_000, exposure_us=500)
        b.arm()
        b.run(100)
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match="did not complete in time"):
            b.wait_run_complete(timeout_s=0.2)
        assert 0.2 <= time.monotonic() - t0 < 1.5
        assert emu.state == BoardState.IDLE and emu.counters["runs_aborted"] == 1


class _Wall:
    """A settable host clock, seconds."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_deadline_looks_again_when_the_board_has_time_left_and_gives_up_when_late():
    wall = _Wall()
    d = RunDeadline(start_us=1_000_000, timeout_s=0.5, look_s=0.05, wall=wall)
    assert not d.look_due() and d.next_look_s() == pytest.approx(100.5)
    wall.t = 101.0  # the host slept 1 s; the board's clock says 0.1 s of the run have passed
    assert d.look_due()
    assert d.looked(1_100_000) is None
    assert d.next_look_s() == pytest.approx(101.4)  # its remaining 0.4 s
    wall.t = 101.4
    assert d.looked(1_499_990) is None
    assert d.next_look_s() == pytest.approx(101.45)  # at least look_s
    d.saw(1_500_001)
    assert d.late() == "0.500 s of board time since its start, limit 0.500 s"
    assert d.looked(1_500_001) is not None


def test_deadline_gives_up_when_the_board_clock_stops():
    wall = _Wall()
    d = RunDeadline(start_us=0, timeout_s=1.0, look_s=0.05, wall=wall)
    wall.t += 1.0
    assert d.looked(200_000) is None
    wall.t += 1.0
    assert d.looked(200_000) == "the board's clock stayed at 200000 us between two looks"
