"""Driver of the FPGA timing board: `FPGATimingBoard(url)`.

Stop-and-wait over a pyserial port opened with `serial.serial_for_url` only, so a device path
(`/dev/ttyUSB0`), `socket://host:port` or the emulator's `fpgaemu://name` work unchanged.
Each command is sent with a fresh sequence number and re-sent with the same number (and the
same bytes) when no valid reply arrives within `timeout_s`, or at once when the line delivered
corrupted bytes; the board answers a re-sent command from its reply cache without executing it
again. Events (per-frame triggers, run complete) are collected while waiting for replies.

Failure policy: bad host input raises InputError before anything is sent; a NAK raises
FPGACommandError (.code); no valid reply after the retries raises DeviceTimeoutError; a
vanished port raises DeviceDisconnectedError. After a NAK or a timeout the driver sends STOP so
the board is left IDLE (stopped, disarmed); the board stops on its own when the link drops.
"""

from __future__ import annotations

import math
import numbers
import random
import time
from dataclasses import dataclass, replace

from ..driver_base import DeviceDriver, DriverState, Stats
from ..errors import (
    ConfigurationError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceTimeoutError,
    InputError,
)
from . import messages as m
from .errors import FPGACommandError, FPGARunAbortedError
from .events import EventLog, camera_pulses, missing_ranges
from .frame import DELIMITER
from .host_checks import check_timing, check_us, nak_hint
from .messages import (
    MAX_EXPOSURE_US,
    MAX_FRAME_PERIOD_US,
    MAX_LOG_RECORDS,
    MAX_RUN_FRAMES,
    MAX_TRIGGER_DELAY_US,
    MIN_EXPOSURE_US,
    MIN_FRAME_PERIOD_US,
)
from .port import FramePort
from .run_deadline import RunDeadline
from .timing import DEFAULT_TIMING, RANGES_US, Timing

__all__ = ["FPGATimingBoard", "LinkStats"]

_SEQ_MODULUS = 0xFFFF  # host sequence numbers run over 0..0xFFFE; 0xFFFF means "unknown"
_LINE_NOISE = (m.ErrorCode.BAD_CRC, m.ErrorCode.BAD_FRAME)

@dataclass
class LinkStats(Stats):
    """Link-health counters of one FPGATimingBoard session (`FPGATimingBoard.stats`)."""

    commands: int = 0  # commands completed (ACK or NAK received)
    resends: int = 0  # re-sent commands (timeouts, corrupted replies, line-noise NAKs)
    decode_errors: int = 0  # received frames that failed COBS/CRC/format checks
    stale_replies: int = 0  # replies whose sequence number matched no outstanding command
    events: int = 0  # events received intact
    events_lost: int = 0  # gaps in the event sequence numbers
    log_reads: int = 0  # READ_TRIGGER_LOG commands sent to fill lost frame events


class FPGATimingBoard(DeviceDriver):
    """The FPGA timing board that triggers DMD and camera, over a pyserial URL.

    url: anything `serial.serial_for_url` opens (device path, socket://, fpgaemu://).
    timeout_s: how long to wait for each reply attempt, seconds.
    retries: re-sends of a command after the first attempt before DeviceTimeoutError.
    baudrate: UART speed, bit/s.

    Opening sends STOP and reads the status, so the board starts IDLE with known timing.
    Raises DeviceNotFoundError if the port cannot be opened, DeviceTimeoutError if the board
    does not answer. Not re-entrant: a second thread calling in raises ConcurrencyError.
    Lifecycle (`state`, `closed`, `lost`) and the thread guard come from DeviceDriver;
    `stats` (LinkStats) counts the link's health.
    """

    reopen_hint = "open a new FPGATimingBoard"

    def __init__(
        self, url: str, timeout_s: float = 0.25, retries: int = 3, baudrate: int = 115_200
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"url must be a non-empty string, got {url!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, numbers.Real):
            raise ConfigurationError(f"timeout_s must be a number of seconds, got {timeout_s!r}")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ConfigurationError(f"timeout_s must be positive and finite, got {timeout_s}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"retries must be an int >= 0, got {retries!r}")
        super().__init__()
        self.url = url
        self.device_name = f"FPGA timing board at {url!r}"
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.stats = LinkStats()
        self._seq = random.SystemRandom().randrange(_SEQ_MODULUS)
        self._events = EventLog()
        self._run: m.RunAccepted | None = None
        self._timing: Timing = DEFAULT_TIMING  # read back from the board below
        self.last_run: m.RunComplete | None = None
        self._board_us = 0  # the latest board time seen (status reports, trigger events), us
        self._port = FramePort(url, baudrate, self.timeout_s, self._mark_lost, self._decode_error)
        try:
            self._port.reset_input()
            self._transact(m.Stop())
            self._status()
        except BaseException:
            self._port.close()
            self._state = DriverState.CLOSED
            raise

    # --- public API ----------------------------------------------------------------------

    def set_frame_period_us(self, period_us: int) -> None:
        """Set the frame period, microseconds (MIN_FRAME_PERIOD_US..MAX_FRAME_PERIOD_US).

        Must leave room for the current camera delay + exposure (set the exposure first or use
        configure()). Board must be IDLE."""
        p = check_us("frame period", period_us, MIN_FRAME_PERIOD_US, MAX_FRAME_PERIOD_US)
        t = self._timing.with_(frame_period_us=p)
        check_timing(t, "set the exposure and delays first, or use configure()")
        with self._exclusive():
            self._command(m.SetFramePeriod(p))
            self._timing = t

    def set_exposure_us(self, exposure_us: int) -> None:
        """Set the camera exposure, microseconds; camera delay + exposure must fit the frame
        period. Board must be IDLE."""
        e = check_us("exposure", exposure_us, MIN_EXPOSURE_US, MAX_EXPOSURE_US)
        t = self._timing.with_(exposure_us=e)
        check_timing(t, "lengthen the frame period first, or use configure()")
        with self._exclusive():
            self._command(m.SetExposure(e))
            self._timing = t

    def set_trigger_delays_us(self, dmd_us: int, camera_us: int) -> None:
        """Set the DMD and camera trigger delays from each frame's start, microseconds
        (0..MAX_TRIGGER_DELAY_US; must fit the frame period). Board must be IDLE."""
        d = check_us("DMD trigger delay", dmd_us, 0, MAX_TRIGGER_DELAY_US)
        c = check_us("camera trigger delay", camera_us, 0, MAX_TRIGGER_DELAY_US)
        t = self._timing.with_(dmd_delay_us=d, camera_delay_us=c)
        check_timing(t, "lengthen the frame period first, or use configure()")
        with self._exclusive():
            self._command(m.SetTriggerDelays(d, c))
            self._timing = t

    def configure(
        self,
        frame_period_us: int,
        exposure_us: int,
        dmd_delay_us: int = 0,
        camera_delay_us: int = 0,
    ) -> None:
        """Set all timing at once, microseconds; checked as a whole before anything is sent."""
        self.set_timing(Timing(frame_period_us, exposure_us, dmd_delay_us, camera_delay_us))

    def set_timing(self, timing: Timing) -> None:
        """Set all timing at once from a Timing (checked as a whole before anything is sent).
        Board must be IDLE."""
        if not isinstance(timing, Timing):
            raise InputError(f"timing must be a Timing, got {type(timing).__name__}")
        t = Timing(
            check_us("frame period", timing.frame_period_us, *RANGES_US["frame_period_us"]),
            check_us("exposure", timing.exposure_us, *RANGES_US["exposure_us"]),
            check_us("DMD trigger delay", timing.dmd_delay_us, *RANGES_US["dmd_delay_us"]),
            check_us(
                "camera trigger delay", timing.camera_delay_us, *RANGES_US["camera_delay_us"]
            ),
        )
        check_timing(t, "choose a longer frame period")
        with self._exclusive():
            # the board checks consistency only at ARM, so the order does not matter
            self._command(m.SetFramePeriod(t.frame_period_us))
            self._command(m.SetExposure(t.exposure_us))
            self._command(m.SetTriggerDelays(t.dmd_delay_us, t.camera_delay_us))
            self._timing = t

    @property
    def timing(self) -> Timing:
        """The timing the board holds (as last set or read back), microseconds."""
        return self._timing

    def arm(self) -> None:
        """Arm the board for one run (IDLE -> ARMED)."""
        with self._exclusive():
            self._command(m.Arm())

    def run(self, n_frames: int) -> m.RunAccepted:
        """Start a run of n_frames frames on an armed board (ARMED -> RUNNING).

        Returns the run's id and its board start time (us). Collect it with
        wait_run_complete()."""
        if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral):
            raise InputError(f"n_frames must be an integer, got {n_frames!r}")
        if not 1 <= int(n_frames) <= MAX_RUN_FRAMES:
            raise InputError(f"n_frames must be in 1..{MAX_RUN_FRAMES}, got {n_frames}")
        with self._exclusive():
            ack = self._command(m.Run(int(n_frames)))
            accepted = ack.body
            if not isinstance(accepted, m.RunAccepted):
                raise DeviceError("the board acknowledged RUN without a run id; reopen it")
            self._run = accepted
            self._board_us = accepted.start_time_us
            self._events.start_run(accepted.run_id)
            return accepted

    def stop(self) -> None:
        """Abort any run and disarm (-> IDLE); a no-op on an idle board."""
        with self._exclusive():
            self._command(m.Stop())

    def status(self) -> m.StatusReport:
        """The board's state, timing (us), current/last run and clock (us)."""
        with self._exclusive():
            return self._status()

    def counters(self) -> m.CounterReport:
        """The board's lifetime counters (triggers, runs, errors seen, uptime in us)."""
        with self._exclusive():
            body = self._command(m.ReadCounters()).body
            if not isinstance(body, m.CounterReport):
                raise DeviceError("the board answered READ_COUNTERS without counters; reopen it")
            return body

    def read_trigger_log(self, first_frame: int, count: int) -> list[m.TriggerEvent]:
        """Trigger records of frames first_frame .. first_frame+count-1 of the current or
        last run, read from the board's log (in requests of MAX_LOG_RECORDS)."""
        for name, v in (("first_frame", first_frame), ("count", count)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise InputError(f"{name} must be an integer >= 0, got {v!r}")
        with self._exclusive():
            return self._read_log(int(first_frame), int(count))

    def wait_run_complete(self, timeout_s: float | None = None) -> list[m.TriggerEvent]:
        """Wait for the run started by run() to end; its per-frame trigger events, in order.

        timeout_s: limit on the board's clock from the run's start, seconds (default: twice
        the run's nominal duration plus (retries + 2) * the reply timeout). The host's wall
        clock only says when to ask the board: a host that was slow itself does not stop a run
        the board is still within its time for (run_deadline.py). Lost events are read back
        from the board's trigger log. Raises FPGARunAbortedError if the run was stopped before
        its last frame, and DeviceTimeoutError (after stopping the board) if it does not end in
        time.
        """
        if self._run is None:
            raise InputError("no run to wait for: call arm() and run(n_frames) first")
        run = self._run
        if timeout_s is None:
            nominal_s = self._timing.run_duration_us(run.n_frames) * 1e-6
            timeout_s = 2 * nominal_s + (self.retries + 2) * self.timeout_s
        elif (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, numbers.Real)
            or not (timeout_s > 0)
        ):
            raise InputError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        with self._exclusive():
            try:
                done = self._await_run_end(run, float(timeout_s))
            except (DeviceTimeoutError, FPGACommandError) as e:
                self._after_failure(e)
                raise
            events = self._events.frames(run.run_id)
            for first, count in list(missing_ranges(events, done.frames_done)):
                for ev in self._read_log(first, count):
                    events[ev.frame_index] = ev
            result = [events[i] for i in range(done.frames_done)]
            if done.camera_triggers < 0:  # RUN_COMPLETE was lost: count from the events
                done = replace(done, camera_triggers=camera_pulses(result))
            self.last_run = done
            self._run = None
            if done.reason != m.RunEndReason.COMPLETED or done.frames_done < run.n_frames:
                raise FPGARunAbortedError(
                    f"run {run.run_id} ended ({done.reason.name}) after {done.frames_done} of "
                    f"{run.n_frames} frames; re-arm and run again",
                    done.frames_done,
                    result,
                )
            return result

    @property
    def link_stats(self) -> LinkStats:
        """The same object as `stats` (its older name)."""
        return self.stats

    def _do_close(self) -> None:
        """Stop the board (best effort, unless it was lost) and close the port."""
        try:
            if not self.lost:
                with self._exclusive():
                    self._transact(m.Stop())
        except DeviceError:
            pass
        finally:
            self._port.close()

    # --- internals: commands -------------------------------------------------------------

    def _status(self, stop_on_failure: bool = True) -> m.StatusReport:
        cmd = m.GetStatus()
        body = (self._command(cmd) if stop_on_failure else self._transact(cmd)).body
        if not isinstance(body, m.StatusReport):
            raise DeviceError("the board answered GET_STATUS without a status; reopen it")
        self._timing = body.timing
        self._board_us = max(self._board_us, body.device_time_us)
        return body

    def _read_log(self, first: int, count: int) -> list[m.TriggerEvent]:
        out: list[m.TriggerEvent] = []
        while count > 0:
            n = min(count, MAX_LOG_RECORDS)
            self.stats.log_reads += 1
            body = self._command(m.ReadTriggerLog(first, n)).body
            if body is None or not hasattr(body, "records") or len(body.records) != n:
                raise DeviceError("the board's trigger-log reply is incomplete; reopen it")
            out.extend(body.records)
            first, count = first + n, count - n
        return out

    def _command(self, cmd: m.Command) -> m.Ack:
        """Send cmd; on a NAK or timeout stop the board, then raise."""
        try:
            return self._transact(cmd)
        except (DeviceTimeoutError, FPGACommandError) as e:
            if not isinstance(cmd, m.Stop):
                self._after_failure(e)
            raise

    def _after_failure(self, error: DeviceError) -> None:
        try:
            self._transact(m.Stop())
        except DeviceDisconnectedError:
            raise
        except DeviceError as e:
            error.add_note(
                f"the board did not confirm STOP either ({e}): its state is unknown, "
                "power-cycle or reopen it"
            )

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % _SEQ_MODULUS
        return self._seq

    def _transact(self, cmd: m.Command) -> m.Ack:
        seq = self._next_seq()
        wire = DELIMITER + m.encode_message(cmd, seq)
        why = "no reply"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.resends += 1
            self._port.write(wire)
            reply = self._await_reply(seq, cmd.TYPE)
            if isinstance(reply, m.Ack):
                self.stats.commands += 1
                return reply
            if isinstance(reply, m.Nak):
                if reply.code in _LINE_NOISE:
                    why = f"board saw a corrupted command ({reply.code.name})"
                    continue
                self.stats.commands += 1
                hint = nak_hint(reply.code, reply.detail, reply.state.name)
                raise FPGACommandError(
                    f"the FPGA timing board refused {cmd.TYPE.name} with {reply.code.name}: {hint}",
                    code=reply.code,
                    command=reply.command,
                    state=reply.state,
                    detail=reply.detail,
                )
            why = reply
        raise DeviceTimeoutError(
            f"the FPGA timing board at {self.url!r} gave no valid reply to {cmd.TYPE.name} in "
            f"{self.retries + 1} attempts of {self.timeout_s} s (last: {why}); check power and "
            "cable, or raise timeout_s/retries"
        )

    # --- internals: link -----------------------------------------------------------------

    def _decode_error(self) -> None:
        self.stats.decode_errors += 1

    def _await_reply(self, seq: int, cmd_type: m.MsgType) -> m.Ack | m.Nak | str:
        """Read until the reply to (seq, cmd_type) arrives; otherwise a reason string once
        the line goes quiet, the attempt's time is up, or corrupted bytes were received and
        nothing more is pending (so the caller re-sends at once)."""
        deadline = time.monotonic() + self.timeout_s
        corrupted = False
        while True:
            for item in self._port.frames():
                if item is None:
                    corrupted = True
                    continue
                rseq, msg = item
                if isinstance(msg, m.Ack | m.Nak):
                    if rseq == seq and (msg.command == cmd_type or isinstance(msg, m.Nak)):
                        return msg
                    self.stats.stale_replies += 1
                elif isinstance(msg, m.TriggerEvent | m.RunComplete):
                    self._on_event(rseq, msg)
                else:  # a command echoed back: not from a board
                    self.stats.stale_replies += 1
            if corrupted and self._port.idle():
                return "corrupted reply"
            if time.monotonic() > deadline:
                return "timed out while the board kept sending other frames"
            if not self._port.receive():
                return "corrupted reply" if corrupted else "no reply"

    def _on_event(self, seq: int, msg: m.TriggerEvent | m.RunComplete) -> None:
        self.stats.events += 1
        self.stats.events_lost += self._events.on_event(seq, msg)
        if isinstance(msg, m.TriggerEvent):
            self._board_us = max(self._board_us, msg.dmd_time_us)

    def _pump(self, until: float, limit_us: int) -> bool:
        """Read and dispatch frames until `until` (monotonic s), the run's end or a board time
        past limit_us; False once the line is quiet."""
        while time.monotonic() < until:
            if not self._port.receive():
                return False
            for item in self._port.frames():
                if item is None:
                    continue
                rseq, msg = item
                if isinstance(msg, m.TriggerEvent | m.RunComplete):
                    self._on_event(rseq, msg)
                else:
                    self.stats.stale_replies += 1
            if self._run is not None and self._events.completed(self._run.run_id) is not None:
                return True
            if self._board_us > limit_us:
                return True
        return True

    def _await_run_end(self, run: m.RunAccepted, timeout_s: float) -> m.RunComplete:
        deadline = RunDeadline(run.start_time_us, timeout_s, self.timeout_s)
        while True:
            done = self._events.completed(run.run_id)
            if done is not None:
                return done
            deadline.saw(self._board_us)
            why = deadline.late()
            if why is None and deadline.look_due():
                # the host's wait is over: ask the board (its reply comes after queued events)
                st = self._status(stop_on_failure=False)
                done = self._events.completed(run.run_id)
                if done is not None:
                    return done
                if st.state != m.BoardState.RUNNING:
                    return self._ended_unreported(run, st)
                why = deadline.looked(st.device_time_us)
            if why is not None:
                raise DeviceTimeoutError(
                    f"run {run.run_id} of {run.n_frames} frames did not complete in time "
                    f"({why}); the board was stopped. Allow a longer timeout_s"
                )
            until = min(deadline.next_look_s(), time.monotonic() + self.timeout_s)
            if self._pump(until, deadline.limit_us):
                continue
            # the line is quiet: has the run ended with its RUN_COMPLETE event lost?
            st = self._status(stop_on_failure=False)
            if st.state != m.BoardState.RUNNING:
                return self._ended_unreported(run, st)

    def _ended_unreported(self, run: m.RunAccepted, st: m.StatusReport) -> m.RunComplete:
        """The summary of a run the board reports ended (status st) whose RUN_COMPLETE event
        did not arrive."""
        if st.run_id != run.run_id:
            raise DeviceError(
                f"the board reports run {st.run_id}, not run {run.run_id}: another host "
                "controls it? Reopen the board"
            )
        ended = m.RunEndReason
        reason = ended.COMPLETED if st.frames_done == run.n_frames else ended.STOPPED
        return m.RunComplete(
            run.run_id,
            reason,
            run.n_frames,
            st.frames_done,
            st.frames_done,
            -1,  # unknown until the events are in
            run.start_time_us,
            st.device_time_us,
        )
