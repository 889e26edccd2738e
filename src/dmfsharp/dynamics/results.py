"""Result types of the escape experiments (Section 7): one run, and all runs of a call.

:class:`RunResult` holds one step size's scalars (status, stop reason, escape iteration
and its linear prediction, peak and final loss, the landing minimum's exact sharpness)
and traces; :class:`EscapeResult` the shared setup and the runs. The classification
rules are in :mod:`dmfsharp.dynamics.escape`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..chain import FactorChain

__all__ = ["RunResult", "EscapeResult", "STATUSES"]

#: Possible values of :attr:`RunResult.status`.
STATUSES = ("escaped", "returned", "diverged", "undecided")


@dataclass(frozen=True, eq=False)
class RunResult:
    """One gradient-descent run of :func:`escape_experiment`.

    Holds the run's scalars and its per-iteration traces (arrays over the iterations
    ``k = 0 .. iterations``, float64 unless stated).

    Attributes
    ----------
    eta : float
        The step size.
    step_multiplier : float
        ``eta lambda_max / 2``: 1 is the stability threshold ``eta = 2 / lambda_max``.
    status : str
        ``"escaped"``, ``"returned"``, ``"diverged"`` or ``"undecided"`` (:data:`STATUSES`;
        the rules are in :mod:`dmfsharp.dynamics.escape`).
    stop_reason : str
        ``"max_iterations"``, ``"converged"`` (escaped and settled) or ``"diverged"``.
    iterations : int
        GD steps taken; the traces have ``iterations + 1`` entries (``w_0 ... w_T``).
    escape_iteration : int or None
        First ``k`` with ``||w_k - w*|| > escape_threshold ||w*||``; None if never.
    predicted_escape_iteration : float or None
        ``log(escape_threshold ||w*|| / r_1) / log|1 - eta lambda_max|`` (linear theory);
        None when ``|1 - eta lambda_max| <= 1`` (no growth predicted).
    peak_loss, final_loss : float
        The largest loss along the run (the catapult) and the loss at the end, both of
        eq. 15 (unnormalized; divide by ``||M||_F^2`` for the plotted quantity).
    final_lambda_max : float or None
        Exact ``lambda_max`` at the final point when it is a global minimum (its loss is
        below ``minimum_tol ||M||_F^2``), else None.
    final_is_stable : bool or None
        ``final_lambda_max <= 2 / eta``; None when ``final_lambda_max`` is.
    final_factors : FactorChain or None
        The final point; None if the run diverged.
    normalized_loss : ndarray, shape (iterations + 1,)
        ``L(w_k) / ||M||_F^2``.
    distance_sq : ndarray, shape (iterations + 1,)
        ``||w_k - w*||^2 / ||w*||^2``.
    coords : ndarray, shape (iterations + 1, 2)
        Coordinates of ``w_k - w*`` on the two plane directions of the experiment.
    track_iterations, gn_lambda_max : ndarray, shape (t,)
        Iterations (int) and the exact ``lambda_max(2 K^T K)`` there (the Gauss-Newton
        part of the Hessian, Lemma 3) when sharpness tracking is on; empty otherwise.
    hessian_track_iterations, hessian_lambda_max : ndarray, shape (h,)
        Iterations (int) and the full Hessian's largest eigenvalue there (warm-started
        Lanczos) when Hessian tracking is on; empty otherwise.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Section 7 and Appendix D (the escape
    experiments), Theorem 5 (``lambda_max`` at the minima), Lemma 3 (eqs. 56-58).

    L. Wu, C. Ma and W. E, How SGD Selects the Global Minima in Over-parameterized
    Learning: A Dynamical Stability Perspective, NeurIPS 2018 (linear stability: a
    minimum is stable for GD iff ``lambda_max <= 2 / eta``).

    Examples
    --------
    A scalar factorization ``m = w_2 w_1`` at ``(1, 2)`` has ``lambda_max = 10``; with
    ``eta = 1.2 * 2 / 10`` GD escapes when the linear theory says it does:

    >>> import numpy as np
    >>> from dmfsharp import escape_experiment
    >>> res = escape_experiment([np.array([[1.0]]), np.array([[2.0]])], step_multipliers=[1.2],
    ...                         radius=1e-8, iterations=400, engine="numpy")
    >>> run = res.runs[0]
    >>> run.status, run.eta, run.escape_iteration, round(run.predicted_escape_iteration, 2)
    ('escaped', 0.24, 30, 29.76)
    >>> run.normalized_loss.shape, run.coords.shape
    ((401,), (401, 2))
    >>> bool(run.final_lambda_max <= 2 / run.eta)
    True
    """

    eta: float
    step_multiplier: float
    status: str
    stop_reason: str
    iterations: int
    escape_iteration: int | None
    predicted_escape_iteration: float | None
    peak_loss: float
    final_loss: float
    final_lambda_max: float | None
    final_is_stable: bool | None
    final_factors: FactorChain | None = field(repr=False)
    normalized_loss: np.ndarray = field(repr=False)
    distance_sq: np.ndarray = field(repr=False)
    coords: np.ndarray = field(repr=False)
    track_iterations: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))
    gn_lambda_max: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    hessian_track_iterations: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))
    hessian_lambda_max: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def distance(self) -> np.ndarray:
        """``||w_k - w*|| / ||w*||`` (the square root of :attr:`distance_sq`)."""
        return np.sqrt(self.distance_sq)

    def summary(self) -> dict[str, Any]:
        """The scalars as a JSON-ready dict (no traces, no factors).

        Returns
        -------
        dict of str to object
            The scalar attributes (float, int, str, bool or None), plus
            ``peak_normalized_loss``, ``final_normalized_loss`` and ``final_distance_sq``.
        """
        return {
            "eta": self.eta,
            "step_multiplier": self.step_multiplier,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "escape_iteration": self.escape_iteration,
            "predicted_escape_iteration": self.predicted_escape_iteration,
            "peak_loss": self.peak_loss,
            "final_loss": self.final_loss,
            "peak_normalized_loss": float(np.max(self.normalized_loss)),
            "final_normalized_loss": float(self.normalized_loss[-1]),
            "final_distance_sq": float(self.distance_sq[-1]),
            "final_lambda_max": self.final_lambda_max,
            "final_is_stable": self.final_is_stable,
        }

    def trace_columns(self) -> dict[str, np.ndarray]:
        """Per-iteration columns for a CSV: iteration, traces, tracked sharpness (NaN gaps).

        Returns
        -------
        dict of str to ndarray
            Each of shape ``(iterations + 1,)``: ``iteration`` (int), ``normalized_loss``,
            ``distance_sq``, ``x``, ``y`` and, when tracked, ``gn_lambda_max`` and
            ``hessian_lambda_max`` (NaN at the untracked iterations).
        """
        n = self.iterations + 1
        cols = {
            "iteration": np.arange(n),
            "normalized_loss": self.normalized_loss,
            "distance_sq": self.distance_sq,
            "x": self.coords[:, 0],
            "y": self.coords[:, 1],
        }
        if len(self.track_iterations):
            gn = np.full(n, np.nan)
            gn[self.track_iterations] = self.gn_lambda_max
            cols["gn_lambda_max"] = gn
        if len(self.hessian_track_iterations):
            h = np.full(n, np.nan)
            h[self.hessian_track_iterations] = self.hessian_lambda_max
            cols["hessian_lambda_max"] = h
        return cols


@dataclass(frozen=True, eq=False)
class EscapeResult:
    """All runs of one :func:`escape_experiment` call, with the shared setup.

    Attributes
    ----------
    minimum : FactorChain
        ``w*``.
    target : ndarray
        ``M``.
    lambda_max : float
        Exact ``lambda_max`` of the Hessian at ``w*`` (Theorem 5).
    radius : float
        ``r = ||w_0 - w*||`` (before rounding ``w_0`` to float64).
    direction : str
        ``"top"``, ``"random"`` or ``"user"``.
    seed : int or None
        The seed of the random start direction.
    start : FactorChain
        ``w_0``.
    plane : ndarray
        ``(2, N)`` orthonormal directions the ``coords`` traces are taken on.
    escape_threshold : float
        ``tau`` (relative to ``||w*||``).
    start_overlap : float
        ``|<u, v_1>|`` of the unit start direction ``u`` with ``v_1``.
    runs : list of RunResult
        One per step size, in the given order.
    engine : str
        The GD engine that ran, ``"numpy"`` or ``"numba"`` (numbers after an escape
        are reproducible per engine; see :func:`gradient_descent`).
    weight_decay : float
        ``mu`` of ``L_mu`` (0: eq. 15); ``lambda_max`` is then that of ``L_mu``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Section 7 and Appendix D (the escape
    experiments, the start ``w* + r v_1``), Theorem 5 (``lambda_max``).

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import escape_experiment
    >>> res = escape_experiment([np.array([[1.0]]), np.array([[2.0]])],
    ...                         step_multipliers=[0.5, 1.2], radius=1e-8, iterations=400,
    ...                         engine="numpy")
    >>> res.lambda_max, res.target_norm_sq, res.direction, res.engine
    (10.0, 4.0, 'top', 'numpy')
    >>> res.etas.tolist(), [r.status for r in res.runs]
    ([0.1, 0.24], ['returned', 'escaped'])
    """

    minimum: FactorChain = field(repr=False)
    target: np.ndarray = field(repr=False)
    lambda_max: float
    radius: float
    direction: str
    seed: Any
    start: FactorChain = field(repr=False)
    plane: np.ndarray = field(repr=False)
    escape_threshold: float
    start_overlap: float
    runs: list = field(repr=False)
    engine: str = "numpy"
    weight_decay: float = 0.0

    @property
    def etas(self) -> np.ndarray:
        """The step sizes of the runs."""
        return np.array([r.eta for r in self.runs])

    @property
    def step_multipliers(self) -> np.ndarray:
        """``eta lambda_max / 2`` of each run."""
        return np.array([r.step_multiplier for r in self.runs])

    @property
    def target_norm_sq(self) -> float:
        """``||M||_F^2``, the loss normalization."""
        return float(np.vdot(self.target, self.target))
