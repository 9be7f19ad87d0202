"""Frames per second through the whole emulated hardware stack (OPUHardware -> DLPC900 / FPGA /
camera drivers -> emulators -> OpticalBench physics), next to the plain simulator's frames/s and
the device's own frame-rate model (1e6 / frame_period_us), measured in the same run, with a
breakdown of where the time goes.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_emulated_stack.py [--n-in 256] [--n-out 256]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import print_stack_phases, time_stack

from firmware_iface.geometry import CameraRoi, DmdLayout
from opu.emulated import open_hardware
from opu_sim.bench import OpticalBench
from opu_sim.emulators.rig import EmulatedRig
from opu_sim.profile import DeviceProfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-in", type=int, default=256)
    ap.add_argument("--n-out", type=int, default=256)
    ap.add_argument("--frames", type=int, default=2000, help="frames per timed repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    prof = DeviceProfile.default()
    layout = DmdLayout.fit(args.n_in, args.n_in)
    roi = CameraRoi.centred(args.n_out, prof.camera.sensor_width, prof.camera.sensor_height)
    rng = np.random.default_rng(0)
    p = (rng.random((args.frames, layout.n_elements)) < 0.5).astype(np.uint8)
    exposure = 110.0

    sim = OpticalBench(prof, 1, layout, roi)
    rig = EmulatedRig(prof, 1, layout)
    hw = open_hardware(rig, roi)
    t = time_stack(sim, hw, rig, p, exposure, args.repeats, warm_up=400)
    assert t.reacquired == 0
    b, best_sim, best_emu, hw_s, rig_s = t.batch, t.best_sim, t.best_emu, t.hw_s, t.rig_s
    n_total = args.frames * args.repeats
    period = b.info.frame_period_us
    print(f"n_in={args.n_in} (+{args.n_in} anchor elements, {layout.macro_pixel}-mirror "
          f"macro-pixels), n_out={args.n_out} (ROI {roi.width}x{roi.height}), "
          f"{args.frames} frames per call, best of {args.repeats}, pattern path "
          f"{b.info.pattern_path!r}\n")
    print(f"{'source':<34}{'frames/s':>12}")
    print(f"{'device model 1e6/frame_period_us':<34}{1e6 / period:>12,.0f}   (period {period} us)")
    print(f"{'simulator (OpticalBench)':<34}{args.frames / best_sim:>12,.0f}")
    print(f"{'emulated stack (OPUHardware)':<34}{args.frames / best_emu:>12,.0f}")
    print()
    print_stack_phases([
        "DMD prepare (ERLE / RGB888 frames)",
        "DMD upload (USB HID) / frame present",
        "DMD shown pattern -> elements (rig)",
        "FPGA protocol (UART, events)",
        "physics render (OpticalBench)",
        "camera stream pack (emulator)",
        "camera readout + unpack (driver)",
        "integrity checks + counter reads",
        "other host work",
    ], hw_s, rig_s, n_total, width=36)
    hw.close()


if __name__ == "__main__":
    main()
