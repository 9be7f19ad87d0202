"""DLPC900 driver: pattern-on-the-fly sequences over USB HID, with sequence-matched replies,
retries on timeouts, NACKs turned into DLPC900CommandError (code and description read back
with 0x0100/0x0101), and the sequencer stopped whenever an operation fails.

Host-side preparation (images.prepare_upload / prepare_upload_elements) is separate from
sending (load_plan), so it can be benchmarked and done ahead of time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..driver_base import DeviceDriver, Stats
from ..errors import (
    DeviceDisconnectedError,
    DeviceError,
    DeviceTimeoutError,
    DLPC900CommandError,
    InputError,
)
from ..geometry import DmdLayout
from . import commands as c
from .images import (
    DMD_HEIGHT,
    DMD_WIDTH,
    Compression,
    UploadPlan,
    check_patterns,
    prepare_upload,
    prepare_upload_elements,
)
from .report import (
    FLAG_REPLY,
    MAX_REQUEST_PAYLOAD,
    Request,
    decode_header,
    decode_reply,
    encode_request,
    join_reports,
    reports_needed,
    split_message,
)
from .timing import VIDEO_MODE_SWITCH_S
from .transport import HidTransport

TRIGGER_MODES = ("external", "internal")
_SEQ = c.Command.PATTERN_START_STOP
_STOP = c.encode_pattern_action(c.PatternAction.STOP)
_PAUSE = c.encode_pattern_action(c.PatternAction.PAUSE)
_START = c.encode_pattern_action(c.PatternAction.START)
_OTF = c.encode_display_mode(c.DisplayMode.PATTERN_ON_THE_FLY)


def _command_error(
    command: int, code: int, description: str, note: str = ""
) -> DLPC900CommandError:
    """The typed NACK error, its message naming the command and the controller's error."""
    name = c.Command(command).name if command in c.Command._value2member_map_ else "?"
    msg = (
        f"DLPC900 refused command 0x{command:04X} ({name}): error {code} "
        f"'{description or c.ERROR_DESCRIPTIONS.get(code, 'unknown')}'"
    )
    msg += (f"; {note}" if note else "") + "; the sequencer was stopped"
    return DLPC900CommandError(msg, command, code, description)


@dataclass(frozen=True)
class DLPC900Status:
    """Hardware (0x1A0A) and main (0x1A0C) status."""

    hardware: c.HardwareStatus
    main: c.MainStatus


@dataclass
class DriverStats(Stats):
    """Counters of recovered faults since the driver was opened (a driver_base.Stats)."""

    timeouts: int = 0
    stale_replies: int = 0
    upload_retries: int = 0
    reports_written: int = 0
    reports_read: int = 0
    commands: dict = field(default_factory=dict)


def _as_us(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number of microseconds, got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise InputError(f"{name} must be a whole number of microseconds, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise InputError(f"{name} must be {lo}..{hi} us, got {v}")
    return v


class DLPC900(DeviceDriver):
    """An opened DLPC900 controller (DLP6500-class DMD, 1920x1080).

    backend: pyusb backend object (None = libusb; an emulator's DLPC900Backend in tests).
    timeout_ms: per USB transfer, milliseconds. retries: extra attempts of a command after a
    timeout. upload_retries: extra attempts of one image upload after the controller reports
    an error. Opening stops the pattern sequencer so the device starts in a known state.
    Lifecycle (`state`, `closed`, `lost`) and the one-thread guard come from DeviceDriver: a
    public method called while another thread is inside one raises ConcurrencyError.
    """

    device_name = "DLPC900"
    reopen_hint = "open a new DLPC900()"

    def __init__(
        self,
        backend=None,
        timeout_ms: int = 1000,
        retries: int = 2,
        upload_retries: int = 2,
        transport=None,
    ) -> None:
        if retries < 0 or upload_retries < 0:
            raise InputError("retries and upload_retries must be >= 0")
        super().__init__()
        self._t = transport if transport is not None else HidTransport(backend, timeout_ms)
        self.retries = retries
        self.upload_retries = upload_retries
        self.stats = DriverStats()
        self._seq = 0
        self.width, self.height = DMD_WIDTH, DMD_HEIGHT
        try:
            self._command(_SEQ, _STOP)
        except BaseException:
            self.close()
            raise

    # --- transaction layer --------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _write_message(self, message: bytes) -> None:
        for r in split_message(message):
            self._t.write(r)
            self.stats.reports_written += 1

    def _read_reply(self, seq: int):
        for _ in range(64):  # bounded: stale replies of earlier, timed-out requests
            first = self._t.read()
            self.stats.reports_read += 1
            flags, s, length = decode_header(first)
            if not flags & FLAG_REPLY or length > MAX_REQUEST_PAYLOAD:
                self.stats.stale_replies += 1  # a continuation report of a stale reply
                continue
            reports = [first]
            for _ in range(reports_needed(length) - 1):
                reports.append(self._t.read())
                self.stats.reports_read += 1
            if s != seq:
                self.stats.stale_replies += 1
                continue
            return decode_reply(join_reports(reports))
        raise DeviceError("DLPC900 keeps sending replies that match no request; power-cycle it")

    def _command(self, command: int, data: bytes = b"", read: bool = False, reply: bool = True):
        """Send one command; returns the reply data (b"" for writes). Retries on timeouts;
        raises DLPC900CommandError on a NACK."""
        self._check_usable()
        self.stats.commands[command] = self.stats.commands.get(command, 0) + 1
        last: Exception | None = None
        for _ in range(self.retries + 1):
            seq = self._next_seq()
            msg = encode_request(Request(command, data, read=read, reply=reply, sequence=seq))
            try:
                self._write_message(msg)
                if not reply:
                    return b""
                rep = self._read_reply(seq)
            except DeviceTimeoutError as exc:
                self.stats.timeouts += 1
                last = exc
                continue
            except DeviceDisconnectedError as exc:
                self._mark_lost(exc)
                raise
            if rep.error:
                code, desc = self._read_error()
                raise _command_error(command, code, desc)
            return rep.data
        raise DeviceTimeoutError(
            f"DLPC900 did not answer command 0x{command:04X} after {self.retries + 1} attempts "
            f"({last}); check the connection, then reopen the driver"
        )

    def _guarded(self, fn, *args, **kwargs):
        """Run fn holding the driver (thread guard); on any device error stop the sequencer
        (best effort) and re-raise."""
        with self._exclusive():
            try:
                return fn(*args, **kwargs)
            except DeviceDisconnectedError:
                raise
            except DeviceError:
                self._safe_stop()
                raise

    def _locked(self, fn, *args):
        """Run fn holding the driver (thread guard)."""
        with self._exclusive():
            return fn(*args)

    def _safe_stop(self) -> None:
        try:
            self._command(_SEQ, _STOP)
        except DeviceError:
            pass  # already failing; the original error is what the caller needs

    # --- status --------------------------------------------------------------------------------

    def read_error(self) -> tuple[int, str]:
        """(error code, description) of the last executed command (0x0100, 0x0101)."""
        return self._locked(self._read_error)

    def _read_error(self) -> tuple[int, str]:
        code = c.decode_error_code(self._command(c.Command.READ_ERROR_CODE, read=True))
        if code == 0:
            return 0, ""
        raw = self._command(c.Command.READ_ERROR_DESCRIPTION, read=True)
        desc = c.decode_error_description(raw)
        return code, desc

    def firmware_version(self) -> c.FirmwareVersion:
        """Application, API, software- and sequencer-configuration revisions (0x0205)."""
        raw = self._locked(self._command, c.Command.FIRMWARE_VERSION, b"", True)
        return c.decode_firmware_version(raw)

    def status(self) -> DLPC900Status:
        """Hardware status (0x1A0A) and main status (0x1A0C)."""
        return self._locked(self._status)

    def _status(self) -> DLPC900Status:
        hw = c.decode_hardware_status(self._command(c.Command.HARDWARE_STATUS, read=True))
        main = c.decode_main_status(self._command(c.Command.MAIN_STATUS, read=True))
        return DLPC900Status(hw, main)

    def display_mode(self) -> c.DisplayMode:
        """The current display mode (0x1A1B read)."""
        raw = self._locked(self._command, c.Command.DISPLAY_MODE, b"", True)
        return c.decode_display_mode(raw)

    # --- sequencer -----------------------------------------------------------------------------

    def set_pattern_on_the_fly_mode(self) -> None:
        """Stop the sequencer and switch to pattern-on-the-fly mode (0x1A24, 0x1A1B = 3)."""
        self._guarded(self._set_otf)

    def _set_otf(self) -> None:
        self._command(_SEQ, _STOP)
        self._command(c.Command.DISPLAY_MODE, _OTF)

    def set_video_pattern_mode(
        self, exposure_us: int, n_patterns: int = 24, sleep=None
    ) -> None:
        """Switch to video-pattern mode and show n_patterns bit planes (LUT bit positions
        0..n-1) of every video frame for exposure_us each, then start: stop, Video Mode (0),
        Video Pattern Mode (2) (DLPU018 0x1A1B: from Video Mode with the source locked), wait
        the ~300 ms the transition takes (`sleep(seconds)`, default time.sleep), the LUT (image
        index not applicable in this mode) and its configuration (repeat), start."""
        exp = _as_us("exposure_us", exposure_us, c.MIN_EXPOSURE_1BIT_US, c.MAX_24BIT)
        if not 1 <= n_patterns <= 24:
            raise InputError(f"a video frame holds 1..24 one-bit patterns, got {n_patterns}")
        wait = sleep if sleep is not None else time.sleep
        self._guarded(self._set_video, exp, n_patterns, wait)

    def _set_video(self, exp: int, n: int, wait) -> None:
        self._command(_SEQ, _STOP)
        self._command(c.Command.DISPLAY_MODE, c.encode_display_mode(c.DisplayMode.VIDEO))
        self._command(c.Command.DISPLAY_MODE, c.encode_display_mode(c.DisplayMode.VIDEO_PATTERN))
        wait(VIDEO_MODE_SWITCH_S)
        for k in range(n):
            entry = c.LutEntry(pattern_index=k, exposure_us=exp, image_index=0, bit_position=k,
                               clear_after_exposure=False, wait_for_trigger=False)
            self._command(c.Command.LUT_DEFINITION, c.encode_lut_entry(entry))
        self._command(c.Command.LUT_CONFIGURATION, c.encode_lut_configuration(n, 0))
        self._command(_SEQ, _START)

    def start(self) -> None:
        """Start (or resume) the pattern sequence (0x1A24 = 2)."""
        self._guarded(self._command, _SEQ, _START)

    def pause(self) -> None:
        """Pause; the next start re-displays the current pattern (0x1A24 = 1)."""
        self._guarded(self._command, _SEQ, _PAUSE)

    def stop(self) -> None:
        """Stop; the next start begins the sequence from its first pattern (0x1A24 = 0)."""
        self._locked(self._command, _SEQ, _STOP)

    # --- sequences -----------------------------------------------------------------------------

    def load_sequence(
        self,
        images: np.ndarray,
        exposure_us: int,
        dark_time_us: int = 0,
        trigger_in: str = "external",
        repeat: bool = True,
        compression: Compression = Compression.ERLE,
    ) -> UploadPlan:
        """Upload (N, 1080, 1920) bool patterns as a pattern-on-the-fly sequence.

        exposure_us: per pattern, >= 105 us (DMD minimum for 1-bit patterns). dark_time_us: after
        each exposure. trigger_in: "external" (each trigger shows the next pattern) or
        "internal" (free running). repeat: loop the sequence until stopped. All input is checked
        before anything is sent (InputError). Leaves the sequencer stopped; call start().
        """
        exp, dark, wait = self._check_timing(exposure_us, dark_time_us, trigger_in)
        check_patterns(images, self.width, self.height)
        plan = prepare_upload(images, compression, self.width, self.height)
        self._guarded(self._load, plan, exp, dark, wait, repeat)
        return plan

    def load_elements(
        self,
        elements: np.ndarray,
        layout: DmdLayout,
        exposure_us: int,
        dark_time_us: int = 0,
        trigger_in: str = "external",
        repeat: bool = True,
    ) -> UploadPlan:
        """load_sequence for element patterns ((N, layout.n_elements)) rendered by `layout`,
        using the fast element-to-ERLE path."""
        exp, dark, wait = self._check_timing(exposure_us, dark_time_us, trigger_in)
        if (layout.dmd_width, layout.dmd_height) != (self.width, self.height):
            raise InputError(
                f"layout is for a {layout.dmd_width}x{layout.dmd_height} DMD, this controller "
                f"drives {self.width}x{self.height}"
            )
        plan = prepare_upload_elements(elements, layout)
        self._guarded(self._load, plan, exp, dark, wait, repeat)
        return plan

    def load_plan(
        self,
        plan: UploadPlan,
        exposure_us: int,
        dark_time_us: int = 0,
        trigger_in: str = "external",
        repeat: bool = True,
    ) -> None:
        """Send a prepared UploadPlan (see images.prepare_upload)."""
        exp, dark, wait = self._check_timing(exposure_us, dark_time_us, trigger_in)
        if not 1 <= plan.n_patterns <= c.MAX_LUT_ENTRIES:
            raise InputError(
                f"plan holds {plan.n_patterns} patterns, the LUT takes 1..{c.MAX_LUT_ENTRIES}"
            )
        self._guarded(self._load, plan, exp, dark, wait, repeat)

    @staticmethod
    def _check_timing(exposure_us, dark_time_us, trigger_in) -> tuple[int, int, bool]:
        if trigger_in not in TRIGGER_MODES:
            raise InputError(f"trigger_in must be one of {TRIGGER_MODES}, got {trigger_in!r}")
        exp = _as_us("exposure_us", exposure_us, c.MIN_EXPOSURE_1BIT_US, c.MAX_24BIT)
        dark = _as_us("dark_time_us", dark_time_us, 0, c.MAX_24BIT)
        return exp, dark, trigger_in == "external"

    def _load(self, plan: UploadPlan, exp: int, dark: int, wait: bool, repeat: bool) -> None:
        self._set_otf()
        for n, (img, bit) in enumerate(plan.slots.tolist()):
            entry = c.LutEntry(
                pattern_index=n,
                exposure_us=exp,
                image_index=img,
                bit_position=bit,
                dark_time_us=dark,
                clear_after_exposure=True,
                wait_for_trigger=wait,
            )
            self._command(c.Command.LUT_DEFINITION, c.encode_lut_entry(entry))
        n = plan.n_patterns
        config = c.encode_lut_configuration(n, 0 if repeat else n)
        self._command(c.Command.LUT_CONFIGURATION, config)
        # DLPU018: load the images in reverse order
        for index in reversed(range(len(plan.images))):
            self._upload_image(index, plan.images[index])

    def _upload_image(self, index: int, data: bytes) -> None:
        chunks = c.split_image(data)
        for attempt in range(self.upload_retries + 1):
            self._command(c.Command.BMP_LOAD_INIT, c.encode_bmp_load_init(index, len(data)))
            for chunk in chunks:
                # no reply per data packet (DLPU018 1.2: a reply is "usually not required";
                # mcSIM sends image data without one); the error code is read after the image
                self._command(c.Command.BMP_LOAD_DATA, c.encode_bmp_load_data(chunk), reply=False)
            code, desc = self._read_error()
            if code == 0:
                return
            if attempt < self.upload_retries:
                self.stats.upload_retries += 1
        raise _command_error(
            c.Command.BMP_LOAD_DATA,
            code,
            desc,
            note=f"image {index} failed {self.upload_retries + 1} upload attempts",
        )

    # --- lifetime ------------------------------------------------------------------------------

    def _do_close(self) -> None:
        """Stop the sequencer (if still reachable) and release the USB interface."""
        try:
            if not self.lost:
                self._safe_stop()
        finally:
            self._t.close()
