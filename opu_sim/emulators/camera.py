"""Device side of the USB camera: register map, acknowledges, stream blocks, fault injection.

`CameraEmulator` answers the control protocol of firmware_iface.camera strictly (addresses,
sizes, access rules, ranges, request ids) and turns frames handed to `deliver()` into leader /
payload / trailer transfers. `CameraBackend(emulator)` is a pyusb backend object, so the unchanged
driver reaches the emulator through `usb.core.find(backend=...)`.

Frames are rendered elsewhere (the test rig runs opu_sim's physics); `deliver` takes them in DN
at the sensor's bit depth and, like a real camera, keeps the top bits for narrower pixel formats
(Mono8 from a 12-bit sensor is frame >> 4).

Timing model: nothing here sleeps except a stream read on an empty queue, which waits (on a
condition variable) up to the transfer's timeout for `deliver` from another thread. Injected
timeouts (`CameraFaults.usb_timeouts`) fail at once.
"""

from __future__ import annotations

import array
import errno
import math
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import usb.backend
import usb.core

from firmware_iface.camera import control, registers, stream
from firmware_iface.camera import usb_layout as L
from firmware_iface.camera.pixel_formats import SIGNIFICANT_BITS, PixelFormat, pack, payload_size
from firmware_iface.camera.registers import REGISTERS
from firmware_iface.camera.status import Status
from firmware_iface.errors import ConfigurationError, InputError
from firmware_iface.geometry import CameraRoi

_LIBUSB_ERROR_NO_DEVICE = -4
_LIBUSB_ERROR_TIMEOUT = -7
_LIBUSB_ERROR_OVERFLOW = -8
_LIBUSB_ERROR_PIPE = -9
_LIBUSB_ERROR_INVALID_PARAM = -2


def _ids(value: object, name: str) -> frozenset[int]:
    try:
        out = frozenset(int(v) for v in value)  # type: ignore[union-attr]
    except TypeError:
        raise ConfigurationError(
            f"{name} must be a collection of frame ids, got {value!r}"
        ) from None
    if any(v < 0 for v in out):
        raise ConfigurationError(f"{name} holds negative frame ids: {sorted(out)}")
    return out


@dataclass(frozen=True)
class CameraFaults:
    """Fault injection settings of the emulated camera (frame ids count from AcquisitionStart).

    drop_frames: ids whose three stream transfers are never sent.
    drop_rate: probability (0..1) that any other frame is dropped, drawn from `seed`.
    duplicate_frames: ids whose leader/payload/trailer are sent twice.
    corrupt_trailer: ids whose trailer carries a wrong block id (bit 0 flipped).
    trailer_error: ids whose trailer status is DATA_DISCARDED (payload intact).
    truncate_payload: ids whose payload transfer loses its second half (trailer unchanged).
    usb_timeouts: the next N bulk transfers (any endpoint) time out; the data stays queued and a
        timed-out command is lost.
    busy_commands: the next N commands are answered BUSY without being executed.
    disconnect: the device vanishes: it no longer enumerates and every transfer fails (ENODEV).
    """

    drop_frames: frozenset[int] = frozenset()
    drop_rate: float = 0.0
    seed: int = 0
    duplicate_frames: frozenset[int] = frozenset()
    corrupt_trailer: frozenset[int] = frozenset()
    trailer_error: frozenset[int] = frozenset()
    truncate_payload: frozenset[int] = frozenset()
    usb_timeouts: int = 0
    busy_commands: int = 0
    disconnect: bool = False

    def __post_init__(self) -> None:
        for name in (
            "drop_frames",
            "duplicate_frames",
            "corrupt_trailer",
            "trailer_error",
            "truncate_payload",
        ):
            object.__setattr__(self, name, _ids(getattr(self, name), name))
        if not 0.0 <= float(self.drop_rate) <= 1.0:
            raise ConfigurationError(f"drop_rate must be in 0..1, got {self.drop_rate}")
        for name in ("usb_timeouts", "busy_commands"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigurationError(f"{name} must be an integer >= 0, got {v!r}")


def _usb_error(message: str, err: int, code: int) -> usb.core.USBError:
    if code == _LIBUSB_ERROR_TIMEOUT:
        return usb.core.USBTimeoutError(message, code, err)
    return usb.core.USBError(message, code, err)


class CameraEmulator:
    """An emulated camera of `sensor_width` x `sensor_height` pixels with a `bit_depth`-bit ADC.

    Power-up state: full-sensor ROI, PixelFormat Mono<bit_depth> (unpacked), ExposureTime
    1000 us, Gain 0 dB, TriggerMode Off, TriggerSource Line0, not acquiring.
    """

    def __init__(
        self,
        sensor_width: int = 1920,
        sensor_height: int = 1200,
        bit_depth: int = 12,
        serial: str = "EMU-CAM-0001",
        vendor_id: int = L.DEFAULT_VENDOR_ID,
        product_id: int = L.DEFAULT_PRODUCT_ID,
    ) -> None:
        if bit_depth not in (8, 10, 12):
            raise ConfigurationError(f"bit_depth must be 8, 10 or 12, got {bit_depth}")
        if sensor_width < 1 or sensor_height < 1:
            raise ConfigurationError(
                f"sensor must be at least 1x1, got {sensor_width}x{sensor_height}"
            )
        registers.encode_value(REGISTERS["DeviceSerialNumber"], serial)  # validates the serial
        self.sensor_width = int(sensor_width)
        self.sensor_height = int(sensor_height)
        self.bit_depth = int(bit_depth)
        self.serial = serial
        self.vendor_id = vendor_id
        self.product_id = product_id
        self._lock = threading.RLock()
        self._stream_ready = threading.Condition(self._lock)
        self._width = self.sensor_width
        self._height = self.sensor_height
        self._offset_x = 0
        self._offset_y = 0
        self._format = {8: PixelFormat.Mono8, 10: PixelFormat.Mono10, 12: PixelFormat.Mono12}[
            bit_depth
        ]
        self._exposure_us = 1000.0
        self._gain_db = 0.0
        self._trigger_mode = 0
        self._trigger_source = registers.TRIGGER_SOURCES["Line0"]
        self._acquiring = False
        self._frame_counter = 0
        self._missed_triggers = 0
        self._acks: deque[bytes] = deque()
        self._stream: deque[bytes] = deque()
        self._last_request: tuple[int, bytes] | None = None
        self.faults = CameraFaults()

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
            self._timeouts_left = value.usb_timeouts
            self._busy_left = value.busy_commands
            self._rng = np.random.default_rng(value.seed)
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
        """Stream transfers queued and not yet read by the host."""
        return len(self._stream)

    # ------------------------------------------------------------------ stream side

    def deliver(self, frames_dn: np.ndarray, timestamps_us: np.ndarray) -> np.ndarray:
        """Queue frames exposed by the rig; returns the frame ids assigned (int64).

        frames_dn: (n, Height, Width) uint8 or uint16 counts at the sensor bit depth (DN).
        timestamps_us: (n,) device time of each exposure start, microseconds (>= 0, finite);
            sent in the leader as integer nanoseconds (rounded to 1 ns).
        Frames arriving while not acquiring or with TriggerMode Off are not acquired (the camera
        ignores the trigger): they count in MissedTriggerCounter and get no id.
        Raises InputError for a wrong shape, dtype or out-of-range values.
        """
        f = np.asarray(frames_dn)
        t = np.asarray(timestamps_us)
        with self._lock:
            h, w = self._height, self._width
            if f.ndim != 3 or f.shape[1:] != (h, w):
                raise InputError(
                    f"frames must have shape (n, {h}, {w}) to match the current ROI, got {f.shape}"
                )
            if f.dtype not in (np.uint8, np.uint16):
                raise InputError(f"frames must be uint8 or uint16 DN, got dtype {f.dtype}")
            if f.size and int(f.max()) > (1 << self.bit_depth) - 1:
                raise InputError(
                    f"frame values up to {int(f.max())} DN exceed the {self.bit_depth}-bit "
                    "sensor's "
                    f"maximum {(1 << self.bit_depth) - 1}"
                )
            if t.shape != (f.shape[0],) or t.dtype.kind not in "uif":
                raise InputError(
                    f"timestamps_us must be a ({f.shape[0]},) number array, got {t.shape} {t.dtype}"
                )
            t_ns = np.rint(t.astype(np.float64) * 1000.0)
            if not np.all(np.isfinite(t_ns)) or np.any(t_ns < 0) or np.any(t_ns >= 2.0**63):
                raise InputError("timestamps_us must be finite, >= 0 and below 2**63 ns")
            if not self._acquiring or not self._trigger_mode or self._faults.disconnect:
                self._missed_triggers += f.shape[0]
                return np.empty(0, dtype=np.int64)
            fmt = self._format
            shift = self.bit_depth - SIGNIFICANT_BITS[fmt]
            ids = np.arange(self._frame_counter, self._frame_counter + f.shape[0], dtype=np.int64)
            self._frame_counter += f.shape[0]
            faults = self._faults
            for k, fid in enumerate(ids.tolist()):
                dropped = fid in faults.drop_frames or (
                    faults.drop_rate > 0 and self._rng.random() < faults.drop_rate
                )
                if dropped:
                    continue
                pixels = f[k] >> shift if shift else f[k]
                leader = stream.Leader(fid, int(t_ns[k]), fmt, w, h, self._offset_x, self._offset_y)
                payload = pack(pixels, fmt)
                size = len(payload)
                if fid in faults.truncate_payload:
                    payload = payload[: size // 2]
                trailer = stream.Trailer(
                    fid ^ 1 if fid in faults.corrupt_trailer else fid,
                    Status.DATA_DISCARDED if fid in faults.trailer_error else Status.SUCCESS,
                    size,
                    h,
                )
                blocks = [stream.encode_leader(leader), payload, stream.encode_trailer(trailer)]
                copies = 2 if fid in faults.duplicate_frames else 1
                for _ in range(copies):
                    self._stream.extend(blocks)
            self._stream_ready.notify_all()
            return ids

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
            cid = (
                control.CommandId.READMEM_CMD
                if isinstance(cmd, control.ReadCommand)
                else control.CommandId.WRITEMEM_CMD
            )
            ack_id = control.ack_id_for(cid)
            if self._last_request is not None and self._last_request[0] == cmd.request_id:
                return self._last_request[1]  # a host retry: answer again, do not execute twice
            if self._busy_left > 0:
                self._busy_left -= 1
                return control.encode_ack(Status.BUSY, ack_id, cmd.request_id)
            status, payload = self._execute(cmd)
            if status != Status.SUCCESS:
                ack = control.encode_ack(status, ack_id, cmd.request_id)
            elif isinstance(cmd, control.ReadCommand):
                ack = control.encode_read_ack(cmd.request_id, payload)
            else:
                ack = control.encode_write_ack(cmd.request_id, len(cmd.data))
            self._last_request = (cmd.request_id, ack)
            return ack

    def _execute(self, cmd: control.ReadCommand | control.WriteCommand) -> tuple[Status, bytes]:
        reg = registers.BY_ADDRESS.get(cmd.address)
        if reg is None:
            inside = registers.containing(cmd.address)
            return (Status.BAD_ALIGNMENT if inside else Status.INVALID_ADDRESS), b""
        if isinstance(cmd, control.ReadCommand):
            if cmd.count != reg.size:
                return Status.INVALID_PARAMETER, b""
            if not reg.readable:
                return Status.ACCESS_DENIED, b""
            return Status.SUCCESS, registers.encode_value(reg, self._read(reg.name))
        if len(cmd.data) != reg.size:
            return Status.INVALID_PARAMETER, b""
        if not reg.writable or (reg.locked_while_acquiring and self._acquiring):
            return Status.ACCESS_DENIED, b""
        return self._write(reg.name, registers.decode_raw(reg, cmd.data)), b""

    def _read(self, name: str) -> int | float | str:
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
            "PayloadSize": payload_size(self._format, self._width * self._height),
            "ExposureTime": self._exposure_us,
            "Gain": self._gain_db,
            "TriggerMode": self._trigger_mode,
            "TriggerSource": self._trigger_source,
            "AcquisitionStatus": int(self._acquiring),
            "FrameCounter": self._frame_counter,
            "MissedTriggerCounter": self._missed_triggers,
        }[name]

    def _write(self, name: str, v: int | float | str) -> Status:
        bad = Status.INVALID_PARAMETER
        if name == "Width":
            if not 1 <= v <= self.sensor_width - self._offset_x:
                return bad
            self._width = int(v)
        elif name == "Height":
            if not 1 <= v <= self.sensor_height - self._offset_y:
                return bad
            self._height = int(v)
        elif name == "OffsetX":
            if not 0 <= v <= self.sensor_width - self._width:
                return bad
            self._offset_x = int(v)
        elif name == "OffsetY":
            if not 0 <= v <= self.sensor_height - self._height:
                return bad
            self._offset_y = int(v)
        elif name == "PixelFormat":
            try:
                fmt = PixelFormat(v)
            except ValueError:
                return bad
            if SIGNIFICANT_BITS[fmt] > self.bit_depth:
                return bad
            self._format = fmt
        elif name in ("ExposureTime", "Gain"):
            reg = REGISTERS[name]
            if not (math.isfinite(v) and reg.minimum <= v <= reg.maximum):
                return bad
            if name == "ExposureTime":
                self._exposure_us = float(v)
            else:
                self._gain_db = float(v)
        elif name == "TriggerMode":
            if v not in registers.TRIGGER_MODES.values():
                return bad
            self._trigger_mode = int(v)
        elif name == "TriggerSource":
            if v not in registers.TRIGGER_SOURCES.values():
                return bad
            self._trigger_source = int(v)
        elif name in ("AcquisitionStart", "AcquisitionStop"):
            if v != 1:
                return bad
            if name == "AcquisitionStart" and not self._acquiring:
                self._acquiring = True
                self._frame_counter = 0
                self._stream.clear()  # a new acquisition starts with an empty stream
            elif name == "AcquisitionStop":
                self._acquiring = False
        else:  # pragma: no cover - every writable register is handled above
            return Status.GENERIC_ERROR
        return Status.SUCCESS

    # ------------------------------------------------------------------ USB endpoints

    def _check_transfer(self) -> None:
        if self._faults.disconnect:
            raise _usb_error(
                "No such device (it may have been disconnected)",
                errno.ENODEV,
                _LIBUSB_ERROR_NO_DEVICE,
            )
        if self._timeouts_left > 0:
            self._timeouts_left -= 1
            raise _usb_error(
                "Operation timed out (injected)", errno.ETIMEDOUT, _LIBUSB_ERROR_TIMEOUT
            )

    def bulk_out(self, ep: int, data: bytes) -> int:
        """Host -> device transfer on endpoint `ep`; returns the bytes accepted."""
        with self._lock:
            self._check_transfer()
            if ep != L.EP_CONTROL_OUT:
                raise _usb_error(
                    f"no bulk OUT endpoint {ep:#04x}", errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM
                )
            if len(data) > control.MAX_TRANSFER_SIZE:
                ack = control.encode_ack(Status.INVALID_HEADER, control.CommandId.READMEM_ACK, 0)
            else:
                ack = self.handle_command(bytes(data))
            self._acks.append(ack)
            return len(data)

    def bulk_in(self, ep: int, buff: array.array, timeout_ms: int) -> int:
        """Device -> host transfer into `buff`; waits up to timeout_ms for stream data."""
        with self._lock:
            self._check_transfer()
            if ep == L.EP_CONTROL_IN:
                queue = self._acks
            elif ep == L.EP_STREAM_IN:
                queue = self._stream
                if not queue:
                    self._stream_ready.wait_for(
                        lambda: bool(queue) or self._faults.disconnect,
                        timeout=(timeout_ms / 1000.0) if timeout_ms else None,
                    )
                    if self._faults.disconnect:
                        self._check_transfer()
            else:
                raise _usb_error(
                    f"no bulk IN endpoint {ep:#04x}", errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM
                )
            if not queue:
                raise _usb_error("Operation timed out", errno.ETIMEDOUT, _LIBUSB_ERROR_TIMEOUT)
            data = queue.popleft()
            if len(data) > len(buff) * buff.itemsize:
                raise _usb_error(
                    f"Overflow: {len(data)}-byte transfer into a {len(buff)}-byte buffer",
                    errno.EOVERFLOW,
                    _LIBUSB_ERROR_OVERFLOW,
                )
            memoryview(buff).cast("B")[: len(data)] = data
            return len(data)


# ---------------------------------------------------------------------- pyusb backend


def _Descriptor(fields: dict) -> SimpleNamespace:  # noqa: N802 - stands in for a descriptor type
    """Attribute bag standing in for a USB descriptor."""
    return SimpleNamespace(**fields)


@dataclass
class _Handle:
    device: CameraEmulator
    claimed: set[int] = field(default_factory=set)


_INTERFACES = (
    (L.CONTROL_INTERFACE, L.PROTOCOL_CONTROL, (L.EP_CONTROL_OUT, L.EP_CONTROL_IN)),
    (L.STREAM_INTERFACE, L.PROTOCOL_STREAM, (L.EP_STREAM_IN,)),
)


class CameraBackend(usb.backend.IBackend):
    """pyusb backend exposing one CameraEmulator as a USB device (pass to usb.core.find)."""

    def __init__(self, emulator: CameraEmulator) -> None:
        super().__init__()
        if not isinstance(emulator, CameraEmulator):
            raise ConfigurationError(
                f"CameraBackend needs a CameraEmulator, got {type(emulator).__name__}"
            )
        self.emulator = emulator
        self._configuration = 0

    def _alive(self, dev: CameraEmulator) -> None:
        if not dev.connected:
            raise _usb_error(
                "No such device (it may have been disconnected)",
                errno.ENODEV,
                _LIBUSB_ERROR_NO_DEVICE,
            )

    def enumerate_devices(self):  # noqa: ANN201 - pyusb interface
        """The emulator, while connected."""
        if self.emulator.connected:
            yield self.emulator

    def get_parent(self, dev: CameraEmulator) -> None:
        """Root hub: no parent device."""
        return None

    def get_device_descriptor(self, dev: CameraEmulator) -> SimpleNamespace:
        """USB 3.0 device descriptor with the emulator's vendor/product ids."""
        return _Descriptor(
            dict(
                bLength=18,
                bDescriptorType=1,
                bcdUSB=0x0300,
                bDeviceClass=0xEF,
                bDeviceSubClass=0x02,
                bDeviceProtocol=0x01,
                bMaxPacketSize0=9,
                idVendor=dev.vendor_id,
                idProduct=dev.product_id,
                bcdDevice=0x0100,
                iManufacturer=1,
                iProduct=2,
                iSerialNumber=3,
                bNumConfigurations=1,
                address=1,
                bus=1,
                port_number=1,
                port_numbers=(1,),
                speed=4,
            )
        )

    def get_configuration_descriptor(self, dev: CameraEmulator, config: int) -> SimpleNamespace:
        """The single configuration (value 1) with two interfaces."""
        if config != 0:
            raise IndexError("the camera has one configuration")
        return _Descriptor(
            dict(
                bLength=9,
                bDescriptorType=2,
                wTotalLength=9 + 2 * 9 + 3 * 7,
                bNumInterfaces=2,
                bConfigurationValue=L.CONFIGURATION_VALUE,
                iConfiguration=0,
                bmAttributes=0x80,
                bMaxPower=112,
                extra_descriptors=[],
            )
        )

    def get_interface_descriptor(
        self, dev: CameraEmulator, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """U3V control (0) and streaming (1) interfaces, no alternate settings."""
        if config != 0 or alt != 0 or not 0 <= intf < len(_INTERFACES):
            raise IndexError(f"no interface {intf} alt {alt} in configuration {config}")
        number, protocol, eps = _INTERFACES[intf]
        return _Descriptor(
            dict(
                bLength=9,
                bDescriptorType=4,
                bInterfaceNumber=number,
                bAlternateSetting=0,
                bNumEndpoints=len(eps),
                bInterfaceClass=L.U3V_INTERFACE_CLASS,
                bInterfaceSubClass=L.U3V_INTERFACE_SUBCLASS,
                bInterfaceProtocol=protocol,
                iInterface=0,
                extra_descriptors=[],
            )
        )

    def get_endpoint_descriptor(
        self, dev: CameraEmulator, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        """Bulk endpoints of the interface."""
        if config != 0 or alt != 0 or not 0 <= intf < len(_INTERFACES):
            raise IndexError(f"no interface {intf} alt {alt} in configuration {config}")
        eps = _INTERFACES[intf][2]
        if not 0 <= ep < len(eps):
            raise IndexError(f"no endpoint {ep} on interface {intf}")
        return _Descriptor(
            dict(
                bLength=7,
                bDescriptorType=5,
                bEndpointAddress=eps[ep],
                bmAttributes=0x02,
                wMaxPacketSize=L.MAX_PACKET_SIZE,
                bInterval=0,
                bRefresh=0,
                bSynchAddress=0,
                extra_descriptors=[],
            )
        )

    def open_device(self, dev: CameraEmulator) -> _Handle:
        """A handle on the emulated device."""
        self._alive(dev)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        """Forget the handle's claims."""
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        """Select configuration 1 (or 0, unconfigured)."""
        self._alive(dev_handle.device)
        if config_value not in (0, L.CONFIGURATION_VALUE):
            raise _usb_error(
                f"no configuration {config_value}", errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM
            )
        self._configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        """The active configuration value."""
        self._alive(dev_handle.device)
        return self._configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        """Only alternate setting 0 exists."""
        if altsetting != 0:
            raise _usb_error(
                f"no alternate setting {altsetting}", errno.EINVAL, _LIBUSB_ERROR_INVALID_PARAM
            )

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Claim interface 0 or 1."""
        self._alive(dev_handle.device)
        if intf not in (L.CONTROL_INTERFACE, L.STREAM_INTERFACE):
            raise _usb_error(f"no interface {intf}", errno.ENOENT, -5)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Release a claimed interface."""
        dev_handle.claimed.discard(intf)

    def _require(self, dev_handle: _Handle, intf: int) -> None:
        if self._configuration != L.CONFIGURATION_VALUE:
            raise _usb_error("device is not configured", errno.EIO, -1)
        if intf not in dev_handle.claimed:
            raise _usb_error(f"interface {intf} is not claimed", errno.EBUSY, -6)

    def bulk_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array.array, timeout: int
    ) -> int:
        """Command transfer to the control OUT endpoint."""
        self._alive(dev_handle.device)
        self._require(dev_handle, intf)
        return dev_handle.device.bulk_out(ep, bytes(data))

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array, timeout: int
    ) -> int:
        """Acknowledge or stream transfer into `buff`."""
        self._alive(dev_handle.device)
        self._require(dev_handle, intf)
        return dev_handle.device.bulk_in(ep, buff, timeout)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array,
        timeout: int,
    ) -> int | array.array:
        """Standard GET_DESCRIPTOR(string) only (manufacturer, product, serial); else stalls."""
        self._alive(dev_handle.device)
        if bmRequestType == 0x80 and bRequest == 0x06 and (wValue >> 8) == 0x03:
            index = wValue & 0xFF
            if index == 0:
                body = struct.pack("<H", 0x0409)
            else:
                texts = {1: "OPU stack emulators", 2: "CameraEmulator", 3: dev_handle.device.serial}
                if index not in texts:
                    raise _usb_error("Pipe error", errno.EPIPE, _LIBUSB_ERROR_PIPE)
                body = texts[index].encode("utf-16-le")
            desc = bytes([2 + len(body), 0x03]) + body
            n = min(len(desc), len(data))
            memoryview(data).cast("B")[:n] = desc[:n]
            return n
        raise _usb_error("Pipe error (request not supported)", errno.EPIPE, _LIBUSB_ERROR_PIPE)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        """Nothing halts in the emulator."""

    def reset_device(self, dev_handle: _Handle) -> None:
        """No-op: the emulator keeps its state across a reset."""

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        """No kernel driver binds an emulated device."""
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """No-op."""

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """No-op."""
