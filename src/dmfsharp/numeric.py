"""Numerical references for the largest Hessian eigenvalue, valid at any point.

These run on the analytic Hessian-vector product of :mod:`dmfsharp.loss` (no closed
form, no minimum assumed): dense ``eigh`` of the full Hessian, block Lanczos through
:func:`dmfsharp.linalg.lanczos.top_eigenpairs` (residual-certified, no ARPACK), or power
iteration. They are the route to use away from global minima, and the reference the
closed forms are tested against.

Non-convergence policy (the same on every route): a value is returned only when its
stopping rule holds, and then ``converged`` is True; otherwise
:class:`~dmfsharp.errors.ConvergenceError` is raised, carrying the best estimate so far
(an :class:`EigenResult` with ``converged=False``) in its ``partial`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, check_like
from .errors import ConvergenceError
from .linalg.lanczos import ADMIXTURE, EigenPairs, top_eigenpairs
from .linalg.scaling import scale_back
from .loss import dense_hessian, hessian_operator, objective_flat_hvp
from .objective import Objective, make_objective
from .validate import check_positive_int

__all__ = [
    "EigenResult",
    "numerical_sharpness",
    "numerical_eigenvalues",
    "objective_eigenvalues",
    "NUMERICAL_METHODS",
]

NUMERICAL_METHODS = ("dense", "lanczos", "power")

#: Default cap on power steps.
POWER_MAXITER = 10000


@dataclass(frozen=True)
class EigenResult:
    """Result of a numerical largest-eigenvalue computation.

    Attributes
    ----------
    value : float
        The largest algebraic eigenvalue found.
    vector : list of ndarray
        The unit eigenvector, shaped like the factors.
    residual_norm : float
        ``||H v - value v||``, from explicitly computed products.
    num_hvp : int
        Number of Hessian-vector products used (``N`` for ``"dense"``).
    converged : bool
        Whether the method met its tolerance (always True for a returned result; False
        only in :attr:`ConvergenceError.partial <dmfsharp.errors.ConvergenceError>`).
    method : str
        ``"dense"``, ``"lanczos"`` or ``"power"``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Lemma 3 (eqs. 56-58, the Hessian-vector
    product these solvers run on) and Theorem 5 (the closed form they check).

    Examples
    --------
    At ``w = (2, 3)`` with ``M = 0`` the Hessian is ``[[18, 24], [24, 8]]``, with top
    eigenvalue ``13 + sqrt(601)``:

    >>> import numpy as np
    >>> from dmfsharp import numerical_sharpness
    >>> res = numerical_sharpness([np.array([[2.0]]), np.array([[3.0]])], target=[[0.0]],
    ...                           method="dense")
    >>> round(res.value, 10), res.method, res.num_hvp, res.converged
    (37.5153013443, 'dense', 2, True)
    >>> [b.shape for b in res.vector]
    [(1, 1), (1, 1)]
    """

    value: float
    vector: list = field(repr=False)
    residual_norm: float
    num_hvp: int
    converged: bool
    method: str


#: Factors whose entries lie beyond ``2**±SAFE_EXPONENT`` are rescaled before any Hessian
#: product is formed (a Krylov basis would otherwise overflow or underflow).
SAFE_EXPONENT = 64


def _rescaled(chain: Any, kw: dict) -> tuple[Any, dict, int]:
    """Move the point to unit scale; return ``(chain', kw', k)`` with ``H = 2**k H'``.

    The loss is homogeneous: with ``W_i -> 2**e W_i`` and the target ``-> 2**(eL)`` target,
    every Hessian entry scales by ``2**(e (2L - 2))``, and the penalty ``mu ||w||^2``
    keeps that form when ``mu -> mu 2**(-e (2L - 2))``. Eigenvectors do not change. ``e``
    is the mean binary exponent of the factors, so the rescaling is exact (powers of two)
    and is skipped (``k = 0``) for factors of ordinary size.
    """
    exps = [int(np.frexp(np.max(np.abs(w)))[1]) for w in chain.factors if np.any(w)]
    if not exps or max(abs(x) for x in exps) <= SAFE_EXPONENT:
        return chain, kw, 0
    e, depth = int(round(sum(exps) / len(exps))), chain.depth
    kw = dict(kw)
    if kw.get("target") is not None:
        kw["target"] = np.ldexp(np.asarray(kw["target"], dtype=np.float64), -e * depth)
    if kw.get("weight_decay"):
        kw["weight_decay"] = float(np.ldexp(float(kw["weight_decay"]), -e * (2 * depth - 2)))
    scaled = as_chain([np.ldexp(w, -e) for w in chain.factors])
    return scaled, kw, e * (2 * depth - 2)


def _scaled_result(res: EigenResult, k: int) -> EigenResult:
    if k == 0:
        return res
    return replace(
        res,
        value=scale_back(res.value, k, what="lambda_max"),
        residual_norm=float(np.ldexp(res.residual_norm, k)),
    )


def _check_options(method: str, tol: float, maxiter: int | None, seed: int | None) -> None:
    """Validate the solver options of :func:`numerical_sharpness` (one place, named parameters)."""
    if method not in NUMERICAL_METHODS:
        raise ValueError(f"method must be one of {NUMERICAL_METHODS}, got {method!r}")
    if isinstance(tol, bool) or not isinstance(tol, int | float | np.floating | np.integer):
        raise ValueError(f"tol must be a finite number in [0, 1), got {tol!r}")
    if not (np.isfinite(tol) and 0 <= tol < 1):
        raise ValueError(f"tol must be a finite number in [0, 1), got {tol!r}")
    if maxiter is not None and (
        isinstance(maxiter, bool) or not isinstance(maxiter, int | np.integer) or maxiter < 1
    ):
        raise ValueError(f"maxiter must be a positive integer or None, got {maxiter!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")


def numerical_sharpness(
    factors: FactorsLike,
    *,
    target: Any = None,
    method: str = "lanczos",
    tol: float = 1e-10,
    seed: int | None = 0,
    maxiter: int | None = None,
    v0: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> EigenResult:
    """Largest algebraic Hessian eigenvalue of eq. 15 at any point, numerically.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        The point ``[W_1, ..., W_L]``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    target : array_like, optional
        ``M``, shape ``(d_L, d_0)``; None means the factors' own product. Any point is
        allowed.
    method : {"lanczos", "dense", "power"}
        ``"lanczos"``: block Lanczos with full reorthogonalization
        (:func:`dmfsharp.linalg.lanczos.top_eigenpairs`), stopped on the explicit
        residual ``||H v - value v|| <= tol |value|`` (so ``|lambda - value| <= tol
        |value|`` for an eigenvalue ``lambda``).
        ``"dense"``: the full Hessian and ``eigh`` (``N <= 6000``).
        ``"power"``: power iteration with the same stopping rule; it converges to the
        eigenvalue of largest magnitude, so when that is negative it is rerun on
        ``H - value I`` to reach the largest algebraic one.
    tol : float
        Relative residual tolerance, ``0 <= tol < 1`` (``0``: as far as rounding allows).
    seed : int or None
        Seed of the random start and of the random admixture every start gets
        (``numpy.random.default_rng``).
    maxiter : int, optional
        Cap on Hessian-vector products (Lanczos, default ``10000``) or power steps
        (default ``10000``); must be positive.
    v0 : sequence of array_like, optional
        A start vector shaped like the factors (e.g. the previous eigenvector, for a
        warm start along a trajectory). A seeded random admixture is added (and Lanczos
        adds an independent random column), so a start orthogonal to the top eigenvector
        still finds it.
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``, one per column; the loss is then
        ``c ||Y - P X||_F^2`` (:mod:`dmfsharp.objective`).
    covariance : array_like, optional
        ``Sigma_x = E[x x^T]`` of shape ``(d_0, d_0)``, symmetric positive semidefinite,
        instead of samples.
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        The loss scale ``c`` with data (:func:`dmfsharp.objective.make_objective`);
        default ``"sum"`` (``c = 1``, eq. 15) for samples, ``"mean"`` for a covariance.
    weight_decay : float, optional
        ``mu >= 0``: the Hessian of ``L + mu sum_k ||W_k||_F^2`` (``2 mu I`` added through the
        Hessian-vector product).

    Returns
    -------
    EigenResult
        ``value`` (float), the unit eigenvector ``vector`` shaped like the factors,
        ``residual_norm``, ``num_hvp``, ``converged=True`` and ``method``.

    Raises
    ------
    ValueError
        For invalid options or factors.
    ConvergenceError
        If Lanczos or power iteration does not meet ``tol`` within ``maxiter``;
        ``partial`` holds the best :class:`EigenResult` (``converged=False``).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15; Lemma 3 and eqs. 56-58 for the Hessian).

    Examples
    --------
    >>> import numpy as np
    >>> res = numerical_sharpness([np.array([[2.0]]), np.array([[3.0]])], method="dense")
    >>> round(res.value, 10), res.num_hvp
    (26.0, 2)
    """
    chain = as_chain(factors)
    _check_options(method, tol, maxiter, seed)
    kw = dict(
        target=target,
        data=data,
        covariance=covariance,
        normalization=normalization,
        weight_decay=weight_decay,
    )
    n = chain.num_params
    start = None
    if v0 is not None:
        start = np.concatenate([b.ravel() for b in check_like(chain, v0, "v0")])
    chain, kw, k = _rescaled(chain, kw)
    if k:
        try:
            return _scaled_result(
                numerical_sharpness(
                    chain, v0=None if start is None else chain.unflatten(start), method=method,
                    tol=tol, maxiter=maxiter, seed=seed, **kw,
                ),
                k,
            )  # fmt: skip
        except ConvergenceError as exc:
            partial = (
                exc.partial if not isinstance(exc.partial, EigenResult) else _scaled_result(exc.partial, k)
            )
            raise ConvergenceError(str(exc), partial=partial) from None

    if method == "dense" or n < 3:
        h = dense_hessian(chain, **kw)
        w, v = np.linalg.eigh(h)
        lam, vec = float(w[-1]), v[:, -1]
        res = float(np.linalg.norm(h @ vec - lam * vec))
        return EigenResult(lam, chain.unflatten(vec), res, n, True, "dense")

    op = hessian_operator(chain, **kw)

    def matmat(x: np.ndarray) -> np.ndarray:  # column by column, each as a flat vector
        return np.column_stack([op.matvec(x[:, j]) for j in range(x.shape[1])])

    if method == "lanczos":
        budget = 10000 if maxiter is None else int(maxiter)
        try:
            pairs = top_eigenpairs(
                matmat, n, v0=start, rtol=float(tol), want_vectors=True, seed=seed, max_products=budget
            )
        except ConvergenceError as exc:
            p = cast("EigenPairs | None", exc.partial)  # top_eigenpairs' partial result
            partial = None
            if p is not None:
                assert p.vectors is not None  # want_vectors=True
                partial = EigenResult(
                    float(p.values[0]), chain.unflatten(p.vectors[:, 0]), float(p.residuals[0]),
                    p.num_products, False, "lanczos",
                )  # fmt: skip
            raise ConvergenceError(f"numerical_sharpness (lanczos): {exc}", partial=partial) from None
        assert pairs.vectors is not None  # want_vectors=True
        vec = pairs.vectors[:, 0]
        return EigenResult(
            float(pairs.values[0]), chain.unflatten(vec), float(pairs.residuals[0]), pairs.num_products,
            True, "lanczos",
        )  # fmt: skip

    return _power(op.matvec, chain, n, start, float(tol), seed, POWER_MAXITER if maxiter is None else maxiter)


def _power(
    matvec: Callable[[np.ndarray], np.ndarray],
    chain: FactorChain,
    n: int,
    start: np.ndarray | None,
    tol: float,
    seed: int | None,
    maxiter: int,
) -> EigenResult:
    """Power iteration (shifted when the dominant eigenvalue is negative), residual-stopped."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    noise /= np.linalg.norm(noise)
    nrm = 0.0 if start is None else float(np.linalg.norm(start))
    # the same seeded admixture as Lanczos: a start orthogonal to the top eigenvector
    # (e.g. the second eigenvector) must still reach the top
    v = noise if nrm == 0 or start is None else start / nrm + ADMIXTURE * noise
    count = [0]

    def apply(x: np.ndarray) -> np.ndarray:
        count[0] += 1
        return np.asarray(matvec(x), dtype=np.float64).reshape(-1)

    lam, x, res, ok = _power_run(apply, v, tol, maxiter, 0.0)
    if ok and lam < 0:  # the dominant eigenvalue is negative: shift it to zero
        lam2, x2, res2, ok = _power_run(apply, x + ADMIXTURE * noise, tol, maxiter, lam)
        lam, x, res = lam2, x2, res2  # Rayleigh quotients are of H itself
    result = EigenResult(lam, chain.unflatten(x), res, count[0], ok, "power")
    if not ok:
        raise ConvergenceError(
            f"numerical_sharpness (power): the residual did not reach tol={tol:g} within "
            f"maxiter={maxiter} steps",
            partial=result,
        )
    return result


def _power_run(
    apply: Callable[[np.ndarray], np.ndarray], v: np.ndarray, tol: float, maxiter: int, shift: float
) -> tuple[float, np.ndarray, float, bool]:
    """Iterate ``v <- (H - shift) v``; stop when ``||H v - lam v|| <= tol |lam|`` (or 0 floor)."""
    v = v / np.linalg.norm(v)
    eps = np.finfo(np.float64).eps
    lam, res = 0.0, np.inf
    for _ in range(maxiter):
        hv = apply(v)
        lam = float(v @ hv)
        r = float(np.linalg.norm(hv - lam * v))
        res = r
        scale = float(np.linalg.norm(hv))
        if r <= max(tol * abs(lam), 32 * eps * scale):
            return lam, v, r, True
        w = hv - shift * v
        nw = float(np.linalg.norm(w))
        if nw == 0:  # v is an eigenvector of H with eigenvalue shift
            return lam, v, r, r <= max(tol * abs(lam), 32 * eps * scale)
        v = w / nw
    return lam, v, res, False


def objective_eigenvalues(
    obj: Objective,
    k: int = 1,
    which: str = "LA",
    *,
    tol: float = 1e-10,
    seed: int | None = 0,
    max_products: int | None = None,
    shift: float | None = None,
) -> EigenPairs:
    """The ``k`` largest (``"LA"``) or smallest (``"SA"``) Hessian eigenvalues of ``obj``, certified.

    Block Lanczos (:func:`dmfsharp.linalg.lanczos.top_eigenpairs`) on the exact
    Hessian-vector product of :mod:`dmfsharp.loss`; see :func:`numerical_eigenvalues`.
    With ``which="SA"`` and a ``shift`` (an upper bound on the spectrum, e.g.
    ``lambda_max``) the largest eigenvalues ``mu`` of ``shift I - H`` are found instead
    and returned as ``shift - mu``: the same Krylov space, but the stopping rule
    ``||H v - theta v|| <= tol (shift - theta)`` is relative to the spread of the
    spectrum, not to ``|theta|``, which near a minimum is tiny.
    """
    n = obj.chain.num_params
    apply = objective_flat_hvp(obj)
    flip = which == "SA" and shift is not None
    sigma = 0.0 if shift is None else float(shift)

    def matmat(x: np.ndarray) -> np.ndarray:
        hx = np.column_stack([apply(x[:, j]) for j in range(x.shape[1])])
        return sigma * x - hx if flip else hx

    try:
        res = top_eigenpairs(
            matmat,
            n,
            k=min(k, n),
            which="LA" if flip else which,
            rtol=float(tol),
            seed=seed,
            max_products=max_products,
        )
    except ConvergenceError as exc:
        p = exc.partial
        if flip and isinstance(p, EigenPairs):
            p = EigenPairs(sigma - p.values, p.vectors, p.residuals, p.num_products, False)
        raise ConvergenceError(f"numerical_eigenvalues ({which}): {exc}", partial=p) from None
    if flip:
        return EigenPairs(sigma - res.values, res.vectors, res.residuals, res.num_products, res.converged)
    return res


def numerical_eigenvalues(
    factors: FactorsLike,
    *,
    k: int = 1,
    which: str = "LA",
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    tol: float = 1e-10,
    seed: int | None = 0,
) -> EigenPairs:
    """The ``k`` largest or smallest Hessian eigenvalues at any point, with their residuals.

    Block Lanczos with full reorthogonalization on the exact Hessian-vector product
    (eqs. 56-58), stopped when every wanted pair has ``||H v - theta v|| <= max(tol
    |theta|, 32 eps ||H||_est)``; then an eigenvalue of ``H`` lies within that residual of
    each ``theta``. The Hessian is indefinite away from minima, so ``which="SA"`` gives its
    most negative curvature (``lambda_min``).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        Any point ``[W_1, ..., W_L]``.
    k : int
        How many eigenvalues (at most ``N``).
    which : {"LA", "SA"}
        Largest or smallest algebraic.
    target : array_like, optional
        ``M`` of shape ``(d_L, d_0)``, float64; or ``Y`` of shape ``(d_L, n)`` with
        ``data``, or ``T`` with ``covariance``. None means the factors' own output (a
        global minimum).
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``, one per column; the loss is then
        ``c ||Y - P X||_F^2`` (:mod:`dmfsharp.objective`).
    covariance : array_like, optional
        ``Sigma_x = E[x x^T]`` of shape ``(d_0, d_0)``, symmetric positive semidefinite,
        instead of samples.
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        The loss scale ``c`` with data (:func:`dmfsharp.objective.make_objective`);
        default ``"sum"`` (``c = 1``, eq. 15) for samples, ``"mean"`` for a covariance.
    tol : float
        Relative residual tolerance.
    seed : int or None
        Seed of the random start (``numpy.random.default_rng``).

    Returns
    -------
    EigenPairs
        ``values`` (descending for ``"LA"``, ascending for ``"SA"``), ``residuals``
        ``||H v - theta v||``, ``num_products``; ``vectors`` is None.

    Raises
    ------
    ValueError
        Invalid options or factors.
    ConvergenceError
        If the residuals do not reach ``tol``; ``partial`` holds the pairs so far.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Lemma 3, eqs. 56-58).

    Examples
    --------
    At ``w = (2, 3)`` with ``M = 0`` the Hessian is ``[[18, 24], [24, 8]]``, eigenvalues
    ``13 +- sqrt(601)``:

    >>> import numpy as np
    >>> lo = numerical_eigenvalues([np.array([[2.0]]), np.array([[3.0]])], target=[[0.0]], which="SA")
    >>> bool(abs(lo.values[0] - (13 - np.sqrt(601))) <= 1e-12 * 40)
    True
    """
    k = check_positive_int(k, "k")
    if which not in ("LA", "SA"):
        raise ValueError(f"which must be 'LA' or 'SA', got {which!r}")
    _check_options("lanczos", tol, None, seed)
    chain, kw, shift = _rescaled(
        as_chain(factors), dict(target=target, data=data, covariance=covariance, normalization=normalization)
    )
    pairs = objective_eigenvalues(make_objective(chain, **kw), k, which, tol=tol, seed=seed)
    if shift == 0:
        return pairs
    values = np.array([scale_back(float(v), shift, what="the eigenvalue") for v in pairs.values])
    return replace(pairs, values=values, residuals=np.ldexp(pairs.residuals, shift))
