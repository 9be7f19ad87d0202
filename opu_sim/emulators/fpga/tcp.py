"""Loopback TCP server for `socket://127.0.0.1:PORT`: one FPGAEmulator served to one client at
a time, in a background thread (the host side opens it with pyserial's socket:// handler)."""

from __future__ import annotations

import select
import socket
import threading
import time

from firmware_iface.errors import ConfigurationError, LinkDownError

from .board import FPGAEmulator
from .link import EmulatorLink

__all__ = ["TcpEmulatorServer", "serve_tcp"]

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
