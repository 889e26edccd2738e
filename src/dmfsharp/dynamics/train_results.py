"""Result types of :func:`dmfsharp.dynamics.train.train`: one run, and all runs of a call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..chain import FactorChain

__all__ = ["TrainRun", "TrainResult", "TRAIN_STATUSES"]

#: Possible values of :attr:`TrainRun.status`.
TRAIN_STATUSES = ("converged", "diverged", "budget")


@dataclass(frozen=True, eq=False)
class TrainRun:
    """One step size of a training call.

    Attributes
    ----------
    eta : float
        The step size.
    eta_ratio : float or None
        ``eta / eta_crit`` (None where ``eta_crit`` is undefined).
    status : str
        ``"converged"``, ``"diverged"`` or ``"budget"``.
    iterations : int
        Steps taken; traces have ``iterations + 1`` rows.
    final_loss : float
        The loss at the last iteration.
    final_lambda_max : float or None
        Converged runs: exact ``lambda_max`` of the landing minimum (Theorem 5).
    flat_lambda_max : float or None
        ``lambda_flat`` of the target (shared by all runs).
    final_factors : FactorChain or None
        The final point (None if diverged).
    regimes : dict
        ``progressive_sharpening``, ``edge_of_stability``, ``catapult``,
        ``periodic_orbit``: a dict of details or None each
        (:mod:`dmfsharp.dynamics.regimes`).
    loss, gn_lambda_max, hessian_lambda_max : ndarray, shape (iterations + 1,)
        Loss, exact Gauss-Newton ``lambda_max`` (of ``L_mu``, ``2 mu`` more, with weight
        decay) and the full Hessian's (NaN where not tracked).
    singular_values : ndarray, shape (iterations + 1, k)
        Top singular values of ``P``.
    balancedness : ndarray, shape (iterations + 1, L - 1)
        ``||W_{i+1}^T W_{i+1} - W_i W_i^T||_F``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5 (``lambda_max`` of the landing
    minimum), Lemma 3 (eqs. 56-58, the Gauss-Newton part tracked), eq. 35 (``lambda_flat``).

    J. Cohen, S. Kaur, Y. Li, J. Z. Kolter and A. Talwalkar, Gradient Descent on Neural
    Networks Typically Occurs at the Edge of Stability, ICLR 2021 (progressive sharpening,
    edge of stability).

    A. Ghosh, S. M. Kwon, R. Wang, S. Ravishankar and Q. Qu, Learning Dynamics of Deep
    Matrix Factorization Beyond the Edge of Stability, ICLR 2025 (the regimes in DMF).

    Examples
    --------
    ``m = w_2 w_1`` towards ``m = 1`` from ``w_1 = w_2 = 0.5``: GD with ``eta = 0.25``
    (half of ``eta_crit = 2 / lambda_flat = 0.5``) lands on the flat minimum, where
    ``lambda_max = lambda_flat = 4``.

    >>> from dmfsharp import train
    >>> res = train((1, 1, 1), init="identity", init_scale=0.5, target=[[1.0]],
    ...             eta_ratios=[0.5], iterations=200, engine="numpy")
    >>> run = res.runs[0]
    >>> run.status, run.iterations, run.final_lambda_max, run.flatness_ratio, run.lambda_eta_half
    ('converged', 8, 4.0, 1.0, 0.5)
    >>> run.loss.shape, run.singular_values.shape, run.balancedness.shape
    ((9,), (9, 1), (9, 1))
    """

    eta: float
    eta_ratio: float | None
    status: str
    iterations: int
    final_loss: float
    final_lambda_max: float | None
    flat_lambda_max: float | None
    final_factors: FactorChain | None = field(repr=False)
    regimes: dict[str, Any] = field(repr=False)
    loss: np.ndarray = field(repr=False)
    gn_lambda_max: np.ndarray = field(repr=False)
    hessian_lambda_max: np.ndarray = field(repr=False)
    singular_values: np.ndarray = field(repr=False)
    balancedness: np.ndarray = field(repr=False)

    @property
    def lambda_eta_half(self) -> float | None:
        """``final_lambda_max * eta / 2`` (at most 1 for a linearly stable landing)."""
        return None if self.final_lambda_max is None else self.final_lambda_max * self.eta / 2.0

    @property
    def flatness_ratio(self) -> float | None:
        """``final_lambda_max / lambda_flat`` (1 at a flat minimum)."""
        if self.final_lambda_max is None or not self.flat_lambda_max:
            return None
        return self.final_lambda_max / self.flat_lambda_max

    def _last(self, values: np.ndarray) -> float | None:
        ok = np.flatnonzero(np.isfinite(values))
        return float(values[ok[-1]]) if ok.size else None

    def summary(self) -> dict[str, Any]:
        """The scalars and regimes as a JSON-ready dict.

        Returns
        -------
        dict of str to object
            The scalar attributes, ``lambda_eta_half``, ``flatness_ratio``, the last
            tracked ``final_gn_lambda_max`` / ``final_hessian_lambda_max`` (None if never
            tracked), ``peak_loss``, ``regimes`` and the list ``regimes_detected``.
        """
        return {
            "eta": self.eta,
            "eta_ratio": self.eta_ratio,
            "status": self.status,
            "iterations": self.iterations,
            "final_loss": self.final_loss,
            "final_lambda_max": self.final_lambda_max,
            "lambda_eta_half": self.lambda_eta_half,
            "flatness_ratio": self.flatness_ratio,
            "final_gn_lambda_max": self._last(self.gn_lambda_max),
            "final_hessian_lambda_max": self._last(self.hessian_lambda_max),
            "peak_loss": float(np.nanmax(self.loss)) if np.isfinite(self.loss).any() else None,
            "regimes": self.regimes,
            "regimes_detected": [k for k, v in self.regimes.items() if v]
            + (["divergence"] if self.status == "diverged" else []),
        }

    def trace_columns(self) -> dict[str, np.ndarray]:
        """Per-iteration CSV columns: ``iteration, loss, gn_lambda_max, ...``.

        Returns
        -------
        dict of str to ndarray
            Each of shape ``(iterations + 1,)``: ``iteration`` (int), ``loss``,
            ``gn_lambda_max``, ``hessian_lambda_max`` (when tracked), ``sigma_1 ...
            sigma_k`` and ``balance_1 ... balance_{L-1}``.
        """
        cols: dict[str, np.ndarray] = {
            "iteration": np.arange(self.iterations + 1),
            "loss": self.loss,
            "gn_lambda_max": self.gn_lambda_max,
        }
        if np.isfinite(self.hessian_lambda_max).any():
            cols["hessian_lambda_max"] = self.hessian_lambda_max
        for j in range(self.singular_values.shape[1]):
            cols[f"sigma_{j + 1}"] = self.singular_values[:, j]
        for i in range(self.balancedness.shape[1]):
            cols[f"balance_{i + 1}"] = self.balancedness[:, i]
        return cols


@dataclass(frozen=True, eq=False)
class TrainResult:
    """All runs of one :func:`~dmfsharp.dynamics.train.train` call, with the shared setup.

    Attributes
    ----------
    dims : tuple of int
        ``(d_0, ..., d_L)``.
    init : str
        The initialization's name, a file path, or ``"factors"``.
    init_scale : float
        ``alpha``.
    seed : int
        The seed of the default target and the initialization.
    target : ndarray
        ``M`` (or ``Y`` with data).
    data : ndarray or None
        ``X``.
    normalization : str or None
        The data loss's normalization.
    start : FactorChain
        ``w_0``.
    eta_crit : float or None
        ``2 / lambda_flat``.
    flat_lambda_max : float or None
        ``lambda_flat`` (eq. 35).
    runs : list of TrainRun
        One per step size, in the given order.
    engine : str
        ``"numpy"`` or ``"numba"``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5 (``lambda_max`` of the landing
    minimum), Lemma 3 (eqs. 56-58, the Gauss-Newton part tracked), eq. 35 (``lambda_flat``).

    J. Cohen, S. Kaur, Y. Li, J. Z. Kolter and A. Talwalkar, Gradient Descent on Neural
    Networks Typically Occurs at the Edge of Stability, ICLR 2021 (progressive sharpening,
    edge of stability).

    A. Ghosh, S. M. Kwon, R. Wang, S. Ravishankar and Q. Qu, Learning Dynamics of Deep
    Matrix Factorization Beyond the Edge of Stability, ICLR 2025 (the regimes in DMF).

    Examples
    --------
    >>> from dmfsharp import train
    >>> res = train((1, 1, 1), init="identity", init_scale=0.5, target=[[1.0]],
    ...             eta_ratios=[0.5, 1.5], iterations=200, engine="numpy")
    >>> res.flat_lambda_max, res.eta_crit, [r.eta for r in res.runs]
    (4.0, 0.5, [0.25, 0.75])
    >>> res.summary()["depth"], len(res.summary()["runs"])
    (2, 2)
    """

    dims: tuple[int, ...]
    init: str
    init_scale: float
    seed: int
    target: np.ndarray = field(repr=False)
    data: np.ndarray | None = field(repr=False)
    normalization: str | None
    start: FactorChain = field(repr=False)
    eta_crit: float | None
    flat_lambda_max: float | None
    runs: list[TrainRun] = field(repr=False)
    engine: str

    def summary(self) -> dict[str, Any]:
        """Setup and runs as a JSON-ready dict (``runs[i]`` from :meth:`TrainRun.summary`).

        Returns
        -------
        dict of str to object
            ``dims`` (list), ``depth``, ``init``, ``init_scale``, ``seed``, ``data``
            (bool), ``normalization``, ``eta_crit``, ``flat_lambda_max``,
            ``target_norm_sq``, ``engine`` and ``runs`` (a list of dicts).
        """
        return {
            "dims": list(self.dims),
            "depth": len(self.dims) - 1,
            "init": self.init,
            "init_scale": self.init_scale,
            "seed": self.seed,
            "data": self.data is not None,
            "normalization": self.normalization,
            "eta_crit": self.eta_crit,
            "flat_lambda_max": self.flat_lambda_max,
            "target_norm_sq": float(np.vdot(self.target, self.target)),
            "engine": self.engine,
            "runs": [r.summary() for r in self.runs],
        }
