"""Time models of the DLPC900's two pattern paths (pure arithmetic, seconds and microseconds).

- **On-the-fly upload over USB** ("usb"): patterns travel as ERLE images in 0x1A2B commands of
  at most 512 bytes, split into 64-byte HID reports. The controller's USB port is USB 1.1
  full-speed HID with an interrupt endpoint polled once per frame (bInterval = 1 ms): one
  64-byte report per millisecond per direction. A command that waits for its reply costs its
  OUT reports plus its IN reports; image data (no reply) streams its OUT reports. So an
  image's upload time follows from its ERLE size; once uploaded, the sequencer shows a pattern
  per trigger at up to 9,523 Hz (105 us per 1-bit pattern).
- **Video-pattern mode** ("video"): 24-bit RGB frames on the video input at `refresh_hz` (60 or
  120 Hz); each frame's 24 bit planes are 24 one-bit patterns shown within the frame, VSYNC
  locked: 1,440 patterns/s at 60 Hz, 2,880/s at 120 Hz. Switching into the mode takes about
  300 ms (DLPU018 2.4.1, Display Mode Selection note). New patterns cost no USB time.

`PathTiming` is what a device reports: the time per pattern (`frame_period_us`) and what a call
of n patterns will cost (`call_s`), used by OPUHardware, the benchmarks and the DFA scaling
study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from .commands import MAX_BMP_CHUNK, MIN_EXPOSURE_1BIT_US
from .images import HEADER_SIZE, PATTERNS_PER_IMAGE
from .report import COMMAND_BUFFER_SIZE, REPORT_SIZE

USB_FULL_SPEED_REPORTS_PER_S = 1000.0
"""Full-speed interrupt endpoint with bInterval = 1: one 64-byte report per 1 ms frame per
direction (USB 1.1 full speed; the DLPC900's HID port)."""
VIDEO_MODE_SWITCH_S = 0.3
"""DLPU018 2.4.1 (0x1A1B note): ~300 ms from sync lock to video-pattern mode."""
OTF_MAX_PATTERN_RATE_HZ = 1e6 / MIN_EXPOSURE_1BIT_US
"""Fastest 1-bit pattern rate of the sequencer (105 us per pattern, DLP6500)."""
PATH_NAMES = ("usb", "video")


def _reports(n_bytes: int) -> int:
    return max(1, math.ceil(n_bytes / REPORT_SIZE))


@dataclass(frozen=True)
class UsbLink:
    """The controller's HID link: reports_per_s per direction (default USB 1.1 full speed)."""

    reports_per_s: float = USB_FULL_SPEED_REPORTS_PER_S

    def __post_init__(self) -> None:
        if not self.reports_per_s > 0:
            raise InputError(f"reports_per_s must be > 0, got {self.reports_per_s!r}")

    def command_s(self, payload: int, reply: int | None = 0) -> float:
        """Seconds of one command with `payload` bytes after the 4-byte header; reply: bytes
        of the reply payload (None: no reply asked for)."""
        n = _reports(4 + payload) + (0 if reply is None else _reports(4 + reply))
        return n / self.reports_per_s

    def image_reports(self, n_bytes: int) -> int:
        """OUT reports of one image of n_bytes (header included) in 504-byte chunks."""
        full, rest = divmod(n_bytes, MAX_BMP_CHUNK)
        per_full = _reports(COMMAND_BUFFER_SIZE)  # 4 + 2 + 2 + 504 = 512 bytes: 8 reports
        return full * per_full + (_reports(8 + rest) if rest else 0)

    def upload_s(self, image_sizes: list[int] | tuple[int, ...], n_patterns: int) -> float:
        """Seconds to load a pattern-on-the-fly sequence as the driver does: stop + mode, one
        LUT definition per pattern and the LUT configuration (each with a reply), then per image
        0x1A2A (reply), its data (no reply) and an error-code read (reply)."""
        t = 2 * self.command_s(3) + n_patterns * self.command_s(2 + 12) + self.command_s(2 + 6)
        for size in image_sizes:
            t += self.command_s(2 + 6) + self.image_reports(size) / self.reports_per_s
            t += self.command_s(2, reply=1)
        return t


@dataclass(frozen=True)
class PathTiming:
    """Time model of one pattern path, as the device reports it.

    path: "usb" (on-the-fly upload, then triggered display) or "video" (video-pattern mode).
    pattern_period_us: display time per pattern (the device's frame_period_us).
    refresh_hz: video frames per second (video path). link: the USB link (usb path).
    camera_readout_us: camera time per frame (exposure + readout), the floor of the period.
    """

    path: str
    pattern_period_us: float
    refresh_hz: float = 0.0
    link: UsbLink = UsbLink()
    camera_readout_us: float = 0.0

    def __post_init__(self) -> None:
        if self.path not in PATH_NAMES:
            raise InputError(f"pattern path must be one of {PATH_NAMES}, got {self.path!r}")

    @classmethod
    def usb(cls, pattern_period_us: float = 110.0, link: UsbLink | None = None,
            camera_readout_us: float = 0.0) -> PathTiming:
        """On-the-fly uploads over the USB link, then one pattern per FPGA trigger."""
        period = max(float(pattern_period_us), MIN_EXPOSURE_1BIT_US, camera_readout_us)
        return cls("usb", period, 0.0, link or UsbLink(), camera_readout_us)

    @classmethod
    def video(cls, refresh_hz: float = 120.0, camera_readout_us: float = 0.0) -> PathTiming:
        """Video-pattern mode at refresh_hz, 24 patterns per frame."""
        if not 0 < refresh_hz <= 120:
            raise InputError(f"the DLPC900 takes 1..120 Hz video, got {refresh_hz!r} Hz")
        period = 1e6 / (refresh_hz * PATTERNS_PER_IMAGE)
        if camera_readout_us > period:
            raise InputError(
                f"the camera needs {camera_readout_us:g} us per frame, longer than a "
                f"video pattern ({period:.1f} us at {refresh_hz:g} Hz): lower the refresh rate"
            )
        return cls("video", period, float(refresh_hz), UsbLink(), camera_readout_us)

    @property
    def frame_period_us(self) -> float:
        """Time per pattern (= per camera frame), microseconds."""
        return self.pattern_period_us

    @property
    def patterns_per_s(self) -> float:
        """Pattern rate of a long run of new patterns."""
        return 1e6 / self.pattern_period_us

    def upload_s(self, n_patterns: int, image_bytes: int | None = None) -> float:
        """Seconds to bring n_patterns new patterns to the controller: USB upload (usb path;
        image_bytes per 24-pattern image, default a full-resolution random image) or 0."""
        if self.path == "video" or n_patterns <= 0:
            return 0.0
        size = image_bytes if image_bytes is not None else HEADER_SIZE + 1920 * 1080 * 3
        n_images = math.ceil(n_patterns / PATTERNS_PER_IMAGE)
        return self.link.upload_s([size] * n_images, n_patterns)

    def call_s(self, n_frames: int, n_new_patterns: int | None = None,
               image_bytes: int | None = None) -> float:
        """Seconds of one acquisition of n_frames frames showing n_new_patterns patterns the
        controller does not hold yet (default: all of them): upload + display. The video path
        shows whole frames: n_frames rounded up to 24."""
        n_new = n_frames if n_new_patterns is None else n_new_patterns
        if self.path == "video":
            frames = math.ceil(n_frames / PATTERNS_PER_IMAGE) + 1  # +1: wait for the next vsync
            return frames / self.refresh_hz
        return self.upload_s(n_new, image_bytes) + n_frames * self.pattern_period_us * 1e-6
