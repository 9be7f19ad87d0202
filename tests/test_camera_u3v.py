"""USB3 Vision end to end against the emulator: bootstrap (ABRM/SBRM), the manifest's zipped
GenICam XML, features through genicam's GenApi, SIRM stream setup, transfers at the USB packet
level (payloads that are multiples of the packet size), request ids, chunk mode, descriptors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import usb.core
from genicam import genapi

from firmware_iface.camera import (
    Camera,
    CameraCommandError,
    FrameStatus,
    PixelFormat,
    Status,
    control,
    manifest,
    stream,
)
from firmware_iface.camera import bootstrap as B
from firmware_iface.camera import usb_layout as L
from firmware_iface.camera.pixel_formats import pack, payload_size
from firmware_iface.errors import CameraProtocolError
from firmware_iface.geometry import CameraRoi
from opu_sim.emulators import camera_registers
from opu_sim.emulators.camera import DEVICE_INFO, CameraBackend, CameraEmulator
from opu_sim.emulators.camera_bootstrap import ALIGNMENT, MAX_ACK_TRANSFER, camera_xml

ROOT = Path(__file__).resolve().parents[1]


def open_pair(w: int = 64, h: int = 32, bits: int = 12, **kw) -> tuple[CameraEmulator, Camera]:
    emu = CameraEmulator(sensor_width=w, sensor_height=h, bit_depth=bits, serial="EMU-U3V-1")
    return emu, Camera(backend=CameraBackend(emu), timeout_ms=300, **kw)


def spy_commands(emu: CameraEmulator) -> list:
    log: list = []
    handle = emu.handle_command

    def spy(data: bytes) -> bytes:
        log.append(control.decode_command(data))
        return handle(data)

    emu.handle_command = spy  # type: ignore[method-assign]
    return log


def test_bootstrap_manifest_and_xml_download() -> None:
    emu = CameraEmulator(sensor_width=64, sensor_height=32, serial="EMU-U3V-1")
    sent = spy_commands(emu)
    with Camera(backend=CameraBackend(emu)) as cam:
        info, sbrm = cam.device_info, cam.sbrm
        assert (info.serial_number, info.model_name) == ("EMU-U3V-1", "CameraEmulator")
        assert info.gencp_version == 0x00010000 and info.timestamp_increment_ns == 1
        assert (sbrm.max_ack_transfer, sbrm.n_stream_channels) == (MAX_ACK_TRANSFER, 1)
        assert cam.xml == camera_xml()  # downloaded zipped, SHA-1 checked, unzipped
        assert cam._transport.device_info == DEVICE_INFO  # USB3 Vision device info descriptor
    # the first read is the ABRM at address 0; the XML comes in (max ack - header) pieces
    assert sent[0].address == 0 and isinstance(sent[0], control.ReadCommand)
    entry = manifest.decode_table(emu.bootstrap.read(0x3000, 72)[1])[0]
    assert entry.compression == manifest.COMPRESSION_ZIP and entry.file_type == 0
    xml_reads = [c for c in sent if isinstance(c, control.ReadCommand)
                 and entry.address <= c.address < entry.address + entry.size]
    piece = MAX_ACK_TRANSFER - control.HEADER_SIZE
    assert [c.count for c in xml_reads] == [
        n for _, n in manifest.read_plan(entry.address, entry.size, piece)
    ]
    assert len(xml_reads) == -(-entry.size // piece) > 1
    assert max(c.count for c in sent if isinstance(c, control.ReadCommand)) <= piece


def test_corrupt_genicam_file_is_refused() -> None:
    emu = CameraEmulator(sensor_width=16, sensor_height=8)
    base, data = emu.bootstrap._areas[3]
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    emu.bootstrap._areas[3] = (base, bytes(damaged))
    with pytest.raises(CameraProtocolError, match="SHA-1"):
        Camera(backend=CameraBackend(emu))


def test_the_host_has_no_register_map() -> None:
    """Every feature address comes from the XML: no camera register address in the host code."""
    host = "".join(p.read_text() for p in (ROOT / "firmware_iface" / "camera").glob("*.py"))
    for reg in camera_registers.REGISTERS.values():
        assert f"{reg.address:#x}" not in host.lower() and f"{reg.address:#X}" not in host


def _node_address(nm: genapi.NodeMap, name: str) -> tuple[int, int]:
    node = nm.get_node(name).node
    return int(node.get_property("Address")[0]), int(node.get_property("Length")[0])


def test_xml_loads_in_genapi_and_matches_the_device_registers() -> None:
    class NullPort(genapi.AbstractPort):
        def read(self, address: int, length: int) -> bytes:
            return bytes(length)

        def write(self, address: int, value: bytes) -> None:
            pass

        def get_access_mode(self) -> int:
            return genapi.EAccessMode.RW

    nm = genapi.NodeMap()
    nm.load_xml_from_string(camera_xml())
    port = NullPort()
    nm.connect(port, "Device")
    for reg in camera_registers.REGISTERS.values():
        name = reg.name if reg.kind == camera_registers.Kind.STRING else reg.name + "_Reg"
        assert _node_address(nm, name) == (reg.address, reg.size), reg.name
        assert nm.has_node(reg.name)
    # the SFNC features the issue lists, with their interfaces
    kinds = {"ExposureTime": genapi.IFloat, "Gain": genapi.IFloat,
             "PixelFormat": genapi.IEnumeration, "Width": genapi.IInteger,
             "TriggerMode": genapi.IEnumeration, "TriggerSource": genapi.IEnumeration,
             "AcquisitionStart": genapi.ICommand, "AcquisitionStop": genapi.ICommand,
             "PayloadSize": genapi.IInteger, "DeviceSerialNumber": genapi.IString}
    for name, kind in kinds.items():
        assert isinstance(nm.get_node(name), kind), name


def test_features_through_genapi_reach_the_device() -> None:
    emu, cam = open_pair()
    with cam:
        cam["ExposureTime"] = 250.0  # Float -> FloatReg f64
        cam["Width"] = 40  # Integer with a SwissKnife maximum
        cam["TriggerMode"] = "On"
        cam.set_pixel_format("Mono10p")
        assert (emu.exposure_us, emu.roi.width, emu.trigger_mode) == (250.0, 40, "On")
        assert cam["PayloadSize"] == 40 * 32 * 10 // 8  # invalidated by Width and PixelFormat
        assert cam["DeviceSerialNumber"] == "EMU-U3V-1"
        assert cam["DeviceVendorName"] == "OPU stack"  # the XML points into the ABRM
        assert cam.features.range("OffsetX") == (0, 64 - 40)


def test_sirm_configured_as_planned_and_streamed() -> None:
    emu, cam = open_pair()
    with cam:
        cam.set_pixel_format("Mono8")
        cam["TriggerMode"] = "On"
        assert not emu.stream_enabled
        cam.start()
        plan = cam.stream_plan
        assert emu.stream_enabled and emu.bootstrap.plan() == plan
        assert plan == B.plan_stream(64 * 32, stream.LEADER_SIZE, stream.TRAILER_SIZE, ALIGNMENT,
                                     cam.max_transfer)
        cam.stop()
        assert not emu.stream_enabled


@pytest.mark.parametrize(
    ("w", "h", "fmt"),
    [(64, 32, "Mono8"), (64, 33, "Mono8"), (64, 16, "Mono12p"), (128, 64, "Mono12"),
     (1920, 1200, "Mono8"), (7, 3, "Mono10p")],
)
def test_payloads_on_and_off_packet_boundaries(w: int, h: int, fmt: str) -> None:
    """64x32 Mono8 (2048 bytes), 64x16 Mono12p (1536), 128x64 Mono12 (16384) and full
    1920x1200 Mono8 are multiples of the 1024-byte packet size: the trailer must not land in
    the payload read."""
    emu, cam = open_pair(w, h)
    with cam:
        cam.set_pixel_format(fmt)
        cam["TriggerMode"] = "On"
        cam.start()
        frames = np.random.default_rng(w + h).integers(0, 4096, (3, h, w), dtype=np.uint16)
        emu.deliver(frames, np.array([5.0, 6.0, 7.0]))
        out = cam.read_frames(3, timeout_ms=2000)
    shift = 12 - {"Mono8": 8, "Mono10p": 10}.get(fmt, 12)
    assert out.statuses.tolist() == [FrameStatus.OK] * 3
    assert np.array_equal(out.frames, frames >> shift) and out.timestamps_us.tolist() == [5, 6, 7]
    assert emu.pending_transfers == 0


def test_packet_model_merges_a_trailer_into_an_oversized_payload_read() -> None:
    """The failure the SIRM plan prevents, shown on the emulator's packet-level endpoint: a host
    reading payload + 1024 bytes at once (the old driver) gets payload and trailer together
    when the payload is a multiple of the packet size."""
    emu, cam = open_pair(64, 32)
    with cam:
        cam.set_pixel_format("Mono8")
        cam["TriggerMode"] = "On"
        cam.start()
        emu.deliver(np.zeros((1, 32, 64), np.uint16), np.zeros(1))
        size = 2048 + 1024
        assert len(emu.bulk_read(L.EP_STREAM_IN, size, 100)) == stream.LEADER_SIZE
        assert len(emu.bulk_read(L.EP_STREAM_IN, size, 100)) == 2048 + stream.TRAILER_SIZE
        with pytest.raises(usb.core.USBError, match="Overflow"):
            emu.queue_transfers(bytes(100))
            emu.bulk_read(L.EP_STREAM_IN, 50, 100)


def test_device_refuses_inconsistent_sirm_settings() -> None:
    emu, cam = open_pair(64, 32)
    sirm = cam.sbrm.sirm_address

    def write(name: str, value: int) -> int:
        f = B.SIRM[name]
        try:
            cam.write_register(sirm + f.offset, B.encode_field(f, value))
        except CameraCommandError as e:
            return e.status
        return Status.SUCCESS

    with cam:
        good = B.plan_stream(emu._payload_size(), 52, 32, ALIGNMENT)
        for name, v in good.registers().items():
            assert write(name, v) == Status.SUCCESS
        assert write("payload_transfer_count", good.payload_count - 1) == Status.SUCCESS
        assert write("si_control", 1) == Status.SI_REGISTERS_INCONSISTENT  # too small
        assert write("payload_transfer_count", good.payload_count) == Status.SUCCESS
        assert write("final_transfer1_size", 100) == Status.SUCCESS  # followed by final 2
        assert write("final_transfer2_size", 1024) == Status.SUCCESS
        assert write("si_control", 1) == Status.SI_PAYLOAD_SIZE_NOT_ALIGNED
        assert write("final_transfer1_size", 0) == Status.SUCCESS
        assert write("final_transfer2_size", 0) == Status.SUCCESS
        assert write("max_trailer_size", 16) == Status.SUCCESS
        assert write("si_control", 1) == Status.SI_REGISTERS_INCONSISTENT  # trailer won't fit
        assert write("max_trailer_size", 1024) == Status.SUCCESS
        assert not emu.stream_enabled
        assert write("si_control", 1) == Status.SUCCESS and emu.stream_enabled
        assert write("payload_transfer_size", 4096) == Status.ACCESS_DENIED  # while enabled
        assert write("required_payload_size", 1) == Status.WRITE_PROTECT
        with pytest.raises(CameraCommandError) as e:  # image format locked while streaming
            cam["Width"] = 32
        assert e.value.status == Status.ACCESS_DENIED


def test_device_accepts_the_stream_settings_aravis_writes() -> None:
    """Aravis (arvuvstream.c) configures a small payload as one transfer of exactly the payload
    size (unaligned), final transfers 0: a camera takes that, so the emulator does too."""
    emu, cam = open_pair(64, 33)  # Mono12: 4224 bytes, not a multiple of 1024
    sirm = cam.sbrm.sirm_address
    payload = emu._payload_size()
    aravis = {"max_leader_size": 1024, "max_trailer_size": 1024,
              "payload_transfer_size": payload, "payload_transfer_count": 1,
              "final_transfer1_size": 0, "final_transfer2_size": 0}
    with cam:
        for name, value in {**aravis, "si_control": 1}.items():
            f = B.SIRM[name]
            cam.write_register(sirm + f.offset, B.encode_field(f, value))
        assert emu.stream_enabled and payload % 1024


def test_host_reports_a_camera_refusing_its_stream_settings(monkeypatch) -> None:  # noqa: ANN001
    emu, cam = open_pair(64, 32)
    bad = B.StreamPlan(1024, 1024, 1, 0, 0, 1024)  # 1024 bytes for a 3072-byte payload
    monkeypatch.setattr(B, "plan_stream", lambda *a, **k: bad)
    with cam, pytest.raises(CameraCommandError, match="SI_REGISTERS_INCONSISTENT.*reconfigure"):
        cam.start()
    assert not emu.acquiring


def test_request_ids_wrap_to_one_never_zero() -> None:
    emu, cam = open_pair(16, 8)
    sent = spy_commands(emu)
    with cam:
        cam._channel._request_id = 0xFFFE
        for _ in range(3):
            cam["Gain"] = 1.0
            cam.features.node_map.get_node("Gain").node.invalidate_node()
            cam["Gain"]
    ids = [c.request_id for c in sent[:6]]
    assert ids[:3] == [0xFFFF, 1, 2] and 0 not in ids
    with pytest.raises(Exception, match="1..65535"):
        control.encode_read_command(0, 0, 4)


def test_chunk_mode_payload_is_accepted() -> None:
    emu, cam = open_pair(40, 30)
    with cam:
        cam.set_pixel_format("Mono12p")
        cam["TriggerMode"] = "On"
        cam.start()
        frame = np.random.default_rng(1).integers(0, 4096, (30, 40), dtype=np.uint16)
        image = pack(frame, PixelFormat.Mono12p)
        chunks = bytes(range(16))  # chunk data after the image
        leader = stream.Leader(0, 1000, PixelFormat.Mono12p, 40, 30, 0, 0, 0,
                               stream.PAYLOAD_TYPE_IMAGE_CHUNK)
        trailer = stream.Trailer(0, 0, len(image) + len(chunks), 30, chunk_layout_id=7)
        raw_trailer = stream.encode_trailer(trailer)
        assert len(raw_trailer) == stream.CHUNK_TRAILER_SIZE == 36
        emu.queue_transfers(stream.encode_leader(leader), image + chunks, raw_trailer)
        out = cam.read_frames(1)
    assert out.statuses.tolist() == [FrameStatus.OK] and np.array_equal(out.frames[0], frame)
    assert stream.decode_trailer(raw_trailer).chunk_layout_id == 7


def test_usb_descriptors_have_the_iad_and_device_info() -> None:
    emu = CameraEmulator(sensor_width=16, sensor_height=8)
    dev = usb.core.find(idVendor=L.DEFAULT_VENDOR_ID, backend=CameraBackend(emu))
    cfg = dev[0]
    iad = bytes(cfg.extra_descriptors)
    assert iad[:4] == bytes([8, L.IAD_TYPE, 0, 2]) and iad[4:6] == bytes([0xEF, 0x05])
    control_intf = cfg[(0, 0)]
    assert L.find_device_info(bytes(control_intf.extra_descriptors)) == DEVICE_INFO
    strings = emu.usb_strings()
    assert strings[DEVICE_INFO.serial_index] == emu.serial
    assert usb.util.get_string(dev, DEVICE_INFO.serial_index) == emu.serial


# ---- pure stream-plan arithmetic -----------------------------------------------------------


def test_stream_plan_examples() -> None:
    full = payload_size(PixelFormat.Mono12p, 1920 * 1200)  # 3 456 000 bytes
    p = B.plan_stream(full, 52, 32, 1024, 1 << 20)
    assert (p.payload_size, p.payload_count, p.final1_size, p.final2_size) == (
        1 << 20, 3, 310272, 0)
    p = B.plan_stream(64 * 33, 52, 32, 1024)  # 2112 bytes
    assert p.payload_transfers == (2048, 1024) and p.leader_size == p.trailer_size == 1024
    p = B.plan_stream(384, 52, 32, 1024)  # smaller than one packet
    assert (p.payload_count, p.final1_size, p.final2_size) == (0, 0, 1024)
    p = B.plan_stream(5000, 52, 32, 1024, 2048)  # 2 x 2048, then 512 padded up
    assert p.payload_transfers == (2048, 2048, 1024)
    p = B.plan_stream(7000, 52, 32, 512, 2048)
    assert p.payload_transfers == (2048, 2048, 2048, 512, 512)
    for bad in ((0, 52, 32, 1024), (10, 52, 32, 1000), (10, 52, 32, 1024, 512)):
        with pytest.raises(Exception, match="must|power|below"):
            B.plan_stream(*bad)


def test_stream_plan_invariants() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.integers(1, 50_000_000), st.integers(0, 12), st.integers(0, 8))
    def check(payload: int, align_log: int, extra: int) -> None:
        a = 1 << align_log
        p = B.plan_stream(payload, 52, 36, a, a << extra)
        sizes = p.payload_transfers
        assert all(s % a == 0 and s > 0 for s in sizes)
        assert payload <= p.payload_capacity < payload + a  # covers it, at most one pad
        assert B.check_stream_plan(p, payload, 52, 36, a) == Status.SUCCESS
        assert max(sizes) <= a << extra

    check()


def test_sirm_info_alignment() -> None:
    assert B.alignment_of(10 << 24) == 1024 and B.alignment_of(0) == 1
    with pytest.raises(Exception, match="alignment"):
        B.alignment_of(40 << 24)


def test_manifest_codec_golden_and_selection() -> None:
    sha = hashlib.sha1(b"xml").digest()
    e = manifest.ManifestEntry((1, 2, 3), 0, 1, (1, 1), 0x100000, 3, sha)
    raw = manifest.encode_table([e])
    assert raw[:8] == (1).to_bytes(8, "little") and len(raw) == 8 + 64
    # file version subminor u16, minor u8, major u8; format info: type bits 0-2, ZIP in 10-15
    assert raw[8:12] == bytes([3, 0, 2, 1])
    assert int.from_bytes(raw[12:16], "little") == (1 << 10) | (1 << 16) | (1 << 24)
    assert raw[32:52] == sha
    assert manifest.decode_table(raw) == [e]
    plain = manifest.ManifestEntry((1, 0, 0), 0, 0, (1, 0), 0x200000, 3, bytes(20))
    buffer_xml = manifest.ManifestEntry((9, 0, 0), 1, 0, (1, 1), 0x300000, 3, bytes(20))
    assert manifest.device_xml_entry([plain, e, buffer_xml]) == e  # highest schema, type 0
    assert manifest.genicam_xml(plain, b"abc") == "abc"  # all-zero SHA-1: not checked
    with pytest.raises(Exception, match="SHA-1"):
        manifest.genicam_xml(e, b"abd")
    with pytest.raises(Exception, match="no device GenICam XML"):
        manifest.device_xml_entry([buffer_xml])
    assert manifest.read_plan(0x100, 2500, 1012) == [(0x100, 1012), (0x100 + 1012, 1012),
                                                   (0x100 + 2024, 476)]


def test_bootstrap_codec_golden() -> None:
    emu = CameraEmulator(sensor_width=16, sensor_height=8, serial="SN-42")
    abrm = emu.bootstrap.read(0, 0x210)[1]
    assert abrm[0x144:0x144 + 5] == b"SN-42" and abrm[0x149] == 0
    assert int.from_bytes(abrm[0x1D8:0x1E0], "little") == 0x1000  # SBRM address
    info = B.decode_abrm(B.split_fields(B.ABRM, abrm))
    assert info.serial_number == "SN-42" and info.manifest_table_address == 0x3000
    sbrm = B.decode_sbrm(B.split_fields(B.SBRM, emu.bootstrap.read(0x1000, 0x44)[1]))
    assert (sbrm.max_cmd_transfer, sbrm.sirm_address) == (1024, 0x2000)
    assert sbrm.max_read == 1012
    broken = bytearray(abrm)
    broken[0x1D8:0x1E0] = bytes(8)
    with pytest.raises(Exception, match="not a USB3 Vision device"):
        B.decode_abrm(B.split_fields(B.ABRM, bytes(broken)))


def test_bootstrap_and_manifest_parsing_raise_only_typed_errors() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from firmware_iface.errors import CodecError

    emu = CameraEmulator(sensor_width=16, sensor_height=8)
    table = emu.bootstrap.read(0x3000, 72)[1]

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=0x220), st.binary(max_size=200), st.binary(max_size=600),
           st.integers(0, 71), st.integers(0, 255))
    def check(abrm: bytes, sbrm: bytes, blob: bytes, pos: int, byte: int) -> None:
        mutated = bytearray(table)
        mutated[pos] = byte
        for call in (
            lambda: B.decode_abrm(B.split_fields(B.ABRM, abrm)),
            lambda: B.decode_sbrm(B.split_fields(B.SBRM, sbrm)),
            lambda: manifest.decode_table(blob),
            lambda: manifest.device_xml_entry(manifest.decode_table(bytes(mutated))),
            lambda: manifest.genicam_xml(
                manifest.ManifestEntry((1, 0, 0), 0, 1, (1, 1), 0, len(blob) or 1, bytes(20)),
                blob,
            ),
            lambda: L.find_device_info(blob),
        ):
            try:
                call()
            except CodecError:
                pass

    check()


def test_roi_change_restarts_cleanly() -> None:
    emu, cam = open_pair(64, 32)
    with cam:
        cam["TriggerMode"] = "On"
        cam.start()
        cam.stop()
        cam.set_roi(CameraRoi(8, 4, 33, 11, 64, 32))  # allowed once the stream is disabled
        cam.start()
        frames = np.random.default_rng(2).integers(0, 4096, (2, 11, 33), dtype=np.uint16)
        emu.deliver(frames, np.zeros(2))
        assert np.array_equal(cam.read_frames(2).frames, frames)
        assert cam.stream_plan.payload_transfers == (1024,)  # 33 x 11 Mono12 = 726 bytes, padded


def test_emulator_streams_in_the_configured_transfers() -> None:
    emu, cam = open_pair(64, 33)
    with cam:
        cam.set_pixel_format("Mono8")  # 2112 bytes: 2048 + a 64-byte final transfer 2
        cam["TriggerMode"] = "On"
        cam.start()
        emu.deliver(np.zeros((1, 33, 64), np.uint16), np.zeros(1))
        assert [len(t) for t in emu._stream] == [52, 2048, 64, 32]
        assert cam.read_frames(1).ok.all()
