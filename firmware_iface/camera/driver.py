"""Host driver of a USB3 Vision camera over pyusb: bootstrap, GenICam features through GenApi,
stream setup in the SIRM, and frame readout.

Opening a camera (`Camera(...)`), as the standard has it:

1. find the device by USB ids and claim its control and stream interfaces (transport.py);
2. read the ABRM at address 0 (bootstrap.py): identity, timestamp tick, manifest and SBRM
   addresses; then the SBRM: the control channel's transfer limits and the SIRM address;
3. read the manifest table, download the device GenICam XML in READMEMs of at most
   (max acknowledge length - 12) bytes, check its SHA-1 and unzip it (manifest.py);
4. load the XML in genicam's genapi.NodeMap connected to a port on the control channel
   (features.py): every feature is resolved by the camera's own XML, none by this driver;
5. stop any acquisition left running, so the camera starts in a known state.

`start()` configures the stream as real hosts do: reads the SIRM's required payload / leader /
trailer sizes and alignment, writes the transfer sizes (bootstrap.plan_stream), enables the
stream (SI_Control = 1), then executes AcquisitionStart. Frames are then read in exactly those
transfers (readout.py, which documents the per-frame statuses and what raises).
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    CameraCommandError,
    CameraProtocolError,
    CameraStateError,
    CameraStreamError,  # noqa: F401 - former home (see __all__)
    CameraStreamTimeout,  # noqa: F401
    CodecError,
    DeviceError,
    InputError,
)
from . import bootstrap as B
from . import manifest, pixel_formats
from . import usb_layout as L
from .channel import CameraStats, ControlChannel
from .common import KNOWN_BITS, FeatureCamera, check_count, check_frame_id
from .features import Features, sensor_bit_depth, sensor_size
from .readout import FrameReadout, FrameStatus, StreamFormat, StreamReader
from .transport import UsbCameraTransport

# The camera errors (firmware_iface.errors) and FrameReadout / FrameStatus (readout.py) stay
# importable from here, their former home.
__all__ = ["Camera", "FrameReadout", "FrameStatus"]

#: ABRM registers a device may leave unimplemented (read as "" when refused)
_OPTIONAL_ABRM = ("family_name", "user_defined_name")


class Camera(FeatureCamera):
    """A USB3 Vision camera found by vendor/product id through pyusb (`backend` None = system
    libusb; an emulator's backend object in tests).

    timeout_ms: per-transfer timeout of control transactions, milliseconds (at least the
    device's maximum response time from its ABRM is waited). retries: extra attempts of a
    control transaction after a timeout or a BUSY acknowledge. max_transfer: the largest bulk
    transfer the host reads on the stream channel, bytes.
    Attributes after opening: device_info (ABRM), sbrm, xml (the GenICam XML text), features
    (Features: the GenApi node map), serial_number, sensor_width, sensor_height, bit_depth.
    """

    def __init__(
        self,
        backend: object | None = None,
        vendor_id: int = L.DEFAULT_VENDOR_ID,
        product_id: int = L.DEFAULT_PRODUCT_ID,
        timeout_ms: int = 1000,
        retries: int = 3,
        max_transfer: int = 1 << 20,
    ) -> None:
        self.timeout_ms = check_count(timeout_ms, "timeout_ms", "milliseconds")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"retries must be an integer >= 0, got {retries!r}")
        self.max_transfer = check_count(max_transfer, "max_transfer", "bytes")
        self.retries = retries
        super().__init__()
        self.stats = CameraStats()
        pixel_formats.warm_up()  # no kernel compilation inside a read deadline
        self._transport = UsbCameraTransport(backend, vendor_id, product_id)
        self._channel = ControlChannel(
            self._transport, self.timeout_ms, retries, self._transaction, self.stats
        )
        self._acquiring = False
        self._reader: StreamReader | None = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self.device_info = self._read_abrm()
        self.sbrm = self._read_fields(B.SBRM, self.device_info.sbrm_address, B.decode_sbrm)
        self._channel.set_limits(self.sbrm.max_cmd_transfer, self.sbrm.max_ack_transfer)
        self._channel.timeout_ms = max(self.timeout_ms, self.device_info.max_response_time_ms)
        self.xml = self._download_xml()
        self.features = Features(self.xml, self._port_read, self._port_write)
        self.serial_number = self.device_info.serial_number
        self.sensor_width, self.sensor_height = sensor_size(self.features)
        self.bit_depth = sensor_bit_depth(self.features, KNOWN_BITS)
        self.features.execute("AcquisitionStop")
        self._set_stream_enabled(False)
        self._refresh_format()

    # ------------------------------------------------------------------ bootstrap

    def _read_abrm(self) -> B.DeviceInfo:
        raw = {}
        for name, f in B.ABRM.items():
            try:
                raw[name] = self._channel.read(f.offset, f.size, f"read of ABRM {name}")
            except CameraCommandError:
                if name not in _OPTIONAL_ABRM:
                    raise
                raw[name] = bytes(f.size)
        try:
            return B.decode_abrm(raw)
        except CodecError as e:
            raise CameraProtocolError(f"bootstrap (ABRM): {e}") from e

    def _read_fields(self, fields: dict[str, B.Field], base: int, decode: Any) -> Any:
        raw = {
            n: self._channel.read(base + f.offset, f.size, f"read of {n}")
            for n, f in fields.items()
        }
        try:
            return decode(raw)
        except CodecError as e:
            raise CameraProtocolError(f"bootstrap: {e}") from e

    def _download_xml(self) -> str:
        base = self.device_info.manifest_table_address
        try:
            n = manifest.decode_count(self._channel.read(base, manifest.COUNT_SIZE))
            table = (
                self._channel.read(base + manifest.COUNT_SIZE, n * manifest.ENTRY_SIZE)
                if n
                else b""
            )
            entries = manifest.decode_table(n.to_bytes(8, "little") + table)
            entry = manifest.device_xml_entry(entries)
            stored = b"".join(
                self._channel.read(a, c, "GenICam file download")
                for a, c in manifest.read_plan(entry.address, entry.size, self._channel.max_read)
            )
            return manifest.genicam_xml(entry, stored)
        except CodecError as e:
            raise CameraProtocolError(f"GenICam file from the manifest: {e}") from e

    def _port_read(self, address: int, length: int) -> bytes:
        return self._channel.read(address, length)

    def _port_write(self, address: int, data: bytes) -> None:
        self._channel.write(address, data)

    # ------------------------------------------------------------------ register access

    def read_register(self, address: int, count: int) -> bytes:
        """Raw read of `count` bytes at `address` (no host-side checks beyond the codec's)."""
        return self._channel.read(address, count)

    def write_register(self, address: int, data: bytes) -> None:
        """Raw write of `data` at `address` (no host-side checks beyond the codec's)."""
        self._channel.write(address, data)

    # ------------------------------------------------------------------ acquisition

    def _sirm(self, name: str) -> int:
        f = B.SIRM[name]
        return int(B.decode_field(f, self._channel.read(self.sbrm.sirm_address + f.offset, f.size)))

    def _write_sirm(self, name: str, value: int) -> None:
        f = B.SIRM[name]
        self._channel.write(
            self.sbrm.sirm_address + f.offset, B.encode_field(f, value), f"write of SIRM {name}"
        )

    def _set_stream_enabled(self, on: bool) -> None:
        self._write_sirm("si_control", B.SI_CONTROL_ENABLE if on else 0)

    def _configure_stream(self) -> B.StreamPlan:
        """Write the SIRM transfer sizes for the current payload and enable the stream."""
        self._set_stream_enabled(False)
        try:
            plan = B.plan_stream(
                self._sirm("required_payload_size"),
                self._sirm("required_leader_size"),
                self._sirm("required_trailer_size"),
                B.alignment_of(self._sirm("si_info")),
                self.max_transfer,
            )
        except (CodecError, InputError) as e:
            raise CameraProtocolError(f"the camera's SIRM cannot be configured: {e}") from e
        for name, value in plan.registers().items():
            self._write_sirm(name, value)
        self._set_stream_enabled(True)
        return plan

    def start(self) -> None:
        """Configure and enable the stream (SIRM), then AcquisitionStart: frame ids restart at
        0 and the host stream state is cleared."""
        self._refresh_format()
        fmt = self.pixel_format
        plan = self._configure_stream()
        tick = self.device_info.timestamp_increment_ns
        self._reader = StreamReader(
            lambda buf, t: self._transport.read_stream(buf, t),
            plan,
            StreamFormat(fmt, self._roi, tick),
        )
        self.features.execute("AcquisitionStart")
        self._acquiring = True

    def stop(self) -> None:
        """AcquisitionStop, then disable the stream."""
        self.features.execute("AcquisitionStop")
        self._acquiring = False
        self._set_stream_enabled(False)

    @property
    def stream_plan(self) -> B.StreamPlan | None:
        """The SIRM transfer configuration of the running stream (None before start())."""
        return self._reader.plan if self._reader is not None else None

    def read_frames(self, n: int, timeout_ms: int | None = None) -> FrameReadout:
        """The next n frames (ids first_id .. first_id + n - 1), waiting up to timeout_ms in all
        for the camera (frames already queued are read even past it). See readout.py for the
        per-frame statuses and what raises."""
        n, timeout = self._read_request(n, timeout_ms)
        if self._reader is None:
            raise CameraStateError("the camera is not acquiring; call start() before read_frames()")
        with self._transaction(), self.stats.timed("readout"):
            out = self._reader.read_frames(n, timeout)
        self.stats.count("frames", int(n))
        return out

    def skip_to(self, frame_id: int) -> None:
        """Continue reading at frame id `frame_id` (>= the next id to be read): frames with
        lower ids, buffered or still to arrive, are discarded as stale. Resynchronises the host
        after a faulty readout, e.g. with skip_to(camera["FrameCounter"])."""
        frame_id = check_frame_id(frame_id, self._reader.next_id if self._reader is not None else 0)
        if self._reader is not None:
            self._reader.skip_to(frame_id)

    # ------------------------------------------------------------------ lifetime

    def _do_close(self) -> None:
        """Stop acquiring (if the device is still there) and release the USB device."""
        try:
            if self._acquiring and self.state.value == "open":
                self.stop()
        except DeviceError:
            pass
        finally:
            self._acquiring = False
            self._transport.close()
