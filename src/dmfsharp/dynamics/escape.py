r"""Escape experiments (Section 7): GD from next to a global minimum, and its classification.

Section 7 of the paper starts gradient descent (GD) on eq. 15,

.. math::

    w_{k+1} = w_k - \eta \nabla L(w_k), \qquad
    \nabla_{W_i} L = -2 A_i^\top (M - W_L \cdots W_1) B_i^\top ,

at ``w_0 = w* + r v_1`` (``v_1`` the top Hessian eigenvector at the minimum ``w*``,
``r`` between 1e-15 and 1e-9) and observes: with ``eta > 2 / lambda_max`` GD escapes
(the linearization ``w_{k+1} - w* ~ (I - eta H)(w_k - w*)`` grows the ``v_1``
component by ``|1 - eta lambda_max| > 1`` per step), the training loss shows a
catapult, and GD settles on another global minimum; with ``eta <= 2 / lambda_max`` it
comes back.

:func:`escape_experiment` runs several step sizes from the same start in one call: the
factors of all runs are stacked on a leading batch axis and every step is a fixed
sequence of batched ``numpy.matmul`` calls into preallocated buffers (no Python loop
over runs, no allocation per step; :mod:`dmfsharp.dynamics.loop`). With the optional
``fast`` extra (numba) a compiled kernel runs all runs through whole chunks of steps per
call instead (``engine="numba"``; the default ``"auto"`` picks it when it runs here).

Escape, precisely
-----------------
Let ``rho_k = ||w_k - w*|| / ||w*||`` (Euclidean norm of all parameters) and ``tau`` the
``escape_threshold`` (default 1e-4): a distance at which the factors have moved by a
relative 1e-4, where the linear theory is still accurate to about that order but the
start (``r / ||w*|| <= 1e-9``) is left far behind. A step size just above the
threshold (``eta lambda_max / 2 = 1.01``, say) can settle on a neighbouring minimum
closer than that; such a run is ``"undecided"`` and a smaller threshold classifies it.

- ``escape_iteration`` is the first ``k`` with ``rho_k > tau``.
- ``"diverged"``: the loss overflowed, became NaN, or exceeded ``1e20 ||M||_F^2``; that
  run stops cleanly (its trace ends there) and the others go on.
- ``"escaped"``: ``rho`` crossed ``tau`` and the run ends outside the ``tau``-ball
  (it did not come back; typically it has landed on another global minimum).
- ``"returned"``: the run ends inside the ``tau``-ball no farther from ``w*`` than it
  started, up to 1%: ``rho_final <= max(1.01 rho_0, 1e-12)`` (the floor is the
  rounding level of ``w*`` itself; the 1% absorbs the rounding drift of a run at
  exactly ``eta = 2 / lambda_max``, where the linear theory is neutral).
- ``"undecided"``: neither (inside the ball but drifting away; a longer budget decides).

The linear-theory prediction of the escape iteration, with the same threshold, is
``log(tau ||w*|| / r_1) / log|1 - eta lambda_max|`` where ``r_1`` is the start's
component along ``v_1`` (``r_1 = r`` for the paper's start along ``v_1``); it is
``None`` when ``eta lambda_max <= 2``.

A run also stops early when it has escaped and its loss is below
``converge_tol ||M||_F^2`` (``stop_reason="converged"``). Where the final loss is below
``minimum_tol ||M||_F^2`` the final point is taken as a global minimum of its own
product and its exact ``lambda_max`` (Theorem 5 via :func:`dmfsharp.sharpness`) is
reported with ``final_is_stable = lambda_max <= 2 / eta``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..chain import FactorChain, FactorsLike, as_chain, check_target
from ..errors import NotAMinimumError
from ..exact import minimum_residual, sharpness, top_eigenvector
from ..loss import dense_hessian
from ..minimum import require_critical
from ..objective import make_objective
from ..validate import check_weight_decay
from .inputs import flat_vector, nonnegative_float, positive_array, positive_float, positive_int
from .loop import GDTrace, gradient_descent
from .results import EscapeResult, RunResult

__all__ = [
    "escape_experiment",
    "start_direction",
    "predicted_escape_iteration",
    "classify_run",
    "run_result",
]

RETURN_FLOOR = 1e-12
RETURN_SLACK = 1.01
#: ``lambda_max <= 2/eta`` is decided up to this relative rounding margin.
STABLE_RTOL = 1e-9


def start_direction(minimum: FactorsLike, direction: Any = "top", *, seed: Any = 0) -> np.ndarray:
    """Unit start direction ``u`` (flat, length ``N``) for ``w_0 = w* + r u``.

    Parameters
    ----------
    minimum : FactorChain or sequence of array_like
        ``w*``, a global minimum of its own product.
    direction : {"top", "random"} or sequence of array_like
        ``"top"``: ``v_1``, the top Hessian eigenvector (Section 7). ``"random"``:
        uniform on the sphere ``S^{N-1}`` (a normalized Gaussian drawn with
        ``numpy.random.default_rng(seed)``). Otherwise arrays shaped like the factors
        (or one flat array of length ``N``), normalized here.
    seed : int or None
        Seed for ``"random"``.

    Returns
    -------
    ndarray, shape (N,)
        The unit direction, float64, flattened as :meth:`FactorChain.flatten` (each
        factor row-major, W_1 first).

    Raises
    ------
    FactorError
        Invalid ``minimum``, or user arrays not shaped like the factors.
    ValueError
        An unknown ``direction`` name, or a user direction that is zero or not finite.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Section 7 and Appendix D (the start along
    ``v_1``, or uniformly on ``S^{N-1}``), Theorem 5 (``v_1``).

    Examples
    --------
    ``m = w_2 w_1`` at ``(1, 2)``: ``v_1`` is proportional to ``(w_2, w_1) = (2, 1)``.

    >>> import numpy as np
    >>> u = start_direction([np.array([[1.0]]), np.array([[2.0]])])
    >>> np.round(u, 6).tolist()
    [0.894427, 0.447214]
    >>> float(np.linalg.norm(start_direction([np.eye(2), np.eye(2)], "random", seed=1)))
    1.0
    """
    chain = as_chain(minimum)
    n = chain.num_params
    if isinstance(direction, str):
        if direction == "top":
            return flat_vector(top_eigenvector(chain))
        if direction == "random":
            u = np.random.default_rng(seed).standard_normal(n)
            return u / np.linalg.norm(u)
        raise ValueError(f"direction must be 'top', 'random' or arrays, got {direction!r}")
    from ..landscape import flat_direction

    u = flat_direction(chain, direction, "direction")
    if not np.all(np.isfinite(u)):
        raise ValueError("direction has non-finite entries")
    norm = np.linalg.norm(u)
    if norm == 0:
        raise ValueError("direction is zero")
    return u / norm


def escape_experiment(
    minimum: FactorsLike,
    *,
    target: Any = None,
    step_multipliers: Any = None,
    etas: Any = None,
    radius: float = 1e-10,
    direction: Any = "top",
    seed: Any = 0,
    iterations: int = 5000,
    plane: Any = "hessian",
    escape_threshold: float = 1e-4,
    converge_tol: float = 1e-14,
    minimum_tol: float = 1e-12,
    track_every: int | None = None,
    track_hessian_every: int | None = None,
    lambda_max: float | None = None,
    engine: str = "auto",
    weight_decay: float = 0.0,
) -> EscapeResult:
    """GD started next to a global minimum with several step sizes (Section 7).

    Starts every run at ``w_0 = w* + r u`` (``u`` from :func:`start_direction`), runs
    GD on eq. 15 with each step size for at most ``iterations`` steps (all runs in one
    batched loop), and classifies each run as escaped / returned / diverged /
    undecided (see the module docstring for the exact rules).

    Parameters
    ----------
    minimum : FactorChain or sequence of array_like
        The global minimum ``w*``.
    target : array_like, optional
        ``M``; None means the product of ``minimum``. If given, ``minimum`` must be a
        global minimum of it (else :class:`NotAMinimumError`).
    step_multipliers : sequence of float, optional
        Step sizes in units of ``2 / lambda_max``: ``eta = c * 2 / lambda_max``.
    etas : sequence of float, optional
        Absolute step sizes. Exactly one of ``step_multipliers`` and ``etas``; if both
        are None, ``(0.9, 1.1)`` multipliers.
    radius : float
        ``r > 0``, the distance of the start from ``w*`` (the paper uses 1e-15 to 1e-9).
    direction : {"top", "random"} or arrays
        Start direction: ``v_1`` (default), a seeded uniform random unit vector, or
        the user's (normalized).
    seed : int or None
        Seed for the random start direction and the random plane; recorded.
    iterations : int
        Maximum GD steps per run.
    plane : {"hessian", "random"} or array_like
        Directions ``(zeta, gamma)`` of the ``coords`` traces (and of the landscape
        map): see :func:`dmfsharp.landscape.plane_directions`.
    escape_threshold : float
        ``tau``, relative to ``||w*||``.
    converge_tol : float
        An escaped run stops when ``L(w_k) <= converge_tol ||M||_F^2``.
    minimum_tol : float
        A final point with ``L <= minimum_tol ||M||_F^2`` counts as a global minimum,
        and its exact ``lambda_max`` is reported.
    track_every, track_hessian_every : int, optional
        Sharpness along the trajectory: exact ``lambda_max(2 K^T K)`` every
        ``track_every`` steps and the full Hessian's ``lambda_max`` (warm-started
        Lanczos) every ``track_hessian_every`` steps.
    lambda_max : float, optional
        ``lambda_max`` at ``w*`` if already known (else computed by Theorem 5).
    engine : {"auto", "numpy", "numba"}
        The GD engine (see :func:`gradient_descent`); the one that ran is recorded in
        :attr:`EscapeResult.engine`.
    weight_decay : float
        ``mu >= 0``. With ``mu > 0`` GD runs on ``L_mu`` and ``minimum`` must be a critical
        point of it (e.g. :func:`dmfsharp.regularized_minimizer`, with ``target``);
        ``lambda_max`` is then that of ``L_mu`` (:func:`dmfsharp.sharpness` with
        ``weight_decay``), the ``"top"`` direction and the ``"hessian"`` plane are the top
        and bottom eigenvectors of its dense Hessian (``N <= 6000``), runs end at the
        budget (no ``"converged"``), and the landing sharpness is reported when the final
        point is critical.

    Returns
    -------
    EscapeResult
        The shared setup (``w*``, ``M``, ``lambda_max``, start, plane) and one
        :class:`RunResult` per step size, in the given order.

    Raises
    ------
    FactorError
        Invalid factors, target or user direction (named in the message).
    NotAMinimumError
        If ``target`` is given and ``minimum`` is not a global minimum of it (with weight
        decay: not a critical point of ``L_mu``).
    ValueError
        Invalid options: both ``step_multipliers`` and ``etas``, non-positive
        ``radius``, ``iterations`` or tracking periods, an unknown ``direction``,
        ``plane`` or ``engine``, a negative ``weight_decay``.
    ImportError
        If ``engine="numba"`` and numba is not installed.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Section 7 and Appendix D (the escape
    experiments, Figures 1-3), Theorem 5 (``lambda_max``), Lemma 3 (eqs. 56-58).

    L. Wu, C. Ma and W. E, How SGD Selects the Global Minima in Over-parameterized
    Learning: A Dynamical Stability Perspective, NeurIPS 2018 (a minimum is linearly
    stable for GD iff ``lambda_max <= 2 / eta``).

    Examples
    --------
    A scalar factorization ``m = w_2 w_1`` at ``(1, 2)``: ``lambda_max = 2 (1 + 4) = 10``.

    >>> import numpy as np
    >>> res = escape_experiment([np.array([[1.0]]), np.array([[2.0]])],
    ...                         step_multipliers=[0.5, 1.2], radius=1e-8, iterations=400,
    ...                         engine="numpy")
    >>> res.lambda_max
    10.0
    >>> [r.status for r in res.runs]
    ['returned', 'escaped']
    >>> bool(res.runs[1].final_is_stable)
    True
    """
    from ..landscape import plane_directions
    from .engines import resolve_engine

    chain = as_chain(minimum)
    engine = resolve_engine(engine)
    mu = check_weight_decay(weight_decay)
    if target is not None:
        m = check_target(chain, target)
        res, tol = minimum_residual(chain, target=m)
        if not mu and res > tol:
            raise NotAMinimumError(
                f"the start point is not a global minimum of M: ||M - W_L...W_1||_F = "
                f"{res:.3e} exceeds the rounding tolerance {tol:.1e}"
            )
    else:
        m = chain.product
    if mu:
        require_critical(make_objective(chain, m, weight_decay=mu), "escape_experiment")
    r = positive_float(radius, "radius")
    tau = positive_float(escape_threshold, "escape_threshold")
    converge_tol = nonnegative_float(converge_tol, "converge_tol")
    minimum_tol = nonnegative_float(minimum_tol, "minimum_tol")
    iterations = int(positive_int(iterations, "iterations") or 0)
    if lambda_max is not None:
        lam = positive_float(lambda_max, "lambda_max")
    else:
        lam = float(sharpness(chain, target=m, weight_decay=mu) if mu else sharpness(chain))
    if step_multipliers is not None and etas is not None:
        raise ValueError("give step_multipliers or etas, not both")
    if etas is not None:
        eta = positive_array(etas, "etas")
    else:
        mult = positive_array(
            (0.9, 1.1) if step_multipliers is None else step_multipliers, "step_multipliers"
        )
        eta = mult * 2.0 / lam
    mult = eta * lam / 2.0

    dir_name = direction if isinstance(direction, str) else "user"
    if mu:  # the top and bottom eigenvectors of the Hessian of L_mu (dense, N <= 6000)
        ev, vecs = np.linalg.eigh(dense_hessian(chain, target=m, weight_decay=mu))
        v1, vn = (x * (1.0 if x[np.argmax(np.abs(x))] > 0 else -1.0) for x in (vecs[:, -1], vecs[:, 0]))
        u = v1 if dir_name == "top" else start_direction(chain, direction, seed=seed)
    else:
        u = start_direction(chain, direction, seed=seed)
        v1 = u if dir_name == "top" else flat_vector(top_eigenvector(chain))
    overlap = float(abs(u @ v1))
    wstar = chain.flatten()
    wnorm = float(np.linalg.norm(wstar)) or 1.0
    if r >= tau * wnorm:
        raise ValueError(
            f"radius {r:g} is not below the escape threshold tau ||w*|| = {tau * wnorm:.3g} "
            f"(tau = escape_threshold = {tau:g}); start closer or raise escape_threshold"
        )
    w0 = chain.with_factors(chain.unflatten(wstar + r * u))
    if mu and isinstance(plane, str) and plane == "hessian":
        zplane = np.stack([v1, vn])
    else:
        zplane = plane_directions(chain, plane, seed=seed)

    raw = gradient_descent(
        w0,
        eta,
        target=m,
        iterations=iterations,
        reference=chain,
        plane=zplane,
        escape_threshold=tau,
        converge_tol=converge_tol,
        track_every=track_every,
        track_hessian_every=track_hessian_every,
        engine=engine,
        weight_decay=mu,
    )
    runs = [
        run_result(raw, b, chain, float(mult[b]), lam, r * overlap, wnorm, tau, minimum_tol, weight_decay=mu)
        for b in range(eta.size)
    ]
    return EscapeResult(
        minimum=chain,
        target=m,
        lambda_max=lam,
        radius=r,
        direction=dir_name,
        seed=seed,
        start=w0,
        plane=zplane,
        escape_threshold=tau,
        start_overlap=overlap,
        runs=runs,
        engine=raw.engine,
        weight_decay=mu,
    )


def predicted_escape_iteration(eta: float, lambda_max: float, r1: float, threshold: float) -> float | None:
    """Escape iteration of the linearized GD map: ``log(threshold / r1) / log|1 - eta lambda_max|``.

    Near ``w*`` GD is ``w_{k+1} - w* ~ (I - eta H)(w_k - w*)``, so the component along
    ``v_1`` grows by ``|1 - eta lambda_max|`` per step (Section 7).

    Parameters
    ----------
    eta : float
        Step size.
    lambda_max : float
        ``lambda_max`` of the Hessian at ``w*``.
    r1 : float
        The start's component along ``v_1``.
    threshold : float
        The absolute escape distance ``tau ||w*||``.

    Returns
    -------
    float or None
        The (fractional) iteration, 0 if the start is already beyond ``threshold``; None
        when ``|1 - eta lambda_max| <= 1`` (linearly stable) or ``r1 <= 0``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Section 7).

    Examples
    --------
    Growth ``|1 - 3| = 2`` per step from ``1e-3`` to ``1``: ``log2(1000)`` steps.

    >>> round(predicted_escape_iteration(3.0, 1.0, 1e-3, 1.0), 6)
    9.965784
    >>> predicted_escape_iteration(1.5, 1.0, 1e-3, 1.0) is None
    True
    """
    growth = abs(1.0 - eta * lambda_max)
    if growth <= 1.0 or r1 <= 0:
        return None
    return max(math.log(threshold / r1), 0.0) / math.log(growth)


def classify_run(
    distance_sq: np.ndarray, stop_reason: str, escape_threshold: float
) -> tuple[str, int | None]:
    """Status and escape iteration of one run from its ``rho_k^2`` trace (module docstring).

    Parameters
    ----------
    distance_sq : ndarray, shape (T + 1,)
        ``rho_k^2 = ||w_k - w*||^2 / ||w*||^2``.
    stop_reason : str
        The loop's stop reason (``"diverged"`` decides the status).
    escape_threshold : float
        ``tau``.

    Returns
    -------
    status : str
        ``"escaped"``, ``"returned"``, ``"diverged"`` or ``"undecided"``.
    escape_iteration : int or None
        First ``k`` with ``rho_k > tau``.
    """
    tau = escape_threshold
    above = np.flatnonzero(distance_sq > tau * tau)
    esc = int(above[0]) if above.size else None
    rho_end, rho_0 = math.sqrt(distance_sq[-1]), math.sqrt(distance_sq[0])
    if stop_reason == "diverged":
        status = "diverged"
    elif rho_end > tau and esc is not None:
        status = "escaped"
    elif rho_end <= max(RETURN_SLACK * rho_0, RETURN_FLOOR):
        status = "returned"
    else:
        status = "undecided"
    return status, esc


def run_result(
    raw: GDTrace,
    b: int,
    chain: FactorChain,
    mult: float,
    lam: float,
    r1: float,
    wnorm: float,
    tau: float,
    minimum_tol: float,
    *,
    weight_decay: float = 0.0,
) -> RunResult:
    """The :class:`RunResult` of run ``b`` of ``raw`` (classification, landing sharpness).

    With ``weight_decay > 0`` the landing sharpness is that of ``L_mu``, reported when the
    final point is a critical point of ``L_mu`` (:func:`dmfsharp.minimum.require_critical`).
    """
    eta = float(raw.etas[b])
    t = int(raw.stop_iteration[b])
    reason = raw.stop_reason[b]
    nloss = raw.normalized_loss[: t + 1, b].copy()
    dsq = raw.distance_sq[: t + 1, b].copy()
    coords = raw.coords[: t + 1, b].copy()
    status, esc = classify_run(dsq, reason, tau)
    final = None
    lam_f = None
    stable = None
    if reason != "diverged":
        final = chain.with_factors(chain.unflatten(raw.final[b]))
        if weight_decay:
            try:
                lam_f = float(sharpness(final, target=raw.target, weight_decay=weight_decay))
            except NotAMinimumError:
                lam_f = None
            stable = None if lam_f is None else bool(lam_f <= (2.0 / eta) * (1.0 + STABLE_RTOL))
        elif nloss[-1] <= minimum_tol:
            lam_f = float(sharpness(final))
            stable = bool(lam_f <= (2.0 / eta) * (1.0 + STABLE_RTOL))
    gn_ok = (raw.track_iterations <= t) & np.isfinite(raw.gn_lambda_max[:, b])
    h_ok = (raw.hessian_track_iterations <= t) & np.isfinite(raw.hessian_lambda_max[:, b])
    return RunResult(
        eta=eta,
        step_multiplier=mult,
        status=status,
        stop_reason=reason,
        iterations=t,
        escape_iteration=esc,
        predicted_escape_iteration=predicted_escape_iteration(eta, lam, r1, tau * wnorm),
        peak_loss=float(np.max(raw.loss[: t + 1, b])),
        final_loss=float(raw.loss[t, b]),
        final_lambda_max=lam_f,
        final_is_stable=stable,
        final_factors=final,
        normalized_loss=nloss,
        distance_sq=dsq,
        coords=coords,
        track_iterations=raw.track_iterations[gn_ok],
        gn_lambda_max=raw.gn_lambda_max[gn_ok, b],
        hessian_track_iterations=raw.hessian_track_iterations[h_ok],
        hessian_lambda_max=raw.hessian_lambda_max[h_ok, b],
    )
