r"""Loss, derivatives and exact sharpness of weight-decay-regularized deep matrix factorization.

.. math::

    L_\mu(w) = \|M - W_L \cdots W_1\|_F^2 + \mu \sum_k \|W_k\|_F^2, \qquad
    \nabla^2 L_\mu = \nabla^2 L_0 + 2 \mu I .

At a minimizer of ``L_mu`` the residual ``R = M - P`` is not zero, so ``nabla^2 L_0`` keeps
its residual term (eqs. 56-58): the Hessian is ``2 K^T K`` + residual term + ``2 mu I``.
Its largest eigenvalue is ``lambda_max(nabla^2 L_0) + 2 mu`` exactly, computed here from
the analytic Hessian-vector product of :func:`dmfsharp.hessian_vector_product` (dense
``eigh`` for small ``N``, Lanczos with a residual check otherwise), or in closed form when
``d_0 = d_L = 1``:

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

from collections.abc import Sequence
from typing import Any

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, check_like, check_target
from .errors import ConvergenceError, NotAMinimumError
from .limits import check_allocation
from .loss import gradient, hessian_vector_product, loss
from .numeric import numerical_sharpness
from .regularized import check_weight_decay

__all__ = [
    "REGULARIZED_SHARPNESS_METHODS",
    "regularized_loss",
    "regularized_gradient",
    "regularized_hessian_vector_product",
    "regularized_critical_residual",
    "regularized_scalar_spectrum",
    "regularized_sharpness",
]

#: Routes accepted by ``regularized_sharpness(..., method=...)``.
REGULARIZED_SHARPNESS_METHODS = ("auto", "scalar", "dense", "lanczos")

#: Largest ``N`` for which ``method="auto"`` uses the dense Hessian.
DENSE_MAX_PARAMS = 1500


def regularized_loss(factors: FactorsLike, *, target: Any, weight_decay: float) -> float:
    """``||M - W_L ... W_1||_F^2 + mu sum_k ||W_k||_F^2`` (eq. 15 plus weight decay).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_{k-1})``, float64.
    target : array_like, shape (d_L, d_0)
        ``M``.
    weight_decay : float
        ``mu >= 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> regularized_loss([np.eye(2), 2 * np.eye(2)], target=np.eye(2), weight_decay=0.5)
    7.0
    """
    chain = as_chain(factors)
    mu = check_weight_decay(weight_decay)
    return loss(chain, target=target) + mu * sum(float(np.vdot(w, w)) for w in chain.factors)


def regularized_gradient(factors: FactorsLike, *, target: Any, weight_decay: float) -> list[np.ndarray]:
    """``dL_mu/dW_k = -2 A_k^T (M - P) B_k^T + 2 mu W_k``, W_1 first.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_{k-1})``, float64.
    target : array_like, shape (d_L, d_0)
        ``M``.
    weight_decay : float
        ``mu >= 0``.

    Returns
    -------
    list of ndarray
        One array per factor, shaped like it.

    Examples
    --------
    >>> import numpy as np
    >>> [g.item() for g in regularized_gradient([[[1.0]], [[2.0]]], target=[[2.0]], weight_decay=1.0)]
    [2.0, 4.0]
    """
    chain = as_chain(factors)
    mu = check_weight_decay(weight_decay)
    return [g + 2.0 * mu * w for g, w in zip(gradient(chain, target=target), chain.factors, strict=True)]


def regularized_hessian_vector_product(
    factors: FactorsLike, direction: Sequence[Any], *, target: Any, weight_decay: float
) -> list[np.ndarray]:
    """``nabla^2 L_mu U``: Gauss-Newton part + residual part (eqs. 56-58) + ``2 mu U``.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_{k-1})``, float64.
    target : array_like, shape (d_L, d_0)
        ``M``.
    weight_decay : float
        ``mu >= 0``.
    direction : sequence of array_like
        ``[U_1, ..., U_L]`` shaped like the factors.

    Returns
    -------
    list of ndarray
        ``(H U)_k`` for each factor, W_1 first.
    """
    chain = as_chain(factors)
    mu = check_weight_decay(weight_decay)
    u = check_like(chain, direction, "direction")
    hu = hessian_vector_product(chain, u, target=target)
    return [h + 2.0 * mu * x for h, x in zip(hu, u, strict=True)]


def regularized_critical_residual(
    factors: FactorsLike, *, target: Any, weight_decay: float
) -> tuple[float, float]:
    """``(||grad L_mu||, scale)``: the gradient norm and the size of its terms.

    ``scale = 2 sum_k (||A_k||_F ||B_k||_F (||M||_F + ||P||_F) + mu ||W_k||_F)`` bounds the
    norm of each part of the gradient, so ``||grad|| / scale`` is a relative criticality.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_{k-1})``, float64.
    target : array_like, shape (d_L, d_0)
        ``M``.
    weight_decay : float
        ``mu >= 0``.

    Returns
    -------
    tuple of float
        ``(norm, scale)``.
    """
    chain = as_chain(factors)
    m = check_target(chain, target)
    g = regularized_gradient(chain, target=m, weight_decay=weight_decay)
    mu = check_weight_decay(weight_decay)
    norm = float(np.sqrt(sum(float(np.vdot(x, x)) for x in g)))
    mp = float(np.linalg.norm(m)) + float(np.linalg.norm(chain.product))
    scale = 2.0 * sum(
        float(np.linalg.norm(a)) * float(np.linalg.norm(b)) * mp + mu * float(np.linalg.norm(w))
        for a, b, w in zip(chain.suffix, chain.prefix, chain.factors, strict=True)
    )
    return norm, scale


def _require_critical(chain: FactorChain, m: np.ndarray, mu: float, rtol: float) -> None:
    norm, scale = regularized_critical_residual(chain, target=m, weight_decay=mu)
    if norm > rtol * scale:
        raise NotAMinimumError(
            f"the factors are not a critical point of L_mu (weight_decay = {mu!r}): "
            f"||grad L_mu|| = {norm:.3e} > {rtol:.1e} x {scale:.3e}; use "
            "numerical_sharpness(factors, target=M).value + 2 * weight_decay for the "
            "largest Hessian eigenvalue at an arbitrary point"
        )


def _scalar_spectrum(chain: FactorChain, m: np.ndarray, mu: float) -> np.ndarray:
    L = chain.depth
    s = float(np.prod([np.linalg.norm(w) for w in chain.factors])) ** (1.0 / L)
    p = float(chain.product[0, 0])
    rho = (abs(float(m[0, 0])) - abs(p)) * (s ** (L - 2) if L > 2 else 1.0)
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


def regularized_scalar_spectrum(
    factors: FactorsLike, *, target: Any, weight_decay: float, gradient_rtol: float = 1e-8
) -> np.ndarray:
    """All ``N`` Hessian eigenvalues of ``L_mu`` at a critical point with ``d_0 = d_L = 1``.

    The closed form of the module text (balanced rank-one critical points), ascending.

    Raises
    ------
    ValueError
        If ``d_0 != 1`` or ``d_L != 1``, or ``weight_decay`` is not positive.
    NotAMinimumError
        If ``||grad L_mu|| > gradient_rtol * scale`` (:func:`regularized_critical_residual`).

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp.regularized_minima import regularized_minimizer
    >>> chain = regularized_minimizer(np.array([[4.0]]), (1, 2, 1), weight_decay=3.0)
    >>> regularized_scalar_spectrum(chain, target=[[4.0]], weight_decay=3.0).tolist()  # s^2 = 1
    [0.0, 4.0, 12.0, 12.0]
    """
    chain = as_chain(factors)
    mu = check_weight_decay(weight_decay)
    m = check_target(chain, target)
    if chain.dims[0] != 1 or chain.dims[-1] != 1:
        raise ValueError(f"the scalar closed form needs d_0 = d_L = 1, got dims {chain.dims}")
    if mu <= 0:
        raise ValueError("the scalar closed form needs weight_decay > 0 (balanced critical points)")
    _require_critical(chain, m, mu, gradient_rtol)
    return _scalar_spectrum(chain, m, mu)


def regularized_sharpness(
    factors: FactorsLike,
    *,
    target: Any,
    weight_decay: float,
    method: str = "auto",
    gradient_rtol: float = 1e-8,
    seed: int | None = 0,
) -> float:
    """Largest Hessian eigenvalue of ``L_mu`` at a critical point, exactly.

    ``lambda_max(nabla^2 L_mu) = lambda_max(nabla^2 L_0) + 2 mu`` with the full Hessian of
    the unregularized loss (residual term included, eqs. 56-58).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        A critical point ``[W_1, ..., W_L]`` of ``L_mu``.
    target : array_like, shape (d_L, d_0)
        ``M``.
    weight_decay : float
        ``mu >= 0``.
    method : {"auto", "scalar", "dense", "lanczos"}
        ``"scalar"``: the closed form (``d_0 = d_L = 1``, ``mu > 0``); ``"dense"``: ``eigh``
        of the dense Hessian; ``"lanczos"``: ARPACK at machine precision, accepted only if
        ``||H v - lambda v|| <= 1e-11 max(1, |lambda|)``. ``"auto"``: scalar where it
        applies, else dense for ``N <= 1500``, else Lanczos.
    gradient_rtol : float
        Criticality gate: refuse if ``||grad L_mu|| > gradient_rtol * scale``.
    seed : int or None
        Seed of the Lanczos start vector.

    Returns
    -------
    float

    Raises
    ------
    NotAMinimumError
        If the point is not a critical point of ``L_mu`` (saddles such as 0 pass the gate).
    ConvergenceError
        If Lanczos does not meet its residual bound.

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp.regularized_minima import regularized_minimizer
    >>> chain = regularized_minimizer(np.array([[4.0]]), (1, 3, 1), weight_decay=1.0)
    >>> round(regularized_sharpness(chain, target=[[4.0]], weight_decay=1.0), 10)  # 2 L s^2 = 4 * 3
    12.0
    """
    chain = as_chain(factors)
    mu = check_weight_decay(weight_decay)
    m = check_target(chain, target)
    if method not in REGULARIZED_SHARPNESS_METHODS:
        raise ValueError(f"method must be one of {REGULARIZED_SHARPNESS_METHODS}, got {method!r}")
    if not (np.isfinite(gradient_rtol) and gradient_rtol > 0):
        raise ValueError(f"gradient_rtol must be finite and > 0, got {gradient_rtol!r}")
    _require_critical(chain, m, mu, gradient_rtol)
    scalar_ok = chain.dims[0] == chain.dims[-1] == 1 and mu > 0
    if method == "scalar" and not scalar_ok:
        raise ValueError(f"method='scalar' needs d_0 = d_L = 1 and weight_decay > 0, got dims {chain.dims}")
    if method == "auto":
        method = "scalar" if scalar_ok else ("dense" if chain.num_params <= DENSE_MAX_PARAMS else "lanczos")
    if method == "scalar":
        return float(_scalar_spectrum(chain, m, mu)[-1])
    if chain.depth >= 3 and not any(np.any(w) for w in chain.factors):
        return 2.0 * mu  # P has no terms of degree < 3, so the Hessian of L_0 at 0 is 0
    if method == "dense":
        n = chain.num_params
        check_allocation((n, n), what="the dense Hessian", alternative="method='lanczos'")
        return numerical_sharpness(chain, target=m, method="dense").value + 2.0 * mu
    res = numerical_sharpness(chain, target=m, method="lanczos", tol=0.0, seed=seed)
    bound = 1e-11 * max(1.0, abs(res.value))
    if not res.converged or res.residual_norm > bound:
        raise ConvergenceError(
            f"Lanczos did not reach ||H v - lambda v|| <= {bound:.1e} (got {res.residual_norm:.1e}); "
            "use method='dense' for N <= 6000",
            partial=res,
        )
    return res.value + 2.0 * mu
