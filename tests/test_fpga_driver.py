"""FPGATimingBoard against the FPGA emulator, end to end over fpgaemu:// and socket://:
runs, idempotent re-sends, every injected fault recovered or raised as its typed error with the
board left stopped, and bad input refused before anything is sent."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from firmware_iface.errors import (
    ConcurrencyError,
    ConfigurationError,
    DeviceDisconnectedError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    InputError,
)
from firmware_iface.fpga.driver import FPGATimingBoard
from firmware_iface.fpga.errors import FPGACommandError, FPGARunAbortedError
from firmware_iface.fpga.messages import (
    BoardState,
    ErrorCode,
    MsgType,
    RunEndReason,
    TriggerFlags,
)
from opu_sim.emulators.fpga import (
    FPGAEmulator,
    FPGAFaults,
    RunRequest,
    register_emulator,
    serve_tcp,
    unregister_emulator,
)

_names = itertools.count()


class Rig:
    """An emulator registered under a fresh fpgaemu:// name, recording the runs it was given."""

    def __init__(self, **faults) -> None:
        self.runs: list[RunRequest] = []
        self.emu = FPGAEmulator(on_run=self.runs.append, faults=FPGAFaults(**faults))
        self.name = f"fpga-test-{next(_names)}"
        self.url = register_emulator(self.name, self.emu)

    def board(self, **kw) -> FPGATimingBoard:
        kw.setdefault("timeout_s", 0.05)
        return FPGATimingBoard(self.url, **kw)


@pytest.fixture
def rig():
    r = Rig()
    yield r
    unregister_emulator(r.name)


def _check_events(events, req: RunRequest) -> None:
    assert [e.frame_index for e in events] == list(range(req.n_frames))
    assert all(e.run_id == req.run_id for e in events)
    np.testing.assert_array_equal([e.dmd_time_us for e in events], req.dmd_trigger_times_us)
    assert [e.dmd_trigger_count for e in events] == list(
        range(events[0].dmd_trigger_count, events[0].dmd_trigger_count + req.n_frames)
    )


def test_end_to_end_run_over_fpgaemu(rig: Rig) -> None:
    with rig.board() as b:
        assert b.status().state == BoardState.IDLE
        b.configure(frame_period_us=2000, exposure_us=1200, dmd_delay_us=20, camera_delay_us=100)
        st = b.status()
        assert (st.frame_period_us, st.exposure_us, st.dmd_delay_us, st.camera_delay_us) == (
            2000,
            1200,
            20,
            100,
        )
        b.arm()
        assert b.status().state == BoardState.ARMED
        acc = b.run(25)
        events = b.wait_run_complete(timeout_s=5)
        (req,) = rig.runs
        assert acc.run_id == req.run_id == 1 and acc.start_time_us == req.start_time_us
        _check_events(events, req)
        np.testing.assert_array_equal(
            [e.camera_time_us for e in events], req.camera_trigger_times_us
        )
        assert all(e.flags == TriggerFlags.NONE for e in events)
        assert b.last_run.reason == RunEndReason.COMPLETED and b.last_run.camera_triggers == 25
        c = b.counters()
        assert (c.dmd_triggers, c.camera_triggers, c.runs_started, c.runs_completed) == (
            25,
            25,
            1,
            1,
        )
        assert b.status().state == BoardState.IDLE
        # a second run needs a new ARM
        with pytest.raises(FPGACommandError) as e:
            b.run(3)
        assert e.value.code == ErrorCode.WRONG_STATE
        b.arm()
        b.run(3)
        assert [ev.frame_index for ev in b.wait_run_complete()] == [0, 1, 2]
        assert b.link_stats.resends == 0 and b.link_stats.events_lost == 0
    assert rig.emu.state == BoardState.IDLE


def test_end_to_end_over_socket_with_lost_acks() -> None:
    runs: list[RunRequest] = []
    emu = FPGAEmulator(on_run=runs.append)
    with serve_tcp(emu, lifetime_s=60) as srv:
        with FPGATimingBoard(srv.url, timeout_s=0.2, retries=6) as b:
            b.configure(1000, 400)
            emu.faults.lost_acks = 1
            b.arm()
            assert b.link_stats.resends >= 1  # more if a reply is slower than timeout_s
            emu.faults.lost_acks = 1
            b.run(40)
            events = b.wait_run_complete(timeout_s=10)
            _check_events(events, runs[0])
            assert len(runs) == 1 and emu.executed.count(MsgType.RUN) == 1
            assert emu.counters["duplicate_commands"] >= 2
            emu.faults.crc_error_rate = 0.2  # corrupted replies and events over TCP
            b.arm()
            b.run(30)
            _check_events(b.wait_run_complete(timeout_s=10), runs[1])
            assert b.link_stats.decode_errors > 0
            emu.faults.crc_error_rate = 0.0
        assert emu.state == BoardState.IDLE


def test_lost_acks_are_idempotent(rig: Rig) -> None:
    with rig.board() as b:
        rig.emu.faults.lost_acks = 2
        b.set_exposure_us(300)
        assert rig.emu.executed.count(MsgType.SET_EXPOSURE) == 1
        assert b.link_stats.resends == 2 and rig.emu.counters["duplicate_commands"] == 2
        b.arm()
        rig.emu.faults.lost_acks = 3
        b.run(5)
        assert len(rig.runs) == 1 and rig.emu.counters["runs_started"] == 1
        assert len(b.wait_run_complete()) == 5


def test_corrupted_replies_and_events_are_recovered() -> None:
    r = Rig(crc_error_rate=0.25, seed=3)
    try:
        with r.board(retries=8) as b:
            b.configure(500, 200)
            b.arm()
            b.run(120)
            events = b.wait_run_complete(timeout_s=10)
            _check_events(events, r.runs[0])
            assert b.link_stats.decode_errors > 0
            assert b.link_stats.log_reads > 0  # lost frame events were read from the log
            assert r.emu.executed.count(MsgType.RUN) == 1
    finally:
        unregister_emulator(r.name)


def test_lost_run_complete_is_found_by_status(rig: Rig) -> None:
    with rig.board() as b:
        b.arm()
        b.run(10)
        rig.emu.faults.lost_events = 1000  # every event of the run vanishes
        events = b.wait_run_complete(timeout_s=5)
        _check_events(events, rig.runs[0])
        assert b.last_run.frames_done == 10 and b.last_run.camera_triggers == 10
        assert b.link_stats.log_reads == 2


def test_timeouts_recovered_within_retries(rig: Rig) -> None:
    with rig.board(retries=3) as b:
        rig.emu.faults.timeouts = 3
        b.set_frame_period_us(3000)
        assert rig.emu.timing.frame_period_us == 3000 and b.link_stats.resends == 3


def test_timeout_after_retries_leaves_board_stopped(rig: Rig) -> None:
    with rig.board(retries=2) as b:
        b.arm()
        rig.emu.faults.timeouts = 3  # every attempt of RUN is swallowed; the STOP gets through
        with pytest.raises(DeviceTimeoutError, match="RUN"):
            b.run(5)
        assert rig.emu.state == BoardState.IDLE and rig.runs == []
        assert b.status().state == BoardState.IDLE


def test_deaf_board_timeout_says_state_unknown(rig: Rig) -> None:
    b = rig.board(retries=1)
    rig.emu.faults.timeouts = 100
    t = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="state is unknown"):
        b.status()
    assert time.monotonic() - t < 2
    rig.emu.faults.timeouts = 0
    b.close()


def test_nak_raises_typed_error_and_stops_the_board(rig: Rig) -> None:
    with rig.board() as b:
        b.arm()
        b.run(100)
        with pytest.raises(FPGACommandError) as e:
            b.set_exposure_us(100)
        assert e.value.code == ErrorCode.BUSY and e.value.command == MsgType.SET_EXPOSURE
        assert e.value.state == BoardState.RUNNING
        assert rig.emu.state == BoardState.IDLE  # the driver stopped the run
        with pytest.raises(FPGARunAbortedError) as ab:
            b.wait_run_complete()
        assert ab.value.frames_done < 100 and len(ab.value.events) == ab.value.frames_done
        # a config changed behind the driver's back is refused at ARM
        rig.emu.timing = rig.emu.timing.with_(exposure_us=5000)
        with pytest.raises(FPGACommandError) as e2:
            b.arm()
        assert e2.value.code == ErrorCode.INVALID_CONFIG
        assert rig.emu.state == BoardState.IDLE


def test_stop_mid_run_aborts(rig: Rig) -> None:
    with rig.board() as b:
        b.arm()
        b.run(1000)
        b.stop()
        with pytest.raises(FPGARunAbortedError, match="STOPPED"):
            b.wait_run_complete()
        assert b.last_run.reason == RunEndReason.STOPPED
        assert b.status().state == BoardState.IDLE


def test_disconnect_raises_and_board_stops(rig: Rig) -> None:
    b = rig.board()
    b.arm()
    b.run(50)
    rig.emu.faults.disconnect = True
    with pytest.raises(DeviceDisconnectedError):
        b.status()
    assert rig.emu.state == BoardState.IDLE
    with pytest.raises(DeviceDisconnectedError, match="vanished"):
        b.arm()
    b.close()
    with pytest.raises(DeviceNotFoundError):
        rig.board()
    rig.emu.reconnect()
    with rig.board() as b2:
        assert b2.status().state == BoardState.IDLE


def test_disconnect_mid_command_over_socket() -> None:
    emu = FPGAEmulator()
    with serve_tcp(emu, lifetime_s=60) as srv:
        b = FPGATimingBoard(srv.url, timeout_s=0.2)
        b.arm()
        emu.faults.disconnect_after_frames = 2
        b.run(500)  # frame 1 of 2
        with pytest.raises(DeviceDisconnectedError):
            b.status()  # frame 2: the port vanishes
        assert emu.state == BoardState.IDLE
        b.close()


def test_trigger_faults_reach_the_events(rig: Rig) -> None:
    rig.emu.faults.trigger_lag_frames = frozenset({2})
    rig.emu.faults.missing_camera_triggers = frozenset({5})
    rig.emu.faults.extra_camera_triggers = frozenset({7})
    with rig.board() as b:
        b.configure(1000, 300, 0, 50)
        b.arm()
        b.run(10)
        ev = b.wait_run_complete()
    req = rig.runs[0]
    assert ev[2].flags == TriggerFlags.CAMERA_LAGGED
    assert ev[2].camera_time_us - ev[2].dmd_time_us == 1000 + 50
    assert ev[5].camera_time_us is None and ev[5].flags == TriggerFlags.CAMERA_MISSING
    assert ev[7].flags == TriggerFlags.CAMERA_EXTRA
    assert ev[-1].camera_trigger_count - ev[0].camera_trigger_count == 9  # 10 - 1 missing + 1
    assert len(req.camera_trigger_times_us) == 10
    assert b.last_run.camera_triggers == 10


BAD_CALLS = [
    ("set_frame_period_us", (-1,)),
    ("set_frame_period_us", (0,)),
    ("set_frame_period_us", (49,)),
    ("set_frame_period_us", (10_000_001,)),
    ("set_frame_period_us", (1000.0,)),
    ("set_frame_period_us", (True,)),
    ("set_frame_period_us", ("1000",)),
    ("set_frame_period_us", (400,)),  # shorter than the current exposure (500 us)
    ("set_exposure_us", (0,)),
    ("set_exposure_us", (-5,)),
    ("set_exposure_us", (1001,)),  # longer than the frame period (1000 us)
    ("set_exposure_us", (float("nan"),)),
    ("set_trigger_delays_us", (-1, 0)),
    ("set_trigger_delays_us", (0, 600)),  # 600 + 500 us exposure > 1000 us period
    ("set_trigger_delays_us", (1000, 0)),  # DMD delay must be < period
    ("configure", (1000, 2000)),
    ("configure", (1000, 500, 0, 501)),
    ("configure", (10, 5)),
    ("run", (0,)),
    ("run", (-3,)),
    ("run", (2.5,)),
    ("run", (16_777_216,)),
    ("wait_run_complete", ()),
    ("read_trigger_log", (-1, 2)),
]


@pytest.mark.parametrize("method,args", BAD_CALLS)
def test_bad_input_raises_before_sending(rig: Rig, method: str, args: tuple) -> None:
    with rig.board() as b:
        sent = rig.emu.bytes_received
        with pytest.raises(InputError):
            getattr(b, method)(*args)
        assert rig.emu.bytes_received == sent
        assert b.status().state == BoardState.IDLE


def test_numpy_integers_are_accepted(rig: Rig) -> None:
    with rig.board() as b:
        b.configure(np.int64(2000), np.int32(700))
        assert (rig.emu.timing.frame_period_us, rig.emu.timing.exposure_us) == (2000, 700)


def test_open_errors() -> None:
    with pytest.raises(DeviceNotFoundError, match="fpgaemu://nobody-here"):
        FPGATimingBoard("fpgaemu://nobody-here")
    with pytest.raises(DeviceNotFoundError):
        FPGATimingBoard("nosuchscheme://x")
    with pytest.raises(ConfigurationError):
        FPGATimingBoard("fpgaemu://x", timeout_s=0)
    with pytest.raises(ConfigurationError):
        FPGATimingBoard("fpgaemu://x", retries=-1)


def test_silent_port_at_open_times_out(rig: Rig) -> None:
    rig.emu.faults.timeouts = 100
    with pytest.raises(DeviceTimeoutError):
        rig.board(retries=1)
    rig.emu.faults.timeouts = 0
    rig.board().close()  # the failed open released the link


def test_concurrent_use_is_refused(rig: Rig) -> None:
    with rig.board() as b:
        refused = []

        def other_thread() -> None:
            with pytest.raises(ConcurrencyError) as e:
                b.status()
            refused.append(e.value)

        def while_run_is_in_progress() -> None:  # this thread is inside b.run()
            t = threading.Thread(target=other_thread)
            t.start()
            t.join()

        rig.emu.faults.once("run", while_run_is_in_progress)
        b.arm()
        b.run(3)
        b.wait_run_complete()
        assert len(refused) == 1
        assert b.status().state == BoardState.IDLE
