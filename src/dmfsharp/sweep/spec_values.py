"""Value checks shared by the escape and train spec parsers (each error names its key)."""

from __future__ import annotations

import math
from typing import Any

from .spec import SpecError

__all__ = ["listed", "unique_values", "positive_value"]


def listed(value: Any) -> list:
    """A scalar spec value as a one-element list; a list as itself."""
    return value if isinstance(value, list) else [value]


def unique_values(values: list, key: str) -> tuple:
    """``values`` as a tuple; :class:`SpecError` naming ``key`` if empty or repeated."""
    if not values:
        raise SpecError(f"[sweep] {key} must not be empty")
    if len(set(values)) != len(values):
        raise SpecError(f"[sweep] {key} has repeated values: {values[:20]}")
    return tuple(values)


def positive_value(value: float, key: str) -> float:
    """``value`` as a float; :class:`SpecError` naming ``key`` unless positive and finite."""
    if not (math.isfinite(value) and value > 0):
        raise SpecError(f"[sweep] {key} must be positive and finite, got {value!r}")
    return float(value)
