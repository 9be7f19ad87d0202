"""pyserial URL handler for `fpgaemu://<name>`: a serial port wired to the FPGAEmulator that
`opu_sim.emulators.fpga.register_emulator(name, emu)` registered.

pyserial finds this module through `serial.protocol_handler_packages`, where
`register_emulator` (registry.install_url_handler) adds this package; importing adds nothing.
Reads never sleep: when the board has nothing to send, a read lets simulated time run to the
board's next output, and returns short at once (as after a timeout) if nothing is scheduled.
Port settings (baud rate, parity, ...) are accepted and ignored. The disconnect fault surfaces
as SerialException, as a vanished USB-UART adapter does.
"""

from __future__ import annotations

import urllib.parse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from firmware_iface.errors import LinkDownError

from .link import EmulatorLink
from .registry import get_emulator

__all__ = ["Serial"]


class Serial(SerialBase):
    """Serial-port object of the fpgaemu:// scheme (pyserial SerialBase API)."""

    def __init__(self, *args, **kwargs) -> None:
        self._link: EmulatorLink | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Attach to the registered emulator; SerialException if none or already in use."""
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        parts = urllib.parse.urlsplit(self._port)
        name = parts.netloc or parts.path.lstrip("/")
        if parts.scheme.lower() != "fpgaemu" or not name:
            raise SerialException(f"expected a URL like 'fpgaemu://bench0', got {self._port!r}")
        emulator = get_emulator(name)
        if emulator is None:
            raise SerialException(
                f"no FPGA emulator registered as {name!r}; call "
                "opu_sim.emulators.fpga.register_emulator(name, emulator) first"
            )
        try:
            self._link = emulator.open_link()
        except (LinkDownError, ValueError) as e:
            raise SerialException(f"cannot open {self._port!r}: {e}") from e
        self.is_open = True

    def close(self) -> None:
        """Detach from the emulator (the board stops any run, as on link loss)."""
        if self._link is not None:
            self._link.close()
            self._link = None
        self.is_open = False

    def _reconfigure_port(self, *args, **kwargs) -> None:
        """Port settings have no effect on the emulated link."""

    def _live_link(self) -> EmulatorLink:
        if not self.is_open or self._link is None:
            raise PortNotOpenError()
        return self._link

    @property
    def in_waiting(self) -> int:
        """Bytes the board has sent and the host has not read."""
        try:
            return self._live_link().pending()
        except LinkDownError as e:
            raise SerialException(f"device disconnected: {e}") from e

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes; short only if the board will send nothing more (or timeout=0)."""
        link = self._live_link()
        data = bytearray()
        try:
            while len(data) < size:
                chunk = link.read(size - len(data))
                if chunk:
                    data += chunk
                    continue
                if self._timeout == 0 or not link.advance():
                    break
        except LinkDownError as e:
            raise SerialException(f"device disconnected: {e}") from e
        return bytes(data)

    def write(self, data: bytes) -> int:
        """Send bytes to the board; returns their number."""
        link = self._live_link()
        payload = bytes(data)
        try:
            link.write(payload)
        except LinkDownError as e:
            raise SerialException(f"device disconnected: {e}") from e
        return len(payload)

    def reset_input_buffer(self) -> None:
        """Discard what the board has sent and the host has not read."""
        try:
            self._live_link().read()
        except LinkDownError as e:
            raise SerialException(f"device disconnected: {e}") from e

    def reset_output_buffer(self) -> None:
        """Nothing to do: writes reach the board at once."""

    @property
    def out_waiting(self) -> int:
        """Always 0: writes reach the board at once."""
        return 0

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        """Clear To Send: always True."""
        return True

    @property
    def dsr(self) -> bool:
        """Data Set Ready: always True."""
        return True

    @property
    def ri(self) -> bool:
        """Ring Indicator: always False."""
        return False

    @property
    def cd(self) -> bool:
        """Carrier Detect: always True."""
        return True
