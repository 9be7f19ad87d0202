"""The shared bases: one error hierarchy, one USB error map, the driver base, the Timing value
object, the emulators' FaultPlan and the USB-device emulator base."""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field

import pytest
import usb.core
import usb.util

from firmware_iface import errors as E
from firmware_iface.driver_base import DeviceDriver, DriverState, Stats
from firmware_iface.fpga import messages
from firmware_iface.fpga.timing import DEFAULT_TIMING, RANGES_US, Timing
from firmware_iface.usb_errors import (
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_PIPE,
    LIBUSB_ERROR_TIMEOUT,
    map_usb_error,
    usb_error,
    usb_errors,
)
from opu_sim.emulators.fault_plan import FaultPlan
from opu_sim.emulators.usb_device import UsbDeviceBackend, UsbEndpoint, UsbInterface, UsbLayout

# ---- errors -----------------------------------------------------------------------------------


def test_one_hierarchy():
    assert issubclass(E.LinkDownError, E.DeviceDisconnectedError)
    assert issubclass(E.LinkDownError, ConnectionError)
    assert issubclass(E.CameraStreamTimeout, E.DeviceTimeoutError)
    assert issubclass(E.CameraStreamError, E.FrameIntegrityError)
    assert issubclass(E.ControlCodecError, E.CodecError)
    assert issubclass(E.FrameCodecError, E.CodecError)
    for cls in (E.DLPC900CommandError, E.FPGACommandError, E.CameraCommandError,
                E.UsbTransferError):
        assert issubclass(cls, E.DeviceError)


def test_fpga_error_codes_defined_once():
    assert messages.ErrorCode is E.FPGAErrorCode
    assert E.FrameCrcError.nak_code == messages.ErrorCode.BAD_CRC
    assert E.FrameLengthError.nak_code == messages.ErrorCode.BAD_LENGTH
    assert E.UnsupportedVersionError.nak_code == messages.ErrorCode.BAD_VERSION
    assert E.UnknownMessageError.nak_code == messages.ErrorCode.UNKNOWN_COMMAND


def test_old_import_paths_name_the_same_classes():
    from firmware_iface.camera.control import ControlCodecError
    from firmware_iface.camera.driver import CameraStreamTimeout
    from firmware_iface.dlpc900.driver import DLPC900CommandError
    from firmware_iface.fpga.errors import FPGACommandError
    from opu_sim.emulators.fpga import LinkDownError

    assert ControlCodecError is E.ControlCodecError
    assert CameraStreamTimeout is E.CameraStreamTimeout
    assert DLPC900CommandError is E.DLPC900CommandError
    assert FPGACommandError is E.FPGACommandError
    assert LinkDownError is E.LinkDownError


# ---- USB error map ----------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["camera", "DLPC900"])
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (LIBUSB_ERROR_TIMEOUT, E.DeviceTimeoutError),
        (LIBUSB_ERROR_NO_DEVICE, E.DeviceDisconnectedError),
        (LIBUSB_ERROR_IO, E.UsbTransferError),  # a bus error on a live device, not a loss
        (LIBUSB_ERROR_PIPE, E.UsbTransferError),
    ],
)
def test_one_rule_for_every_usb_device(device, code, expected):
    exc = usb_error(code, "x")
    err = map_usb_error(exc, device, "read")
    assert type(err) is expected and device in str(err)
    with pytest.raises(expected), usb_errors(device, "write"):
        raise exc


def test_usb_error_matches_pyusb_libusb1():
    t = usb_error(LIBUSB_ERROR_TIMEOUT, "Operation timed out")
    assert isinstance(t, usb.core.USBTimeoutError)
    assert (t.errno, t.backend_error_code) == (errno.ETIMEDOUT, LIBUSB_ERROR_TIMEOUT)
    g = usb_error(LIBUSB_ERROR_NO_DEVICE, "gone")
    assert (g.errno, g.backend_error_code) == (errno.ENODEV, -4)
    # other backends report a vanished device by errno alone
    assert type(map_usb_error(usb.core.USBError("x", None, errno.ESHUTDOWN), "d", "w")) is (
        E.DeviceDisconnectedError
    )
    with pytest.raises(ValueError, match="not a libusb error code"):
        usb_error(-3000, "x")


# ---- Timing -------------------------------------------------------------------------------------


def test_timing_checks():
    assert Timing(1000, 500, 0, 500).problem() is None
    assert "exceeds" in Timing(1000, 501, 0, 500).problem()
    assert "shorter" in Timing(1000, 10, 1000, 0).problem()
    assert DEFAULT_TIMING == Timing(1000, 500)
    assert Timing(49, 1).out_of_range() == ("frame_period_us", RANGES_US["frame_period_us"][0])
    assert Timing(100, 1, 0, 2_000_000).out_of_range() == ("camera_delay_us", 1_000_000)
    assert DEFAULT_TIMING.with_(exposure_us=7).exposure_us == 7
    assert Timing(250, 10).run_duration_us(4) == 1000


# ---- driver base --------------------------------------------------------------------------------


@dataclass
class _Stats(Stats):
    calls: int = 0
    seconds: dict = field(default_factory=dict)


class _Driver(DeviceDriver):
    device_name = "toy device"
    reopen_hint = "open a new _Driver"

    def __init__(self) -> None:
        super().__init__()
        self.stats = _Stats()
        self.released = 0

    def _do_close(self) -> None:
        self.released += 1

    def work(self, inside=None) -> None:
        with self._exclusive(), self.stats.timed("work"):
            self.stats.count("calls")
            if inside is not None:
                inside()


def test_driver_lifecycle():
    d = _Driver()
    assert d.state is DriverState.OPEN and not d.closed and not d.lost
    d.work()
    assert d.stats.calls == 1 and d.stats.seconds["work"] >= 0
    gone = E.DeviceDisconnectedError("cable pulled")
    d._mark_lost(gone)
    assert d.lost and d.lost_error is gone
    with pytest.raises(E.DeviceDisconnectedError, match="was lost \\(cable pulled\\).*close"):
        d.work()
    d.close()
    d.close()
    assert d.closed and d.released == 1
    with pytest.raises(E.DeviceDisconnectedError, match="toy device is closed; open a new"):
        d.work()
    with pytest.raises(AttributeError, match="no counter"):
        d.stats.count("nope")
    assert d.stats.as_dict()["calls"] == 1


def test_stats_add_counters_and_dicts_key_by_key():
    a, b = _Stats(calls=2, seconds={"work": 1.5}), _Stats(calls=3, seconds={"work": 0.5, "x": 2.0})
    total = a + b
    assert total == _Stats(calls=5, seconds={"work": 2.0, "x": 2.0})
    assert (a, b) == (_Stats(calls=2, seconds={"work": 1.5}),
                      _Stats(calls=3, seconds={"work": 0.5, "x": 2.0}))  # operands unchanged
    with pytest.raises(TypeError):
        a + 1  # noqa: B018


def test_driver_thread_guard():
    d = _Driver()
    seen = []

    def other_thread() -> None:
        try:
            d.work()
        except E.ConcurrencyError as e:
            seen.append(e)

    d.work(inside=lambda: (t := threading.Thread(target=other_thread), t.start(), t.join()))
    assert len(seen) == 1 and "another thread" in str(seen[0])
    d.work()  # released again


# ---- FaultPlan -------------------------------------------------------------------------------


@dataclass
class _Faults(FaultPlan):
    HOOK_POINTS = ("run",)
    lost: int = 0
    let_through: int = 0
    gone_after: int | None = None
    frames: frozenset[int] = frozenset()
    rate: float = 0.0
    flag: bool = False


def test_fault_plan_countdowns_and_counters():
    f = _Faults(lost=2, let_through=1)
    assert [f.take("lost", skip="let_through") for _ in range(4)] == [False, True, True, False]
    assert f.lost == 0 and f.fired_count("lost") == 2
    f.gone_after = 3
    assert [f.elapse("gone_after") for _ in range(4)] == [False, False, True, False]
    assert f.gone_after is None and f.fired == {"lost": 2, "gone_after": 1}
    f.frames = frozenset({4})
    assert not f.hit("frames", 3) and f.hit("frames", 4) and f.fired_count("frames") == 1


def test_fault_plan_rates_are_seeded():
    draws = []
    for _ in range(2):
        f = _Faults(rate=0.3, seed=5)
        draws.append([f.chance("rate") for _ in range(200)])
    assert draws[0] == draws[1] and 30 < sum(draws[0]) < 90
    f.seed = 6
    assert [f.chance("rate") for _ in range(200)] != draws[0]


def test_fault_plan_hooks_and_clear():
    f = _Faults(lost=3, flag=True)
    calls = []
    f.once("run", lambda x: calls.append(("a", x)))
    f.once("run", lambda x: calls.append(("b", x)), after=1)
    assert f.pending_hooks() == 2
    f.run_hooks("run", 1)
    f.run_hooks("run", 2)
    f.run_hooks("run", 3)
    assert calls == [("a", 1), ("b", 2)] and f.pending_hooks("run") == 0
    with pytest.raises(E.ConfigurationError, match="no hook point 'runn'"):
        f.once("runn", print)
    f.take("lost")
    f.once("run", print)
    f.clear()
    assert (f.lost, f.flag, f.pending_hooks()) == (0, False, 0) and f.fired_count("lost") == 1


# ---- USB-device emulator base ------------------------------------------------------------------


class _Echo(UsbDeviceBackend):
    """A device with one bulk OUT and one bulk IN endpoint that echoes what it receives."""

    def __init__(self) -> None:
        super().__init__(UsbLayout(
            0x1234, 0x5678,
            (UsbInterface(0, 0xFF, 0, 0, (UsbEndpoint(0x01, 2, 512), UsbEndpoint(0x81, 2, 512))),),
            strings={1: "maker", 2: "echo", 3: "SN1"},
        ))
        self.plugged = True
        self.queue: list[bytes] = []

    @property
    def connected(self) -> bool:
        return self.plugged

    def _do_write(self, ep, data, timeout_ms):
        self.queue.append(data)
        return len(data)

    def _do_read(self, ep, size, timeout_ms):
        if not self.queue:
            raise usb_error(LIBUSB_ERROR_TIMEOUT, "Operation timed out")
        return self.queue.pop(0)


def test_usb_device_base_through_pyusb():
    be = _Echo()
    dev = usb.core.find(idVendor=0x1234, idProduct=0x5678, backend=be)
    assert dev is not None and dev.serial_number == "SN1" and dev.product == "echo"
    dev.set_configuration()
    usb.util.claim_interface(dev, 0)
    assert dev.write(0x01, b"hello", 100) == 5
    assert bytes(dev.read(0x81, 64, 100)) == b"hello"
    with pytest.raises(usb.core.USBTimeoutError):
        dev.read(0x81, 64, 100)
    with pytest.raises(usb.core.USBError) as e:
        dev.read(0x01, 64, 100)  # an OUT endpoint
    assert e.value.backend_error_code == LIBUSB_ERROR_PIPE
    be.plugged = False
    with pytest.raises(E.DeviceDisconnectedError), usb_errors("echo", "write"):
        dev.write(0x01, b"x", 100)
    assert usb.core.find(idVendor=0x1234, backend=be) is None
