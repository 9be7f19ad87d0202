"""DLPC900 codecs: golden byte vectors from DLPU018 and round-trip properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_iface.dlpc900 import commands as c
from firmware_iface.dlpc900.erle import (
    decode_erle,
    decode_rle,
    decode_uncompressed,
    encode_erle,
    encode_rle,
    encode_uncompressed,
)
from firmware_iface.dlpc900.erle_tokens import iter_erle_tokens
from firmware_iface.dlpc900.images import (
    Compression,
    ImageHeader,
    decode_image,
    decode_image_header,
    encode_image,
    encode_image_header,
    pack_patterns,
    unpack_pattern,
)
from firmware_iface.dlpc900.report import (
    Reply,
    Request,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    join_reports,
    split_message,
)
from firmware_iface.errors import CodecError, InputError

H = bytes.fromhex
PROPS = settings(max_examples=40, deadline=None)


# --- reports: DLPU018 1.2.2 / 1.2.3 examples -----------------------------------------------


def test_read_request_golden():
    # Table 1-5: read curtain colour, flags C0, sequence 0x11, length 2, command 0x1100
    msg = encode_request(Request(0x1100, read=True, reply=True, sequence=0x11))
    assert msg == H("C0 11 02 00 00 11")
    assert split_message(msg, report_id=True)[0][:7] == H("00 C0 11 02 00 00 11")


def test_write_request_golden():
    # Table 1-7: write curtain colour 511,511,511 without reply, sequence 0x12
    msg = encode_request(Request(0x1100, H("FF01FF01FF01"), reply=False, sequence=0x12))
    assert msg == H("00 12 08 00 00 11 FF 01 FF 01 FF 01")
    reports = split_message(msg)
    assert len(reports) == 1 and len(reports[0]) == 64 and reports[0][12:] == bytes(52)


def test_read_reply_golden():
    # Table 1-6: reply C0 11, 6 data bytes FF 01 FF 01 FF 01
    rep = decode_reply(H("C0 11 06 00 FF 01 FF 01 FF 01"))
    assert rep == Reply(0xC0, 0x11, H("FF01FF01FF01")) and not rep.error
    assert decode_reply(H("E0 11 00 00")).error


def test_otf_example_payloads_golden():
    # DLPU018 "Image On-The-Fly" example, steps 1-5
    assert c.encode_display_mode(c.DisplayMode.PATTERN_ON_THE_FLY) == H("03")
    e0 = c.LutEntry(0, 200, 0, 0, color=c.LedColor.RED, wait_for_trigger=False)
    assert c.encode_lut_entry(e0) == H("00 00 C8 00 00 11 00 00 00 00 00 00")
    e1 = c.LutEntry(1, 400, 0, 1, bit_depth=2, color=c.LedColor.GREEN, wait_for_trigger=False)
    assert c.encode_lut_entry(e1) == H("01 00 90 01 00 23 00 00 00 00 00 08")
    assert c.decode_lut_entry(c.encode_lut_entry(e1)) == e1
    assert c.encode_lut_configuration(2, 0) == H("02 00 00 00 00 00")
    assert c.encode_bmp_load_init(0, 6057) == H("00 00 A9 17 00 00")
    assert c.encode_bmp_load_data(bytes(504))[:2] == H("F8 01")
    assert c.encode_bmp_load_data(bytes(9))[:2] == H("09 00")
    assert c.encode_pattern_action(c.PatternAction.START) == H("02")


def test_largest_upload_fills_command_buffer_exactly():
    msg = encode_request(Request(c.Command.BMP_LOAD_DATA, c.encode_bmp_load_data(bytes(504))))
    assert len(msg) == 512 and len(split_message(msg)) == 8
    with pytest.raises(CodecError, match="command buffer"):
        encode_request(Request(0x1A2B, bytes(507)))


@PROPS
@given(
    cmd=st.integers(0, 0xFFFF),
    data=st.binary(max_size=506),
    read=st.booleans(),
    reply=st.booleans(),
    seq=st.integers(0, 255),
    report_id=st.booleans(),
)
def test_request_split_join_roundtrip(cmd, data, read, reply, seq, report_id):
    req = Request(cmd, data, read=read, reply=reply, sequence=seq)
    reports = split_message(encode_request(req), report_id=report_id)
    assert all(len(r) == 64 + report_id for r in reports)
    assert decode_request(join_reports(reports)) == req


@PROPS
@given(flags=st.integers(0, 255), seq=st.integers(0, 255), data=st.binary(max_size=300))
def test_reply_split_join_roundtrip(flags, seq, data):
    rep = Reply(flags, seq, data)
    assert decode_reply(join_reports(split_message(encode_reply(rep)))) == rep


def test_join_refuses_wrong_report_count_and_dirty_padding():
    reports = split_message(encode_request(Request(0x1A2B, bytes(100))))
    with pytest.raises(CodecError):
        join_reports(reports[:1])
    dirty = reports[-1][:-1] + b"\x01"
    with pytest.raises(CodecError, match="padding"):
        join_reports(reports[:-1] + [dirty])


# --- command payloads ----------------------------------------------------------------------


def test_status_and_version_codecs():
    v = c.FirmwareVersion((6, 0, 3), (4, 1, 0), (68, 33, 0), (68, 33, 1))
    raw = c.encode_firmware_version(v)
    assert raw[:4] == H("03 00 00 06") and c.decode_firmware_version(raw) == v
    hw = c.decode_hardware_status(H("01"))
    assert hw.initialized and hw.ok
    bad = c.decode_hardware_status(H("C1"))
    assert bad.sequencer_error and not bad.ok
    assert c.decode_main_status(H("02")).sequencer_running
    text = c.encode_error_description("Internal Error")
    assert c.decode_error_description(text) == "Internal Error"
    assert len(c.encode_error_description("x")) == 128


def test_status_bytes_follow_the_documented_bit_layout():
    # DLPU018 2.1.1: bit 0 initialised, 1-3 and 6-7 errors, 4 secondary controller, 5 reserved;
    # 2.1.3: bits 0-5 parked, sequencer running, video frozen, source locked, port 1/2 syncs
    hw_bits = ["initialized", "incompatible_controller_or_dmd", "dmd_reset_controller_error",
               "forced_swap_error", "secondary_controller_present", None, "sequencer_abort",
               "sequencer_error"]
    main_bits = ["dmd_parked", "sequencer_running", "video_frozen", "external_source_locked",
                 "port1_syncs_valid", "port2_syncs_valid"]
    for byte in range(256):
        hw = c.decode_hardware_status(bytes([byte]))
        for bit, name in enumerate(hw_bits):
            if name is not None:
                assert getattr(hw, name) == bool(byte >> bit & 1), (byte, name)
        assert hw.ok == (byte & 0b1100_1111 == 0b1)
        assert c.encode_hardware_status(hw) == bytes([byte & ~0x20])
        main = c.decode_main_status(bytes([byte]))
        assert [getattr(main, n) for n in main_bits] == [bool(byte >> b & 1) for b in range(6)]
        assert c.encode_main_status(main) == bytes([byte & 0x3F])
    assert c.ErrorCode(16).description == c.ERROR_DESCRIPTIONS[16] == (
        "Invalid pattern definition (errors other than 9-15)")


def test_command_codec_refuses_out_of_range():
    with pytest.raises(CodecError):
        c.encode_lut_entry(c.LutEntry(0, 1 << 24, 0, 0))
    with pytest.raises(CodecError):
        c.encode_lut_entry(c.LutEntry(0, 200, 0, 32))
    with pytest.raises(CodecError):
        c.encode_bmp_load_data(bytes(505))
    with pytest.raises(CodecError):
        c.decode_bmp_load_data(H("05 00 01 02"))
    with pytest.raises(CodecError):
        c.encode_bmp_load_init(18, 100)


# --- compressions: DLPU018 examples ------------------------------------------------------------

RLE_DOC = H(
    "03 040506 05 777777 00 03 040506 070809 0A0B0C 02 789ABC 00 00 000000"
    " 07 1D1E1F 06 212223 00 01"
)
RLE_IMG = np.array(
    [
        [0x040506] * 3 + [0x777777] * 5 + [0x040506, 0x070809, 0x0A0B0C] + [0x789ABC] * 2,
        [0x1D1E1F] * 7 + [0x212223] * 6,
    ],
    np.uint32,
)
ERLE_DOC = H(
    "03 040506 05 777777 00 03 040506 070809 0A0B0C 82 01 789ABC 00 00 01 010203 00 01 09 00 01 00"
)


def test_rle_golden_from_guide():
    assert encode_rle(RLE_IMG) == RLE_DOC
    assert np.array_equal(decode_rle(RLE_DOC, 13, 2), RLE_IMG)


def test_erle_tokens_golden_from_guide():
    toks = list(iter_erle_tokens(ERLE_DOC))
    assert toks == [
        ("repeat", 3, 0x040506),
        ("repeat", 5, 0x777777),
        ("literal", [0x040506, 0x070809, 0x0A0B0C]),
        ("repeat", 130, 0x789ABC),  # 82 01: (0x82 & 0x7F) + (0x01 << 7)
        ("eol",),
        ("repeat", 1, 0x010203),
        ("copy", 9),
        ("end",),
    ]


def test_erle_guide_example_decodes_copy_from_line_above():
    # line 1 of the guide's example (141 pixels); line 2 = its tokens + copy of the rest
    line2_tail = H("00 01 83 01")  # copy 131 = 0x83 0x01
    data = ERLE_DOC[:-3] + line2_tail + H("00 01 00")
    img = decode_erle(data, 141, 2)
    row0 = [0x040506] * 3 + [0x777777] * 5 + [0x040506, 0x070809, 0x0A0B0C] + [0x789ABC] * 130
    assert img[0].tolist() == row0
    # expanded data of "00 01 09" in the guide
    assert img[1, 1:10].tolist() == [0x040506] * 2 + [0x777777] * 5 + [0x040506, 0x070809]
    assert img[1, 0] == 0x010203 and np.array_equal(img[1, 1:], img[0, 1:])


def test_erle_length_encoding_and_copy_line():
    img = np.full((3, 1920), 0x000001, np.uint32)
    # 1920 = 0x780 -> 80 0F ; lines 2 and 3 copy the line above
    assert encode_erle(img) == H("80 0F 000001 00 01 80 0F 00 01 80 0F 00 01 00")


@pytest.mark.parametrize(
    "bad, msg",
    [
        (H("02 000001 00 01 00"), "before the last line"),
        (H("05 000001"), "past the end of the line"),
        (H("00 01 03 00 01 00"), "first line"),
        (H("04 000001 00 01 00 07"), "after end-of-image"),
        (H("04 000001"), "no end-of-image"),
        (H("02 000001 00 00 02 000001 00 01 00"), "middle of a line"),
    ],
)
def test_erle_decoder_is_strict(bad, msg):
    with pytest.raises(CodecError, match=msg):
        decode_erle(bad, 4, 1)


def word_images():
    return st.tuples(st.integers(1, 12), st.integers(1, 40), st.integers(0, 2**32 - 1)).map(
        lambda t: np.random.default_rng(t[2])
        .choice(np.array([0, 1, 0xFFFFFF, 0x800001], np.uint32), size=(t[0], t[1]))
    )


@PROPS
@given(img=word_images())
def test_erle_roundtrip(img):
    h, w = img.shape
    assert np.array_equal(decode_erle(encode_erle(img), w, h), img)


@PROPS
@given(img=word_images())
def test_rle_roundtrip(img):
    h, w = img.shape
    assert np.array_equal(decode_rle(encode_rle(img), w, h), img)


@PROPS
@given(img=word_images())
def test_uncompressed_roundtrip(img):
    h, w = img.shape
    assert np.array_equal(decode_uncompressed(encode_uncompressed(img), w, h), img)


def test_long_runs_and_literals_roundtrip():
    rng = np.random.default_rng(3)
    img = np.zeros((4, 700), np.uint32)
    img[1] = rng.integers(0, 1 << 24, 700)  # 700-pixel literal: 2-byte length
    img[2, :300] = 5  # 300-run: 2-byte length (ERLE), split in 255+45 (RLE)
    for comp in Compression:
        _, back = decode_image(encode_image(img, comp))
        assert np.array_equal(back, img)


# --- images ------------------------------------------------------------------------------------


def test_image_header_golden():
    head = encode_image_header(ImageHeader(1920, 1080, 6009, Compression.ERLE))
    assert head == (
        b"Spld" + H("80 07 38 04 79 17 00 00") + b"\xff" * 8 + H("00 00 00 00 00 02 01") + bytes(21)
    )
    assert len(head) == 48 and decode_image_header(head).data_size == 6009
    with pytest.raises(CodecError, match="signature"):
        decode_image_header(b"Spl!" + head[4:])
    with pytest.raises(CodecError, match="compression"):
        decode_image_header(head[:25] + b"\x03" + head[26:])


def test_pack_puts_pattern_k_on_bit_k():
    rng = np.random.default_rng(4)
    p = rng.random((24, 6, 9)) < 0.5
    words = pack_patterns(p)
    for k in range(24):
        assert np.array_equal(unpack_pattern(words, k), p[k])
    assert words.max() <= 0xFFFFFF
    with pytest.raises(InputError):
        pack_patterns(np.zeros((25, 2, 2), bool))
