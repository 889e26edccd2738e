r"""The scalar problem of weight-decay-regularized deep matrix factorization and its thresholds.

The objective (issue 15) is

.. math::

    L_\mu(w) = \|M - W_L \cdots W_1\|_F^2 + \mu \sum_{k=1}^L \|W_k\|_F^2, \qquad \mu \ge 0 .

**Reduction to a scalar problem.** The gradient is ``G_k = -2 A_k^T R B_k^T + 2 mu W_k``
(``R = M - P``). Since ``W_{k+1}^T A_{k+1}^T = A_k^T`` and ``B_{k+1}^T = B_k^T W_k^T``,
``W_{k+1}^T G_{k+1} - G_k W_k^T = 2 mu (W_{k+1}^T W_{k+1} - W_k W_k^T)``, so every
critical point with ``mu > 0`` is balanced: ``W_{k+1}^T W_{k+1} = W_k W_k^T``. For a
product ``P`` with singular values ``p_i`` the least weight-decay cost of a factorization
is ``L sum_i p_i^{2/L}`` (attained by the balanced one), and by von Neumann's trace
inequality ``||M - P||_F`` is smallest when ``P`` shares the singular vectors of ``M``
in the same order. So a global minimizer is ``P = U diag(s_i^L) V^T`` where each
``s_i`` minimizes the scalar problem

.. math::

    f(s) = (\sigma_i - s^L)^2 + \mu L s^2 \quad (s \ge 0),

and only ``q = min(d_0, ..., d_L)`` of them can be nonzero (the top ``q``, since the
gain ``sigma^2 - min f`` grows with ``sigma``).

**Stationary points.** ``f'(s) = 2 L s [s^{L-2}(s^L - sigma) + mu]``: ``s = 0`` or
``mu = h(s) := s^{L-2}(sigma - s^L)``. For ``L = 2`` this is ``s^2 = sigma - mu``
(soft-thresholding). For ``L >= 3``, ``h`` rises from ``h(0) = 0`` to its peak at
``s^L = (L-2) sigma / (2L-2)`` and falls to ``h(sigma^{1/L}) = 0``: for ``mu`` below the
peak there are two positive roots, the smaller a local maximum of ``f``, the larger a
local minimum. Scaling ``s = sigma^{1/L} t``, ``mu = sigma^{2-2/L} nu`` removes ``sigma``.

**Collapse threshold.** Where the local minimum ties with ``s = 0``: with ``p = s^L``
and ``mu = s^{L-2}(sigma - p)``, ``f(s) = (sigma - p)^2 + L p (sigma - p) = sigma^2``
gives ``(sigma - p)(sigma + (L-1) p) = sigma^2``, i.e. ``p [(L-2) sigma - (L-1) p] = 0``,
so ``p = (L-2) sigma / (L-1)`` (twice the peak's ``p``, hence on the falling branch) and

.. math::

    \mu^*(\sigma, L) = \frac{(L-2)^{1-2/L}}{(L-1)^{2-2/L}} \, \sigma^{2-2/L},

which for ``L = 2`` (with ``0^0 = 1``) is ``sigma``, the soft threshold. By the envelope
theorem ``d/dmu [min_{s>0} f - f(0)] = L s^2 > 0``, so the nonzero local minimum is the
global one exactly for ``mu < mu*``, ties with 0 at ``mu = mu*`` (``L >= 3`` only), and
``s = 0`` is the unique minimizer above.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (eq. 15, the unregularized loss).
A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.optimize import brentq

from ..chain import as_float_array
from ..errors import FactorError, WeightDecayTieWarning
from ..validate import check_weight_decay

__all__ = [
    "check_depth",
    "scalar_critical_points",
    "scalar_minimizer",
    "scalar_threshold",
    "target_matrix",
    "weight_decay_threshold",
    "local_minimum_limit",
]

#: Relative distance ``|mu - mu*| / mu*`` within which the two scalar minimizers are a tie.
TIE_RTOL = 64 * np.finfo(float).eps


def check_depth(depth: Any) -> int:
    """Return ``depth`` as an int, or raise ``ValueError`` unless it is an integer ``>= 2``."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth L must be an integer >= 2, got {depth!r}")
    return int(depth)


def _check_sigma(sigma: Any) -> float:
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a real number >= 0, got {sigma!r}") from None
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    return s


def _nu_star(L: int) -> float:
    """``mu* / sigma^(2 - 2/L)``: the normalized collapse threshold."""
    if L == 2:
        return 1.0
    return (L - 2) ** (1.0 - 2.0 / L) / (L - 1) ** (2.0 - 2.0 / L)


def _normalized(sigma: float, mu: float, L: int) -> float:
    """``nu = mu / sigma^(2 - 2/L)`` in log space (no underflow for tiny ``sigma``)."""
    if mu == 0:
        return 0.0
    return math.exp(math.log(mu) - (2.0 - 2.0 / L) * math.log(sigma))


def _branch_roots(nu: float, L: int, *, rising: bool = True) -> tuple[float, ...]:
    """Positive roots ``t`` of ``t^{L-2}(1 - t^L) = nu`` for ``L >= 3`` (normalized sigma = 1).

    The falling branch ``[t_peak, 1]`` holds the local minimum of ``f``; the rising branch
    ``(0, t_peak)`` the local maximum, bracketed by ``t^{L-2} (1 - t_peak^L) <= nu <= t^{L-2}``
    so that Brent's method needs few steps even when the root is tiny.
    """

    def phi(t: float) -> float:
        return t ** (L - 2) * (1.0 - t**L) - nu

    rtol = 4 * np.finfo(float).eps
    t_peak = ((L - 2) / (2.0 * L - 2.0)) ** (1.0 / L)
    top = phi(t_peak)
    if top < 0:
        return ()
    if top == 0:
        return (t_peak,)
    roots = []
    if rising and nu > 0:
        lo = nu ** (1.0 / (L - 2))
        hi = min(t_peak, (nu / (1.0 - t_peak**L)) ** (1.0 / (L - 2)))
        if phi(lo) >= 0:
            roots.append(lo)
        elif phi(hi) <= 0:
            roots.append(hi)
        else:
            roots.append(brentq(phi, lo, hi, xtol=1e-300, rtol=rtol, maxiter=500))
    roots.append(brentq(phi, t_peak, 1.0, xtol=1e-300, rtol=rtol, maxiter=500))
    return tuple(roots)


def scalar_critical_points(sigma: float, depth: int, *, weight_decay: float) -> tuple[float, ...]:
    """All stationary points ``s >= 0`` of ``f(s) = (sigma - s^L)^2 + mu L s^2``, ascending.

    ``s = 0`` always; for ``L = 2`` also ``sqrt(sigma - mu)`` when positive; for
    ``L >= 3`` the roots of ``s^{L-2}(sigma - s^L) = mu``: none above the peak
    ``mu > h(s_peak)``, a double root at it, two roots below it (a local maximum of ``f``
    and a local minimum), and for ``mu = 0`` just ``sigma^{1/L}``.

    Parameters
    ----------
    sigma : float
        A singular value of ``M``, ``>= 0``.
    depth : int
        ``L >= 2``.
    weight_decay : float
        ``mu >= 0``.

    Returns
    -------
    tuple of float
        The distinct stationary points, ascending, starting with 0.

    Examples
    --------
    >>> scalar_critical_points(4.0, 2, weight_decay=3.0)
    (0.0, 1.0)
    """
    sigma, L, mu = _check_sigma(sigma), check_depth(depth), check_weight_decay(weight_decay)
    if sigma == 0:
        return (0.0,)
    if L == 2:
        return (0.0, math.sqrt(sigma - mu)) if sigma > mu else (0.0,)
    scale = sigma ** (1.0 / L)
    return (0.0,) + tuple(scale * t for t in _branch_roots(_normalized(sigma, mu, L), L))


def scalar_threshold(sigma: float, depth: int) -> float:
    r"""Collapse threshold ``mu*(sigma, L)`` of the scalar problem (derivation in the module text).

    .. math::

        \mu^* = \frac{(L-2)^{1-2/L}}{(L-1)^{2-2/L}} \sigma^{2-2/L}
        \quad (L \ge 3), \qquad \mu^* = \sigma \quad (L = 2).

    For ``mu > mu*`` the only minimizer of ``f`` is ``s = 0``; for ``mu < mu*`` it is the
    nonzero local minimum; at ``mu = mu*`` (``L >= 3``, ``sigma > 0``) both tie.

    Parameters
    ----------
    sigma : float
        ``>= 0``.
    depth : int
        ``L >= 2``.

    Returns
    -------
    float
        ``mu* >= 0`` (0 when ``sigma = 0``).

    Raises
    ------
    ValueError
        If ``sigma`` is negative or not finite, or ``depth`` is not an integer ``>= 2``.

    References
    ----------
    A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
    Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.

    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15, the unregularized loss).

    Examples
    --------
    >>> scalar_threshold(9.0, 2), round(scalar_threshold(2.0, 3), 12)  # (2 / 2)^(4/3)
    (9.0, 1.0)
    """
    sigma, L = _check_sigma(sigma), check_depth(depth)
    return _nu_star(L) * sigma ** (2.0 - 2.0 / L)


def scalar_minimizer(sigma: float, depth: int, *, weight_decay: float) -> float:
    """The global minimizer ``s >= 0`` of ``(sigma - s^L)^2 + mu L s^2``.

    ``L = 2``: ``s = sqrt(max(sigma - mu, 0))`` (soft-thresholding of ``s^2``). ``L >= 3``:
    the larger root of ``s^{L-2}(sigma - s^L) = mu`` when ``mu < mu*(sigma, L)``
    (:func:`scalar_threshold`), else 0. Roots are bracketed on the monotone falling branch
    of ``h`` and found by Brent's method in the normalized variable ``t = s / sigma^{1/L}``.

    Parameters
    ----------
    sigma : float
        ``>= 0``.
    depth : int
        ``L >= 2``.
    weight_decay : float
        ``mu >= 0``.

    Returns
    -------
    float
        The minimizer ``s >= 0`` (0 when ``mu`` is above the collapse threshold).

    Raises
    ------
    ValueError
        If ``sigma`` or ``weight_decay`` is negative or not finite, or ``depth`` is not an
        integer ``>= 2``.

    Warns
    -----
    WeightDecayTieWarning
        When ``|mu - mu*| <= TIE_RTOL mu*`` (``L >= 3``): 0 and the returned nonzero point
        are both global minimizers.

    References
    ----------
    A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
    Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.

    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15, the unregularized loss).

    Examples
    --------
    >>> scalar_minimizer(4.0, 2, weight_decay=3.0)
    1.0
    >>> scalar_minimizer(4.0, 3, weight_decay=0.0) == 4.0 ** (1 / 3)
    True
    """
    sigma, L, mu = _check_sigma(sigma), check_depth(depth), check_weight_decay(weight_decay)
    if sigma == 0:
        return 0.0
    if L == 2:
        return math.sqrt(sigma - mu) if sigma > mu else 0.0
    if mu == 0:
        return sigma ** (1.0 / L)
    nu, nu_star = _normalized(sigma, mu, L), _nu_star(L)
    if nu > nu_star * (1 + TIE_RTOL):
        return 0.0
    if abs(nu - nu_star) <= TIE_RTOL * nu_star:
        warnings.warn(
            f"weight_decay = {mu!r} is the collapse threshold mu* = {scalar_threshold(sigma, L)!r} of "
            f"sigma = {sigma!r} (depth {L}): s = 0 and the nonzero point are both global "
            "minimizers; returning the nonzero one",
            WeightDecayTieWarning,
            stacklevel=2,
        )
    return sigma ** (1.0 / L) * _branch_roots(min(nu, nu_star), L, rising=False)[-1]


def target_matrix(target: Any) -> np.ndarray:
    """Validate ``M`` as a finite float64 matrix (a scalar or vector becomes ``1 x n``)."""
    m = as_float_array(target, "target M", ndim=None)
    if m.ndim > 2:
        raise FactorError(f"target M must be at most 2-D, got shape {m.shape}")
    return m.reshape(1, -1) if m.ndim < 2 else m


def weight_decay_threshold(target: Any, depth: int) -> float:
    r"""The weight decay ``mu*`` above which the global minimizer of ``L_mu`` is zero.

    .. math::

        \mu^*(M, L) = \frac{(L-2)^{1-2/L}}{(L-1)^{2-2/L}}\, \sigma_{\max}(M)^{2-2/L}
        \quad (L \ge 3), \qquad \mu^*(M, 2) = \sigma_{\max}(M),

    the scalar threshold (:func:`scalar_threshold`) of the largest singular value; it does
    not depend on the hidden widths. For ``mu > mu*`` every scalar problem collapses, so
    ``W_1 = ... = W_L = 0`` is the unique global minimizer; at ``mu = mu*`` (``L >= 3``)
    zero ties with a nonzero minimizer.

    Parameters
    ----------
    target : array_like, shape (d_L, d_0)
        ``M`` (a scalar or vector is read as a ``1 x n`` matrix).
    depth : int
        ``L >= 2``.

    Returns
    -------
    float
        ``mu*(M, L) >= 0``, in the units of ``M``'s entries to the power ``2 - 2/L``.

    Raises
    ------
    FactorError
        If ``M`` is not a finite array of at most two dimensions.
    ValueError
        If ``depth`` is not an integer ``>= 2``.

    References
    ----------
    A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
    Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.

    Examples
    --------
    >>> import numpy as np
    >>> weight_decay_threshold(np.diag([3.0, 1.0]), 2)
    3.0
    >>> round(weight_decay_threshold(np.diag([2.0, 1.0]), 3), 12)  # (sigma_max / 2)^(4/3)
    1.0
    """
    m = target_matrix(target)
    return scalar_threshold(float(np.linalg.norm(m, 2)), check_depth(depth))


def local_minimum_limit(target: Any, depth: int) -> float:
    r"""The weight decay above which ``W = 0`` is the only critical point of ``L_mu``.

    The nonzero local minimum of the scalar problem exists while ``mu`` is at most the peak
    of ``h(s) = s^{L-2}(sigma - s^L)``, reached at ``s^L = (L-2) sigma / (2L-2)``:

    .. math::

        \mu_{\text{loc}} = \Big(\frac{L-2}{2L-2}\Big)^{1-2/L} \frac{L}{2L-2}\,
        \sigma_{\max}(M)^{2-2/L} \;\ge\; \mu^* ,

    with equality only for ``L = 2``. For ``L >= 3`` and ``mu* < mu < mu_loc`` a nonzero
    local minimum survives beside the global minimizer 0 (and for every ``mu > 0`` the
    point 0 is a local minimum, its Hessian being ``2 mu I``), so gradient descent need
    not collapse between the two thresholds, nor reach the nonzero minimizer below ``mu*``.

    Parameters
    ----------
    target : array_like, shape (d_L, d_0)
        ``M``.
    depth : int
        ``L >= 2``.

    Returns
    -------
    float
        ``mu_loc >= mu*``.

    Raises
    ------
    FactorError
        If ``M`` is not a finite array of at most two dimensions.
    ValueError
        If ``depth`` is not an integer ``>= 2``.

    References
    ----------
    A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
    Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.

    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15, the unregularized loss).

    Examples
    --------
    >>> import numpy as np
    >>> local_minimum_limit(np.diag([3.0, 1.0]), 2)  # = the collapse threshold for L = 2
    3.0
    """
    m = target_matrix(target)
    L = check_depth(depth)
    sigma = float(np.linalg.norm(m, 2))
    if L == 2:
        return sigma
    return ((L - 2) / (2.0 * L - 2.0)) ** (1.0 - 2.0 / L) * L / (2.0 * L - 2.0) * sigma ** (2.0 - 2.0 / L)
