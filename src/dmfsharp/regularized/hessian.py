r"""Exact sharpness and spectrum of weight-decay-regularized deep matrix factorization.

.. math::

    L_\mu(w) = \|M - W_L \cdots W_1\|_F^2 + \mu \sum_k \|W_k\|_F^2, \qquad
    \nabla^2 L_\mu = \nabla^2 L_0 + 2 \mu I .

At a minimizer of ``L_mu`` the residual ``R = M - P`` is not zero, so ``nabla^2 L_0`` keeps
its residual term (eqs. 56-58): the Hessian is ``2 K^T K`` + residual term + ``2 mu I``.
Its largest eigenvalue is computed here from the one analytic Hessian-vector product of
:mod:`dmfsharp.loss` (which carries the ``2 mu I`` of :attr:`Objective.weight_decay
<dmfsharp.objective.Objective.weight_decay>`): dense ``eigh`` for small ``N``, certified
Lanczos otherwise, or in closed form when ``d_0 = d_L = 1``:

**Scalar case** (``d_0 = d_L = 1``, ``mu > 0``). A critical point is balanced and of rank
one, ``W_k = s r_k r_{k-1}^T`` with unit ``r_k`` (``r_0, r_L = +-1``), ``P = +- s^L``.
Rotating each hidden space so that ``r_k = e_1`` (an isometry of parameter space) makes
the Hessian block diagonal. With ``rho = (|m| - |P|) s^{L-2}`` (``= mu`` at a critical
point with ``s > 0``, by stationarity ``mu = s^{L-2}(sigma - s^L)``):

* the ``L`` entries ``(U_k)_{11}``: ``(2 s^{2L-2} - 2 rho) 1 1^T + (2 rho + 2 mu) I``, with
  eigenvalues ``2 L s^{2L-2} - 2 (L-1) rho + 2 mu`` (once) and ``2 rho + 2 mu`` (``L-1``
  times);
* for each hidden layer ``j`` and each hidden coordinate ``c >= 2``, the pair
  ``((U_{j+1})_{1c}, (U_j)_{c1})``: ``[[2 mu, -2 rho], [-2 rho, 2 mu]]``, eigenvalues
  ``2 mu +- 2 rho`` (``0`` and ``4 mu`` at a critical point: the orthogonal freedom);
* every other entry: ``2 mu``.

So at a nonzero critical point ``lambda_max = max(2 L s^{2L-2} - 2 (L-2) mu, 4 mu)`` and
the whole spectrum depends on ``(s, mu, L)`` and the widths only: it is the same at every
minimizer. At ``s = 0`` the formulas hold with ``0^0 = 1``: ``2 mu`` for ``L >= 3``,
``2 mu +- 2|m|`` for ``L = 2``.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Lemma 3, eqs. 56-58, Theorem 4).
A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..chain import FactorsLike
from ..errors import ConvergenceError
from ..loss import dense_hessian, objective_loss
from ..minimum import STATIONARY_RTOL, require_critical
from ..numeric import numerical_sharpness
from ..objective import Objective, make_objective
from ..validate import check_choice, check_positive_float
from .scalar import scalar_minimizer
from .spectrum import regularized_minimum_spectrum

__all__ = [
    "REGULARIZED_SHARPNESS_METHODS",
    "regularized_scalar_spectrum",
    "regularized_top",
    "regularized_spectrum",
    "is_regularized_global_minimizer",
]

#: Routes accepted by :func:`regularized_top` (``sharpness(..., weight_decay=, method=)``).
REGULARIZED_SHARPNESS_METHODS = ("auto", "scalar", "dense", "lanczos")

#: Largest ``N`` for which ``method="auto"`` uses the dense Hessian (Lanczos above, dense as
#: its fallback up to 6000).
DENSE_MAX_PARAMS = 600

#: Relative agreement with the global minimizer for ``method="auto"`` to take the block spectrum.
BLOCKS_RTOL = 1e-12

#: Relative agreement of the value and the singular values of ``P`` with the global minimizer's.
GLOBAL_RTOL = 1e-9


def objective_keywords(obj: Objective) -> dict[str, Any]:
    """The public keywords that rebuild ``obj`` (for the numerical routes)."""
    kw: dict[str, Any] = dict(target=obj.target, weight_decay=obj.weight_decay)
    if obj.samples is not None:
        kw.update(data=obj.samples, normalization=obj.normalization)
    elif obj.source == "covariance":
        kw.update(covariance=obj.gram, normalization=obj.normalization)
    return kw


def _scalar_spectrum(obj: Objective) -> np.ndarray:
    chain, mu = obj.chain, obj.weight_decay
    assert obj.target is not None  # checked by the callers
    L = chain.depth
    s = float(np.prod([np.linalg.norm(w) for w in chain.factors])) ** (1.0 / L)
    p = float(chain.product[0, 0])
    rho = (abs(float(obj.target[0, 0])) - abs(p)) * (s ** (L - 2) if L > 2 else 1.0)
    top = 2.0 * L * s ** (2 * L - 2) - 2.0 * (L - 1) * rho + 2.0 * mu
    n_rot = sum(d - 1 for d in chain.dims[1:-1])
    rest = chain.num_params - L - 2 * n_rot
    parts = [
        [top],
        [2.0 * rho + 2.0 * mu] * (L - 1),
        [2.0 * mu + 2.0 * rho] * n_rot,
        [2.0 * mu - 2.0 * rho] * n_rot,
        [2.0 * mu] * rest,
    ]
    return np.sort(np.concatenate([np.asarray(x, dtype=float) for x in parts]))


def _scalar_applies(obj: Objective) -> bool:
    d = obj.chain.dims
    return obj.is_identity and obj.target is not None and d[0] == d[-1] == 1 and obj.weight_decay > 0


def regularized_scalar_spectrum(
    factors: FactorsLike, *, target: Any, weight_decay: float, gradient_rtol: float = STATIONARY_RTOL
) -> np.ndarray:
    """All ``N`` Hessian eigenvalues of ``L_mu`` at a critical point with ``d_0 = d_L = 1``.

    The closed form of the module text (balanced rank-one critical points), ascending.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        A critical point ``[W_1, ..., W_L]`` of ``L_mu``, ``d_0 = d_L = 1``.
    target : array_like, shape (1, 1)
        ``M``.
    weight_decay : float
        ``mu > 0``.
    gradient_rtol : float
        Criticality gate (:func:`dmfsharp.minimum.stationarity`).

    Returns
    -------
    ndarray, shape (N,)

    Raises
    ------
    ValueError
        If ``d_0 != 1`` or ``d_L != 1``, or ``weight_decay`` is not positive.
    NotAMinimumError
        If the point is not a critical point of ``L_mu``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Lemma 3, eqs. 56-58, Theorem 4).

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import regularized_minimizer
    >>> chain = regularized_minimizer(np.array([[4.0]]), (1, 2, 1), weight_decay=3.0)
    >>> regularized_scalar_spectrum(chain, target=[[4.0]], weight_decay=3.0).tolist()  # s^2 = 1
    [0.0, 4.0, 12.0, 12.0]
    """
    obj = make_objective(factors, target, weight_decay=weight_decay)
    if not _scalar_applies(obj):
        raise ValueError(
            f"the scalar closed form needs d_0 = d_L = 1, a target and weight_decay > 0, got dims "
            f"{obj.chain.dims} and weight_decay = {obj.weight_decay!r}"
        )
    require_critical(obj, "the scalar closed form", check_positive_float(gradient_rtol, "gradient_rtol"))
    return _scalar_spectrum(obj)


def regularized_top(obj: Objective, method: str = "auto", *, seed: int | None = 0) -> float:
    """Largest Hessian eigenvalue of ``L_mu`` at a critical point, exactly.

    The engine of :func:`dmfsharp.sharpness` with ``weight_decay > 0``. Routes:
    ``"scalar"``, the closed form (``d_0 = d_L = 1``, eq. 15, ``mu > 0``); ``"dense"``,
    ``eigh`` of the dense Hessian; ``"lanczos"``, certified block Lanczos at machine
    precision, accepted only if ``||H v - lambda v|| <= 1e-11 max(1, |lambda|)``.
    ``"auto"``: scalar where it applies; the exact block spectrum
    (:func:`regularized_minimum_spectrum`) at a global minimizer confirmed to ``1e-12``
    (:func:`is_regularized_global_minimizer`); else dense for ``N <= 600`` and Lanczos above
    (dense again if Lanczos misses its bound and ``N <= 6000``).

    Raises
    ------
    NotAMinimumError
        If the point is not a critical point of ``L_mu`` (saddles such as 0 pass).
    ConvergenceError
        If Lanczos does not meet its residual bound.
    ValueError
        For an unknown method, or ``"scalar"`` where it does not apply.
    """
    method = check_choice(method, REGULARIZED_SHARPNESS_METHODS, "method (with weight_decay > 0)")
    require_critical(obj, "sharpness")
    chain, mu = obj.chain, obj.weight_decay
    if method == "scalar" and not _scalar_applies(obj):
        raise ValueError(
            f"method='scalar' needs d_0 = d_L = 1, eq. 15 and weight_decay > 0, got dims {chain.dims}"
        )
    auto = method == "auto"
    if auto:
        if _scalar_applies(obj):
            method = "scalar"
        elif is_regularized_global_minimizer(obj, rtol=BLOCKS_RTOL):
            assert obj.target is not None
            return float(regularized_minimum_spectrum(obj.target, chain.dims, weight_decay=mu)[-1])
        else:
            method = "dense" if chain.num_params <= DENSE_MAX_PARAMS else "lanczos"
    if method == "scalar":
        return float(_scalar_spectrum(obj)[-1])
    if chain.depth >= 3 and not any(np.any(w) for w in chain.factors):
        return 2.0 * mu  # P has no terms of degree < 3, so the Hessian of L_0 at 0 is 0
    kw = objective_keywords(obj)
    if method == "dense":
        return numerical_sharpness(chain, method="dense", **kw).value
    res = numerical_sharpness(chain, method="lanczos", tol=0.0, seed=seed, **kw)
    bound = 1e-11 * max(1.0, abs(res.value))
    if res.residual_norm > bound and auto and chain.num_params <= 6000:
        return numerical_sharpness(chain, method="dense", **kw).value
    if res.residual_norm > bound:
        raise ConvergenceError(
            f"Lanczos did not reach ||H v - lambda v|| <= {bound:.1e} (got {res.residual_norm:.1e}); "
            "use method='dense' for N <= 6000",
            partial=res,
        )
    return res.value


def _global_minimum_value(obj: Objective) -> tuple[float, np.ndarray]:
    """``(min L_mu, s^L)``: the value and end-to-end singular values of the global minimizer."""
    assert obj.target is not None
    L, mu = obj.chain.depth, obj.weight_decay
    sig = np.linalg.svd(obj.target, compute_uv=False)
    q = min(min(obj.chain.dims), sig.size)
    s = np.array([scalar_minimizer(float(x), L, weight_decay=mu) for x in sig[:q]])
    value = float(np.sum((sig[:q] - s**L) ** 2 + mu * L * s**2) + np.sum(sig[q:] ** 2))
    return value, s**L


def is_regularized_global_minimizer(obj: Objective, rtol: float = GLOBAL_RTOL) -> bool:
    """Whether ``obj``'s point is a critical point of ``L_mu`` with the global minimum's value and ``P``.

    Eq. 15 only (the reduction to the scalar problems needs ``Sigma_x = I``), ``mu > 0``: the
    value of ``L_mu`` and the singular values of ``P`` agree with those of
    :func:`dmfsharp.regularized_minimizer` to ``rtol`` and the gradient vanishes
    (:func:`dmfsharp.minimum.stationarity`).
    """
    if not (obj.is_identity and obj.target is not None and obj.weight_decay > 0):
        return False
    value, p_sv = _global_minimum_value(obj)
    if abs(objective_loss(obj) - value) > rtol * max(value, float(np.vdot(obj.target, obj.target))):
        return False
    sv = np.linalg.svd(obj.chain.product, compute_uv=False)[: p_sv.size]
    if np.max(np.abs(sv - p_sv), initial=0.0) > rtol * max(float(np.max(sv, initial=0.0)), 1e-300):
        return False
    try:
        require_critical(obj, "is_regularized_global_minimizer")
    except ValueError:
        return False
    return True


def regularized_spectrum(obj: Objective, k: int | None = None) -> np.ndarray:
    """All ``N`` Hessian eigenvalues of ``L_mu`` (descending, the top ``k`` if given) at a critical point.

    The exact block-diagonal spectrum (:func:`regularized_minimum_spectrum`) at a confirmed
    global minimizer (:func:`is_regularized_global_minimizer`); ``eigvalsh`` of the dense
    Hessian at any other critical point (``N <= 6000``). The engine of
    :func:`dmfsharp.hessian_spectrum` with ``weight_decay > 0``.

    Raises
    ------
    NotAMinimumError
        If the point is not a critical point of ``L_mu``.
    """
    require_critical(obj, "hessian_spectrum")
    if is_regularized_global_minimizer(obj):
        ev = regularized_minimum_spectrum(obj.target, obj.chain.dims, weight_decay=obj.weight_decay)
    else:
        ev = np.linalg.eigvalsh(dense_hessian(obj.chain, **objective_keywords(obj)))
    out = ev[::-1].copy()
    return out if k is None else out[:k]
