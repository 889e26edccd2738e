r"""The one objective every curvature routine takes: factors, target, data factor ``F``, scale ``c``.

The loss of eq. 15, ``||M - W_L ... W_1||_F^2``, and the loss of a bias-free deep linear
network on data are one family,

.. math::

    L(w) = c\, \|(T - P) F\|_F^2 \quad(\text{up to a constant}), \qquad F F^\top = C,

with ``C = I``, ``c = 1`` for eq. 15 (``F`` is then the identity, represented by
``None`` so that its multiplications are skipped, never performed); ``C = X X^T`` for
samples ``X`` (``d_0 x n``) with targets ``Y`` (``d_L x n``) and ``c = 1, 1/n, 1/(2n),
1/(n d_L)`` (``normalization="sum", "mean", "half_mean", "torch-mean"``); ``C = Sigma_x``
for a second-moment matrix with ``c = 1, 1/2, 1/d_L`` (``"mean"``, ``"half_mean"``,
``"torch-mean"``).

``"torch-mean"`` is PyTorch's ``torch.nn.MSELoss(reduction="mean")`` applied to the
network's ``(n, d_L)`` output batch: the mean over all ``n d_L`` entries, i.e. the sum
``||Y - P X||_F^2`` divided by ``n d_L`` (``"mean"`` divides by ``n`` only, the mean over
samples of the squared error norm). With a covariance, ``"torch-mean"`` is the
expectation of that per-batch loss, ``E||y - P x||^2 / d_L``, so ``c = 1/d_L``.

Weight decay (issue 15) is one more field, ``mu >= 0``: the objective becomes
``L_mu(w) = L(w) + mu sum_k ||W_k||_F^2`` (``mu`` is not multiplied by ``c``), its gradient
gains ``2 mu W_k``, its Hessian ``2 mu I``. With ``mu > 0`` the minima have ``G != 0``;
their closed forms are in :mod:`dmfsharp.regularized`.

Derivation. Write ``G`` for the *residual correlation*: ``M - P`` (eq. 15),
``(Y - P X) X^T`` (samples) or ``(T - P) Sigma_x`` (covariance). Along a direction
``U``, ``P'(0) = J(U) = sum_k A_k U_k B_k`` (Lemma 3) and

.. math::

    \frac{d^2}{dt^2} L = 2c\, \|J(U) F\|_F^2 - 2c \langle G, P''(0) \rangle .

The global minima are the points with ``G = 0`` (the loss is a convex function of ``P``
and, under eq. 17, every ``P`` is reachable). There ``H = 2c K_F^T K_F`` with
``K_F = [F^T B_1^T (x) A_1 | ... | F^T B_L^T (x) A_L]``, so the nonzero Hessian
eigenvalues are ``2c eig(S)``,

.. math::

    S = \sum_{k=1}^L (F^\top B_k^\top B_k F) \otimes (A_k A_k^\top),

Theorem 5's matrix when ``F = I``. ``F`` has ``r = rank(C)`` columns: ``F = X`` when
``n <= d_0``, else ``V diag(sqrt(w))`` from the eigenpairs of ``C``.

:func:`make_objective` parses the keywords ``target``, ``data``, ``covariance`` and
``normalization`` of the public functions into an :class:`Objective` once, at the
public boundary.

Examples
--------
>>> import numpy as np
>>> obj = make_objective([np.eye(2), 2 * np.eye(2)], data=np.eye(2))
>>> obj.source, obj.scale, obj.factor is None
('samples', 1.0, False)
>>> make_objective([np.eye(2), 2 * np.eye(2)]).factor is None  # eq. 15: F = I, skipped
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from .chain import FactorChain, as_chain, as_float_array, check_target
from .errors import FactorError
from .validate import check_weight_decay

__all__ = [
    "NORMALIZATIONS",
    "Objective",
    "make_objective",
    "as_objective",
    "multiple_of_identity",
]

#: Loss normalizations: ``c = 1``, ``1/n``, ``1/(2n)`` and ``1/(n d_L)`` (samples) or
#: ``-, 1, 1/2, 1/d_L`` (covariance); ``"torch-mean"`` is ``MSELoss(reduction="mean")``.
NORMALIZATIONS = ("sum", "mean", "half_mean", "torch-mean")


@dataclass(frozen=True, slots=True, eq=False)
class Objective:
    """A validated factor chain together with its loss (see the module docstring).

    Attributes
    ----------
    chain : FactorChain
        The point ``[W_1, ..., W_L]``.
    target : ndarray or None
        ``M`` (``d_L x d_0``), ``Y`` (``d_L x n``, samples) or ``T`` (covariance);
        None means the factors' own output (a global minimum).
    factor : ndarray or None
        ``F`` with ``F F^T = C`` (``d_0 x r``); None is the identity (eq. 15).
    gram : ndarray or None
        ``C = X X^T`` or ``Sigma_x`` (``d_0 x d_0``); None is the identity.
    samples : ndarray or None
        ``X`` when samples were given.
    scale : float
        ``c``.
    normalization : str
        One of :data:`NORMALIZATIONS`.
    source : str
        ``"identity"`` (eq. 15), ``"samples"`` or ``"covariance"``.
    weight_decay : float
        ``mu >= 0``: the loss gains ``mu sum_k ||W_k||_F^2``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: eq. 15 (the loss with ``F = I``, ``c = 1``),
    Lemma 3 (eqs. 56-58, the Hessian ``2c K_F^T K_F`` + residual term), Theorem 5.

    Examples
    --------
    Build one with :func:`make_objective`; eq. 15 is ``F = I``, ``c = 1``:

    >>> import numpy as np
    >>> obj = make_objective([np.eye(2), 2 * np.eye(2)], target=np.eye(2))
    >>> obj.source, obj.scale, obj.is_identity, obj.rank
    ('identity', 1.0, True, 2)
    >>> g, value = obj.residual()
    >>> g.tolist(), value
    ([[-1.0, 0.0], [0.0, -1.0]], 2.0)
    >>> data = make_objective([np.eye(2), np.eye(2)], data=np.ones((2, 4)), normalization="mean")
    >>> data.source, data.scale, data.num_samples, data.rank
    ('samples', 0.25, 4, 1)
    """

    chain: FactorChain
    target: np.ndarray | None = None
    factor: np.ndarray | None = None
    gram: np.ndarray | None = None
    samples: np.ndarray | None = None
    scale: float = 1.0
    normalization: str = "sum"
    source: str = "identity"
    weight_decay: float = 0.0

    @property
    def is_identity(self) -> bool:
        """Whether ``F = I`` and ``c = 1`` (the loss of eq. 15)."""
        return self.factor is None

    @property
    def rank(self) -> int:
        """``r``, the number of columns of ``F`` (``d_0`` for the identity)."""
        return self.chain.dims[0] if self.factor is None else int(self.factor.shape[1])

    @property
    def num_samples(self) -> int | None:
        """``n`` for samples, None otherwise."""
        return None if self.samples is None else int(self.samples.shape[1])

    def with_chain(self, chain: FactorChain) -> Objective:
        """The same loss at another point with the same dims.

        Parameters
        ----------
        chain : FactorChain
            The new point, with the dims of :attr:`chain` (not checked here).

        Returns
        -------
        Objective
            A copy with ``chain`` replaced; target, ``F``, ``C``, ``c`` and ``mu`` kept.
        """
        return Objective(
            chain,
            self.target,
            self.factor,
            self.gram,
            self.samples,
            self.scale,
            self.normalization,
            self.source,
            self.weight_decay,
        )

    def penalty(self) -> float:
        """``mu sum_k ||W_k||_F^2`` (0.0 without weight decay).

        Returns
        -------
        float
            The weight-decay term of the loss.
        """
        mu = self.weight_decay
        return mu * sum(float(np.vdot(w, w)) for w in self.chain.factors) if mu else 0.0

    def times_gram(self, x: np.ndarray) -> np.ndarray:
        """``X C`` (``X`` itself when ``C = I``).

        Parameters
        ----------
        x : ndarray, shape (m, d_0)
            Any matrix with ``d_0`` columns.

        Returns
        -------
        ndarray, shape (m, d_0)
            ``X C``; ``x`` itself (not a copy) when ``C = I``.
        """
        return x if self.gram is None else x @ self.gram

    def times_factor(self, x: np.ndarray) -> np.ndarray:
        """``X F`` (``X`` itself when ``F = I``).

        Parameters
        ----------
        x : ndarray, shape (m, d_0)
            Any matrix with ``d_0`` columns.

        Returns
        -------
        ndarray, shape (m, r)
            ``X F`` (``r`` = :attr:`rank`); ``x`` itself (not a copy) when ``F = I``.
        """
        return x if self.factor is None else x @ self.factor

    def residual(self) -> tuple[np.ndarray, float]:
        """``(G, loss)``: the residual correlation and the loss value.

        ``G`` is ``M - P``, ``(Y - P X) X^T`` or ``(T - P) Sigma_x`` (zero when ``target``
        is None); the loss is ``c ||(T - P) F||_F^2``.

        Returns
        -------
        G : ndarray, shape (d_L, d_0)
            The residual correlation, float64.
        loss : float
            The loss without the weight-decay term (see :meth:`penalty`).
        """
        p = self.chain.product
        if self.target is None:
            return np.zeros_like(p), 0.0
        y = self.target
        if self.source == "identity":
            r = y - p
            return r, float(np.vdot(r, r))
        if self.samples is not None:
            r = y - p @ self.samples
            return r @ self.samples.T, self.scale * float(np.vdot(r, r))
        assert self.gram is not None  # a covariance objective always has its Gram
        r = y - p
        g = r @ self.gram
        return g, self.scale * float(np.vdot(g, r))

    def rounding_tolerance(self) -> float:
        """The largest ``||G||_F`` that float64 rounding of ``G`` can explain.

        ``16 eps (L + max_i d_i) max(||M||_F, prod_i ||W_i||_F)`` for eq. 15 and, with
        data, ``16 eps (L + max_i d_i + n) max(||Y||_F, prod_i ||W_i||_F ||X||_F) ||X||_F``
        (``n -> d_0``, ``||X||_F^2 -> ||Sigma_x||_F`` for a covariance). Zero without a target.

        Returns
        -------
        float
            The tolerance on ``||G||_F``.
        """
        if self.target is None:
            return 0.0
        chain = self.chain
        eps = np.finfo(float).eps
        wprod = float(np.prod([np.linalg.norm(w) for w in chain.factors]))
        yn = float(np.linalg.norm(self.target))
        if self.source == "identity":
            return 16.0 * eps * (chain.depth + max(chain.dims)) * max(yn, wprod)
        if self.samples is not None:
            x = self.samples
            xn = float(np.linalg.norm(x))
            return 16 * eps * (chain.depth + max(chain.dims) + x.shape[1]) * max(yn, wprod * xn) * xn
        assert self.gram is not None  # a covariance objective always has its Gram
        sn = float(np.linalg.norm(self.gram))
        return 16 * eps * (chain.depth + 2 * max(chain.dims)) * max(yn, wprod) * sn

    def residual_terms(self) -> tuple[np.ndarray, float, float]:
        """``(G, loss, tol)``: :meth:`residual` and :meth:`rounding_tolerance` together.

        Returns
        -------
        G : ndarray, shape (d_L, d_0)
            The residual correlation.
        loss : float
            The loss without the weight-decay term.
        tol : float
            The largest ``||G||_F`` that float64 rounding explains.
        """
        g, value = self.residual()
        return g, value, self.rounding_tolerance()


def _factor_of(c: np.ndarray) -> np.ndarray:
    """``F`` (``d_0 x rank``) with ``F F^T = C`` from the eigenpairs of the PSD ``C``."""
    w, v = scipy.linalg.eigh(c)
    top = float(w[-1]) if w.size else 0.0
    keep = w > c.shape[0] * np.finfo(float).eps * max(top, 0.0)
    if not np.any(keep):
        raise FactorError("the data Gram matrix X X^T (or the covariance) is zero")
    return v[:, keep] * np.sqrt(w[keep])[None, :]


def check_normalization(normalization: Any, *, has_data: bool, has_covariance: bool) -> str:
    """Validate ``normalization`` against the data keywords; return the effective name."""
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if has_data and has_covariance:
        raise ValueError("pass either data= (samples X) or covariance= (Sigma_x), not both")
    if not (has_data or has_covariance):
        if normalization not in (None, "sum"):
            raise ValueError(
                f"normalization={normalization!r} needs data= (samples X) or covariance=; "
                "without data the loss is the sum of eq. 15"
            )
        return "sum"
    if has_data:
        return normalization or "sum"
    norm = normalization or "mean"
    if norm == "sum":
        raise ValueError(
            "normalization='sum' needs a sample count; with covariance= use 'mean' "
            "(the expectation E||y - P x||^2) or 'half_mean', or pass the samples as data="
        )
    return norm


def sample_scale(normalization: str, n: int, d_out: int) -> float:
    """Return ``c`` of the loss on ``n`` samples with ``d_out = d_L`` outputs.

    ``1``, ``1/n``, ``1/(2n)`` and ``1/(n d_L)`` for ``"sum"``, ``"mean"``, ``"half_mean"``
    and ``"torch-mean"`` (``torch.nn.MSELoss(reduction="mean")``); ``normalization`` must
    already be checked by :func:`check_normalization`.
    """
    return {"sum": 1.0, "mean": 1.0 / n, "half_mean": 0.5 / n, "torch-mean": 1.0 / (n * d_out)}[normalization]


def check_samples(chain: FactorChain, data: Any) -> np.ndarray:
    """Validate samples ``X`` of shape ``(d_0, n)`` (a 1-D array when ``d_0 = 1``)."""
    d0 = chain.dims[0]
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
    if not np.any(x):
        raise FactorError("data X is all zeros")
    return x


def check_covariance(chain: FactorChain, covariance: Any) -> np.ndarray:
    """Validate ``Sigma_x``: ``d_0 x d_0``, symmetric, positive semidefinite."""
    d0 = chain.dims[0]
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
    return s


def check_data_target(chain: FactorChain, samples: np.ndarray | None, target: Any) -> np.ndarray | None:
    """Validate the target: ``Y`` (``d_L x n``) with samples, else ``M`` (``d_L x d_0``)."""
    if target is None:
        return None
    if samples is None:
        return check_target(chain, target)
    n, dl = samples.shape[1], chain.dims[-1]
    y = as_float_array(target, "target Y", ndim=None)
    if y.ndim == 1 and dl == 1:
        y = y.reshape(1, -1)
    if y.shape != (dl, n):
        raise FactorError(
            f"target Y has shape {y.shape}, expected (d_L, n) = ({dl}, {n}) for data X of "
            f"shape {samples.shape}"
        )
    return y


def make_objective(
    factors: Any,
    target: Any = None,
    *,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    weight_decay: Any = 0.0,
) -> Objective:
    """Parse the public keywords into one validated :class:`Objective`.

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``.
    target : array_like, optional
        ``M`` (shape ``(d_L, d_0)``), or ``Y`` (shape ``(d_L, n)``) with ``data``, or
        ``T`` with ``covariance``. None means the factors' own output.
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``, one per column.
    covariance : array_like, optional
        ``Sigma_x = E[x x^T]``, symmetric positive semidefinite ``d_0 x d_0``.
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        ``c = 1, 1/n, 1/(2n), 1/(n d_L)`` for samples, ``c = 1, 1/2, 1/d_L`` for
        ``"mean"``, ``"half_mean"``, ``"torch-mean"`` with a covariance. ``"torch-mean"``
        is ``torch.nn.MSELoss(reduction="mean")`` (the mean over all ``n d_L`` output
        entries). Default ``"sum"`` for samples and for eq. 15, ``"mean"`` for a covariance.
    weight_decay : float, optional
        ``mu >= 0``; the loss gains ``mu sum_k ||W_k||_F^2`` (default 0).

    Returns
    -------
    Objective
        The immutable, validated loss (``factors`` itself if it already is one).

    Raises
    ------
    FactorError
        Invalid factors, target, samples or covariance (named in the message).
    ValueError
        An unknown normalization, both ``data`` and ``covariance``, or a negative or
        non-finite ``weight_decay``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15; Lemma 3 for the Hessian).

    Examples
    --------
    >>> import numpy as np
    >>> make_objective([np.eye(2), np.eye(2)], data=np.ones((2, 4)), normalization="mean").scale
    0.25
    >>> make_objective([np.eye(2), np.eye(2)], data=np.ones((2, 4)), normalization="torch-mean").scale
    0.125
    """
    mu = check_weight_decay(weight_decay)
    if isinstance(factors, Objective):
        return factors
    chain = as_chain(factors)
    norm = check_normalization(
        normalization, has_data=data is not None, has_covariance=covariance is not None
    )
    if data is None and covariance is None:
        m = check_target(chain, target) if target is not None else None
        return Objective(chain, m, weight_decay=mu)
    if data is not None:
        x = check_samples(chain, data)
        n = x.shape[1]
        dl = chain.dims[-1]
        scale = sample_scale(norm, n, dl)
        gram = x @ x.T
        gram = 0.5 * (gram + gram.T)
        factor = x if n <= chain.dims[0] else _factor_of(gram)
        y = check_data_target(chain, x, target)
        return Objective(chain, y, factor, gram, x, scale, norm, "samples", mu)
    s = check_covariance(chain, covariance)
    scale = {"mean": 1.0, "half_mean": 0.5, "torch-mean": 1.0 / chain.dims[-1]}[norm]
    y = check_data_target(chain, None, target)
    return Objective(chain, y, _factor_of(s), s, None, scale, norm, "covariance", mu)


def as_objective(factors: Any) -> Objective:
    """``factors`` as an :class:`Objective` of eq. 15 (no copy if it already is one)."""
    return factors if isinstance(factors, Objective) else make_objective(factors)


def multiple_of_identity(c: np.ndarray | None) -> float | None:
    """``c0`` when ``C = c0 I`` to rounding (1.0 for None, the identity), else None."""
    if c is None:
        return 1.0
    c0 = float(np.mean(np.diag(c)))
    tol = 64 * np.finfo(float).eps * c0 * c.shape[0]
    if c0 > 0 and np.linalg.norm(c - c0 * np.eye(c.shape[0])) <= tol:
        return c0
    return None
