r"""``lambda_max(S)`` for wide ends: the Kronecker-sum split, its eigenbasis, and Davidson.

For ``S(X) = sum_k Ga_k X Gb_k`` on ``d_L x r`` matrices (Theorem 5) and any scalars
``ca_k, cb_k`` the split

.. math::

    S(X) = \mathcal A X + X \mathcal B + \sum_k (G^A_k - c^A_k I)\, X\, (G^B_k - c^B_k I),
    \quad \mathcal A = \sum_k c^B_k G^A_k, \quad
    \mathcal B = \sum_k c^A_k G^B_k - \Big(\sum_k c^A_k c^B_k\Big) I

is exact (terms with an identity Gram go whole into ``A`` or ``B``). With the scalars of
the best rank-one ``u v^T`` (alternating power steps), the Kronecker sum ``B (+) A`` holds
most of ``S``; in the eigenbases ``A = Ua diag(a) Ua^T``, ``B = Ub diag(b) Ub^T`` it is
diagonal and the remainder acts as ``Y -> sum_k Ra_k Y Rb_k`` (``Ra_k = Ua^T (Ga_k - ca_k)
Ua``). Davidson with the Jacobi preconditioner ``(theta - diag)^{-1}`` then reaches the
residual tolerance in ~10-15 applications where Lanczos on ``S`` needs ~50.

Certification is the solver's own rule (:func:`dmfsharp.linalg.lanczos.residual_tolerance`):
the Ritz vector is mapped back, ``X = Ua Y Ub^T``, and ``||S(X) - theta X||`` is computed
with the original Gram matrices, so Weyl's bound holds regardless of the rounding in the
``eigh`` and the basis change. That the value is the *top* one rests, as for Lanczos, on
the start: the top pair of the Kronecker-sum part plus the seeded admixture
(:data:`dmfsharp.linalg.lanczos.ADMIXTURE`) and one independent seeded random vector in
the first basis; a warm start (the previous GD step's vector) joins these, never replaces
them, so a warm start near a lower eigenvector cannot capture the iteration (tested with
the second eigenvector as the warm start). When the two top Ritz values cluster (:data:`CLUSTER_RTOL`), or the
certificate or the step budget fails, the result comes back uncertified with its Ritz
vectors, and the caller finishes with the certified block Lanczos started from them.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Theorem 5). E. R. Davidson, The iterative calculation
of a few of the lowest eigenvalues ..., J. Comput. Phys. 17 (1975).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import Float64OverflowError
from .lanczos import ADMIXTURE, CLUSTER_RTOL, EigenPairs, residual_tolerance

__all__ = ["davidson_top", "davidson_cost", "lanczos_cost", "apply_grams"]

#: Largest Davidson basis before handing over to Lanczos.
MAX_STEPS = 60
#: Alternating power steps (rounds x steps) for the rank-one scalars ``ca_k, cb_k``.
MEAN_FIELD_ROUNDS, MEAN_FIELD_STEPS = 2, 15
#: Cost model in flop equivalents: a dense ``eigh`` with vectors of size ``n`` costs about
#: ``EIGH_FLOPS n^3`` (measured on one OpenBLAS thread against a matrix product: 19 at
#: n = 200, 10 at 500, 8.5 at 1000); Lanczos needs ~``LANCZOS_STEPS`` applications of ``S``
#: where it is slow (46-70 measured with the certified stop, ``benchmarks/bench_floor.py``
#: cases) and Davidson ~``DAVIDSON_STEPS`` (13-15 measured on the same cases).
EIGH_FLOPS = 12.0
LANCZOS_STEPS = 50
DAVIDSON_STEPS = 16

Pairs = Sequence[tuple[np.ndarray | None, np.ndarray | None]]


def apply_grams(grams: Pairs, x: np.ndarray) -> np.ndarray:
    """``sum_k Ga_k X Gb_k`` for one ``d_L x r`` matrix (``None`` is an identity)."""
    out = np.zeros_like(x)
    for gb, ga in grams:
        t = x if ga is None else ga @ x
        out += t if gb is None else t @ gb
    return out


def lanczos_cost(grams: Pairs, rb: int, ra: int) -> float:
    """Flops of ~``LANCZOS_STEPS`` applications of ``S`` (and their reorthogonalization)."""
    n = rb * ra
    per = sum((0 if ga is None else 2 * ra * n) + (0 if gb is None else 2 * rb * n) for gb, ga in grams)
    return LANCZOS_STEPS * (per + 8 * n * LANCZOS_STEPS)


def davidson_cost(grams: Pairs, rb: int, ra: int) -> float:
    """Flops of the split (two ``eigh``, rotations) plus ~``DAVIDSON_STEPS`` rotated applications."""
    n = rb * ra
    mixed = sum(1 for gb, ga in grams if gb is not None and ga is not None)
    setup = EIGH_FLOPS * (ra**3 + rb**3) + mixed * 4 * (ra**3 + rb**3)
    per = mixed * 2 * n * (ra + rb) + 8 * n * DAVIDSON_STEPS
    full = sum((0 if ga is None else 2 * ra * n) + (0 if gb is None else 2 * rb * n) for gb, ga in grams)
    return setup + DAVIDSON_STEPS * per + full


def _power_top(g: np.ndarray, v: np.ndarray, steps: int) -> np.ndarray:
    for _ in range(steps):
        w = g @ v
        nrm = np.linalg.norm(w)
        if nrm == 0:
            return v
        v = w / nrm
    return v


def _split(
    grams: Pairs, rb: int, ra: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """``(a, Ua, b, Ub, [(Ra_k, Rb_k)])`` of the Kronecker-sum split in its eigenbasis."""
    mixed = [(gb, ga) for gb, ga in grams if gb is not None and ga is not None]
    a_fixed = np.zeros((ra, ra))
    b_fixed = np.zeros((rb, rb))
    shift = 0.0
    for gb, ga in grams:
        if gb is None and ga is None:
            shift += 1.0
        elif gb is None:
            assert ga is not None  # the pair (None, None) is handled above
            a_fixed += ga
        elif ga is None:
            b_fixed += gb
    u = np.full(ra, ra**-0.5)
    v = np.full(rb, rb**-0.5)
    for _ in range(MEAN_FIELD_ROUNDS):
        cb = [float(v @ gb @ v) for gb, _ in mixed]
        u = _power_top(
            a_fixed + sum((c * ga for c, (_, ga) in zip(cb, mixed)), np.zeros((ra, ra))), u, MEAN_FIELD_STEPS
        )
        ca = [float(u @ ga @ u) for _, ga in mixed]
        v = _power_top(
            b_fixed + sum((c * gb for c, (gb, _) in zip(ca, mixed)), np.zeros((rb, rb))), v, MEAN_FIELD_STEPS
        )
    ca = [float(u @ ga @ u) for _, ga in mixed]
    cb = [float(v @ gb @ v) for gb, _ in mixed]
    a_mat = a_fixed + sum((c * ga for c, (_, ga) in zip(cb, mixed)), np.zeros((ra, ra)))
    b_mat = b_fixed + sum((c * gb for c, (gb, _) in zip(ca, mixed)), np.zeros((rb, rb)))
    b_mat[np.diag_indices(rb)] += shift - sum(x * y for x, y in zip(ca, cb))
    a, ua = np.linalg.eigh(0.5 * (a_mat + a_mat.T))
    b, ub = np.linalg.eigh(0.5 * (b_mat + b_mat.T))
    rot = []
    for (gb, ga), x, y in zip(mixed, ca, cb):
        ga_c = ga - x * np.eye(ra)
        gb_c = gb - y * np.eye(rb)
        rot.append((ua.T @ ga_c @ ua, ub.T @ gb_c @ ub))
    return a, ua, b, ub, rot


def davidson_top(
    grams: Pairs,
    rb: int,
    ra: int,
    *,
    rtol: float = 1e-13,
    seed: int = 0,
    max_steps: int = MAX_STEPS,
    v0: np.ndarray | None = None,
) -> EigenPairs:
    """Top eigenpair of ``S = sum_k Gb_k (x) Ga_k`` by Davidson in the split's eigenbasis.

    Parameters
    ----------
    grams : sequence of (ndarray or None, ndarray or None)
        ``(G^B_k, G^A_k)``, ``rb``- and ``ra``-square symmetric PSD; ``None`` is an identity.
    rb, ra : int
        ``d_0`` (or the data rank ``r``) and ``d_L``.
    rtol : float, optional
        Residual tolerance of :func:`dmfsharp.linalg.lanczos.top_eigenpairs`.
    seed : int, optional
        Seed of the admixture and the extra random start vector.
    max_steps : int, optional
        Applications of the rotated operator before giving up.
    v0 : ndarray, shape (rb ra,), optional
        Warm start (column-major ``vec``), e.g. the previous step's top eigenvector; it
        replaces the split's top pair and gets the same admixture and extra random vector.

    Returns
    -------
    EigenPairs
        ``converged=True``: ``values[0]`` is certified by the residual against the original
        ``S`` and ``vectors[:, 0]`` is the unit eigenvector (column-major ``vec``). Otherwise
        (clustered top, budget, certificate failed) ``vectors`` holds the two top Ritz
        vectors for a Lanczos warm start.

    Raises
    ------
    Float64OverflowError
        If the operator produces non-finite values.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Theorem 5).

    Examples
    --------
    >>> import numpy as np
    >>> ga1, gb3 = np.diag([3.0, 1.0]), np.diag([2.0, 1.0, 0.5])
    >>> res = davidson_top([(None, ga1), (np.eye(3), np.eye(2)), (gb3, None)], 3, 2)
    >>> round(float(res.values[0]), 12), res.converged   # 3 + 1 + 2
    (6.0, True)
    """
    n = rb * ra
    a, ua, b, ub, rot = _split(grams, rb, ra)
    diag = a[:, None] + b[None, :]
    for x, y in rot:
        diag += np.diagonal(x)[:, None] * np.diagonal(y)[None, :]

    def op(y: np.ndarray) -> np.ndarray:
        out = a[:, None] * y + y * b[None, :]
        for x, z in rot:
            out += x @ y @ z
        return out

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((ra, rb))
    start = ADMIXTURE * noise / np.linalg.norm(noise)
    start[np.unravel_index(int(np.argmax(diag)), diag.shape)] += 1.0
    pending = [start.ravel(), rng.standard_normal(ra * rb)]
    x0 = None if v0 is None else np.reshape(np.asarray(v0, dtype=np.float64), (ra, rb), order="F")
    if x0 is not None and np.all(np.isfinite(x0)) and np.linalg.norm(x0) > 0:
        # the warm start joins the cold one (never replaces it): a warm start near a lower
        # eigenvector would otherwise converge there with a certified small residual
        y0 = ua.T @ x0 @ ub
        extra = rng.standard_normal(ra * rb)
        warm = y0.ravel() / np.linalg.norm(y0) + ADMIXTURE * extra / np.linalg.norm(extra)
        pending.insert(0, warm)
    steps = max(int(max_steps), 3)
    basis = np.empty((steps, n))
    image = np.empty((steps, n))
    d = diag.ravel()
    anorm = 0.0
    m = 0
    count = 0
    theta = 0.0
    coef = np.ones(1)
    while True:
        t = pending.pop(0)
        before = float(np.linalg.norm(t))
        for _ in range(2):
            if m:
                t = t - (basis[:m] @ t) @ basis[:m]
        nrm = float(np.linalg.norm(t))
        if not nrm > 1e-12 * before:  # nothing new (or zero): a fresh random direction
            t = rng.standard_normal(n)
            t -= (basis[:m] @ t) @ basis[:m]
            nrm = float(np.linalg.norm(t))
        basis[m] = t / nrm
        image[m] = op(basis[m].reshape(ra, rb)).ravel()
        count += 1
        if not np.all(np.isfinite(image[m])):
            raise Float64OverflowError("S has non-finite entries (overflow in float64)")
        anorm = max(anorm, float(np.linalg.norm(image[m])))
        m += 1
        if pending:
            continue
        h = basis[:m] @ image[:m].T
        w, s = np.linalg.eigh(0.5 * (h + h.T))
        theta, coef = float(w[-1]), s[:, -1]
        y = coef @ basis[:m]
        r = coef @ image[:m] - theta * y
        rho = float(np.linalg.norm(r))
        tol = float(residual_tolerance(theta, rtol, anorm))
        if rho <= tol:
            clustered = m > 1 and theta - float(w[-2]) <= CLUSTER_RTOL * max(abs(theta), anorm)
            if not clustered:
                x = ua @ y.reshape(ra, rb) @ ub.T
                x /= np.linalg.norm(x)
                sx = apply_grams(grams, x)
                count += 1
                cert = float(np.linalg.norm(sx - theta * x))
                s_norm = max(anorm, float(np.linalg.norm(sx)))
                if cert <= residual_tolerance(theta, rtol, s_norm):
                    vec = np.reshape(x, -1, order="F")
                    return EigenPairs(np.array([theta]), vec[:, None], np.array([cert]), count, True)
            return _handover(w, s, basis[:m], ua, ub, ra, rb, rho, count)
        if m >= steps:
            return _handover(w, s, basis[:m], ua, ub, ra, rb, rho, count)
        den = theta - d
        floor = 1e-10 * max(abs(theta), anorm, np.finfo(float).tiny)
        den = np.where(np.abs(den) < floor, floor, den)
        # Olsen's correction: (theta - D)^{-1} (r - eps y), orthogonal to y; the plain
        # r / (theta - D) is mostly y again once y is near a unit vector of the basis
        # and stagnates at a residual proportional to the admixture
        pr, py = r / den, y / den
        pending.append(pr - (float(y @ pr) / float(y @ py)) * py)


def _handover(
    w: np.ndarray,
    s: np.ndarray,
    basis: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    ra: int,
    rb: int,
    rho: float,
    count: int,
) -> EigenPairs:
    """The top (up to two) Ritz vectors in the original ``vec`` space, uncertified."""
    p = min(2, w.size)
    cols = []
    for j in range(1, p + 1):
        x = ua @ (s[:, -j] @ basis).reshape(ra, rb) @ ub.T
        cols.append(np.reshape(x, -1, order="F"))
    return EigenPairs(np.array([float(w[-1])]), np.column_stack(cols), np.array([rho]), count, False)
