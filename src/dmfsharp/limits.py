"""Size limits checked before anything large is allocated.

Every function that would allocate an array quadratic in a dimension (a dense Hessian, a
dense ``S``, a Kronecker sum, a loss grid) calls :func:`check_allocation` first, so an
oversized request is refused at once with the size in the message instead of dying with
``MemoryError`` or driving the machine into swap.

The limit is half of the machine's physical memory, or ``DMFSHARP_MAX_BYTES`` (bytes) when
that environment variable is set.
"""

from __future__ import annotations

import math
import os

from .errors import MemoryLimitError

__all__ = [
    "MAX_DEPTH",
    "MAX_DIM",
    "MAX_GRID",
    "MAX_ITERATIONS",
    "MAX_PARAMS",
    "MAX_POINTS",
    "MAX_SEEDS",
    "MAX_TASKS",
    "check_allocation",
    "format_bytes",
    "max_bytes",
]


def max_bytes() -> int:
    """Return the largest single allocation dmfsharp will attempt, in bytes.

    ``DMFSHARP_MAX_BYTES`` if set, else half the physical memory (at least 256 MiB).

    Returns
    -------
    int
        The limit in bytes.

    Raises
    ------
    MemoryLimitError
        If ``DMFSHARP_MAX_BYTES`` is set but not a positive number.
    """
    env = os.environ.get("DMFSHARP_MAX_BYTES")
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise MemoryLimitError(f"DMFSHARP_MAX_BYTES must be a number of bytes, got {env!r}") from None
        if value <= 0:
            raise MemoryLimitError(f"DMFSHARP_MAX_BYTES must be positive, got {env!r}")
        return value
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        total = 8 * 2**30
    return max(total // 2, 2**28)


def format_bytes(nbytes: float) -> str:
    """Format a byte count for a message: ``'12.8 GB'``.

    Parameters
    ----------
    nbytes : float
        A number of bytes.

    Returns
    -------
    str
        Three significant digits and a decimal unit (B, kB, ..., PB).

    Examples
    --------
    >>> format_bytes(12_800_000_000), format_bytes(512)
    ('12.8 GB', '512 B')
    """
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1000 or unit == "PB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1000
    raise AssertionError("unreachable")


def check_allocation(
    shape: tuple[int, ...], *, what: str, itemsize: int = 8, alternative: str | None = None
) -> None:
    """Raise :class:`MemoryLimitError` if an array of ``shape`` would exceed :func:`max_bytes`.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array about to be allocated (Python ints, so no overflow).
    what : str
        What the array is, for the message (``"the dense Hessian"``).
    itemsize : int, optional
        Bytes per entry (8 for float64).
    alternative : str, optional
        The matrix-free route to suggest, if there is one.

    Raises
    ------
    MemoryLimitError
        If ``prod(shape) * itemsize`` exceeds the limit.
    """
    nbytes = math.prod(int(s) for s in shape) * int(itemsize)
    limit = max_bytes()
    if nbytes > limit:
        msg = (
            f"{what} of shape {tuple(int(s) for s in shape)} would take {format_bytes(nbytes)}, "
            f"more than the limit of {format_bytes(limit)} (half the machine's memory, "
            "or DMFSHARP_MAX_BYTES)"
        )
        if alternative:
            msg += f"; use {alternative} instead"
        raise MemoryLimitError(msg)


# Documented limits on counts a small input can ask for (command-line options, sweep specs,
# factor files); each message that refuses a value states the limit.
#: Largest single layer dimension ``d_i``.
MAX_DIM = 4096
#: Largest depth ``L``.
MAX_DEPTH = 1000
#: Largest number of parameters ``N = sum_i d_i d_{i-1}``.
MAX_PARAMS = 10_000_000
#: Largest gradient-descent budget per run.
MAX_ITERATIONS = 10_000_000
#: Largest contour-map resolution per axis (the map evaluates ``grid**2`` losses).
MAX_GRID = 1001
#: Largest number of points on a minimizer path (``manifold --num``).
MAX_POINTS = 100_000
#: Largest number of seeds of a sweep, and of tasks in one sweep.
MAX_SEEDS = 1_000_000
MAX_TASKS = 100_000_000
