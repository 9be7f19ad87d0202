"""`FPGAEmulator`: the timing board's firmware behaviour on a simulated microsecond clock.

Its clock never sleeps: it advances by the UART time of the bytes received (10 bits per byte at
`baudrate`) and, when the host waits with nothing to read, jumps to the end of the next frame of
a run. Commands are executed strictly (the NAK the board gives for malformed, unknown or
out-of-order commands), dispatched by message type to one `_cmd_<name>` method each. Runs are
planned at once (runs.plan_run) and handed to the rig in one `on_run(RunRequest)` call.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import fields

from firmware_iface.errors import ConfigurationError, FrameCodecError, FrameCrcError, LinkDownError
from firmware_iface.fpga import messages as m
from firmware_iface.fpga.frame import decode_frame, split_stream
from firmware_iface.fpga.messages import (
    MAX_LOG_RECORDS,
    MAX_RUN_FRAMES,
    TRIGGER_LOG_DEPTH,
)
from firmware_iface.fpga.timing import DEFAULT_TIMING, RANGES_US, Timing

from .faults import FPGAFaults
from .link import EmulatorLink
from .runs import ActiveRun, RunRequest, plan_run

__all__ = ["FPGAEmulator", "RUN_START_LATENCY_US", "UNKNOWN_SEQ"]

UNKNOWN_SEQ = 0xFFFF  # sequence number of a NAK whose command's header could not be read
RUN_START_LATENCY_US = 10  # from the end of the RUN frame to frame 0's start
_CONFIG_COMMANDS = (m.SetFramePeriod, m.SetExposure, m.SetTriggerDelays, m.Arm)


class FPGAEmulator:
    """The timing board's firmware behaviour on a simulated microsecond clock.

    on_run: called once per accepted RUN with the whole run's trigger times (RunRequest); if it
        raises, the RUN is refused with INTERNAL_FAULT and the exception kept in
        `last_rig_error`. Callbacks run in the transport's thread, under the emulator's lock,
        before the RUN's ACK is sent.
    on_run_end: called with the RunComplete of every run (completed, stopped or link lost).
    faults: fault-injection settings (FPGAFaults, a FaultPlan; default: none). Its hook
        points "run" and "run_rendered" replace swapping on_run for one-run faults.
    baudrate: UART speed, bit/s; sets how far the clock advances per received byte.
    realtime: the board clock follows the host's monotonic clock (plus a fixed offset, so the
        two differ as a real board's and host's do) instead of jumping: a read waits for the
        next frame's event in real time. For tests where real host activity (a window's flips)
        must line up with the board's VSYNC grid; received bytes then take no extra time.
    """

    def __init__(
        self,
        on_run: Callable[[RunRequest], None] | None = None,
        *,
        on_run_end: Callable[[m.RunComplete], None] | None = None,
        faults: FPGAFaults | None = None,
        baudrate: int = 115_200,
        realtime: bool = False,
    ) -> None:
        if baudrate <= 0:
            raise ConfigurationError(f"baudrate must be positive, got {baudrate}")
        self.realtime = bool(realtime)
        # board time = host monotonic time + this offset (realtime mode), ns
        self._host_offset_ns = 7_000_000_000 - time.monotonic_ns()
        self.on_run = on_run
        # video-pattern runs: the frames (of the run) at whose DMD trigger the VSYNC input saw
        # an edge, asked after on_run (the rig's video link); their events carry VSYNC
        self.vsync_input: Callable[[RunRequest], object] | None = None
        self.on_run_end = on_run_end
        self.faults = faults if faults is not None else FPGAFaults()
        self._byte_ns = 0 if realtime else 10 * 1_000_000_000 // baudrate
        self._lock = threading.RLock()
        self._now_ns = 0
        self._rx = b""
        self._tx = bytearray()
        self._link_gen = 0
        self._attached = False
        self.state = m.BoardState.IDLE
        self.timing: Timing = DEFAULT_TIMING
        self._run: ActiveRun | None = None
        self._run_id = 0
        self._frames_requested = 0
        self._log: list[m.TriggerEvent] = []
        self._last_command: tuple[int, bytes] | None = None
        self._last_reply: bytes | None = None
        self._event_seq = 0
        self._stop_requested = False
        self.counters = {f.name: 0 for f in fields(m.CounterReport) if f.name != "uptime_us"}
        self.last_rig_error: BaseException | None = None
        self.executed: list[m.MsgType] = []  # every command executed (not duplicates), in order
        self.bytes_received = 0  # bytes received from the host over all links
        self._handlers: dict[type, Callable[[m.Message], m.Ack | m.Nak | None]] = {
            m.SetFramePeriod: self._cmd_set_frame_period,
            m.SetExposure: self._cmd_set_exposure,
            m.SetTriggerDelays: self._cmd_set_trigger_delays,
            m.Arm: self._cmd_arm,
            m.Run: self._cmd_run,
            m.Stop: self._cmd_stop,
            m.GetStatus: self._cmd_get_status,
            m.ReadCounters: self._cmd_read_counters,
            m.ReadTriggerLog: self._cmd_read_trigger_log,
        }

    # --- clock ---------------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        """Board time, microseconds since power-up."""
        return self._now_ns // 1000

    def advance_clock_us(self, dt_us: float) -> None:
        """Let dt_us microseconds of board time pass, as while the host waits (a rig's
        wait_s; a real sleep in realtime mode); events of run frames that fall in that time
        are sent."""
        if not (isinstance(dt_us, (int, float)) and math.isfinite(dt_us) and dt_us >= 0):
            raise ConfigurationError(f"dt_us must be a finite number >= 0, got {dt_us!r}")
        if self.realtime:
            time.sleep(dt_us / 1e6)
            with self._lock:
                self._catch_up()
            return
        with self._lock:
            self._advance_ns(round(dt_us * 1000))

    def board_to_host_ns(self, board_us: float) -> int:
        """Host time.monotonic_ns() at board time board_us (realtime mode only)."""
        if not self.realtime:
            raise ConfigurationError("the board clock is simulated: no host time matches it")
        return round(board_us * 1000) - self._host_offset_ns

    def _catch_up(self) -> None:
        """Realtime mode: bring the board clock to the host's time (events due are sent)."""
        if self.realtime:
            t_ns = time.monotonic_ns() + self._host_offset_ns
            self._advance_to_us(t_ns // 1000)
            self._now_ns = max(self._now_ns, t_ns)

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

    # --- link: EmulatorLink's entry points ---------------------------------------------------

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

    def link_receive(self, gen: int, data: bytes) -> None:
        """Bytes from the host on link `gen`; complete frames are executed at once, each
        seeing the clock at its last byte."""
        with self._lock:
            self._catch_up()
            self._check(gen)
            self.bytes_received += len(data)
            buf = self._rx + bytes(data)
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

    def link_transmit(self, gen: int, max_bytes: int | None) -> bytes:
        """Up to max_bytes (all if None) of what the board has sent on link `gen`."""
        with self._lock:
            self._catch_up()
            self._check(gen)
            n = len(self._tx) if max_bytes is None else min(max_bytes, len(self._tx))
            out = bytes(self._tx[:n])
            del self._tx[:n]
            return out

    def link_pending(self, gen: int) -> int:
        """Bytes sent on link `gen` and not yet read."""
        with self._lock:
            self._catch_up()
            self._check(gen)
            return len(self._tx)

    def link_step(self, gen: int) -> bool:
        """Advance the clock to the next scheduled output (realtime mode: wait for it);
        False if none is scheduled."""
        with self._lock:
            self._check(gen)
            run = self._run
            if run is None:
                return False
            due_us = run.emit_times_us[run.emitted]
            if not self.realtime:
                self._advance_to_us(due_us)
                return True
        wait_ns = self.board_to_host_ns(due_us) - time.monotonic_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        with self._lock:
            self._catch_up()
        return True

    def link_close(self, gen: int) -> None:
        """The host closed link `gen`: the board stops any run, as on a link loss."""
        with self._lock:
            if gen == self._link_gen and self._attached:
                self._drop_link()

    def _check(self, gen: int) -> None:
        if gen != self._link_gen or not self._attached:
            raise LinkDownError("this link to the FPGA emulator is closed")
        if self.faults.disconnect:
            self.faults.fire("disconnect")
            self._drop_link()
            raise LinkDownError("the FPGA emulator's port has vanished (disconnect fault)")

    def _drop_link(self) -> None:
        """Link lost or closed: the board stops any run (known state) and forgets buffers."""
        self._attached = False
        self._link_gen += 1
        if self._run is not None:
            self._end_run(m.RunEndReason.LINK_LOST)
        self.state = m.BoardState.IDLE
        self._rx = b""
        self._tx.clear()

    # --- output --------------------------------------------------------------------------

    def _send(self, wire: bytes, is_reply: bool) -> None:
        if is_reply and self.faults.take("lost_acks"):
            return
        if self.faults.chance("crc_error_rate"):
            rng = self.faults.rng
            b = bytearray(wire)
            i = rng.randrange(len(b) - 1)  # never the delimiter
            b[i] ^= rng.randrange(1, 256)
            wire = bytes(b)
        self._tx += wire

    def _reply(self, seq: int, msg: m.Ack | m.Nak, cache_key: tuple[int, bytes] | None) -> None:
        if isinstance(msg, m.Nak):
            self.counters["naks_sent"] += 1
        wire = m.encode_message(msg, seq)
        if cache_key is not None:
            self._last_command, self._last_reply = cache_key, wire
        self._send(wire, is_reply=True)

    def _event(self, msg: m.TriggerEvent | m.RunComplete) -> None:
        wire = m.encode_message(msg, self._event_seq)
        self._event_seq = (self._event_seq + 1) & 0xFFFF
        self.counters["events_sent"] += 1
        if self.faults.take("lost_events"):
            return
        self._send(wire, is_reply=False)

    # --- input ---------------------------------------------------------------------------

    def _handle_chunk(self, chunk: bytes) -> None:
        f = self.faults
        if f.elapse("disconnect_after_frames"):
            f.disconnect = True
            self._drop_link()
            return
        if f.take("timeouts"):
            return
        try:
            frame = decode_frame(chunk)
        except FrameCodecError as e:
            # transport-level refusal: the header is untrusted, so nothing is cached
            self.counters["crc_errors" if isinstance(e, FrameCrcError) else "frame_errors"] += 1
            seq = UNKNOWN_SEQ if e.seq is None else e.seq
            cmd = 0 if e.msg_type is None else e.msg_type
            self._reply(seq, m.Nak(cmd, m.ErrorCode(e.nak_code), self.state, 0), None)
            return
        key = (frame.seq, chunk)
        if key == self._last_command and self._last_reply is not None:
            self.counters["duplicate_commands"] += 1
            self._send(self._last_reply, is_reply=True)
            return
        try:
            msg = m.message_from_frame(frame)
        except FrameCodecError as e:
            self.counters["frame_errors"] += 1
            self._reply(frame.seq, m.Nak(frame.msg_type, m.ErrorCode(e.nak_code), self.state), key)
            return
        if msg.TYPE >= 0x80:  # replies and events only flow from the board
            nak = m.Nak(frame.msg_type, m.ErrorCode.UNKNOWN_COMMAND, self.state)
            self._reply(frame.seq, nak, key)
            return
        self._reply(frame.seq, self._execute(msg), key)
        if self._stop_requested:
            self._stop_requested = False
            self._end_run(m.RunEndReason.STOPPED)

    # --- commands (one handler per message type) -----------------------------------------

    def _nak(self, msg: m.Message, code: m.ErrorCode, detail: int = 0) -> m.Nak:
        return m.Nak(int(msg.TYPE), code, self.state, detail)

    def _execute(self, msg: m.Message) -> m.Ack | m.Nak:
        if isinstance(msg, _CONFIG_COMMANDS):
            if self.state == m.BoardState.RUNNING:
                return self._nak(msg, m.ErrorCode.BUSY)
            if self.state == m.BoardState.ARMED:
                return self._nak(msg, m.ErrorCode.WRONG_STATE)
        reply = self._handlers[type(msg)](msg)
        if isinstance(reply, m.Nak):
            return reply
        self.executed.append(msg.TYPE)
        return reply if reply is not None else m.Ack(msg.TYPE, self.state)

    def _set_timing(self, msg: m.Message, **changes: int) -> m.Nak | None:
        """Adopt changed Timing fields, or the NAK for the first one out of range (detail:
        the violated limit)."""
        for name, value in changes.items():
            lo, hi = RANGES_US[name]
            if value < lo or value > hi:
                return self._nak(msg, m.ErrorCode.OUT_OF_RANGE, lo if value < lo else hi)
        self.timing = self.timing.with_(**changes)
        return None

    def _cmd_set_frame_period(self, msg: m.SetFramePeriod) -> m.Nak | None:
        return self._set_timing(msg, frame_period_us=msg.period_us)

    def _cmd_set_exposure(self, msg: m.SetExposure) -> m.Nak | None:
        return self._set_timing(msg, exposure_us=msg.exposure_us)

    def _cmd_set_trigger_delays(self, msg: m.SetTriggerDelays) -> m.Nak | None:
        return self._set_timing(
            msg, dmd_delay_us=msg.dmd_delay_us, camera_delay_us=msg.camera_delay_us
        )

    def _cmd_arm(self, msg: m.Arm) -> m.Nak | None:
        if self.timing.problem() is not None:
            return self._nak(msg, m.ErrorCode.INVALID_CONFIG, self.timing.frame_period_us)
        self.state = m.BoardState.ARMED
        return None

    def _cmd_run(self, msg: m.Run) -> m.Ack | m.Nak:
        if self.state == m.BoardState.RUNNING:
            return self._nak(msg, m.ErrorCode.BUSY)
        if self.state != m.BoardState.ARMED:
            return self._nak(msg, m.ErrorCode.WRONG_STATE)
        if not 1 <= msg.n_frames <= MAX_RUN_FRAMES:
            limit = 1 if msg.n_frames < 1 else MAX_RUN_FRAMES
            return self._nak(msg, m.ErrorCode.OUT_OF_RANGE, limit)
        accepted = self._start_run(msg.n_frames)
        if accepted is None:
            return self._nak(msg, m.ErrorCode.INTERNAL_FAULT)
        return m.Ack(msg.TYPE, self.state, accepted)

    def _cmd_stop(self, msg: m.Stop) -> None:
        # a running board stops after its ACK is sent, so the ACK precedes RUN_COMPLETE
        self._stop_requested = self.state == m.BoardState.RUNNING
        self.state = m.BoardState.IDLE

    def _cmd_get_status(self, msg: m.GetStatus) -> m.Ack:
        t = self.timing
        status = m.StatusReport(
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
        return m.Ack(msg.TYPE, self.state, status)

    def _cmd_read_counters(self, msg: m.ReadCounters) -> m.Ack:
        return m.Ack(msg.TYPE, self.state, m.CounterReport(**self.counters, uptime_us=self.now_us))

    def _cmd_read_trigger_log(self, msg: m.ReadTriggerLog) -> m.Ack | m.Nak:
        done = len(self._log)
        if not 1 <= msg.count <= MAX_LOG_RECORDS:
            return self._nak(msg, m.ErrorCode.OUT_OF_RANGE, MAX_LOG_RECORDS)
        if msg.first_frame < max(0, done - TRIGGER_LOG_DEPTH) or msg.first_frame + msg.count > done:
            return self._nak(msg, m.ErrorCode.OUT_OF_RANGE, done)
        recs = tuple(self._log[msg.first_frame : msg.first_frame + msg.count])
        return m.Ack(msg.TYPE, self.state, m.TriggerLog(self._run_id, recs))

    # --- runs ----------------------------------------------------------------------------

    def _start_run(self, n: int) -> m.RunAccepted | None:
        run_id = self._run_id + 1
        t0 = math.ceil(self._now_ns / 1000) + RUN_START_LATENCY_US
        self.faults.run_hooks("run")
        run = plan_run(
            run_id,
            n,
            t0,
            self.timing,
            self.faults,
            self.counters["dmd_triggers"],
            self.counters["camera_triggers"],
        )
        try:
            if self.on_run is not None:
                self.on_run(run.request)
        except Exception as e:  # the rig failed: refuse the run, stay in a known state
            self.last_rig_error = e
            self.state = m.BoardState.IDLE
            return None
        finally:
            self.faults.run_hooks("run_rendered")
        if self.vsync_input is not None:
            for i in self.vsync_input(run.request):
                ev = run.events[i]
                run.events[i] = dataclasses.replace(ev, flags=ev.flags | m.TriggerFlags.VSYNC)
        self._run_id = run_id
        self._frames_requested = n
        self._log = []
        self._run = run
        self.state = m.BoardState.RUNNING
        self.counters["runs_started"] += 1
        return m.RunAccepted(run_id, n, t0)

    def _emit_frame(self, run: ActiveRun) -> None:
        i = run.emitted
        ev = run.events[i]
        run.emitted += 1
        self.counters["dmd_triggers"] += 1
        self.counters["camera_triggers"] += run.pulses_per_frame[i]
        self._log.append(ev)
        self._event(ev)
        if run.emitted == len(run.events):
            self._end_run(m.RunEndReason.COMPLETED)

    def _end_run(self, reason: m.RunEndReason) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        self.state = m.BoardState.IDLE
        done = run.emitted
        end = run.emit_times_us[done - 1] if reason == m.RunEndReason.COMPLETED else self.now_us
        summary = m.RunComplete(
            run.request.run_id,
            reason,
            run.request.n_frames,
            done,
            done,
            sum(run.pulses_per_frame[:done]),
            run.request.start_time_us,
            max(end, run.request.start_time_us),
        )
        completed = reason == m.RunEndReason.COMPLETED
        self.counters["runs_completed" if completed else "runs_aborted"] += 1
        if self._attached:
            self._event(summary)
        if self.on_run_end is not None:
            self.on_run_end(summary)
