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

Special cases with simpler forms: Theorem 4 (``d_0 = d_L = 1``),
``lambda_max = 2 sum_k ||A_k||^2 ||B_k||^2``; Corollary 6 (``L = 2``),
``lambda_max = 2 (sigma_max(W_1)^2 + sigma_max(W_2)^2)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from ._kron import (
    LANCZOS_MAX_STEPS,
    SPECTRUM_DENSE_MAX,
    _dense_s,
    _lanczos_top,
    _nonzero,
    _normalize,
    _s_operator,
    _sign_fix,
    _spectrum_of_grams,
    _top_of_grams,
)
from .chain import FactorChain, FactorsLike, as_chain, check_target
from .data import (
    data_terms,
    minimum_residual_data,
    sharpness_data,
    spectrum_data,
    top_eigenvector_data,
    trace_data,
)
from .errors import NotAMinimumError

__all__ = [
    "sharpness",
    "hessian_trace",
    "hessian_spectrum",
    "top_eigenvector",
    "zero_eigenvector",
    "is_minimum",
    "minimum_residual",
    "sharpness_matrix",
    "sharpness_operator",
    "SHARPNESS_METHODS",
]

#: Routes accepted by ``sharpness(..., method=...)``.
SHARPNESS_METHODS = ("auto", "theorem4", "corollary6", "dense", "lanczos")

# --------------------------------------------------------------------------- minima


def minimum_residual(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> tuple[float, float]:
    """``(||M - P||_F, tolerance)``: the residual and the largest one taken as zero.

    The tolerance is the rounding error of forming ``P`` in float64:
    ``16 eps (L + max_i d_i) max(||M||_F, prod_i ||W_i||_F)``. With ``data=X`` (or
    ``covariance=``) the residual is that of the normal equations, ``||(Y - P X) X^T||_F``
    (see :mod:`dmfsharp.data`).
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return minimum_residual_data(chain, terms, target)
    if target is None:
        return 0.0, 0.0
    m = check_target(chain, target)
    res = float(np.linalg.norm(m - chain.product))
    scale = max(
        float(np.linalg.norm(m)),
        float(np.prod([np.linalg.norm(w) for w in chain.factors])),
    )
    tol = 16.0 * np.finfo(float).eps * (chain.depth + max(chain.dims)) * scale
    return res, tol


def is_minimum(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> bool:
    """Whether the factors are a global minimum of ``||M - W_L ... W_1||_F^2`` (eq. 19).

    ``True`` when the residual is zero to working precision (:func:`minimum_residual`).
    With ``data=X``: whether ``(Y - P X) X^T = 0``, the global minima of the data loss.
    """
    res, tol = minimum_residual(
        factors, target=target, data=data, covariance=covariance, normalization=normalization
    )
    return res <= tol


def _require_minimum(chain: FactorChain, target: Any, what: str) -> None:
    if target is None:
        return
    res, tol = minimum_residual(chain, target=target)
    if res > tol:
        raise NotAMinimumError(
            f"{what} holds only at a global minimum, but ||M - W_L...W_1||_F = {res:.3e} "
            f"exceeds the rounding tolerance {tol:.1e}; use numerical_sharpness(factors, "
            "target=M) at this point (or pass target=None to treat the factors as a "
            "minimum of their own product)"
        )


# --------------------------------------------------------------------------- S


def _grams(chain: FactorChain):
    """``(B_k^T B_k, A_k A_k^T)`` for each k: ``d_0 x d_0`` and ``d_L x d_L``.

    Streams the prefix and suffix products (``2 (L - 1)`` matrix products, one ``B_k``
    and one ``A_k`` alive at a time) unless the chain has them cached already, so the
    exact route holds O(``d_0^2 + d_L^2``) per factor beyond the factors themselves.
    The first pair's ``B_1^T B_1`` and the last pair's ``A_L A_L^T`` are identities.
    """
    cached = chain.__dict__
    L, W = chain.depth, chain.factors
    gb = [None] * L
    if "prefix" in cached:
        gb = [b.T @ b for b in chain.prefix]
    else:
        gb[0] = np.eye(chain.dims[0])
        b = W[0]
        for k in range(1, L):  # B_{k+1} = W_k B_k
            gb[k] = b.T @ b
            if k < L - 1:
                b = W[k] @ b
    ga = [None] * L
    if "suffix" in cached:
        ga = [a @ a.T for a in chain.suffix]
    else:
        ga[L - 1] = np.eye(chain.dims[-1])
        a = W[L - 1]
        for k in range(L - 2, -1, -1):  # A_k = A_{k+1} W_{k+1}
            ga[k] = a @ a.T
            if k > 0:
                a = a @ W[k]
    return list(zip(gb, ga))


def sharpness_matrix(factors: FactorsLike, *, target: Any = None) -> np.ndarray:
    """The ``d_0 d_L``-square matrix ``S = sum_k (B_k^T B_k) (x) (A_k A_k^T)`` (Theorem 5).

    Its eigenvalues, doubled, are the nonzero Hessian eigenvalues at a minimum. Use
    :func:`sharpness_operator` when ``d_0 d_L`` is large.
    """
    chain = as_chain(factors)
    _require_minimum(chain, target, "sharpness_matrix")
    return _dense_s(_grams(chain))


def sharpness_operator(factors: FactorsLike, *, target: Any = None) -> LinearOperator:
    """``S`` as a matrix-free :class:`~scipy.sparse.linalg.LinearOperator`.

    Acts on column-major ``vec(X)`` of ``d_L x d_0`` matrices as
    ``X -> sum_k (A_k A_k^T) X (B_k^T B_k)``.
    """
    chain = as_chain(factors)
    _require_minimum(chain, target, "sharpness_operator")
    return _s_operator(_grams(chain))


#: Above this ``min(W.shape)``, ``sigma_max(W)^2`` comes from Lanczos on ``W W^T`` applied
#: matrix-free (O(steps * size of W)) instead of ``eigvalsh`` of the Gram (O(n^3)).
SIGMA_DENSE_MAX = 64


def _sigma_max_sq(w: np.ndarray) -> float:
    """``sigma_max(W)^2``: the largest eigenvalue of the smaller Gram matrix.

    Small: ``eigvalsh`` of the Gram. Large: Lanczos on ``v -> W (W^T v)`` (or ``W^T W``)
    with the same a posteriori stop as for S, never forming the Gram.
    """
    n = min(w.shape)
    if n <= SIGMA_DENSE_MAX:
        g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        if n == 1:
            return float(g[0, 0])
        return float(scipy.linalg.eigvalsh(g, subset_by_index=[n - 1, n - 1])[0])
    if w.shape[0] <= w.shape[1]:
        matvec = lambda v: w @ (v @ w)  # noqa: E731 - W W^T v
    else:
        matvec = lambda v: (w @ v) @ w  # noqa: E731 - W^T W v
    lam, _, _ = _lanczos_top(
        matvec, np.random.default_rng(0).standard_normal(n), want_vector=False, max_steps=LANCZOS_MAX_STEPS
    )
    if lam is None:  # a clustered top of the spectrum: the dense route
        g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        return float(scipy.linalg.eigvalsh(g, subset_by_index=[n - 1, n - 1])[0])
    return lam


def _top_of_s(chain: FactorChain, method: str, want_vector: bool = True):
    """``(lambda_max(S), X)`` with ``X`` the top eigenvector of S as a ``d_L x d_0`` matrix.

    With ``want_vector=False`` the Krylov route stops once ``lambda_max`` is exact to
    ``LANCZOS_VALUE_RTOL`` (``X`` is then only approximately the eigenvector).
    """
    d0, dl = chain.dims[0], chain.dims[-1]
    if method == "dense" and d0 * dl > SPECTRUM_DENSE_MAX:
        raise ValueError(
            f"method='dense' would form S of size {d0 * dl} x {d0 * dl} (d_0 d_L > "
            f"{SPECTRUM_DENSE_MAX}); use method='lanczos' or 'auto'"
        )
    lam, x = _top_of_grams(_grams(chain), method, want_vector)
    return lam, np.reshape(x, (dl, d0), order="F")


def sharpness(
    factors: FactorsLike,
    *,
    target: Any = None,
    method: str = "auto",
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> float:
    r"""Exact largest Hessian eigenvalue at a global minimum (Theorem 5).

    .. math::

        \lambda_{\max}(\nabla^2 L(w^*)) = 2\, \lambda_{\max}\Big(\sum_{k=1}^L
        B_k^\top B_k \otimes A_k A_k^\top\Big)

    with the special cases Theorem 4 (``d_0 = d_L = 1``: ``2 sum_k ||A_k||^2 ||B_k||^2``)
    and Corollary 6 (``L = 2``: ``2 (sigma_max(W_1)^2 + sigma_max(W_2)^2)``).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        A global minimum ``[W_1, ..., W_L]``.
    target : array_like, optional
        ``M``. None means the factors' own product (always a global minimum); otherwise
        the residual must be zero to working precision or :class:`NotAMinimumError` is
        raised.
    method : {"auto", "theorem4", "corollary6", "dense", "lanczos"}
        ``"auto"`` takes Theorem 4 or Corollary 6 where they apply, the dense ``S`` for
        ``d_0 d_L <= 196`` and matrix-free Lanczos on ``S`` otherwise
        (from a rank-one start, stopped once the a posteriori bound
        ``min(rho, rho^2 / gap)`` on the eigenvalue error is below ``1e-13 lambda``;
        measured errors are ~1e-15). The others force a route (for cross-checks). With
        data only ``"auto"``, ``"dense"`` and ``"lanczos"`` apply.
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``; the loss is then ``c ||Y - P X||_F^2`` and
        ``target`` is ``Y`` (shape ``(d_L, n)``, None meaning ``Y = P X``). The result
        is ``2c lambda_max(sum_k F^T B_k^T B_k F (x) A_k A_k^T)`` with ``F F^T = X X^T``,
        exact where ``(Y - P X) X^T = 0`` (:mod:`dmfsharp.data`).
    covariance : array_like, optional
        ``Sigma_x`` instead of samples; ``target`` is then ``T`` with ``y = T x``.
    normalization : {"sum", "mean", "half_mean"}, optional
        ``c = 1, 1/n, 1/(2n)`` for samples (default ``"sum"``, eq. 15);
        ``c = 1, 1/2`` for ``"mean"`` (default) and ``"half_mean"`` with a covariance.

    Returns
    -------
    float
        ``lambda_max`` of the Hessian of eq. 15 (or of the data loss).

    Raises
    ------
    NotAMinimumError
        If ``target`` is given and the point is not a global minimum.

    References
    ----------
    Theorem 5, Theorem 4 and Corollary 6 of the paper; Lemma 3 for ``H = 2 K^T K``.

    Examples
    --------
    The Section 6 example (``M = diag(11, 2, 1)``) is flat, with sharpness 44:

    >>> from dmfsharp import section6_example
    >>> sharpness(section6_example())
    44.0
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return sharpness_data(chain, terms, target, method)
    if method not in SHARPNESS_METHODS:
        raise ValueError(f"method must be one of {SHARPNESS_METHODS}, got {method!r}")
    _require_minimum(chain, target, "sharpness")
    d0, dl = chain.dims[0], chain.dims[-1]
    if method == "theorem4" or (method == "auto" and d0 == dl == 1):
        if not d0 == dl == 1:
            raise ValueError(f"Theorem 4 needs d_0 = d_L = 1, got dims {chain.dims}")
        return 2.0 * float(sum(np.vdot(a, a) * np.vdot(b, b) for a, b in zip(chain.suffix, chain.prefix)))
    if method == "corollary6" or (method == "auto" and chain.depth == 2):
        if chain.depth != 2:
            raise ValueError(f"Corollary 6 needs depth L = 2, got L = {chain.depth}")
        w1, w2 = chain.factors
        return 2.0 * (_sigma_max_sq(w1) + _sigma_max_sq(w2))
    lam, _ = _top_of_s(chain, method, want_vector=False)
    return 2.0 * lam


def hessian_trace(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> float:
    """Exact Hessian trace at a global minimum: ``2 sum_k ||A_k||_F^2 ||B_k||_F^2``.

    ``trace(2 K^T K) = 2 sum_k ||B_k^T (x) A_k||_F^2``. With ``data=X`` (or
    ``covariance=``, ``normalization=`` as in :func:`sharpness`):
    ``2c sum_k ||A_k||_F^2 tr(B_k C B_k^T)``, ``C = X X^T``.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> round(hessian_trace(section6_example()), 10)  # 2 * 3 * (||W_1||_F^2 + ||W_2||_F^2)
    200.6666666667
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return trace_data(chain, terms, target)
    _require_minimum(chain, target, "hessian_trace")
    return 2.0 * float(sum(np.vdot(a, a) * np.vdot(b, b) for a, b in zip(chain.suffix, chain.prefix)))


def hessian_spectrum(
    factors: FactorsLike,
    *,
    target: Any = None,
    k: int | None = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
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
    data, covariance, normalization
        As in :func:`sharpness`: the result is then ``2c eig(S_C)`` without zeros.

    Examples
    --------
    >>> import numpy as np
    >>> hessian_spectrum([np.array([[1.0, 0.0]]), np.array([[2.0]])])
    array([10.,  8.])
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return spectrum_data(chain, terms, target, k)
    _require_minimum(chain, target, "hessian_spectrum")
    if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if chain.depth != 2:
        return 2.0 * _spectrum_of_grams(_grams(chain), k)
    d0, dl = chain.dims[0], chain.dims[-1]
    w1, w2 = chain.factors
    a = np.zeros(d0)
    s1 = scipy.linalg.svdvals(w1)
    a[: s1.size] = s1**2
    b = np.zeros(dl)
    s2 = scipy.linalg.svdvals(w2)
    b[: s2.size] = s2**2
    out = 2.0 * _nonzero((a[:, None] + b[None, :]).ravel(), d0 * dl)
    return out if k is None else out[:k]


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
    ``X_S`` of ``S_C`` (:mod:`dmfsharp.data`).

    Examples
    --------
    >>> import numpy as np
    >>> v = top_eigenvector([np.array([[1.0]]), np.array([[2.0]])])
    >>> [np.round(b, 6).tolist() for b in v]  # proportional to (A_1, B_2) = (2, 1)
    [[[0.894427]], [[0.447214]]]
    """
    chain = as_chain(factors)
    terms = data_terms(chain, data=data, covariance=covariance, normalization=normalization)
    if terms is not None:
        return top_eigenvector_data(chain, terms, target)
    _require_minimum(chain, target, "top_eigenvector")
    d0, dl = chain.dims[0], chain.dims[-1]
    if d0 == dl == 1:
        X = np.ones((1, 1))
    elif chain.depth == 2:
        w1, w2 = chain.factors
        _, _, vh1 = scipy.linalg.svd(w1, full_matrices=False)
        u2, _, _ = scipy.linalg.svd(w2, full_matrices=False)
        X = np.outer(u2[:, 0], vh1[0])
    else:
        _, X = _top_of_s(chain, "auto")
    from .loss import _kt_apply

    return _sign_fix(_normalize(_kt_apply(chain, X)))


def zero_eigenvector(factors: FactorsLike, *, target: Any = None) -> list[np.ndarray]:
    """A deterministic unit direction with zero Hessian curvature at a global minimum.

    The tangent of the rescaling ``W_k -> (1 + t a_k) W_k`` with ``a_k = k - (L+1)/2``
    (so ``sum_k a_k = 0``): ``U_k = a_k W_k``. Then ``sum_k A_k U_k B_k = (sum_k a_k) P
    = 0``, so ``U`` lies in the null space of ``K`` and of ``H = 2 K^T K``: it points
    along the manifold of minima (Appendix D.1, "Scale Invariance and Manifolds").
    Used as the second direction ``v_N`` of the landscape maps.
    """
    chain = as_chain(factors)
    _require_minimum(chain, target, "zero_eigenvector")
    L = chain.depth
    blocks = [(k - (L + 1) / 2.0) * w for k, w in enumerate(chain.factors, start=1)]
    return _sign_fix(_normalize(blocks))
