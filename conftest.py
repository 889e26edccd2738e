"""Repository-level collection rules: doctests that need a missing optional extra are skipped.

``--doctest-modules`` collects every module under ``src/dmfsharp``; the core needs only NumPy
and SciPy, so an example that imports an optional extra (``import torch``) or calls a function
that does is skipped, with the extra named, when that extra is not installed (issue 9, item 9).
"""

from __future__ import annotations

import importlib.util
import re

import pytest

# optional distributions -> the import names a doctest may use
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
_IMPORT = re.compile(r"^\s*(?:import\s+([\w., ]+)|from\s+(\w+))", re.M)


def _imported(source: str) -> set[str]:
    """Top-level module names a doctest imports (``import a, b.c as d`` gives a and b)."""
    names = set()
    for plain, origin in _IMPORT.findall(source):
        parts = [origin] if origin else [p.split(" as ")[0] for p in plain.split(",")]
        names |= {p.strip().split(".")[0] for p in parts if p.strip()}
    return names


def _missing(name: str) -> bool:
    return importlib.util.find_spec(name) is None


# the compiled GD kernel and tracking import numba at module level (they are imported only
# when numba is there); without the optional extra they are not collected
collect_ignore = (
    ["src/dmfsharp/dynamics/numba_kernel.py", "src/dmfsharp/dynamics/numba_tracking.py"]
    if _missing("numba")
    else []
)


def pytest_collection_modifyitems(config, items):
    """Skip each doctest whose examples import an optional extra that is not installed."""
    for item in items:
        dtest = getattr(item, "dtest", None)
        if dtest is None:
            continue
        source = "\n".join(ex.source for ex in dtest.examples)
        needed = {m for m in _imported(source) if m in EXTRAS}
        needed |= set(getattr(dtest, "globs", {}).get("__doctest_requires__", ()))
        missing = sorted(m for m in needed if _missing(m))
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"doctest needs the optional {', '.join(missing)}"))
