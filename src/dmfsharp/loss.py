r"""Loss, gradient, Hessian-vector product and dense Hessian at any point (eqs. 15, 56-58).

The loss is ``L(w) = ||M - W_L ... W_1||_F^2`` (eq. 15: a sum, no 1/2). With the
residual ``R = M - P`` and ``A_k``, ``B_k`` the suffix and prefix products,

.. math::

    \nabla_{W_k} L = -2 A_k^\top R B_k^\top .

For a direction ``U = (U_1, ..., U_L)`` the Hessian-vector product is the derivative
of the gradient along ``U``. Writing ``J(U) = sum_k A_k U_k B_k`` (the derivative of
``P``) and ``dA_k``, ``dB_k`` for the derivatives of the suffix and prefix products,

.. math::

    (H U)_k = 2 A_k^\top J(U) B_k^\top
              - 2\, dA_k^\top R B_k^\top - 2 A_k^\top R\, dB_k^\top ,

whose inner product with ``U`` is eqs. 56-58 (Lemma 3 and its proof, Appendix A.2):
the first term is the Gauss-Newton part ``2 K^T K``, the other two are the residual
term that vanishes at a global minimum. ``dA_k`` and ``dB_k`` are accumulated from each
end with the product rule, so one product costs O(L) matrix products.

The parameter vector used by :func:`hessian_operator` and :func:`dense_hessian`
flattens each factor row-major (C order), W_1 first, exactly as
:meth:`FactorChain.flatten`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .chain import FactorChain, FactorsLike, as_chain, check_like, check_target
from .data import (
    data_terms,
    gradient_data,
    hessian_vector_product_data,
    hvp_closure,
    loss_data,
)

__all__ = [
    "loss",
    "residual",
    "gradient",
    "hessian_vector_product",
    "gauss_newton_vector_product",
    "hessian_operator",
    "dense_hessian",
]

#: Largest ``N`` for which :func:`dense_hessian` builds the ``N x N`` matrix.
DENSE_HESSIAN_MAX_PARAMS = 6000


def residual(factors: FactorsLike, *, target: Any = None) -> np.ndarray:
    """Residual ``R = M - W_L ... W_1`` (zero when ``target`` is None)."""
    chain = as_chain(factors)
    return check_target(chain, target) - chain.product


def loss(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> float:
    """Loss ``||M - W_L ... W_1||_F^2`` of eq. 15.

    With ``data=X`` (or ``covariance=Sigma_x``) and ``normalization=``, the loss is
    that of a deep linear network on data, ``c ||Y - P X||_F^2`` with ``target = Y``
    (see :mod:`dmfsharp.data` for the formulas and conventions).

    Examples
    --------
    >>> import numpy as np
    >>> loss([np.eye(2), 2 * np.eye(2)], target=np.eye(2))
    2.0
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return loss_data(chain, terms, target)
    r = residual(chain, target=target)
    return float(np.vdot(r, r))


def gradient(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> list[np.ndarray]:
    """Gradient ``dL/dW_k = -2 A_k^T R B_k^T`` for each factor, W_1 first.

    Computed by reverse accumulation (one backward sweep of ``L - 1`` products).
    With data: ``-2c A_k^T (Y - P X) X^T B_k^T``.

    With ``data=X`` (or ``covariance=Sigma_x``) and ``normalization=``, the loss is
    that of a deep linear network on data, ``c ||Y - P X||_F^2`` with ``target = Y``
    (see :mod:`dmfsharp.data` for the formulas and conventions).
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return gradient_data(chain, terms, target)
    r = check_target(chain, target) - chain.product
    g = -2.0 * r  # dL/dP
    out = [None] * chain.depth
    c = g  # A_k^T g, starting at k = L
    for k in range(chain.depth - 1, -1, -1):
        out[k] = c @ chain.prefix[k].T
        if k > 0:
            c = chain.factors[k].T @ c
    return out


def _directional_products(chain: FactorChain, u: Sequence[np.ndarray]):
    """``J(U) = sum_k A_k U_k B_k`` and the derivatives ``dA_k``, ``dB_k`` along ``U``."""
    L = chain.depth
    A, B, W = chain.suffix, chain.prefix, chain.factors
    dB = [None] * L
    dB[0] = np.zeros_like(B[0])
    for k in range(1, L):  # B_{k+1} = W_k B_k
        dB[k] = u[k - 1] @ B[k - 1] + W[k - 1] @ dB[k - 1]
    dA = [None] * L
    dA[L - 1] = np.zeros_like(A[L - 1])
    for k in range(L - 2, -1, -1):  # A_k = A_{k+1} W_{k+1}
        dA[k] = dA[k + 1] @ W[k + 1] + A[k + 1] @ u[k + 1]
    j = A[0] @ u[0] + dA[0] @ W[0]  # d(A_1 W_1)
    return j, dA, dB


def gauss_newton_vector_product(factors: FactorsLike, direction: Sequence[Any]) -> list[np.ndarray]:
    """Product of the Gauss-Newton matrix ``2 K^T K`` with a direction (eq. 57).

    At a global minimum this is the Hessian-vector product (eq. 60).
    """
    chain = as_chain(factors)
    u = check_like(chain, direction, "direction")
    return _gn_apply(chain, u)


def _jvp(chain: FactorChain, u: Sequence[np.ndarray]) -> np.ndarray:
    """``J(U) = sum_k A_k U_k B_k``, the derivative of ``P`` along ``U`` (Lemma 3)."""
    return sum(a @ uk @ b for a, uk, b in zip(chain.suffix, u, chain.prefix))


def _gn_apply(chain: FactorChain, u: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _kt_apply(chain, 2.0 * _jvp(chain, u))


def _kt_apply(chain: FactorChain, x: np.ndarray) -> list[np.ndarray]:
    """``K^T vec(X)``: block k is ``A_k^T X B_k^T`` (backward sweep, L - 1 products)."""
    out = [None] * chain.depth
    c = x
    for k in range(chain.depth - 1, -1, -1):
        out[k] = c @ chain.prefix[k].T
        if k > 0:
            c = chain.factors[k].T @ c
    return out


def hessian_vector_product(
    factors: FactorsLike,
    direction: Sequence[Any],
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> list[np.ndarray]:
    """Hessian of eq. 15 applied to a direction ``U``, at any point (eqs. 56-58).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        The point ``[W_1, ..., W_L]``.
    direction : sequence of array_like
        ``[U_1, ..., U_L]`` shaped like the factors.
    target : array_like, optional
        ``M``; None means the chain's own product (a global minimum).

    Returns
    -------
    list of ndarray
        ``(H U)_k`` for each factor, W_1 first.

    With ``data=X`` (or ``covariance=Sigma_x``) and ``normalization=``, the loss is
    that of a deep linear network on data, ``c ||Y - P X||_F^2`` with ``target = Y``
    (see :mod:`dmfsharp.data` for the formulas and conventions).
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return hessian_vector_product_data(chain, terms, direction, target)
    u = check_like(chain, direction, "direction")
    r = check_target(chain, target) - chain.product
    return _hvp(chain, u, r)


def _hvp(chain: FactorChain, u: Sequence[np.ndarray], r: np.ndarray) -> list[np.ndarray]:
    if not np.any(r):  # the residual term vanishes: H U is the Gauss-Newton product (eq. 60)
        return _gn_apply(chain, u)
    j, dA, dB = _directional_products(chain, u)
    A, B = chain.suffix, chain.prefix
    out = _kt_apply(chain, 2.0 * j)
    for k in range(chain.depth):
        out[k] = out[k] - 2.0 * (dA[k].T @ r @ B[k].T + A[k].T @ r @ dB[k].T)
    return out


def hessian_operator(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> LinearOperator:
    """The Hessian of eq. 15 as a SciPy :class:`~scipy.sparse.linalg.LinearOperator`.

    Acts on parameter vectors flattened as :meth:`FactorChain.flatten` (each factor
    row-major, W_1 first), matrix-free through :func:`hessian_vector_product`.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.sparse.linalg import eigsh
    >>> op = hessian_operator([np.array([[2.0]]), np.array([[3.0]])])
    >>> op.shape
    (2, 2)
    >>> round(float(eigsh(op, k=1, which="LA")[0][0]), 10)  # 2 (2^2 + 3^2)
    26.0
    """
    chain = as_chain(factors)
    apply = flat_hvp(chain, target=target, data=data, covariance=covariance, normalization=normalization)
    n = chain.num_params
    return LinearOperator((n, n), matvec=apply, rmatvec=apply, dtype=np.float64)


def dense_hessian(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> np.ndarray:
    """The ``N x N`` Hessian of eq. 15, built column by column from exact products.

    Meant for tests and small problems (``N <= 6000``). Rows and columns follow
    :meth:`FactorChain.flatten`: each factor row-major, W_1 first. The result is
    symmetrized to remove rounding asymmetry.

    With ``data=X`` (or ``covariance=Sigma_x``) and ``normalization=``, the loss is
    that of a deep linear network on data, ``c ||Y - P X||_F^2`` with ``target = Y``
    (see :mod:`dmfsharp.data` for the formulas and conventions).
    """
    chain = as_chain(factors)
    n = chain.num_params
    if n > DENSE_HESSIAN_MAX_PARAMS:
        raise ValueError(
            f"dense_hessian would build a {n} x {n} matrix (N > {DENSE_HESSIAN_MAX_PARAMS}); "
            "use hessian_operator or the closed forms instead"
        )
    apply = flat_hvp(chain, target=target, data=data, covariance=covariance, normalization=normalization)
    h = np.empty((n, n))
    eye = np.eye(n)
    for i in range(n):
        h[:, i] = apply(eye[i])
    return 0.5 * (h + h.T)


def flat_hvp(
    chain: FactorChain,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
):
    """``v -> H v`` on flat parameter vectors (:meth:`FactorChain.flatten` order).

    The one Hessian-vector product behind :func:`hessian_operator`,
    :func:`dense_hessian` and :func:`dmfsharp.numerical_sharpness`, with or without
    data; the residual is computed once.
    """
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return hvp_closure(chain, terms, target)
    r = check_target(chain, target) - chain.product

    def apply(v):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        return np.concatenate([b.ravel() for b in _hvp(chain, chain.unflatten(v), r)])

    return apply
