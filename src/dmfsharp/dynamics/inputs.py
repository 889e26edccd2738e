"""Named validation helpers of the dynamics package (each names the offending parameter)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["positive_float", "nonnegative_float", "positive_array", "flat_vector", "positive_int"]


def positive_float(value: Any, name: str) -> float:
    """``value`` as a finite positive float, or :class:`ValueError` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return v


def nonnegative_float(value: Any, name: str) -> float:
    """``value`` as a finite float ``>= 0``, or :class:`ValueError` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def positive_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a non-empty 1-D float64 array of finite positive numbers."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"{name} must be positive and finite, got {arr[bad][0]!r}")
    return arr


def flat_vector(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate arrays shaped like the factors into one flat float64 vector."""
    return np.concatenate([np.asarray(b, dtype=np.float64).ravel() for b in blocks])


def positive_int(value: Any, name: str, *, optional: bool = False, minimum: int = 1) -> int | None:
    """``value`` as an integer ``>= minimum`` (None passes when ``optional``); no truncation."""
    if value is None and optional:
        return None
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and int(value) >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
