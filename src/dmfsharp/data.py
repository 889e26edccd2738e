r"""Deep linear networks with data: exact curvature of ``c ||Y - W_L ... W_1 X||_F^2``.

The paper works with the whitened loss of eq. 15, ``||M - W_L ... W_1||_F^2``. With
samples ``X`` (shape ``d_0 x n``, one sample per column) and targets ``Y`` (shape
``d_L x n``) the loss of a bias-free deep linear network is

.. math::

    L(w) = c\, \|Y - P X\|_F^2, \qquad P = W_L \cdots W_1,

with ``c = 1`` (``normalization="sum"``, eq. 15 when ``X = I``), ``c = 1/n``
(``"mean"``) or ``c = 1/(2n)`` (``"half_mean"``). Given a second-moment (covariance)
matrix ``Sigma_x = E[x x^T]`` instead of samples, the loss is the expectation
``c E||y - P x||^2`` with ``y = T x`` (target ``T`` of shape ``d_L x d_0``), i.e.
``c tr((T - P) Sigma_x (T - P)^T)`` (plus a constant), with ``c = 1`` (``"mean"``) or
``c = 1/2`` (``"half_mean"``); ``Sigma_x = (1/n) X X^T`` gives the same curvature as
samples with ``"mean"``, and ``Sigma_x = I`` with ``"mean"`` is eq. 15.

Derivation. Write ``C = X X^T`` (or ``Sigma_x``) and ``G = R X^T`` with ``R = Y - P X``
(or ``G = (T - P) Sigma_x``), the *residual correlation*. Along a direction
``U = (U_1, ..., U_L)``, ``P(t) = prod_j (W_j + t U_j)`` has
``P'(0) = J(U) = sum_k A_k U_k B_k`` (Lemma 3), so

.. math::

    \frac{d^2}{dt^2} L = 2c\, \|J(U) X\|_F^2 - 2c \langle G, P''(0) \rangle .

The data loss depends on ``P`` only through ``tr(P C P^T) - 2 tr(P Z^T)`` with
``Z = Y X^T``, a convex function of ``P`` minimized exactly where ``G = Z - P C = 0``;
under eq. 17 every ``P`` is reachable, so the global minima of ``L(w)`` are the points
with ``R X^T = 0`` (interpolation ``R = 0`` is the special case). There the second
term vanishes and, with any ``F`` such that ``F F^T = C``,

.. math::

    \nabla^2 L = 2c\, K_C^\top K_C, \qquad
    K_C = [\,F^\top B_1^\top \otimes A_1 \mid \cdots \mid F^\top B_L^\top \otimes A_L\,],

because ``vec(A_k U_k B_k F) = (F^T B_k^T (x) A_k) vec(U_k)``. The nonzero Hessian
eigenvalues are therefore ``2c eig(S_C)`` with the ``r d_L``-square PSD matrix

.. math::

    S_C = K_C K_C^\top = \sum_{k=1}^L (F^\top B_k^\top B_k F) \otimes (A_k A_k^\top),

which is Theorem 5's ``S`` with ``B_k^T B_k`` replaced by ``F^T B_k^T B_k F``
(``F = I``, ``c = 1`` recovers it). ``F`` has ``r = rank(C) <= min(d_0, n)`` columns:
``F = X`` itself when ``n <= d_0``, otherwise ``V diag(sqrt(w))`` from the eigenpairs
``(w, V)`` of ``C`` with ``w > 0``. So the cost never grows with ``n`` beyond forming
``C = X X^T`` once. Likewise ``trace(H) = 2c sum_k ||A_k||_F^2 tr(B_k C B_k^T)`` and
the top Hessian eigenvector is ``K_C^T x / ||K_C^T x||``, block ``k`` being
``A_k^T X_S F^T B_k^T`` for the top eigenvector ``x = vec(X_S)`` of ``S_C``.

At any point the gradient is ``dL/dW_k = -2c A_k^T G B_k^T`` and the Hessian-vector
product is ``(H U)_k = 2c A_k^T J(U) C B_k^T - 2c (dA_k^T G B_k^T + A_k^T G dB_k^T)``
(differentiate the gradient along ``U``; ``G' = -J(U) C``); the first term is the
Gauss-Newton part ``2c K_C^T K_C``.

Functions here are reached through the ``data=``, ``covariance=`` and
``normalization=`` keywords of :func:`dmfsharp.sharpness` and friends.

Examples
--------
Whitened data reproduce eq. 15; scaling the samples by 2 scales the curvature by 4:

>>> import numpy as np
>>> from dmfsharp import section6_example, sharpness
>>> sharpness(section6_example(), covariance=np.eye(3))
44.0
>>> sharpness(section6_example(), data=2 * np.eye(3))
176.0
>>> round(sharpness(section6_example(), data=2 * np.eye(3), normalization="half_mean"), 10)
29.3333333333
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from ._kron import _normalize, _sign_fix, _spectrum_of_grams, _top_of_grams
from .chain import FactorChain, as_float_array, check_like, check_target
from .errors import FactorError, NotAMinimumError

__all__ = ["NORMALIZATIONS", "DataTerms", "data_terms"]

#: Loss normalizations: ``c = 1``, ``1/n`` and ``1/(2n)`` (samples) or ``-, 1, 1/2``
#: (covariance).
NORMALIZATIONS = ("sum", "mean", "half_mean")


@dataclass(frozen=True)
class DataTerms:
    """The data of a deep linear network loss, reduced to ``d_0``-sized quantities.

    Attributes
    ----------
    gram : ndarray
        ``C = X X^T`` (samples) or ``Sigma_x`` (covariance), ``d_0 x d_0``.
    factor : ndarray
        ``F`` with ``F F^T = C``, ``d_0 x r``, ``r = rank(C)``.
    scale : float
        ``c``, the loss normalization factor.
    samples : ndarray or None
        ``X`` when samples were given.
    normalization : str
        One of :data:`NORMALIZATIONS`.
    source : str
        ``"samples"`` or ``"covariance"``.
    """

    gram: np.ndarray
    factor: np.ndarray
    scale: float
    samples: np.ndarray | None
    normalization: str
    source: str

    @property
    def num_samples(self) -> int | None:
        """``n`` for samples, None for a covariance."""
        return None if self.samples is None else int(self.samples.shape[1])


def _factor_of(c: np.ndarray) -> np.ndarray:
    """``F`` (``d_0 x rank``) with ``F F^T = C`` from the eigenpairs of the PSD ``C``."""
    w, v = scipy.linalg.eigh(c)
    top = float(w[-1]) if w.size else 0.0
    keep = w > c.shape[0] * np.finfo(float).eps * max(top, 0.0)
    if not np.any(keep):
        raise FactorError("the data Gram matrix X X^T (or the covariance) is zero")
    return v[:, keep] * np.sqrt(w[keep])[None, :]


def data_terms(
    chain: FactorChain,
    *,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> DataTerms | None:
    """Validate the data keywords against a chain; None when none was given.

    Parameters
    ----------
    chain : FactorChain
        The factors (``d_0`` must match the data).
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``, one per column (a torch tensor is fine).
    covariance : array_like, optional
        ``Sigma_x = E[x x^T]``, symmetric positive semidefinite ``d_0 x d_0``.
    normalization : {"sum", "mean", "half_mean"}, optional
        Default ``"sum"`` for samples (and for no data), ``"mean"`` for a covariance.
        ``"sum"`` with a covariance is refused (it needs a sample count). Without
        data or covariance only ``"sum"`` (eq. 15) is accepted.

    Raises
    ------
    FactorError
        Wrong shapes, non-finite entries, a non-symmetric or indefinite covariance.
    ValueError
        An unknown normalization, or both ``data`` and ``covariance``.
    """
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if data is not None and covariance is not None:
        raise ValueError("pass either data= (samples X) or covariance= (Sigma_x), not both")
    d0 = chain.dims[0]
    if data is None and covariance is None:
        if normalization not in (None, "sum"):
            raise ValueError(
                f"normalization={normalization!r} needs data= (samples X) or covariance=; "
                "without data the loss is the sum of eq. 15"
            )
        return None
    if data is not None:
        x = as_float_array(data, "data X", ndim=None)
        if x.ndim == 1 and d0 == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise FactorError(f"data X must be 2-D of shape (d_0, n) = ({d0}, n), got {x.shape}")
        if x.shape[0] != d0:
            hint = " (samples go in columns; pass X.T)" if x.shape[1] == d0 else ""
            raise FactorError(
                f"data X has shape {x.shape} but W_1 has {d0} columns: expected (d_0, n) = ({d0}, n){hint}"
            )
        norm = normalization or "sum"
        n = x.shape[1]
        scale = {"sum": 1.0, "mean": 1.0 / n, "half_mean": 0.5 / n}[norm]
        gram = x @ x.T
        gram = 0.5 * (gram + gram.T)
        factor = x if n <= d0 else _factor_of(gram)
        if not np.any(factor):
            raise FactorError("data X is all zeros")
        return DataTerms(gram, factor, scale, x, norm, "samples")
    s = as_float_array(covariance, "covariance Sigma_x")
    if s.shape != (d0, d0):
        raise FactorError(f"covariance Sigma_x has shape {s.shape}, expected (d_0, d_0) = ({d0}, {d0})")
    asym = float(np.max(np.abs(s - s.T)))
    if asym > 1e-12 * max(float(np.max(np.abs(s))), 1e-300):
        raise FactorError(f"covariance Sigma_x is not symmetric (max |S - S^T| = {asym:.3e})")
    s = 0.5 * (s + s.T)
    w = scipy.linalg.eigvalsh(s)
    if w[0] < -d0 * 16 * np.finfo(float).eps * max(abs(w[-1]), 1e-300):
        raise FactorError(f"covariance Sigma_x is not positive semidefinite (smallest eigenvalue {w[0]:.3e})")
    norm = normalization or "mean"
    if norm == "sum":
        raise ValueError(
            "normalization='sum' needs a sample count; with covariance= use 'mean' "
            "(the expectation E||y - P x||^2) or 'half_mean', or pass the samples as data="
        )
    scale = {"mean": 1.0, "half_mean": 0.5}[norm]
    return DataTerms(s, _factor_of(s), scale, None, norm, "covariance")


# --------------------------------------------------------------------------- residual


def _check_data_target(chain: FactorChain, terms: DataTerms, target: Any) -> np.ndarray:
    if terms.samples is None:
        return check_target(chain, target)
    n, dl = terms.num_samples, chain.dims[-1]
    y = as_float_array(target, "target Y", ndim=None)
    if y.ndim == 1 and dl == 1:
        y = y.reshape(1, -1)
    if y.shape != (dl, n):
        raise FactorError(
            f"target Y has shape {y.shape}, expected (d_L, n) = ({dl}, {n}) for data X of "
            f"shape {terms.samples.shape}"
        )
    return y


def residual_terms(chain: FactorChain, terms: DataTerms, target: Any):
    """``(G, loss, tol)``: residual correlation ``G``, loss value, rounding tolerance of ``G``.

    ``G = (Y - P X) X^T`` for samples or ``(T - P) Sigma_x`` for a covariance (zero
    when ``target`` is None: the targets are the network's own outputs). The loss is
    ``c ||Y - P X||_F^2`` or ``c tr((T - P) Sigma_x (T - P)^T)``. The tolerance bounds
    the float64 rounding of ``G``:
    ``16 eps (L + max_i d_i + n) max(||Y||_F, prod_i ||W_i||_F ||X||_F) ||X||_F``
    (``n -> d_0``, ``||X||_F^2 -> ||Sigma_x||_F`` for a covariance).
    """
    p = chain.product
    eps = np.finfo(float).eps
    wprod = float(np.prod([np.linalg.norm(w) for w in chain.factors]))
    if target is None:
        return np.zeros_like(p), 0.0, 0.0
    y = _check_data_target(chain, terms, target)
    if terms.samples is not None:
        x = terms.samples
        r = y - p @ x
        g = r @ x.T
        value = terms.scale * float(np.vdot(r, r))
        xn = float(np.linalg.norm(x))
        tol = (
            16
            * eps
            * (chain.depth + max(chain.dims) + x.shape[1])
            * max(float(np.linalg.norm(y)), wprod * xn)
            * xn
        )
    else:
        r = y - p
        g = r @ terms.gram
        value = terms.scale * float(np.vdot(g, r))
        sn = float(np.linalg.norm(terms.gram))
        tol = 16 * eps * (chain.depth + 2 * max(chain.dims)) * max(float(np.linalg.norm(y)), wprod) * sn
    return g, value, tol


def minimum_residual_data(chain: FactorChain, terms: DataTerms, target: Any) -> tuple[float, float]:
    """``(||G||_F, tol)`` for the residual correlation ``G = R X^T`` (:func:`residual_terms`)."""
    g, _, tol = residual_terms(chain, terms, target)
    return float(np.linalg.norm(g)), tol


def require_minimum_data(chain: FactorChain, terms: DataTerms, target: Any, what: str) -> None:
    """Raise :class:`NotAMinimumError` unless ``R X^T = 0`` to working precision."""
    if target is None:
        return
    res, tol = minimum_residual_data(chain, terms, target)
    if res > tol:
        which = "(Y - W_L...W_1 X) X^T" if terms.samples is not None else "(T - W_L...W_1) Sigma_x"
        kw = "data=X" if terms.samples is not None else "covariance=Sigma_x"
        raise NotAMinimumError(
            f"{what} holds only at a global minimum of the data loss, but ||{which}||_F = "
            f"{res:.3e} exceeds the rounding tolerance {tol:.1e}; use "
            f"numerical_sharpness(factors, {kw}, target=...) at this point, or "
            "gauss_newton_sharpness for the Gauss-Newton part"
        )


# --------------------------------------------------------------------------- S_C


def data_grams(chain: FactorChain, terms: DataTerms):
    """``(F^T B_k^T B_k F, A_k A_k^T)`` for each k: ``r x r`` and ``d_L x d_L``."""
    out = []
    f = terms.factor
    for a, b in zip(chain.suffix, chain.prefix, strict=True):
        bf = b @ f
        gb = bf.T @ bf
        out.append((0.5 * (gb + gb.T), a @ a.T))
    return out


def _top_of_data_s(chain, terms, method="auto", want_vector=True):
    """``(lambda_max(S_C), X_S)``, ``X_S`` the top eigenvector of ``S_C`` as ``d_L x r``.

    Theorem 5's machinery (:mod:`dmfsharp._kron`) with ``F^T B_k^T B_k F`` in place of
    ``B_k^T B_k``; ``want_vector=False`` stops once ``lambda_max`` is exact.
    """
    lam, x = _top_of_grams(data_grams(chain, terms), method, want_vector)
    return lam, np.reshape(x, (chain.dims[-1], terms.factor.shape[1]), order="F")


# --------------------------------------------------------------------------- closed forms


_METHODS = ("auto", "dense", "lanczos")


def sharpness_data(chain, terms, target, method="auto") -> float:
    """``2c lambda_max(S_C)`` at a global minimum of the data loss (module docstring)."""
    if method not in _METHODS:
        raise ValueError(
            f"with data or a covariance, method must be one of {_METHODS} (Theorem 4 and "
            f"Corollary 6 are for Sigma_x = I), got {method!r}"
        )
    require_minimum_data(chain, terms, target, "sharpness")
    return gauss_newton_top(chain, terms, method)


def gauss_newton_top(chain, terms, method="auto") -> float:
    """``2c lambda_max(S_C)`` at any point (no minimum check)."""
    lam, _ = _top_of_data_s(chain, terms, method, want_vector=False)
    return 2.0 * terms.scale * lam


def trace_data(chain, terms, target) -> float:
    """``2c sum_k ||A_k||_F^2 tr(B_k C B_k^T)`` at a global minimum of the data loss."""
    require_minimum_data(chain, terms, target, "hessian_trace")
    c = terms.gram
    pairs = zip(chain.suffix, chain.prefix, strict=True)
    return 2.0 * terms.scale * float(sum(np.vdot(a, a) * np.vdot(b @ c, b) for a, b in pairs))


def spectrum_data(chain, terms, target, k=None) -> np.ndarray:
    """Nonzero Hessian eigenvalues ``2c eig(S_C)``, descending."""
    require_minimum_data(chain, terms, target, "hessian_spectrum")
    if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    eigs = _spectrum_of_grams(data_grams(chain, terms), k, size="r d_L", name="S_C")
    return 2.0 * terms.scale * eigs


def top_eigenvector_data(chain, terms, target) -> list[np.ndarray]:
    """``K_C^T x / ||K_C^T x||``: block k is ``A_k^T X_S F^T B_k^T``."""
    from .loss import _kt_apply

    require_minimum_data(chain, terms, target, "top_eigenvector")
    _, xs = _top_of_data_s(chain, terms)
    return _sign_fix(_normalize(_kt_apply(chain, xs @ terms.factor.T)))


# --------------------------------------------------------------------------- any point


def loss_data(chain, terms, target) -> float:
    """``c ||Y - P X||_F^2`` (samples) or ``c tr((T - P) Sigma_x (T - P)^T)`` (covariance)."""
    return residual_terms(chain, terms, target)[1]


def gradient_data(chain, terms, target) -> list[np.ndarray]:
    """``dL/dW_k = -2c A_k^T G B_k^T`` with ``G`` the residual correlation."""
    from .loss import _kt_apply

    g, _, _ = residual_terms(chain, terms, target)
    return _kt_apply(chain, -2.0 * terms.scale * g)


def hvp_data(chain, terms, g, u) -> list[np.ndarray]:
    """``(H U)_k = 2c A_k^T J C B_k^T - 2c (dA_k^T G B_k^T + A_k^T G dB_k^T)``."""
    from .loss import _directional_products, _jvp, _kt_apply

    c = terms.scale
    if not np.any(g):  # a global minimum: only the Gauss-Newton part 2c K_C^T K_C is left
        return _kt_apply(chain, 2.0 * c * (_jvp(chain, u) @ terms.gram))
    j, dA, dB = _directional_products(chain, u)
    out = _kt_apply(chain, 2.0 * c * (j @ terms.gram))
    A, B = chain.suffix, chain.prefix
    for k in range(chain.depth):
        out[k] = out[k] - 2.0 * c * (dA[k].T @ g @ B[k].T + A[k].T @ g @ dB[k].T)
    return out


def hvp_closure(chain, terms, target):
    """A function ``v -> H v`` on flat parameter vectors (row-major factors, W_1 first)."""
    g, _, _ = residual_terms(chain, terms, target)

    def apply(v):
        u = chain.unflatten(v)
        return np.concatenate([b.ravel() for b in hvp_data(chain, terms, g, u)])

    return apply


def hessian_vector_product_data(chain, terms, direction, target) -> list[np.ndarray]:
    """Validated :func:`hvp_data`."""
    u = check_like(chain, direction, "direction")
    g, _, _ = residual_terms(chain, terms, target)
    return hvp_data(chain, terms, g, u)


def is_multiple_of_identity(c: np.ndarray) -> float | None:
    """``c0`` when ``C = c0 I`` to rounding, else None."""
    c0 = float(np.mean(np.diag(c)))
    tol = 64 * np.finfo(float).eps * c0 * c.shape[0]
    if c0 > 0 and np.linalg.norm(c - c0 * np.eye(c.shape[0])) <= tol:
        return c0
    return None
