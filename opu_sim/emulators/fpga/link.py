"""The host's end of the emulated UART (`EmulatorLink`), handed out by FPGAEmulator.open_link()."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .board import FPGAEmulator

__all__ = ["EmulatorLink"]


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
        self._emu.link_receive(self._gen, data)

    def read(self, max_bytes: int | None = None) -> bytes:
        """Take up to max_bytes (all if None) of the bytes the board has sent; never waits."""
        return self._emu.link_transmit(self._gen, max_bytes)

    def pending(self) -> int:
        """Bytes sent by the board and not yet read."""
        return self._emu.link_pending(self._gen)

    def advance(self) -> bool:
        """Let simulated time pass to the board's next scheduled output (the end of the next
        frame of a run). False if nothing is scheduled: waiting longer would yield nothing."""
        return self._emu.link_step(self._gen)

    def close(self) -> None:
        """Close the link; the board stops any run, as on a real link loss."""
        self._emu.link_close(self._gen)
