"""The host side of video-pattern mode: RGB888 frames presented at vsync in a borderless
full-screen window on the display that feeds the DLPC900's video input (DisplayPort / HDMI),
through SDL2 (pygame).

The window is as large as the DMD (1920 x 1080 for the DLP6500), placed on SDL display
`display` (the controller's input, set up in the OS as a 1920 x 1080 display at 60 or 120 Hz
with no scaling), borderless and full-screen so no compositor or window decoration touches the
pixels. Each `present()` blits one frame and flips at vsync; it returns the host's monotonic
time after the flip, which the acquisition uses to tell which vsync latched which frame
(firmware_iface.dlpc900.video_sync). `read_back()` returns what the window shows, so a test
(or a bench check before a run) can verify the bit planes.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..errors import ConfigurationError, DeviceError, InputError
from .images import DMD_HEIGHT, DMD_WIDTH


class VideoWindow:
    """A borderless full-screen SDL2 window that presents RGB888 frames at vsync.

    width, height: frame size in pixels (the DMD's). display: SDL display index of the
    controller's video input. vsync: ask SDL for vsync-locked flips (falls back to unlocked
    flips where the video driver cannot, e.g. a virtual X server; `self.vsync` says which).
    fullscreen: borderless full-screen (False: a plain borderless window, for debugging).
    """

    def __init__(
        self,
        width: int = DMD_WIDTH,
        height: int = DMD_HEIGHT,
        display: int = 0,
        vsync: bool = True,
        fullscreen: bool = True,
    ) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame  # noqa: PLC0415 - optional at import time of the driver package
        except ImportError as e:  # pragma: no cover - pygame is a dependency
            raise ConfigurationError(
                "video-pattern mode presents frames through pygame (SDL2): pip install pygame"
            ) from e
        if width < 1 or height < 1:
            raise InputError(f"window size must be positive, got {width}x{height}")
        self._pg = pygame
        self.width, self.height = int(width), int(height)
        self.presented = 0
        pygame.display.init()
        n = pygame.display.get_num_displays()
        if not 0 <= display < n:
            pygame.display.quit()
            raise ConfigurationError(
                f"SDL display {display} does not exist ({n} display(s) found); connect the "
                "DLPC900's video input and set dmd.video_display to its index"
            )
        flags = pygame.NOFRAME | (pygame.FULLSCREEN if fullscreen else 0)
        self.vsync = False
        surface = None
        if vsync:
            try:
                surface = pygame.display.set_mode(
                    (self.width, self.height), flags | pygame.SCALED, display=display, vsync=1
                )
                self.vsync = True
            except pygame.error:
                surface = None  # no vsync on this video driver: unlocked flips below
        if surface is None:
            try:
                surface = pygame.display.set_mode((self.width, self.height), flags,
                                                  display=display)
            except pygame.error as e:
                pygame.display.quit()
                raise DeviceError(f"could not open the video window: {e}") from e
        pygame.mouse.set_visible(False)
        self._surface = surface
        self.display = display

    def present(self, frame: np.ndarray) -> int:
        """Show one (height, width, 3) uint8 RGB888 frame from the next vsync on; returns the
        host's time.monotonic_ns() after the flip."""
        f = np.asarray(frame)
        if f.shape != (self.height, self.width, 3) or f.dtype != np.uint8:
            raise InputError(
                f"a video frame for this window is ({self.height}, {self.width}, 3) uint8, got "
                f"{f.dtype} {f.shape}"
            )
        pg = self._pg
        image = pg.image.frombuffer(np.ascontiguousarray(f).data, (self.width, self.height),
                                    "RGB")
        self._surface.blit(image, (0, 0))
        pg.display.flip()
        pg.event.pump()  # keep the window responsive (the OS would flag it as hung)
        self.presented += 1
        return time.monotonic_ns()

    def read_back(self) -> np.ndarray:
        """(height, width, 3) uint8: the pixels the window shows now."""
        raw = self._pg.image.tobytes(self._pg.display.get_surface(), "RGB")
        return np.frombuffer(raw, np.uint8).reshape(self.height, self.width, 3).copy()

    def close(self) -> None:
        """Close the window (the controller then loses its video source)."""
        if self._pg is not None:
            self._pg.display.quit()
            self._pg = None

    def __enter__(self) -> VideoWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
