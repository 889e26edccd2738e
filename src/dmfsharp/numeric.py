"""Numerical references for the largest Hessian eigenvalue, valid at any point.

These run on the analytic Hessian-vector product of :mod:`dmfsharp.loss` (no closed
form, no minimum assumed): dense ``eigvalsh`` of the full Hessian, Lanczos through
SciPy's :func:`~scipy.sparse.linalg.eigsh` (ARPACK), or power iteration. They are the
route to use away from global minima, and the reference the closed forms are tested
against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from .chain import FactorsLike, as_chain, check_like
from .loss import dense_hessian, flat_hvp

__all__ = ["EigenResult", "numerical_sharpness", "NUMERICAL_METHODS"]

NUMERICAL_METHODS = ("dense", "lanczos", "power")


@dataclass(frozen=True)
class EigenResult:
    """Result of a numerical largest-eigenvalue computation.

    Attributes
    ----------
    value : float
        The largest algebraic eigenvalue found.
    vector : list of ndarray
        The unit eigenvector, shaped like the factors.
    residual_norm : float
        ``||H v - value v||``.
    num_hvp : int
        Number of Hessian-vector products used (``N`` for ``"dense"``).
    converged : bool
        Whether the method met its tolerance.
    method : str
        ``"dense"``, ``"lanczos"`` or ``"power"``.
    """

    value: float
    vector: list = field(repr=False)
    residual_norm: float
    num_hvp: int
    converged: bool
    method: str


def numerical_sharpness(
    factors: FactorsLike,
    *,
    target: Any = None,
    method: str = "lanczos",
    tol: float = 1e-10,
    seed: int | None = 0,
    maxiter: int | None = None,
    v0: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> EigenResult:
    """Largest algebraic Hessian eigenvalue of eq. 15 at any point, numerically.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        The point ``[W_1, ..., W_L]``.
    target : array_like, optional
        ``M``; None means the factors' own product. Any point is allowed.
    method : {"lanczos", "dense", "power"}
        ``"lanczos"``: ARPACK ``eigsh(which="LA")`` on the Hessian operator.
        ``"dense"``: the full Hessian and ``eigh`` (``N <= 6000``).
        ``"power"``: power iteration; it converges to the eigenvalue of largest
        magnitude, so when that is negative it is rerun on ``H - value I`` to reach the
        largest algebraic one.
    tol : float
        Relative accuracy: ARPACK's ``tol`` for Lanczos; for power iteration the stop
        is ``||H v - value v|| <= tol |value|``.
    seed : int or None
        Seed of the random start vector (``numpy.random.default_rng``).
    maxiter : int, optional
        Iteration cap (ARPACK restarts, or power steps; default 10000 for power).
    v0 : sequence of array_like, optional
        A start vector shaped like the factors (e.g. the previous eigenvector, for a
        warm start along a trajectory); overrides ``seed``.
    data, covariance, normalization
        The loss of a deep linear network on data, ``c ||Y - P X||_F^2`` with
        ``target = Y`` (see :mod:`dmfsharp.data`); any point is allowed.

    Returns
    -------
    EigenResult

    Examples
    --------
    >>> import numpy as np
    >>> res = numerical_sharpness([np.array([[2.0]]), np.array([[3.0]])], method="dense")
    >>> round(res.value, 10), res.num_hvp
    (26.0, 2)
    """
    chain = as_chain(factors)
    if method not in NUMERICAL_METHODS:
        raise ValueError(f"method must be one of {NUMERICAL_METHODS}, got {method!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    hvp = flat_hvp(chain, target=target, data=data, covariance=covariance, normalization=normalization)
    n = chain.num_params
    counter = [0]

    def apply(v):
        counter[0] += 1
        return hvp(v)

    def residual_of(lam, vec):
        return float(np.linalg.norm(apply(vec) - lam * vec))

    if method == "dense" or n < 3:
        h = dense_hessian(chain, target=target, data=data, covariance=covariance, normalization=normalization)
        w, v = scipy.linalg.eigh(h, subset_by_index=[n - 1, n - 1])
        vec = v[:, 0]
        return EigenResult(float(w[0]), chain.unflatten(vec), residual_of(float(w[0]), vec), n, True, "dense")

    if v0 is not None:
        start = np.concatenate([b.ravel() for b in check_like(chain, v0, "v0")])
        if not np.any(start):
            start = np.random.default_rng(seed).standard_normal(n)
    else:
        start = np.random.default_rng(seed).standard_normal(n)

    if method == "lanczos":
        op = LinearOperator((n, n), matvec=apply, rmatvec=apply, dtype=np.float64)
        converged = True
        try:
            w, v = eigsh(op, k=1, which="LA", tol=tol, v0=start, maxiter=maxiter, ncv=min(n, 20))
            lam, vec = float(w[0]), v[:, 0]
        except ArpackNoConvergence as exc:
            converged = False
            if len(exc.eigenvalues):
                lam, vec = float(exc.eigenvalues[-1]), exc.eigenvectors[:, -1]
            else:
                vec = start / np.linalg.norm(start)
                lam = float(vec @ apply(vec))
        num = counter[0]
        return EigenResult(lam, chain.unflatten(vec), residual_of(lam, vec), num, converged, "lanczos")

    # power iteration
    maxiter = 10000 if maxiter is None else int(maxiter)
    lam, vec, converged = _power(apply, start, tol, maxiter, shift=0.0)
    if lam < 0:
        lam2, vec2, converged = _power(apply, start, tol, maxiter, shift=lam)
        lam, vec = lam2 + lam, vec2
    num = counter[0]
    return EigenResult(lam, chain.unflatten(vec), residual_of(lam, vec), num, converged, "power")


def _power(apply, start, tol, maxiter, shift):
    v = start / np.linalg.norm(start)
    lam = 0.0
    for _ in range(maxiter):
        hv = apply(v) - shift * v
        lam = float(v @ hv)
        if np.linalg.norm(hv - lam * v) <= tol * abs(lam):
            return lam, v, True
        nrm = np.linalg.norm(hv)
        if nrm == 0:
            return 0.0, v, True
        v = hv / nrm
    return lam, v, False
