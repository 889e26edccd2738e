"""Observers of a GD run: what the loop records every so many iterations.

A :class:`Tracker` is called by :func:`dmfsharp.dynamics.loop.run_loop` at every multiple
of its ``every`` with the engine (all runs' factors as views) and the active runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..chain import FactorChain
from ..exact import sharpness
from .engines import GDEngine

__all__ = ["Tracker", "GaussNewtonTracker", "HessianTracker", "run_factors", "tracked_arrays"]


class Tracker(Protocol):
    """Something the loop calls every :attr:`every` iterations with the active runs."""

    every: int

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Observe iteration ``k`` of the runs flagged in ``active`` (a ``(B,)`` bool array)."""


def run_factors(engine: GDEngine, like: FactorChain, b: int) -> FactorChain:
    """Run ``b``'s current factors as a chain shaped like ``like``."""
    return like.with_factors([w[b] for w in engine.W])


@dataclass(eq=False)
class GaussNewtonTracker:
    """Exact ``lambda_max(2 K^T K)`` of every active run (Theorem 5's expression, eq. 57).

    Computed as :func:`dmfsharp.sharpness` of the current factors against their own
    product, which is the Gauss-Newton part of the Hessian at any point (Lemma 3).
    """

    every: int
    like: FactorChain
    iterations: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Record iteration ``k``'s value of every active run (NaN for the others)."""
        out = np.full(len(active), np.nan)
        for b in map(int, np.flatnonzero(active)):
            try:
                out[b] = sharpness(run_factors(engine, self.like, b))
            except ValueError:  # non-finite factors
                pass
        self.iterations.append(k)
        self.values.append(out)


@dataclass(eq=False)
class HessianTracker:
    """The full Hessian's ``lambda_max`` of every active run, warm-started Lanczos.

    :func:`dmfsharp.numerical_sharpness` on the analytic Hessian-vector product, each run
    started from its previous top eigenvector; ``options`` are passed on (``data=``,
    ``normalization=`` for a network on data).
    """

    every: int
    like: FactorChain
    target: np.ndarray
    tol: float = 1e-8
    options: dict[str, Any] = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    vectors: dict[int, Any] = field(default_factory=dict)

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Record iteration ``k``'s value of every active run (NaN for the others)."""
        from ..numeric import numerical_sharpness

        out = np.full(len(active), np.nan)
        for b in map(int, np.flatnonzero(active)):
            try:
                chain = run_factors(engine, self.like, b)
                res = numerical_sharpness(
                    chain,
                    target=self.target,
                    method="lanczos",
                    v0=self.vectors.get(b),
                    tol=self.tol,
                    **self.options,
                )
            except (ValueError, ArithmeticError):  # non-finite factors; no convergence
                continue
            out[b] = res.value
            self.vectors[b] = res.vector
        self.iterations.append(k)
        self.values.append(out)


def tracked_arrays(tracker: Any, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """A tracker's iterations ``(K,)`` and values ``(K, B)`` as arrays."""
    its = np.array(getattr(tracker, "iterations", []), dtype=int)
    vals = np.array(getattr(tracker, "values", []), dtype=np.float64).reshape(len(its), nb)
    return its, vals
