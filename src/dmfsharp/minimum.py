r"""Whether the closed forms hold at a point: the minimum test (issue 9 item 6).

A point is accepted as a global minimum only when (i) the residual correlation ``G`` is
zero to its float64 rounding and (ii) the residual part of the Hessian that the closed
forms drop (eqs. 56-58) is provably below their stated accuracy, ``MINIMUM_RTOL``
relative to ``lambda_max``: :func:`residual_curvature_bound` bounds it by
``2c ||G||_2`` times the Perron root of the matrix of products of the factors' spectral
norms. Cancelling factors can make ``||G||`` tiny while the dropped curvature is not;
such points are refused with :class:`~dmfsharp.errors.NotAMinimumError`.

With weight decay (``mu > 0``, issue 15) the minima have ``G != 0``; the exact routes of
:mod:`dmfsharp.regularized` need a critical point of ``L_mu`` instead:
:func:`stationarity` measures ``||grad L_mu||`` against the size of its terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from .chain import FactorsLike
from .errors import NotAMinimumError
from .loss import objective_gradient
from .objective import Objective, make_objective
from .s_matrix import gauss_newton_top, sigma_max_sq

__all__ = [
    "MINIMUM_RTOL",
    "STATIONARY_RTOL",
    "stationarity",
    "require_critical",
    "residual_curvature_bound",
    "require_minimum",
    "minimum_residual",
    "is_minimum",
]

#: Stated relative accuracy of the closed forms; the dropped residual curvature must be below it.
MINIMUM_RTOL = 1e-12


def residual_curvature_bound(obj: Objective, g: np.ndarray | None = None) -> float:
    r"""Upper bound on ``||H - 2c K_F^T K_F||_2``, the residual curvature the closed forms drop.

    By eqs. 56-58 the dropped term is ``-2c <G, P''(0)>`` with
    ``P''(0) = 2 sum_{i<j} A_j U_j (W_{j-1} ... W_{i+1}) U_i B_i``. With
    ``|<G, X>| <= ||G||_2 ||X||_*`` and ``||A U M V B||_* <= ||A||_2 ||U||_F ||M||_2
    ||V||_F ||B||_2``, and each partial product bounded by the product of the factors'
    spectral norms ``s_l``,

    .. math::

        \|H - 2c K_F^\top K_F\|_2 \le 2c\, \|G\|_2\, \lambda_{\max}(\Pi), \qquad
        \Pi_{ij} = \prod_{l \ne i, j} s_l \ (i \ne j), \quad \Pi_{ii} = 0,

    since ``sum_{i<j} Pi_ij |u_i| |u_j| <= lambda_max(Pi) / 2`` for a unit vector ``u``
    (``Pi`` has nonnegative entries). Zero when ``G = 0``.
    """
    if g is None:
        g = obj.residual()[0]
    if not np.any(g):
        return 0.0
    chain = obj.chain
    L = chain.depth
    s = np.sqrt([sigma_max_sq(w) for w in chain.factors])
    pi = np.zeros((L, L))
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(L):
            for j in range(i + 1, L):
                mask = np.ones(L, dtype=bool)
                mask[[i, j]] = False
                pi[i, j] = pi[j, i] = float(np.prod(s[mask]))
        top = float(scipy.linalg.eigvalsh(pi)[-1]) if L > 1 else 0.0
        return 2.0 * obj.scale * float(np.sqrt(sigma_max_sq(g))) * top


#: Relative gradient norm ``||grad L_mu|| / scale`` up to which a point counts as critical.
STATIONARY_RTOL = 1e-8


def stationarity(obj: Objective) -> tuple[float, float]:
    """``(||grad L_mu||_F, scale)``: the gradient norm and a bound on the size of its terms.

    The gradient is ``-2c A_k^T G B_k^T + 2 mu W_k``; with ``G = Y_G - P_G`` (``M - P``,
    ``Y X^T - P X X^T`` or ``(T - P) Sigma_x``) each term is at most
    ``2c ||A_k||_F ||B_k||_F (||Y_G||_F + ||P_G||_F) + 2 mu ||W_k||_F``; ``scale`` is their sum,
    so ``||grad|| / scale`` is a relative criticality (0 / 0 counts as critical).
    """
    chain = obj.chain
    grad = objective_gradient(obj)
    norm = float(np.sqrt(sum(float(np.vdot(x, x)) for x in grad)))
    p = chain.product
    if obj.target is None:
        parts = 2.0 * float(np.linalg.norm(obj.times_gram(p)))
    elif obj.samples is not None:
        parts = float(np.linalg.norm(obj.target @ obj.samples.T)) + float(np.linalg.norm(p @ obj.gram))
    else:
        parts = float(np.linalg.norm(obj.times_gram(obj.target))) + float(np.linalg.norm(obj.times_gram(p)))
    scale = 2.0 * sum(
        obj.scale * float(np.linalg.norm(a)) * float(np.linalg.norm(b)) * parts
        + obj.weight_decay * float(np.linalg.norm(w))
        for a, b, w in zip(chain.suffix, chain.prefix, chain.factors, strict=True)
    )
    return norm, scale


def require_critical(obj: Objective, what: str, rtol: float = STATIONARY_RTOL) -> None:
    """Raise :class:`NotAMinimumError` unless ``||grad L_mu|| <= rtol * scale`` (:func:`stationarity`)."""
    norm, scale = stationarity(obj)
    if norm > rtol * scale:
        raise NotAMinimumError(
            f"{what} with weight_decay = {obj.weight_decay!r} holds only at a critical point of "
            f"L_mu, but ||grad L_mu|| = {norm:.3e} > {rtol:.1e} x {scale:.3e}; use "
            "numerical_sharpness(factors, target=..., weight_decay=...) at an arbitrary point"
        )


def _not_a_minimum(obj: Objective, what: str, detail: str) -> NotAMinimumError:
    if obj.is_identity:
        route = (
            "use numerical_sharpness(factors, target=M) at this point (or pass target=None "
            "to treat the factors as a minimum of their own product)"
        )
    else:
        kw = "data=X" if obj.samples is not None else "covariance=Sigma_x"
        route = (
            f"use numerical_sharpness(factors, {kw}, target=...) at this point, or "
            "gauss_newton_sharpness for the Gauss-Newton part"
        )
    return NotAMinimumError(f"{what} holds only at a global minimum, but {detail}; {route}")


def require_minimum(obj: Objective, what: str, top: Callable[[], float] | None = None) -> None:
    """Raise :class:`NotAMinimumError` unless the closed forms are exact at this point.

    Two conditions: the residual correlation ``G`` is zero to its float64 rounding
    (:meth:`Objective.residual_terms`), and the residual curvature the closed forms drop
    (:func:`residual_curvature_bound`) is at most ``MINIMUM_RTOL lambda_max`` (zero when
    ``lambda_max = 0``). ``top`` computes ``lambda_max`` (default :func:`gauss_newton_top`);
    it is called only when the bound is not zero. With weight decay the test is
    :func:`require_critical` instead (the minima of ``L_mu`` have ``G != 0``).
    """
    if obj.weight_decay:
        require_critical(obj, what)
        return
    if obj.target is None:
        return
    g, _, tol = obj.residual_terms()
    res = float(np.linalg.norm(g))
    if res > tol:
        if obj.is_identity:
            which = "||M - W_L...W_1||_F"
        elif obj.samples is not None:
            which = "||(Y - W_L...W_1 X) X^T||_F"
        else:
            which = "||(T - W_L...W_1) Sigma_x||_F"
        raise _not_a_minimum(obj, what, f"{which} = {res:.3e} exceeds the rounding tolerance {tol:.1e}")
    bound = residual_curvature_bound(obj, g)
    if bound == 0.0:
        return
    lam = gauss_newton_top(obj) if top is None else top()
    if not bound <= MINIMUM_RTOL * lam:
        raise _not_a_minimum(
            obj,
            what,
            f"the residual curvature the closed form drops may reach {bound:.3e}, above its "
            f"accuracy {MINIMUM_RTOL:g} * lambda_max = {MINIMUM_RTOL * lam:.3e} (cancelling factors "
            "can hide a saddle behind a tiny residual)",
        )


def minimum_residual(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> tuple[float, float]:
    """``(||G||_F, tolerance)``: the residual and the largest one taken as zero.

    ``G = M - P`` for eq. 15; with ``data=X`` (or ``covariance=``) the residual of the
    normal equations, ``(Y - P X) X^T``. The tolerance is the rounding error of forming
    ``G`` in float64: ``16 eps (L + max_i d_i) max(||M||_F, prod_i ||W_i||_F)`` for eq. 15
    (see :meth:`dmfsharp.objective.Objective.residual_terms`).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
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

    Returns
    -------
    residual : float
        ``||G||_F`` (in the units of the target, times ``||X||`` with data).
    tolerance : float
        The largest ``||G||_F`` that float64 rounding explains.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: eq. 15 and eq. 19 (the global minima, ``P = M``).

    Examples
    --------
    >>> import numpy as np
    >>> bool(minimum_residual([np.eye(2), np.eye(2)], target=np.zeros((2, 2)))[0] == np.sqrt(2))
    True
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    g, _, tol = obj.residual_terms()
    return float(np.linalg.norm(g)), tol


def is_minimum(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> bool:
    """Whether the closed forms hold here: a global minimum of eq. 15 (eq. 19) or of the data loss.

    ``True`` when the residual is zero to working precision (:func:`minimum_residual`)
    and the residual curvature the closed forms drop is provably below their accuracy
    (:func:`residual_curvature_bound`, relative ``MINIMUM_RTOL``).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
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

    Returns
    -------
    bool
        True at a global minimum (to working precision), False elsewhere.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: eq. 19 (the global minima), Lemma 3 (eqs. 56-58:
    the residual term of the Hessian vanishes there, so ``H = 2 K^T K``).

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import section6_example
    >>> is_minimum(section6_example())
    True
    >>> w = [np.array([[1e-6], [1e-6]]), np.array([[1e6, -1e6], [0.0, 0.0]]), np.array([[0.0, 1.0]])]
    >>> is_minimum(w, target=[[3e-14]])  # a saddle hidden behind a tiny residual
    False
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    try:
        require_minimum(obj, "is_minimum")
    except NotAMinimumError:
        return False
    return True
