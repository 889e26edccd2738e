r"""The Kronecker-sum matrix ``S`` shared by the exact routes, with and without data.

At a global minimum the nonzero Hessian eigenvalues are twice those of

.. math::

    S = \sum_{k=1}^L G^B_k \otimes G^A_k, \qquad G^A_k = A_k A_k^\top,

with ``G^B_k = B_k^T B_k`` for eq. 15 (Theorem 5, :mod:`dmfsharp.exact`) and
``G^B_k = F^T B_k^T B_k F`` for the loss on data (``F F^T = X X^T``,
:mod:`dmfsharp.data`). Both routes hand this module the list of pairs
``(G^B_k, G^A_k)`` (``grams``) and get back ``lambda_max`` with its eigenvector, or the
nonzero spectrum: the dense ``S`` when it is small, matrix-free Lanczos on
``X -> sum_k G^A_k X G^B_k`` (``d_L x d_0`` matrices, ``d_0 -> r`` with data) otherwise.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

#: Up to this ``d_0 d_L`` the matrix ``S`` is formed densely for ``lambda_max``. Measured
#: crossover (benchmarks): dense ``eigh`` wins at 144 (0.5 vs 0.8 ms), Lanczos at 256
#: (0.9-1.5 vs 2-2.6 ms) and grows its lead after that (1-2 vs 35-39 ms at 900).
DENSE_S_MAX = 196
#: Up to this ``d_0 d_L`` the full spectrum of ``S`` is found from the dense matrix.
SPECTRUM_DENSE_MAX = 4096


def _dense_s(grams) -> np.ndarray:
    gb0, ga0 = grams[0]
    s = np.zeros((gb0.shape[0] * ga0.shape[0],) * 2)
    for gb, ga in grams:
        s += np.kron(gb, ga)
    return 0.5 * (s + s.T)


def _is_identity(g: np.ndarray) -> bool:
    return bool(np.all(np.diagonal(g) == 1.0)) and np.count_nonzero(g) == g.shape[0]


class _KroneckerSum:
    """``X -> sum_k Ga_k X Gb_k`` on ``d_L x d_0`` matrices, identity factors skipped.

    ``B_1^T B_1 = I`` and ``A_L A_L^T = I``, so of the ``2 L`` products per application
    two are dropped: ``(L - 1) (d_L^2 d_0 + d_L d_0^2)`` multiply-adds in all.
    """

    def __init__(self, grams):
        self.d0, self.dl = grams[0][0].shape[0], grams[0][1].shape[0]
        self.terms = [
            (None if _is_identity(gb) else gb, None if _is_identity(ga) else ga) for gb, ga in grams
        ]

    def apply(self, X: np.ndarray) -> np.ndarray:
        Y = np.zeros((self.dl, self.d0))
        for gb, ga in self.terms:
            T = X if ga is None else ga @ X
            Y += T if gb is None else T @ gb
        return Y

    def matvec(self, x: np.ndarray) -> np.ndarray:
        X = np.reshape(x, (self.dl, self.d0), order="F")
        return np.reshape(self.apply(X), -1, order="F")

    def rank_one_start(self, steps: int = 12) -> np.ndarray:
        """``vec(a b^T)`` from alternating power steps on ``sum_k (a^T Ga_k a)(b^T Gb_k b)``.

        Each step costs ``O(L (d_0^2 + d_L^2))``, a fraction ``1 / min(d_0, d_L)`` of one
        application of S, and it lands near the top eigenvector of S (exactly on it for
        ``L = 2``), so Lanczos from it needs far fewer steps than from a random vector.
        """
        rng = np.random.default_rng(0)
        a = np.abs(rng.standard_normal(self.dl)) + 1.0
        b = np.abs(rng.standard_normal(self.d0)) + 1.0
        a /= np.linalg.norm(a)
        b /= np.linalg.norm(b)

        def half(vec, which):  # -> (sum_k c_k G_k vec, quad forms vec^T G_k vec)
            outs = [vec if t[which] is None else t[which] @ vec for t in self.terms]
            return outs, np.array([float(vec @ o) for o in outs])

        for _ in range(steps):
            ga_a, qa = half(a, 1)
            gb_b, _ = half(b, 0)
            b = sum(q * v for q, v in zip(qa, gb_b))
            b /= np.linalg.norm(b)
            _, qb = half(b, 0)
            a = sum(q * v for q, v in zip(qb, ga_a))
            a /= np.linalg.norm(a)
        return np.reshape(np.outer(a, b), -1, order="F")


def _s_operator(grams) -> LinearOperator:
    ks = _KroneckerSum(grams)
    n = ks.d0 * ks.dl
    return LinearOperator((n, n), matvec=ks.matvec, rmatvec=ks.matvec, dtype=np.float64)


def _v0(n: int) -> np.ndarray:
    """Deterministic Lanczos start vector (results do not depend on global state)."""
    return np.random.default_rng(0).standard_normal(n)


def _top_eig_dense(s: np.ndarray):
    n = s.shape[0]
    w, v = scipy.linalg.eigh(s, subset_by_index=[n - 1, n - 1])
    return float(w[0]), v[:, 0]


#: Relative accuracy of ``lambda_max`` the Krylov route stops at (a posteriori bound).
LANCZOS_VALUE_RTOL = 1e-13
#: Relative eigen-residual ``||S x - theta x|| / theta`` required when the vector is wanted.
LANCZOS_VECTOR_RTOL = 1e-12
#: Most Lanczos steps before handing over to restarted ARPACK.
LANCZOS_MAX_STEPS = 120
#: Bytes the Lanczos basis may take; fewer steps are allowed when ``d_0 d_L`` is huge.
LANCZOS_BASIS_BYTES = 128 * 2**20


def _lanczos_top(matvec, v0: np.ndarray, *, want_vector: bool, max_steps: int = LANCZOS_MAX_STEPS):
    """Largest eigenpair of a symmetric PSD operator by Lanczos with full reorthogonalization.

    Stops on the a posteriori bound for the Ritz value ``theta``: with residual
    ``rho = ||S x - theta x||`` (read off the tridiagonal matrix) and ``delta`` the gap
    to the next Ritz value, ``|lambda - theta| <= min(rho, rho^2 / delta)`` (Kahan;
    Rayleigh quotient bound). It stops when that is below ``LANCZOS_VALUE_RTOL theta``,
    and, when the vector is wanted, also ``rho <= LANCZOS_VECTOR_RTOL theta``. The
    eigenvalue converges quadratically in the eigenvector, which is why this stops
    well before ARPACK at ``tol=0`` does. Returns ``None`` when not converged within
    ``max_steps`` (the caller falls back to ARPACK from the best Ritz vector).
    """
    n = v0.size
    m = max(1, min(n, max_steps, LANCZOS_BASIS_BYTES // (8 * n) - 1))
    # the basis lives in blocks of rows, allocated as the steps go: memory follows the
    # number of steps taken, never a copy of the whole basis
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
        # two passes of classical Gram-Schmidt against the whole basis
        for _ in range(2):
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
        done = (err if j >= 4 else rho) <= LANCZOS_VALUE_RTOL * scale
        if want_vector:
            done = done and rho <= LANCZOS_VECTOR_RTOL * scale
        if done or beta[j] <= np.finfo(float).eps * scale or j + 1 == n:
            return theta, combine(y), j + 1
        push(w / beta[j], j + 1)
    return None, combine(y), m


#: Rows per block of the Lanczos basis.
_BLOCK = 16


def _top_eig_matrix_free(grams, want_vector: bool = True):
    """``(lambda_max(S), x)`` matrix-free: Lanczos from the rank-one start, ARPACK fallback."""
    ks = _KroneckerSum(grams)
    # the rank-one start plus a little of a seeded random vector: a start built from S's
    # own structure could lie in an invariant subspace of S that misses the top
    # eigenvector; the random part rules that out and costs no extra steps in practice
    x0 = ks.rank_one_start()
    x0 /= np.linalg.norm(x0)
    noise = _v0(x0.size)
    x0 += 1e-3 * noise / np.linalg.norm(noise)
    lam, x, _ = _lanczos_top(ks.matvec, x0, want_vector=want_vector, max_steps=LANCZOS_MAX_STEPS)
    if lam is None:  # a clustered top of the spectrum: restarted ARPACK takes over
        n = ks.d0 * ks.dl
        op = LinearOperator((n, n), matvec=ks.matvec, rmatvec=ks.matvec, dtype=np.float64)
        try:
            w, v = eigsh(op, k=1, which="LA", tol=0.0, v0=x, ncv=min(n, 24))
        except ArpackNoConvergence as exc:
            raise RuntimeError(f"Lanczos on S did not converge: {exc}") from exc
        lam, x = float(w[0]), v[:, 0]
    return lam, x / np.linalg.norm(x)


def _top_of_grams(grams, method: str = "auto", want_vector: bool = True):
    """``(lambda_max(S), x)``, ``x`` a unit vector: the dense ``S`` or Lanczos.

    ``method="auto"`` forms ``S`` up to ``DENSE_S_MAX``; ``"dense"`` and ``"lanczos"``
    force a route (tiny ``S``, below 3, is always dense). With ``want_vector=False`` the
    Krylov route stops once ``lambda_max`` is exact to ``LANCZOS_VALUE_RTOL`` (``x`` is
    then only approximately the eigenvector).
    """
    n = grams[0][0].shape[0] * grams[0][1].shape[0]
    if method == "dense" or n < 3 or (method == "auto" and n <= DENSE_S_MAX):
        return _top_eig_dense(_dense_s(grams))
    return _top_eig_matrix_free(grams, want_vector)


def _spectrum_of_grams(grams, k: int | None, size: str = "d_0 d_L", name: str = "S") -> np.ndarray:
    """Nonzero eigenvalues of ``S``, descending (the ``k`` largest when ``k`` is given).

    Dense up to ``SPECTRUM_DENSE_MAX``, else ARPACK on the matrix-free ``S`` (then ``k``
    is required). ``size`` and ``name`` name ``dim S`` and ``S`` in the error message.
    """
    n = grams[0][0].shape[0] * grams[0][1].shape[0]
    if n <= SPECTRUM_DENSE_MAX:
        eigs = scipy.linalg.eigvalsh(_dense_s(grams))
    else:
        if k is None:
            raise ValueError(
                f"{size} = {n} is too large for the full spectrum of {name}; pass k= for the "
                "k largest eigenvalues"
            )
        eigs = eigsh(
            _s_operator(grams), k=min(k, n - 1), which="LA", tol=0.0, v0=_v0(n), return_eigenvectors=False
        )
    out = _nonzero(eigs, n)
    return out if k is None else out[:k]


def _nonzero(eigs: np.ndarray, n: int) -> np.ndarray:
    eigs = np.sort(np.asarray(eigs, dtype=float))[::-1]
    if eigs.size == 0 or eigs[0] <= 0:
        return eigs[:0]
    tol = 8.0 * n * np.finfo(float).eps * eigs[0]
    return eigs[eigs > tol]


def _sign_fix(blocks: list[np.ndarray]) -> list[np.ndarray]:
    """Make the entry of largest magnitude positive (deterministic sign)."""
    flat = np.concatenate([b.ravel() for b in blocks])
    if flat.size and flat[np.argmax(np.abs(flat))] < 0:
        return [-b for b in blocks]
    return blocks


def _normalize(blocks: list[np.ndarray]) -> list[np.ndarray]:
    nrm = np.sqrt(sum(float(np.vdot(b, b)) for b in blocks))
    if nrm == 0:
        raise ValueError("the direction is zero (all factors vanish)")
    return [b / nrm for b in blocks]
