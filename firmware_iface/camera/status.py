"""Status codes carried in control acknowledges and stream trailers (GenCP / USB3 Vision values,
as listed by the AIA's Wireshark dissector packet-u3v.c and Aravis' arvuvcpprivate.h)."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """16-bit status of an acknowledge (control channel) or a trailer (stream channel).

    GenCP codes 0x8000..0x8FFF answer commands; 0xA0xx codes are USB3 Vision specific;
    0xA1xx codes describe stream blocks.
    """

    SUCCESS = 0x0000
    NOT_IMPLEMENTED = 0x8001  # unknown command id
    INVALID_PARAMETER = 0x8002  # value out of range, unsupported pixel format, ROI off the sensor
    INVALID_ADDRESS = 0x8003  # no register at this address
    WRITE_PROTECT = 0x8004  # write to a register that is read-only (by its nature)
    BAD_ALIGNMENT = 0x8005  # address inside a register, not at its start
    ACCESS_DENIED = 0x8006  # access not allowed now: read of a command, write while acquiring
    BUSY = 0x8007  # device cannot take the command now; retry later
    MSG_TIMEOUT = 0x800B
    INVALID_HEADER = 0x800E  # bad prefix, length field inconsistent with the transfer
    WRONG_CONFIG = 0x800F
    GENERIC_ERROR = 0x8FFF
    RESEND_NOT_SUPPORTED = 0xA001
    DSI_ENDPOINT_HALTED = 0xA002
    SI_PAYLOAD_SIZE_NOT_ALIGNED = 0xA003  # a SIRM transfer size is not a multiple of alignment
    SI_REGISTERS_INCONSISTENT = 0xA004  # SIRM transfers cannot carry the leader/payload/trailer
    DATA_DISCARDED = 0xA100  # trailer: the device discarded (part of) the block's data
    DATA_OVERRUN = 0xA101  # trailer: the block was larger than the configured transfers


#: what a technician should do about a refusal, by status
ADVICE: dict[int, str] = {
    Status.WRITE_PROTECT: "the register is read-only",
    Status.ACCESS_DENIED: "not allowed in the camera's current state (stop acquisition first?)",
    Status.INVALID_PARAMETER: "the value is outside what the camera accepts",
    Status.SI_REGISTERS_INCONSISTENT: (
        "the stream transfer sizes do not cover the camera's leader/payload/trailer; "
        "stop, reconfigure and start again"
    ),
    Status.SI_PAYLOAD_SIZE_NOT_ALIGNED: (
        "a stream transfer size is not a multiple of the camera's alignment (SI_Info)"
    ),
}


def describe(code: int) -> str:
    """Name of a status code, or its hex value when unknown."""
    try:
        return Status(code).name
    except ValueError:
        return f"unknown status {code:#06x}"
