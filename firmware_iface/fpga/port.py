"""The FPGA driver's end of the UART: a pyserial port (any `serial_for_url` URL) carrying
COBS frames, with pyserial failures turned into the stack's typed errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import serial

from ..errors import DeviceDisconnectedError, DeviceNotFoundError, DeviceTimeoutError
from .errors import FrameCodecError
from .frame import split_stream
from .messages import Message, decode_message

__all__ = ["FramePort"]


class FramePort:
    """An open serial port to the board. `on_vanished(error)` is called (then the error is
    raised) when the port fails as a vanished USB-UART adapter does; `on_decode_error()` for
    every received frame that fails its COBS/CRC/format checks."""

    def __init__(
        self,
        url: str,
        baudrate: int,
        timeout_s: float,
        on_vanished: Callable[[DeviceDisconnectedError], None],
        on_decode_error: Callable[[], None],
    ) -> None:
        self.url = url
        self._on_vanished = on_vanished
        self._on_decode_error = on_decode_error
        self._rx = b""
        try:
            self._port = serial.serial_for_url(
                url, baudrate=baudrate, timeout=timeout_s, write_timeout=timeout_s
            )
        except (ValueError, serial.SerialException, OSError) as e:
            raise DeviceNotFoundError(
                f"cannot open the FPGA timing board at {url!r}: {e}; check the port name or "
                "URL (and, for an emulator, that it is registered or served)"
            ) from e

    def write(self, wire: bytes) -> None:
        """Send bytes (a whole delimited frame)."""
        try:
            self._port.write(wire)
        except serial.SerialTimeoutException as e:
            raise DeviceTimeoutError(
                f"writing to the FPGA timing board at {self.url!r} timed out: {e}"
            ) from e
        except (serial.SerialException, OSError) as e:
            raise self._vanished(e) from e

    def receive(self) -> bool:
        """Read what has arrived (at least one byte, waiting up to the port's timeout) into the
        receive buffer; False if nothing came."""
        try:
            waiting = self._port.in_waiting
            data = self._port.read(waiting if waiting > 0 else 1)
        except (serial.SerialException, OSError) as e:
            raise self._vanished(e) from e
        self._rx += data
        return bool(data)

    def frames(self) -> Iterator[tuple[int, Message] | None]:
        """Decode the buffered complete frames: (seq, message) per good one, None per bad one."""
        chunks, self._rx = split_stream(self._rx)
        for chunk in chunks:
            try:
                yield decode_message(chunk)
            except FrameCodecError:
                self._on_decode_error()
                yield None

    def idle(self) -> bool:
        """True if nothing more is waiting to be read."""
        try:
            return self._port.in_waiting == 0
        except (serial.SerialException, OSError):
            return True  # the next read reports the disconnection

    def reset_input(self) -> None:
        """Discard what has arrived and not been read."""
        self._port.reset_input_buffer()
        self._rx = b""

    def close(self) -> None:
        """Close the port (a vanished one may fail to close; it is closed either way)."""
        try:
            self._port.close()
        except Exception:  # noqa: BLE001 - any failure leaves the port unusable: closed
            pass

    def _vanished(self, e: BaseException) -> DeviceDisconnectedError:
        err = DeviceDisconnectedError(
            f"the FPGA timing board at {self.url!r} vanished ({e}); reconnect it and open "
            "a new FPGATimingBoard"
        )
        self._on_vanished(err)
        return err
