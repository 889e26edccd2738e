r"""Closed forms at a global minimum: sharpness, Hessian spectrum, trace, eigenvectors.

At a global minimum (``M = W_L ... W_1``, eq. 19) the Hessian of eq. 15 is
``H = 2 K^T K`` with ``K = [B_1^T (x) A_1 | ... | B_L^T (x) A_L]`` (Lemma 3, eqs. 73-77).
``K K^T`` is the ``d_0 d_L``-square PSD matrix

.. math::

    S = \sum_{k=1}^L (B_k^\top B_k) \otimes (A_k A_k^\top),

so the nonzero Hessian eigenvalues are exactly ``2 eig(S)`` (Theorem 5 for the
largest), the other ``N - rank(S)`` are zero, and the top Hessian eigenvector is
``K^T x / ||K^T x||`` for the top eigenvector ``x`` of ``S``. ``S`` is applied
matrix-free as ``X -> sum_k (A_k A_k^T) X (B_k^T B_k)`` on ``d_L x d_0`` matrices
when ``d_0 d_L`` is too large to form it. (Eq. 77 of the paper drops the factor 2 that
eq. 76 carries; eq. 81 and Theorem 5 have it, and so does this module.)

With data (``data=``, ``covariance=``) every function here is the same formula with
``B_k`` replaced by ``B_k F`` (``F F^T = X X^T``) and the result scaled by ``c``
(:mod:`dmfsharp.objective`).

A point counts as a global minimum only when the residual part of the Hessian that the
closed forms drop is provably below their stated accuracy: see
:func:`dmfsharp.minimum.residual_curvature_bound`.

With ``weight_decay=mu > 0`` (issue 15) the minima of ``L_mu`` have a nonzero residual:
:func:`sharpness` and :func:`hessian_spectrum` then take the exact routes of
:mod:`dmfsharp.regularized` at critical points of ``L_mu``, and :func:`hessian_trace`
adds ``2 mu N``.

Special cases with simpler forms: Theorem 4 (``d_0 = d_L = 1``),
``lambda_max = 2 sum_k ||A_k||^2 ||B_k||^2``; Corollary 6 (``L = 2``),
``lambda_max = 2 (sigma_max(W_1)^2 + sigma_max(W_2)^2)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .chain import FactorsLike
from .limits import check_allocation
from .linalg.kron import (
    dense_s,
    normalize_blocks,
    s_operator,
    sign_fix,
)
from .minimum import MINIMUM_RTOL, is_minimum, minimum_residual, require_minimum
from .objective import make_objective
from .regularized.hessian import regularized_spectrum, regularized_top
from .s_matrix import (
    SHARPNESS_METHODS,
    check_method,
    gauss_newton_top,
    grams,
    objective_spectrum,
    objective_trace,
    top_direction,
)
from .validate import check_positive_int

__all__ = [
    "sharpness",
    "hessian_trace",
    "hessian_spectrum",
    "top_eigenvector",
    "zero_eigenvector",
    "sharpness_matrix",
    "sharpness_operator",
    "SHARPNESS_METHODS",
    # the minimum test lives in dmfsharp.minimum; re-exported where callers expect it
    "is_minimum",
    "minimum_residual",
    "MINIMUM_RTOL",
]

# --------------------------------------------------------------------------- closed forms


def sharpness_matrix(factors: FactorsLike, *, target: Any = None) -> np.ndarray:
    """The ``d_0 d_L``-square matrix ``S = sum_k (B_k^T B_k) (x) (A_k A_k^T)`` (Theorem 5).

    Its eigenvalues, doubled, are the nonzero Hessian eigenvalues at a minimum. Use
    :func:`sharpness_operator` when ``d_0 d_L`` is large (the size is checked first).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        A global minimum ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
    target : array_like, optional
        ``M`` of shape ``(d_L, d_0)``; None means the factors' own product (always a
        global minimum).

    Returns
    -------
    ndarray, shape (d_0 d_L, d_0 d_L)
        ``S``, symmetric positive semidefinite, float64, acting on column-major
        ``vec(X)`` of ``d_L x d_0`` matrices.

    Raises
    ------
    FactorError
        Invalid factors or target.
    MemoryLimitError
        If the dense ``S`` exceeds the memory limit (:mod:`dmfsharp.limits`).
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum of eq. 15.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5 (``lambda_max(H) = 2 lambda_max(S)``),
    Lemma 3 (eqs. 56-58).

    Examples
    --------
    >>> import numpy as np
    >>> sharpness_matrix([np.array([[2.0]]), np.array([[3.0]])]).tolist()  # 2^2 + 3^2
    [[13.0]]
    """
    obj = make_objective(factors, target)
    n = obj.chain.dims[0] * obj.chain.dims[-1]
    check_allocation((n, n), what="the dense S", alternative="sharpness_operator (matrix-free S)")
    require_minimum(obj, "sharpness_matrix")
    g, rb, ra = grams(obj)
    return dense_s(g, rb, ra)


def sharpness_operator(factors: FactorsLike, *, target: Any = None) -> LinearOperator:
    """``S`` as a matrix-free :class:`~scipy.sparse.linalg.LinearOperator`.

    Acts on column-major ``vec(X)`` of ``d_L x d_0`` matrices as
    ``X -> sum_k (A_k A_k^T) X (B_k^T B_k)``. It holds ``2 L`` Gram matrices of sizes
    ``d_0^2`` and ``d_L^2`` (checked against the memory limit first).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        A global minimum ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
    target : array_like, optional
        ``M`` of shape ``(d_L, d_0)``; None means the factors' own product (always a
        global minimum).

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(d_0 d_L, d_0 d_L)``, float64, symmetric (``rmatvec = matvec``).

    Raises
    ------
    FactorError
        Invalid factors or target.
    MemoryLimitError
        If the Gram matrices exceed the memory limit (:mod:`dmfsharp.limits`).
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum of eq. 15.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5.

    Examples
    --------
    >>> import numpy as np
    >>> op = sharpness_operator([np.array([[2.0]]), np.array([[3.0]])])
    >>> op.matvec(np.ones(1)).tolist()
    [13.0]
    """
    obj = make_objective(factors, target)
    chain = obj.chain
    d = max(chain.dims[0], chain.dims[-1])
    check_allocation(
        (2 * chain.depth, d, d), what="the Gram matrices of S", alternative="hessian_operator (matrix-free H)"
    )
    require_minimum(obj, "sharpness_operator")
    g, rb, ra = grams(obj)
    return s_operator(g, rb, ra)


def sharpness(
    factors: FactorsLike,
    *,
    target: Any = None,
    method: str = "auto",
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> float:
    r"""Exact largest Hessian eigenvalue at a global minimum (Theorem 5).

    .. math::

        \lambda_{\max}(\nabla^2 L(w^*)) = 2\, \lambda_{\max}\Big(\sum_{k=1}^L
        B_k^\top B_k \otimes A_k A_k^\top\Big)

    with the special cases Theorem 4 (``d_0 = d_L = 1``: ``2 sum_k ||A_k||^2 ||B_k||^2``)
    and Corollary 6 (``L = 2``: ``2 (sigma_max(W_1)^2 + sigma_max(W_2)^2)``).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        A global minimum ``[W_1, ..., W_L]`` (``np.load("f.npz")`` with keys ``W1..WL``
        works too).
    target : array_like, optional
        ``M``. None means the factors' own product (always a global minimum); otherwise
        the point must be a minimum to working precision, with the dropped residual
        curvature provably below ``1e-12 lambda_max``
        (:func:`residual_curvature_bound`), or :class:`NotAMinimumError` is raised.
    method : {"auto", "theorem4", "corollary6", "dense", "lanczos"}
        ``"auto"`` takes Theorem 4 or Corollary 6 where they apply, the dense ``S`` for
        ``d_0 d_L <= 196`` and matrix-free Lanczos on ``S`` otherwise. The others force
        a route (for cross-checks). With data only ``"auto"``, ``"dense"`` and
        ``"lanczos"`` apply.
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``; the loss is then ``c ||Y - P X||_F^2`` and
        ``target`` is ``Y`` (shape ``(d_L, n)``, None meaning ``Y = P X``). The result
        is ``2c lambda_max(sum_k F^T B_k^T B_k F (x) A_k A_k^T)`` with ``F F^T = X X^T``
        (:mod:`dmfsharp.objective`).
    covariance : array_like, optional
        ``Sigma_x`` instead of samples; ``target`` is then ``T`` with ``y = T x``.
    normalization : {"sum", "mean", "half_mean"}, optional
        ``c = 1, 1/n, 1/(2n)`` for samples (default ``"sum"``, eq. 15);
        ``c = 1, 1/2`` for ``"mean"`` (default) and ``"half_mean"`` with a covariance.
    weight_decay : float, optional
        ``mu >= 0``. With ``mu > 0`` the loss is ``L + mu sum_k ||W_k||_F^2`` and the point
        must be a critical point of it (e.g. :func:`dmfsharp.regularized_minimizer`); the
        Hessian is ``2 K^T K`` + residual term + ``2 mu I`` and its ``lambda_max`` is exact:
        a closed form for ``d_0 = d_L = 1`` (``method="scalar"``), else the dense Hessian
        (``N <= 1500``) or certified Lanczos (:func:`dmfsharp.regularized.regularized_top`).
        ``method`` is then one of ``"auto"``, ``"scalar"``, ``"dense"``, ``"lanczos"``.

    Returns
    -------
    float
        ``lambda_max`` of the Hessian of eq. 15 (or of the data loss, plus ``2 mu I``).

    Raises
    ------
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum (with weight decay:
        not a critical point of ``L_mu``).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5, Theorem 4, Corollary 6; Lemma 3.

    Examples
    --------
    The Section 6 example (``M = diag(11, 2, 1)``) is flat, with sharpness 44:

    >>> from dmfsharp import section6_example
    >>> sharpness(section6_example())
    44.0

    With weight decay, at the regularized minimizer of ``M = 4``, ``L = 2``, ``mu = 1``
    (soft-thresholding, ``s^2 = 4 - 1``; ``lambda_max = max(2 L s^2, 4 mu) = 12``):

    >>> import numpy as np
    >>> from dmfsharp import regularized_minimizer
    >>> w = regularized_minimizer(np.array([[4.0]]), (1, 3, 1), weight_decay=1.0)
    >>> round(sharpness(w, target=[[4.0]], weight_decay=1.0), 10)
    12.0
    """
    obj = make_objective(
        factors,
        target,
        data=data,
        covariance=covariance,
        normalization=normalization,
        weight_decay=weight_decay,
    )
    if obj.weight_decay:
        return regularized_top(obj, method)
    check_method(obj, method)
    values: list[float] = []

    def top() -> float:
        values.append(gauss_newton_top(obj, method))
        return values[-1]

    require_minimum(obj, "sharpness", top)
    return values[-1] if values else top()


def hessian_trace(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> float:
    r"""Exact Hessian trace at **any** point: ``2c sum_k ||A_k||_F^2 ||B_k F||_F^2``.

    .. math::

        \operatorname{tr} \nabla^2 L(w) = \operatorname{tr}(2c\, K_F^\top K_F)
        = 2c \sum_{k=1}^L \|A_k\|_F^2\, \|B_k F\|_F^2
        = 2c \sum_{k=1}^L \|A_k\|_F^2 \operatorname{tr}(B_k C B_k^\top),

    ``2 sum_k ||A_k||_F^2 ||B_k||_F^2`` for eq. 15 (``F = I``, ``c = 1``).

    Proof (valid away from minima, with or without data). The trace is the sum of the
    diagonal entries ``e_i^T H e_i = d^2/dt^2 L(w + t e_i)`` over the coordinate
    directions ``e_i``. Each ``e_i`` moves one entry of one factor ``W_k`` only, and
    ``P(w + t e_i) = A_k (W_k + t E) B_k`` is *affine* in ``t``, so ``P''(0) = 0``. In
    the second derivative of Lemma 3 (eqs. 56-58),
    ``d^2/dt^2 L = 2c ||J(U) F||_F^2 - 2c <G, P''(0)>``, the residual term therefore
    vanishes on every diagonal entry, whatever the residual correlation ``G``: the
    residual part of the Hessian couples different factors only and its diagonal is
    zero. Hence ``diag(H) = diag(2c K_F^T K_F)`` and
    ``tr(H) = 2c ||K_F||_F^2 = 2c sum_k ||F^T B_k^T (x) A_k||_F^2``, and
    ``||X (x) Y||_F = ||X||_F ||Y||_F``. The target does not enter.

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        Any point ``[W_1, ..., W_L]``.
    target : array_like, optional
        ``M`` (or ``Y`` with ``data``); checked for shape, not used (see the proof).
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``; ``F F^T = C = X X^T``.
    covariance : array_like, optional
        ``Sigma_x`` of shape ``(d_0, d_0)`` instead of samples (``C = Sigma_x``).
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        The scale ``c``, as in :func:`sharpness`.
    weight_decay : float, optional
        ``mu >= 0``: adds ``2 mu N`` (the trace of ``2 mu I``).

    Returns
    -------
    float
        ``tr(H)``, exact to rounding at every point.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Lemma 3, eqs. 56-58.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> round(hessian_trace(section6_example()), 10)  # 2 * 3 * (||W_1||_F^2 + ||W_2||_F^2)
    200.6666666667

    Far from the minimum of ``M = 0`` the diagonal is still ``(2 w_2^2, 2 w_1^2)``:

    >>> import numpy as np
    >>> hessian_trace([np.array([[2.0]]), np.array([[3.0]])], target=[[0.0]])  # 2 (9 + 4)
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
    # the penalty mu ||w||^2 adds 2 mu I, whose trace is 2 mu N
    return objective_trace(obj) + 2.0 * obj.weight_decay * obj.chain.num_params


def hessian_spectrum(
    factors: FactorsLike,
    *,
    target: Any = None,
    k: int | None = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: float = 0.0,
) -> np.ndarray:
    """Exact nonzero Hessian eigenvalues at a global minimum, descending.

    They are ``2 eig(S)`` with ``S = sum_k (B_k^T B_k) (x) (A_k A_k^T)``; the remaining
    ``N - len(result)`` Hessian eigenvalues are zero (the rank deficiency discussed in
    Section 7). For ``L = 2`` the spectrum is a Kronecker sum:
    ``2 (sigma_i(W_1)^2 + sigma_j(W_2)^2)`` over all pairs (with zeros padding the
    singular values to ``d_0`` and ``d_L``). Eigenvalues below
    ``8 d_0 d_L eps lambda_max`` count as zero.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        A global minimum.
    target : array_like, optional
        ``M``, checked as in :func:`sharpness`.
    k : int, optional
        Return only the ``k`` largest (by Lanczos on ``S`` when ``d_0 d_L`` is too
        large to form it). Required when ``d_0 d_L > 4096`` and ``L > 2``.
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``; the result is then ``2c eig(S_C)`` without
        zeros, as in :func:`sharpness`.
    covariance : array_like, optional
        ``Sigma_x`` of shape ``(d_0, d_0)`` instead of samples.
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        The scale ``c``, as in :func:`sharpness`.
    weight_decay : float, optional
        ``mu > 0``: all ``N`` eigenvalues of the Hessian of ``L_mu`` at a critical point,
        descending (zeros included): the exact block-diagonal spectrum at a global minimizer
        (:func:`dmfsharp.regularized.regularized_spectrum`), the dense Hessian elsewhere.

    Returns
    -------
    ndarray, shape (r,)
        The nonzero eigenvalues (``r <= d_0 d_L``, or ``k`` of them), descending,
        float64; with ``weight_decay > 0`` all ``N`` (or ``k``) eigenvalues.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance.
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, an invalid
        ``weight_decay``, or ``k`` not a positive integer (or missing where required).
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum (with weight
        decay: not a critical point of ``L_mu``).
    MemoryLimitError
        If the eigenvalues or ``S`` exceed the memory limit (:mod:`dmfsharp.limits`).
    ConvergenceError
        If Lanczos on ``S`` (with ``k`` on a large ``S``) does not converge.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5 and its proof (the nonzero
    spectrum of ``H = 2 K^T K`` is that of ``2 K K^T = 2 S``), Corollary 6 (``L = 2``).

    R. Mulayoff and T. Michaeli, Unique Properties of Flat Minima in Deep Networks,
    ICML 2020 (the rank deficiency of the Hessian at minima).

    Examples
    --------
    >>> import numpy as np
    >>> hessian_spectrum([np.array([[1.0, 0.0]]), np.array([[2.0]])])
    array([10.,  8.])
    """
    obj = make_objective(
        factors,
        target,
        data=data,
        covariance=covariance,
        normalization=normalization,
        weight_decay=weight_decay,
    )
    if k is not None:
        k = check_positive_int(k, "k")
    if obj.weight_decay:
        return regularized_spectrum(obj, k)
    chain = obj.chain
    d0, dl = chain.dims[0], chain.dims[-1]
    if obj.is_identity and chain.depth == 2:
        # the d_0 d_L sums are formed (then sorted) even for k = 1
        check_allocation((d0 * dl,), what="the d_0 d_L Hessian eigenvalues of L = 2", alternative="sharpness")
    require_minimum(obj, "hessian_spectrum")
    return objective_spectrum(obj, k)


def top_eigenvector(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> list[np.ndarray]:
    """Unit top Hessian eigenvector at a global minimum, as arrays shaped like the factors.

    Built as ``K^T x / ||K^T x||`` with ``x = vec(X)`` the top eigenvector of ``S``:
    block ``k`` is ``A_k^T X B_k^T`` (never forming the Hessian). The sign is fixed so
    that the entry of largest magnitude is positive. With ``data=X`` (or
    ``covariance=``): block ``k`` is ``A_k^T X_S F^T B_k^T`` for the top eigenvector
    ``X_S`` of ``S_C`` (:mod:`dmfsharp.objective`).

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
    list of ndarray
        ``V_k`` shaped like ``W_k``, W_1 first, with ``sum_k ||V_k||_F^2 = 1``.

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (shapes, dtypes or non-finite
        values; named in the message).
    ValueError
        An unknown ``normalization``, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum of eq. 15.
    ConvergenceError
        If the iterative eigensolver on a large ``S`` does not reach its tolerance.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5 and its proof (the top eigenvector of ``H = 2 K^T K`` is
    ``K^T x`` for the top eigenvector ``x`` of ``S = K K^T``); Appendix D (the escape
    direction ``v_1``).

    Examples
    --------
    >>> import numpy as np
    >>> v = top_eigenvector([np.array([[1.0]]), np.array([[2.0]])])
    >>> [np.round(b, 6).tolist() for b in v]  # proportional to (A_1, B_2) = (2, 1)
    [[[0.894427]], [[0.447214]]]
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    require_minimum(obj, "top_eigenvector")
    return sign_fix(normalize_blocks(top_direction(obj)))


def zero_eigenvector(factors: FactorsLike, *, target: Any = None) -> list[np.ndarray]:
    """A deterministic unit direction with zero Hessian curvature at a global minimum.

    The tangent of the rescaling ``W_k -> (1 + t a_k) W_k`` with ``a_k = k - (L+1)/2``
    (so ``sum_k a_k = 0``): ``U_k = a_k W_k``. Then ``sum_k A_k U_k B_k = (sum_k a_k) P
    = 0``, so ``U`` lies in the null space of ``K`` and of ``H = 2 K^T K``: it points
    along the manifold of minima (Appendix D.1, "Scale Invariance and Manifolds").
    Used as the second direction ``v_N`` of the landscape maps.

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        A global minimum ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64.
    target : array_like, optional
        ``M`` of shape ``(d_L, d_0)``; None means the factors' own product (always a
        global minimum).

    Returns
    -------
    list of ndarray
        ``U_k`` shaped like ``W_k``, W_1 first, with ``sum_k ||U_k||_F^2 = 1`` (all zero
        blocks stay zero if every factor is zero).

    Raises
    ------
    FactorError
        Invalid factors or target.
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum of eq. 15.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Appendix D.1 (scale invariance; the landscape maps), Lemma 3.

    Examples
    --------
    >>> import numpy as np
    >>> [b.tolist() for b in zero_eigenvector([np.array([[1.0]]), np.array([[1.0]])])]
    [[[0.7071067811865475]], [[-0.7071067811865475]]]
    """
    obj = make_objective(factors, target)
    require_minimum(obj, "zero_eigenvector")
    L = obj.chain.depth
    blocks = [(k - (L + 1) / 2.0) * w for k, w in enumerate(obj.chain.factors, start=1)]
    return sign_fix(normalize_blocks(blocks))
