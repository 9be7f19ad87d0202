"""Video-pattern mode on the host: packing 24 one-bit patterns into one 1920x1080 RGB888 frame
(firmware_iface.dlpc900.video), next to a memory copy of the same 6.2 MB measured in the same
run, and the emulated stack's frames/s on the video path with where the time goes.

The packer must keep up with the controller with room to spare: >= 10 x 120 Hz = 1,200
frames/s on one core. Run it on one core:

    NUMBA_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_dmd_video.py
        [--sizes 1024 4096 16384 65536] [--repeats 5] [--skip-stack]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _timing import print_stack_phases, time_stack

from firmware_iface.dlpc900.timing import PathTiming
from firmware_iface.dlpc900.video import pack_frame, pack_frame_elements
from firmware_iface.geometry import CameraRoi, DmdLayout

H, W = 1080, 1920
TARGET = 1200.0  # 10 x the 120 Hz video rate


def best_rate(fn, n: int, repeats: int) -> float:
    """Best calls/s of fn over `repeats` timings of n calls."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return 1.0 / best


def bench_packing(sizes: list[int], repeats: int) -> None:
    out = np.empty((H, W, 3), np.uint8)
    src = np.ones_like(out)
    copy = best_rate(lambda: np.copyto(out, src), 50, repeats)
    print(f"host packing, 24 patterns -> one {W}x{H} RGB888 frame ({out.nbytes / 1e6:.1f} MB), "
          f"one core, best of {repeats}")
    print(f"{'input':<38}{'frames/s':>10}{'x 120 Hz':>10}{'copy/pack':>11}{'>= 1,200':>10}")
    print(f"{'np.copyto of the frame (ceiling)':<38}{copy:>10,.0f}{copy / 120:>10,.1f}"
          f"{1.0:>11.2f}")
    rng = np.random.default_rng(0)
    for n_in in sizes:
        layout = DmdLayout.fit(n_in, n_in)
        el = rng.random((24, layout.n_elements)) < 0.5
        r = best_rate(lambda el=el, layout=layout: pack_frame_elements(el, layout, out), 50,
                      repeats)
        name = f"elements {n_in}+{n_in} ({layout.macro_pixel} px macro-pixels)"
        print(f"{name:<38}{r:>10,.0f}{r / 120:>10,.1f}{copy / r:>11.2f}"
              f"{'yes' if r >= TARGET else 'no':>10}")
    imgs = rng.random((24, H, W)) < 0.5
    r = best_rate(lambda: pack_frame(imgs, out), 3, repeats)
    print(f"{'full-resolution (24, 1080, 1920) bool':<38}{r:>10,.0f}{r / 120:>10,.1f}"
          f"{copy / r:>11.2f}{'yes' if r >= TARGET else 'no':>10}   (reads 50 MB per frame)")


def bench_stack(n_in: int, n_out: int, n_frames: int, repeats: int) -> None:
    from opu.emulated import open_hardware  # noqa: PLC0415
    from opu_sim.bench import OpticalBench  # noqa: PLC0415
    from opu_sim.emulators.rig import EmulatedRig  # noqa: PLC0415
    from opu_sim.profile import DeviceProfile  # noqa: PLC0415

    prof = DeviceProfile.default()
    layout = DmdLayout.fit(n_in, n_in)
    roi = CameraRoi.centred(n_out, prof.camera.sensor_width, prof.camera.sensor_height)
    p = (np.random.default_rng(1).random((n_frames, layout.n_elements)) < 0.5).astype(np.uint8)
    sim = OpticalBench(prof, 1, layout, roi)
    rig = EmulatedRig(prof, 1, layout)
    hw = open_hardware(rig, roi)
    exposure = 100.0
    t = time_stack(sim, hw, rig, p, exposure, repeats, warm_up=384)
    b, best_sim, best_emu, hw_s, rig_s = t.batch, t.best_sim, t.best_emu, t.hw_s, t.rig_s
    n_total = n_frames * repeats
    model = hw.timing_model
    print(f"\nemulated stack on the video path (pattern_path={b.info.pattern_path!r}): "
          f"n_in={n_in}, n_out={n_out}, {n_frames} frames per call, best of {repeats}")
    print(f"{'source':<40}{'frames/s':>10}")
    print(f"{'device model (24 x 120 Hz)':<40}{model.patterns_per_s:>10,.0f}   "
          f"(a call of {n_frames}: {model.call_s(n_frames) * 1e3:.0f} ms)")
    print(f"{'simulator (OpticalBench)':<40}{n_frames / best_sim:>10,.0f}")
    emu = n_frames / best_emu
    print(f"{'emulated stack (OPUHardware, video)':<40}{emu:>10,.0f}   "
          f"= {emu / model.patterns_per_s:.2f} x the device")
    print_stack_phases([
        "pack frames (elements -> RGB888)",
        "present frames (video link)",
        "DMD bit planes -> elements (rig)",
        "FPGA protocol (UART, events)",
        "physics render (OpticalBench)",
        "camera stream pack (emulator)",
        "camera readout + unpack (driver)",
        "integrity + VSYNC attribution",
        "other host work",
    ], hw_s, rig_s, n_total, width=40)
    usb = PathTiming.usb(110.0)
    print(f"\nfor comparison, the usb path uploading the same patterns: "
          f"{usb.call_s(n_frames, image_bytes=20_898) * 1e3:,.0f} ms per call of {n_frames} "
          f"(ERLE ~20.9 kB per 24-pattern image at 1 report/ms)")
    hw.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-stack", action="store_true")
    ap.add_argument("--n-in", type=int, default=256)
    ap.add_argument("--n-out", type=int, default=256)
    ap.add_argument("--frames", type=int, default=1920)
    args = ap.parse_args()
    bench_packing(args.sizes, args.repeats)
    if not args.skip_stack:
        bench_stack(args.n_in, args.n_out, args.frames, max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
