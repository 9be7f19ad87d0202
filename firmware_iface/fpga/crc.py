"""CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740): width 16, polynomial 0x1021, init 0xFFFF,
not reflected, no final XOR. Check value: crc16_ccitt_false(b"123456789") == 0x29B1.

The standard library's `binascii.crc_hqx` computes this polynomial, unreflected, from a given
start value, in C; `crc16_ccitt_false_table` is a table-driven reference of the same function
(what firmware would run) and the tests hold both to a bit-at-a-time reference.
"""

from __future__ import annotations

import binascii

__all__ = ["CRC16_CHECK", "crc16_ccitt_false", "crc16_ccitt_false_table"]

CRC16_CHECK = 0x29B1  # CRC of b"123456789" (the catalogue's check value)
_POLY = 0x1021
_INIT = 0xFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_ccitt_false(data: bytes, crc: int = _INIT) -> int:
    """CRC-16/CCITT-FALSE of `data` as an int in [0, 0xFFFF]; pass a previous result as `crc`
    to continue over concatenated data."""
    return binascii.crc_hqx(bytes(data), crc)


def crc16_ccitt_false_table(data: bytes, crc: int = _INIT) -> int:
    """Same as crc16_ccitt_false, one table lookup per byte (pure Python reference)."""
    table = _TABLE
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc
