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

import numpy as np

from ..errors import FactorFileError, MemoryLimitError
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
    "npy_array",
    "objective_options",
    "sample_matrix",
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
    """Import ``module`` now or raise :class:`CLIError` naming the extra that provides it.

    Parameters
    ----------
    module : str
        The module to import (``"matplotlib"``).
    purpose : str
        What needs it, for the message.

    Raises
    ------
    CLIError
        If ``module`` cannot be imported.
    """
    try:
        importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module, module)
        raise CLIError(
            f"{purpose} needs {module}, which is not installed: pip install 'dmfsharp[{extra}]'"
        ) from None


def count(value: int | None, option: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    """Return an integer option within ``[minimum, maximum]`` (None passes through).

    Parameters
    ----------
    value : int or None
        The parsed option.
    option : str
        The option as the user typed it (``"--dims"``), for the message.
    minimum : int, optional
        The smallest allowed value.
    maximum : int, optional
        The largest allowed value (a documented limit), or None.

    Returns
    -------
    int or None
        ``value``.

    Raises
    ------
    CLIError
        If ``value`` is outside ``[minimum, maximum]``.
    """
    if value is None:
        return None
    if value < minimum:
        raise CLIError(f"{option} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise CLIError(f"{option} must be <= {maximum} (the documented limit), got {value}")
    return value


def positive_float(value: float | None, option: str) -> float | None:
    """Return a positive finite float option (None passes through).

    Parameters
    ----------
    value : float or None
        The parsed option.
    option : str
        The option as the user typed it (``"--dims"``), for the message.

    Returns
    -------
    float or None
        ``value``.

    Raises
    ------
    CLIError
        If ``value`` is not a positive finite number.
    """
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
    """Parse comma-separated positive finite numbers (None passes through).

    Parameters
    ----------
    text : str or None
        The option's text, e.g. ``"1.0,1.1"``.
    option : str
        The option as the user typed it (``"--dims"``), for the message.

    Returns
    -------
    tuple of float or None
        The numbers, in order.

    Raises
    ------
    CLIError
        If an entry is not a positive finite number, or there are none or more than 1000.
    """
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
    """Parse comma-separated layer dimensions ``d_0,...,d_L`` within the documented limits.

    Parameters
    ----------
    text : str
        The option's text, e.g. ``"20,20,10"``.
    option : str
        The option as the user typed it (``"--dims"``), for the message.
    min_len : int, optional
        The fewest entries (3: depth ``L >= 2``).

    Returns
    -------
    tuple of int
        ``(d_0, ..., d_L)``.

    Raises
    ------
    CLIError
        If an entry is not an integer in ``[1, MAX_DIM]``, or the depth or ``N`` exceeds its limit.
    """
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
    """Refuse a GD budget whose per-iteration traces would not fit in memory.

    Parameters
    ----------
    iterations : int
        GD steps per run.
    runs : int
        Number of runs.
    option : str
        The option as the user typed it (``"--dims"``), for the message.

    Raises
    ------
    CLIError
        If the traces of ``runs`` runs of ``iterations`` steps exceed the memory limit.
    """
    try:
        check_allocation((iterations + 1, 8 * max(runs, 1)), what=f"{option}: the GD traces")
    except MemoryLimitError as exc:
        raise CLIError(str(exc)) from None


def input_file(path: str, option: str) -> Path:
    """Return ``path`` if it is an existing regular file (not a folder, FIFO or device).

    Parameters
    ----------
    path : str
        The file given on the command line.
    option : str
        The option as the user typed it (``"--dims"``), for the message.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    CLIError
        If ``path`` is missing, unreadable or not a regular file.
    """
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
    """Return the GD engine ``name`` selects, or raise :class:`CLIError` if it cannot run here.

    Parameters
    ----------
    name : str
        ``"auto"``, ``"numpy"`` or ``"numba"``.
    option : str
        The option as the user typed it (``"--dims"``), for the message.

    Returns
    -------
    str
        The engine name.

    Raises
    ------
    CLIError
        If the engine cannot run here (its extra, numba, is not installed).
    ValueError
        If ``name`` is not a known engine (the parser's choices normally prevent it).
    """
    from ..dynamics import resolve_engine

    try:
        return resolve_engine(name)
    except ImportError as exc:
        raise CLIError(f"{option} {name}: {exc}") from None


def npy_array(path: str, option: str) -> np.ndarray:
    """The array in the ``.npy`` file ``path`` given to ``option`` (read safely, header first)."""
    from ..io import read_npy

    input_file(path, option)
    try:
        return read_npy(path, what=f"{option} {path}")
    except (FactorFileError, MemoryLimitError) as exc:
        raise CLIError(str(exc)) from None


def objective_options(
    *,
    target: str | None,
    data: str | None,
    targets: str | None,
    covariance: str | None,
    samples_as_rows: bool,
    normalization: str | None,
) -> None:
    """Refuse option combinations that do not define one loss, naming the option.

    The options are ``--target``, ``--data``, ``--targets``, ``--covariance``,
    ``--samples-as-rows`` and ``--normalization`` (their values as typed, or None).
    """
    if data is not None and covariance is not None:
        raise CLIError("--data and --covariance are two descriptions of the inputs: pass one")
    if targets is not None and data is None:
        raise CLIError("--targets (the outputs Y of the samples) needs --data (the samples X)")
    if target is not None and data is not None:
        raise CLIError(
            "--target is the matrix M of the loss without data; with --data pass the outputs as --targets"
        )
    if samples_as_rows and data is None:
        raise CLIError("--samples-as-rows says how --data and --targets are laid out; it needs --data")
    if normalization not in (None, "sum") and data is None and covariance is None:
        raise CLIError(
            f"--normalization {normalization} needs --data (with --targets) or --covariance; "
            "without data the loss is the sum ||M - P||_F^2 of eq. 15"
        )
    if normalization == "sum" and covariance is not None:
        raise CLIError(
            "--normalization sum needs a sample count; with --covariance use mean, half_mean or "
            "torch-mean, or pass the samples with --data"
        )


def sample_matrix(
    a: np.ndarray, option: str, *, dim: int, dim_name: str, rows: bool, n: int | None = None
) -> np.ndarray:
    """Samples as columns, ``(dim, n)``, from ``a`` as given (``(n, dim)`` when ``rows``).

    Messages name ``option`` and quote the shape as the user gave it.
    """
    given = tuple(a.shape)
    if a.ndim == 1 and dim == 1:
        a = a.reshape(-1, 1) if rows else a.reshape(1, -1)
    want = f"(n, {dim})" if rows else f"({dim}, n)"
    if n is not None:
        want = f"({n}, {dim})" if rows else f"({dim}, {n})"
    if a.ndim != 2:
        raise CLIError(f"{option} has shape {given}, expected a 2-D array {want} ({dim_name} = {dim})")
    m = a.T if rows else a
    if m.shape[0] != dim:
        hint = ""
        if not rows and a.shape[1] == dim:
            hint = "; samples in rows? add --samples-as-rows"
        elif rows and a.shape[0] == dim:
            hint = "; samples in columns? drop --samples-as-rows"
        raise CLIError(f"{option} has shape {given}, expected {want} ({dim_name} = {dim}){hint}")
    if n is not None and m.shape[1] != n:
        raise CLIError(f"{option} has shape {given}, expected {want}: --data has {n} samples")
    if m.shape[1] == 0:
        raise CLIError(f"{option} has shape {given}: no samples")
    return m
