"""Device side of the USB3 Vision camera: bootstrap registers, GenICam XML, private registers,
acknowledges, stream blocks, fault injection.

`CameraEmulator` answers the control protocol of firmware_iface.camera strictly (addresses,
sizes, access rules, ranges, request ids): the ABRM / SBRM / SIRM and the manifest with its
zipped GenICam XML (camera_bootstrap.py), and the private registers that XML describes
(camera_registers.py). It turns frames handed to `deliver()` into leader / payload / trailer
transfers, sent only while the host has enabled the stream in the SIRM, and read by the host at
the USB packet level (camera_packets.py). `CameraBackend(emulator)` (camera_usb.py) is a pyusb
backend object, so the unchanged driver reaches the emulator through usb.core.find(backend=...).

Frames are rendered elsewhere (the test rig runs opu_sim's physics); `deliver` takes them in DN
at the sensor's bit depth and, like a real camera, keeps the top bits for narrower pixel formats
(Mono8 from a 12-bit sensor is frame >> 4).

Timing model: nothing here sleeps except a stream read on an empty queue, which waits (on a
condition variable) up to the transfer's timeout for `deliver` from another thread. Injected
timeouts (`CameraFaults.usb_timeouts`) fail at once.
"""

from __future__ import annotations

import math
import struct
import threading
from collections import deque
from collections.abc import Callable

from firmware_iface.camera import control
from firmware_iface.camera import usb_layout as L
from firmware_iface.camera.pixel_formats import SIGNIFICANT_BITS, PixelFormat, payload_size
from firmware_iface.camera.status import Status
from firmware_iface.errors import ConfigurationError
from firmware_iface.geometry import CameraRoi

from . import camera_registers as registers
from .camera_bootstrap import MAX_ACK_TRANSFER, MAX_CMD_TRANSFER, BootstrapMemory
from .camera_faults import CameraFaults
from .camera_packets import PacketStream
from .camera_registers import REGISTERS
from .camera_stream import StreamSide
from .camera_usb import DEVICE_INFO, CameraBackend, bad_endpoint, no_device, overflow, timed_out

__all__ = ["CameraBackend", "CameraEmulator", "CameraFaults", "DEVICE_INFO"]

_IMAGE_FORMAT = ("Width", "Height", "OffsetX", "OffsetY", "PixelFormat")


class CameraEmulator(StreamSide):
    """An emulated camera of `sensor_width` x `sensor_height` pixels with a `bit_depth`-bit ADC.

    Power-up state: full-sensor ROI, PixelFormat Mono<bit_depth> (unpacked), ExposureTime
    1000 us (within `exposure_range_us`), Gain 0 dB, TriggerMode Off, TriggerSource Line0, not
    acquiring, stream disabled. `exposure_range_us` (min, max): the ExposureTime range this
    camera accepts and states in its GenICam XML (default: the register map's 1 us .. 10 s).
    """

    def __init__(
        self,
        sensor_width: int = 1920,
        sensor_height: int = 1200,
        bit_depth: int = 12,
        serial: str = "EMU-CAM-0001",
        vendor_id: int = L.DEFAULT_VENDOR_ID,
        product_id: int = L.DEFAULT_PRODUCT_ID,
        exposure_range_us: tuple[float, float] | None = None,
    ) -> None:
        if bit_depth not in (8, 10, 12):
            raise ConfigurationError(f"bit_depth must be 8, 10 or 12, got {bit_depth}")
        if sensor_width < 1 or sensor_height < 1:
            raise ConfigurationError(
                f"sensor must be at least 1x1, got {sensor_width}x{sensor_height}"
            )
        registers.encode_value(REGISTERS["DeviceSerialNumber"], serial)  # validates the serial
        reg = REGISTERS["ExposureTime"]
        lo, hi = exposure_range_us if exposure_range_us is not None else (reg.minimum, reg.maximum)
        if not reg.minimum <= lo < hi <= reg.maximum:
            raise ConfigurationError(
                f"exposure_range_us must satisfy {reg.minimum:g} <= min < max <= "
                f"{reg.maximum:g} us (the ExposureTime register), got {exposure_range_us}"
            )
        self.exposure_range_us = (float(lo), float(hi))
        self.sensor_width = int(sensor_width)
        self.sensor_height = int(sensor_height)
        self.bit_depth = int(bit_depth)
        self.serial = serial
        self.vendor_id = vendor_id
        self.product_id = product_id
        self._lock = threading.RLock()
        self._stream_ready = threading.Condition(self._lock)
        self._width, self._height = self.sensor_width, self.sensor_height
        self._offset_x = self._offset_y = 0
        self._format = {8: PixelFormat.Mono8, 10: PixelFormat.Mono10, 12: PixelFormat.Mono12}[
            bit_depth
        ]
        self._exposure_us = min(max(1000.0, self.exposure_range_us[0]), self.exposure_range_us[1])
        self._gain_db = 0.0
        self._trigger_mode = 0
        self._trigger_source = registers.TRIGGER_SOURCES["Line0"]
        self._acquiring = False
        self._frame_counter = 0
        self._missed_triggers = 0
        self._acks: deque[bytes] = deque()
        self._stream = PacketStream()
        self._last_request: tuple[int, bytes] | None = None
        self.bootstrap = BootstrapMemory(
            self._abrm_strings(),
            self._payload_size,
            self.exposure_range_us if exposure_range_us is not None else None,
        )
        self._setters: dict[str, Callable[[int | float], Status]] = self._make_setters()
        self.faults = CameraFaults()

    def _abrm_strings(self) -> dict[str, str]:
        return {
            "manufacturer_name": "OPU stack",
            "model_name": "CameraEmulator",
            "family_name": "opu_sim",
            "device_version": "1.0",
            "manufacturer_info": "emulated USB3 Vision camera (opu_sim.emulators.camera)",
            "serial_number": self.serial,
            "user_defined_name": "",
        }

    def usb_strings(self) -> dict[int, str]:
        """USB string descriptors by index (those the device info descriptor points to)."""
        abrm = self._abrm_strings()
        return {
            1: abrm["manufacturer_name"],
            2: abrm["model_name"],
            3: self.serial,
            4: f"OPU-{self.serial}",
            5: abrm["family_name"],
            6: abrm["device_version"],
            7: abrm["manufacturer_info"],
        }

    # ------------------------------------------------------------------ settings and state

    @property
    def faults(self) -> CameraFaults:
        """Current fault settings; assigning new ones resets the timeout/busy counters and RNG."""
        return self._faults

    @faults.setter
    def faults(self, value: CameraFaults) -> None:
        if not isinstance(value, CameraFaults):
            raise ConfigurationError(f"faults must be a CameraFaults, got {type(value).__name__}")
        with self._lock:
            self._faults = value
            self._stream_ready.notify_all()

    @property
    def connected(self) -> bool:
        """False while the `disconnect` fault is set."""
        return not self._faults.disconnect

    @property
    def roi(self) -> CameraRoi:
        """Current ROI from the Width/Height/OffsetX/OffsetY registers."""
        with self._lock:
            return CameraRoi(
                self._offset_x,
                self._offset_y,
                self._width,
                self._height,
                self.sensor_width,
                self.sensor_height,
            )

    @property
    def exposure_us(self) -> float:
        """ExposureTime register, microseconds."""
        return self._exposure_us

    @property
    def gain_db(self) -> float:
        """Gain register, dB."""
        return self._gain_db

    @property
    def pixel_format(self) -> PixelFormat:
        """PixelFormat register."""
        return self._format

    @property
    def acquiring(self) -> bool:
        """True between AcquisitionStart and AcquisitionStop."""
        return self._acquiring

    @property
    def stream_enabled(self) -> bool:
        """True while the host has enabled the stream interface (SIRM SI_Control)."""
        return self.bootstrap.stream_enabled

    @property
    def trigger_mode(self) -> str:
        """TriggerMode register: "On" or "Off"."""
        return "On" if self._trigger_mode else "Off"

    @property
    def trigger_source(self) -> str:
        """TriggerSource register: "Software", "Line0" or "Line1"."""
        return next(k for k, v in registers.TRIGGER_SOURCES.items() if v == self._trigger_source)

    @property
    def frame_counter(self) -> int:
        """Frames acquired (ids assigned) since AcquisitionStart."""
        return self._frame_counter

    @property
    def missed_triggers(self) -> int:
        """Frames handed to deliver() while not acquiring or with TriggerMode Off."""
        return self._missed_triggers

    @property
    def pending_transfers(self) -> int:
        """Stream transfers queued and not yet (completely) read by the host."""
        return len(self._stream)

    def _payload_size(self) -> int:
        return payload_size(self._format, self._width * self._height)

    # ------------------------------------------------------------------ control side

    def handle_command(self, data: bytes) -> bytes:
        """Execute one command transfer and return its acknowledge bytes."""
        with self._lock:
            try:
                cmd = control.decode_command(data)
            except control.ControlCodecError as e:
                cid = (
                    struct.unpack_from("<H", data, 6)[0]
                    if len(data) >= 8
                    else control.CommandId.READMEM_CMD
                )
                return control.encode_ack(e.status, control.ack_id_for(cid), e.request_id or 0)
            read = isinstance(cmd, control.ReadCommand)
            cid = control.CommandId.READMEM_CMD if read else control.CommandId.WRITEMEM_CMD
            ack_id = control.ack_id_for(cid)
            if self._last_request is not None and self._last_request[0] == cmd.request_id:
                return self._last_request[1]  # a host retry: answer again, do not execute twice
            if self._faults.take("busy_commands"):
                return control.encode_ack(Status.BUSY, ack_id, cmd.request_id)
            status, payload = self._execute(cmd)
            if status != Status.SUCCESS:
                ack = control.encode_ack(status, ack_id, cmd.request_id)
            elif read:
                ack = control.encode_read_ack(cmd.request_id, payload)
            else:
                ack = control.encode_write_ack(cmd.request_id, len(cmd.data))
            self._last_request = (cmd.request_id, ack)
            return ack

    def _execute(self, cmd: control.ReadCommand | control.WriteCommand) -> tuple[Status, bytes]:
        if isinstance(cmd, control.ReadCommand):
            if cmd.count > self.bootstrap_max_read:
                return Status.INVALID_PARAMETER, b""
            served = self.bootstrap.read(cmd.address, cmd.count)
            if served is not None:
                return served
            return self._read_register(cmd.address, cmd.count)
        status = self.bootstrap.write(cmd.address, cmd.data)
        if status is not None:
            return status, b""
        return self._write_register(cmd.address, cmd.data), b""

    @property
    def bootstrap_max_read(self) -> int:
        """Largest READMEM count the device answers (SBRM max acknowledge length - header)."""
        return MAX_ACK_TRANSFER - control.HEADER_SIZE

    def _read_register(self, address: int, count: int) -> tuple[Status, bytes]:
        reg = registers.BY_ADDRESS.get(address)
        if reg is None:
            inside = registers.containing(address)
            return (Status.BAD_ALIGNMENT if inside else Status.INVALID_ADDRESS), b""
        if count != reg.size:
            return Status.INVALID_PARAMETER, b""
        if not reg.readable:
            return Status.ACCESS_DENIED, b""  # a command has no value to read
        return Status.SUCCESS, registers.encode_value(reg, self._value(reg.name))

    def _write_register(self, address: int, data: bytes) -> Status:
        reg = registers.BY_ADDRESS.get(address)
        if reg is None:
            inside = registers.containing(address)
            return Status.BAD_ALIGNMENT if inside else Status.INVALID_ADDRESS
        if len(data) != reg.size:
            return Status.INVALID_PARAMETER
        if not reg.writable:
            return Status.WRITE_PROTECT  # read-only by nature
        # image format locked while acquiring or while the stream is configured (SFNC
        # TLParamsLocked: transport-layer parameters are locked while streaming)
        if reg.locked_while_acquiring and (self._acquiring or self.bootstrap.stream_enabled):
            return Status.ACCESS_DENIED
        return self._setters[reg.name](registers.decode_raw(reg, data))

    def _value(self, name: str) -> int | float | str:
        return {
            "DeviceSerialNumber": self.serial,
            "SensorWidth": self.sensor_width,
            "SensorHeight": self.sensor_height,
            "PixelBitDepth": self.bit_depth,
            "Width": self._width,
            "Height": self._height,
            "OffsetX": self._offset_x,
            "OffsetY": self._offset_y,
            "PixelFormat": int(self._format),
            "PayloadSize": self._payload_size(),
            "ExposureTime": self._exposure_us,
            "Gain": self._gain_db,
            "TriggerMode": self._trigger_mode,
            "TriggerSource": self._trigger_source,
            "AcquisitionStatus": int(self._acquiring),
            "FrameCounter": self._frame_counter,
            "MissedTriggerCounter": self._missed_triggers,
        }[name]

    # ------------------------------------------------------------------ register setters

    def _make_setters(self) -> dict[str, Callable[[int | float], Status]]:
        def roi(attr: str, lo: int, room: Callable[[], int]) -> Callable[[int | float], Status]:
            def set_(v: int | float) -> Status:
                if not lo <= v <= room():
                    return Status.INVALID_PARAMETER
                setattr(self, attr, int(v))
                return Status.SUCCESS

            return set_

        def number(
            attr: str, name: str, limits: tuple[float, float] | None = None
        ) -> Callable[[int | float], Status]:
            reg = REGISTERS[name]
            lo, hi = limits if limits is not None else (reg.minimum, reg.maximum)

            def set_(v: int | float) -> Status:
                if not (math.isfinite(v) and lo <= v <= hi):
                    return Status.INVALID_PARAMETER
                setattr(self, attr, float(v))
                return Status.SUCCESS

            return set_

        def choice(attr: str, allowed: dict[str, int]) -> Callable[[int | float], Status]:
            def set_(v: int | float) -> Status:
                if v not in allowed.values():
                    return Status.INVALID_PARAMETER
                setattr(self, attr, int(v))
                return Status.SUCCESS

            return set_

        return {
            "Width": roi("_width", 1, lambda: self.sensor_width - self._offset_x),
            "Height": roi("_height", 1, lambda: self.sensor_height - self._offset_y),
            "OffsetX": roi("_offset_x", 0, lambda: self.sensor_width - self._width),
            "OffsetY": roi("_offset_y", 0, lambda: self.sensor_height - self._height),
            "PixelFormat": self._set_pixel_format,
            "ExposureTime": number("_exposure_us", "ExposureTime", self.exposure_range_us),
            "Gain": number("_gain_db", "Gain"),
            "TriggerMode": choice("_trigger_mode", registers.TRIGGER_MODES),
            "TriggerSource": choice("_trigger_source", registers.TRIGGER_SOURCES),
            "AcquisitionStart": self._start,
            "AcquisitionStop": self._stop,
        }

    def _set_pixel_format(self, v: int | float) -> Status:
        try:
            fmt = PixelFormat(int(v))
        except ValueError:
            return Status.INVALID_PARAMETER
        if SIGNIFICANT_BITS[fmt] > self.bit_depth:
            return Status.INVALID_PARAMETER
        self._format = fmt
        return Status.SUCCESS

    def _start(self, v: int | float) -> Status:
        if v != 1:
            return Status.INVALID_PARAMETER
        if not self._acquiring:
            self._acquiring = True
            self._frame_counter = 0
            self._stream.clear()  # a new acquisition starts with an empty stream
        return Status.SUCCESS

    def _stop(self, v: int | float) -> Status:
        if v != 1:
            return Status.INVALID_PARAMETER
        self._acquiring = False
        return Status.SUCCESS

    # ------------------------------------------------------------------ USB endpoints

    def _check_transfer(self) -> None:
        if self._faults.disconnect:
            self._faults.fire("disconnect")
            raise no_device()
        if self._faults.take("usb_timeouts"):
            raise timed_out(" (injected)")

    def bulk_out(self, ep: int, data: bytes) -> int:
        """Host -> device transfer on endpoint `ep`; returns the bytes accepted."""
        with self._lock:
            self._check_transfer()
            if ep != L.EP_CONTROL_OUT:
                raise bad_endpoint(f"no bulk OUT endpoint {ep:#04x}")
            if len(data) > MAX_CMD_TRANSFER:
                ack = control.encode_ack(Status.INVALID_HEADER, control.CommandId.READMEM_ACK, 0)
            else:
                ack = self.handle_command(bytes(data))
            self._acks.append(ack)
            return len(data)

    def bulk_read(self, ep: int, size: int, timeout_ms: int) -> bytes:
        """Device -> host transfer of at most `size` bytes; a stream read waits up to
        timeout_ms for data and is cut at the USB packet level (camera_packets.py)."""
        with self._lock:
            self._check_transfer()
            if ep == L.EP_CONTROL_IN:
                if not self._acks:
                    raise timed_out()
                data = self._acks.popleft()
                if len(data) > size:
                    raise overflow(f"Overflow: {len(data)}-byte acknowledge into {size} bytes")
                return data
            if ep != L.EP_STREAM_IN:
                raise bad_endpoint(f"no bulk IN endpoint {ep:#04x}")
            if not self._stream:
                self._stream_ready.wait_for(
                    lambda: bool(self._stream) or self._faults.disconnect,
                    timeout=(timeout_ms / 1000.0) if timeout_ms else None,
                )
                if self._faults.disconnect:
                    raise no_device()
            if not self._stream:
                raise timed_out()
            return self._stream.read(size)
