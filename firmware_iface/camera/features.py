"""GenICam features through the official GenApi (the `genicam` package's genapi.NodeMap).

`Features(xml, read, write)` loads a device's GenICam XML into a NodeMap and connects it to a
Python port whose read(address, length) / write(address, data) go to the device (the U3V
control channel, or any other register access, e.g. a GenTL port). Every feature is resolved by
the XML: registers, converters, SwissKnife ranges, enumeration entries, availability. Nothing in
this module knows a particular camera.

Host-side checks (raise InputError before anything is written): unknown feature, wrong Python
type for the node, value out of the node's range, enumeration entry unknown or not available,
write to a read-only feature, read of a write-only one. Device refusals come back as the port's
own exception (CameraCommandError for U3V) with the feature name attached.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from genicam import genapi

from ..errors import CameraCommandError, CameraProtocolError, DeviceError, InputError
from ..values import strict_float, strict_int

_NI, _NA, _WO, _RO, _RW = 0, 1, 2, 3, 4
_GENAPI_ERRORS = (
    genapi.AccessException,
    genapi.OutOfRangeException,
    genapi.InvalidArgumentException,
    genapi.LogicalErrorException,
    genapi.DynamicCastException,
    genapi.PropertyException,
)


class _Port(genapi.AbstractPort):
    """GenApi port forwarding to Python callables (bytes in, bytes out)."""

    def __init__(
        self, read: Callable[[int, int], bytes], write: Callable[[int, bytes], None]
    ) -> None:
        super().__init__()
        self._read = read
        self._write = write

    def read(self, address: int, length: int) -> bytes:  # noqa: D102 - GenApi interface
        return bytes(self._read(int(address), int(length)))

    def write(self, address: int, value: bytes) -> None:  # noqa: D102 - GenApi interface
        self._write(int(address), bytes(value))

    def get_access_mode(self) -> int:  # noqa: D102 - GenApi interface
        return genapi.EAccessMode.RW


class Features:
    """A device's GenICam features by name (`get`, `set`, `execute`), resolved by its XML."""

    def __init__(
        self,
        xml: str,
        read: Callable[[int, int], bytes],
        write: Callable[[int, bytes], None],
        port_name: str = "Device",
    ) -> None:
        self._map = genapi.NodeMap()
        try:
            self._map.load_xml_from_string(xml)
        except (*_GENAPI_ERRORS, genapi.GenericException, genapi.RuntimeException) as e:
            raise CameraProtocolError(f"the camera's GenICam XML does not load: {e}") from e
        self._port = _Port(read, write)
        self._map.connect(self._port, port_name)

    @classmethod
    def from_node_map(cls, node_map: genapi.NodeMap) -> Features:
        """Features over a node map something else loaded and connected (a GenTL producer's
        remote device node map, through harvesters)."""
        self = cls.__new__(cls)
        self._map = node_map
        self._port = None
        return self

    @property
    def node_map(self) -> genapi.NodeMap:
        """The underlying genapi.NodeMap."""
        return self._map

    def has(self, name: str) -> bool:
        """True when the XML defines a feature of this name that is implemented."""
        if not isinstance(name, str) or not self._map.has_node(name):
            return False
        return self._map.get_node(name).node.get_access_mode() != _NI

    def writable(self, name: str) -> bool:
        """True when the feature can be written now (access mode WO or RW)."""
        return self._node(name).node.get_access_mode() in (_WO, _RW)

    def _node(self, name: str) -> Any:
        if not isinstance(name, str) or not self._map.has_node(name):
            raise InputError(f"the camera has no feature {name!r} (not in its GenICam XML)")
        return self._map.get_node(name)

    def kind(self, name: str) -> str:
        """Interface of the feature: "IInteger", "IFloat", "IEnumeration", "IBoolean",
        "IString", "ICommand", "IRegister" or "ICategory"."""
        return type(self._node(name)).__name__

    def symbolics(self, name: str) -> tuple[str, ...]:
        """Available entries of an enumeration feature."""
        node = self._node(name)
        if not isinstance(node, genapi.IEnumeration):
            raise InputError(f"{name} is not an enumeration")
        return tuple(node.symbolics)

    def range(self, name: str) -> tuple[float, float]:
        """(min, max) of an integer or float feature, as the XML computes them now."""
        node = self._node(name)
        if not isinstance(node, (genapi.IInteger, genapi.IFloat)):
            raise InputError(f"{name} is not a number feature")
        return self._call(name, lambda: (node.min, node.max))

    def get(self, name: str) -> int | float | str | bool:
        """Current value (enumerations as their symbolic name, e.g. "Mono12p")."""
        node = self._node(name)
        if isinstance(node, genapi.ICommand):
            raise InputError(f"{name} is a command: it has no value to read; use execute()")
        _check_access(name, node, (_RO, _RW), "is not readable now")
        if isinstance(node, genapi.IEnumeration):
            return self._call(name, lambda: node.get_current_entry().symbolic)
        if isinstance(node, genapi.IRegister):
            return self._call(name, lambda: bytes(node.get(node.get_length())))
        return self._call(name, lambda: node.value)

    def set(self, name: str, value: Any) -> None:
        """Write a feature; the value is checked against the node's type, range and entries."""
        node = self._node(name)
        if isinstance(node, genapi.ICommand):
            raise InputError(f"{name} is a command: use execute({name!r})")
        _check_access(name, node, (_WO, _RW), "is not writable now")
        v = _checked_value(name, node, value)
        if isinstance(node, genapi.IEnumeration):
            self._call(name, lambda: node.set_int_value(v))
        else:
            self._call(name, lambda: setattr(node, "value", v))

    def execute(self, name: str) -> None:
        """Run a command feature (AcquisitionStart, ...)."""
        node = self._node(name)
        if not isinstance(node, genapi.ICommand):
            raise InputError(f"{name} is not a command; use set()")
        _check_access(name, node, (_WO, _RW), "cannot be executed now")
        self._call(name, node.execute)

    def _call(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _GENAPI_ERRORS as e:
            raise InputError(f"{name}: {_short(e)}") from e
        except CameraCommandError as e:  # the device refused: the same error, naming the feature
            self._map.get_node(name).node.invalidate_node()  # the device kept its old value
            raise CameraCommandError(f"{name}: {e}", e.status, e.feature or name) from e
        except DeviceError as e:  # timeout, disconnect, ...: the driver's own error object
            self._map.get_node(name).node.invalidate_node()
            e.add_note(f"while accessing camera feature {name}")
            raise
        except (genapi.GenericException, genapi.RuntimeException) as e:
            raise CameraProtocolError(f"{name}: GenApi failed ({_short(e)})") from e


def sensor_size(f: Features) -> tuple[int, int]:
    """(width, height) of the sensor, pixels: SensorWidth/SensorHeight, else WidthMax/HeightMax,
    else the largest Width/Height the XML allows."""
    for w, h in (("SensorWidth", "SensorHeight"), ("WidthMax", "HeightMax")):
        if f.has(w) and f.has(h):
            return int(f.get(w)), int(f.get(h))
    return int(f.range("Width")[1]), int(f.range("Height")[1])


def sensor_bit_depth(f: Features, known: dict[str, int]) -> int:
    """PixelBitDepth if the camera has it, else the most significant bits among its pixel
    formats that `known` (format name -> bits) lists. CameraProtocolError when it has none."""
    if f.has("PixelBitDepth"):
        return int(f.get("PixelBitDepth"))
    offered = f.symbolics("PixelFormat")
    bits = [known[s] for s in offered if s in known]
    if not bits:
        raise CameraProtocolError(
            f"the camera offers none of the pixel formats this driver reads ({sorted(known)}); "
            f"it offers {list(offered)}"
        )
    return max(bits)


def _check_access(name: str, node: Any, allowed: tuple[int, ...], refusal: str) -> None:
    """InputError "<name> <refusal> (<access mode>)" unless the node's access mode is allowed."""
    mode = node.node.get_access_mode()
    if mode not in allowed:
        raise InputError(f"{name} {refusal} ({_mode_name(mode)})")


def _mode_name(mode: int) -> str:
    return {
        _NI: "not implemented",
        _NA: "not available",
        _WO: "write-only",
        _RO: "read-only",
        _RW: "read/write",
    }.get(mode, str(mode))


def _short(e: Exception) -> str:
    return str(e).split(" : ")[0]


def _checked_value(name: str, node: Any, value: Any) -> Any:
    """The value to hand GenApi for this node, or InputError for a wrong type."""
    if isinstance(node, genapi.IInteger):
        return strict_int(value, name, InputError)
    if isinstance(node, genapi.IFloat):
        return strict_float(value, name, InputError)
    if isinstance(node, genapi.IEnumeration):
        return _enum_value(name, node, value)
    if isinstance(node, genapi.IBoolean):
        if not isinstance(value, bool):
            raise InputError(f"{name} takes True or False, got {value!r}")
        return value
    if isinstance(node, genapi.IString):
        if not isinstance(value, str):
            raise InputError(f"{name} takes a string, got {value!r}")
        return value
    raise InputError(f"{name} ({type(node).__name__}) cannot be set through this interface")


def _enum_value(name: str, node: Any, value: Any) -> int:
    """Integer value of an enumeration entry given by symbolic name or by value."""
    available = {e.symbolic: e.value for e in node.entries if e.node.get_access_mode() >= _RO}
    if isinstance(value, str):
        if value not in available:
            raise InputError(
                f"{name} has no available entry {value!r}; use one of {sorted(available)}"
            )
        return available[value]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} takes an entry name, got {value!r}")
    if int(value) not in available.values():
        raise InputError(f"{name} has no available entry with value {int(value):#x}")
    return int(value)
