"""Gradient descent on deep matrix factorization: engines, the loop, escape experiments.

- :mod:`~dmfsharp.dynamics.engines`: the batched GD engines behind the
  :class:`~dmfsharp.dynamics.engines.GDEngine` protocol (NumPy, scalar, numba);
- :mod:`~dmfsharp.dynamics.loop`: :func:`gradient_descent`, returning a typed
  :class:`~dmfsharp.dynamics.loop.GDTrace`;
- :mod:`~dmfsharp.dynamics.escape`: Section 7's escape experiments and their
  classification, results in :mod:`~dmfsharp.dynamics.results`;
- :mod:`~dmfsharp.dynamics.train`: training from an initialization with the exact
  Gauss-Newton sharpness at every step, regimes in :mod:`~dmfsharp.dynamics.regimes`.
"""

from .engines import ENGINES, numba_available, resolve_engine
from .escape import escape_experiment, predicted_escape_iteration, start_direction
from .loop import STOP_REASONS, GDTrace, gradient_descent
from .results import STATUSES, EscapeResult, RunResult

__all__ = [
    # experiments
    "escape_experiment",
    "start_direction",
    "predicted_escape_iteration",
    "EscapeResult",
    "RunResult",
    "STATUSES",
    # the loop
    "gradient_descent",
    "GDTrace",
    "STOP_REASONS",
    # engines
    "ENGINES",
    "resolve_engine",
    "numba_available",
]
