"""Video-pattern mode end to end: OPUHardware (the real drivers) -> DLPC900 emulator in display
mode 2, fed by the emulated video link, the FPGA and camera emulators, the physics.

Noise off: frames and project() equal the simulator's bit for bit. A late flip (previous frame
shown twice), a dropped video frame and a lost VSYNC edge are detected, recovered (the frames
still equal the fault-free ones) and reported; a fault on every run raises FrameIntegrityError.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from firmware_iface.errors import ConfigurationError, FrameIntegrityError, InputError
from firmware_iface.geometry import CameraRoi, DmdLayout
from firmware_iface.hardware.config import DmdConfig
from opu import OPU
from opu.emulated import hardware_config, open_hardware
from opu_sim.bench import OpticalBench
from opu_sim.emulators.dlpc900_video import VideoLinkFaults
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile

EXPOSURE_US = 150.0
N = 60  # 3 video frames, the last one partly used


@pytest.fixture(scope="module")
def setup():
    prof = DeviceProfile.deterministic()
    layout = DmdLayout.fit(48, 48)
    roi = CameraRoi.centred(64, 1920, 1200)
    rig = EmulatedRig(prof, 11, layout)
    hw = open_hardware(rig, roi)
    patterns = (np.random.default_rng(5).random((N, layout.n_elements)) < 0.5).astype(np.uint8)
    sim = OpticalBench(prof, 11, layout, roi)
    ref = np.clip(np.rint(sim.acquire(patterns, EXPOSURE_US).frames), 0, prof.camera.max_dn)
    yield {"rig": rig, "hw": hw, "patterns": patterns, "ref": ref.astype(np.uint16), "roi": roi}
    hw.close()


@pytest.fixture
def env(setup):
    setup["rig"].video.faults = VideoLinkFaults()
    return setup


def test_default_path_is_video_and_frames_equal_the_simulator(env):
    hw, rig = env["hw"], env["rig"]
    assert hw.pattern_path == "video" and hw.frame_period_us == 347.0
    assert rig.dmd.display_mode == 2 and rig.dmd.running
    assert rig.now_us >= 300_000  # the ~300 ms switch into video-pattern mode (DLPU018 2.4.1)
    before = rig.video.frames_presented
    b = hw.acquire(env["patterns"], EXPOSURE_US)
    assert b.info.pattern_path == "video" and b.info.frame_period_us == 347
    assert rig.video.frames_presented - before == 3  # 60 patterns in 3 RGB888 frames
    assert b.reacquired == 0 and b.info.problems == ()
    assert np.array_equal(b.frames, env["ref"])
    # one camera exposure per pattern trigger, 24 per VSYNC (+ one spare VSYNC per run)
    assert np.all(np.diff(b.timestamps_us)[:23] == 347)


@pytest.mark.parametrize(
    "fault, kind",
    [
        ({"late_flips": {1}}, "late_flip"),
        ({"dropped_frames": {0}}, "dropped_frame"),
        ({"lost_vsyncs": {2}}, "lost_vsync"),
        ({"late_flips": {1}, "dropped_frames": {1}, "lost_vsyncs": {3}}, "dropped_frame"),
        ({"lost_vsyncs": {0}}, "trigger_count"),  # the run's first edge: run again
    ],
)
def test_video_faults_are_detected_and_recovered(env, fault, kind):
    rig, hw = env["rig"], env["hw"]
    rig.video.faults = VideoLinkFaults(**{k: set(v) for k, v in fault.items()})
    b = hw.acquire(env["patterns"], EXPOSURE_US)
    assert any(f": {kind}:" in p for p in b.info.problems), b.info.problems
    assert np.array_equal(b.frames, env["ref"])  # never attributed to the wrong pattern
    if kind == "dropped_frame":
        assert b.reacquired == 24  # the dropped frame's 24 patterns were shown again


def test_a_fault_on_every_run_raises(env):
    rig, hw = env["rig"], env["hw"]
    rig.video.faults = VideoLinkFaults(lost_vsyncs={0}, every_run=True)
    with pytest.raises(FrameIntegrityError, match="video-pattern exposures"):
        hw.acquire(env["patterns"], EXPOSURE_US)
    rig.video.faults = VideoLinkFaults()
    assert np.array_equal(hw.acquire(env["patterns"], EXPOSURE_US).frames, env["ref"])


def test_long_exposures_take_the_usb_path_and_video_only_refuses_them(env):
    rig, hw = env["rig"], env["hw"]
    p = env["patterns"][:5]
    b = hw.acquire(p, 500.0)  # longer than a 347 us video pattern
    assert b.info.pattern_path == "usb" and rig.dmd.display_mode == 3
    sim = OpticalBench(rig.profile, 11, hw.layout, env["roi"])
    ref = np.clip(np.rint(sim.acquire(p, 500.0).frames), 0, rig.profile.camera.max_dn)
    assert np.array_equal(b.frames, ref.astype(np.uint16))
    assert hw.acquire(p, EXPOSURE_US).info.pattern_path == "video"  # and back
    rig2 = EmulatedRig(rig.profile, 11, hw.layout)
    cfg = replace(hardware_config(rig2), dmd=DmdConfig(pattern_path="video"))
    with open_hardware(rig2, env["roi"], cfg) as hw2, pytest.raises(InputError, match="video"):
        hw2.acquire(p, 500.0)


def test_timing_model_of_the_video_path(env):
    m = env["hw"].timing_model
    assert m.path == "video" and m.frame_period_us == pytest.approx(1e6 / 2880)
    assert m.patterns_per_s == pytest.approx(2880)
    assert m.call_s(48) == pytest.approx(3 / 120)  # 2 frames + the wait for the next VSYNC
    assert m.upload_s(400) == 0.0


def test_project_on_the_video_path_equals_the_simulator():
    prof = DeviceProfile.deterministic()
    x = (np.random.default_rng(1).random((30, 40)) < 0.5).astype(np.float32)
    with OPU(device="sim", n_in=40, n_out=48, seed=3, profile=prof) as sim, OPU(
        device="emu", n_in=40, n_out=48, seed=3, profile=prof
    ) as emu:
        assert emu.source.pattern_path == "video"
        assert np.array_equal(emu.project(x), sim.project(x))
        assert np.array_equal(emu.project(x, mode="intensity"), sim.project(x, mode="intensity"))


def test_the_timing_board_counts_vsync_edges(env):
    from firmware_iface.fpga.messages import TriggerFlags

    rig, hw = env["rig"], env["hw"]
    hw.acquire(env["patterns"][:24], EXPOSURE_US)  # one video frame + the spare VSYNC
    log = hw.fpga.read_trigger_log(0, 8) + hw.fpga.read_trigger_log(24, 1)
    assert [bool(e.flags & TriggerFlags.VSYNC) for e in log] == [True] + [False] * 7 + [True]
    rig.video.faults = VideoLinkFaults(lost_vsyncs={1})
    b = hw.acquire(env["patterns"][:24], EXPOSURE_US)
    assert not hw.fpga.read_trigger_log(24, 1)[0].flags & TriggerFlags.VSYNC
    assert any(": lost_vsync:" in p for p in b.info.problems)
    assert np.array_equal(b.frames, env["ref"][:24])


def test_the_display_latency_bench_check_and_what_a_wrong_latency_would_do(env):
    rig, hw = env["rig"], env["hw"]
    assert hw.measure_video_latency(EXPOSURE_US) == 0
    rig.video.latency_vsyncs = 1  # a display pipeline that holds one frame
    try:
        assert hw.measure_video_latency(EXPOSURE_US) == 1
        # with the config still at 0, exposures would be attributed to the wrong frames and no
        # count reveals it: what the bench check exists for
        assert not np.array_equal(hw.acquire(env["patterns"], EXPOSURE_US).frames, env["ref"])
        hw.config = replace(hw.config, dmd=replace(hw.config.dmd, video_latency_vsyncs=1))
        b = hw.acquire(env["patterns"], EXPOSURE_US)
        assert np.array_equal(b.frames, env["ref"]) and b.info.problems == ()
    finally:
        rig.video.latency_vsyncs = 0
        hw.config = replace(hw.config, dmd=replace(hw.config.dmd, video_latency_vsyncs=0))
    assert hw.measure_video_latency(EXPOSURE_US) == 0
    with pytest.raises(ConfigurationError, match="video path"):
        hw.measure_video_latency(500.0)  # longer than a video pattern: the usb path
