"""Device profiles: every physical knob of the simulated OPU, with units in the names.

The defaults describe a plausible bench: a DLP6500-class DMD (1920x1080, ~9.5 kHz binary
patterns) on a DLPC900, a 12-bit global-shutter CMOS camera of the IMX174 class
(1920x1200, full well ~32 ke-, read noise ~6 e-), and a laser whose speckle gives a few
hundred photo-electrons per ON element of 16x16 mirrors per millisecond. Each noise source can
be switched off; `DeviceProfile.ideal()` is the exact, noise-free model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from firmware_iface.errors import ConfigurationError


@dataclass(frozen=True)
class DmdProfile:
    """Digital micromirror device."""

    width: int = 1920
    height: int = 1080
    max_pattern_rate_hz: float = 9523.0
    min_pattern_exposure_us: float = 105.0


@dataclass(frozen=True)
class LaserProfile:
    """Illumination: mean photons reaching one camera pixel per ON mirror per microsecond, and
    the relative standard deviation of the power from frame to frame. An element of m mirrors
    (a macro-pixel) sums m independent mirror fields, so its intensity scales with m."""

    photons_per_mirror_us: float = 0.02 / 256
    power_fluctuation_rel: float = 0.002


@dataclass(frozen=True)
class MediumProfile:
    """Scattering medium: decorrelation time constant tau, seconds (None: static). The drift is
    continuous in time with correlation exp(-|dt| / tau) (opu_sim.drift_model)."""

    drift_time_s: float | None = 3600.0


@dataclass(frozen=True)
class CameraProfile:
    """EMVA 1288 camera model parameters."""

    sensor_width: int = 1920
    sensor_height: int = 1200
    bit_depth: int = 12
    quantum_efficiency: float = 0.7
    full_well_e: float = 32000.0
    read_noise_e: float = 6.0
    dark_current_e_per_s: float = 10.0
    dsnu_e: float = 1.5
    prnu_rel: float = 0.01
    # ADC range ends just below the full well (as cameras are usually set up), so saturation
    # shows as the maximum count on every device: 0.128 * 31500 e- + 64 = 4096 DN
    gain_dn_per_e: float = 0.128
    black_offset_dn: float = 64.0
    hot_pixel_fraction: float = 2e-4
    hot_pixel_dark_factor: float = 500.0
    dead_pixel_fraction: float = 5e-5
    min_exposure_us: float = 10.0
    max_exposure_us: float = 1.0e6
    serial: str = "SIM-CAM-0001"

    @property
    def max_dn(self) -> int:
        """Largest ADC output, DN."""
        return (1 << self.bit_depth) - 1


def camera_inconsistency(c: CameraProfile) -> str:
    """What makes a camera profile physically inconsistent ('' when nothing): a real camera is
    set up so the dark level sits clear of 0, the full well spans a usable part of the ADC
    range, and exposures, fractions and efficiencies are in their ranges."""
    range_dn = c.max_dn - c.black_offset_dn
    dark_sigma_dn = c.gain_dn_per_e * c.read_noise_e
    sat_e = min(c.full_well_e, range_dn / c.gain_dn_per_e) if c.gain_dn_per_e > 0 else 0.0
    checks = [
        (c.read_noise_e >= 0 and c.dark_current_e_per_s >= 0 and c.dsnu_e >= 0,
         "read_noise_e, dark_current_e_per_s and dsnu_e must be >= 0"),
        (0 < c.quantum_efficiency <= 1, f"quantum_efficiency={c.quantum_efficiency} is not in "
         "(0, 1]"),
        (0 <= c.prnu_rel < 0.5, f"prnu_rel={c.prnu_rel} is not in [0, 0.5)"),
        (0 <= c.hot_pixel_fraction < 0.1 and 0 <= c.dead_pixel_fraction < 0.1,
         "hot_pixel_fraction and dead_pixel_fraction must be in [0, 0.1)"),
        (0 < c.min_exposure_us < c.max_exposure_us,
         f"exposure range [{c.min_exposure_us}, {c.max_exposure_us}] us is empty"),
        (0 <= c.black_offset_dn < 0.5 * c.max_dn,
         f"black_offset_dn={c.black_offset_dn} is not in [0, {0.5 * c.max_dn:g}) DN "
         f"(half the {c.bit_depth}-bit range)"),
        (c.black_offset_dn >= 3.0 * dark_sigma_dn,
         f"black_offset_dn={c.black_offset_dn} DN is within 3 read-noise sigmas "
         f"({dark_sigma_dn:.3g} DN each) of 0, so the ADC clips the dark noise; raise it to "
         f">= {3.0 * dark_sigma_dn:.3g} DN"),
        (c.full_well_e * c.gain_dn_per_e >= 0.05 * range_dn,
         f"the full well ({c.full_well_e:g} e- x {c.gain_dn_per_e:g} DN/e- = "
         f"{c.full_well_e * c.gain_dn_per_e:.4g} DN) fills less than 5 % of the ADC range "
         f"({range_dn:g} DN above the black level); raise gain_dn_per_e"),
        (sat_e >= 30.0 * max(c.read_noise_e, 1.0),
         f"the saturation ({sat_e:.4g} e-: full well or ADC top, whichever comes first) is "
         f"below 30x the read noise ({c.read_noise_e:g} e-): a dynamic range under 30 dB"),
    ]
    return next((msg for ok, msg in checks if not ok), "")


@dataclass(frozen=True)
class NoiseSwitches:
    """Which effects are simulated. All off is the exact linear detector (float output)."""

    shot: bool = True
    read: bool = True
    dark_current: bool = True
    dsnu: bool = True
    prnu: bool = True
    defects: bool = True
    laser: bool = True
    drift: bool = True
    quantization: bool = True
    saturation: bool = True

    @classmethod
    def none(cls) -> NoiseSwitches:
        """Every effect off."""
        return cls(**{k: False for k in cls.__dataclass_fields__})

    @property
    def any(self) -> bool:
        """True if at least one effect is on."""
        return any(asdict(self).values())


@dataclass(frozen=True)
class DeviceProfile:
    """A whole simulated OPU. `frame_period_us` is the time between frames on the device clock:
    by default one pattern of the DLPC900's video-pattern mode at 120 Hz, 1e6 / (24 x 120) us in
    whole microseconds (firmware_iface.dlpc900.timing; the emulated stack runs that path)."""

    name: str = "sim-default"
    dmd: DmdProfile = field(default_factory=DmdProfile)
    laser: LaserProfile = field(default_factory=LaserProfile)
    medium: MediumProfile = field(default_factory=MediumProfile)
    camera: CameraProfile = field(default_factory=CameraProfile)
    noise: NoiseSwitches = field(default_factory=NoiseSwitches)
    frame_period_us: float = 347.0
    noise_seed: int = 12345
    camera_seed: int = 777

    def __post_init__(self) -> None:
        c = self.camera
        if c.bit_depth not in (8, 10, 12):
            raise ConfigurationError(f"camera bit_depth must be 8, 10 or 12, got {c.bit_depth}")
        positive = {
            "camera.quantum_efficiency": c.quantum_efficiency,
            "camera.full_well_e": c.full_well_e,
            "camera.gain_dn_per_e": c.gain_dn_per_e,
            "laser.photons_per_mirror_us": self.laser.photons_per_mirror_us,
            "frame_period_us": self.frame_period_us,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0, got {value!r}")
        problem = camera_inconsistency(c)
        if problem:
            raise ConfigurationError(f"inconsistent camera profile: {problem}")
        if self.frame_period_us < 1e6 / self.dmd.max_pattern_rate_hz:
            raise ConfigurationError(
                f"frame_period_us={self.frame_period_us} is faster than the DMD's "
                f"{self.dmd.max_pattern_rate_hz} Hz maximum pattern rate"
            )

    @classmethod
    def default(cls) -> DeviceProfile:
        """The default bench, every noise source on."""
        return cls()

    @classmethod
    def ideal(cls) -> DeviceProfile:
        """The exact model: no noise, no drift, no quantisation or clipping."""
        return cls(name="sim-ideal", noise=NoiseSwitches.none())

    @classmethod
    def deterministic(cls) -> DeviceProfile:
        """No random noise and no drift, but the camera still quantises and saturates: what
        an emulated (integer-output) camera delivers with noise off, identical on sim and emu."""
        return cls(
            name="sim-deterministic",
            noise=NoiseSwitches(
                shot=False, read=False, dark_current=False, dsnu=False, prnu=False,
                defects=False, laser=False, drift=False,
            ),
        )

    def with_noise(self, **switches: bool) -> DeviceProfile:
        """A copy with some noise switches changed."""
        return replace(self, noise=replace(self.noise, **switches))

    def to_dict(self) -> dict:
        """Plain-data form (for calibration records)."""
        return asdict(self)

    @property
    def fingerprint(self) -> str:
        """Short hash identifying this profile (device identity of a simulated OPU)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
