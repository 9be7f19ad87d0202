"""The import rules of the design map: firmware_iface never imports opu_sim; opu_sim imports
firmware_iface's codecs and shared definitions but no driver; neither imports torch."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import firmware_iface
import opu_sim

DRIVERS = (
    "firmware_iface.hardware",
    "firmware_iface.dlpc900.driver",
    "firmware_iface.dlpc900.transport",
    "firmware_iface.fpga.driver",
    "firmware_iface.camera.driver",
    "firmware_iface.camera.transport",
    "firmware_iface.camera.channel",
    "firmware_iface.camera.readout",
    "firmware_iface.camera.features",
    "firmware_iface.camera.common",
    "firmware_iface.camera.gentl",
    "firmware_iface.camera.select",
)


def _all_modules(pkg) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]


def _loaded_after_import(modules: list[str]) -> list[str]:
    code = (
        "import sys, json\n"
        f"for m in {modules!r}: __import__(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("pkg", [opu_sim, firmware_iface], ids=lambda p: p.__name__)
def test_import_rules(pkg):
    mods = [m for m in _all_modules(pkg) if not m.endswith("protocol_fpgaemu")]
    loaded = _loaded_after_import(mods if pkg is opu_sim else
                                  [m for m in mods if not m.startswith(DRIVERS)])
    assert not any(m == "torch" or m.startswith("torch.") for m in loaded)
    assert not any(m.startswith("opu.") or m == "opu" for m in loaded)
    if pkg is opu_sim:
        assert not [m for m in loaded if m.startswith(DRIVERS)]
    else:
        assert not [m for m in loaded if m.startswith("opu_sim")]


def test_drivers_do_not_import_the_simulator():
    loaded = _loaded_after_import(list(DRIVERS))
    assert not [m for m in loaded if m.startswith("opu_sim")]
