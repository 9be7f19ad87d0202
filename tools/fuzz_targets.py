"""Fuzz targets: every decoder of the stack, its golden seed inputs and its typed errors.

A target is a function of one byte string. It must return normally or raise one of its
`allowed` exception types (the codec's documented errors, all `CodecError` subclasses or, for
calibration files, `CalibrationError`); anything else is a finding. Seeds are valid messages
built with the codecs' own encoders, so mutations stay close to what a device sends.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_iface.errors import CalibrationError, CodecError


@dataclass(frozen=True)
class Target:
    """One decoder under fuzz: name, run(bytes), seeds, allowed errors, length fields.

    length_fields: (offset, size in bytes) of little-endian length/count fields in the seeds,
    which the mutator sets to boundary values.
    """

    name: str
    run: Callable[[bytes], object]
    seeds: list[bytes]
    allowed: tuple[type[BaseException], ...] = (CodecError,)
    length_fields: tuple[tuple[int, int], ...] = field(default=())


# ---- DLPC900 --------------------------------------------------------------------------------
def _dlpc900_targets() -> list[Target]:
    from firmware_iface.dlpc900 import commands as c
    from firmware_iface.dlpc900 import erle, erle_tokens, images, report

    reqs = [
        report.encode_request(report.Request(0x1100, read=True, sequence=0x11)),
        report.encode_request(report.Request(0x1A34, c.encode_lut_entry(
            c.LutEntry(pattern_index=3, exposure_us=200, image_index=1, bit_position=5)))),
        report.encode_request(report.Request(0x1A2B, c.encode_bmp_load_data(bytes(range(200))))),
    ]
    reps = [
        report.encode_reply(report.Reply(0x40, 7, c.encode_error_description("No error"))),
        report.encode_reply(report.Reply(0x60, 9, bytes([3]))),
    ]

    def join(data: bytes) -> object:
        size = 65 if data[:1] == b"\x00" and len(data) % 65 == 0 else 64
        reports = [data[i : i + size] for i in range(0, len(data), size)]
        return report.join_reports(reports)

    split_seeds = [b"".join(report.split_message(m)) for m in reqs + reps]
    order = [
        c.decode_display_mode,
        c.decode_pattern_action,
        c.decode_lut_entry,
        c.decode_lut_configuration,
        c.decode_bmp_load_init,
        c.decode_bmp_load_data,
        c.decode_error_code,
        c.decode_error_description,
        c.decode_hardware_status,
        c.decode_main_status,
        c.decode_firmware_version,
    ]

    def command_payload(data: bytes) -> object:
        if not data:
            return None
        return order[data[0] % len(order)](data[1:])

    payload_seeds = [
        bytes([0]) + c.encode_display_mode(3),
        bytes([1]) + c.encode_pattern_action(2),
        bytes([2]) + c.encode_lut_entry(c.LutEntry(0, 200, 0, 0)),
        bytes([3]) + c.encode_lut_configuration(24, 0),
        bytes([4]) + c.encode_bmp_load_init(2, 1000),
        bytes([5]) + c.encode_bmp_load_data(b"\x01\x02\x03"),
        bytes([6]) + c.encode_error_code(9),
        bytes([7]) + c.encode_error_description("Invalid command number"),
        bytes([8, 1]),
        bytes([9, 3]),
        bytes([10]) + c.encode_firmware_version(c.FirmwareVersion((5, 1, 0), (1, 2, 3), (0, 0, 1),
                                                                  (4, 5, 6))),
    ]

    rng = np.random.default_rng(0)
    w, h = 24, 6
    img = rng.integers(0, 4, (h, w)).astype(np.uint32) * 0x010203
    img[2] = img[1]
    img[4, :10] = 0xABCDEF
    erle_seed = erle.encode_erle(img)
    rle_seed = erle.encode_rle(img)
    image_seeds = [images.encode_image(img, comp) for comp in images.Compression]

    return [
        Target("dlpc900.request", report.decode_request, reqs, length_fields=((2, 2),)),
        Target("dlpc900.reply", report.decode_reply, reps, length_fields=((2, 2),)),
        Target("dlpc900.join_reports", join, split_seeds, length_fields=((2, 2),)),
        Target("dlpc900.command_payload", command_payload, payload_seeds,
               length_fields=((1, 2),)),
        Target("dlpc900.erle", lambda d: erle.decode_erle(d, w, h), [erle_seed]),
        Target("dlpc900.rle", lambda d: erle.decode_rle(d, w, h), [rle_seed]),
        Target("dlpc900.erle_tokens", lambda d: list(erle_tokens.iter_erle_tokens(d)), [erle_seed]),
        Target("dlpc900.image", images.decode_image, image_seeds,
               length_fields=((4, 2), (6, 2), (8, 4))),
    ]


# ---- FPGA -----------------------------------------------------------------------------------
def _fpga_targets() -> list[Target]:
    from firmware_iface.fpga import messages as m
    from firmware_iface.fpga.cobs import cobs_decode, cobs_encode
    from firmware_iface.fpga.errors import FrameCodecError
    from firmware_iface.fpga.frame import MAX_WIRE_FRAME, decode_frame, split_stream

    msgs = [
        m.SetFramePeriod(1000),
        m.SetTriggerDelays(20, 100),
        m.Run(256),
        m.ReadTriggerLog(0, 8),
        m.Ack(m.MsgType.ARM, m.BoardState.ARMED),
        m.Ack(m.MsgType.RUN, m.BoardState.RUNNING, m.RunAccepted(3, 256, 123456)),
        m.Ack(m.MsgType.GET_STATUS, m.BoardState.IDLE,
              m.StatusReport(m.BoardState.IDLE, 1000, 500, 0, 0, 1, 10, 10, 99999)),
        m.Ack(m.MsgType.READ_COUNTERS, m.BoardState.IDLE, m.CounterReport(*range(1, 11), 7)),
        m.Ack(m.MsgType.READ_TRIGGER_LOG, m.BoardState.IDLE, m.TriggerLog(2, (
            m.TriggerEvent(2, 0, 1, 1, 10, 110), m.TriggerEvent(2, 1, 2, 2, 1010, None,
                                                                m.TriggerFlags.CAMERA_MISSING)))),
        m.Nak(0x05, m.ErrorCode.WRONG_STATE, m.BoardState.IDLE, 0),
        m.TriggerEvent(4, 17, 18, 18, 5000, 5100),
        m.RunComplete(4, m.RunEndReason.COMPLETED, 18, 18, 18, 18, 10, 20000),
    ]
    wires = [m.encode_message(msg, 1000 + i) for i, msg in enumerate(msgs)]
    chunks = [w[:-1] for w in wires]
    raw = [cobs_decode(ch) for ch in chunks]

    def stream(data: bytes) -> object:
        out, rest = split_stream(data)
        if len(rest) > MAX_WIRE_FRAME - 1:
            raise AssertionError(f"split_stream kept {len(rest)} unterminated bytes")
        for ch in out:
            try:
                m.decode_message(ch)
            except FrameCodecError:
                pass
        return out

    def framed(data: bytes) -> object:
        return m.decode_message(cobs_encode(data))

    return [
        Target("fpga.cobs", cobs_decode, chunks),
        Target("fpga.frame", decode_frame, chunks),
        Target("fpga.message", m.decode_message, chunks),
        # raw frames re-encoded: mutations reach the header/CRC/payload checks past COBS
        Target("fpga.message_raw", framed, raw, allowed=(FrameCodecError,),
               length_fields=((4, 2), (2, 2))),
        Target("fpga.stream", stream, [b"".join(wires)], allowed=(FrameCodecError,)),
    ]


# ---- camera ---------------------------------------------------------------------------------
def _camera_targets() -> list[Target]:
    from firmware_iface.camera import bootstrap as bs
    from firmware_iface.camera import control as ctl
    from firmware_iface.camera import manifest as mf
    from firmware_iface.camera import pixel_formats as pf
    from firmware_iface.camera import stream as st
    from firmware_iface.camera import usb_layout as ul
    from opu_sim.emulators import camera_registers as regs

    cmds = [
        ctl.encode_read_command(0x0102, 0x10200, 8),
        ctl.encode_write_command(7, 0x10200, struct.pack("<d", 250.0)),
    ]
    acks = [
        ctl.encode_read_ack(0x0102, struct.pack("<d", 250.0)),
        ctl.encode_write_ack(7, 8),
        ctl.encode_pending_ack(9, 100),
        ctl.encode_ack(0x8002, ctl.CommandId.WRITEMEM_ACK, 3),
    ]
    leaders = [st.encode_leader(st.Leader(5, 123456789, pf.PixelFormat.Mono12p, 64, 48, 8, 4))]
    trailers = [st.encode_trailer(st.Trailer(5, 0, pf.payload_size("Mono12p", 64 * 48), 48))]
    formats = list(pf.PixelFormat)

    def pixels(data: bytes) -> object:
        if len(data) < 3:
            return None
        fmt = formats[data[0] % len(formats)]
        (n,) = struct.unpack_from("<H", data, 1)
        return pf.unpack(data[3:], fmt, n)

    rng = np.random.default_rng(1)
    pix_seeds = []
    for i, fmt in enumerate(formats):
        n = 37 + i
        vals = rng.integers(0, 1 << pf.significant_bits(fmt), n)
        pix_seeds.append(bytes([i]) + struct.pack("<H", n) + pf.pack(vals, fmt))
    reg_list = list(regs.REGISTERS.values())

    def register_value(data: bytes) -> object:
        if not data:
            return None
        return regs.decode_value(reg_list[data[0] % len(reg_list)], data[1:])

    reg_seeds = [bytes([i]) + bytes(r.size) for i, r in enumerate(reg_list)]
    return [
        Target("camera.command", ctl.decode_command, cmds, length_fields=((8, 2),)),
        Target("camera.ack", ctl.decode_ack, acks, length_fields=((8, 2),)),
        Target("camera.leader", st.decode_leader, leaders, length_fields=((6, 2),)),
        Target("camera.trailer", st.decode_trailer, trailers, length_fields=((6, 2),)),
        Target("camera.pixels", pixels, pix_seeds, length_fields=((1, 2),)),
        Target("camera.register", register_value, reg_seeds),
        *_camera_bootstrap_targets(bs, mf, ul),
    ]


def _camera_bootstrap_targets(bs, mf, ul) -> list[Target]:  # noqa: ANN001 - modules
    """ABRM / SBRM blocks, manifest tables, GenICam files and the device info descriptor."""
    from opu_sim.emulators.camera import CameraEmulator

    emu = CameraEmulator(32, 16, 12)
    abrm = emu.bootstrap.read(0, 0x210)[1]
    sbrm = emu.bootstrap.read(0x1000, 0x44)[1]
    table = emu.bootstrap.read(0x3000, 8 + mf.ENTRY_SIZE)[1]
    entry = mf.decode_table(table)[0]
    stored = emu.bootstrap.read(entry.address, entry.size)[1]

    def manifest_xml(data: bytes) -> object:
        e = mf.device_xml_entry(mf.decode_table(data[: 8 + mf.ENTRY_SIZE]))
        return mf.genicam_xml(e, data[8 + mf.ENTRY_SIZE :])

    def genicam_file(data: bytes) -> object:
        unchecked = mf.ManifestEntry(entry.version, 0, 1, (1, 1), 0, len(data), bytes(20))
        return mf.genicam_xml(unchecked, data)

    return [
        Target("camera.abrm", lambda d: bs.decode_abrm(bs.split_fields(bs.ABRM, d)), [abrm]),
        Target("camera.sbrm", lambda d: bs.decode_sbrm(bs.split_fields(bs.SBRM, d)), [sbrm]),
        Target("camera.manifest", manifest_xml, [table + stored], length_fields=((0, 8),)),
        Target("camera.genicam_file", genicam_file, [stored]),
        Target("camera.device_info", ul.find_device_info,
               [ul.encode_iad(0, 2) + ul.encode_device_info(emu_device_info())]),
    ]


def emu_device_info():  # noqa: ANN201
    """The emulated camera's USB3 Vision device info descriptor."""
    from opu_sim.emulators.camera import DEVICE_INFO

    return DEVICE_INFO


# ---- calibration records --------------------------------------------------------------------
def sample_record(n_out: int = 6, n_roi: int = 9) -> object:
    """A small valid Calibration (as calibration produces it), for seeds and tests."""
    from calibration.record import Calibration

    rng = np.random.default_rng(2)
    return Calibration(
        device_id="sim:seed=0",
        geometry={"n_in": 4, "n_out": n_out, "layout": [4, 4, 8, 4], "roi": [0, 0, 3, 3]},
        exposure_us=250.0,
        dark_dn=rng.random(n_roi).astype(np.float32) * 10,
        hot_pixels=np.zeros(n_roi, bool),
        output_pixels=np.arange(n_out, dtype=np.int64),
        anchor=np.array([1, 0, 1, 1], bool),
        anchor_dn=rng.random(n_out).astype(np.float32) * 100 + 50,
        scale_dn=12.5,
        created_s=1.7e9,
        results={"exposure": {"exposure_us": 250.0}},
    )


def record_bytes(cal: object) -> bytes:
    """The .npz bytes Calibration.save writes for `cal`."""
    with tempfile.TemporaryDirectory() as d:
        p = cal.save(Path(d) / "r.npz")  # type: ignore[attr-defined]
        return p.read_bytes()


def record_parts(cal: object) -> tuple[dict, dict[str, np.ndarray]]:
    """A valid JSON header (as a dict) and the arrays of `cal` (a sample_record()) as
    Calibration.save writes them, to edit and write back with npz_with_header."""
    header = {
        "format_version": 1, "device_id": cal.device_id,  # type: ignore[attr-defined]
        "geometry": cal.geometry.as_dict(),  # type: ignore[attr-defined]
        "exposure_us": 250.0, "scale_dn": 12.5, "created_s": 1.7e9,
        "software_version": "0.1.0", "results": {}, "extra_arrays": [],
    }
    with np.load(io.BytesIO(record_bytes(cal))) as z:
        arrays = {k: z[k] for k in z.files if k != "header"}
    return header, arrays


def npz_with_header(header_json: bytes, arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz record whose JSON header bytes are `header_json` (no validation)."""
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(header_json, np.uint8), **arrays)
    return buf.getvalue()


def _calibration_targets() -> list[Target]:
    from calibration.record import Calibration

    tmpdir = Path(tempfile.mkdtemp(prefix="opu-fuzz-", dir=_fast_tmp()))
    path = tmpdir / "record.npz"

    def load(data: bytes) -> object:
        path.write_bytes(data)
        return Calibration.load(path)

    cal = sample_record()
    header, arrays = record_parts(cal)

    def load_header(data: bytes) -> object:
        return load(npz_with_header(data, arrays))

    allowed = (CodecError, CalibrationError)
    return [
        Target("calibration.file", load, [record_bytes(cal)], allowed=allowed),
        Target("calibration.header", load_header, [json.dumps(header).encode()], allowed=allowed),
    ]


def _fast_tmp() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def all_targets() -> list[Target]:
    """Every fuzz target, in a fixed order."""
    return _dlpc900_targets() + _fpga_targets() + _camera_targets() + _calibration_targets()
