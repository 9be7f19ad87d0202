"""Status codes carried in control acknowledges and stream trailers (GenCP / USB3 Vision values)."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """16-bit status of an acknowledge (control channel) or a trailer (stream channel).

    GenCP codes 0x8000..0x8FFF answer commands; 0xA1xx codes describe stream blocks.
    """

    SUCCESS = 0x0000
    NOT_IMPLEMENTED = 0x8001  # unknown command id
    INVALID_PARAMETER = 0x8002  # value out of range, unsupported pixel format, ROI off the sensor
    INVALID_ADDRESS = 0x8003  # no register at this address
    WRITE_PROTECT = 0x8004  # (reserved by GenCP; this camera answers ACCESS_DENIED instead)
    BAD_ALIGNMENT = 0x8005  # address inside a register, not at its start
    ACCESS_DENIED = (
        0x8006  # write to a read-only register, or to an image-format one while acquiring
    )
    BUSY = 0x8007  # device cannot take the command now; retry later
    MSG_TIMEOUT = 0x800B
    INVALID_HEADER = 0x800E  # bad prefix, length field inconsistent with the transfer
    WRONG_CONFIG = 0x800F
    GENERIC_ERROR = 0x8FFF
    DATA_DISCARDED = 0xA100  # trailer: the device discarded (part of) the block's data


def describe(code: int) -> str:
    """Name of a status code, or its hex value when unknown."""
    try:
        return Status(code).name
    except ValueError:
        return f"unknown status {code:#06x}"
