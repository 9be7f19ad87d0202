"""Device side of the FPGA timing board (docs/fpga.md), on a simulated clock.

`FPGAEmulator` speaks the board's UART protocol strictly: malformed, unknown or out-of-order
commands get the NAK the board gives. Its clock is in microseconds and never sleeps: it
advances by the UART time of the bytes it receives (10 bits per byte at `baudrate`) and, when
the host waits with nothing to read, jumps to the end of the next frame of a run.

A run is handed to the test rig in one call, `on_run(RunRequest)`, with every DMD and camera
trigger time, so the rig can render the whole batch at once; `on_run_end(RunComplete)` tells it
how the run ended. Faults are settings (`FPGAFaults`), changeable at any time.

Transports: `register_emulator(name, emu)` makes `serial.serial_for_url("fpgaemu://name")`
reach it (handler module `opu_sim.emulators.protocol_fpgaemu`); `serve_tcp(emu)` serves it on
loopback TCP for `socket://127.0.0.1:PORT`. Both talk to the emulator through an
`EmulatorLink`, the emulator's end of the wire.
"""

from __future__ import annotations

import math
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import serial

from firmware_iface.errors import ConfigurationError, LinkDownError
from firmware_iface.fpga.errors import FrameCodecError, FrameCrcError
from firmware_iface.fpga.frame import decode_frame, split_stream
from firmware_iface.fpga.messages import (
    DEFAULT_TIMING,
    MAX_EXPOSURE_US,
    MAX_FRAME_PERIOD_US,
    MAX_LOG_RECORDS,
    MAX_RUN_FRAMES,
    MAX_TRIGGER_DELAY_US,
    MIN_EXPOSURE_US,
    MIN_FRAME_PERIOD_US,
    TRIGGER_LOG_DEPTH,
    Ack,
    Arm,
    BoardState,
    CounterReport,
    ErrorCode,
    GetStatus,
    Message,
    MsgType,
    Nak,
    ReadCounters,
    ReadTriggerLog,
    Run,
    RunAccepted,
    RunComplete,
    RunEndReason,
    SetExposure,
    SetFramePeriod,
    SetTriggerDelays,
    StatusReport,
    Stop,
    TriggerEvent,
    TriggerFlags,
    TriggerLog,
    encode_message,
    message_from_frame,
)

__all__ = [
    "FPGAFaults",
    "RunRequest",
    "FPGAEmulator",
    "EmulatorLink",
    "LinkDownError",
    "register_emulator",
    "unregister_emulator",
    "get_emulator",
    "serve_tcp",
    "TcpEmulatorServer",
    "UNKNOWN_SEQ",
    "RUN_START_LATENCY_US",
]

UNKNOWN_SEQ = 0xFFFF  # sequence number of a NAK whose command's header could not be read
RUN_START_LATENCY_US = 10  # from the end of the RUN frame to frame 0's start

# pyserial looks for `<package>.protocol_<scheme>` in these packages.
if "opu_sim.emulators" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("opu_sim.emulators")


@dataclass
class FPGAFaults:
    """Fault injection settings of an FPGAEmulator; change them at any time.

    crc_error_rate: probability (0..1) that an outgoing frame (reply or event) has one byte
        corrupted on the line.
    lost_acks: the next N replies (ACK or NAK) are executed but never sent.
    lost_events: the next N events (frame triggers, run complete) are never sent.
    timeouts: the next N received frames are swallowed: neither executed nor answered.
    disconnect: the port vanishes now (transport reads/writes fail); the board stops its run.
    disconnect_after_frames: the port vanishes after this many more received frames.
    trigger_lag_frames: frame indices (within every run) whose camera trigger fires one frame
        period late (shown to the rig and flagged CAMERA_LAGGED in the events).
    missing_camera_triggers: frame indices whose camera trigger does not fire.
    extra_camera_triggers: frame indices after whose camera trigger a spurious extra one fires
        half a period later.
    seed: seed of the corruption RNG (reproducible faults); read when the emulator is built.
    """

    crc_error_rate: float = 0.0
    lost_acks: int = 0
    lost_events: int = 0
    timeouts: int = 0
    disconnect: bool = False
    disconnect_after_frames: int | None = None
    trigger_lag_frames: frozenset[int] = field(default_factory=frozenset)
    missing_camera_triggers: frozenset[int] = field(default_factory=frozenset)
    extra_camera_triggers: frozenset[int] = field(default_factory=frozenset)
    seed: int = 0


@dataclass(frozen=True)
class RunRequest:
    """Everything the rig needs to render one run, times in microseconds of the board clock.

    dmd_trigger_times_us: (n_frames,) int64, DMD trigger of frame k (shows pattern k).
    camera_trigger_times_us: (n_camera,) int64, every camera trigger pulse of the run, sorted;
        n_camera differs from n_frames when triggers are missing or extra.
    camera_trigger_frames: (n_camera,) int64, the frame each camera pulse belongs to (-1 for a
        spurious extra pulse). Each camera pulse starts one exposure of exposure_us.
    """

    run_id: int
    n_frames: int
    start_time_us: int
    frame_period_us: int
    exposure_us: int
    dmd_delay_us: int
    camera_delay_us: int
    dmd_trigger_times_us: np.ndarray
    camera_trigger_times_us: np.ndarray
    camera_trigger_frames: np.ndarray


@dataclass
class _ActiveRun:
    request: RunRequest
    events: list[TriggerEvent]  # one per frame, in frame order
    emit_times_us: list[int]  # when each frame's event is sent (non-decreasing)
    pulses_per_frame: list[int]  # camera pulses counted for each frame
    emitted: int = 0


class FPGAEmulator:
    """The timing board's firmware behaviour on a simulated microsecond clock.

    on_run: called once per accepted RUN with the whole run's trigger times (RunRequest); if it
        raises, the RUN is refused with INTERNAL_FAULT and the exception kept in
        `last_rig_error`. Callbacks run in the transport's thread, under the emulator's lock,
        before the RUN's ACK is sent.
    on_run_end: called with the RunComplete of every run (completed, stopped or link lost).
    faults: fault-injection settings (default: none).
    baudrate: UART speed, bit/s; sets how far the clock advances per received byte.
    """

    def __init__(
        self,
        on_run: Callable[[RunRequest], None] | None = None,
        *,
        on_run_end: Callable[[RunComplete], None] | None = None,
        faults: FPGAFaults | None = None,
        baudrate: int = 115_200,
    ) -> None:
        if baudrate <= 0:
            raise ConfigurationError(f"baudrate must be positive, got {baudrate}")
        self.on_run = on_run
        self.on_run_end = on_run_end
        self.faults = faults if faults is not None else FPGAFaults()
        self._byte_ns = 10 * 1_000_000_000 // baudrate
        self._lock = threading.RLock()
        self._rng = random.Random(self.faults.seed)
        self._now_ns = 0
        self._rx = b""
        self._tx = bytearray()
        self._link_gen = 0
        self._attached = False
        self.state = BoardState.IDLE
        self.timing = DEFAULT_TIMING
        self._run: _ActiveRun | None = None
        self._run_id = 0
        self._frames_requested = 0
        self._log: list[TriggerEvent] = []
        self._last_command: tuple[int, bytes] | None = None
        self._last_reply: bytes | None = None
        self._event_seq = 0
        self._stop_requested = False
        self.counters = {f.name: 0 for f in fields(CounterReport) if f.name != "uptime_us"}
        self.last_rig_error: BaseException | None = None
        self.executed: list[MsgType] = []  # every command executed (not duplicates), in order
        self.bytes_received = 0  # bytes received from the host over all links

    # --- timing (views of self.timing, a Timing value object) ----------------------------

    @property
    def frame_period_us(self) -> int:
        """Frame period the board holds, microseconds."""
        return self.timing.frame_period_us

    @property
    def exposure_us(self) -> int:
        """Camera trigger pulse (exposure) the board holds, microseconds."""
        return self.timing.exposure_us

    @exposure_us.setter
    def exposure_us(self, value: int) -> None:
        self.timing = self.timing.with_(exposure_us=value)

    # --- clock ---------------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        """Board time, microseconds since power-up."""
        return self._now_ns // 1000

    def advance_clock_us(self, dt_us: float) -> None:
        """Let dt_us microseconds of board time pass, as while the host waits (a rig's
        wait_s); events of run frames that fall in that time are sent."""
        if not (isinstance(dt_us, (int, float)) and math.isfinite(dt_us) and dt_us >= 0):
            raise ConfigurationError(f"dt_us must be a finite number >= 0, got {dt_us!r}")
        with self._lock:
            self._advance_ns(round(dt_us * 1000))

    def _advance_to_us(self, t_us: int) -> None:
        run = self._run
        while run is not None and run.emitted < len(run.events):
            if run.emit_times_us[run.emitted] > t_us:
                break
            self._emit_frame(run)
            run = self._run
        self._now_ns = max(self._now_ns, t_us * 1000)

    def _advance_ns(self, dt_ns: int) -> None:
        target = self._now_ns + dt_ns
        self._advance_to_us(target // 1000)
        self._now_ns = max(self._now_ns, target)

    # --- link ----------------------------------------------------------------------------

    def open_link(self) -> EmulatorLink:
        """Attach the host end of the UART (one at a time). Raises LinkDownError while the
        disconnect fault is set and ConfigurationError if a link is already open."""
        with self._lock:
            if self.faults.disconnect:
                raise LinkDownError("the FPGA emulator's port has vanished (disconnect fault)")
            if self._attached:
                raise ConfigurationError(
                    "the FPGA emulator already has a host link open; close it first"
                )
            self._link_gen += 1
            self._attached = True
            self._rx = b""
            self._tx.clear()
            return EmulatorLink(self, self._link_gen)

    def reconnect(self) -> None:
        """Clear the disconnect fault so a new link can be opened."""
        with self._lock:
            self.faults.disconnect = False
            self.faults.disconnect_after_frames = None

    def _check(self, gen: int) -> None:
        if gen != self._link_gen or not self._attached:
            raise LinkDownError("this link to the FPGA emulator is closed")
        if self.faults.disconnect:
            self._drop_link()
            raise LinkDownError("the FPGA emulator's port has vanished (disconnect fault)")

    def _drop_link(self) -> None:
        """Link lost or closed: the board stops any run (known state) and forgets buffers."""
        self._attached = False
        self._link_gen += 1
        if self._run is not None:
            self._end_run(RunEndReason.LINK_LOST)
        self.state = BoardState.IDLE
        self._rx = b""
        self._tx.clear()

    def _close(self, gen: int) -> None:
        with self._lock:
            if gen == self._link_gen and self._attached:
                self._drop_link()

    def _receive(self, gen: int, data: bytes) -> None:
        with self._lock:
            self._check(gen)
            self.bytes_received += len(data)
            buf = self._rx + bytes(data)
            # process frame by frame so each command sees the clock at its last byte
            consumed = 0
            while True:
                end = buf.find(b"\x00", consumed)
                if end < 0:
                    break
                self._advance_ns((end + 1 - consumed) * self._byte_ns)
                chunks, _ = split_stream(buf[consumed : end + 1])
                consumed = end + 1
                for chunk in chunks:
                    self._handle_chunk(chunk)
                    if not self._attached:
                        return
            rest = buf[consumed:]
            self._advance_ns(len(rest) * self._byte_ns)
            chunks, self._rx = split_stream(rest)
            for chunk in chunks:  # an over-long unterminated run of bytes
                self._handle_chunk(chunk)

    def _transmit(self, gen: int, max_bytes: int | None) -> bytes:
        with self._lock:
            self._check(gen)
            n = len(self._tx) if max_bytes is None else min(max_bytes, len(self._tx))
            out = bytes(self._tx[:n])
            del self._tx[:n]
            return out

    def _pending(self, gen: int) -> int:
        with self._lock:
            self._check(gen)
            return len(self._tx)

    def _step(self, gen: int) -> bool:
        with self._lock:
            self._check(gen)
            run = self._run
            if run is None:
                return False
            self._advance_to_us(run.emit_times_us[run.emitted])
            return True

    # --- output --------------------------------------------------------------------------

    def _send(self, wire: bytes, is_reply: bool) -> None:
        if is_reply and self.faults.lost_acks > 0:
            self.faults.lost_acks -= 1
            return
        if self.faults.crc_error_rate > 0 and self._rng.random() < self.faults.crc_error_rate:
            b = bytearray(wire)
            i = self._rng.randrange(len(b) - 1)  # never the delimiter
            b[i] ^= self._rng.randrange(1, 256)
            wire = bytes(b)
        self._tx += wire

    def _reply(self, seq: int, msg: Ack | Nak, cache_key: tuple[int, bytes] | None) -> None:
        if isinstance(msg, Nak):
            self.counters["naks_sent"] += 1
        wire = encode_message(msg, seq)
        if cache_key is not None:
            self._last_command, self._last_reply = cache_key, wire
        self._send(wire, is_reply=True)

    def _event(self, msg: TriggerEvent | RunComplete) -> None:
        wire = encode_message(msg, self._event_seq)
        self._event_seq = (self._event_seq + 1) & 0xFFFF
        self.counters["events_sent"] += 1
        if self.faults.lost_events > 0:
            self.faults.lost_events -= 1
            return
        self._send(wire, is_reply=False)

    # --- input ---------------------------------------------------------------------------

    def _handle_chunk(self, chunk: bytes) -> None:
        f = self.faults
        if f.disconnect_after_frames is not None:
            f.disconnect_after_frames -= 1
            if f.disconnect_after_frames <= 0:
                f.disconnect = True
                f.disconnect_after_frames = None
                self._drop_link()
                return
        if f.timeouts > 0:
            f.timeouts -= 1
            return
        try:
            frame = decode_frame(chunk)
        except FrameCodecError as e:
            # transport-level refusal: the header is untrusted, so nothing is cached
            self.counters["crc_errors" if isinstance(e, FrameCrcError) else "frame_errors"] += 1
            seq = UNKNOWN_SEQ if e.seq is None else e.seq
            cmd = 0 if e.msg_type is None else e.msg_type
            self._reply(seq, Nak(cmd, ErrorCode(e.nak_code), self.state, 0), None)
            return
        key = (frame.seq, chunk)
        if key == self._last_command and self._last_reply is not None:
            self.counters["duplicate_commands"] += 1
            self._send(self._last_reply, is_reply=True)
            return
        try:
            msg = message_from_frame(frame)
        except FrameCodecError as e:
            self.counters["frame_errors"] += 1
            self._reply(frame.seq, Nak(frame.msg_type, ErrorCode(e.nak_code), self.state), key)
            return
        if msg.TYPE >= 0x80:  # replies and events only flow from the board
            nak = Nak(frame.msg_type, ErrorCode.UNKNOWN_COMMAND, self.state)
            self._reply(frame.seq, nak, key)
            return
        self._reply(frame.seq, self._execute(msg), key)
        if self._stop_requested:
            self._stop_requested = False
            self._end_run(RunEndReason.STOPPED)

    def _nak(self, msg: Message, code: ErrorCode, detail: int = 0) -> Nak:
        return Nak(int(msg.TYPE), code, self.state, detail)

    def _config_state_nak(self, msg: Message) -> Nak | None:
        if self.state == BoardState.RUNNING:
            return self._nak(msg, ErrorCode.BUSY)
        if self.state == BoardState.ARMED:
            return self._nak(msg, ErrorCode.WRONG_STATE)
        return None

    def _execute(self, msg: Message) -> Ack | Nak:
        ack = None
        if isinstance(msg, SetFramePeriod | SetExposure | SetTriggerDelays | Arm):
            refused = self._config_state_nak(msg)
            if refused is not None:
                return refused
        if isinstance(msg, SetFramePeriod):
            if msg.period_us < MIN_FRAME_PERIOD_US:
                return self._nak(msg, ErrorCode.OUT_OF_RANGE, MIN_FRAME_PERIOD_US)
            if msg.period_us > MAX_FRAME_PERIOD_US:
                return self._nak(msg, ErrorCode.OUT_OF_RANGE, MAX_FRAME_PERIOD_US)
            self.timing = self.timing.with_(frame_period_us=msg.period_us)
        elif isinstance(msg, SetExposure):
            if msg.exposure_us < MIN_EXPOSURE_US:
                return self._nak(msg, ErrorCode.OUT_OF_RANGE, MIN_EXPOSURE_US)
            if msg.exposure_us > MAX_EXPOSURE_US:
                return self._nak(msg, ErrorCode.OUT_OF_RANGE, MAX_EXPOSURE_US)
            self.timing = self.timing.with_(exposure_us=msg.exposure_us)
        elif isinstance(msg, SetTriggerDelays):
            if max(msg.dmd_delay_us, msg.camera_delay_us) > MAX_TRIGGER_DELAY_US:
                return self._nak(msg, ErrorCode.OUT_OF_RANGE, MAX_TRIGGER_DELAY_US)
            self.timing = self.timing.with_(
                dmd_delay_us=msg.dmd_delay_us, camera_delay_us=msg.camera_delay_us
            )
        elif isinstance(msg, Arm):
            if self.timing.problem() is not None:
                return self._nak(msg, ErrorCode.INVALID_CONFIG, self.timing.frame_period_us)
            self.state = BoardState.ARMED
        elif isinstance(msg, Run):
            if self.state == BoardState.RUNNING:
                return self._nak(msg, ErrorCode.BUSY)
            if self.state != BoardState.ARMED:
                return self._nak(msg, ErrorCode.WRONG_STATE)
            if not 1 <= msg.n_frames <= MAX_RUN_FRAMES:
                limit = 1 if msg.n_frames < 1 else MAX_RUN_FRAMES
                return self._nak(msg, ErrorCode.OUT_OF_RANGE, limit)
            accepted = self._start_run(msg.n_frames)
            if accepted is None:
                return self._nak(msg, ErrorCode.INTERNAL_FAULT)
            ack = Ack(msg.TYPE, self.state, accepted)
        elif isinstance(msg, Stop):
            # a running board stops after its ACK is sent, so the ACK precedes RUN_COMPLETE
            self._stop_requested = self.state == BoardState.RUNNING
            self.state = BoardState.IDLE
        elif isinstance(msg, GetStatus):
            ack = Ack(msg.TYPE, self.state, self._status())
        elif isinstance(msg, ReadCounters):
            ack = Ack(msg.TYPE, self.state, self._counter_report())
        elif isinstance(msg, ReadTriggerLog):
            return self._read_log(msg)
        self.executed.append(msg.TYPE)
        return ack if ack is not None else Ack(msg.TYPE, self.state)

    def _status(self) -> StatusReport:
        t = self.timing
        return StatusReport(
            self.state,
            t.frame_period_us,
            t.exposure_us,
            t.dmd_delay_us,
            t.camera_delay_us,
            self._run_id,
            self._frames_requested,
            len(self._log),
            self.now_us,
        )

    def _counter_report(self) -> CounterReport:
        return CounterReport(**self.counters, uptime_us=self.now_us)

    def _read_log(self, msg: ReadTriggerLog) -> Ack | Nak:
        done = len(self._log)
        if not 1 <= msg.count <= MAX_LOG_RECORDS:
            return self._nak(msg, ErrorCode.OUT_OF_RANGE, MAX_LOG_RECORDS)
        if msg.first_frame < max(0, done - TRIGGER_LOG_DEPTH) or msg.first_frame + msg.count > done:
            return self._nak(msg, ErrorCode.OUT_OF_RANGE, done)
        self.executed.append(msg.TYPE)
        recs = tuple(self._log[msg.first_frame : msg.first_frame + msg.count])
        return Ack(msg.TYPE, self.state, TriggerLog(self._run_id, recs))

    # --- runs ----------------------------------------------------------------------------

    def _plan_run(self, run_id: int, n: int, t0: int) -> _ActiveRun:
        f = self.faults
        t = self.timing
        p, dd, cd = t.frame_period_us, t.dmd_delay_us, t.camera_delay_us
        k = np.arange(n, dtype=np.int64)
        dmd_t = t0 + k * p + dd
        pulses: list[tuple[int, int]] = []  # (time, frame or -1)
        events, emit, per_frame = [], [], []
        d_count = self.counters["dmd_triggers"]
        c_count = self.counters["camera_triggers"]
        last_emit = 0
        for i in range(n):
            flags = TriggerFlags.NONE
            nominal = t0 + i * p + cd
            cam: int | None = nominal
            lag = 0
            if i in f.missing_camera_triggers:
                cam, flags = None, flags | TriggerFlags.CAMERA_MISSING
            elif i in f.trigger_lag_frames:
                lag = p
                cam, flags = nominal + lag, flags | TriggerFlags.CAMERA_LAGGED
            n_pulses = 0 if cam is None else 1
            if cam is not None:
                pulses.append((cam, i))
            if i in f.extra_camera_triggers:
                pulses.append(((cam if cam is not None else nominal) + p // 2, -1))
                flags |= TriggerFlags.CAMERA_EXTRA
                n_pulses += 1
            d_count += 1
            c_count += n_pulses
            last_emit = max(last_emit, t0 + (i + 1) * p + lag)
            events.append(TriggerEvent(run_id, i, d_count, c_count, int(dmd_t[i]), cam, flags))
            emit.append(last_emit)
            per_frame.append(n_pulses)
        pulses.sort()
        request = RunRequest(
            run_id=run_id,
            n_frames=n,
            start_time_us=t0,
            frame_period_us=p,
            exposure_us=t.exposure_us,
            dmd_delay_us=dd,
            camera_delay_us=cd,
            dmd_trigger_times_us=dmd_t,
            camera_trigger_times_us=np.array([t for t, _ in pulses], dtype=np.int64),
            camera_trigger_frames=np.array([fr for _, fr in pulses], dtype=np.int64),
        )
        return _ActiveRun(request, events, emit, per_frame)

    def _start_run(self, n: int) -> RunAccepted | None:
        run_id = self._run_id + 1
        t0 = math.ceil(self._now_ns / 1000) + RUN_START_LATENCY_US
        run = self._plan_run(run_id, n, t0)
        try:
            if self.on_run is not None:
                self.on_run(run.request)
        except Exception as e:  # the rig failed: refuse the run, stay in a known state
            self.last_rig_error = e
            self.state = BoardState.IDLE
            return None
        self._run_id = run_id
        self._frames_requested = n
        self._log = []
        self._run = run
        self.state = BoardState.RUNNING
        self.counters["runs_started"] += 1
        return RunAccepted(run_id, n, t0)

    def _emit_frame(self, run: _ActiveRun) -> None:
        i = run.emitted
        ev = run.events[i]
        run.emitted += 1
        self.counters["dmd_triggers"] += 1
        self.counters["camera_triggers"] += run.pulses_per_frame[i]
        self._log.append(ev)
        self._event(ev)
        if run.emitted == len(run.events):
            self._end_run(RunEndReason.COMPLETED)

    def _end_run(self, reason: RunEndReason) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        self.state = BoardState.IDLE
        done = run.emitted
        end = run.emit_times_us[done - 1] if reason == RunEndReason.COMPLETED else self.now_us
        summary = RunComplete(
            run.request.run_id,
            reason,
            run.request.n_frames,
            done,
            done,
            sum(run.pulses_per_frame[:done]),
            run.request.start_time_us,
            max(end, run.request.start_time_us),
        )
        self.counters["runs_completed" if reason == RunEndReason.COMPLETED else "runs_aborted"] += 1
        if self._attached:
            self._event(summary)
        if self.on_run_end is not None:
            self.on_run_end(summary)


class EmulatorLink:
    """The host's end of the emulated UART: raw bytes in and out of one FPGAEmulator.

    Every method raises LinkDownError once the link is closed or the disconnect fault fires.
    """

    def __init__(self, emulator: FPGAEmulator, generation: int) -> None:
        self._emu = emulator
        self._gen = generation

    @property
    def emulator(self) -> FPGAEmulator:
        """The board at the other end."""
        return self._emu

    def write(self, data: bytes) -> None:
        """Send bytes to the board (it processes complete frames at once)."""
        self._emu._receive(self._gen, data)

    def read(self, max_bytes: int | None = None) -> bytes:
        """Take up to max_bytes (all if None) of the bytes the board has sent; never waits."""
        return self._emu._transmit(self._gen, max_bytes)

    def pending(self) -> int:
        """Bytes sent by the board and not yet read."""
        return self._emu._pending(self._gen)

    def advance(self) -> bool:
        """Let simulated time pass to the board's next scheduled output (the end of the next
        frame of a run). False if nothing is scheduled: waiting longer would yield nothing."""
        return self._emu._step(self._gen)

    def close(self) -> None:
        """Close the link; the board stops any run, as on a real link loss."""
        self._emu._close(self._gen)


# --- registry for fpgaemu:// ----------------------------------------------------------------

_REGISTRY: dict[str, FPGAEmulator] = {}
_REGISTRY_LOCK = threading.Lock()


def register_emulator(name: str, emulator: FPGAEmulator, *, replace: bool = False) -> str:
    """Make `fpgaemu://<name>` reach `emulator`; returns that URL. Raises ConfigurationError
    if the name is taken (pass replace=True to rebind it) or not a plain name."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigurationError(
            f"emulator name {name!r} must be non-empty letters, digits, '-', '_' or '.'"
        )
    with _REGISTRY_LOCK:
        if name in _REGISTRY and _REGISTRY[name] is not emulator and not replace:
            raise ConfigurationError(
                f"an FPGA emulator is already registered as {name!r}; unregister it or pass "
                "replace=True"
            )
        _REGISTRY[name] = emulator
    return f"fpgaemu://{name}"


def unregister_emulator(name: str) -> None:
    """Forget the emulator registered as `name` (no error if there is none)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


def get_emulator(name: str) -> FPGAEmulator | None:
    """The emulator registered as `name`, or None."""
    with _REGISTRY_LOCK:
        return _REGISTRY.get(name)


# --- loopback TCP server for socket:// ------------------------------------------------------

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class TcpEmulatorServer:
    """A background thread serving one FPGAEmulator on a loopback TCP port, one client at a
    time. It stops on `stop()`, after `lifetime_s`, or after `idle_timeout_s` with no client.
    `url` is the pyserial URL (socket://host:port)."""

    def __init__(
        self, emulator: FPGAEmulator, host: str, port: int, lifetime_s: float, idle_timeout_s: float
    ) -> None:
        self.emulator = emulator
        family = socket.AF_INET6 if host == "::1" else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(1)
        self._listener.settimeout(0.05)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime_s
        self._idle_timeout_s = idle_timeout_s
        self._thread = threading.Thread(
            target=self._serve, name=f"fpgaemu-tcp-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """pyserial URL of this server."""
        return f"socket://{'[::1]' if self.host == '::1' else self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop serving and wait for the thread (at most timeout_s seconds)."""
        self._stop.set()
        self._thread.join(timeout_s)

    def __enter__(self) -> TcpEmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _done(self) -> bool:
        return self._stop.is_set() or time.monotonic() > self._deadline

    def _serve(self) -> None:
        idle_since = time.monotonic()
        try:
            while not self._done():
                if time.monotonic() - idle_since > self._idle_timeout_s:
                    break
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                with client:
                    try:
                        link = self.emulator.open_link()
                    except (LinkDownError, ConfigurationError):
                        continue  # port vanished or taken: the connection is dropped at once
                    self._serve_client(client, link)
                idle_since = time.monotonic()
        finally:
            self._listener.close()

    def _serve_client(self, client: socket.socket, link: EmulatorLink) -> None:
        client.settimeout(1.0)
        active = False
        try:
            while not self._done():
                readable, _, _ = select.select([client], [], [], 0 if active else 0.005)
                active = False
                if readable:
                    data = client.recv(4096)
                    if not data:
                        break
                    link.write(data)
                    active = True
                else:
                    for _ in range(64):  # the host is silent: let simulated time run
                        if not link.advance():
                            break
                        active = True
                out = link.read()
                if out:
                    client.sendall(out)
        except (LinkDownError, OSError):
            pass
        finally:
            link.close()


def serve_tcp(
    emulator: FPGAEmulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    lifetime_s: float = 600.0,
    idle_timeout_s: float = 120.0,
) -> TcpEmulatorServer:
    """Serve `emulator` on loopback TCP (port 0: any free port) in a background thread.

    Returns the server; its `.port` and `.url` (socket://127.0.0.1:PORT) reach the emulator.
    Raises ConfigurationError for a non-loopback host.
    """
    if host not in _LOOPBACK:
        raise ConfigurationError(
            f"the FPGA emulator serves loopback only (127.0.0.1, localhost, ::1), not {host!r}"
        )
    if lifetime_s <= 0 or idle_timeout_s <= 0:
        raise ConfigurationError("lifetime_s and idle_timeout_s must be positive seconds")
    return TcpEmulatorServer(emulator, host, port, lifetime_s, idle_timeout_s)
