"""Value checks shared by the escape and train spec parsers (each error names its key)."""

from __future__ import annotations

import math
from typing import Any

from .spec import SpecError

__all__ = ["listed", "unique_values", "positive_value", "weight_decay_values"]


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


def weight_decay_values(value: Any, minimizers: tuple = ()) -> tuple[float, ...]:
    """The ``weight_decay`` key (a number or a list) as distinct floats ``>= 0``; :class:`SpecError` else.

    ``mu > 0`` with the ``"flattest"`` minimizer kind is refused: ``L_mu`` has no family of
    global minimizers of different sharpness to pick the flattest from (they are all the
    balanced one up to orthogonal changes of basis, with one Hessian spectrum).
    """
    values = [float(v) for v in listed(value)]
    for v in values:
        if not (math.isfinite(v) and v >= 0):
            raise SpecError(f"[sweep] weight_decay must be finite and >= 0, got {v!r}")
    if "flattest" in minimizers and any(values):
        raise SpecError(
            "[sweep] weight_decay > 0 with minimizers 'flattest': the global minimizers of L_mu all share "
            "one Hessian spectrum, so there is no flattest one to pick; use minimizers = 'random'"
        )
    return unique_values(values, "weight_decay")
