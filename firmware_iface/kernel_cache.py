"""Keep Numba's on-disk kernel cache true to the sources it was compiled from.

Numba (`@njit(cache=True)`) keys a cached kernel by the modification time of the file that
defines it, not of the modules it calls into: a kernel that inlines a helper or freezes a
constant from another module (opu_sim's generators and `coefficient_grid.STEP`, the video
emulator and `dlpc900.video.BIT_PLANE_CHANNEL`) keeps running the old code from the cache after
that other module changes, silently. `refresh(package_dir)` closes the gap: for every source
file of the package that defines cached kernels it hashes the file and every project module it
imports (transitively), and deletes that file's cache entries when the hash differs from the
one recorded at the last refresh. Called once by each package's `__init__`; a few milliseconds
when nothing changed (file sizes and times are compared first).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from pathlib import Path

_STAMP = "numba-sources.json"  # in the package's __pycache__
_MARK = "cache=True"
# the stack's packages: only their sources are hashed (installed next to other packages in a
# site-packages folder, the siblings are not the project's)
PROJECT_PACKAGES = ("firmware_iface", "opu_sim", "calibration", "opu")
_signatures: dict[tuple, str] = {}  # (root, packages) -> quick signature, once per process


def _module_file(root: Path, module: str, packages: tuple[str, ...]) -> Path | None:
    """The project source file of a dotted module name (None: not a project module)."""
    if module.split(".")[0] not in packages:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(root: Path, path: Path, packages: tuple[str, ...]) -> list[Path]:
    """Project modules a source file imports (absolute and relative imports)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    package = path.parent.relative_to(root).parts
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[: len(package) - node.level + 1]) if node.level else []
            mod = ".".join([*parts, *([node.module] if node.module else [])])
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            f = _module_file(root, name, packages) if name else None
            if f is not None:
                found.append(f)
    return found


def _closure_hash(root: Path, path: Path, packages: tuple[str, ...]) -> str:
    """SHA-1 over the file and every project module it reaches through imports."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(_imports(root, p, packages))
    h = hashlib.sha1()
    for p in sorted(seen):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _quick_signature(root: Path, packages: tuple[str, ...]) -> str:
    """SHA-1 over the paths, sizes and modification times of the project's sources (computed
    once per process: every package's refresh shares it)."""
    sig = _signatures.get((root, packages))
    if sig is None:
        h = hashlib.sha1()
        for p in sorted(p for name in packages for p in (root / name).rglob("*.py")):
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns};".encode())
        sig = _signatures[(root, packages)] = h.hexdigest()
    return sig


def _drop_entries(path: Path) -> int:
    """Delete the cached kernels of one source file; returns how many files went."""
    cache = path.parent / "__pycache__"
    n = 0
    for pattern in (f"{path.stem}.*.nbi", f"{path.stem}.*.nbc"):
        for f in cache.glob(pattern):
            try:
                f.unlink()
                n += 1
            except OSError:
                pass
    return n


def refresh(package_dir: str | os.PathLike) -> int:
    """Drop stale cached kernels of one package (see module docstring); returns the number of
    cache files deleted. Never raises: a read-only install keeps its cache as it is."""
    pkg = Path(package_dir).resolve()
    root = pkg.parent
    stamp_path = pkg / "__pycache__" / _STAMP
    try:
        packages = tuple(dict.fromkeys((*PROJECT_PACKAGES, pkg.name)))
        quick = _quick_signature(root, packages)
        try:
            stamp = json.loads(stamp_path.read_text())
        except (OSError, ValueError):
            stamp = {}
        if stamp.get("quick") == quick:
            return 0
        kernels = {}
        dropped = 0
        for p in sorted(pkg.rglob("*.py")):
            if _MARK not in p.read_text(encoding="utf-8", errors="replace"):
                continue
            key = str(p.relative_to(pkg))
            kernels[key] = _closure_hash(root, p, packages)
            if stamp.get("kernels", {}).get(key) != kernels[key]:
                dropped += _drop_entries(p)
        stamp_path.parent.mkdir(exist_ok=True)
        tmp = stamp_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"quick": quick, "kernels": kernels}))
        os.replace(tmp, stamp_path)
        return dropped
    except OSError:
        return 0
