r"""Flatness, balance and step-size stability diagnostics at a global minimum.

Bounds (whitened case, eq. 15): every global minimum satisfies

.. math::

    2 L \sigma_{\max}(M)^{2 - 2/L} \;\le\; \lambda_{\max}
    \;\le\; 2 \sum_k \sigma_{\max}(A_k)^2 \sigma_{\max}(B_k)^2,

the lower bound attained exactly by the flat minima (Mulayoff & Michaeli 2020, eq. 35)
and the upper bound by Corollary 10 (eq. 34). A minimum is linearly unstable for
gradient descent with step ``eta`` iff ``lambda_max > 2 / eta``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .chain import FactorsLike, as_chain, as_float_array
from .exact import sharpness
from .gauss_newton import objective_layer_sharpness
from .linalg.scaling import scale_back
from .minimum import require_minimum
from .objective import make_objective, multiple_of_identity
from .s_matrix import gauss_newton_top, objective_trace, sigma_max_split, sigma_max_sq
from .validate import check_int_at_least, check_positive_float

__all__ = [
    "FlatnessReport",
    "flatness_report",
    "flat_sharpness",
    "sharpness_upper_bound",
    "layer_norm_products",
    "spectral_imbalance",
    "frobenius_imbalance",
    "is_stable_step",
]

#: Relative tolerance for the flatness and balance conditions of Corollaries 7, 8, 10.
CONDITION_RTOL = 1e-8


def flat_sharpness(target: Any, depth: int) -> float:
    """``2 L sigma_max(M)^(2 - 2/L)``: sharpness of every flat minimum of ``M`` (eq. 35).

    A lower bound on ``lambda_max`` at every global minimum (Mulayoff & Michaeli 2020).

    Parameters
    ----------
    target : array_like, shape (d_L, d_0)
        The target ``M`` (a scalar or vector is read as a matrix; float64).
    depth : int
        The depth ``L >= 2``.

    Returns
    -------
    float
        ``2 L sigma_max(M)^(2 - 2/L)`` (units of the Hessian, ``[M]^(2 - 2/L)``).

    Raises
    ------
    FactorError
        If ``target`` is not a finite real array.
    ValueError
        If ``target`` has more than two dimensions or ``depth`` is not an integer >= 2.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Eq. (35).

    R. Mulayoff and T. Michaeli, Unique Properties of Flat Minima in Deep Networks, ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> flat_sharpness(np.diag([11.0, 2.0, 1.0]), 2)  # the Section 6 value
    44.0
    """
    m = as_float_array(target, "target M", ndim=None)
    if m.ndim > 2:
        raise ValueError(f"target M must be a matrix (at most 2-D), got shape {m.shape}")
    m = np.atleast_2d(m)
    depth = check_int_at_least(depth, 2, "depth")
    mant, e = sigma_max_split(m)  # sigma_max(M) = mant 2**e, exact at any scale
    p = 2.0 - 2.0 / depth
    if e == 0:
        return 2.0 * depth * mant**p
    # 2**(e p) = 2**k 2**f with k an integer: the power of two is applied exactly (ldexp)
    k = int(np.floor(e * p))
    value = 2.0 * depth * mant**p * 2.0 ** (e * p - k)
    return scale_back(value, k, what="the flat value 2 L sigma_max(M)^(2 - 2/L)")


def layer_norm_products(factors: FactorsLike) -> np.ndarray:
    """Return ``sigma_max(A_k) sigma_max(B_k)`` for ``k = 1..L`` (Corollaries 7 and 10).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).

    Returns
    -------
    ndarray of float64, shape (L,)
        The products, ``k = 1`` first.

    Raises
    ------
    FactorError
        If ``factors`` is not a valid chain.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Corollaries 7 and 10.

    Examples
    --------
    >>> import numpy as np
    >>> layer_norm_products([np.array([[2.0]]), np.array([[3.0]])])  # A_1 = W_2, B_2 = W_1
    array([3., 2.])
    """
    chain = as_chain(factors)
    return np.array([np.sqrt(sigma_max_sq(a) * sigma_max_sq(b)) for a, b in zip(chain.suffix, chain.prefix)])


def sharpness_upper_bound(factors: FactorsLike, *, target: Any = None) -> float:
    """Corollary 10's bound ``2 sum_k sigma_max(A_k)^2 sigma_max(B_k)^2`` (eq. 34).

    Equal to ``lambda_max`` when ``d_0 = d_L = 1`` (Theorem 4).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).
    target : array_like, shape (d_L, d_0), optional
        The target ``M``; None (default) takes the chain's own product ``W_L ... W_1``.

    Returns
    -------
    float
        The upper bound ``2 sum_k sigma_max(A_k)^2 sigma_max(B_k)^2`` on ``lambda_max``.

    Raises
    ------
    FactorError
        If ``factors`` or ``target`` is invalid.
    NotAMinimumError
        If the factors are not a global minimum of ``target``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Corollary 10, eq. (34); Theorem 4.

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import section6_example
    >>> sharpness_upper_bound([np.array([[2.0]]), np.array([[3.0]])])  # 2 (3^2 + 2^2)
    26.0
    >>> sharpness_upper_bound(section6_example())
    44.0
    """
    obj = make_objective(factors, target)
    require_minimum(obj, "sharpness_upper_bound")
    chain = obj.chain
    return 2.0 * float(np.sum(layer_norm_products(chain) ** 2))


def spectral_imbalance(factors: FactorsLike) -> float:
    """Spectral-norm imbalance ``max_i sigma_max(W_i)^2 / min_i sigma_max(W_i)^2 - 1``.

    Zero exactly when every factor has the same spectral norm (the flat minima of
    depth 2 are these, Corollary 8).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).

    Returns
    -------
    float
        The imbalance, ``>= 0``; ``inf`` if some factor is zero.

    Raises
    ------
    FactorError
        If ``factors`` is not a valid chain.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Corollary 8.

    Examples
    --------
    >>> import numpy as np
    >>> spectral_imbalance([np.array([[2.0]]), np.array([[3.0]])])  # 9 / 4 - 1
    1.25
    """
    chain = as_chain(factors)
    s = np.array([sigma_max_sq(w) for w in chain.factors])
    if s.min() == 0:
        return float("inf")
    return float(s.max() / s.min() - 1.0)


def frobenius_imbalance(factors: FactorsLike) -> float:
    """Relative Frobenius imbalance ``max_i ||W_{i+1}^T W_{i+1} - W_i W_i^T||_F / s_i``.

    ``s_i = (||W_{i+1}||_F^2 + ||W_i||_F^2) / 2``. Zero exactly for balanced factors
    (``W_{i+1}^T W_{i+1} = W_i W_i^T``, the sense of Ghosh et al. 2025 and of Section 6).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).

    Returns
    -------
    float
        The largest relative imbalance over ``i = 1..L-1``, ``>= 0``.

    Raises
    ------
    FactorError
        If ``factors`` is not a valid chain.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 6.

    A. Ghosh et al., 2025 (balanced factors), as cited in the paper above.

    Examples
    --------
    >>> import numpy as np
    >>> frobenius_imbalance([np.array([[2.0]]), np.array([[2.0]])])
    0.0
    >>> round(frobenius_imbalance([np.array([[2.0]]), np.array([[3.0]])]), 6)  # 5 / 6.5
    0.769231
    """
    chain = as_chain(factors)
    worst = 0.0
    for wi, wn in zip(chain.factors[:-1], chain.factors[1:]):
        scale = 0.5 * (float(np.vdot(wi, wi)) + float(np.vdot(wn, wn)))
        if scale == 0:
            continue
        worst = max(worst, float(np.linalg.norm(wn.T @ wn - wi @ wi.T)) / scale)
    return worst


def is_stable_step(factors: FactorsLike, eta: float, *, target: Any = None) -> bool:
    """Say whether GD with step ``eta`` is linearly stable at this minimum (``lambda_max <= 2/eta``).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).
    eta : float
        The gradient-descent step size, ``> 0``.
    target : array_like, shape (d_L, d_0), optional
        The target ``M``; None (default) takes the chain's own product ``W_L ... W_1``.

    Returns
    -------
    bool
        True if ``lambda_max <= 2 / eta``.

    Raises
    ------
    FactorError
        If ``factors`` or ``target`` is invalid.
    NotAMinimumError
        If the factors are not a global minimum of ``target``.
    ValueError
        If ``eta`` is not a positive finite number.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 7 (escape of GD from sharp minima).

    L. Wu, C. Ma and W. E, How SGD Selects the Global Minima in Over-parameterized
    Learning: A Dynamical Stability Perspective, NeurIPS 2018.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> is_stable_step(section6_example(), 2 / 44), is_stable_step(section6_example(), 0.05)
    (True, False)
    """
    eta = _check_eta(eta)
    return sharpness(factors, target=target) <= 2.0 / eta


def _check_eta(eta: float) -> float:
    return check_positive_float(eta, "step size eta")


@dataclass(frozen=True)
class FlatnessReport:
    """Flatness, balance and stability of a global minimum (see :func:`flatness_report`).

    Attributes
    ----------
    lambda_max : float
        Exact sharpness (Theorem 5).
    flat_lambda_max : float
        ``2 L sigma_max(M)^(2 - 2/L)``, the sharpness of flat minima; a lower bound.
    flatness_ratio : float
        ``lambda_max / flat_lambda_max >= 1``; 1 exactly at flat minima.
    upper_bound : float
        Corollary 10's ``2 sum_k sigma_max(A_k)^2 sigma_max(B_k)^2``.
    trace : float
        Exact Hessian trace.
    layer_products : tuple of float
        ``sigma_max(A_k) sigma_max(B_k)`` per k (``sigma_max(B_k F)``, ``F F^T = C``,
        with data).
    is_flat : bool or None
        ``lambda_max`` equals ``flat_lambda_max`` to ``CONDITION_RTOL``.
    corollary7 : bool or None
        For ``d_0 = d_L = 1``: every layer product equals ``|m|^(1 - 1/L)`` (iff flat).
        None when the corollary does not apply.
    corollary8 : bool or None
        For ``L = 2``: ``sigma_max(W_1) = sigma_max(W_2) = sqrt(sigma_max(M))`` (iff
        flat). None when ``L != 2``.
    corollary10 : bool
        Every layer product equals ``sigma_max(M)^(1 - 1/L)`` (sufficient for flatness).
    spectral_norms : tuple of float
        ``sigma_max(W_i)``.
    spectral_imbalance, frobenius_imbalance : float
        See :func:`spectral_imbalance` and :func:`frobenius_imbalance`.
    max_stable_step : float
        ``2 / lambda_max``: GD with a larger step is linearly unstable here.
    depth, dims, num_params : int, tuple, int
        The chain's shape.
    layer_sharpness : tuple of float
        ``lambda_max`` of each diagonal Hessian block,
        ``2 sigma_max(A_k)^2 sigma_max(B_k)^2`` (:func:`dmfsharp.layer_sharpness`).
        They sum to ``upper_bound`` (Corollary 10) and their maximum is a lower
        bound: ``max_k <= lambda_max <= sum_k``.
    data_source : str
        ``"identity"`` (eq. 15), ``"samples"`` or ``"covariance"``.
    normalization : str
        The loss normalization (``"sum"`` for eq. 15).

    With data (:mod:`dmfsharp.objective`) the flat value of eq. 35 is only known for
    ``C = X X^T`` a multiple of the identity (it scales by ``c c_0``); otherwise
    ``flat_lambda_max`` and ``flatness_ratio`` are NaN and ``is_flat`` is None. The
    Corollaries 7, 8 and 10 (stated for ``Sigma_x = I``) are None with data.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Theorem 5, Corollaries 7, 8 and 10, eqs. (15), (34), (35).

    R. Mulayoff and T. Michaeli, Unique Properties of Flat Minima in Deep Networks, ICML 2020.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> rep = flatness_report(section6_example())
    >>> rep.upper_bound, rep.max_stable_step == 2 / 44, rep.to_dict()["dims"]
    (44.0, True, [3, 3, 3])
    """

    lambda_max: float
    flat_lambda_max: float
    flatness_ratio: float
    upper_bound: float
    trace: float
    layer_products: tuple
    is_flat: bool | None
    corollary7: bool | None
    corollary8: bool | None
    corollary10: bool | None
    spectral_norms: tuple
    spectral_imbalance: float
    frobenius_imbalance: float
    max_stable_step: float
    depth: int
    dims: tuple
    num_params: int
    layer_sharpness: tuple = ()
    data_source: str = "identity"
    normalization: str = "sum"

    def is_stable(self, eta: float) -> bool:
        """Say whether step ``eta`` is linearly stable here (``lambda_max <= 2 / eta``).

        Parameters
        ----------
        eta : float
            The gradient-descent step size, ``> 0``.

        Returns
        -------
        bool
            True if ``lambda_max <= 2 / eta``.

        Raises
        ------
        ValueError
            If ``eta`` is not a positive finite number.
        """
        return self.lambda_max <= 2.0 / _check_eta(eta)

    def classify_step(self, eta: float) -> str:
        """Classify GD with step ``eta`` at this minimum as ``"stable"`` or ``"unstable"``.

        Parameters
        ----------
        eta : float
            The gradient-descent step size, ``> 0``.

        Returns
        -------
        str
            ``"stable"`` if ``lambda_max <= 2 / eta``, else ``"unstable"``.

        Raises
        ------
        ValueError
            If ``eta`` is not a positive finite number.
        """
        return "stable" if self.is_stable(eta) else "unstable"

    def to_dict(self) -> dict:
        """Return the report as a plain-Python dict (JSON-serializable).

        Returns
        -------
        dict
            One key per attribute; tuples become lists.
        """
        d = asdict(self)
        d["layer_products"] = list(d["layer_products"])
        d["spectral_norms"] = list(d["spectral_norms"])
        d["dims"] = list(d["dims"])
        d["layer_sharpness"] = list(d["layer_sharpness"])
        return d


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= CONDITION_RTOL * max(abs(a), abs(b))


def flatness_report(
    factors: FactorsLike,
    *,
    target: Any = None,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
) -> FlatnessReport:
    """Flatness, balance and stability diagnostics at a global minimum.

    ``data``, ``covariance`` and ``normalization`` select the loss of a deep linear
    network on data (as in :func:`dmfsharp.sharpness`); ``target`` is then ``Y``.
    The report includes the per-factor block sharpnesses, which sum to Corollary 10's
    bound (:func:`dmfsharp.layer_sharpness`).

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).
    target : array_like, optional
        The target ``M`` of shape ``(d_L, d_0)`` (``Y`` of shape ``(d_L, n)`` with data);
        None takes the chain's own product.
    data : array_like, shape (d_0, n), optional
        The inputs ``X`` of a deep linear network (columns are samples).
    covariance : array_like, shape (d_0, d_0), optional
        The input covariance ``Sigma_x`` instead of ``data``.
    normalization : str, optional
        The loss normalization with data (see ``dmfsharp.NORMALIZATIONS``).

    Returns
    -------
    FlatnessReport
        The diagnostics; see :class:`FlatnessReport` for each field.

    Raises
    ------
    FactorError
        If ``factors``, ``target``, ``data`` or ``covariance`` is invalid.
    NotAMinimumError
        If the factors are not a global minimum of the loss.
    ValueError
        If the keywords conflict (both ``data`` and ``covariance``) or
        ``normalization`` is unknown.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Theorem 5, Corollaries 7, 8 and 10, eqs. (15), (34), (35).

    R. Mulayoff and T. Michaeli, Unique Properties of Flat Minima in Deep Networks, ICML 2020.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> rep = flatness_report(section6_example())
    >>> rep.lambda_max, rep.flat_lambda_max, rep.is_flat, rep.frobenius_imbalance > 0
    (44.0, 44.0, True, True)
    >>> rep.classify_step(0.05)
    'unstable'
    """
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    chain = obj.chain
    L = chain.depth
    values: list[float] = []

    def top() -> float:
        values.append(gauss_newton_top(obj))
        return values[-1]

    require_minimum(obj, "flatness_report", top)
    lam = values[-1] if values else top()
    norms = tuple(float(np.sqrt(sigma_max_sq(w))) for w in chain.factors)
    common: dict[str, Any] = dict(
        spectral_norms=norms,
        spectral_imbalance=spectral_imbalance(chain),
        frobenius_imbalance=frobenius_imbalance(chain),
        max_stable_step=2.0 / lam if lam > 0 else float("inf"),
        depth=L,
        dims=tuple(chain.dims),
        num_params=chain.num_params,
    )
    if obj.is_identity:
        m = chain.product
        flat = flat_sharpness(m, L)
        prods = layer_norm_products(chain)
        smax_m = float(np.sqrt(sigma_max_sq(m)))
        c10_value = smax_m ** (1.0 - 1.0 / L)
        d0, dl = chain.dims[0], chain.dims[-1]
        cor7 = all(_close(p, c10_value) for p in prods) if d0 == dl == 1 else None
        cor8 = all(_close(s, np.sqrt(smax_m)) for s in norms) if L == 2 else None
        return FlatnessReport(
            lambda_max=lam,
            flat_lambda_max=flat,
            flatness_ratio=lam / flat if flat > 0 else float("inf"),
            upper_bound=2.0 * float(np.sum(prods**2)),
            trace=objective_trace(obj),
            layer_products=tuple(float(p) for p in prods),
            is_flat=_close(lam, flat),
            corollary7=cor7,
            corollary8=cor8,
            corollary10=all(_close(p, c10_value) for p in prods),
            layer_sharpness=tuple(float(v) for v in 2.0 * prods**2),
            **common,
        )
    layers = objective_layer_sharpness(obj)
    c0 = multiple_of_identity(obj.gram)
    if c0 is not None:
        flat = obj.scale * c0 * flat_sharpness(chain.product, L)
        ratio = lam / flat if flat > 0 else float("inf")
        is_flat: bool | None = _close(lam, flat)
    else:
        flat, ratio, is_flat = float("nan"), float("nan"), None
    return FlatnessReport(
        lambda_max=lam,
        flat_lambda_max=flat,
        flatness_ratio=ratio,
        upper_bound=float(np.sum(layers)),
        trace=objective_trace(obj),
        layer_products=tuple(float(v) for v in np.sqrt(layers / (2.0 * obj.scale))),
        is_flat=is_flat,
        corollary7=None,
        corollary8=None,
        corollary10=None,
        layer_sharpness=tuple(float(v) for v in layers),
        data_source=obj.source,
        normalization=obj.normalization,
        **common,
    )
