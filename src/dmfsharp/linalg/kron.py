r"""The Kronecker-sum matrix ``S = sum_k Gb_k (x) Ga_k``, dense or matrix-free.

At a global minimum the nonzero Hessian eigenvalues are ``2c`` times those of

.. math::

    S = \sum_{k=1}^L G^B_k \otimes G^A_k, \qquad G^A_k = A_k A_k^\top, \quad
    G^B_k = F^\top B_k^\top B_k F

(Theorem 5 with ``F = I``; :mod:`dmfsharp.objective`). This module takes the list of
pairs ``(G^B_k, G^A_k)`` (``grams``; ``None`` stands for an identity and is skipped)
and returns ``lambda_max`` with its eigenvector or the nonzero spectrum: from the dense
``S`` when it is small; for ``lambda_max`` with wide ends (where two dense ``eigh`` of
sizes ``d_0`` and ``d_L`` cost less than the Lanczos steps they save, by the flop model
of :mod:`dmfsharp.linalg.davidson`) by Davidson in the eigenbasis of the Kronecker-sum
part; else by :func:`dmfsharp.linalg.lanczos.top_eigenpairs` on
``X -> sum_k G^A_k X G^B_k`` (``d_L x r`` matrices).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from ..errors import ConvergenceError
from ..limits import check_allocation
from .davidson import davidson_cost, davidson_top, lanczos_cost
from .lanczos import top_eigenpairs

__all__ = [
    "Grams",
    "KroneckerSum",
    "DENSE_S_MAX",
    "SPECTRUM_DENSE_MAX",
    "dense_s",
    "s_operator",
    "top_of_grams",
    "prefer_davidson",
    "spectrum_of_grams",
    "nonzero_eigenvalues",
    "sign_fix",
    "normalize_blocks",
]

#: ``(G^B_k, G^A_k)`` per k; ``None`` is an identity of the right size.
Grams = Sequence[tuple[np.ndarray | None, np.ndarray | None]]

#: Up to this ``d_0 d_L`` the matrix ``S`` is formed densely for ``lambda_max``. Measured
#: crossover (benchmarks): dense ``eigh`` wins at 144 (0.5 vs 0.8 ms), Lanczos at 256
#: (0.9-1.5 vs 2-2.6 ms) and grows its lead after that (1-2 vs 35-39 ms at 900).
DENSE_S_MAX = 196
#: Up to this ``d_0 d_L`` the full spectrum of ``S`` is found from the dense matrix.
SPECTRUM_DENSE_MAX = 4096


class KroneckerSum:
    """``X -> sum_k Ga_k X Gb_k`` on ``d_L x r`` matrices, identity factors skipped.

    Parameters
    ----------
    grams : sequence of (ndarray or None, ndarray or None)
        ``(G^B_k, G^A_k)``; ``None`` (or an exact identity) is skipped.
    rb, ra : int
        Sizes of the ``G^B`` and ``G^A`` factors (needed when they are all None).
    """

    def __init__(self, grams: Grams, rb: int, ra: int):
        self.d0, self.dl = rb, ra
        self.terms = [(_skip(gb), _skip(ga)) for gb, ga in grams]

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, n)`` with ``n = d_L r``."""
        n = self.d0 * self.dl
        return n, n

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``sum_k Ga_k X Gb_k`` for one ``d_L x r`` matrix."""
        Y = np.zeros((self.dl, self.d0))
        for gb, ga in self.terms:
            T = X if ga is None else ga @ X
            Y += T if gb is None else T @ gb
        return Y

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``S vec(X)`` (column-major ``vec``)."""
        X = np.reshape(x, (self.dl, self.d0), order="F")
        return np.reshape(self.apply(X), -1, order="F")

    def matmat(self, xs: np.ndarray) -> np.ndarray:
        """``S`` applied to each column of an ``(n, b)`` array."""
        if xs.shape[1] == 1:
            return self.matvec(xs[:, 0])[:, None]
        return np.column_stack([self.matvec(xs[:, j]) for j in range(xs.shape[1])])

    def rank_one_start(self, steps: int = 12) -> np.ndarray:
        """``vec(a b^T)`` from alternating power steps on ``sum_k (a^T Ga_k a)(b^T Gb_k b)``.

        Each step costs ``O(L (d_0^2 + d_L^2))`` and lands near the top eigenvector of S
        (exactly on it for ``L = 2``), so Lanczos from it needs few steps.
        """
        rng = np.random.default_rng(0)
        a = np.abs(rng.standard_normal(self.dl)) + 1.0
        b = np.abs(rng.standard_normal(self.d0)) + 1.0
        a /= np.linalg.norm(a)
        b /= np.linalg.norm(b)

        def half(vec: np.ndarray, which: int) -> tuple[list[np.ndarray], np.ndarray]:
            # (G_k vec for each k, quad forms vec^T G_k vec)
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


def _skip(g: np.ndarray | None) -> np.ndarray | None:
    if g is None:
        return None
    if bool(np.all(np.diagonal(g) == 1.0)) and np.count_nonzero(g) == g.shape[0]:
        return None
    return g


def dense_s(grams: Grams, rb: int, ra: int, *, what: str = "the dense S") -> np.ndarray:
    """The ``(ra rb)``-square matrix ``sum_k Gb_k (x) Ga_k`` (checked against the memory limit)."""
    n = rb * ra
    check_allocation((n, n), what=what, alternative="sharpness_operator (matrix-free S)")
    s = np.zeros((n, n))
    # column-major vec: entry ((i, a), (j, b)) of Gb (x) Ga sits at s4[i, a, j, b] after
    # s4 = s.reshape(rb, ra, rb, ra); an identity factor only touches a diagonal band
    s4 = s.reshape(rb, ra, rb, ra)
    ib, ia = np.arange(rb), np.arange(ra)
    for gb, ga in grams:
        if gb is None and ga is None:
            s4[ib[:, None], ia[None, :], ib[:, None], ia[None, :]] += 1.0
        elif gb is None:
            assert ga is not None  # the pair (None, None) is handled above
            s4[ib, :, ib, :] += ga
        elif ga is None:
            s4[:, ia, :, ia] += gb
        else:
            s += np.kron(gb, ga)
    return 0.5 * (s + s.T)


def s_operator(grams: Grams, rb: int, ra: int) -> LinearOperator:
    """``S`` as a SciPy :class:`~scipy.sparse.linalg.LinearOperator` on column-major ``vec``."""
    ks = KroneckerSum(grams, rb, ra)
    return LinearOperator(ks.shape, matvec=ks.matvec, rmatvec=ks.matvec, dtype=np.float64)


def top_of_grams(
    grams: Grams,
    rb: int,
    ra: int,
    method: str = "auto",
    want_vector: bool = True,
    v0: np.ndarray | None = None,
) -> tuple[float, np.ndarray | None]:
    """``(lambda_max(S), x)``, ``x`` a unit vector: the dense ``S``, Davidson or Lanczos.

    ``method="auto"`` forms ``S`` up to ``DENSE_S_MAX``, then picks Davidson or Lanczos by
    :func:`prefer_davidson`; ``"dense"``, ``"davidson"`` and ``"lanczos"`` force a route
    (tiny ``S``, below 3, is always dense). With ``want_vector=False`` the Krylov route
    stops once ``lambda_max`` is exact to its tolerance and ``x`` is None. ``v0`` (a
    previous top eigenvector, column-major ``vec``) warm-starts the iterative routes; they
    add their seeded admixture to it, so it cannot hide the top.
    """
    n = rb * ra
    if method == "dense" or n < 3 or (method == "auto" and n <= DENSE_S_MAX):
        s = dense_s(grams, rb, ra)
        w, v = scipy.linalg.eigh(s, subset_by_index=[n - 1, n - 1])
        return float(w[0]), v[:, 0]
    ks = KroneckerSum(grams, rb, ra)
    if method == "davidson" or (method == "auto" and prefer_davidson(grams, rb, ra)):
        dav = davidson_top(ks.terms, rb, ra, v0=v0)
        if dav.converged:
            return float(dav.values[0]), None if not want_vector or dav.vectors is None else dav.vectors[:, 0]
        # clustered top or no certificate: the certified block Lanczos from its Ritz vectors
        res = top_eigenpairs(ks.matmat, n, k=1, which="LA", v0=dav.vectors, want_vectors=want_vector)
        if not res.converged:
            raise ConvergenceError(f"Lanczos on S did not converge after {res.num_products} products", res)
        return float(res.values[0]), None if res.vectors is None else res.vectors[:, 0]
    # the rank-one start plus a little of a seeded random vector: a start built from S's
    # own structure could lie in an invariant subspace that misses the top eigenvector
    if v0 is not None:
        x0 = np.asarray(v0, dtype=np.float64).ravel()
    else:
        x0 = ks.rank_one_start()
        x0 /= np.linalg.norm(x0)
        noise = np.random.default_rng(0).standard_normal(n)
        x0 += 1e-3 * noise / np.linalg.norm(noise)
    res = top_eigenpairs(ks.matmat, n, k=1, which="LA", v0=x0, want_vectors=want_vector)
    if not res.converged:
        raise ConvergenceError(f"Lanczos on S did not converge after {res.num_products} products", res)
    return float(res.values[0]), None if res.vectors is None else res.vectors[:, 0]


def prefer_davidson(grams: Grams, rb: int, ra: int) -> bool:
    """Whether the flop model prefers :func:`dmfsharp.linalg.davidson.davidson_top` to Lanczos."""
    return davidson_cost(grams, rb, ra) < lanczos_cost(grams, rb, ra)


def spectrum_of_grams(
    grams: Grams, rb: int, ra: int, k: int | None, size: str = "d_0 d_L", name: str = "S"
) -> np.ndarray:
    """Nonzero eigenvalues of ``S``, descending (the ``k`` largest when ``k`` is given).

    Dense up to ``SPECTRUM_DENSE_MAX``, else Lanczos on the matrix-free ``S`` (then ``k``
    is required). ``size`` and ``name`` name ``dim S`` and ``S`` in the error message.
    """
    n = rb * ra
    if n <= SPECTRUM_DENSE_MAX:
        eigs = scipy.linalg.eigvalsh(dense_s(grams, rb, ra))
    else:
        if k is None:
            raise ValueError(
                f"{size} = {n} is too large for the full spectrum of {name}; pass k= for the "
                "k largest eigenvalues"
            )
        ks = KroneckerSum(grams, rb, ra)
        eigs = top_eigenpairs(ks.matmat, n, k=min(k, n - 1), which="LA", seed=0).values
    out = nonzero_eigenvalues(eigs, n)
    return out if k is None else out[:k]


def nonzero_eigenvalues(eigs: np.ndarray, n: int) -> np.ndarray:
    """Eigenvalues above ``8 n eps lambda_max``, descending."""
    eigs = np.sort(np.asarray(eigs, dtype=float))[::-1]
    if eigs.size == 0 or eigs[0] <= 0:
        return eigs[:0]
    tol = 8.0 * n * np.finfo(float).eps * eigs[0]
    return eigs[eigs > tol]


def sign_fix(blocks: list[np.ndarray]) -> list[np.ndarray]:
    """Make the entry of largest magnitude positive (deterministic sign)."""
    flat = np.concatenate([b.ravel() for b in blocks])
    if flat.size and flat[np.argmax(np.abs(flat))] < 0:
        return [-b for b in blocks]
    return blocks


def normalize_blocks(blocks: list[np.ndarray]) -> list[np.ndarray]:
    """Scale blocks to unit total Frobenius norm (a zero direction is refused)."""
    nrm = np.sqrt(sum(float(np.vdot(b, b)) for b in blocks))
    if nrm == 0:
        raise ValueError("the direction is zero (all factors vanish)")
    return [b / nrm for b in blocks]
