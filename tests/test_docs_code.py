"""Every ```python block in README.md and docs/*.md runs as written (found automatically, so
blocks added later are covered too).

Each block runs in a fresh interpreter, in a temporary working folder (records go there).
A block may be preceded by an HTML comment that says how it runs:

    <!-- doc-test: setup=<python code run first, e.g. to define an input> -->
    <!-- doc-test: hardware -->   needs real devices: only compiled here (syntax and names)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```", re.S | re.M)
_MARK = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->\s*$")


def doc_blocks() -> list[tuple[str, int, str, str]]:
    """(file, line, marker, code) of every python block."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = text[: m.start()].rstrip().splitlines()
            mark = _MARK.search(before[-1]) if before else None
            out.append((path.name, line, mark.group(1) if mark else "", m.group(1)))
    return out


BLOCKS = doc_blocks()


def test_blocks_are_found():
    names = {f for f, *_ in BLOCKS}
    assert "README.md" in names and len(BLOCKS) >= 4


@pytest.mark.parametrize(("name", "line", "mark", "code"), BLOCKS,
                         ids=[f"{f}:{n}" for f, n, *_ in BLOCKS])
def test_doc_block_runs(name, line, mark, code, tmp_path):
    if mark == "hardware":
        compile(code, f"{name}:{line}", "exec")
        return
    setup = mark[len("setup="):] if mark.startswith("setup=") else ""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPU_RECORD_DIR": str(tmp_path / "rec"),
           "MPLBACKEND": "Agg"}
    p = subprocess.run([sys.executable, "-c", setup + "\n" + code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{name}:{line} failed:\n{p.stderr[-3000:]}"
