"""Fault injection end to end: OPUHardware (the real drivers) against the emulated rig.

This file drives the on-the-fly upload path (dmd.pattern_path = "usb"); the video-pattern
path's faults are in test_emu_video.py. Every fault is set through an emulator's own
settings. Each one is either recovered (the frames equal, bit for bit, those of a fault-free
acquisition: the profile is noise-free, so a re-acquired frame is the same number) or raised
as a typed error with every reachable device stopped. Small geometry (48 + 48 elements,
64-pixel ROI) keeps a run to a few milliseconds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from firmware_iface.dlpc900 import DLPC900CommandError
from firmware_iface.errors import (
    DeviceDisconnectedError,
    DeviceTimeoutError,
    FrameIntegrityError,
    InputError,
)
from firmware_iface.fpga import BoardState
from firmware_iface.geometry import CameraRoi, DmdLayout
from firmware_iface.hardware.config import DmdConfig
from opu.emulated import hardware_config, open_hardware
from opu_sim.emulators.camera import CameraFaults
from opu_sim.emulators.dlpc900 import DLPC900Faults
from opu_sim.emulators.fpga import FPGAFaults
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

EXPOSURE_US = 150.0
N = 24


def quantised_profile() -> DeviceProfile:
    """No random noise; the camera still quantises and clips."""
    return DeviceProfile.deterministic()


def usb_config(rig: EmulatedRig):
    """The rig's config on the on-the-fly upload path."""
    return replace(hardware_config(rig), dmd=DmdConfig(pattern_path="usb"))


@pytest.fixture(scope="module")
def setup():
    layout = DmdLayout.fit(48, 48)
    roi = CameraRoi.centred(64, 1920, 1200)
    rig = EmulatedRig(replace(quantised_profile(), frame_period_us=110.0), 11, layout)
    hw = open_hardware(rig, roi, usb_config(rig))
    rng = np.random.default_rng(2)
    patterns = (rng.random((N, layout.n_elements)) < 0.5).astype(np.uint8)
    reference = hw.acquire(patterns, EXPOSURE_US).frames.copy()
    state = {"rig": rig, "hw": hw, "roi": roi, "patterns": patterns, "ref": reference}
    yield state
    state["hw"].close()


@pytest.fixture
def env(setup):
    """The shared rig with every fault cleared and an open, usable OPUHardware."""
    rig = setup["rig"]
    rig.dmd.faults = DLPC900Faults()
    rig.dmd.reconnect()
    rig.camera.faults = CameraFaults()
    rig.fpga.faults = FPGAFaults()
    rig.fpga.reconnect()
    hw = setup["hw"]
    if hw.lost or hw.closed:
        hw.close()
        setup["hw"] = open_hardware(rig, setup["roi"], usb_config(rig))
    return setup


def acquire_exact(env):
    """The batch of env's patterns, checked to be the fault-free frames bit for bit."""
    b = env["hw"].acquire(env["patterns"], EXPOSURE_US)
    assert np.array_equal(b.frames, env["ref"])
    return b


def assert_stopped(rig: EmulatedRig) -> None:
    assert not rig.dmd.running, "DMD sequencer left running"
    assert rig.fpga.state == BoardState.IDLE, "FPGA left armed or running"
    assert not rig.camera.acquiring, "camera left acquiring"


def once(rig: EmulatedRig, apply, clear) -> None:
    """Fault for the next run only: apply now, clear once the rig has rendered one run."""
    apply()
    rig.fpga.faults.once("run_rendered", clear)


def test_fault_free_run_is_repeatable(env):
    b = env["hw"].acquire(env["patterns"], EXPOSURE_US)
    assert b.reacquired == 0
    assert np.array_equal(b.frames, env["ref"])
    assert np.all(np.diff(b.frame_ids) == 1)
    assert np.allclose(np.diff(b.timestamps_us), 150.0)  # the exposure stretches the period
    assert b.info.frame_period_us == 150 and env["hw"].frame_period_us == 110.0


def test_dmd_nack_on_upload_is_retried(env):
    rig, hw = env["rig"], env["hw"]
    before = hw.dmd.stats.upload_retries
    rig.dmd.faults.nack_uploads = 1
    acquire_exact(env)
    assert hw.dmd.stats.upload_retries == before + 1


def test_dmd_persistent_nack_raises_with_devices_stopped(env):
    rig, hw = env["rig"], env["hw"]
    rig.dmd.faults.nack_uploads = 100
    with pytest.raises(DLPC900CommandError):
        hw.acquire(env["patterns"], EXPOSURE_US)
    assert_stopped(rig)
    rig.dmd.faults.nack_uploads = 0
    assert np.array_equal(hw.acquire(env["patterns"], EXPOSURE_US).frames, env["ref"])


def test_dmd_usb_timeouts_are_retried(env):
    rig, hw = env["rig"], env["hw"]
    before = hw.dmd.stats.timeouts
    rig.dmd.faults.usb_timeouts = 2
    rig.dmd.faults.timeouts_after_reports = 5
    acquire_exact(env)
    assert hw.dmd.stats.timeouts >= before + 1


def test_camera_usb_timeouts_are_retried(env):
    rig = env["rig"]
    rig.camera.faults = CameraFaults(usb_timeouts=3)
    acquire_exact(env)


def test_uart_crc_errors_are_recovered(env):
    rig, hw = env["rig"], env["hw"]
    before = hw.fpga.link_stats.decode_errors
    rig.fpga.faults.crc_error_rate = 0.2
    acquire_exact(env)
    assert hw.fpga.link_stats.decode_errors > before


def test_lost_uart_acks_are_recovered(env):
    rig, hw = env["rig"], env["hw"]
    before = hw.fpga.link_stats.resends
    rig.fpga.faults.lost_acks = 2  # ARM's and RUN's: RUN is answered from the reply cache
    runs = rig.stats.runs
    acquire_exact(env)
    assert hw.fpga.link_stats.resends >= before + 2
    assert rig.stats.runs == runs + 1  # the re-sent RUN did not run again


@pytest.mark.parametrize(
    ("fault", "position", "problem"),
    [("drop_frames", 5, "frame_status"), ("drop_frames", N - 1, "frame_status"),
     ("corrupt_trailer", 7, None)],
)
def test_lost_or_corrupt_camera_frame_is_reacquired(env, fault, position, problem):
    rig, hw = env["rig"], env["hw"]
    rig.camera.faults = CameraFaults(**{fault: {rig.camera.frame_counter + position}})
    b = hw.acquire(env["patterns"], EXPOSURE_US)
    assert b.reacquired == N
    assert np.array_equal(b.frames, env["ref"])
    if problem is not None:
        assert any(problem in p for p in b.info.problems)


def test_duplicated_frame_is_discarded(env):
    rig = env["rig"]
    rig.camera.faults = CameraFaults(duplicate_frames={rig.camera.frame_counter + 3})
    b = acquire_exact(env)
    # the duplicate carries the same block id: the driver drops it, nothing to re-acquire
    assert b.reacquired == 0
    assert np.all(np.diff(b.frame_ids) == 1)


def test_one_frame_trigger_lag_is_detected_and_reacquired(env):
    rig, hw = env["rig"], env["hw"]
    faults = rig.fpga.faults
    once(rig, lambda: setattr(faults, "trigger_lag_frames", frozenset({3})),
         lambda: setattr(faults, "trigger_lag_frames", frozenset()))
    b = hw.acquire(env["patterns"], EXPOSURE_US)
    assert b.reacquired == N
    assert np.array_equal(b.frames, env["ref"])
    assert any("trigger" in p for p in b.info.problems)


def test_persistent_trigger_lag_raises_frame_integrity_error(env):
    rig, hw = env["rig"], env["hw"]
    rig.fpga.faults.trigger_lag_frames = frozenset({0})
    runs = rig.stats.runs
    with pytest.raises(FrameIntegrityError, match="could not be attributed"):
        hw.acquire(env["patterns"], EXPOSURE_US)
    assert rig.stats.runs == runs + hw.config.acquisition.max_reacquire + 1
    assert_stopped(rig)


@pytest.mark.parametrize("kind", ["missing_camera_triggers", "extra_camera_triggers"])
def test_missing_or_extra_camera_trigger_is_reacquired(env, kind):
    rig, hw = env["rig"], env["hw"]
    faults = rig.fpga.faults
    once(rig, lambda: setattr(faults, kind, frozenset({4})),
         lambda: setattr(faults, kind, frozenset()))
    b = hw.acquire(env["patterns"], EXPOSURE_US)
    assert b.reacquired == N
    assert np.array_equal(b.frames, env["ref"])
    # the stream is back in sync for the next call
    assert np.array_equal(hw.acquire(env["patterns"], EXPOSURE_US).frames, env["ref"])


def _reopen_and_check(env):
    env["hw"].close()
    env["hw"] = open_hardware(env["rig"], env["roi"], usb_config(env["rig"]))
    assert np.array_equal(env["hw"].acquire(env["patterns"], EXPOSURE_US).frames, env["ref"])


def test_camera_disconnect_mid_batch(env):
    rig, hw = env["rig"], env["hw"]
    two_chunks = np.concatenate([env["patterns"]] * 20)  # 480 patterns: 400 + 80

    def unplug_camera() -> None:
        rig.camera.faults = CameraFaults(disconnect=True)

    rig.fpga.faults.once("run", unplug_camera, after=1)  # while the second run renders
    with pytest.raises(DeviceDisconnectedError):
        hw.acquire(two_chunks, EXPOSURE_US)
    assert not rig.dmd.running and rig.fpga.state == BoardState.IDLE
    with pytest.raises(DeviceDisconnectedError, match="close"):
        hw.acquire(env["patterns"], EXPOSURE_US)
    rig.camera.faults = CameraFaults()
    _reopen_and_check(env)


def test_dmd_disconnect_mid_batch(env):
    rig, hw = env["rig"], env["hw"]
    rig.dmd.faults.disconnect_after_reports = 200
    with pytest.raises(DeviceDisconnectedError):
        hw.acquire(np.concatenate([env["patterns"]] * 20), EXPOSURE_US)
    assert rig.fpga.state == BoardState.IDLE and not rig.camera.acquiring
    rig.dmd.faults = DLPC900Faults()
    rig.dmd.reconnect()
    _reopen_and_check(env)


def test_fpga_disconnect_mid_batch(env):
    rig, hw = env["rig"], env["hw"]
    rig.fpga.faults.disconnect_after_frames = 2
    with pytest.raises(DeviceDisconnectedError):
        hw.acquire(env["patterns"], EXPOSURE_US)
    assert not rig.dmd.running and not rig.camera.acquiring
    assert rig.fpga.state == BoardState.IDLE  # the board stops on link loss
    rig.fpga.reconnect()
    _reopen_and_check(env)


def test_fpga_silent_raises_timeout_with_devices_stopped(env):
    rig, hw = env["rig"], env["hw"]
    rig.fpga.faults.timeouts = 1000  # the board swallows every command
    with pytest.raises(DeviceTimeoutError):
        hw.acquire(env["patterns"], EXPOSURE_US + 1)
    rig.fpga.faults.timeouts = 0
    assert not rig.dmd.running and not rig.camera.acquiring
    assert np.array_equal(hw.acquire(env["patterns"], EXPOSURE_US).frames, env["ref"])


def _sent(rig):
    return (len(rig.dmd.commands_received), len(rig.fpga.executed), rig.fpga.bytes_received,
            rig.camera.frame_counter, rig.camera.exposure_us)


@pytest.mark.parametrize(
    "patterns, exposure, match",
    [
        (np.zeros((3, 95), np.uint8), EXPOSURE_US, "shape"),
        (np.zeros((0, 96), np.uint8), EXPOSURE_US, "no patterns"),
        (np.full((2, 96), 2, np.uint8), EXPOSURE_US, "binary"),
        (np.full((2, 96), 0.5, np.float32), EXPOSURE_US, "binary"),
        (np.full((2, 96), np.nan), EXPOSURE_US, "binary"),
        (np.array([["a"] * 96]), EXPOSURE_US, "dtype"),
        (np.zeros((2, 96), np.uint8), 5.0, "outside"),  # below the camera's 10 us
        (np.zeros((2, 96), np.uint8), 2e6, "outside"),
        (np.zeros((2, 96), np.uint8), float("nan"), "outside"),
        (np.zeros((2, 96), np.uint8), "100", "number"),
    ],
)
def test_bad_input_raises_before_anything_is_sent(env, patterns, exposure, match):
    rig, hw = env["rig"], env["hw"]
    before = _sent(rig)
    with pytest.raises(InputError, match=match):
        hw.acquire(patterns, exposure)
    assert _sent(rig) == before


def test_short_exposure_keeps_the_pattern_up_for_the_dmd_minimum(env):
    rig, hw = env["rig"], env["hw"]
    before = _sent(rig)
    with pytest.raises(InputError, match="105"):  # the DMD driver refuses a short LUT entry
        hw.dmd.load_elements(env["patterns"], hw.layout, 50)
    assert _sent(rig) == before
    violations = rig.stats.timing_violations
    b = hw.acquire(env["patterns"], 50.0)  # the camera may expose inside a 105 us pattern
    assert (b.info.dmd_exposure_us, b.info.frame_period_us) == (105, 110)
    assert rig.stats.timing_violations == violations
    assert b.exposure_us == 50.0 and rig.camera.exposure_us == 50.0
    assert 0 < b.frames.mean() - 64 < env["ref"].mean() - 64  # less light than at 150 us


def test_too_many_patterns_for_the_lut_raise_before_sending(env):
    rig, hw = env["rig"], env["hw"]
    before = _sent(rig)
    with pytest.raises(InputError, match="400"):
        hw.dmd.load_elements(np.zeros((401, 96), np.uint8), hw.layout, 200)
    assert _sent(rig) == before
    # through OPUHardware the same batch is split into LUT-sized runs
    b = hw.acquire(np.concatenate([env["patterns"]] * 17)[:401], EXPOSURE_US)
    assert len(b.info.run_ids) == 2
    assert np.array_equal(b.frames[N : 2 * N], env["ref"])


def test_output_pixels_are_cropped_on_the_host(env):
    hw = env["hw"]
    ids = hw.roi.pixel_ids()[[5, 0, 63]]
    hw.set_output_pixels(ids)
    try:
        b = hw.acquire(env["patterns"], EXPOSURE_US)
    finally:
        hw.set_output_pixels(None)
    assert np.array_equal(b.pixel_ids, ids)
    assert np.array_equal(b.frames, env["ref"][:, [5, 0, 63]])
    with pytest.raises(InputError, match="inside the camera ROI"):
        hw.set_output_pixels(np.array([0]))
