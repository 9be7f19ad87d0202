"""DLPC900 driver against the emulator through pyusb: end to end, faults, bad input, and the
emulator's strictness on raw reports."""

import numpy as np
import pytest

from firmware_iface.dlpc900 import DLPC900, DLPC900CommandError
from firmware_iface.dlpc900 import commands as c
from firmware_iface.dlpc900.report import (
    Request,
    decode_reply,
    encode_request,
    join_reports,
    split_message,
)
from firmware_iface.errors import (
    DeviceDisconnectedError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    InputError,
)
from firmware_iface.geometry import DmdLayout
from opu_sim.emulators.dlpc900 import DLPC900Backend, DLPC900Emulator

LAYOUT = DmdLayout.fit(1000, 24, max_macro_pixel=12)


@pytest.fixture
def rig():
    emu = DLPC900Emulator()
    drv = DLPC900(backend=DLPC900Backend(emu), timeout_ms=50)
    yield emu, drv
    drv.close()


def random_elements(n, seed=0):
    return np.random.default_rng(seed).random((n, LAYOUT.n_elements)) < 0.5


def test_open_detaches_kernel_driver_and_reads_status(rig):
    emu, drv = rig
    assert emu.kernel_driver_active is False
    assert str(drv.firmware_version()) == "6.0.0"
    st = drv.status()
    assert st.hardware.ok and not st.main.sequencer_running


def test_upload_48_random_patterns_bit_exact(rig):
    emu, drv = rig
    images = LAYOUT.render(random_elements(48))
    drv.load_sequence(images, exposure_us=250, dark_time_us=30)
    assert drv.display_mode() == c.DisplayMode.PATTERN_ON_THE_FLY
    assert len(emu.lut) == 48 and sorted(emu.images) == [0, 1]
    for n, e in enumerate(emu.lut):
        assert (e.pattern_index, e.image_index, e.bit_position) == (n, n // 24, n % 24)
        assert (e.exposure_us, e.dark_time_us, e.bit_depth) == (250, 30, 1)
        assert e.wait_for_trigger and e.clear_after_exposure
        assert np.array_equal(emu.pattern_image(n), images[n])
    assert emu.n_patterns_to_display == 0  # repeat
    # image 1 was loaded before image 0 (DLPU018: reverse order)
    inits = [i for i, cmd in enumerate(emu.commands_received) if cmd == c.Command.BMP_LOAD_INIT]
    assert len(inits) == 2
    drv.start()
    assert drv.status().main.sequencer_running and emu.displayed is None
    assert emu.trigger(50).tolist() == list(range(48)) + [0, 1]
    assert emu.displayed == 1
    drv.pause()
    assert emu.trigger(2).tolist() == [-1, -1]
    drv.start()
    assert emu.trigger(1).tolist() == [2]
    drv.stop()
    assert emu.displayed is None and emu.trigger(1).tolist() == [-1]


def test_element_fast_path_and_single_pass_sequence(rig):
    emu, drv = rig
    el = random_elements(30, seed=1)
    drv.load_elements(el, LAYOUT, exposure_us=105, repeat=False)
    for n in (0, 17, 24, 29):
        assert np.array_equal(emu.pattern_image(n), LAYOUT.render(el[n]))
    drv.start()
    assert emu.trigger(32).tolist() == list(range(30)) + [-1, -1]
    assert not drv.status().main.sequencer_running


def _bad_inputs():
    good = np.zeros((2, 1080, 1920), bool)
    return [
        (dict(images=np.zeros((2, 1080, 1919), bool)), "shape"),
        (dict(images=np.broadcast_to(good[:1], (401, 1080, 1920))), "exceed"),
        (dict(images=good.astype(np.float32)), "dtype"),
        (dict(images=good.astype(np.uint8) + 2), "binary"),
        (dict(images=good, exposure_us=104), "105"),
        (dict(images=good, exposure_us=200.5), "whole number"),
        (dict(images=good, exposure_us=float("nan")), "whole number"),
        (dict(images=good, exposure_us=1 << 24), "exposure_us"),
        (dict(images=good, dark_time_us=-1), "dark_time_us"),
        (dict(images=good, trigger_in="software"), "trigger_in"),
    ]


@pytest.mark.parametrize("kwargs, msg", _bad_inputs())
def test_bad_input_raises_before_sending(rig, kwargs, msg):
    emu, drv = rig
    kwargs.setdefault("exposure_us", 200)
    before = list(emu.commands_received)
    with pytest.raises(InputError, match=msg):
        drv.load_sequence(**kwargs)
    assert emu.commands_received == before


def test_bad_element_input(rig):
    emu, drv = rig
    before = list(emu.commands_received)
    with pytest.raises(InputError, match="exceed"):
        drv.load_elements(np.zeros((401, LAYOUT.n_elements), bool), LAYOUT, 200)
    with pytest.raises(InputError, match="shape"):
        drv.load_elements(np.zeros((3, LAYOUT.n_elements + 1), bool), LAYOUT, 200)
    assert emu.commands_received == before


def test_nack_carries_code_and_description(rig):
    emu, drv = rig
    drv.set_pattern_on_the_fly_mode()
    with pytest.raises(DLPC900CommandError) as err:
        drv.start()  # no LUT configured
    assert err.value.code == c.ErrorCode.INVALID_PATTERN_DEFINITION
    assert err.value.description == c.ERROR_DESCRIPTIONS[16]
    assert not emu.running


def test_fault_single_upload_nack_is_retried(rig):
    emu, drv = rig
    emu.faults.nack_uploads = 1
    images = LAYOUT.render(random_elements(24, seed=2))
    drv.load_sequence(images, 300)
    assert drv.stats.upload_retries == 1 and emu.faults.nack_uploads == 0
    assert all(np.array_equal(emu.pattern_image(n), images[n]) for n in (0, 11, 23))


def test_fault_persistent_upload_nack_raises_and_stops(rig):
    emu, drv = rig
    drv.load_sequence(LAYOUT.render(random_elements(2)), 300)
    drv.start()
    emu.faults.nack_uploads = 100
    with pytest.raises(DLPC900CommandError) as err:
        drv.load_sequence(LAYOUT.render(random_elements(3, seed=5)), 300)
    assert err.value.code == 255 and err.value.description == "Internal Error"
    assert "stopped" in str(err.value)
    assert not emu.running and not drv.status().main.sequencer_running


@pytest.mark.parametrize("direction", ["out", "in"])
def test_fault_single_timeout_recovers(rig, direction):
    emu, drv = rig
    emu.faults.timeout_direction = direction
    emu.faults.usb_timeouts = 1
    assert str(drv.firmware_version()) == "6.0.0"
    assert drv.stats.timeouts == 1 and emu.faults.usb_timeouts == 0
    if direction == "in":  # the late reply was recognised by its sequence byte and dropped
        assert drv.stats.stale_replies == 1
    assert drv.display_mode() == c.DisplayMode.PRE_STORED_PATTERN
    assert emu.pending_reports == 0


def test_fault_timeout_during_upload_recovers(rig):
    emu, drv = rig
    images = LAYOUT.render(random_elements(24, seed=3))
    emu.faults.timeout_direction = "out"
    emu.faults.timeouts_after_reports = 60  # past the 24 LUT definitions, into image data
    emu.faults.usb_timeouts = 2
    drv.load_sequence(images, 300)
    assert drv.stats.timeouts == 2 and drv.stats.commands[c.Command.BMP_LOAD_DATA] > 2
    assert all(np.array_equal(emu.pattern_image(n), images[n]) for n in range(24))


def test_fault_persistent_timeout_raises(rig):
    emu, drv = rig
    emu.faults.usb_timeouts = 1000
    with pytest.raises(DeviceTimeoutError, match="3 attempts"):
        drv.firmware_version()


def test_fault_disconnect_raises_and_reopen_gives_known_state(rig):
    emu, drv = rig
    drv.load_sequence(LAYOUT.render(random_elements(2)), 300)
    drv.start()
    emu.faults.disconnect_after_reports = 40
    with pytest.raises(DeviceDisconnectedError):
        drv.load_sequence(LAYOUT.render(random_elements(24, seed=4)), 300)
    with pytest.raises(DeviceDisconnectedError):
        drv.status()
    with pytest.raises(DeviceNotFoundError):
        DLPC900(backend=DLPC900Backend(emu))
    emu.faults.disconnect_after_reports = None
    emu.reconnect()
    drv2 = DLPC900(backend=DLPC900Backend(emu))
    assert not emu.running and not drv2.status().main.sequencer_running
    drv2.close()


# --- emulator strictness on raw reports -----------------------------------------------------------


def raw(emu, command, data=b"", read=False, reply=True, seq=7):
    req = Request(command, data, read=read, reply=reply, sequence=seq)
    for r in split_message(encode_request(req)):
        emu.receive_report(r)
    if not reply:
        return None
    first = emu.next_report()
    n = (4 + first[2] + 256 * first[3] + 63) // 64
    return decode_reply(join_reports([first] + [emu.next_report() for _ in range(n - 1)]))


def error_of(emu):
    return c.decode_error_code(raw(emu, c.Command.READ_ERROR_CODE, read=True).data)


@pytest.fixture
def otf_emu():
    emu = DLPC900Emulator()
    assert not raw(emu, c.Command.DISPLAY_MODE, b"\x03").error
    return emu


def test_emulator_image_data_before_init_is_refused(otf_emu):
    raw(otf_emu, c.Command.BMP_LOAD_DATA, c.encode_bmp_load_data(b"x"), reply=False)
    assert error_of(otf_emu) == c.ErrorCode.NOT_ALLOWED_IN_MODE
    desc = raw(otf_emu, c.Command.READ_ERROR_DESCRIPTION, read=True)
    assert c.decode_error_description(desc.data) == "Command not allowed in current mode"


def test_emulator_reply_bit_on_image_data_gets_a_reply(otf_emu):
    # Pycrafter6500 asks for a reply on every image packet and reads one on real boards
    assert not raw(otf_emu, c.Command.BMP_LOAD_INIT, c.encode_bmp_load_init(0, 100)).error
    rep = raw(otf_emu, c.Command.BMP_LOAD_DATA, c.encode_bmp_load_data(b"x"), reply=True)
    assert not rep.error and rep.sequence == 7 and rep.data == b""
    assert error_of(otf_emu) == 0


@pytest.mark.parametrize(
    "command, data, code",
    [
        (0x1234, b"", c.ErrorCode.INVALID_COMMAND),
        (c.Command.PATTERN_START_STOP, b"\x02", c.ErrorCode.INVALID_PATTERN_DEFINITION),
        (c.Command.LUT_DEFINITION, c.encode_lut_entry(c.LutEntry(0, 100, 0, 0)), 14),
        (c.Command.LUT_DEFINITION, c.encode_lut_entry(c.LutEntry(400, 200, 0, 0)), 15),
        (c.Command.LUT_DEFINITION, c.encode_lut_entry(c.LutEntry(0, 200, 0, 24)), 10),
        (c.Command.LUT_CONFIGURATION, c.encode_lut_configuration(3, 0), 16),
        (c.Command.BMP_LOAD_INIT, c.encode_bmp_load_init(0, 48), 6),
    ],
)
def test_emulator_refuses_with_documented_code(otf_emu, command, data, code):
    rep = raw(otf_emu, command, data)
    assert rep.error
    assert error_of(otf_emu) == code


def test_emulator_start_needs_loaded_images(otf_emu):
    raw(otf_emu, c.Command.LUT_DEFINITION, c.encode_lut_entry(c.LutEntry(0, 200, 1, 0)))
    raw(otf_emu, c.Command.LUT_CONFIGURATION, c.encode_lut_configuration(1, 0))
    assert raw(otf_emu, c.Command.PATTERN_START_STOP, b"\x02").error
    assert error_of(otf_emu) == c.ErrorCode.BMP_NOT_PRESENT


def test_emulator_refuses_command_larger_than_buffer(otf_emu):
    header = bytes([0x40, 9, 0x00, 0x02])  # 512 payload bytes + 4 header > 512
    msg = header + bytes([0x2B, 0x1A]) + bytes(510)
    for i in range(0, len(msg), 64):
        otf_emu.receive_report(msg[i : i + 64].ljust(64, b"\0"))
    rep = decode_reply(otf_emu.next_report()[:4])
    assert rep.error and rep.sequence == 9
    assert error_of(otf_emu) == c.ErrorCode.INVALID_PARAMETER


# --- driver base: lifecycle and thread guard ----------------------------------------------------


def test_driver_refuses_a_second_thread_and_reports_its_lifecycle():
    import threading

    from firmware_iface.driver_base import DriverState
    from firmware_iface.errors import ConcurrencyError

    emu = DLPC900Emulator()
    drv = DLPC900(backend=DLPC900Backend(emu))
    inside, release = threading.Event(), threading.Event()
    orig = emu.receive_report

    def slow(report):
        inside.set()
        release.wait(5)
        orig(report)

    emu.receive_report = slow
    t = threading.Thread(target=drv.status)
    t.start()
    assert inside.wait(5)
    with pytest.raises(ConcurrencyError, match="another thread"):
        drv.firmware_version()
    emu.receive_report = orig
    release.set()
    t.join(5)
    assert drv.state is DriverState.OPEN and drv.status().hardware.initialized
    emu.faults.disconnect_after_reports = 0
    with pytest.raises(DeviceDisconnectedError):
        drv.status()
    assert drv.lost and isinstance(drv.lost_error, DeviceDisconnectedError)
    with pytest.raises(DeviceDisconnectedError, match="was lost"):
        drv.status()
    drv.close()
    assert drv.closed
    with pytest.raises(DeviceDisconnectedError, match="closed"):
        drv.stop()
