r"""The matrix ``S`` of an objective: Gram pairs, top eigenpair, the Gauss-Newton top, trace.

For an :class:`~dmfsharp.objective.Objective` with data factor ``F`` and scale ``c``,

.. math::

    S = \sum_{k=1}^L (F^\top B_k^\top B_k F) \otimes (A_k A_k^\top), \qquad
    \lambda_{\max}(2c K_F^\top K_F) = 2c\, \lambda_{\max}(S)

at every point (Theorem 5's expression for the Gauss-Newton part, eq. 57); at a global
minimum it is the Hessian's. The closed forms (:mod:`dmfsharp.exact`), the minimum test
(:mod:`dmfsharp.minimum`) and the per-factor blocks (:mod:`dmfsharp.gauss_newton`) build
on these helpers; none of them checks for a minimum.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from .linalg.kron import SPECTRUM_DENSE_MAX, top_of_grams
from .linalg.lanczos import top_eigenpairs
from .objective import Objective
from .validate import check_choice

__all__ = [
    "SHARPNESS_METHODS",
    "DATA_METHODS",
    "grams",
    "sigma_max_sq",
    "top_of_s",
    "check_method",
    "gauss_newton_top",
    "objective_trace",
]

#: Routes accepted by ``sharpness(..., method=...)``.
SHARPNESS_METHODS = ("auto", "theorem4", "corollary6", "dense", "lanczos")
#: Routes that apply with data (Theorem 4 and Corollary 6 are stated for ``F = I``).
DATA_METHODS = ("auto", "dense", "lanczos")


def grams(obj: Objective) -> tuple[list[tuple[np.ndarray | None, np.ndarray | None]], int, int]:
    """``((G^B_k, G^A_k) for each k, r, d_L)`` with ``G^B_k = F^T B_k^T B_k F``, ``G^A_k = A_k A_k^T``.

    Identities (``B_1^T B_1`` without data, ``A_L A_L^T``) are ``None`` and skipped. Without
    data the prefix and suffix products are streamed (one ``B_k`` and one ``A_k`` alive
    at a time) unless the chain has them cached already.
    """
    chain = obj.chain
    L, W = chain.depth, chain.factors
    gb: list[np.ndarray | None] = [None] * L
    ga: list[np.ndarray | None] = [None] * L
    if obj.factor is not None:
        for k, b in enumerate(chain.prefix):
            bf = b @ obj.factor
            g = bf.T @ bf
            gb[k] = 0.5 * (g + g.T)
    elif chain.has_products():
        gb = [None] + [b.T @ b for b in chain.prefix[1:]]
    else:
        b = W[0]
        for k in range(1, L):  # B_{k+1} = W_k B_k
            gb[k] = b.T @ b
            if k < L - 1:
                b = W[k] @ b
    if chain.has_products():
        ga = [a @ a.T for a in chain.suffix[:-1]] + [None]
    else:
        a = W[L - 1]
        for k in range(L - 2, -1, -1):  # A_k = A_{k+1} W_{k+1}
            ga[k] = a @ a.T
            if k > 0:
                a = a @ W[k]
    return list(zip(gb, ga)), obj.rank, chain.dims[-1]


#: Above this ``min(W.shape)``, ``sigma_max(W)^2`` comes from Lanczos on ``W W^T`` applied
#: matrix-free (O(steps * size of W)) instead of ``eigvalsh`` of the Gram (O(n^3)).
SIGMA_DENSE_MAX = 64


def sigma_max_sq(w: np.ndarray) -> float:
    """``sigma_max(W)^2``: the largest eigenvalue of the smaller Gram matrix.

    Small: ``eigvalsh`` of the Gram. Large: Lanczos on ``v -> W (W^T v)`` (or ``W^T W``)
    through :func:`dmfsharp.linalg.lanczos.top_eigenpairs`, never forming the Gram.
    """
    n = min(w.shape)
    if n <= SIGMA_DENSE_MAX:
        g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        if n == 1:
            return float(g[0, 0])
        return float(scipy.linalg.eigvalsh(g, subset_by_index=[n - 1, n - 1])[0])
    if w.shape[0] <= w.shape[1]:
        matmat = lambda x: w @ (w.T @ x)  # noqa: E731 - W W^T X
    else:
        matmat = lambda x: w.T @ (w @ x)  # noqa: E731 - W^T W X
    res = top_eigenpairs(matmat, n, k=1, which="LA", seed=0)
    return float(res.values[0])


def top_of_s(
    obj: Objective, method: str = "auto", want_vector: bool = True
) -> tuple[float, np.ndarray | None]:
    """``(lambda_max(S), X)`` with ``X`` the top eigenvector of ``S`` as a ``d_L x r`` matrix.

    With ``want_vector=False`` the Krylov route stops once ``lambda_max`` is exact and
    ``X`` may be None.
    """
    chain = obj.chain
    dl, r = chain.dims[-1], obj.rank
    if method == "dense" and r * dl > SPECTRUM_DENSE_MAX:
        raise ValueError(
            f"method='dense' would form S of size {r * dl} x {r * dl} (d_0 d_L > "
            f"{SPECTRUM_DENSE_MAX}); use method='lanczos' or 'auto'"
        )
    g, rb, ra = grams(obj)
    lam, x = top_of_grams(g, rb, ra, method, want_vector)
    return lam, None if x is None else np.reshape(x, (dl, r), order="F")


def check_method(obj: Objective, method: Any) -> str:
    """Validate ``method=`` of :func:`sharpness` for this objective (fewer routes with data)."""
    if obj.is_identity:
        return check_choice(method, SHARPNESS_METHODS, "method")
    if method not in DATA_METHODS:
        raise ValueError(
            f"with data or a covariance, method must be one of {DATA_METHODS} (Theorem 4 and "
            f"Corollary 6 are for Sigma_x = I), got {method!r}"
        )
    return method


def gauss_newton_top(obj: Objective, method: str = "auto") -> float:
    """``2c lambda_max(S)`` at any point (Theorem 5's value; no minimum check)."""
    chain = obj.chain
    d0, dl = chain.dims[0], chain.dims[-1]
    if obj.is_identity:
        if method == "theorem4" or (method == "auto" and d0 == dl == 1):
            if not d0 == dl == 1:
                raise ValueError(f"Theorem 4 needs d_0 = d_L = 1, got dims {chain.dims}")
            pairs = zip(chain.suffix, chain.prefix)
            return 2.0 * float(sum(np.vdot(a, a) * np.vdot(b, b) for a, b in pairs))
        if method == "corollary6" or (method == "auto" and chain.depth == 2):
            if chain.depth != 2:
                raise ValueError(f"Corollary 6 needs depth L = 2, got L = {chain.depth}")
            w1, w2 = chain.factors
            return 2.0 * (sigma_max_sq(w1) + sigma_max_sq(w2))
    lam, _ = top_of_s(obj, method, want_vector=False)
    return 2.0 * obj.scale * lam


def objective_trace(obj: Objective) -> float:
    """``2c sum_k ||A_k||_F^2 tr(B_k C B_k^T)`` (no minimum check; see :func:`hessian_trace`)."""
    chain = obj.chain
    pairs = zip(chain.suffix, chain.prefix, strict=True)
    if obj.gram is None:
        return 2.0 * float(sum(np.vdot(a, a) * np.vdot(b, b) for a, b in pairs))
    c = obj.gram
    return 2.0 * obj.scale * float(sum(np.vdot(a, a) * np.vdot(b @ c, b) for a, b in pairs))
