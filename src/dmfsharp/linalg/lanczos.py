r"""Certified top eigenpairs of a symmetric operator: block Lanczos with full reorthogonalization.

Every top-eigenvalue route of dmfsharp (the matrix-free ``S`` of Theorem 5, the Hessian
away from minima, the Gauss-Newton matrix) calls :func:`top_eigenpairs`. The method is
block Lanczos with full (twice-repeated) reorthogonalization and thick restarts; the
Rayleigh-Ritz step is done on the explicit projection ``Q^T (A Q)`` of the stored
products, so nothing depends on the three-term recurrence staying exact.

Stopping rule (a bound, not a heuristic). For a unit Ritz vector ``v`` with Ritz value
``theta`` and residual ``rho = ||A v - theta v||``, some eigenvalue of ``A`` lies in
``[theta - rho, theta + rho]`` (Weyl; Parlett, *The Symmetric Eigenvalue Problem*,
Thm. 4.5.1), and the largest Ritz value never exceeds ``lambda_max`` (Cauchy
interlacing). The solver stops only when every wanted pair has an explicitly computed
``rho <= max(rtol |theta|, 32 eps ||A||_est)``. No Ritz-value gap is ever used: the
distance between Ritz values is not a lower bound on the true gap, and the ``rho^2 / gap``
refinement built on it returned values off by a cluster's width.

That the converged pairs are the *top* ones rests on the start block: each start, a user
warm start included, gets a seeded random admixture, and a user warm start gets a second,
independent random column, so (with probability one) the Krylov space has a component along
every eigenvector, and a cluster or exact multiplicity at the top is seen in at least
``min(multiplicity, block)`` independent directions. Whenever a converged cluster above
the ``k``-th value fills the block (it may hide further copies) the block grows by fresh
random columns.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Theorem 5: ``lambda_max = 2 lambda_max(S)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import overload

import numpy as np

from ..errors import ConvergenceError, Float64OverflowError

__all__ = ["EigenPairs", "top_eigenpairs", "residual_tolerance", "DENSE_MAX_N", "ADMIXTURE", "CLUSTER_RTOL"]

#: Up to this size (or ``2 k + 8``) the operator is applied to the identity and ``eigh`` is used.
DENSE_MAX_N = 32
#: Residual floor, in units of ``eps ||A||_est``: what rounding in ``A v`` allows.
RESIDUAL_FLOOR_EPS = 32.0
#: Relative weight of the seeded random admixture added to every start column.
ADMIXTURE = 1e-2
#: Top Ritz values within this relative distance of the largest count as a cluster: the
#: block grows with fresh random columns until it is larger than the cluster.
CLUSTER_RTOL = 1e-6
#: Largest block the cluster rule grows to.
MAX_BLOCK = 8
#: Bytes the basis ``Q`` and its image ``A Q`` may take together.
BASIS_BYTES = 256 * 2**20
#: Largest basis (columns) before a thick restart.
MAX_BASIS = 160

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class EigenPairs:
    """Eigenpairs found by :func:`top_eigenpairs`.

    Attributes
    ----------
    values : ndarray, shape (k,)
        Eigenvalues, descending for ``which="LA"``, ascending for ``which="SA"``.
    vectors : ndarray, shape (n, k), or None
        Orthonormal eigenvectors (columns), or None when not requested.
    residuals : ndarray, shape (k,)
        ``||A v - theta v||_2`` per pair, from the explicitly computed products.
    num_products : int
        Operator applications (columns) used.
    converged : bool
        Whether every pair met the stopping rule.
    """

    values: np.ndarray
    vectors: np.ndarray | None
    residuals: np.ndarray
    num_products: int
    converged: bool


@overload
def residual_tolerance(theta: float, rtol: float, anorm: float) -> float: ...
@overload
def residual_tolerance(theta: np.ndarray, rtol: float, anorm: float) -> np.ndarray: ...
def residual_tolerance(theta: np.ndarray | float, rtol: float, anorm: float) -> np.ndarray | float:
    """The stopping rule's bound on ``||A v - theta v||``: ``max(rtol |theta|, 32 eps ||A||_est)``.

    Every certified route (this solver, :mod:`dmfsharp.linalg.davidson`) stops on it.
    """
    return np.maximum(rtol * np.abs(theta), RESIDUAL_FLOOR_EPS * _EPS * anorm)


def _check_args(
    n: object, k: object, which: object, rtol: object, max_products: object, seed: object
) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer with 1 <= k <= n = {n}, got {k!r}")
    if which not in ("LA", "SA"):
        raise ValueError(f"which must be 'LA' or 'SA', got {which!r}")
    if not (isinstance(rtol, float | int) and np.isfinite(rtol) and 0 <= rtol < 1):
        raise ValueError(f"rtol must be a finite number in [0, 1), got {rtol!r}")
    if max_products is not None and (
        isinstance(max_products, bool) or not isinstance(max_products, int | np.integer) or max_products < 1
    ):
        raise ValueError(f"max_products must be a positive integer or None, got {max_products!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")


def _start_block(v0: np.ndarray | None, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Start columns: the user's (unit, plus a random admixture) and one independent random column."""
    if v0 is None:
        return rng.standard_normal((n, k))
    v = np.asarray(v0, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] != n or v.shape[1] < 1:
        raise ValueError(f"v0 must have shape ({n},) or ({n}, b), got {np.shape(v0)}")
    if not np.all(np.isfinite(v)):
        raise ValueError("v0 must contain only finite values")
    noise = rng.standard_normal(v.shape)
    noise /= np.linalg.norm(noise, axis=0)
    norms = np.linalg.norm(v, axis=0)
    unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    # a zero column becomes pure noise; the others keep their direction up to ADMIXTURE
    start = unit + np.where(norms > 0, ADMIXTURE, 1.0) * noise
    # one independent random column beyond the user's: a warm start that lies near a
    # lower eigenvector of a tight cluster would otherwise converge to it (its residual is
    # tiny because the admixture's share of the top eigenvector is)
    extra = max(k, v.shape[1] + 1) - v.shape[1]
    return np.hstack([start, rng.standard_normal((n, extra))])


def _orthonormalize(X: np.ndarray, Q: np.ndarray, anorm_floor: float) -> np.ndarray:
    """Columns of ``X`` orthonormalized against ``Q`` and each other (CGS2); dependent ones dropped."""
    if X.shape[1] == 0:
        return X
    scale = np.linalg.norm(X, axis=0)
    for _ in range(2):
        if Q.shape[1]:
            X = X - Q @ (Q.T @ X)
    keep = np.linalg.norm(X, axis=0) > max(1e-10, anorm_floor) * np.maximum(scale, np.finfo(float).tiny)
    X = X[:, keep]
    if X.shape[1] == 0:
        return X
    u, s, _ = np.linalg.svd(X, full_matrices=False)
    u = u[:, s > 1e-10 * s[0]]
    if Q.shape[1]:  # one more pass: the SVD mixes in rounding along Q
        u = u - Q @ (Q.T @ u)
        u, s, _ = np.linalg.svd(u, full_matrices=False)
        u = u[:, s > 0.5]
    return u


def top_eigenpairs(
    matmat: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    k: int = 1,
    which: str = "LA",
    v0: np.ndarray | None = None,
    rtol: float = 1e-13,
    want_vectors: bool = False,
    seed: int | None = 0,
    max_products: int | None = None,
) -> EigenPairs:
    r"""The ``k`` largest (or smallest) eigenpairs of a symmetric operator, certified by residuals.

    Parameters
    ----------
    matmat : callable
        ``X -> A X`` for ``X`` of shape ``(n, b)``, float64; ``A`` symmetric (indefinite
        allowed).
    n : int
        Size of ``A``.
    k : int, optional
        Number of eigenpairs, ``1 <= k <= n``.
    which : {"LA", "SA"}, optional
        Largest or smallest algebraic eigenvalues.
    v0 : ndarray, shape (n,) or (n, b), optional
        Warm start block. It gets a seeded random admixture and one more random column,
        so a start inside an invariant subspace cannot hide the top.
    rtol : float, optional
        Stop when each wanted pair has ``||A v - theta v|| <= max(rtol |theta|, 32 eps
        ||A||_est)``; then ``|lambda - theta| <= ||A v - theta v||`` for an eigenvalue
        ``lambda`` of ``A``.
    want_vectors : bool, optional
        Return the eigenvectors.
    seed : int or None, optional
        Seed of the random start and admixture (``numpy.random.default_rng``).
    max_products : int, optional
        Budget of operator applications (columns); default ``5000 max(k, 2)``.

    Returns
    -------
    EigenPairs

    Raises
    ------
    ValueError
        If an argument is invalid.
    ConvergenceError
        If the budget is spent before the stopping rule holds; ``partial`` is the
        :class:`EigenPairs` reached so far (``converged=False``).
    Float64OverflowError
        If the operator returns non-finite values.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Theorem 5). B. N. Parlett, The Symmetric
    Eigenvalue Problem, SIAM, 1998 (Thm. 4.5.1; block Lanczos, ch. 13).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.diag(np.arange(1.0, 101.0))
    >>> res = top_eigenpairs(lambda x: a @ x, 100, k=2)
    >>> np.round(res.values, 10).tolist(), res.converged
    ([100.0, 99.0], True)
    >>> bool(np.all(res.residuals <= 1e-13 * res.values))  # |lambda - value| <= residual
    True
    """
    _check_args(n, k, which, rtol, max_products, seed)
    n, k = int(n), int(k)
    sign = 1.0 if which == "LA" else -1.0
    rng = np.random.default_rng(seed)
    budget = 5000 * max(k, 2) if max_products is None else int(max_products)
    count = 0

    def op(X: np.ndarray) -> np.ndarray:
        nonlocal count
        Y = np.asarray(matmat(X), dtype=np.float64)
        if Y.shape != X.shape:
            raise ValueError(f"matmat must map an ({n}, b) array to ({n}, b), got {Y.shape}")
        count += X.shape[1]
        if not np.all(np.isfinite(Y)):
            raise Float64OverflowError("the operator returned non-finite values (overflow in float64)")
        return sign * Y

    start = _start_block(v0, n, k, rng)
    if n <= max(DENSE_MAX_N, 2 * start.shape[1] + 8):
        return _dense(op, n, k, sign, want_vectors, lambda: count)

    m_max = max(min(n, MAX_BASIS, BASIS_BYTES // (16 * n)), 4 * k + 8)
    Q = np.empty((n, 0))
    AQ = np.empty((n, 0))
    X = start
    anorm = 0.0
    block = start.shape[1]
    best: EigenPairs | None = None
    while True:
        X = _orthonormalize(X, Q, 0.0)
        want = min(block, n - Q.shape[1])
        if X.shape[1] < want:  # Krylov space exhausted (an invariant subspace): fresh directions
            X = _orthonormalize(np.hstack([X, rng.standard_normal((n, want - X.shape[1]))]), Q, 0.0)
        if X.shape[1] == 0:
            raise ConvergenceError("no new directions orthogonal to the basis", partial=best)
        if count + X.shape[1] > budget:
            raise ConvergenceError(
                f"the top {k} eigenpairs did not reach the residual tolerance within "
                f"max_products={budget} operator applications",
                partial=best,
            )
        AX = op(X) if X.shape[1] else np.empty((n, 0))
        if X.shape[1]:
            anorm = max(anorm, float(np.max(np.linalg.norm(AX, axis=0))))
        Q, AQ = np.hstack([Q, X]), np.hstack([AQ, AX])
        T = Q.T @ AQ
        theta, Y = np.linalg.eigh(0.5 * (T + T.T))
        theta, Y = theta[::-1], Y[:, ::-1]
        p = min(Q.shape[1], k + block)
        V = Q @ Y[:, :p]
        R = AQ @ Y[:, :p] - V * theta[:p]
        rho = np.linalg.norm(R, axis=0)
        tol = residual_tolerance(theta[:p], rtol, anorm)
        ok = rho <= tol
        if Q.shape[1] >= k:
            best = _pairs(theta[:k], V[:, :k], rho[:k], sign, want_vectors, count, False)
        if Q.shape[1] >= n:  # Rayleigh-Ritz on the whole space: exact up to rounding
            assert best is not None  # k <= n (checked), so best was set just above
            return replace(best, converged=True)
        if Q.shape[1] >= k and np.all(ok[:k]):
            grow = _hidden_copies(theta[:p], tol, ok, k, block)
            if grow == 0:
                assert best is not None  # set above, as Q.shape[1] >= k
                return replace(best, converged=True)
            block += grow
            X = np.hstack([AX, rng.standard_normal((n, grow))])
        else:
            X = AX
            grow = _ritz_cluster_growth(theta, block, Q.shape[1])
            if grow:
                block += grow
                X = np.hstack([AX, rng.standard_normal((n, grow))])
        if X.shape[1] and Q.shape[1] + X.shape[1] > m_max:  # thick restart on the best Ritz vectors
            keep = min(Q.shape[1], max(k + block, m_max // 2))
            X = X - Q @ (Q.T @ X)  # the next block, orthogonal to the old basis
            Q, AQ = Q @ Y[:, :keep], AQ @ Y[:, :keep]


def _ritz_cluster_growth(theta: np.ndarray, block: int, m: int) -> int:
    """Columns to add when the top Ritz values cluster (a single column resolves a cluster slowly)."""
    if block >= MAX_BLOCK or m < 4 * block:
        return 0
    spread = theta[0] - theta[-1]
    size = int(np.count_nonzero(theta[0] - theta <= CLUSTER_RTOL * max(abs(theta[0]), spread)))
    return min(size + 1, MAX_BLOCK) - block if size >= max(block, 2) else 0


def _hidden_copies(theta: np.ndarray, tol: np.ndarray, ok: np.ndarray, k: int, block: int) -> int:
    """Columns to add when a converged cluster strictly above ``theta_k`` fills the block."""
    top = theta[k - 1]
    above = ok & (theta > top + 2 * tol)
    if not np.any(above):
        return 0
    vals = theta[above]
    tols = tol[above]
    size, worst = 1, 1
    for i in range(1, vals.size):
        size = size + 1 if vals[i - 1] - vals[i] <= tols[i - 1] + tols[i] else 1
        worst = max(worst, size)
    return worst + 1 - block if worst >= block else 0


def _pairs(
    theta: np.ndarray,
    V: np.ndarray,
    rho: np.ndarray,
    sign: float,
    want_vectors: bool,
    count: int,
    converged: bool,
) -> EigenPairs:
    return EigenPairs(
        values=sign * theta + 0.0,  # + 0.0: no negative zeros
        vectors=V.copy() if want_vectors else None,
        residuals=rho.copy(),
        num_products=count,
        converged=converged,
    )


def _dense(
    op: Callable[[np.ndarray], np.ndarray],
    n: int,
    k: int,
    sign: float,
    want_vectors: bool,
    counter: Callable[[], int],
) -> EigenPairs:
    """Apply the operator to the identity and diagonalize (small ``n``)."""
    AI = op(np.eye(n))
    w, V = np.linalg.eigh(0.5 * (AI + AI.T))
    w, V = w[::-1][:k], V[:, ::-1][:, :k]
    rho = np.linalg.norm(AI @ V - V * w, axis=0)
    return _pairs(w, V, rho, sign, want_vectors, counter(), True)
