"""Opening the three devices of a hardware OPU and putting them in a known state."""

from __future__ import annotations

from dataclasses import dataclass

from ..camera.driver import Camera
from ..camera.pixel_formats import SIGNIFICANT_BITS, pixel_format
from ..camera.select import open_camera
from ..dlpc900.driver import DLPC900
from ..dlpc900.transport import HidTransport
from ..errors import ConfigurationError, InputError
from ..fpga.driver import FPGATimingBoard
from ..geometry import CameraRoi, DmdLayout
from .config import HardwareConfig

__all__ = ["Devices", "open_devices"]

_DEFAULT_FORMATS = {8: "Mono8", 10: "Mono10p", 12: "Mono12p"}


@dataclass
class Devices:
    """The opened drivers (None where opening failed before reaching them)."""

    dmd: DLPC900 | None = None
    fpga: FPGATimingBoard | None = None
    camera: Camera | None = None
    firmware: str = ""

    def close(self) -> None:
        """Close every opened driver (each stops its device if it still answers)."""
        for name in ("camera", "fpga", "dmd"):
            dev = getattr(self, name)
            if dev is None:
                continue
            try:
                dev.close()
            except Exception:  # a vanished device may fail to close; it is released either way
                pass
            setattr(self, name, None)


def open_devices(
    config: HardwareConfig,
    layout: DmdLayout,
    roi: CameraRoi,
    dmd_backend: object | None,
    camera_backend: object | None,
    devices: Devices,
) -> None:
    """Open DMD, FPGA and camera into `devices` (filled as they open, so the caller can close
    what opened if a later step fails): DMD in pattern-on-the-fly mode, FPGA idle, camera with
    its pixel format, ROI and trigger input set. Raises DeviceNotFoundError for a missing
    device, ConfigurationError when the devices do not fit the layout, ROI or config."""
    c = config
    transport = HidTransport(
        dmd_backend, c.dmd.timeout_ms, c.dmd.usb_vendor_id, c.dmd.usb_product_id
    )
    dmd = devices.dmd = DLPC900(
        retries=c.dmd.retries, upload_retries=c.dmd.upload_retries, transport=transport
    )
    if (layout.dmd_width, layout.dmd_height) != (dmd.width, dmd.height):
        raise ConfigurationError(
            f"the layout is for a {layout.dmd_width}x{layout.dmd_height} DMD, the DLPC900 "
            f"drives {dmd.width}x{dmd.height}"
        )
    devices.firmware = str(dmd.firmware_version())
    dmd.set_pattern_on_the_fly_mode()
    devices.fpga = FPGATimingBoard(c.fpga.url, c.fpga.timeout_s, c.fpga.retries, c.fpga.baudrate)
    cam = devices.camera = open_camera(
        c.camera.backend,
        usb_backend=camera_backend,
        vendor_id=c.camera.usb_vendor_id,
        product_id=c.camera.usb_product_id,
        timeout_ms=c.camera.timeout_ms,
        retries=c.camera.retries,
        producer=c.camera.gentl_producer,
        serial=c.camera.gentl_serial,
    )
    if (roi.sensor_width, roi.sensor_height) != (cam.sensor_width, cam.sensor_height):
        raise ConfigurationError(
            f"the ROI is for a {roi.sensor_width}x{roi.sensor_height} sensor, the camera "
            f"{cam.serial_number!r} has {cam.sensor_width}x{cam.sensor_height}"
        )
    _set_pixel_format(cam, c.camera.pixel_format)
    cam.set_roi(roi)
    try:
        cam["TriggerSource"] = c.camera.trigger_source
    except InputError as e:
        raise ConfigurationError(f"camera.trigger_source: {e}") from e
    cam["TriggerMode"] = "On"


def _set_pixel_format(cam: Camera, name: str | None) -> None:
    """The configured pixel format (default: the packed format of the sensor's bit depth)."""
    name = name or _DEFAULT_FORMATS.get(cam.bit_depth)
    try:
        fmt = pixel_format(name)
    except InputError as e:
        raise ConfigurationError(f"camera.pixel_format {name!r}: {e}") from e
    if SIGNIFICANT_BITS[fmt] != cam.bit_depth:
        raise ConfigurationError(
            f"camera.pixel_format {fmt.name} carries {SIGNIFICANT_BITS[fmt]} bits but the "
            f"sensor has {cam.bit_depth}; choose Mono{cam.bit_depth} or Mono{cam.bit_depth}p"
        )
    cam.set_pixel_format(fmt)
