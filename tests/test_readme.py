"""Every ```python block of README.md runs as written (each is self-contained).

A block that imports an optional extra is skipped, naming it, when that extra is missing; a
block that runs an experiment of several seconds is marked slow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import has_module

README = Path(__file__).resolve().parents[1] / "README.md"
EXTRAS = (
    "torch",
    "numba",
    "matplotlib",
    "dask",
    "distributed",
    "pandas",
    "pyarrow",
    "pydantic",
    "jinja2",
    "tqdm",
)
# blocks containing one of these run experiments of several seconds
SLOW = ("escape_experiment", ".run()")


def _blocks():
    text = README.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        out.append((line, m.group(1)))
    return out


def _params():
    params = []
    for line, code in _blocks():
        marks = [pytest.mark.slow] if any(s in code for s in SLOW) else []
        params.append(pytest.param(code, id=f"README.md:{line}", marks=marks))
    return params


def test_readme_has_python_blocks():
    assert len(_blocks()) >= 3


@pytest.mark.parametrize("code", _params())
def test_readme_block_runs(code, tmp_path, monkeypatch):
    imported = set(re.findall(r"^\s*(?:import|from)\s+(\w+)", code, re.M))
    missing = sorted(m for m in imported & set(EXTRAS) if not has_module(m))
    if missing:
        pytest.skip(f"README block needs the optional {', '.join(missing)}")
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
