"""USB identity and layout of the camera (shared by the host transport and the device emulator).

One configuration (bConfigurationValue 1) with an interface association descriptor and two
USB3 Vision interfaces (class 0xEF, subclass 0x05):

- interface 0, protocol 0x00 (control): bulk OUT 0x01 (commands), bulk IN 0x81 (acknowledges);
  its class-specific USB3 Vision device info descriptor follows the interface descriptor;
- interface 1, protocol 0x02 (streaming): bulk IN 0x82 (leader, payload, trailer transfers).

The default vendor/product ids are the pid.codes test ids (0x1209/0x0001): a real camera is
opened by passing its own ids to `Camera(vendor_id=..., product_id=...)`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import CodecError

DEFAULT_VENDOR_ID = 0x1209
DEFAULT_PRODUCT_ID = 0x0001
CONFIGURATION_VALUE = 1
U3V_INTERFACE_CLASS = 0xEF
U3V_INTERFACE_SUBCLASS = 0x05
PROTOCOL_CONTROL = 0x00
PROTOCOL_STREAM = 0x02
CONTROL_INTERFACE = 0
STREAM_INTERFACE = 1
EP_CONTROL_OUT = 0x01
EP_CONTROL_IN = 0x81
EP_STREAM_IN = 0x82
MAX_PACKET_SIZE = 1024  # SuperSpeed bulk

# ---- class-specific descriptors (layouts as in the AIA's Wireshark dissector packet-u3v.c) ----

#: interface association descriptor (USB ECN): bLength 8, type 0x0B, first interface,
#: interface count, function class/subclass/protocol, iFunction
IAD_TYPE = 0x0B
IAD = struct.Struct("<BBBBBBBB")
#: USB3 Vision device info descriptor: bLength, type 0x24, subtype 0x01, GenCP version u32,
#: U3V version u32 (major << 16 | minor), 8 string indexes (GUID, vendor, model, family,
#: device version, manufacturer info, serial number, user defined name), bmSpeedSupport
DEVICE_INFO_TYPE = 0x24
DEVICE_INFO_SUBTYPE = 0x01
DEVICE_INFO = struct.Struct("<BBBII8BB")
SPEED_SUPER = 0x08


@dataclass(frozen=True)
class DeviceInfoDescriptor:
    """The USB3 Vision device info descriptor of the control interface."""

    gencp_version: int
    u3v_version: int
    string_indexes: tuple[int, ...]  # GUID, vendor, model, family, version, info, serial, user
    speed_support: int

    @property
    def serial_index(self) -> int:
        """String descriptor index of the serial number."""
        return self.string_indexes[6]


def encode_iad(first_interface: int, count: int) -> bytes:
    """Interface association descriptor grouping the USB3 Vision interfaces."""
    return IAD.pack(
        8, IAD_TYPE, first_interface, count, U3V_INTERFACE_CLASS, U3V_INTERFACE_SUBCLASS, 0x00, 0
    )


def encode_device_info(d: DeviceInfoDescriptor) -> bytes:
    """Device info descriptor bytes (20)."""
    return DEVICE_INFO.pack(
        DEVICE_INFO.size,
        DEVICE_INFO_TYPE,
        DEVICE_INFO_SUBTYPE,
        d.gencp_version,
        d.u3v_version,
        *d.string_indexes,
        d.speed_support,
    )


def find_device_info(extra: bytes) -> DeviceInfoDescriptor | None:
    """The device info descriptor among an interface's extra descriptors (None when absent).
    CodecError when the descriptor chain is malformed."""
    extra = bytes(extra)
    i = 0
    while i < len(extra):
        length = extra[i]
        if length < 2 or i + length > len(extra):
            raise CodecError(f"malformed descriptor of length {length} at offset {i}")
        if extra[i + 1] == DEVICE_INFO_TYPE and length >= DEVICE_INFO.size:
            if extra[i + 2] == DEVICE_INFO_SUBTYPE:
                _l, _t, _s, gencp, u3v, *rest = DEVICE_INFO.unpack_from(extra, i)
                return DeviceInfoDescriptor(gencp, u3v, tuple(rest[:8]), rest[8])
        i += length
    return None
