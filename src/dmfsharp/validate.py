"""Named validation helpers for the parameters of the public functions (SciPy ``_iv`` style).

Each helper checks one kind of parameter and raises a :class:`ValueError` (or the
:class:`~dmfsharp.errors.FactorError` subclass for arrays) that names the parameter and
what it must satisfy. Arrays themselves are checked by :func:`dmfsharp.chain.as_float_array`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_choice",
    "check_positive_int",
    "check_int_at_least",
    "check_positive_float",
    "check_nonnegative_float",
    "check_int_pair",
    "check_weight_decay",
]


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    return isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer()


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming ``name``.

    Parameters
    ----------
    value : object
        The value to check.
    choices : sequence of str
        The allowed strings.
    name : str
        The parameter's name, for the message.

    Returns
    -------
    str
        ``value`` itself.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``choices``.

    Examples
    --------
    >>> check_choice("dense", ("auto", "dense"), "method")
    'dense'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_int_at_least(value: Any, minimum: int, name: str) -> int:
    """Return ``int(value)`` for an integer ``>= minimum`` (an integral float such as ``2.0`` too).

    Parameters
    ----------
    value : object
        The value to check (``bool`` is refused).
    minimum : int
        The smallest allowed value.
    name : str
        The parameter's name, for the message.

    Returns
    -------
    int
        ``int(value)``.

    Raises
    ------
    ValueError
        If ``value`` is not an integer ``>= minimum``.

    Examples
    --------
    >>> check_int_at_least(2.0, 2, "depth")
    2
    """
    if not _is_integral(value) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_int(value: Any, name: str) -> int:
    """Return ``int(value)`` for an integer ``>= 1``.

    Parameters
    ----------
    value : object
        The value to check (``bool`` is refused).
    name : str
        The parameter's name, for the message.

    Returns
    -------
    int
        ``int(value)``.

    Raises
    ------
    ValueError
        If ``value`` is not a positive integer.

    Examples
    --------
    >>> check_positive_int(3, "iterations")
    3
    """
    if not _is_integral(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value: Any, name: str) -> float:
    """Return ``float(value)`` for a finite real number ``> 0``.

    Parameters
    ----------
    value : object
        The value to check (``bool`` is refused).
    name : str
        The parameter's name, for the message.

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    ValueError
        If ``value`` is not a positive finite number.

    Examples
    --------
    >>> check_positive_float("0.5", "eta")
    0.5
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if isinstance(value, bool | np.bool_) or not (math.isfinite(out) and out > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return out


def check_nonnegative_float(value: Any, name: str) -> float:
    """Return ``float(value)`` for a finite real number ``>= 0``.

    Parameters
    ----------
    value : object
        The value to check (``bool`` is refused).
    name : str
        The parameter's name, for the message.

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    ValueError
        If ``value`` is not a finite number ``>= 0``.

    Examples
    --------
    >>> check_nonnegative_float(0, "radius")
    0.0
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if isinstance(value, bool | np.bool_) or not (math.isfinite(out) and out >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_int_pair(value: Any, name: str, minimum: int = 1) -> tuple[int, int]:
    """Return ``(lo, hi)`` for a pair of integers ``minimum <= lo <= hi``.

    Parameters
    ----------
    value : object
        A pair ``(lo, hi)``.
    name : str
        The parameter's name, for the message.
    minimum : int, optional
        The smallest allowed ``lo`` (default 1).

    Returns
    -------
    tuple of int
        ``(lo, hi)``.

    Raises
    ------
    ValueError
        If ``value`` is not such a pair, ``lo < minimum`` or ``lo > hi``.

    Examples
    --------
    >>> check_int_pair((5, 8), "widths")
    (5, 8)
    """
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi) of integers, got {value!r}") from None
    if not (_is_integral(lo) and _is_integral(hi)):
        raise ValueError(f"{name} must be a pair (lo, hi) of integers, got {value!r}")
    lo, hi = int(lo), int(hi)
    if lo < minimum:
        raise ValueError(f"{name} must have lo >= {minimum}, got {value!r}")
    if lo > hi:
        raise ValueError(f"{name} range ({lo}, {hi}) is empty (lo > hi)")
    return lo, hi


def check_weight_decay(value: Any) -> float:
    """``mu = float(value)`` for the ``weight_decay`` keyword: a finite real number ``>= 0``."""
    return check_nonnegative_float(value, "weight_decay")
