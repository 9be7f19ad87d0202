"""Photon transfer on a grid of consistent cameras: K, read noise and saturation against the
simulator's truth (docs/calibration.md "Any consistent camera").

    python tools/camera_grid.py [--bits 8,10,12] [--k 0.05,0.134,0.5,2] [--wells 0.1,0.3,1.2]
                                [--read-e 6]

Each camera: black level clear of 0 by 4 read-noise sigmas, full well at the given fraction of
the ADC range above it, light scaled to the full well; profiles whose saturation is below 30
read-noise sigmas are refused by the profile and listed as such.
"""

from __future__ import annotations

import argparse
import dataclasses as dc

from calibration.ptc import measure_photon_transfer
from firmware_iface.errors import ConfigurationError
from firmware_iface.geometry import CameraRoi, DmdLayout
from opu_sim.bench import OpticalBench
from opu_sim.profile import DeviceProfile

LAYOUT = DmdLayout.fit(256, 256)


def camera_params(bits: int, k: float, well_fraction: float, read_e: float = 6.0) -> dict:
    """A camera's black level (clear of 0 by 4 read-noise sigmas) and full well (at
    well_fraction of the ADC range above it), as CameraProfile fields."""
    max_dn = (1 << bits) - 1
    black = float(max(round(max_dn / 64), round(4 * k * read_e) + 1))
    return {"bit_depth": bits, "gain_dn_per_e": k, "read_noise_e": read_e,
            "black_offset_dn": black, "full_well_e": well_fraction * (max_dn - black) / k}


def camera_profile(bits: int, k: float, well_fraction: float, read_e: float = 6.0
                   ) -> DeviceProfile:
    """The default device with the camera of camera_params, the light scaled to its full well
    (raises ConfigurationError for an inconsistent camera)."""
    cam = camera_params(bits, k, well_fraction, read_e)
    p = DeviceProfile.default()
    laser = dc.replace(p.laser, photons_per_mirror_us=p.laser.photons_per_mirror_us
                       * cam["full_well_e"] / p.camera.full_well_e)
    return dc.replace(p, camera=dc.replace(p.camera, **cam), laser=laser)


def saturation_e(p: DeviceProfile) -> float:
    """True saturation capacity: the full well or the ADC top, whichever comes first, e-."""
    c = p.camera
    return min(c.full_well_e, (c.max_dn - c.black_offset_dn) / c.gain_dn_per_e)


def refused(bits: int, k: float, frac: float, read_e: float = 6.0) -> bool:
    """The profile's rule: saturation below 30x the read noise (30 dB) is inconsistent."""
    c = camera_params(bits, k, frac, read_e)
    sat = min(c["full_well_e"], ((1 << bits) - 1 - c["black_offset_dn"]) / k)
    return sat < 30 * c["read_noise_e"]


def main() -> None:
    """Run photon transfer on every camera of the grid and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bits", default="8,10,12")
    ap.add_argument("--k", default="0.05,0.134,0.5,2")
    ap.add_argument("--wells", default="0.1,0.3,1.2")
    ap.add_argument("--read-e", type=float, default=6.0, help="read noise, e-")
    args = ap.parse_args()
    print("| bits | K (DN/e-) | full well / range | K error | read noise error | "
          "saturation error | read-noise method |")
    print("|---|---|---|---|---|---|---|")
    for bits in (int(b) for b in args.bits.split(",")):
        for k in (float(v) for v in args.k.split(",")):
            for frac in (float(v) for v in args.wells.split(",")):
                try:
                    p = camera_profile(bits, k, frac, args.read_e)
                except ConfigurationError:
                    print(f"| {bits} | {k:g} | {frac:g} | refused (saturation < 30 read-noise "
                          "sigmas) | | | |", flush=True)
                    continue
                b = OpticalBench(p, 1, LAYOUT, CameraRoi.centred(1600, 1920, 1200))
                r = measure_photon_transfer(b)
                print(f"| {bits} | {k:g} | {frac:g} | {r.gain_dn_per_e / k - 1:+.1%} | "
                      f"{r.read_noise_e / p.camera.read_noise_e - 1:+.1%} | "
                      f"{r.saturation_capacity_e / saturation_e(p) - 1:+.1%} | "
                      f"{r.extra['read_noise_method'].split(' (')[0]} |", flush=True)


if __name__ == "__main__":
    main()
