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

With weight decay ``mu`` (``weight_decay=``, issue 15) the loss gains
``mu sum_k ||W_k||_F^2``, the gradient ``2 mu W_k`` and the Hessian-vector product
``2 mu U_k``: the Hessian is ``2 K^T K`` + residual term + ``2 mu I``.

The parameter vector used by :func:`hessian_operator` and :func:`dense_hessian`
flattens each factor row-major (C order), W_1 first, exactly as
:meth:`FactorChain.flatten`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .chain import FactorChain, FactorsLike, as_chain, check_like, check_target
from .limits import check_allocation
from .objective import Objective, make_objective

__all__ = [
    "loss",
    "residual",
    "gradient",
    "hessian_vector_product",
    "gauss_newton_vector_product",
    "hessian_operator",
    "dense_hessian",
    "flat_hvp",
    "objective_loss",
    "objective_gradient",
    "objective_hvp",
    "objective_flat_hvp",
    "jvp",
    "kt_apply",
    "directional_products",
]

#: Largest ``N`` for which :func:`dense_hessian` builds the ``N x N`` matrix.
DENSE_HESSIAN_MAX_PARAMS = 6000


# --------------------------------------------------------------------------- building blocks


def jvp(chain: FactorChain, u: Sequence[np.ndarray]) -> np.ndarray:
    """``J(U) = sum_k A_k U_k B_k``, the derivative of ``P`` along ``U`` (Lemma 3)."""
    out = np.zeros((chain.dims[-1], chain.dims[0]))
    last = chain.depth - 1
    for k, (a, uk, b) in enumerate(zip(chain.suffix, u, chain.prefix, strict=True)):
        t = uk if k == last else a @ uk  # A_L = I
        out += t if k == 0 else t @ b  # B_1 = I
    return out


def kt_apply(chain: FactorChain, x: np.ndarray) -> list[np.ndarray]:
    """``K^T vec(X)``: block k is ``A_k^T X B_k^T`` (backward sweep, L - 1 products)."""
    out: list[np.ndarray] = [x] * chain.depth
    c = x
    for k in range(chain.depth - 1, -1, -1):
        out[k] = c if k == 0 else c @ chain.prefix[k].T  # B_1 = I
        if k > 0:
            c = chain.factors[k].T @ c
    return out


def directional_products(
    chain: FactorChain, u: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """``J(U) = sum_k A_k U_k B_k`` and the derivatives ``dA_k``, ``dB_k`` along ``U``."""
    L = chain.depth
    A, B, W = chain.suffix, chain.prefix, chain.factors
    dB = [np.zeros_like(B[0])] * L
    dB[1] = u[0]  # B_2 = W_1 B_1 with B_1 = I
    for k in range(2, L):  # B_{k+1} = W_k B_k
        dB[k] = u[k - 1] @ B[k - 1] + W[k - 1] @ dB[k - 1]
    dA = [np.zeros_like(A[L - 1])] * L
    dA[L - 2] = u[L - 1]  # A_{L-1} = A_L W_L with A_L = I
    for k in range(L - 3, -1, -1):  # A_k = A_{k+1} W_{k+1}
        dA[k] = dA[k + 1] @ W[k + 1] + A[k + 1] @ u[k + 1]
    j = A[0] @ u[0] + dA[0] @ W[0]  # d(A_1 W_1)
    return j, dA, dB


# --------------------------------------------------------------------------- on an objective


def objective_loss(obj: Objective) -> float:
    """``c ||(T - P) F||_F^2 + mu sum_k ||W_k||_F^2``: eq. 15 or the data loss, plus weight decay."""
    return obj.residual()[1] + obj.penalty()


def objective_gradient(obj: Objective) -> list[np.ndarray]:
    """``dL/dW_k = -2c A_k^T G B_k^T + 2 mu W_k`` with ``G`` the residual correlation."""
    g, _ = obj.residual()
    out = kt_apply(obj.chain, -2.0 * obj.scale * g)
    return _plus_decay(obj, out, obj.chain.factors)


def _plus_decay(obj: Objective, out: list[np.ndarray], u: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``out_k + 2 mu u_k`` (``out`` itself without weight decay)."""
    mu = obj.weight_decay
    return [o + 2.0 * mu * x for o, x in zip(out, u, strict=True)] if mu else out


def objective_hvp(obj: Objective, u: Sequence[np.ndarray], g: np.ndarray) -> list[np.ndarray]:
    """``(H U)_k = 2c A_k^T J C B_k^T - 2c (dA_k^T G B_k^T + A_k^T G dB_k^T) + 2 mu U_k`` (eqs. 56-58).

    ``g`` is the residual correlation :meth:`Objective.residual` (computed once by
    the caller); when it is zero only the Gauss-Newton part ``2c K_F^T K_F`` is formed.
    """
    chain, c = obj.chain, obj.scale
    if not np.any(g):  # a global minimum: only the Gauss-Newton part is left (eq. 60)
        return _plus_decay(obj, kt_apply(chain, 2.0 * c * obj.times_gram(jvp(chain, u))), u)
    j, dA, dB = directional_products(chain, u)
    out = kt_apply(chain, 2.0 * c * obj.times_gram(j))
    A, B = chain.suffix, chain.prefix
    last = chain.depth - 1
    for k in range(chain.depth):  # B_1 = I and A_L = I are not multiplied
        left = dA[k].T @ g if k == 0 else dA[k].T @ g @ B[k].T
        right = g @ dB[k].T if k == last else A[k].T @ g @ dB[k].T
        out[k] = out[k] - 2.0 * c * (left + right)
    return _plus_decay(obj, out, u)


def objective_flat_hvp(obj: Objective) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> H v`` on flat parameter vectors (:meth:`FactorChain.flatten` order)."""
    chain = obj.chain
    g, _ = obj.residual()

    def apply(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        return np.concatenate([b.ravel() for b in objective_hvp(obj, chain.unflatten(v), g)])

    return apply


# --------------------------------------------------------------------------- public API


def residual(factors: FactorsLike, *, target: Any = None) -> np.ndarray:
    """Residual ``R = M - W_L ... W_1`` (zero when ``target`` is None).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
    target : array_like, optional
        ``M`` of shape ``(d_L, d_0)``; None means the product itself (``R = 0``).

    Returns
    -------
    ndarray, shape (d_L, d_0)
        ``M - P``, float64.

    Raises
    ------
    FactorError
        Invalid factors, or a target of the wrong shape or with non-finite values.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, eq. 15.

    Examples
    --------
    >>> import numpy as np
    >>> residual([np.eye(2), 2 * np.eye(2)], target=np.eye(2)).tolist()
    [[-1.0, 0.0], [0.0, -1.0]]
    """
    chain = as_chain(factors)
    return check_target(chain, target) - chain.product


def loss(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> float:
    """Loss ``||M - W_L ... W_1||_F^2`` of eq. 15 (plus ``mu sum_k ||W_k||_F^2``).

    With ``data=X`` (or ``covariance=Sigma_x``) and ``normalization=``, the loss is
    that of a deep linear network on data, ``c ||Y - P X||_F^2`` with ``target = Y``
    (see :mod:`dmfsharp.objective` for the formulas and conventions).
    ``weight_decay=mu`` adds ``mu sum_k ||W_k||_F^2`` (not scaled by ``c``).

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
    weight_decay : float, optional
        ``mu >= 0``; the loss gains ``mu sum_k ||W_k||_F^2`` (default 0).

    Returns
    -------
    float
        The loss value (in the units of ``||M||_F^2``; no factor 1/2).

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, eq. 15.

    Examples
    --------
    >>> import numpy as np
    >>> loss([np.eye(2), 2 * np.eye(2)], target=np.eye(2))
    2.0
    >>> loss([np.eye(2), 2 * np.eye(2)], target=np.eye(2), weight_decay=0.5)  # + 0.5 (2 + 8)
    7.0
    """
    return objective_loss(
        make_objective(
            factors,
            target,
            data=data,
            covariance=covariance,
            normalization=normalization,
            weight_decay=weight_decay,
        )  # fmt: skip
    )


def gradient(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """Gradient ``dL/dW_k = -2 A_k^T R B_k^T`` (``+ 2 mu W_k``) for each factor, W_1 first.

    Computed by reverse accumulation (one backward sweep of ``L - 1`` products), with
    ``A_k = W_L ... W_(k+1)`` and ``B_k = W_(k-1) ... W_1``. With data:
    ``-2c A_k^T (Y - P X) X^T B_k^T``. ``weight_decay=mu`` adds ``2 mu W_k`` (PyTorch's
    ``SGD(weight_decay=2 mu)`` adds the same).

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
    weight_decay : float, optional
        ``mu >= 0``; the loss gains ``mu sum_k ||W_k||_F^2`` (default 0).

    Returns
    -------
    list of ndarray
        ``dL/dW_k`` of shape ``(d_k, d_(k-1))`` for ``k = 1 .. L``, float64.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, eq. 15 and the proof of Lemma 3 (Appendix A.2).

    Examples
    --------
    ``L = (2 - w_2 w_1)^2 + (w_1^2 + w_2^2)`` at ``(1, 2)``: ``-2 (0) w_2 + 2 w_1 = 2``
    and ``2 w_2 = 4``.

    >>> [g.item() for g in gradient([[[1.0]], [[2.0]]], target=[[2.0]], weight_decay=1.0)]
    [2.0, 4.0]
    """
    return objective_gradient(
        make_objective(
            factors,
            target,
            data=data,
            covariance=covariance,
            normalization=normalization,
            weight_decay=weight_decay,
        )  # fmt: skip
    )


def gauss_newton_vector_product(factors: FactorsLike, direction: Sequence[Any]) -> list[np.ndarray]:
    """Product of the Gauss-Newton matrix ``2 K^T K`` with a direction (eq. 57).

    ``(2 K^T K U)_k = 2 A_k^T J(U) B_k^T`` with ``J(U) = sum_j A_j U_j B_j``. At a
    global minimum this is the Hessian-vector product (eq. 60).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
    direction : sequence of array_like
        ``[U_1, ..., U_L]``, ``U_k`` shaped like ``W_k``.

    Returns
    -------
    list of ndarray
        ``(2 K^T K U)_k``, shaped like ``W_k``, W_1 first.

    Raises
    ------
    FactorError
        Invalid factors, or a direction with the wrong number of blocks or shapes.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, Lemma 3 (eqs. 56-58, eq. 60).

    Examples
    --------
    ``m = w_2 w_1`` at ``(2, 3)``: ``K = [w_2, w_1] = [3, 2]``, so ``2 K^T K e_1 = (18, 12)``.

    >>> import numpy as np
    >>> u = gauss_newton_vector_product([np.array([[2.0]]), np.array([[3.0]])], [[[1.0]], [[0.0]]])
    >>> [x.item() for x in u]
    [18.0, 12.0]
    """
    obj = make_objective(factors)
    u = check_like(obj.chain, direction, "direction")
    return objective_hvp(obj, u, np.zeros((obj.chain.dims[-1], obj.chain.dims[0])))


def hessian_vector_product(
    factors: FactorsLike,
    direction: Sequence[Any],
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """Hessian of eq. 15 applied to a direction ``U``, at any point (eqs. 56-58).

    ``(H U)_k = 2c A_k^T J(U) B_k^T - 2c (dA_k^T G B_k^T + A_k^T G dB_k^T) + 2 mu U_k``:
    the Gauss-Newton part, the residual term (zero at a global minimum) and weight decay.
    With ``data=X`` (or ``covariance=Sigma_x``) and ``normalization=``, the loss is
    that of a deep linear network on data, ``c ||Y - P X||_F^2`` with ``target = Y``
    (see :mod:`dmfsharp.objective` for the formulas and conventions).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
    direction : sequence of array_like
        ``[U_1, ..., U_L]``, ``U_k`` shaped like ``W_k``.
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
    weight_decay : float, optional
        ``mu >= 0``: adds ``2 mu U`` (the Hessian of ``mu sum_k ||W_k||_F^2``).

    Returns
    -------
    list of ndarray
        ``(H U)_k``, shaped like ``W_k``, W_1 first.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, Lemma 3 (eqs. 56-58).

    Examples
    --------
    ``m = w_2 w_1`` at ``(2, 3)`` with ``M = 0``: ``H = [[18, 24], [24, 8]]`` (the residual
    ``-6`` adds ``2 * 6`` off the diagonal).

    >>> import numpy as np
    >>> hu = hessian_vector_product([np.array([[2.0]]), np.array([[3.0]])], [[[1.0]], [[0.0]]],
    ...                             target=[[0.0]])
    >>> [x.item() for x in hu]
    [18.0, 24.0]
    """
    obj = make_objective(
        factors,
        target,
        data=data,
        covariance=covariance,
        normalization=normalization,
        weight_decay=weight_decay,
    )
    u = check_like(obj.chain, direction, "direction")
    return objective_hvp(obj, u, obj.residual()[0])


def hessian_operator(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> LinearOperator:
    """The Hessian of eq. 15 as a SciPy :class:`~scipy.sparse.linalg.LinearOperator`.

    Acts on parameter vectors flattened as :meth:`FactorChain.flatten` (each factor
    row-major, W_1 first), matrix-free through :func:`hessian_vector_product`.

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
    weight_decay : float, optional
        ``mu >= 0``; the loss gains ``mu sum_k ||W_k||_F^2`` (default 0).

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(N, N)`` with ``N = sum_k d_k d_(k-1)``, float64, symmetric.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, Lemma 3 (eqs. 56-58).

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
    obj = make_objective(
        factors,
        target,
        data=data,
        covariance=covariance,
        normalization=normalization,
        weight_decay=weight_decay,
    )
    apply = objective_flat_hvp(obj)
    n = obj.chain.num_params
    return LinearOperator((n, n), matvec=apply, rmatvec=apply, dtype=np.float64)


def dense_hessian(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> np.ndarray:
    """The ``N x N`` Hessian of eq. 15, built column by column from exact products.

    Meant for tests and small problems (``N <= 6000``). Rows and columns follow
    :meth:`FactorChain.flatten`: each factor row-major, W_1 first. The result is
    symmetrized to remove rounding asymmetry. With ``data=X`` (or
    ``covariance=Sigma_x``) and ``normalization=``, the loss is that of a deep linear
    network on data (:mod:`dmfsharp.objective`); ``weight_decay=mu`` adds ``2 mu I``.

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
    weight_decay : float, optional
        ``mu >= 0``; the loss gains ``mu sum_k ||W_k||_F^2`` (default 0).

    Returns
    -------
    ndarray, shape (N, N)
        The symmetric Hessian, float64, ``N = sum_k d_k d_(k-1)``.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, a negative or
        non-finite ``weight_decay``, or ``N > 6000`` (use :func:`hessian_operator`).
    MemoryLimitError
        If the ``N x N`` matrix exceeds the memory limit (:mod:`dmfsharp.limits`).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025, Lemma 3 (eqs. 56-58).

    Examples
    --------
    ``m = w_2 w_1`` at ``(2, 3)``: ``2 K^T K`` with ``K = [3, 2]`` at the minimum, plus the
    residual term ``-2 R = 12`` off the diagonal for ``M = 0``.

    >>> import numpy as np
    >>> dense_hessian([np.array([[2.0]]), np.array([[3.0]])]).tolist()
    [[18.0, 12.0], [12.0, 8.0]]
    >>> dense_hessian([np.array([[2.0]]), np.array([[3.0]])], target=[[0.0]]).tolist()
    [[18.0, 24.0], [24.0, 8.0]]
    """
    obj = make_objective(
        factors,
        target,
        data=data,
        covariance=covariance,
        normalization=normalization,
        weight_decay=weight_decay,
    )
    n = obj.chain.num_params
    if n > DENSE_HESSIAN_MAX_PARAMS:
        raise ValueError(
            f"dense_hessian would build a {n} x {n} matrix (N > {DENSE_HESSIAN_MAX_PARAMS}); "
            "use hessian_operator or the closed forms instead"
        )
    check_allocation((n, n), what="the dense Hessian", alternative="hessian_operator or the closed forms")
    apply = objective_flat_hvp(obj)
    h = np.empty((n, n))
    e = np.zeros(n)
    for i in range(n):
        e[i] = 1.0
        h[:, i] = apply(e)
        e[i] = 0.0
    return 0.5 * (h + h.T)


def flat_hvp(
    chain: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> H v`` on flat parameter vectors (:meth:`FactorChain.flatten` order).

    The one Hessian-vector product behind :func:`hessian_operator`,
    :func:`dense_hessian` and :func:`dmfsharp.numerical_sharpness`, with or without
    data; the residual is computed once.
    """
    return objective_flat_hvp(
        make_objective(
            chain,
            target,
            data=data,
            covariance=covariance,
            normalization=normalization,
            weight_decay=weight_decay,
        )
    )
