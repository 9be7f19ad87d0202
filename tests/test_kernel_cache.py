"""firmware_iface.kernel_cache: a cached Numba kernel whose imported constant changes is
recompiled, not served stale from Numba's disk cache (which keys on the kernel's own file)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from firmware_iface import kernel_cache

KERNEL = textwrap.dedent(
    """
    import numba as nb
    from .consts import STEP

    @nb.njit(cache=True)
    def scaled(x):
        return x * STEP
    """
)
RUN = (
    "import sys; sys.path.insert(0, {root!r}); from firmware_iface import kernel_cache; "
    "kernel_cache.refresh({pkg!r}); from demo_pkg.kern import scaled; print(scaled(1.0))"
)


def _make_package(root: Path, step: float) -> Path:
    pkg = root / "demo_pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "kern.py").write_text(KERNEL)
    (pkg / "consts.py").write_text(f"STEP = {step!r}\n")
    return pkg


def _run(root: Path, pkg: Path) -> str:
    code = RUN.format(root=str(root), pkg=str(pkg))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    return out.stdout.strip()


def test_changed_import_recompiles_the_dependent_kernel(tmp_path):
    pkg = _make_package(tmp_path, 0.5)
    assert _run(tmp_path, pkg) == "0.5"
    assert list((pkg / "__pycache__").glob("kern.*.nbi")), "the kernel was cached"
    # Numba alone would now serve 0.5 from its cache: kern.py did not change, consts.py did
    (pkg / "consts.py").write_text("STEP = 0.25\n")
    assert _run(tmp_path, pkg) == "0.25"


def test_unchanged_sources_keep_the_cache(tmp_path):
    pkg = _make_package(tmp_path, 0.5)
    _run(tmp_path, pkg)
    assert kernel_cache.refresh(pkg) == 0
    assert list((pkg / "__pycache__").glob("kern.*.nbc"))


def test_project_packages_are_stamped():
    """Importing the simulator records the sources its cached kernels were built from."""
    import opu_sim

    stamp = Path(opu_sim.__file__).parent / "__pycache__" / "numba-sources.json"
    assert stamp.is_file() and "gaussian_tiles.py" in stamp.read_text()
