"""Bootstrap memory of the emulated USB3 Vision camera: ABRM, SBRM, SIRM, the manifest table and
the zipped GenICam XML (camera.xml), with the SIRM's stream configuration and its checks.

Address map of the device:

    0x000000  ABRM (0x210 bytes)          0x003000  manifest table (one entry)
    0x001000  SBRM (0x44 bytes)           0x010000  camera registers (camera_registers.py)
    0x002000  SIRM (0x30 bytes)           0x100000  GenICam file (ZIP)

Bootstrap areas read like memory (any range inside an area); writes must cover exactly one
writable register. Refusals, with the GenCP / USB3 Vision status a camera answers (status names
from the AIA's Wireshark dissector and Aravis' arvuvcpprivate.h):

- a write to a read-only bootstrap register: WRITE_PROTECT;
- a write that starts inside a register or covers part of one: BAD_ALIGNMENT;
- a write to the SIRM's transfer sizes while the stream is enabled: ACCESS_DENIED (the host
  must disable the stream to reconfigure it, as Aravis and GenTL producers do);
- SI_Control = enable with transfer sizes that are not multiples of the alignment in SI_Info:
  SI_PAYLOAD_SIZE_NOT_ALIGNED; with transfers that cannot carry the required leader, payload
  or trailer: SI_REGISTERS_INCONSISTENT (bootstrap.check_stream_plan); the stream stays off.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from importlib import resources

from firmware_iface.camera import bootstrap as B
from firmware_iface.camera import manifest, stream
from firmware_iface.camera import usb_layout as L
from firmware_iface.camera.status import Status

ABRM_ADDRESS = 0x000000
ABRM_SIZE = 0x210
SBRM_ADDRESS = 0x001000
SBRM_SIZE = 0x44
SIRM_ADDRESS = 0x002000
MANIFEST_ADDRESS = 0x003000
XML_ADDRESS = 0x100000
#: control-channel limits the device announces in its SBRM, bytes
MAX_CMD_TRANSFER = 1024
MAX_ACK_TRANSFER = 1024
#: required transfer alignment: the SuperSpeed bulk packet size
ALIGNMENT = L.MAX_PACKET_SIZE
GENCP_VERSION = 0x00010000  # 1.0
U3V_VERSION = 0x00010000  # 1.0
#: device capability: family name implemented (bit 8)
DEVICE_CAPABILITY = B.CAP_FAMILY_NAME
MAX_RESPONSE_TIME_MS = 50
#: writable SIRM registers (the stream configuration) and SI_Control
_SIRM_WRITABLE = set(B.SIRM_CONFIG) | {"si_control"}


_XML_EXPOSURE = "<pValue>ExposureTime_Reg</pValue>\n    <Min>1.0</Min>\n    <Max>10000000.0</Max>"


def camera_xml(exposure_range_us: tuple[float, float] | None = None) -> str:
    """The GenICam XML text of the emulated camera (opu_sim/emulators/camera.xml); with
    `exposure_range_us` (min, max), the ExposureTime feature's <Min>/<Max> are that camera's."""
    xml = resources.files(__package__).joinpath("camera.xml").read_text(encoding="utf-8")
    if exposure_range_us is None:
        return xml
    if _XML_EXPOSURE not in xml:  # pragma: no cover - camera.xml edited without this function
        raise RuntimeError("camera.xml: the ExposureTime <Min>/<Max> block is not as expected")
    lo, hi = (float(v) for v in exposure_range_us)
    return xml.replace(
        _XML_EXPOSURE,
        f"<pValue>ExposureTime_Reg</pValue>\n    <Min>{lo!r}</Min>\n    <Max>{hi!r}</Max>",
    )


@functools.lru_cache(maxsize=8)
def camera_xml_zip(exposure_range_us: tuple[float, float] | None = None) -> bytes:
    """The device's stored GenICam file: camera_xml(exposure_range_us) in a ZIP (built once
    per range)."""
    return manifest.zip_xml(camera_xml(exposure_range_us), "OPUStack_CameraEmulator.xml")


def _block(fields: dict[str, B.Field], values: dict[str, int | str], size: int) -> bytearray:
    out = bytearray(size)
    for name, value in values.items():
        f = fields[name]
        out[f.offset : f.offset + f.size] = B.encode_field(f, value)
    return out


class BootstrapMemory:
    """The bootstrap areas of one emulated camera. `required_payload()` gives the current
    payload size in bytes (from the image-format registers); the stored XML states the
    camera's `exposure_range_us` (None: the register map's)."""

    def __init__(
        self,
        strings: dict[str, str],
        required_payload: Callable[[], int],
        exposure_range_us: tuple[float, float] | None = None,
    ) -> None:
        self._required_payload = required_payload
        zipped = camera_xml_zip(exposure_range_us)
        entry = manifest.ManifestEntry(
            (1, 0, 0),
            manifest.FILE_TYPE_DEVICE_XML,
            manifest.COMPRESSION_ZIP,
            (1, 1),
            XML_ADDRESS,
            len(zipped),
            hashlib.sha1(zipped).digest(),
        )
        self._areas: list[tuple[int, bytes | bytearray]] = [
            (ABRM_ADDRESS, self._abrm(strings)),
            (SBRM_ADDRESS, self._sbrm()),
            (MANIFEST_ADDRESS, manifest.encode_table([entry])),
            (XML_ADDRESS, zipped),
        ]
        self.sirm = {name: 0 for name in B.SIRM}
        self.sirm["si_info"] = (ALIGNMENT.bit_length() - 1) << 24
        self.sirm["required_leader_size"] = stream.LEADER_SIZE
        self.sirm["required_trailer_size"] = stream.TRAILER_SIZE
        self._plan: B.StreamPlan | None = None  # latched at enable (the registers are locked)

    @staticmethod
    def _abrm(strings: dict[str, str]) -> bytearray:
        values: dict[str, int | str] = dict(strings)
        values.update(
            gencp_version=GENCP_VERSION,
            device_capability=DEVICE_CAPABILITY,
            max_response_time_ms=MAX_RESPONSE_TIME_MS,
            manifest_table_address=MANIFEST_ADDRESS,
            sbrm_address=SBRM_ADDRESS,
            timestamp_increment_ns=1,
        )
        return _block(B.ABRM, values, ABRM_SIZE)

    @staticmethod
    def _sbrm() -> bytearray:
        values = dict(
            u3v_version=U3V_VERSION,
            u3vcp_capability=0x1,  # bit 0: SIRM available
            max_cmd_transfer=MAX_CMD_TRANSFER,
            max_ack_transfer=MAX_ACK_TRANSFER,
            n_stream_channels=1,
            sirm_address=SIRM_ADDRESS,
            sirm_length=B.SIRM_LENGTH,
        )
        return _block(B.SBRM, values, SBRM_SIZE)

    @property
    def stream_enabled(self) -> bool:
        """True while SI_Control's enable bit is set."""
        return bool(self.sirm["si_control"] & B.SI_CONTROL_ENABLE)

    def plan(self) -> B.StreamPlan:
        """The stream configuration the host wrote (latched while the stream is enabled)."""
        if self._plan is None:
            return B.StreamPlan(*(self.sirm[name] for name in B.SIRM_CONFIG))
        return self._plan

    def _sirm_block(self) -> bytearray:
        self.sirm["required_payload_size"] = self._required_payload()
        return _block(B.SIRM, self.sirm, B.SIRM_LENGTH)

    def read(self, address: int, count: int) -> tuple[Status, bytes] | None:
        """(status, data) for a read inside a bootstrap area; None when the address is in none."""
        areas = [*self._areas, (SIRM_ADDRESS, None)]
        for base, data in areas:
            size = B.SIRM_LENGTH if data is None else len(data)
            if base <= address < base + size:
                if address + count > base + size:
                    return Status.INVALID_ADDRESS, b""
                block = self._sirm_block() if data is None else data
                return Status.SUCCESS, bytes(block[address - base : address - base + count])
        return None

    def write(self, address: int, data: bytes) -> Status | None:
        """Status of a write inside a bootstrap area; None when the address is in none."""
        for base, block in self._areas:
            if base <= address < base + len(block):
                return Status.WRITE_PROTECT
        if not SIRM_ADDRESS <= address < SIRM_ADDRESS + B.SIRM_LENGTH:
            return None
        field = next((f for f in B.SIRM.values() if f.offset == address - SIRM_ADDRESS), None)
        if field is None or len(data) != field.size:
            return Status.BAD_ALIGNMENT
        if field.name not in _SIRM_WRITABLE:
            return Status.WRITE_PROTECT
        value = int.from_bytes(data, "little")
        if field.name == "si_control":
            return self._set_control(value)
        if self.stream_enabled:
            return Status.ACCESS_DENIED
        self.sirm[field.name] = value
        return Status.SUCCESS

    def _set_control(self, value: int) -> Status:
        if value & B.SI_CONTROL_ENABLE and not self.stream_enabled:
            status = B.check_stream_plan(
                self.plan(),
                self._required_payload(),
                self.sirm["required_leader_size"],
                self.sirm["required_trailer_size"],
                ALIGNMENT,
            )
            if status != Status.SUCCESS:
                return status
        self.sirm["si_control"] = value & B.SI_CONTROL_ENABLE
        self._plan = None
        if self.stream_enabled:
            self._plan = self.plan()
        return Status.SUCCESS
