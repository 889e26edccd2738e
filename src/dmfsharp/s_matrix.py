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

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg

from .linalg.kron import (
    SPECTRUM_DENSE_MAX,
    nonzero_eigenvalues,
    spectrum_of_grams,
    top_of_grams,
)
from .linalg.lanczos import top_eigenpairs
from .linalg.scaling import scale_back, split_scale, term_weights
from .loss import kt_apply
from .objective import Objective
from .validate import check_choice

__all__ = [
    "SHARPNESS_METHODS",
    "DATA_METHODS",
    "grams",
    "scaled_grams",
    "objective_spectrum",
    "top_direction",
    "scale_exponents",
    "sigma_max_sq",
    "sigma_max_split",
    "top_of_s",
    "check_method",
    "gauss_newton_top",
    "stream_grams",
    "PLAIN_RANGE_BITS",
    "SIGMA_DENSE_MAX",
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


#: Binary orders of magnitude (``2 sum_i |e_i| + 2 sum_i log2 d_i``) below which the Grams
#: are formed from the factors as they are: no product can overflow or lose its scale to
#: underflow, and the results stay bitwise those of the plain route.
PLAIN_RANGE_BITS = 900


def scale_exponents(obj: Objective) -> tuple[list[np.ndarray], list[int], np.ndarray | None, int] | None:
    """``(mantissas, exponents, F mantissa, F exponent)`` when the factors need rescaling, else None.

    ``W_i = 2^{e_i} hat W_i`` exactly (:func:`dmfsharp.linalg.scaling.split_scale`). None
    when every product of the chain stays far inside float64's range
    (:data:`PLAIN_RANGE_BITS`).
    """

    def exponent(w: np.ndarray) -> int:  # that of split_scale, without forming the mantissa
        top = max(float(w.max()), -float(w.min())) if w.size else 0.0
        return int(np.frexp(top)[1]) if top > 0 else 0

    exps = [exponent(w) for w in obj.chain.factors]
    fe = 0 if obj.factor is None else exponent(obj.factor)
    spread: float = 2 * (sum(abs(e) for e in exps) + abs(fe))
    spread += 2 * float(np.sum(np.log2(np.asarray(obj.chain.dims, dtype=float) + 1.0)))
    if spread < PLAIN_RANGE_BITS:
        return None
    parts = [split_scale(w) for w in obj.chain.factors]
    fm, fe = (None, 0) if obj.factor is None else split_scale(obj.factor)
    return [m for m, _ in parts], [e for _, e in parts], fm, fe


def stream_grams(
    W: Sequence[np.ndarray], factor: np.ndarray | None
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """``(G^B_k, G^A_k)`` lists from raw factors (streamed products; ``None`` is an identity)."""
    L = len(W)
    gb: list[np.ndarray | None] = [None] * L
    ga: list[np.ndarray | None] = [None] * L
    b = None
    for k in range(L):  # B_{k+1} = W_k B_k, B_1 = I
        if k > 0:
            b = W[0] if k == 1 else W[k - 1] @ b
        if factor is not None:
            bf = factor if b is None else b @ factor
            g = bf.T @ bf
            gb[k] = 0.5 * (g + g.T)
        elif b is not None:
            gb[k] = b.T @ b
    a = None
    for k in range(L - 2, -1, -1):  # A_k = A_{k+1} W_{k+1}
        a = W[L - 1] if k == L - 2 else a @ W[k + 1]
        ga[k] = a @ a.T
    return gb, ga


def scaled_grams(obj: Objective) -> tuple[list[tuple[np.ndarray | None, np.ndarray | None]], int, int, int]:
    """``(pairs, r, d_L, shift)`` with ``S = 2^shift sum_k hat Gb_k (x) hat Ga_k`` exactly.

    The plain :func:`grams` (``shift = 0``) unless the factors' scales put some product
    near float64's limits; then the Grams come from the mantissas ``hat W_i`` and term
    ``k``'s exact power of two ``2^{2 (sum_i e_i - e_k) + 2 e_F - shift}`` is folded into
    its non-identity Gram (Theorem 5 is homogeneous in each factor's scale;
    :mod:`dmfsharp.linalg.scaling`).
    """
    split = scale_exponents(obj)
    if split is None:
        g, r, dl = grams(obj)
        return g, r, dl, 0
    mant, exps, fm, fe = split
    total = sum(exps)
    weights, shift = term_weights([2 * (total - e) + 2 * fe for e in exps])
    gb, ga = stream_grams(mant, fm)
    pairs = []
    for w, b, a in zip(weights, gb, ga):
        if w != 1.0:
            if a is not None:
                a = a * w
            elif b is not None:
                b = b * w
        pairs.append((b, a))
    return pairs, obj.rank, obj.chain.dims[-1], shift


def objective_spectrum(obj: Objective, k: int | None) -> np.ndarray:
    """Nonzero eigenvalues of ``2c S`` (descending; the ``k`` largest), rescaled exactly.

    ``L = 2`` without data: the sums ``sigma_i(W_1)^2 + sigma_j(W_2)^2`` (Corollary 6);
    otherwise :func:`dmfsharp.linalg.kron.spectrum_of_grams` on :func:`scaled_grams`.

    Raises
    ------
    Float64OverflowError
        If the largest value overflows float64 (smaller ones that underflow become 0 and
        are dropped).
    """
    chain = obj.chain
    d0, dl = chain.dims[0], chain.dims[-1]
    if not obj.is_identity or chain.depth != 2:
        g, rb, ra, shift = scaled_grams(obj)
        size, name = ("d_0 d_L", "S") if obj.is_identity else ("r d_L", "S_C")
        vals = 2.0 * obj.scale * spectrum_of_grams(g, rb, ra, k, size=size, name=name)
    else:
        (m1, e1), (m2, e2) = (split_scale(w) for w in chain.factors)
        (w1, w2), shift = term_weights([2 * e1, 2 * e2])
        a = np.zeros(d0)
        s1 = scipy.linalg.svdvals(m1)
        a[: s1.size] = w1 * s1**2
        b = np.zeros(dl)
        s2 = scipy.linalg.svdvals(m2)
        b[: s2.size] = w2 * s2**2
        vals = 2.0 * nonzero_eigenvalues((a[:, None] + b[None, :]).ravel(), d0 * dl)
        vals = vals if k is None else vals[:k]
    if vals.size:
        scale_back(vals[0], shift, what="the largest Hessian eigenvalue")
    out = np.ldexp(vals, shift)
    return out[out > 0] if shift < 0 else out


#: Above this ``min(W.shape)``, ``sigma_max(W)^2`` comes from Lanczos on ``W W^T`` applied
#: matrix-free (O(steps * size of W)) instead of ``eigvalsh`` of the Gram (O(n^3)).
SIGMA_DENSE_MAX = 64


#: Entries with a binary exponent beyond this are rescaled before a Gram is formed (its
#: entries square, so 2**±500 would leave float64).
GRAM_SAFE_EXPONENT = 400


def sigma_max_split(w: np.ndarray) -> tuple[float, int]:
    """``(m, e)`` with ``sigma_max(W) = m * 2**e``: exact at any scale.

    ``e = 0`` for entries of ordinary size; otherwise ``W`` is split exactly into
    ``W' 2**e`` (:func:`dmfsharp.linalg.scaling.split_scale`) so the Gram of ``W'`` cannot
    overflow or underflow.
    """
    top = float(np.max(np.abs(w)))
    if top == 0.0:
        return 0.0, 0
    if abs(np.frexp(top)[1]) <= GRAM_SAFE_EXPONENT:
        return float(np.sqrt(_sigma_max_sq(w))), 0
    mant, e = split_scale(w)
    return float(np.sqrt(_sigma_max_sq(mant))), e


def sigma_max_sq(w: np.ndarray) -> float:
    """``sigma_max(W)^2``: the largest eigenvalue of the smaller Gram matrix, at any scale.

    Small: ``eigvalsh`` of the Gram. Large: Lanczos on ``v -> W (W^T v)`` (or ``W^T W``)
    through :func:`dmfsharp.linalg.lanczos.top_eigenpairs`, never forming the Gram.
    Entries beyond ``2**±400`` are rescaled by an exact power of two first;
    :class:`~dmfsharp.errors.Float64OverflowError` if the square overflows float64.
    """
    top = float(np.max(np.abs(w)))
    if top == 0.0 or abs(np.frexp(top)[1]) <= GRAM_SAFE_EXPONENT:
        return _sigma_max_sq(w)
    mant, e = split_scale(w)
    return scale_back(_sigma_max_sq(mant), 2 * e, what="sigma_max(W)^2")


def _sigma_max_sq(w: np.ndarray) -> float:
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


def _check_dense(n: int, method: str) -> None:
    if method == "dense" and n > SPECTRUM_DENSE_MAX:
        raise ValueError(
            f"method='dense' would form S of size {n} x {n} (d_0 d_L > "
            f"{SPECTRUM_DENSE_MAX}); use method='lanczos' or 'auto'"
        )


def top_of_s(
    obj: Objective, method: str = "auto", want_vector: bool = True
) -> tuple[float, np.ndarray | None]:
    """``(lambda_max(S), X)`` with ``X`` the top eigenvector of ``S`` as a ``d_L x r`` matrix.

    Exact at any scale (:func:`scaled_grams`); :class:`Float64OverflowError` if
    ``lambda_max(S)`` overflows float64.

    With ``want_vector=False`` the Krylov route stops once ``lambda_max`` is exact and
    ``X`` may be None.
    """
    chain = obj.chain
    dl, r = chain.dims[-1], obj.rank
    _check_dense(r * dl, method)
    g, rb, ra, shift = scaled_grams(obj)
    lam, x = top_of_grams(g, rb, ra, method, want_vector)
    lam = scale_back(lam, shift, what="lambda_max(S)")
    return lam, None if x is None else np.reshape(x, (dl, r), order="F")


def top_direction(obj: Objective) -> list[np.ndarray]:
    """``K^T x`` up to a positive factor, ``x`` the top eigenvector of ``S`` (block k: ``A_k^T X B_k^T``).

    ``d_0 = d_L = 1``: ``X = 1``; ``L = 2`` without data: ``X = u_1(W_2) v_1(W_1)^T``
    (Corollary 6); otherwise the top eigenvector of ``S`` (times ``F^T`` with data). With
    factors near float64's limits the blocks come from the mantissas, block ``k`` weighted
    by the exact ``2^{min_i e_i - e_k}`` (the direction is representable even where
    ``lambda_max`` is not).
    """
    chain = obj.chain
    d0, dl = chain.dims[0], chain.dims[-1]
    split = scale_exponents(obj)
    mant, exps, fm = (chain.factors, [0] * chain.depth, obj.factor) if split is None else split[:3]
    if obj.is_identity and d0 == dl == 1:
        X = np.ones((1, 1))
    elif obj.is_identity and chain.depth == 2:
        _, _, vh1 = scipy.linalg.svd(mant[0], full_matrices=False)
        u2, _, _ = scipy.linalg.svd(mant[1], full_matrices=False)
        X = np.outer(u2[:, 0], vh1[0])
    else:
        g, rb, ra, _ = scaled_grams(obj)
        _, x = top_of_grams(g, rb, ra, "auto", True)
        assert x is not None  # asked for with want_vector=True
        X = np.reshape(x, (dl, obj.rank), order="F")
        X = X if fm is None else X @ fm.T
    if split is None:
        return kt_apply(chain, X)
    lo = min(exps)
    blocks = kt_apply(chain.with_factors(mant), X)
    return [np.ldexp(b, lo - e) for b, e in zip(blocks, exps)]


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
            g, _, _, shift = scaled_grams(obj)
            lam = float(sum((1.0 if b is None else b[0, 0]) * (1.0 if a is None else a[0, 0]) for b, a in g))
            return scale_back(2.0 * lam, shift, what="the sharpness")
        if method == "corollary6" or (method == "auto" and chain.depth == 2):
            if chain.depth != 2:
                raise ValueError(f"Corollary 6 needs depth L = 2, got L = {chain.depth}")
            if scale_exponents(obj) is None:
                return 2.0 * (sigma_max_sq(chain.factors[0]) + sigma_max_sq(chain.factors[1]))
            (m1, e1), (m2, e2) = (split_scale(w) for w in chain.factors)
            (c1, c2), shift = term_weights([2 * e1, 2 * e2])
            lam = c1 * sigma_max_sq(m1) + c2 * sigma_max_sq(m2)
            return scale_back(2.0 * lam, shift, what="the sharpness")
    g, rb, ra, shift = scaled_grams(obj)
    _check_dense(rb * ra, method)
    lam, _ = top_of_grams(g, rb, ra, method, want_vector=False)
    return scale_back(2.0 * obj.scale * lam, shift, what="the sharpness")


def objective_trace(obj: Objective) -> float:
    """``2c sum_k ||A_k||_F^2 tr(B_k C B_k^T)`` (no minimum check; see :func:`hessian_trace`)."""
    chain = obj.chain
    if scale_exponents(obj) is not None:  # products near float64's limits: exact rescaling
        g, rb, ra, shift = scaled_grams(obj)
        t = sum((rb if b is None else np.trace(b)) * (ra if a is None else np.trace(a)) for b, a in g)
        return scale_back(2.0 * obj.scale * float(t), shift, what="the Hessian trace")
    pairs = zip(chain.suffix, chain.prefix, strict=True)
    if obj.gram is None:
        return 2.0 * float(sum(np.vdot(a, a) * np.vdot(b, b) for a, b in pairs))
    c = obj.gram
    return 2.0 * obj.scale * float(sum(np.vdot(a, a) * np.vdot(b @ c, b) for a, b in pairs))
