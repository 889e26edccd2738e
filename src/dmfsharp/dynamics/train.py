r"""Training at the edge of stability: full-batch GD from an initialization, exact sharpness tracked.

:func:`train` runs GD on a deep matrix factorization, ``L(w) = ||M - W_L ... W_1||_F^2``
(eq. 15), or a deep linear network on data, ``c ||Y - W_L ... W_1 X||_F^2``, from a
Gaussian, orthogonal, identity or saved initialization, with several step sizes at once
on the batched engines (:mod:`dmfsharp.dynamics.engines`; data runs use the NumPy
engine). Along every run it records

- the loss;
- the exact Gauss-Newton ``lambda_max(2 K^T K)`` (Theorem 5's expression holds for the
  Gauss-Newton part at every point, eq. 57; :func:`dmfsharp.gauss_newton_sharpness`), by
  default at every step: warm-started and certified where numba is installed
  (:mod:`dmfsharp.dynamics.numba_tracking`), batched LAPACK calls otherwise;
- optionally the full Hessian's ``lambda_max`` every ``k`` steps (warm-started Lanczos
  on the analytic Hessian-vector product, :func:`dmfsharp.numerical_sharpness`);
- at each of the first 90 tracked steps and every ``sample_every`` steps after that,
  the top singular values of ``P = W_L ... W_1`` and the balancedness
  ``||W_{i+1}^T W_{i+1} - W_i W_i^T||_F`` for ``i = 1 .. L-1``.
  Gradient flow conserves ``W_{i+1}^T W_{i+1} - W_i W_i^T`` exactly; one GD step changes
  it by exactly ``eta^2 (G_{i+1}^T G_{i+1} - G_i G_i^T)`` (``G_i`` the gradient blocks: the
  first-order terms cancel), so GD breaks balance at second order in ``eta``.

Theory on every run. Every global minimum of eq. 15 has
``lambda_max >= lambda_flat(M) = 2 L sigma_max(M)^(2 - 2/L)`` (eq. 35; Mulayoff & Michaeli
2020), so for ``eta > eta_crit = 2 / lambda_flat(M)`` no global minimum is linearly
stable for GD. Each run reports ``eta / eta_crit``; a converged run reports its landing
minimum's exact ``lambda_max`` (of the minimum of its own product ``P``, where it sits up
to the convergence tolerance), ``lambda_max eta / 2`` (at most 1 for a stable landing,
Wu et al. 2018) and its flatness ratio ``lambda_max / lambda_flat(M)``. With data,
``eta_crit`` is defined when ``c X X^T = s I`` (whitened data; the loss is then
``s ||M - P||^2 + const`` with ``M = c Y X^T / s``, so ``lambda_flat`` scales by ``s``);
otherwise it is None.

Weight decay (``weight_decay=mu``, issue 15): GD on ``L_mu = L + mu sum_k ||W_k||_F^2``
(the engines step ``w <- (1 - 2 eta mu) w + 2 eta A^T R B^T``). Every global minimizer of
``L_mu`` (eq. 15, ``mu > 0``, off the tie set) is the balanced one up to orthogonal changes
of basis, which are isometries of parameter space leaving ``L_mu`` invariant, so they all
share one Hessian spectrum (:func:`dmfsharp.regularized_minimum_spectrum`) and one
``lambda_max = lambda_mu(M)``: ``eta_crit = 2 / lambda_mu(M)`` is then exact, the step above
which no global minimizer of ``L_mu`` is linearly stable (it tends to ``2 / lambda_flat(M)``
as ``mu -> 0``, where the balanced minimizer is the flattest). Other critical points (``W = 0``
with ``lambda_max = 2 mu`` for ``L >= 3``, the nonzero local minima that survive above
``mu*`` up to :func:`dmfsharp.local_minimum_limit`) can still be stable beyond it. With data
and ``mu > 0``, ``eta_crit`` is None. The loss trace stays the data term; a run counts as
``"converged"`` when its final point is a critical point of ``L_mu``
(:func:`dmfsharp.minimum.stationarity`), and then reports the exact ``lambda_max`` of
``L_mu`` there. The tracked Gauss-Newton sharpness is that of ``L_mu``,
``lambda_max(2 K^T K + 2 mu I) = lambda_max(2 K^T K) + 2 mu``, so it compares with
``2 / eta`` and with the full Hessian's ``lambda_max`` of ``L_mu``. A converged run whose
exact ``lambda_max`` exceeds float64 reports None.

Statuses: ``"converged"`` (loss within ``converge_tol`` times the loss scale of its
infimum: 0 for eq. 15, the least-squares residual for data), ``"diverged"`` (the loop's
rule: NaN, inf or above ``1e20`` times the scale) or ``"budget"``. Regimes are detected
by :mod:`dmfsharp.dynamics.regimes` (definitions there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..chain import FactorChain, check_target
from ..errors import Float64OverflowError, NotAMinimumError
from ..exact import sharpness
from ..flatness import flat_sharpness
from ..gauss_newton import gauss_newton_sharpness
from ..limits import check_allocation
from ..objective import check_normalization, sample_scale
from ..regularized import regularized_minimum_spectrum
from ..validate import check_weight_decay
from . import regimes
from .engines import ENGINES, DataEngine, GDEngine, make_engine, resolve_engine
from .initialization import INITS, gaussian_target, initial_factors, load_start
from .inputs import nonnegative_float, positive_array, positive_int
from .loop import CHECK_EVERY, DIVERGENCE_FACTOR, run_loop
from .tracking import (
    SAMPLE_STRIDE,
    HessianTracker,
    SampleTracker,
    compiled_tracking,
    run_factors,
)
from .train_results import TrainResult, TrainRun

__all__ = ["train", "TrainResult", "TrainRun"]


def _data_setup(
    dims: tuple[int, ...], data: Any, target: Any, normalization: str | None
) -> tuple[np.ndarray, np.ndarray, str, float, float, float | None, np.ndarray | None]:
    x = np.asarray(data, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != dims[0] or x.shape[1] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"data X must be finite of shape (d_0, n) = ({dims[0]}, n), got {x.shape}")
    if y.shape != (dims[-1], x.shape[1]) or not np.all(np.isfinite(y)):
        raise ValueError(
            f"target Y must be finite of shape (d_L, n) = ({dims[-1]}, {x.shape[1]}), got {y.shape}"
        )
    norm = check_normalization(normalization, has_data=True, has_covariance=False)
    c = sample_scale(norm, x.shape[1], dims[-1])
    coef, *_ = np.linalg.lstsq(x.T, y.T, rcond=None)  # least squares P* (rows of P*^T)
    floor = c * float(np.sum((y - coef.T @ x) ** 2))
    gram = c * (x @ x.T)
    s = float(np.trace(gram)) / dims[0]
    whitened = np.allclose(gram, s * np.eye(dims[0]), rtol=0, atol=1e-12 * max(s, 1e-300))
    m = c * (y @ x.T) / s if whitened and s > 0 else None
    return x, y, norm, c, floor, (s if m is not None else None), m


def train(
    dims: Any = None,
    *,
    init: Any = "gaussian",
    init_scale: float = 0.1,
    target: Any = None,
    data: Any = None,
    normalization: str | None = None,
    etas: Any = None,
    eta_ratios: Any = None,
    iterations: int = 10000,
    seed: int = 0,
    converge_tol: float = 1e-10,
    track_every: int = 1,
    track_hessian_every: int | None = None,
    sample_every: int | None = None,
    num_singular: int = 3,
    max_period: int = 16,
    engine: str = "auto",
    weight_decay: float = 0.0,
) -> TrainResult:
    """Full-batch GD from an initialization with several step sizes; sharpness tracked.

    Parameters
    ----------
    dims : sequence of int, optional
        ``(d_0, ..., d_L)``; needed for named initializations, else taken from ``init``.
    init : {"gaussian", "orthogonal", "identity"}, path or factors
        A named initialization (:func:`~dmfsharp.dynamics.initialization.initial_factors`),
        a factors file (``.npz`` with ``W1 ... WL``, or a PyTorch ``.pt``), or factors.
    init_scale : float
        ``alpha`` of a named initialization.
    target : array_like, optional
        ``M`` of shape ``(d_L, d_0)``, or ``Y`` of shape ``(d_L, n)`` with ``data``.
        Default: an init file's ``M``, else i.i.d. standard normal entries drawn first
        from ``numpy.random.default_rng(seed)``.
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``; the loss is ``c ||Y - P X||_F^2``.
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        ``c = 1``, ``1/n`` or ``1/(2n)`` with data (default ``"sum"``).
    etas, eta_ratios : sequence of float
        Absolute step sizes, or step sizes in units of ``eta_crit`` (exactly one).
    iterations : int
        The budget of GD steps per run.
    seed : int
        Seed of the default target and the initialization.
    converge_tol : float
        A run converges when its loss is within ``converge_tol`` times the loss scale
        (``||M||_F^2``, or ``c ||Y||_F^2``) of the infimum.
    track_every : int
        Record the exact Gauss-Newton ``lambda_max`` every so many steps (1: every step).
        With numba installed (the ``fast`` extra) it is computed by the compiled,
        warm-started route of :mod:`dmfsharp.dynamics.numba_tracking`: each value is
        certified within ``4 n (n + 1) u`` (relative, ``n`` the order of the matrix,
        ``u = 2^-53``) of the top eigenvalue, or taken from LAPACK; without numba,
        from batched LAPACK calls.
    track_hessian_every : int, optional
        Record the full Hessian's ``lambda_max`` every so many steps (warm-started).
    sample_every : int, optional
        Record the top singular values of ``P`` and the balancedness every so many
        steps, a multiple of ``track_every`` (default ``SAMPLE_STRIDE * track_every``, 15:
        odd, so with an odd ``track_every`` a period-2 orbit is not aliased onto one of
        its phases), and at each of
        the first :data:`EARLY_SAMPLES` (90) tracked steps (the fast early dynamics); rows
        between are NaN. A singular value decomposition per step costs more than the
        sharpness itself: ``benchmarks/bench_train.py`` measures both.
    num_singular : int
        How many top singular values of ``P`` to record.
    max_period : int
        Longest period searched for an orbit at the end of a run that did not converge.
    engine : {"auto", "numpy", "numba"}
        The GD engine (data runs always use NumPy).
    weight_decay : float
        ``mu >= 0``: train on ``L_mu`` (module docstring: ``eta_crit`` becomes
        ``2 / lambda_max`` of the global minimizers of ``L_mu``; a run converges when it ends
        at a critical point of ``L_mu``).

    Returns
    -------
    TrainResult
        The setup (dims, initialization, target, ``eta_crit``, ``lambda_flat``) and one
        :class:`TrainRun` per step size with its traces and detected regimes.

    Raises
    ------
    ValueError
        Invalid dims, initialization, target, data, step sizes or options; ``eta_ratios``
        where ``eta_crit`` is undefined (data that are not whitened).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Theorem 5, eqs. 15, 35 and 57).

    Examples
    --------
    ``m = w_2 w_1`` towards ``m = 1`` from the balanced ``alpha = 0.5``: ``lambda_flat = 4``,
    ``eta_crit = 0.5``; at ``eta = 0.25`` GD lands on the flat minimum ``w_1 = w_2 = 1``.

    >>> import numpy as np
    >>> res = train((1, 1, 1), init="identity", init_scale=0.5, target=[[1.0]],
    ...             eta_ratios=[0.5], iterations=200, engine="numpy")
    >>> res.eta_crit, res.runs[0].status, round(res.runs[0].final_lambda_max, 8)
    (0.5, 'converged', 4.0)
    """
    if isinstance(init, str) and init in INITS:
        if dims is None:
            raise ValueError(f"dims are needed for init {init!r}")
        from ..minima import check_dims

        dims_t = check_dims(dims, feasible=False)
        start, file_target = None, None
    else:
        start, file_target = load_start(init)
        dims_t = start.dims
        if dims is not None and tuple(int(d) for d in dims) != dims_t:
            raise ValueError(f"dims {tuple(dims)} differ from the initialization's {dims_t}")
    rng = np.random.default_rng(seed)
    if target is None:
        if data is not None:
            raise ValueError("data X needs its targets Y: pass target=Y")
        target = file_target if file_target is not None else gaussian_target(dims_t, rng)
    if start is None:
        start = initial_factors(dims_t, init, init_scale, rng)
    depth = len(dims_t) - 1
    s_white: float | None
    m_flat: np.ndarray | None
    options: dict[str, Any]
    if data is None:
        if normalization not in (None, "sum"):
            raise ValueError(f"normalization={normalization!r} needs data= (samples X)")
        m = check_target(start, target)
        scale_loss = float(np.vdot(m, m)) or 1.0
        floor, s_white, m_flat, options = 0.0, 1.0, m, {}
    else:
        x, m, norm, c, floor, s_white, m_flat = _data_setup(dims_t, data, target, normalization)
        scale_loss = c * float(np.vdot(m, m)) or 1.0
        options = {"data": x, "normalization": norm}
    mu = check_weight_decay(weight_decay)
    flat = None if m_flat is None else float(s_white or 1.0) * flat_sharpness(m_flat, depth)
    if mu:  # the lambda_max shared by every global minimizer of L_mu (module docstring)
        flat = (
            None if data is not None else float(regularized_minimum_spectrum(m, dims_t, weight_decay=mu)[-1])
        )
    eta_crit = None if not flat else 2.0 / flat
    if (etas is None) == (eta_ratios is None):
        raise ValueError("give exactly one of etas and eta_ratios")
    if eta_ratios is not None:
        if eta_crit is None:
            raise ValueError(
                "eta_ratios need eta_crit, undefined here (data not whitened, or M = 0): use etas"
            )
        eta = positive_array(eta_ratios, "eta_ratios") * eta_crit
    else:
        eta = positive_array(etas, "etas")
    iterations = int(positive_int(iterations, "iterations", minimum=0) or 0)
    every = int(positive_int(track_every, "track_every") or 1)
    s_every = positive_int(sample_every, "sample_every", optional=True)
    s_every = SAMPLE_STRIDE * every if s_every is None else int(s_every)
    if s_every % every:
        raise ValueError(f"sample_every must be a multiple of track_every={every}, got {s_every}")
    # a period beyond the budget tracks iteration 0 alone: the same with budget + 1, which
    # keeps the trackers' int64 arithmetic on iteration numbers exact (no overflow)
    every, s_every = min(every, iterations + 1), min(s_every, iterations + 1)
    h_every = positive_int(track_hessian_every, "track_hessian_every", optional=True)
    nsv = min(int(positive_int(num_singular, "num_singular") or 1), min(dims_t[0], dims_t[-1]))
    tol = nonnegative_float(converge_tol, "converge_tol")
    pmax = int(positive_int(max_period, "max_period", minimum=2) or 2)

    nb = eta.size
    check_allocation(
        (iterations + 1, nb, 4 + nsv + depth),
        what="train: the traces (iterations + 1, step sizes, tracked quantities)",
        alternative="fewer iterations or step sizes",
    )
    check_allocation(
        (CHECK_EVERY + 2, nb, start.num_params),
        what="train: the engine and the tracking buffer of parameters",
    )
    w0 = np.tile(start.flatten(), (nb, 1))
    if data is None:
        name = resolve_engine(engine)
        eng: GDEngine = make_engine(name, w0, dims_t, m, mu)
    else:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        name = "numpy"  # the compiled kernel is for eq. 15 only
        eng = DataEngine(w0, dims_t, x, m, c, mu)
    sample = SampleTracker(
        every,
        start,
        gn=np.full((iterations + 1, nb), np.nan),
        singular=np.full((iterations + 1, nb, nsv), np.nan),
        balance=np.full((iterations + 1, nb, depth - 1), np.nan),
        options=options,
        sample_every=s_every,
        compiled=data is None and compiled_tracking(),
        min_rows=CHECK_EVERY + 1,
    )
    trackers: list[Any] = [sample]
    h_options = {**options, "weight_decay": mu} if mu else options
    hess = HessianTracker(h_every, start, m, options=h_options) if h_every else None
    if hess is not None:
        trackers.append(hess)
    out = run_loop(
        eng,
        eta,
        iterations=iterations,
        reference=start.flatten(),
        plane=np.zeros((2, start.num_params)),
        div_limit=DIVERGENCE_FACTOR * scale_loss,
        conv_limit=-1.0 if mu else floor + tol * scale_loss,
        escape_sq=None,
        trackers=trackers,
    )
    sample.flush()
    hess_full = np.full((iterations + 1, nb), np.nan)
    if hess is not None:
        for k, vals in zip(hess.iterations, hess.values, strict=True):
            hess_full[k] = vals
    runs = []
    for b in range(nb):
        t = int(out.stop_iteration[b])
        status = {"max_iterations": "budget"}.get(out.stop_reason[b], out.stop_reason[b])
        final = None if status == "diverged" else start.with_factors(start.unflatten(out.final[b]))
        lam_final = None
        if mu and status == "budget" and final is not None:
            try:  # a critical point of L_mu: converged, with the exact lambda_max of L_mu
                lam_final = float(sharpness(final, target=m, weight_decay=mu, **options))
                status = "converged"
            except NotAMinimumError:
                pass
            except Float64OverflowError:  # a critical point whose lambda_max float64 cannot hold
                status = "converged"
        elif status == "converged" and final is not None:
            try:
                lam_final = float(gauss_newton_sharpness(final, **options))
            except Float64OverflowError:  # exact, but beyond float64: no value (None), not a failure
                pass
        loss = out.loss[: t + 1, b].copy()
        # the Gauss-Newton matrix of L_mu is 2 K^T K + 2 mu I: its lambda_max is 2 mu more
        gn = sample.gn[: t + 1, b] + 2.0 * mu
        orbit = None
        if status == "budget" and final is not None:
            orbit = _orbit(
                final, m, x if data is not None else None, c if data is not None else 1.0, eta[b], pmax, mu
            )
        found = {
            "progressive_sharpening": regimes.progressive_sharpening(gn, eta[b]),
            "edge_of_stability": regimes.edge_of_stability(loss, gn, eta[b]),
            "catapult": regimes.catapults(loss, gn, converged=status == "converged"),
            "periodic_orbit": orbit,
        }
        runs.append(
            TrainRun(
                eta=float(eta[b]),
                eta_ratio=None if eta_crit is None else float(eta[b] / eta_crit),
                status=status,
                iterations=t,
                final_loss=float(loss[-1]),
                final_lambda_max=lam_final,
                flat_lambda_max=flat,
                final_factors=final,
                regimes=found,
                loss=loss,
                gn_lambda_max=gn,
                hessian_lambda_max=hess_full[: t + 1, b].copy(),
                singular_values=sample.singular[: t + 1, b].copy(),
                balancedness=sample.balance[: t + 1, b].copy(),
            )
        )
    return TrainResult(
        dims=dims_t,
        init=init if isinstance(init, str) else "factors",
        init_scale=float(init_scale),
        seed=seed,
        target=m,
        data=None if data is None else x,
        normalization=None if data is None else options["normalization"],
        start=start,
        eta_crit=eta_crit,
        flat_lambda_max=flat,
        runs=runs,
        engine=name,
    )


def _orbit(
    final: FactorChain,
    m: np.ndarray,
    x: np.ndarray | None,
    c: float,
    eta: float,
    pmax: int,
    mu: float = 0.0,
) -> dict[str, Any] | None:
    """Continue GD ``2 pmax`` steps from ``final`` and look for a period (regimes docstring)."""
    w = final.flatten()[None, :]
    eng = make_engine("numpy", w, final.dims, m, mu) if x is None else DataEngine(w, final.dims, x, m, c, mu)
    eng.set_scale(0, 2.0 * eta)
    states, products = [], []
    with np.errstate(all="ignore"):
        for _ in range(2 * pmax + 1):
            eng.residual()
            states.append(eng.params[0].copy())
            products.append(run_factors(eng, final, 0).product if np.all(np.isfinite(states[-1])) else None)
            eng.step()
    p = regimes.periodic_orbit(np.array(states), max_period=pmax)
    if p is None:
        return None
    return {"period": p, **regimes.orbit_subspace(np.array(products[:p]))}
