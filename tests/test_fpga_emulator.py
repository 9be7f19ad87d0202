"""FPGA emulator, device side: strict NAKs, state machine, idempotent re-sends, simulated clock,
trigger faults in the RunRequest, registry and loopback server."""

from __future__ import annotations

import numpy as np
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.errors import ConfigurationError
from firmware_iface.fpga.cobs import cobs_encode
from firmware_iface.fpga.errors import FrameCodecError
from firmware_iface.fpga.frame import encode_frame, split_stream
from firmware_iface.fpga.messages import (
    MAX_RUN_FRAMES,
    Ack,
    Arm,
    BoardState,
    ErrorCode,
    GetStatus,
    MsgType,
    Nak,
    ReadCounters,
    ReadTriggerLog,
    Run,
    RunComplete,
    RunEndReason,
    SetExposure,
    SetFramePeriod,
    SetTriggerDelays,
    Stop,
    TriggerEvent,
    TriggerFlags,
    decode_message,
    encode_message,
)
from opu_sim.emulators.fpga import (
    RUN_START_LATENCY_US,
    UNKNOWN_SEQ,
    FPGAEmulator,
    FPGAFaults,
    LinkDownError,
    RunRequest,
    get_emulator,
    register_emulator,
    serve_tcp,
    unregister_emulator,
)


class Host:
    """A minimal host over an EmulatorLink: send a frame, collect decoded replies/events."""

    def __init__(self, emu: FPGAEmulator) -> None:
        self.emu = emu
        self.link = emu.open_link()
        self.seq = 100

    def send_raw(self, wire: bytes) -> list:
        self.link.write(wire)
        return self.drain()

    def drain(self) -> list:
        chunks, rest = split_stream(self.link.read())
        assert rest == b""
        return [decode_message(c) for c in chunks]

    def cmd(self, msg, seq: int | None = None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        out = self.send_raw(encode_message(msg, seq))
        replies = [(s, m) for s, m in out if isinstance(m, Ack | Nak)]
        assert len(replies) == 1, out
        assert replies[0][0] == seq
        return replies[0][1]

    def run_to_end(self) -> list:
        out = []
        while self.link.advance():
            out += self.drain()
        return out


@pytest.fixture
def host() -> Host:
    return Host(FPGAEmulator())


def test_power_up_status(host: Host) -> None:
    ack = host.cmd(GetStatus())
    assert isinstance(ack, Ack) and ack.state == BoardState.IDLE
    st = ack.body
    assert (st.frame_period_us, st.exposure_us, st.dmd_delay_us, st.camera_delay_us) == (
        1000,
        500,
        0,
        0,
    )
    assert st.run_id == 0 and st.frames_done == 0


def test_state_machine_naks(host: Host) -> None:
    def nak(msg, code):
        r = host.cmd(msg)
        assert isinstance(r, Nak) and r.code == code and r.command == msg.TYPE, r
        return r

    nak(Run(3), ErrorCode.WRONG_STATE)  # not armed
    nak(SetFramePeriod(10), ErrorCode.OUT_OF_RANGE)
    assert nak(SetFramePeriod(10_000_001), ErrorCode.OUT_OF_RANGE).detail == 10_000_000
    nak(SetExposure(0), ErrorCode.OUT_OF_RANGE)
    nak(SetTriggerDelays(0, 1_000_001), ErrorCode.OUT_OF_RANGE)
    assert isinstance(host.cmd(SetExposure(900)), Ack)
    assert isinstance(host.cmd(SetTriggerDelays(0, 200)), Ack)  # 200 + 900 > 1000: caught at ARM
    nak(Arm(), ErrorCode.INVALID_CONFIG)
    assert isinstance(host.cmd(SetTriggerDelays(0, 100)), Ack)
    assert host.cmd(Arm()).state == BoardState.ARMED
    nak(Arm(), ErrorCode.WRONG_STATE)
    nak(SetExposure(10), ErrorCode.WRONG_STATE)
    nak(Run(0), ErrorCode.OUT_OF_RANGE)
    nak(Run(MAX_RUN_FRAMES + 1), ErrorCode.OUT_OF_RANGE)
    assert host.cmd(Run(5)).state == BoardState.RUNNING
    nak(Run(5), ErrorCode.BUSY)
    nak(SetFramePeriod(2000), ErrorCode.BUSY)
    nak(Arm(), ErrorCode.BUSY)
    assert host.cmd(GetStatus()).state == BoardState.RUNNING
    assert host.cmd(Stop()).state == BoardState.IDLE
    assert host.cmd(Stop()).state == BoardState.IDLE  # no-op when idle
    assert host.cmd(ReadCounters()).body.naks_sent == 13


def test_bad_frames_get_transport_naks(host: Host) -> None:
    good = encode_message(SetExposure(100), 42)
    raw = bytearray(cobs_encode(bytes(bytearray([1, 2, 42, 0, 4, 0, 100, 0, 0, 0, 0, 0]))))
    out = host.send_raw(bytes(raw) + b"\x00")  # CRC 0x0000 is wrong
    assert out == [(42, Nak(MsgType.SET_EXPOSURE, ErrorCode.BAD_CRC, BoardState.IDLE, 0))]
    out = host.send_raw(b"\x05\x01\x00")  # invalid COBS: header unreadable
    assert out == [(UNKNOWN_SEQ, Nak(0, ErrorCode.BAD_FRAME, BoardState.IDLE, 0))]
    out = host.send_raw(encode_frame(0x33, 43, b""))
    assert out[0][1].code == ErrorCode.UNKNOWN_COMMAND and out[0][0] == 43
    out = host.send_raw(encode_frame(MsgType.SET_EXPOSURE, 44, b"\x01\x02"))
    assert out[0][1].code == ErrorCode.BAD_LENGTH
    out = host.send_raw(encode_frame(MsgType.ARM, 45, b"", version=7))
    assert out[0][1].code == ErrorCode.BAD_VERSION
    out = host.send_raw(encode_message(Ack(MsgType.ARM, BoardState.IDLE), 46))
    assert out[0][1].code == ErrorCode.UNKNOWN_COMMAND  # replies only flow from the board
    counters = host.cmd(ReadCounters()).body
    assert (counters.crc_errors, counters.frame_errors, counters.naks_sent) == (1, 4, 6)
    assert host.emu.timing.exposure_us == 500  # nothing was executed
    assert host.send_raw(good)[0][1] == Ack(MsgType.SET_EXPOSURE, BoardState.IDLE)


def test_resent_command_is_answered_from_cache_not_executed_twice() -> None:
    runs: list[RunRequest] = []
    host = Host(FPGAEmulator(on_run=runs.append))
    host.cmd(Arm())
    first = host.cmd(Run(4), seq=7)
    again = host.cmd(Run(4), seq=7)  # a frame event may arrive in between: cmd() skips it
    assert first == again and first.body.run_id == 1
    assert len(runs) == 1 and host.emu.executed.count(MsgType.RUN) == 1
    # same sequence number but other contents is a new command (here refused: busy)
    assert host.cmd(Run(5), seq=7).code == ErrorCode.BUSY
    # a NAK is cached too: re-sending a refused command gets the same NAK
    refused = host.cmd(SetExposure(10), seq=8)
    assert isinstance(refused, Nak) and host.cmd(SetExposure(10), seq=8) == refused
    assert host.cmd(ReadCounters()).body.duplicate_commands == 2


def test_run_timing_events_and_clock() -> None:
    runs: list[RunRequest] = []
    ends: list[RunComplete] = []
    host = Host(FPGAEmulator(on_run=runs.append, on_run_end=ends.append))
    host.cmd(SetFramePeriod(2000))
    host.cmd(SetExposure(1500))
    host.cmd(SetTriggerDelays(30, 100))
    host.cmd(Arm())
    before = host.emu.now_us
    acc = host.cmd(Run(4)).body
    assert acc.start_time_us >= before + RUN_START_LATENCY_US
    t0 = acc.start_time_us
    (req,) = runs
    assert req.n_frames == 4 and req.exposure_us == 1500 and req.start_time_us == t0
    np.testing.assert_array_equal(req.dmd_trigger_times_us, t0 + 30 + 2000 * np.arange(4))
    np.testing.assert_array_equal(req.camera_trigger_times_us, t0 + 100 + 2000 * np.arange(4))
    np.testing.assert_array_equal(req.camera_trigger_frames, np.arange(4))
    out = host.run_to_end()
    evs = [m for _, m in out if isinstance(m, TriggerEvent)]
    assert [e.frame_index for e in evs] == [0, 1, 2, 3]
    assert [e.dmd_trigger_count for e in evs] == [1, 2, 3, 4]
    assert [e.camera_time_us for e in evs] == list(req.camera_trigger_times_us)
    (done,) = [m for _, m in out if isinstance(m, RunComplete)]
    assert done.reason == RunEndReason.COMPLETED and done.frames_done == 4
    assert done.end_time_us == t0 + 4 * 2000 == host.emu.now_us
    assert ends == [done]
    seqs = [s for s, _ in out]
    assert seqs == list(range(seqs[0], seqs[0] + 5))  # event sequence numbers are contiguous
    st = host.cmd(GetStatus())
    assert st.state == BoardState.IDLE and st.body.frames_done == 4 and st.body.run_id == 1
    assert host.cmd(ReadCounters()).body.camera_triggers == 4


def test_uart_bytes_advance_the_clock(host: Host) -> None:
    assert host.emu.now_us == 0
    wire = encode_message(GetStatus(), 1)
    status = host.send_raw(wire)[0][1].body
    byte_ns = 10 * 1_000_000_000 // 115_200  # 10 bits per byte at 115200 baud
    assert status.device_time_us == len(wire) * byte_ns // 1000 == host.emu.now_us


def test_trigger_faults_in_request_and_events() -> None:
    runs: list[RunRequest] = []
    faults = FPGAFaults(
        trigger_lag_frames=frozenset({1}),
        missing_camera_triggers=frozenset({3}),
        extra_camera_triggers=frozenset({4}),
    )
    host = Host(FPGAEmulator(on_run=runs.append, faults=faults))
    host.cmd(Arm())
    t0 = host.cmd(Run(6)).body.start_time_us
    (req,) = runs
    p = 1000
    expected = sorted(
        [(t0 + 0 * p, 0), (t0 + 2 * p, 1), (t0 + 2 * p, 2), (t0 + 4 * p, 4)]
        + [(t0 + 4 * p + p // 2, -1), (t0 + 5 * p, 5)]
    )
    assert list(zip(req.camera_trigger_times_us, req.camera_trigger_frames, strict=True)) == [
        (np.int64(t), np.int64(f)) for t, f in expected
    ]
    evs = [m for _, m in host.run_to_end() if isinstance(m, TriggerEvent | RunComplete)]
    frames, done = evs[:-1], evs[-1]
    assert frames[1].flags == TriggerFlags.CAMERA_LAGGED and frames[1].camera_time_us == t0 + 2 * p
    assert frames[3].flags == TriggerFlags.CAMERA_MISSING and frames[3].camera_time_us is None
    assert frames[4].flags == TriggerFlags.CAMERA_EXTRA
    assert [f.camera_trigger_count for f in frames] == [1, 2, 3, 3, 5, 6]
    assert [f.dmd_trigger_count for f in frames] == [1, 2, 3, 4, 5, 6]
    assert done.camera_triggers == 6 and done.dmd_triggers == 6 and done.frames_done == 6


def test_stop_mid_run_and_trigger_log() -> None:
    ends: list[RunComplete] = []
    host = Host(FPGAEmulator(on_run_end=ends.append))
    host.cmd(Arm())
    host.cmd(Run(50))
    for _ in range(3):
        assert host.link.advance()
    host.drain()
    out = host.send_raw(encode_message(Stop(), 9))
    assert isinstance(out[0][1], Ack) and isinstance(out[1][1], RunComplete)  # ACK first
    assert out[1][1].reason == RunEndReason.STOPPED and out[1][1].frames_done == 3
    assert ends[-1] == out[1][1]
    assert not host.link.advance()
    log = host.cmd(ReadTriggerLog(1, 2))
    assert [r.frame_index for r in log.body.records] == [1, 2] and log.body.run_id == 1
    assert host.cmd(ReadTriggerLog(2, 2)).code == ErrorCode.OUT_OF_RANGE  # frame 3 not done
    assert host.cmd(ReadTriggerLog(0, 9)).code == ErrorCode.OUT_OF_RANGE


def test_injected_reply_faults() -> None:
    emu = FPGAEmulator(faults=FPGAFaults(lost_acks=1, timeouts=1))
    host = Host(emu)
    assert host.send_raw(encode_message(SetExposure(10), 1)) == []  # swallowed: not executed
    assert emu.timing.exposure_us == 500
    assert host.send_raw(encode_message(SetExposure(10), 2)) == []  # executed, ACK lost
    assert emu.timing.exposure_us == 10
    assert host.cmd(SetExposure(10), seq=2) == Ack(MsgType.SET_EXPOSURE, BoardState.IDLE)
    emu.faults.crc_error_rate = 1.0
    for seq in range(3, 23):
        host.link.write(encode_message(GetStatus(), seq))
        chunks, rest = split_stream(host.link.read())
        for c in chunks + [rest]:
            if c:
                with pytest.raises(FrameCodecError):
                    decode_message(c)


def test_rig_failure_refuses_run() -> None:
    def broken(req: RunRequest) -> None:
        raise RuntimeError("renderer crashed")

    host = Host(FPGAEmulator(on_run=broken))
    host.cmd(Arm())
    r = host.cmd(Run(3))
    assert isinstance(r, Nak) and r.code == ErrorCode.INTERNAL_FAULT and r.state == BoardState.IDLE
    assert isinstance(host.emu.last_rig_error, RuntimeError)


def test_disconnect_stops_the_run_and_links_are_exclusive() -> None:
    ends: list[RunComplete] = []
    emu = FPGAEmulator(on_run_end=ends.append)
    host = Host(emu)
    with pytest.raises(ConfigurationError):
        emu.open_link()
    host.cmd(Arm())
    host.cmd(Run(10))
    emu.faults.disconnect = True
    with pytest.raises(LinkDownError):
        host.link.write(b"\x00")
    assert emu.state == BoardState.IDLE and ends[-1].reason == RunEndReason.LINK_LOST
    with pytest.raises(LinkDownError):
        emu.open_link()
    emu.reconnect()
    Host(emu).cmd(GetStatus())


def test_registry_and_url_handler() -> None:
    emu = FPGAEmulator()
    url = register_emulator("emu-test-registry", emu)
    try:
        assert url == "fpgaemu://emu-test-registry" and get_emulator("emu-test-registry") is emu
        with pytest.raises(ConfigurationError):
            register_emulator("emu-test-registry", FPGAEmulator())
        with pytest.raises(ConfigurationError):
            register_emulator("bad name/", emu)
        port = serial.serial_for_url(url, timeout=0.1)
        port.write(encode_message(GetStatus(), 5))
        data = port.read(port.in_waiting)
        assert decode_message(data[:-1])[0] == 5
        assert port.read(1) == b""  # nothing scheduled: returns at once
        with pytest.raises(serial.SerialException):
            serial.serial_for_url(url)  # one host link at a time
        port.close()
    finally:
        unregister_emulator("emu-test-registry")
    with pytest.raises(serial.SerialException, match="no FPGA emulator registered"):
        serial.serial_for_url("fpgaemu://emu-test-registry")


def test_tcp_server_is_loopback_only_and_stoppable() -> None:
    with pytest.raises(ConfigurationError):
        serve_tcp(FPGAEmulator(), host="0.0.0.0")
    srv = serve_tcp(FPGAEmulator(), lifetime_s=30)
    try:
        assert srv.url == f"socket://127.0.0.1:{srv.port}" and srv.running
        port = serial.serial_for_url(srv.url, timeout=1.0)
        port.write(encode_message(GetStatus(), 77))
        data = b""
        while not data.endswith(b"\x00"):
            chunk = port.read(1)
            assert chunk, "no reply over TCP"
            data += chunk
        assert decode_message(data[:-1])[0] == 77
        port.close()
    finally:
        srv.stop()
    assert not srv.running


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_any_bytes_leave_the_board_answering(garbage: list[bytes]) -> None:
    """Whatever arrives on the line, the board never crashes, only ever sends well-formed
    frames, and answers the next valid command."""
    emu = FPGAEmulator()
    link = emu.open_link()
    for g in garbage:
        link.write(g)
    link.write(b"\x00")  # terminate any partial frame
    chunks, rest = split_stream(link.read())
    assert rest == b""
    for c in chunks:
        seq, msg = decode_message(c)  # the board's own output always decodes
        assert isinstance(msg, Ack | Nak)
    link.write(encode_message(GetStatus(), 1234))
    chunks, _ = split_stream(link.read())
    assert decode_message(chunks[-1])[0] == 1234


def test_fpgaemu_scheme_is_installed_by_registering_not_by_importing() -> None:
    import subprocess
    import sys

    code = (
        "import serial\n"
        "import opu_sim.emulators.fpga as f\n"
        "before = f.HANDLER_PACKAGE in serial.protocol_handler_packages\n"
        "url = f.register_emulator('probe', f.FPGAEmulator())\n"
        "port = serial.serial_for_url(url)\n"
        "print(before, f.HANDLER_PACKAGE in serial.protocol_handler_packages, port.is_open)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
