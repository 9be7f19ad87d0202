"""Names for `fpgaemu://<name>` URLs, and the explicit installation of that URL scheme.

pyserial's `serial_for_url` finds a scheme's handler module `<package>.protocol_<scheme>` in
the packages listed in `serial.protocol_handler_packages`. `install_url_handler()` adds this
package there; `register_emulator` calls it, so a `fpgaemu://` URL works exactly when an
emulator has been registered, and importing the emulator changes nothing in pyserial.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import serial

from firmware_iface.errors import ConfigurationError

if TYPE_CHECKING:
    from .board import FPGAEmulator

__all__ = [
    "HANDLER_PACKAGE",
    "get_emulator",
    "install_url_handler",
    "register_emulator",
    "unregister_emulator",
]

HANDLER_PACKAGE = __name__.rpartition(".")[0]  # holds protocol_fpgaemu.py

_REGISTRY: dict[str, FPGAEmulator] = {}
_REGISTRY_LOCK = threading.Lock()


def install_url_handler() -> None:
    """Make pyserial's serial_for_url understand `fpgaemu://` (idempotent)."""
    with _REGISTRY_LOCK:
        if HANDLER_PACKAGE not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def register_emulator(name: str, emulator: FPGAEmulator, *, replace: bool = False) -> str:
    """Make `fpgaemu://<name>` reach `emulator` (installing the URL scheme); returns that URL.
    Raises ConfigurationError if the name is taken (pass replace=True to rebind it) or not a
    plain name."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigurationError(
            f"emulator name {name!r} must be non-empty letters, digits, '-', '_' or '.'"
        )
    install_url_handler()
    with _REGISTRY_LOCK:
        if name in _REGISTRY and _REGISTRY[name] is not emulator and not replace:
            raise ConfigurationError(
                f"an FPGA emulator is already registered as {name!r}; unregister it or pass "
                "replace=True"
            )
        _REGISTRY[name] = emulator
    return f"fpgaemu://{name}"


def unregister_emulator(name: str) -> None:
    """Forget the emulator registered as `name` (no error if there is none)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


def get_emulator(name: str) -> FPGAEmulator | None:
    """The emulator registered as `name`, or None."""
    with _REGISTRY_LOCK:
        return _REGISTRY.get(name)
