"""The emulated OPU: the real host driver stack (firmware_iface.hardware.OPUHardware) opened on
an opu_sim EmulatedRig's transports (pyusb backend objects and the rig's fpgaemu:// URL).

This composition lives in `opu` because it joins both sides: opu_sim never imports a driver,
and firmware_iface never imports opu_sim.
"""

from __future__ import annotations

from typing import Any

from firmware_iface.errors import ConfigurationError
from firmware_iface.geometry import CameraRoi, DmdLayout
from firmware_iface.hardware import OPUHardware
from firmware_iface.hardware.config import (
    AcquisitionConfig,
    CameraConfig,
    FpgaConfig,
    HardwareConfig,
    TimingConfig,
)
from opu_sim.bench import OpticalBench
from opu_sim.emulators.camera import CameraBackend
from opu_sim.emulators.dlpc900 import DLPC900Backend
from opu_sim.emulators.fpga import register_emulator, unregister_emulator
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

from .sources import DeviceSpec, parse_device


class EmulatedHardware(OPUHardware):
    """An OPUHardware opened on an EmulatedRig's transports: the real driver stack, with the
    rig (`rig`) and its physics (`simulator`, the rig's OpticalBench) at hand for tests and
    simulator truth."""

    def __init__(self, rig: EmulatedRig, roi: CameraRoi, config: HardwareConfig,
                 video_output: Any = None) -> None:
        self.rig = rig
        super().__init__(
            rig.layout,
            roi,
            config,
            dmd_backend=DLPC900Backend(rig.dmd),
            camera_backend=CameraBackend(rig.camera),
            sleep=rig.wait_s,
            video_output=rig.video if video_output is None else video_output,
        )

    @property
    def simulator(self) -> OpticalBench:
        """The rig's OpticalBench (the physics behind the emulated devices)."""
        return self.rig.bench


def hardware_config(rig: EmulatedRig) -> HardwareConfig:
    """The HardwareConfig of a rig: the emulators' USB ids, its fpgaemu:// URL, the profile's
    frame period, a short readout wait. The exposure range is the camera's own: the emulated
    camera states the profile's range in its GenICam XML, and OPUHardware reads it there."""
    return HardwareConfig(
        fpga=FpgaConfig(url=rig.url),
        camera=CameraConfig(
            usb_vendor_id=rig.camera.vendor_id, usb_product_id=rig.camera.product_id
        ),
        timing=TimingConfig(frame_period_us=rig.profile.frame_period_us),
        acquisition=AcquisitionConfig(readout_timeout_ms=100),
        source=f"emulated rig {rig.name}",
    )


def open_hardware(rig: EmulatedRig, roi: CameraRoi, config: Any = None,
                  video_output: Any = None) -> EmulatedHardware:
    """An OPUHardware on this rig (the real driver stack through the emulators' transports),
    with wait_s on the rig's clock; video_output: the host's video output (default: the rig's
    emulated link; a real window's WindowVideoOutput with a ScreenVideoInput rig). The FPGA
    emulator is registered under rig.url only while
    the hardware opens its port."""
    register_emulator(rig.name, rig.fpga)
    try:
        return EmulatedHardware(rig, roi, config if config is not None else hardware_config(rig),
                                video_output)
    finally:
        # the name is only looked up when the port opens; the open link stays
        unregister_emulator(rig.name)


def rig_of(source: Any) -> EmulatedRig:
    """The EmulatedRig behind an emulated OPUHardware (its `rig`)."""
    if not isinstance(source, EmulatedHardware):
        raise ConfigurationError(
            f"{type(source).__name__} is not an emulated OPUHardware (use device='emu')"
        )
    return source.rig


def open_emulated_hardware(
    device: str | DeviceSpec,
    layout: DmdLayout,
    roi: CameraRoi,
    seed: int,
    profile: DeviceProfile | None,
    cache_budget_bytes: int,
) -> EmulatedHardware:
    """An OPUHardware on a new EmulatedRig for device 'emu' or 'emu:<name>' (<name>: the
    fpgaemu:// name to register; default unique). Its `simulator` is the rig's OpticalBench."""
    spec = parse_device(device)
    if spec.kind != "emu":
        raise ConfigurationError(f"not an emulated device string: {spec.text!r} (use 'emu')")
    rig = EmulatedRig(
        profile if profile is not None else DeviceProfile.default(),
        seed,
        layout,
        cache_budget_bytes,
        name=spec.name or None,
    )
    return open_hardware(rig, roi)
