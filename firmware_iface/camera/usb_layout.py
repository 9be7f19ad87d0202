"""USB identity and layout of the camera (shared by the host transport and the device emulator).

One configuration (bConfigurationValue 1) with two USB3 Vision interfaces (class 0xEF,
subclass 0x05):

- interface 0, protocol 0x00 (control): bulk OUT 0x01 (commands), bulk IN 0x81 (acknowledges);
- interface 1, protocol 0x02 (streaming): bulk IN 0x82 (leader, payload, trailer transfers).

The default vendor/product ids are the pid.codes test ids (0x1209/0x0001): a real camera is
opened by passing its own ids to `Camera(vendor_id=..., product_id=...)`.
"""

from __future__ import annotations

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
