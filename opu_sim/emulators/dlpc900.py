"""Device side of the TI DLPC900 USB HID command set, for hardware-in-the-loop tests.

`DLPC900Emulator` implements the pattern-on-the-fly subset as strictly as the firmware: 512-byte
command buffer, 504-byte image chunks, out-of-order commands NACKed with the DLPU018 error code
(description readable with 0x0101); what host code that loads real boards sends (the TI GUI's
header bytes, Pycrafter6500's reply bit and header size) is accepted. Uploads are decoded into
a pattern store; with external triggers each `trigger()` advances the LUT. Video-pattern mode
(display mode 2) is entered from video mode with a locked source on the video input
(`attach_video`, an EmulatedVideoLink from dlpc900_video.py); its LUT selects bit planes of
the video frames. `DLPC900Backend` is
a pyusb backend object, so the unchanged driver reaches the emulator through
usb.core.find(backend=).

Emulator choices where DLPU018 is silent (documented in docs/dlpc900.md): a failed image-data
command aborts the current image load, later data commands of that load are ignored and the
error code stays until the next Initialize Pattern BMP Load; a report lost to a timeout makes
the controller drop the partly received command; replies queue on the IN endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_iface.dlpc900 import commands as c
from firmware_iface.dlpc900.erle import erle_bound
from firmware_iface.dlpc900.images import DMD_HEIGHT, DMD_WIDTH, HEADER_SIZE, decode_image
from firmware_iface.dlpc900.report import (
    COMMAND_BUFFER_SIZE,
    FLAG_ERROR,
    FLAG_REPLY,
    REPORT_SIZE,
    Reply,
    decode_header,
    decode_request,
    encode_reply,
    join_reports,
    reports_needed,
    split_message,
)
from firmware_iface.dlpc900.report import (
    HEADER_SIZE as MSG_HEADER,
)
from firmware_iface.errors import CodecError, ConfigurationError, InputError
from firmware_iface.usb_errors import LIBUSB_ERROR_INVALID_PARAM, usb_error

from .fault_plan import FaultPlan

_READ_ONLY = {
    c.Command.READ_ERROR_CODE,
    c.Command.READ_ERROR_DESCRIPTION,
    c.Command.FIRMWARE_VERSION,
    c.Command.HARDWARE_STATUS,
    c.Command.SYSTEM_STATUS,
    c.Command.MAIN_STATUS,
}
_WRITE_ONLY = {
    c.Command.PATTERN_START_STOP,
    c.Command.BMP_LOAD_DATA,
    c.Command.LUT_DEFINITION,
}


_PATTERN_MODES = (c.DisplayMode.PATTERN_ON_THE_FLY, c.DisplayMode.VIDEO_PATTERN)


@dataclass
class DLPC900Faults(FaultPlan):
    """Fault injection (a FaultPlan: countdowns count down as faults fire, `fired` counts them).

    nack_uploads: next image-data (0x1A2B) commands to refuse (error 255, load aborted).
    usb_timeouts: next USB transfers that time out (a write is lost; a read leaves its reply
        queued, so it arrives late). timeout_direction: "any", "out" or "in".
        timeouts_after_reports: matching transfers to let through before the timeouts start.
    disconnect_after_reports: the device vanishes after this many more report transfers.
    """

    nack_uploads: int = 0
    usb_timeouts: int = 0
    timeout_direction: str = "any"
    timeouts_after_reports: int = 0
    disconnect_after_reports: int | None = None


class _Silent(Exception):
    """A data command of an aborted load: ignored, the error code is left as it is."""


class _Nack(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@dataclass
class _Load:
    index: int
    expected: int
    buf: bytearray
    failed: bool = False


class DLPC900Emulator:
    """A DLPC900 with a 1920x1080 DMD, reached through report-level USB I/O."""

    def __init__(
        self,
        faults: DLPC900Faults | None = None,
        firmware: c.FirmwareVersion | None = None,
        width: int = DMD_WIDTH,
        height: int = DMD_HEIGHT,
    ) -> None:
        self.faults = faults if faults is not None else DLPC900Faults()
        self.firmware = firmware or c.FirmwareVersion((6, 0, 0), (6, 0, 0), (1, 0, 0), (1, 0, 0))
        self.width, self.height = width, height
        self.connected = True
        self.kernel_driver_active = True
        self.display_mode = c.DisplayMode.PRE_STORED_PATTERN
        self.running = False
        self.paused = False
        self.error_code = 0
        self.lut_definitions: dict[int, c.LutEntry] = {}
        self.lut: list[c.LutEntry] | None = None
        self.n_patterns_to_display = 0
        self.images: dict[int, np.ndarray] = {}
        self.commands_received: list[int] = []
        self._load: _Load | None = None
        self._rx: list[bytes] = []
        self._rx_needed = 0
        self._tx: list[bytes] = []
        self._position = -1
        self._shown = 0
        self._cache: dict[int, np.ndarray] = {}
        self._content_version = 0
        self.video = None  # an EmulatedVideoLink on the video input (attach_video)

    def attach_video(self, link) -> None:
        """Connect an EmulatedVideoLink to the video input (DisplayPort)."""
        self.video = link

    # --- report level I/O (called by the backend) ----------------------------------------------

    def receive_report(self, report: bytes) -> None:
        """One 64-byte report from the host's OUT endpoint."""
        if len(report) != REPORT_SIZE:
            raise usb_error(LIBUSB_ERROR_INVALID_PARAM, f"DLPC900 reports are {REPORT_SIZE} bytes")
        self._rx.append(bytes(report))
        if len(self._rx) == 1:
            _, _, length = decode_header(report)
            self._rx_needed = reports_needed(length)
        if len(self._rx) < self._rx_needed:
            return
        reports, self._rx = self._rx, []
        self._execute(reports)

    def next_report(self) -> bytes | None:
        """The next report queued for the IN endpoint, or None."""
        return self._tx.pop(0) if self._tx else None

    @property
    def pending_reports(self) -> int:
        """Reports waiting on the IN endpoint."""
        return len(self._tx)

    def drop_partial_command(self) -> None:
        """Forget a partly received command (a report of it was lost)."""
        self._rx = []

    def disconnect(self) -> None:
        """Unplug: USB transfers fail; the controller keeps its state and display."""
        self.connected = False
        self._rx, self._tx = [], []

    def reconnect(self) -> None:
        """Plug back in (the kernel HID driver binds again)."""
        self.connected = True
        self.kernel_driver_active = True

    # --- command execution ---------------------------------------------------------------------

    def _execute(self, reports: list[bytes]) -> None:
        flags, seq, length = decode_header(reports[0])
        try:
            if MSG_HEADER + length > COMMAND_BUFFER_SIZE:
                raise _Nack(c.ErrorCode.INVALID_PARAMETER)
            try:
                req = decode_request(join_reports(reports))
            except CodecError:
                raise _Nack(c.ErrorCode.INVALID_PARAMETER) from None
            self.commands_received.append(req.command)
            data = self._dispatch(req)
        except _Silent:
            return
        except _Nack as nack:
            self.error_code = int(nack.code)
            if flags & FLAG_REPLY:
                self._send(Reply(flags | FLAG_ERROR, seq))
            return
        if data is not None and flags & FLAG_REPLY:
            self._send(Reply(flags, seq, data))

    def _send(self, reply: Reply) -> None:
        self._tx.extend(split_message(encode_reply(reply)))

    def _dispatch(self, req) -> bytes | None:
        """Execute; returns reply data (b"" for writes) or raises _Nack. Read-backs of the
        error code and description leave the stored error code alone."""
        cmd = req.command
        if cmd not in c.Command._value2member_map_:
            raise _Nack(c.ErrorCode.INVALID_COMMAND)
        cmd = c.Command(cmd)
        if (req.read and cmd in _WRITE_ONLY) or (not req.read and cmd in _READ_ONLY):
            raise _Nack(c.ErrorCode.INVALID_COMMAND)
        if cmd == c.Command.READ_ERROR_CODE:
            return c.encode_error_code(self.error_code)
        if cmd == c.Command.READ_ERROR_DESCRIPTION:
            return c.encode_error_description(c.ERROR_DESCRIPTIONS.get(self.error_code, ""))
        handler = getattr(self, "_cmd_" + cmd.name.lower())
        out = handler(req)
        self.error_code = 0
        return out

    def _cmd_firmware_version(self, req) -> bytes:
        return c.encode_firmware_version(self.firmware)

    def _cmd_hardware_status(self, req) -> bytes:
        return c.encode_hardware_status(c.HardwareStatus(initialized=True))

    def _cmd_system_status(self, req) -> bytes:
        return b"\x01"  # internal memory test passed

    def _cmd_main_status(self, req) -> bytes:
        running = self.running and not self.paused
        return c.encode_main_status(c.MainStatus(sequencer_running=running))

    def _cmd_display_mode(self, req) -> bytes:
        if req.read:
            return c.encode_display_mode(self.display_mode)
        if len(req.data) != 1 or req.data[0] > 3:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER)
        mode = c.DisplayMode(req.data[0])
        if self.running:
            raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)  # stop before changing modes
        if mode == c.DisplayMode.VIDEO_PATTERN and not (
            self.display_mode in (c.DisplayMode.VIDEO, c.DisplayMode.VIDEO_PATTERN)
            and self.video is not None
            and self.video.locked
        ):
            # DLPU018 0x1A1B note: first Video Mode (0) with the source enabled and sync locked
            raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)
        self.display_mode = mode
        return b""

    def _cmd_pattern_start_stop(self, req) -> bytes:
        if len(req.data) != 1 or req.data[0] > 2:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER)
        action = c.PatternAction(req.data[0])
        if action == c.PatternAction.STOP:
            self.running, self.paused = False, False
            self._position, self._shown = -1, 0
            return b""
        if self.display_mode not in _PATTERN_MODES:
            raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)
        if action == c.PatternAction.PAUSE:
            if not self.running:
                raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)
            self.paused = True
            return b""
        if self.lut is None:
            raise _Nack(c.ErrorCode.INVALID_PATTERN_DEFINITION)
        if self._load is not None:
            raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)  # image load still in progress
        otf = self.display_mode == c.DisplayMode.PATTERN_ON_THE_FLY
        if otf and any(e.image_index not in self.images for e in self.lut):
            raise _Nack(c.ErrorCode.BMP_NOT_PRESENT)  # (video-pattern mode: frames are images)
        if not self.running:
            self._position, self._shown = -1, 0
        self.running, self.paused = True, False
        return b""

    def _require_stopped_otf(self, modes=(c.DisplayMode.PATTERN_ON_THE_FLY,)) -> None:
        if self.display_mode not in modes or self.running:
            raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)

    def _cmd_lut_definition(self, req) -> bytes:
        self._require_stopped_otf(_PATTERN_MODES)  # DLPU018: LUT for both pattern modes
        try:
            e = c.decode_lut_entry(req.data)
        except CodecError:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER) from None
        if e.pattern_index >= c.MAX_LUT_ENTRIES:
            raise _Nack(c.ErrorCode.PATTERN_NUMBER_OUT_OF_RANGE)
        if e.bit_depth != 1 or e.extended_bit_depth:
            raise _Nack(c.ErrorCode.INVALID_PATTERN_DEFINITION)  # emulator models 1-bit only
        if e.bit_position > 23:
            raise _Nack(c.ErrorCode.BIT_NUMBER_OUT_OF_RANGE)
        if e.exposure_us < c.MIN_EXPOSURE_1BIT_US:
            raise _Nack(c.ErrorCode.EXPOSURE_OUT_OF_RANGE)
        if e.image_index > c.MAX_IMAGE_INDEX:
            raise _Nack(c.ErrorCode.IMAGE_ADDRESS_OUT_OF_RANGE)
        self.lut_definitions[e.pattern_index] = e
        self.lut = None  # a LUT configuration must follow any definition
        self._invalidate()
        return b""

    def _cmd_lut_configuration(self, req) -> bytes:
        self._require_stopped_otf(_PATTERN_MODES)
        try:
            n, n_display = c.decode_lut_configuration(req.data)
        except CodecError:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER) from None
        if not 1 <= n <= c.MAX_LUT_ENTRIES:
            raise _Nack(c.ErrorCode.PATTERN_NUMBER_OUT_OF_RANGE)
        if any(i not in self.lut_definitions for i in range(n)):
            raise _Nack(c.ErrorCode.INVALID_PATTERN_DEFINITION)
        self.lut = [self.lut_definitions[i] for i in range(n)]
        self.n_patterns_to_display = n_display
        self._invalidate()
        return b""

    def _cmd_bmp_load_init(self, req) -> bytes:
        self._require_stopped_otf()
        try:
            index, n_bytes = c.decode_bmp_load_init(req.data)
        except CodecError:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER) from None
        if index > c.MAX_IMAGE_INDEX:
            raise _Nack(c.ErrorCode.IMAGE_ADDRESS_OUT_OF_RANGE)
        if n_bytes <= HEADER_SIZE:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER)
        if n_bytes > HEADER_SIZE + erle_bound(self.width, self.height):
            raise _Nack(c.ErrorCode.OUT_OF_RESOURCE)
        self.images.pop(index, None)
        self._invalidate()
        self._load = _Load(index, n_bytes, bytearray())
        return b""

    def _cmd_bmp_load_data(self, req) -> bytes | None:
        """Image data. DLPU018 1.2 calls a reply "usually not required" for writes; host code
        that loads real boards asks for one on every packet (Pycrafter6500, flags 0x40) or on
        none (mcSIM, TI's example): both work, so a reply is sent when asked for."""
        load = self._load
        if load is not None and load.failed:
            if req.reply:  # the load was aborted: the error code stays, the reply says so
                raise _Nack(self.error_code)
            raise _Silent()
        try:
            self._load_data(req, load)
        except _Nack:
            if load is not None:
                load.failed = True
            raise
        return b"" if req.reply else None

    def _load_data(self, req, load: _Load | None) -> None:
        if load is None:
            raise _Nack(c.ErrorCode.NOT_ALLOWED_IN_MODE)  # no Initialize Pattern BMP Load
        if self.faults.take("nack_uploads"):
            raise _Nack(c.ErrorCode.INTERNAL_ERROR)
        try:
            chunk = c.decode_bmp_load_data(req.data)
        except CodecError:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER) from None
        if len(load.buf) + len(chunk) > load.expected:
            raise _Nack(c.ErrorCode.INVALID_PARAMETER)
        load.buf += chunk
        if len(load.buf) < load.expected:
            return
        try:
            header, words = decode_image(bytes(load.buf))
        except CodecError as exc:
            if "compression" in str(exc):
                raise _Nack(c.ErrorCode.INVALID_BMP_COMPRESSION) from None
            raise _Nack(c.ErrorCode.INVALID_PATTERN_DEFINITION) from None
        if (header.width, header.height) != (self.width, self.height):
            raise _Nack(c.ErrorCode.INVALID_PARAMETER)
        self._load = None
        self.images[load.index] = words
        self._invalidate()

    # --- test-rig API --------------------------------------------------------------------------

    @property
    def displayed(self) -> int | None:
        """LUT index on the DMD now, or None (stopped, or waiting for the first trigger)."""
        if not self.running or self._position < 0:
            return None
        return self._position

    def trigger(self, n: int = 1) -> np.ndarray:
        """Apply n external trigger pulses; returns the LUT index each one displayed (-1 where
        nothing was displayed: stopped, paused, or the sequence had ended)."""
        if n < 0:
            raise InputError(f"trigger count must be >= 0, got {n}")
        out = np.full(n, -1, dtype=np.int64)
        for i in range(n):
            if not self.running or self.paused or self.lut is None:
                continue
            nl = len(self.lut)
            if self.n_patterns_to_display and self._shown >= self.n_patterns_to_display:
                self.running, self._position = False, -1
                continue
            nxt = (self._position + 1) % nl
            if not self.lut[nxt].wait_for_trigger:
                raise ConfigurationError(
                    f"LUT entry {nxt} is internally timed; the emulator advances only on "
                    "external triggers (load the sequence with trigger_in='external')"
                )
            self._position = nxt
            self._shown += 1
            out[i] = nxt
        return out

    @property
    def content_version(self) -> int:
        """Counter bumped whenever the LUT or a stored image changes (a rig's cache key)."""
        return self._content_version

    def _invalidate(self) -> None:
        self._cache.clear()
        self._content_version += 1

    def pattern_image(self, lut_index: int) -> np.ndarray:
        """(height, width) bool mirror image of LUT entry lut_index (decoded once, cached)."""
        if self.lut is None or not 0 <= lut_index < len(self.lut):
            raise InputError(f"LUT index {lut_index} is not in the configured LUT")
        img = self._cache.get(lut_index)
        if img is None:
            e = self.lut[lut_index]
            if e.image_index not in self.images:
                raise InputError(f"image {e.image_index} of LUT entry {lut_index} is not loaded")
            words = self.images[e.image_index]
            img = ((words >> np.uint32(e.bit_position)) & np.uint32(1)).astype(bool)
            img.flags.writeable = False
            self._cache[lut_index] = img
        return img


from .dlpc900_backend import DLPC900Backend  # noqa: E402  (re-exported: tests and opu.emulated)

__all__ = ["DLPC900Backend", "DLPC900Emulator", "DLPC900Faults"]
