"""Throughput of Mono12p / Mono10p pack and unpack against a plain memory copy of the same bytes.

For a 1920x1200 frame and a batch of frames, each codec call is timed next to np.copyto of its
packed bytes (the wire data), measured in the same run; the table prints the time ratio
(codec / copy: 1.0 would mean unpacking costs no more than moving the bytes once).

Usage: .venv/bin/python benchmarks/bench_pixel_formats.py [--batch 16] [--repeats 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_time

from firmware_iface.camera.pixel_formats import PixelFormat, pack, pack_into, payload_size, unpack

W, H = 1920, 1200




def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16, help="frames in the batch case")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per measurement")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n_frames in (1, args.batch):
        n = n_frames * W * H
        for fmt, bits in ((PixelFormat.Mono12p, 12), (PixelFormat.Mono10p, 10)):
            pixels = rng.integers(0, 1 << bits, size=n, dtype=np.uint16)
            wire = np.frombuffer(pack(pixels, fmt), dtype=np.uint8)
            assert wire.size == payload_size(fmt, n)
            out = np.empty(n, dtype=np.uint16)
            copy_dst = np.empty_like(wire)
            t_copy = best_time(lambda: np.copyto(copy_dst, wire), args.repeats)  # noqa: B023
            t_unpack = best_time(lambda: unpack(wire, fmt, n, out=out), args.repeats)  # noqa: B023
            packed = np.empty_like(wire)
            t_pack = best_time(lambda: pack_into(pixels, fmt, packed), args.repeats)  # noqa: B023
            assert np.array_equal(out, pixels) and np.array_equal(packed, wire)
            mb = wire.nbytes / 1e6
            for op, t in (("unpack", t_unpack), ("pack", t_pack)):
                rows.append(
                    (
                        f"{fmt.name} {op}",
                        n_frames,
                        mb,
                        t * 1e3,
                        mb / 1e3 / t,
                        t_copy * 1e3,
                        t / t_copy,
                    )
                )
    header = ("operation", "frames", "wire MB", "ms", "GB/s (wire)", "copyto ms", "x copyto")
    print(
        f"{W}x{H} frames; best of {args.repeats}; ratio = codec time / np.copyto of the wire bytes"
    )
    print(
        f"{header[0]:<16}{header[1]:>7}{header[2]:>9}{header[3]:>9}{header[4]:>13}"
        f"{header[5]:>11}{header[6]:>10}"
    )
    for op, nf, mb, ms, gbs, cms, ratio in rows:
        print(f"{op:<16}{nf:>7}{mb:>9.1f}{ms:>9.2f}{gbs:>13.2f}{cms:>11.2f}{ratio:>10.1f}")


if __name__ == "__main__":
    main()
