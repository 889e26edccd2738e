"""Validation of command-line values: the one place every option is checked.

Each helper takes the raw value and the option's name as the user typed it (``--dims``)
and either returns the parsed value or raises :class:`CLIError` naming the option, what
it must satisfy and, for counts, the documented limit. Commands call these helpers and
never repeat a check of their own (SciPy keeps its input checks in one ``_iv`` the same
way).

Documented limits (they bound what a small command line can make dmfsharp allocate or
loop over, defined in :mod:`dmfsharp.limits`; its memory limit applies on top):

============================  ===============
``--dims`` entries            ``MAX_DIM``
depth ``L``                   ``MAX_DEPTH``
parameters ``N``              ``MAX_PARAMS``
``--iterations``              ``MAX_ITERATIONS``
``--grid``                    ``MAX_GRID``
``manifold --num``            ``MAX_POINTS``
============================  ===============
"""

from __future__ import annotations

import importlib
import math
import os
import stat
from pathlib import Path

from ..errors import MemoryLimitError
from ..limits import (
    MAX_DEPTH,
    MAX_DIM,
    MAX_GRID,
    MAX_ITERATIONS,
    MAX_PARAMS,
    MAX_POINTS,
    check_allocation,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_DIM",
    "MAX_GRID",
    "MAX_ITERATIONS",
    "MAX_PARAMS",
    "MAX_POINTS",
    "EXTRAS",
    "CLIError",
    "check_dims",
    "engine",
    "count",
    "input_file",
    "positive_float",
    "positive_floats",
    "require",
    "trace_budget",
]

#: The optional extra that provides each importable module.
EXTRAS = {
    "matplotlib": "plot",
    "torch": "torch",
    "numba": "fast",
    "distributed": "sweep",
    "dask": "sweep",
    "pandas": "sweep",
    "pyarrow": "sweep",
    "pydantic": "sweep",
    "jinja2": "plot",
    "tqdm": "sweep",
}


class CLIError(Exception):
    """An error to report as one line, without a traceback."""


def require(module: str, purpose: str) -> None:
    """Import ``module`` now or raise :class:`CLIError` naming the extra that provides it."""
    try:
        importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module, module)
        raise CLIError(
            f"{purpose} needs {module}, which is not installed: pip install 'dmfsharp[{extra}]'"
        ) from None


def count(value: int | None, option: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    """An integer option within ``[minimum, maximum]`` (None passes through)."""
    if value is None:
        return None
    if value < minimum:
        raise CLIError(f"{option} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise CLIError(f"{option} must be <= {maximum} (the documented limit), got {value}")
    return value


def positive_float(value: float | None, option: str) -> float | None:
    """A positive finite float option (None passes through)."""
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise CLIError(f"{option} must be positive and finite, got {value}")
    return float(value)


def nonnegative_float(value: float | None, option: str) -> float | None:
    """A finite float option ``>= 0`` (None passes through)."""
    if value is None:
        return None
    if not (math.isfinite(value) and value >= 0):
        raise CLIError(f"{option} must be finite and >= 0, got {value}")
    return float(value)


def positive_floats(text: str | None, option: str) -> tuple[float, ...] | None:
    """Comma-separated positive finite numbers (None passes through)."""
    if text is None:
        return None
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise CLIError(f"{option} must be comma-separated numbers, got {text!r}") from None
    if not vals:
        raise CLIError(f"{option} is empty")
    if len(vals) > 1000:
        raise CLIError(f"{option} takes at most 1000 values, got {len(vals)}")
    for v in vals:
        positive_float(v, option)
    return vals


def check_dims(text: str, option: str = "--dims", *, min_len: int = 3) -> tuple[int, ...]:
    """Comma-separated layer dimensions ``d_0,...,d_L`` within the documented limits."""
    parts = text.split(",")
    if len(parts) > MAX_DEPTH + 1:
        raise CLIError(f"{option}: depth must be <= {MAX_DEPTH}, got {len(parts) - 1}")
    try:
        dims = tuple(int(x) for x in parts)
    except ValueError:
        raise CLIError(f"{option} must be comma-separated integers, got {text[:80]!r}") from None
    if len(dims) < min_len:
        raise CLIError(f"{option} needs depth L >= 2 (at least 3 numbers d_0,d_1,d_2), got {text!r}")
    for d in dims:
        if not 1 <= d <= MAX_DIM:
            raise CLIError(f"{option}: every dimension must be in 1..{MAX_DIM}, got {d}")
    n = sum(a * b for a, b in zip(dims, dims[1:]))
    if n > MAX_PARAMS:
        raise CLIError(f"{option}: N = {n} parameters is more than the limit of {MAX_PARAMS}")
    try:
        check_allocation((dims[0] * dims[-1], dims[0] * dims[-1]), what=f"{option}: the matrix S")
    except MemoryLimitError as exc:
        raise CLIError(str(exc)) from None
    return dims


def trace_budget(iterations: int, runs: int, option: str = "--iterations") -> None:
    """Refuse a GD budget whose per-iteration traces would not fit in memory."""
    try:
        check_allocation((iterations + 1, 8 * max(runs, 1)), what=f"{option}: the GD traces")
    except MemoryLimitError as exc:
        raise CLIError(str(exc)) from None


def input_file(path: str, option: str) -> Path:
    """An existing regular file (not a folder, FIFO or device), named by ``option``."""
    p = Path(path)
    option = f"{option} " if option else ""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CLIError(f"{option}{path}: no such file") from None
    except OSError as exc:
        raise CLIError(f"{option}{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise CLIError(f"{option}{path}: is a folder, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise CLIError(f"{option}{path}: not a regular file")
    if not os.access(p, os.R_OK):
        raise CLIError(f"{option}{path}: permission denied")
    return p


def engine(name: str, option: str = "--engine") -> str:
    """The GD engine ``name`` selects, or :class:`CLIError` if it cannot run here."""
    from ..dynamics import resolve_engine

    try:
        return resolve_engine(name)
    except ImportError as exc:
        raise CLIError(f"{option} {name}: {exc}") from None
