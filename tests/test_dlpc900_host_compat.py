"""The DLPC900 emulator accepts what host code that loads real boards sends, and every refusal
that is left has a source (docs/dlpc900.md, "Emulator").

- the TI GUI's image header (USB capture, TI E2E thread 599044; mcSIM copies it): byte 24 = 0x01,
  byte 29 = 0x01, size field = encoded data size;
- Pycrafter6500: flags 0x40 (reply wanted) on every packet, image data included, a reply read
  after each; header size field = total including the 48-byte header, padded to 4 with zeros;
  every ERLE line ends with 00 00, single pixels as 1-pixel repeats.
"""

import struct

import numpy as np
import pytest

from firmware_iface.dlpc900 import commands as c
from firmware_iface.dlpc900 import images as im
from firmware_iface.dlpc900.report import decode_reply, join_reports
from firmware_iface.errors import CodecError
from opu_sim.emulators.dlpc900 import DLPC900Emulator

W, H = 64, 8


def gui_header(data_size: int, compression: int = 2) -> bytes:
    """The 48 header bytes as TI's GUI sends them (E2E 599044)."""
    head = bytearray(b"Spld" + struct.pack("<HHI", W, H, data_size) + b"\xff" * 8 + bytes(4))
    head += bytes([0x01, compression, 0x01, 0x00, 0x00, 0x01]) + bytes(18)
    assert len(head) == im.HEADER_SIZE and head[24] == 1 and head[29] == 1
    return bytes(head)


def pycrafter_erle(words: np.ndarray) -> bytes:
    """ERLE the way Pycrafter6500's encoder writes it: repeats only (also of 1 pixel), `00 00`
    after every line, `00 01 00` at the end, zero padding to 4 bytes."""
    out = bytearray()
    for row in words:
        x = 0
        while x < row.size:
            n = 1
            while x + n < row.size and row[x + n] == row[x] and n < 0x7FFF:
                n += 1
            out += bytes([n]) if n < 128 else bytes([(n & 0x7F) | 0x80, n >> 7])
            v = int(row[x])
            out += bytes([(v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF])
            x += n
        out += b"\x00\x00"
    out += b"\x00\x01\x00"
    out += bytes(-len(out) % 4)
    return bytes(out)


def pycrafter_image(words: np.ndarray) -> bytes:
    body = pycrafter_erle(words)
    total = im.HEADER_SIZE + len(body)
    head = bytearray(im.encode_image_header(im.ImageHeader(W, H, 0, im.Compression.ERLE)))
    struct.pack_into("<I", head, 8, total)  # Pycrafter: size field = total, header included
    return bytes(head) + body


def send(emu, command: int, data: bytes, flags: int = 0x40, seq: int = 0x11):
    """One request framed by hand as Pycrafter6500 does (flags, seq, length LE, command LE);
    returns the decoded reply, or None when the flags ask for none."""
    payload = struct.pack("<H", command) + data
    msg = bytes([flags, seq]) + struct.pack("<H", len(payload)) + payload
    for i in range(0, len(msg), 64):
        emu.receive_report(msg[i : i + 64].ljust(64, b"\0"))
    if not flags & 0x40:
        return None
    first = emu.next_report()
    n = (4 + first[2] + 256 * first[3] + 63) // 64
    return decode_reply(join_reports([first] + [emu.next_report() for _ in range(n - 1)]))


def error_code(emu) -> int:
    return c.decode_error_code(send(emu, c.Command.READ_ERROR_CODE, b"", flags=0xC0).data)


def upload(emu, image: bytes, reply: bool, index: int = 0) -> list:
    """0x1A2A with the image's total size, then 504-byte 0x1A2B chunks; the replies."""
    assert not send(emu, c.Command.BMP_LOAD_INIT, c.encode_bmp_load_init(index, len(image))).error
    flags = 0x40 if reply else 0x00
    return [send(emu, c.Command.BMP_LOAD_DATA, c.encode_bmp_load_data(ch), flags)
            for ch in c.split_image(image)]


@pytest.fixture
def emu():
    e = DLPC900Emulator(width=W, height=H)
    assert not send(e, c.Command.DISPLAY_MODE, b"\x03").error
    return e


@pytest.fixture
def words():
    rng = np.random.default_rng(3)
    # runs of 8 pixels so the stream has repeats of several lengths
    return np.repeat(rng.integers(0, 1 << 24, (H, W // 8), dtype=np.uint32), 8, axis=1)


def test_gui_header_bytes_are_accepted(emu, words):
    body = im.encode_image(words)[im.HEADER_SIZE:]
    image = gui_header(len(body)) + body
    assert im.decode_image_header(image).data_size == len(body)
    replies = upload(emu, image, reply=False)
    assert replies == [None] * len(replies) and error_code(emu) == 0
    assert np.array_equal(emu.images[0], words)


def test_pycrafter_packets_and_header_size_are_accepted(emu, words):
    image = pycrafter_image(words)
    assert len(image) % 4 == 0
    replies = upload(emu, image, reply=True)
    # a reply to every image packet, none an error, the sequence byte echoed
    assert len(replies) >= 1 and all(r is not None and not r.error for r in replies)
    assert all(r.sequence == 0x11 for r in replies)
    assert error_code(emu) == 0
    assert np.array_equal(emu.images[0], words)
    assert np.array_equal(im.unpack_pattern(emu.images[0], 5), ((words >> 5) & 1).astype(bool))


def test_both_size_conventions_decode_the_same_image(words):
    body = im.encode_image(words)[im.HEADER_SIZE:]
    data_size = gui_header(len(body)) + body
    total = gui_header(len(body) + im.HEADER_SIZE) + body
    assert np.array_equal(im.decode_image(data_size)[1], im.decode_image(total)[1])


def test_reply_on_data_of_an_aborted_load_is_a_nack(emu, words):
    emu.faults.nack_uploads = 1
    replies = upload(emu, pycrafter_image(words), reply=True)
    assert all(r.error for r in replies)
    assert error_code(emu) == c.ErrorCode.INTERNAL_ERROR
    assert 0 not in emu.images


@pytest.mark.parametrize(
    "edit, code, match",
    [
        # DLPU018 2.4.2: the signature is "Spld"
        (lambda b: b"Spl!" + b[4:], c.ErrorCode.INVALID_PATTERN_DEFINITION, "signature"),
        # DLPU018 2.4.2: compression 0, 1 or 2 (the controller's code 9)
        (lambda b: b[:25] + b"\x03" + b[26:], c.ErrorCode.INVALID_BMP_COMPRESSION, "compression"),
        # a size field that is neither the data size nor the total
        (lambda b: b[:8] + struct.pack("<I", 7) + b[12:], c.ErrorCode.INVALID_PATTERN_DEFINITION,
         "announces"),
    ],
)
def test_remaining_header_refusals(emu, words, edit, code, match):
    body = im.encode_image(words)[im.HEADER_SIZE:]
    image = edit(gui_header(len(body)) + body)
    with pytest.raises(CodecError, match=match):
        im.decode_image(image)
    upload(emu, image, reply=False)
    assert error_code(emu) == code
    assert 0 not in emu.images
