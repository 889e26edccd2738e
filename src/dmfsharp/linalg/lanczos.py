r"""Extreme eigenpairs of a symmetric operator given by its block product ``X -> A X``.

The one eigensolver interface of dmfsharp: :func:`top_eigenpairs` takes ``matmat`` (an
``(n, b)`` float64 array to ``(n, b)``) and returns :class:`EigenPairs` with explicitly
computed residuals ``||A v - theta v||_2``. For the largest eigenvalue (``k=1``,
``which="LA"``) it runs Lanczos with full reorthogonalization and an a posteriori stop,
and hands over to restarted ARPACK (:func:`scipy.sparse.linalg.eigsh`) when that does
not settle; everything else goes to ARPACK directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

__all__ = [
    "EigenPairs",
    "top_eigenpairs",
    "LANCZOS_VALUE_RTOL",
    "LANCZOS_VECTOR_RTOL",
    "LANCZOS_MAX_STEPS",
    "LANCZOS_BASIS_BYTES",
]

#: Relative accuracy of ``lambda_max`` the Krylov route stops at (a posteriori bound).
LANCZOS_VALUE_RTOL = 1e-13
#: Relative eigen-residual ``||S x - theta x|| / theta`` required when the vector is wanted.
LANCZOS_VECTOR_RTOL = 1e-12
#: Most Lanczos steps before handing over to restarted ARPACK.
LANCZOS_MAX_STEPS = 120
#: Bytes the Lanczos basis may take; fewer steps are allowed when ``n`` is huge.
LANCZOS_BASIS_BYTES = 128 * 2**20
#: Rows per block of the Lanczos basis.
_BLOCK = 16


@dataclass(frozen=True)
class EigenPairs:
    """Extreme eigenpairs of a symmetric operator (see :func:`top_eigenpairs`).

    Attributes
    ----------
    values : ndarray, shape (k,)
        Descending for ``which="LA"``, ascending for ``"SA"``.
    vectors : ndarray, shape (n, k), or None
        Orthonormal columns, or None when not requested.
    residuals : ndarray, shape (k,)
        ``||A v - theta v||_2`` per pair, computed explicitly.
    num_products : int
        Operator applications (columns).
    converged : bool
        Whether the method met its tolerance.
    """

    values: np.ndarray
    vectors: np.ndarray | None
    residuals: np.ndarray
    num_products: int
    converged: bool


def _lanczos_top(matvec, v0: np.ndarray, *, rtol: float, want_vector: bool, max_steps: int):
    """Largest eigenpair by Lanczos with full reorthogonalization.

    Stops on the a posteriori bound for the Ritz value ``theta``: with residual
    ``rho = ||A x - theta x||`` (read off the tridiagonal matrix) and ``delta`` the gap
    to the next Ritz value, ``|lambda - theta| <= min(rho, rho^2 / delta)`` (Kahan;
    Rayleigh quotient bound), below ``rtol theta``; when the vector is wanted also
    ``rho <= LANCZOS_VECTOR_RTOL theta``. Returns ``(None, x, steps)`` when not
    converged within ``max_steps``.
    """
    n = v0.size
    m = max(1, min(n, max_steps, LANCZOS_BASIS_BYTES // (8 * n) - 1))
    blocks: list[np.ndarray] = []

    def row(i):
        return blocks[i // _BLOCK][i % _BLOCK]

    def combine(coef):  # sum_i coef_i q_i
        out = np.zeros(n)
        for b, blk in enumerate(blocks):
            c = coef[b * _BLOCK : (b + 1) * _BLOCK]
            if c.size:
                out += c @ blk[: c.size]
        return out

    def push(q, i):
        if i % _BLOCK == 0:
            blocks.append(np.empty((min(_BLOCK, m + 1 - i), n)))
        row(i)[:] = q

    alpha, beta = np.empty(m), np.empty(m)
    push(v0 / np.linalg.norm(v0), 0)
    theta, y = 0.0, None
    for j in range(m):
        qj = row(j)
        w = matvec(qj)
        alpha[j] = float(qj @ w)
        for _ in range(2):  # two passes of classical Gram-Schmidt against the whole basis
            for b, blk in enumerate(blocks):
                k = min(_BLOCK, j + 1 - b * _BLOCK)
                if k > 0:
                    w -= (blk[:k] @ w) @ blk[:k]
        beta[j] = float(np.linalg.norm(w))
        if j == 0:
            vals, vecs = np.array([alpha[0]]), np.ones((1, 1))
        else:
            vals, vecs = scipy.linalg.eigh_tridiagonal(alpha[: j + 1], beta[:j])
        theta, y = float(vals[-1]), vecs[:, -1]
        rho = abs(beta[j] * y[-1])
        gap = theta - vals[-2] if j > 0 else 0.0
        scale = max(abs(theta), np.finfo(float).tiny)
        err = min(rho, rho * rho / gap) if gap > 0 else rho
        # the gap estimate needs a few Ritz values: before 5 steps only Kahan's bound counts
        done = (err if j >= 4 else rho) <= rtol * scale
        if want_vector:
            done = done and rho <= LANCZOS_VECTOR_RTOL * scale
        if done or beta[j] <= np.finfo(float).eps * scale or j + 1 == n:
            return theta, combine(y), j + 1
        push(w / beta[j], j + 1)
    return None, combine(y), m


def top_eigenpairs(
    matmat: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    k: int = 1,
    which: str = "LA",
    v0: np.ndarray | None = None,
    rtol: float = 1e-13,
    want_vectors: bool = False,
    seed: int = 0,
    max_products: int | None = None,
) -> EigenPairs:
    """The ``k`` largest (``"LA"``) or smallest (``"SA"``) eigenpairs of a symmetric operator.

    Parameters
    ----------
    matmat : callable
        ``X -> A X`` for an ``(n, b)`` float64 array ``X``; ``A`` symmetric.
    n : int
        Dimension of ``A``.
    k : int
        Number of eigenpairs.
    which : {"LA", "SA"}
        Largest or smallest algebraic.
    v0 : ndarray, shape (n,) or (n, b), optional
        Start vector (the first column of a block); default a seeded Gaussian.
    rtol : float
        Relative accuracy of the eigenvalues.
    want_vectors : bool
        Return the eigenvectors.
    seed : int
        Seed of the default start vector (``numpy.random.default_rng``).
    max_products : int, optional
        Cap on Lanczos steps before the ARPACK fallback.

    Returns
    -------
    EigenPairs

    Examples
    --------
    >>> import numpy as np
    >>> a = np.diag([3.0, 1.0, 2.0, 0.5])
    >>> top_eigenpairs(lambda x: a @ x, 4, k=2).values.round(12).tolist()
    [3.0, 2.0]
    """
    counter = [0]

    def apply_block(x: np.ndarray) -> np.ndarray:
        counter[0] += x.shape[1]
        return np.asarray(matmat(x), dtype=np.float64)

    def matvec(x: np.ndarray) -> np.ndarray:
        return apply_block(np.reshape(x, (n, 1)))[:, 0]

    if v0 is None:
        start = np.random.default_rng(seed).standard_normal(n)
    else:
        start = np.asarray(v0, dtype=np.float64)
        start = start[:, 0] if start.ndim == 2 else start.reshape(-1)
    converged = True
    if k == 1 and which == "LA":
        steps = LANCZOS_MAX_STEPS if max_products is None else int(max_products)
        lam, x, _ = _lanczos_top(matvec, start, rtol=rtol, want_vector=want_vectors, max_steps=steps)
        if lam is None:  # a clustered top of the spectrum: restarted ARPACK takes over
            op = LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)
            try:
                w, v = eigsh(op, k=1, which="LA", tol=0.0, v0=x, ncv=min(n, 24))
                lam, x = float(w[0]), v[:, 0]
            except ArpackNoConvergence as exc:
                converged = False
                if len(exc.eigenvalues):
                    lam, x = float(exc.eigenvalues[-1]), exc.eigenvectors[:, -1]
                else:
                    lam = float(x @ matvec(x)) / float(x @ x)
        vals, vecs = np.array([lam]), np.reshape(x / np.linalg.norm(x), (n, 1))
    else:
        op = LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)
        try:
            w, v = eigsh(op, k=k, which=which, tol=0.0 if rtol <= 1e-13 else rtol, v0=start)
        except ArpackNoConvergence as exc:
            converged = False
            w, v = exc.eigenvalues, exc.eigenvectors
        order = np.argsort(w)[::-1] if which == "LA" else np.argsort(w)
        vals, vecs = np.asarray(w)[order], np.asarray(v)[:, order]
    products = counter[0]
    residuals = np.linalg.norm(apply_block(vecs) - vecs * vals[None, :], axis=0) if vals.size else vals
    return EigenPairs(vals, vecs if want_vectors else None, residuals, products, converged)
