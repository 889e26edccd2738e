r"""Curvature that is exact at any point: the Gauss-Newton part and the diagonal blocks.

Gauss-Newton part. By Lemma 3 (eqs. 56-58) the Hessian of eq. 15 at any point is
``2 K^T K`` minus a term linear in the residual ``M - P``; ``2 K^T K`` (the Gauss-Newton
matrix, eq. 57) depends only on the factors, so its largest eigenvalue is the closed
form of Theorem 5 *at every point*, not only at minima:
``lambda_max(2 K^T K) = 2 lambda_max(K K^T) = 2 lambda_max(S)``. With data
(:mod:`dmfsharp.objective`) it is ``2c lambda_max(S_C)``, ``S_C = sum_k (F^T B_k^T B_k F)
(x) (A_k A_k^T)``, ``F F^T = X X^T``. The cost is that of a minimum: no residual
enters. The full Hessian's ``lambda_max`` away from minima stays with
:func:`dmfsharp.numerical_sharpness` (warm-startable through ``v0=``).

Diagonal blocks. The loss restricted to one factor ``W_k`` (the others fixed) is
``c ||Y - A_k W_k B_k X||_F^2``, a convex quadratic in ``W_k``: the product is
*linear* in ``W_k``, so the residual term of eq. 58 vanishes on the diagonal block
(``P''`` along a direction supported on block ``k`` alone is zero). Hence at **any**
point the ``k``-th diagonal Hessian block is, for row-major ``vec(U_k)``,

.. math::

    H_{kk} = 2c\, (A_k^\top A_k) \otimes (B_k C B_k^\top), \qquad
    \lambda_{\max}(H_{kk}) = 2c\, \sigma_{\max}(A_k)^2 \sigma_{\max}(B_k F)^2,

since ``vec_row(A U B F) = (A (x) (B F)^T) vec_row(U)`` and the eigenvalues of a
Kronecker product of PSD matrices are the products of theirs. Without data
(``C = I``, ``c = 1``) this is ``2 sigma_max(A_k)^2 sigma_max(B_k)^2``, the k-th term of
Corollary 10's bound (eq. 34): **the layer sharpnesses sum to Corollary 10's bound.**
As ``S = sum_k K_k K_k^T`` is a sum of PSD terms with
``lambda_max(K_k K_k^T) = lambda_max(K_k^T K_k)``, Weyl's inequality gives, at a minimum,

.. math::

    \max_k \lambda_{\max}(H_{kk}) \le \lambda_{\max}(H) \le \sum_k \lambda_{\max}(H_{kk}),

the left side because a diagonal block of a PSD matrix cannot exceed its largest
eigenvalue, the right side being Corollary 10.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .chain import FactorsLike
from .limits import check_allocation
from .objective import Objective, make_objective
from .s_matrix import check_method, gauss_newton_top, sigma_max_sq

__all__ = ["gauss_newton_sharpness", "layer_sharpness", "layer_hessian_block", "objective_layer_sharpness"]


def gauss_newton_sharpness(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    method: str = "auto",
) -> float:
    r"""Exact largest eigenvalue of the Gauss-Newton part ``2 K^T K`` at any point.

    .. math::

        \lambda_{\max}(2 K^\top K) = 2\, \lambda_{\max}\Big(\sum_k B_k^\top B_k
        \otimes A_k A_k^\top\Big)

    (Theorem 5's expression, valid for the Gauss-Newton matrix everywhere since it does
    not involve the residual; eq. 57). With ``data=X``: ``2c lambda_max(S_C)``.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        Any point ``[W_1, ..., W_L]`` (a torch tensor per factor is fine).
    target : array_like, optional
        Accepted for symmetry with :func:`dmfsharp.sharpness` and checked for shape,
        but not used: the Gauss-Newton part does not depend on the target.
    data : array_like, shape (d_0, n), optional
        The inputs ``X`` of a deep linear network (as in :func:`dmfsharp.sharpness`).
    covariance : array_like, shape (d_0, d_0), optional
        The input covariance ``Sigma_x`` instead of ``data``.
    normalization : str, optional
        The loss normalization with data (see ``dmfsharp.NORMALIZATIONS``).
    method : {"auto", "dense", "lanczos"} or a core route
        Passed on to the eigenvalue computation.

    Returns
    -------
    float
        ``lambda_max`` of the Gauss-Newton matrix; at a global minimum, the Hessian's.

    Raises
    ------
    FactorError
        If ``factors``, ``target``, ``data`` or ``covariance`` is invalid.
    ValueError
        If the keywords conflict or ``normalization`` is unknown.
        Also if ``method`` is not a known route.
    MemoryLimitError
        If ``method="dense"`` would allocate more than :func:`dmfsharp.limits.max_bytes`.
    ConvergenceError
        If the iterative route did not reach its accuracy (``.partial`` holds the estimate).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: eq. 57 and Theorem 5.

    Examples
    --------
    At a point far from any minimum of ``M = 0`` it is still the closed form:

    >>> import numpy as np
    >>> gauss_newton_sharpness([np.array([[2.0]]), np.array([[3.0]])])  # 2 (3^2 + 2^2)
    26.0
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    check_method(obj, method)
    return gauss_newton_top(obj, method)


def objective_layer_sharpness(obj: Objective) -> np.ndarray:
    """Return ``2c sigma_max(A_k)^2 sigma_max(B_k F)^2`` for ``k = 1..L`` (see :func:`layer_sharpness`).

    Parameters
    ----------
    obj : Objective
        The parsed objective (chain, covariance factor ``F`` and scale ``c``).

    Returns
    -------
    ndarray of float64, shape (L,)
        The top eigenvalue of each diagonal Hessian block.
    """
    chain = obj.chain
    out = [sigma_max_sq(a) * sigma_max_sq(obj.times_factor(b)) for a, b in zip(chain.suffix, chain.prefix)]
    return 2.0 * obj.scale * np.array(out)


def layer_sharpness(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> np.ndarray:
    """Largest eigenvalue of each diagonal Hessian block: ``2 sigma_max(A_k)^2 sigma_max(B_k)^2``.

    The curvature of the loss along factor ``k`` alone. Exact at **any** point (the
    loss is quadratic in each factor alone, so the residual term of eq. 58 does not
    reach the diagonal blocks); see the module docstring for the derivation. Their sum
    is Corollary 10's upper bound on ``lambda_max`` (eq. 34) and their maximum a lower
    bound, at every global minimum.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        Any point.
    target : array_like, optional
        Checked for shape but not used: the diagonal blocks do not depend on it.
    data : array_like, shape (d_0, n), optional
        The inputs ``X`` of a deep linear network (as in :func:`dmfsharp.sharpness`).
    covariance : array_like, shape (d_0, d_0), optional
        The input covariance ``Sigma_x`` instead of ``data``.
    normalization : str, optional
        The loss normalization with data (see ``dmfsharp.NORMALIZATIONS``).
        With data the blocks are ``2c sigma_max(A_k)^2 sigma_max(B_k F)^2`` with
        ``F F^T = X X^T``.

    Returns
    -------
    ndarray of float64, shape (L,)
        ``lambda_max(H_kk)`` for ``k = 1, ..., L``.

    Raises
    ------
    FactorError
        If ``factors``, ``target``, ``data`` or ``covariance`` is invalid.
    ValueError
        If the keywords conflict or ``normalization`` is unknown.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Corollary 10, eq. (34) (their sum); eq. (58) (the residual term).

    Examples
    --------
    The Section 6 minimizer: both blocks are ``2 * 11 * 1``, summing to the bound 44.

    >>> from dmfsharp import section6_example
    >>> layer_sharpness(section6_example()).round(12).tolist()
    [22.0, 22.0]
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    return objective_layer_sharpness(obj)


def layer_hessian_block(
    factors: FactorsLike,
    k: int,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> np.ndarray:
    """The ``k``-th diagonal Hessian block ``2c (A_k^T A_k) (x) (B_k C B_k^T)`` (any point).

    Rows and columns follow row-major ``vec(U_k)``, as :meth:`FactorChain.flatten`; the
    block is ``(d_k d_{k-1})``-square (its size is checked before it is built). ``k``
    counts from 1.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        Any point ``[W_1, ..., W_L]``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    k : int
        The factor, ``1 <= k <= L``.
    target : array_like, optional
        Checked for shape but not used: the diagonal blocks do not depend on it.
    data : array_like, shape (d_0, n), optional
        The inputs ``X`` of a deep linear network (as in :func:`dmfsharp.sharpness`).
    covariance : array_like, shape (d_0, d_0), optional
        The input covariance ``Sigma_x`` instead of ``data``.
    normalization : str, optional
        The loss normalization with data (see ``dmfsharp.NORMALIZATIONS``).

    Returns
    -------
    ndarray of float64, shape (d_k d_{k-1}, d_k d_{k-1})
        The symmetric block ``H_kk``.

    Raises
    ------
    FactorError
        If ``factors``, ``target``, ``data`` or ``covariance`` is invalid.
    ValueError
        If the keywords conflict or ``normalization`` is unknown.
        Also if ``k`` is not an integer in ``1 .. L``.
    MemoryLimitError
        If the block would exceed :func:`dmfsharp.limits.max_bytes`.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Lemma 3 and eq. (58) (the Hessian's blocks).

    Examples
    --------
    >>> import numpy as np
    >>> layer_hessian_block([np.array([[2.0]]), np.array([[3.0]])], 1).tolist()  # 2 A_1^T A_1
    [[18.0]]
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    chain = obj.chain
    if not (isinstance(k, int | np.integer) and not isinstance(k, bool) and 1 <= k <= chain.depth):
        raise ValueError(f"k must be an integer with 1 <= k <= L = {chain.depth}, got {k!r}")
    n = chain.dims[k] * chain.dims[k - 1]
    check_allocation(
        (n, n), what=f"diagonal Hessian block {k}", alternative="layer_sharpness (its top eigenvalue)"
    )
    a, b = chain.suffix[k - 1], chain.prefix[k - 1]
    c = np.eye(chain.dims[0]) if obj.gram is None else obj.gram
    return 2.0 * obj.scale * np.kron(a.T @ a, b @ c @ b.T)
