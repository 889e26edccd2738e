r"""One call for everything ``dmfsharp inspect`` reports about a point: :func:`diagnose`.

The loss is any :class:`~dmfsharp.objective.Objective`: eq. 15 with a target ``M``, or a
deep linear network on data (``data=X`` with ``target=Y``, or ``covariance=``) with a
normalization, including PyTorch's ``MSELoss(reduction="mean")`` (``"torch-mean"``).

Exact at **every** point (no minimum needed): the Gauss-Newton part's ``lambda_max``
(Theorem 5's expression, eq. 57), the per-layer block sharpnesses (the residual term
does not reach the diagonal blocks) and the Hessian trace (:func:`dmfsharp.hessian_trace`),
and the distance to a minimum, the normal-equation residual ``G`` (``M - P``,
``(Y - P X) X^T`` or ``(T - P) Sigma_x``).

At a global minimum (:func:`dmfsharp.is_minimum`) the full Hessian is ``2c K_F^T K_F``:
``lambda_max`` is the closed form of Theorem 5, the nonzero spectrum is ``2c eig(S)``,
and ``lambda_min = 0`` exactly. Proof of the last: ``K_F`` always has a null vector.
If every factor is nonzero, the rescaling tangent ``U_k = a_k W_k`` with
``a_k = k - (L + 1)/2`` is nonzero and ``sum_k A_k U_k B_k = (sum_k a_k) P = 0``
(Appendix D.1); if some ``W_j = 0``, every block ``k != j`` (there is one as ``L >= 2``)
has ``A_k = 0`` or ``B_k = 0``, so ``K_F`` vanishes on it. ``H`` is PSD, so its smallest
eigenvalue is 0.

Elsewhere the full Hessian's ``lambda_max`` and ``lambda_min`` come from certified block
Lanczos on the exact Hessian-vector product (:func:`dmfsharp.numerical_eigenvalues`),
with their residuals ``||H v - theta v||`` (an eigenvalue lies within that distance).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, cast

import numpy as np

from .chain import FactorsLike
from .errors import ConvergenceError, NotAMinimumError
from .exact import hessian_spectrum
from .flatness import flat_sharpness, flatness_report, frobenius_imbalance, spectral_imbalance
from .gauss_newton import objective_layer_sharpness
from .linalg.kron import SPECTRUM_DENSE_MAX
from .linalg.lanczos import EigenPairs
from .minimum import require_minimum
from .numeric import objective_eigenvalues
from .objective import Objective, make_objective
from .s_matrix import gauss_newton_top, objective_trace
from .validate import check_positive_float, check_positive_int

__all__ = ["Diagnosis", "diagnose"]

#: Relative residual tolerance of the numerical eigenvalues away from minima.
NUMERICAL_TOL = 1e-10
#: Default budget of Hessian-vector products for each Lanczos run away from minima.
MAX_PRODUCTS = 500


def _keywords(obj: Objective) -> dict[str, Any]:
    """The public keywords that rebuild ``obj`` (for the closed forms taking factors)."""
    cov = obj.gram if obj.source == "covariance" else None
    return dict(target=obj.target, data=obj.samples, covariance=cov, normalization=obj.normalization)


def _lanczos(
    obj: Objective, k: int, which: str, seed: int | None, budget: int, shift: float | None = None
) -> tuple[EigenPairs, bool]:
    """``(pairs, converged)``; an unconverged run returns its partial Ritz values."""
    try:
        pairs = objective_eigenvalues(
            obj, k, which, tol=NUMERICAL_TOL, seed=seed, max_products=budget, shift=shift
        )
        return pairs, True
    except ConvergenceError as exc:
        if exc.partial is None:
            raise
        return cast(EigenPairs, exc.partial), False  # objective_eigenvalues' partial result


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What :func:`diagnose` found (``dmfsharp inspect --json`` prints :meth:`to_dict`).

    Attributes
    ----------
    depth, dims, num_params : int, tuple of int, int
        The chain: ``L``, ``(d_0, ..., d_L)`` and ``N``.
    source : str
        ``"identity"`` (eq. 15), ``"samples"`` (``data=``) or ``"covariance"``.
    normalization : str
        ``"sum"``, ``"mean"``, ``"half_mean"`` or ``"torch-mean"``.
    scale : float
        The loss scale ``c`` (``1/(n d_L)`` for ``"torch-mean"``).
    num_samples : int or None
        ``n`` with ``data=``.
    target_given : bool
        False when the factors were taken as a minimum of their own output.
    loss : float
        ``c ||(T - P) F||_F^2`` (``c ||Y - P X||_F^2`` with samples).
    residual_norm : float
        ``||G||_F``, the normal-equation residual: ``||M - P||_F`` (eq. 15),
        ``||(Y - P X) X^T||_F`` (samples) or ``||(T - P) Sigma_x||_F``.
    residual_tolerance : float
        The largest ``||G||_F`` that float64 rounding explains (taken as zero).
    product_gradient_norm : float
        ``||dL/dP||_F = 2c ||G||_F``: the residual in the units of the loss; zero exactly
        at the global minima (the loss is convex in ``P``).
    is_minimum : bool
        Whether the closed forms hold here (:func:`dmfsharp.is_minimum`).
    method : str
        ``"exact"`` (closed forms) or ``"lanczos"`` for ``lambda_max`` and ``lambda_min``.
    lambda_max, lambda_min : float
        The full Hessian's extreme eigenvalues.
    lambda_max_residual, lambda_min_residual : float or None
        ``||H v - theta v||`` of the Lanczos pairs (an eigenvalue lies within it); None
        when exact.
    lambda_max_converged, lambda_min_converged : bool or None
        Whether Lanczos met its stopping rule within ``max_products``: the residual is
        at most ``1e-10 |lambda_max|`` (``1e-10 (lambda_max - lambda_min)`` for
        ``lambda_min``). When False the values are Ritz values, still a lower bound on
        ``lambda_max`` and an upper bound on ``lambda_min``. None when exact.
    gauss_newton_lambda_max : float
        ``lambda_max(2c K_F^T K_F)``, exact at any point (eq. 57, Theorem 5's form).
    trace : float
        ``tr(H)``, exact at any point (:func:`dmfsharp.hessian_trace`).
    layer_sharpness : tuple of float
        ``lambda_max`` of each diagonal Hessian block, exact at any point.
    max_stable_step : float or None
        ``2 / lambda_max`` (None when ``lambda_max <= 0``).
    flat_lambda_max, flatness_ratio, is_flat : float, float, bool, or None
        Eq. 35's flat value and ``lambda_max`` over it (None where it is not known: with
        data away from minima, or a Gram matrix that is not a multiple of the identity).
    upper_bound : float
        Corollary 10's ``sum_k`` of :attr:`layer_sharpness` (a bound on ``lambda_max``
        at minima).
    hessian_rank : int or None
        Number of nonzero Hessian eigenvalues at a minimum (``d_0 d_L <= 196``).
    spectral_imbalance, frobenius_imbalance : float
        Balance of the factors (:func:`dmfsharp.spectral_imbalance`).
    corollary7, corollary8, corollary10 : bool or None
        The flatness conditions at a minimum of eq. 15 (None where they do not apply).
    spectrum, spectrum_residuals : tuple of float or None
        The top ``k`` Hessian eigenvalues when asked for (exact nonzero ones at a
        minimum, residuals None; Lanczos elsewhere, with residuals).
    eta, eta_is_stable : float or None, bool or None
        The step size classified, and whether ``lambda_max <= 2 / eta``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5 (``lambda_max`` at minima), Lemma 3
    (eqs. 56-58, the Hessian and its Gauss-Newton part), Corollaries 7, 8 and 10, eq. 35.

    L. Wu, C. Ma and W. E, How SGD Selects the Global Minima in Over-parameterized
    Learning: A Dynamical Stability Perspective, NeurIPS 2018 (``lambda_max <= 2 / eta``).

    Examples
    --------
    >>> from dmfsharp import diagnose, section6_example
    >>> d = diagnose(section6_example())
    >>> d.method, d.lambda_max, d.max_stable_step, d.hessian_rank
    ('exact', 44.0, 0.045454545454545456, 9)
    """

    depth: int
    dims: tuple[int, ...]
    num_params: int
    source: str
    normalization: str
    scale: float
    num_samples: int | None
    target_given: bool
    loss: float
    residual_norm: float
    residual_tolerance: float
    product_gradient_norm: float
    is_minimum: bool
    method: str
    lambda_max: float
    lambda_max_residual: float | None
    lambda_min: float
    lambda_min_residual: float | None
    lambda_max_converged: bool | None
    lambda_min_converged: bool | None
    gauss_newton_lambda_max: float
    trace: float
    layer_sharpness: tuple[float, ...]
    max_stable_step: float | None
    flat_lambda_max: float | None
    flatness_ratio: float | None
    is_flat: bool | None
    upper_bound: float
    hessian_rank: int | None
    spectral_imbalance: float
    frobenius_imbalance: float
    corollary7: bool | None = None
    corollary8: bool | None = None
    corollary10: bool | None = None
    spectrum: tuple[float, ...] | None = None
    spectrum_residuals: tuple[float, ...] | None = None
    eta: float | None = None
    eta_is_stable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists for tuples) for JSON, keyed by the field names.

        Returns
        -------
        dict of str to object
            One entry per field; tuples become lists, None stays None.
        """
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def diagnose(
    factors: FactorsLike,
    target: Any = None,
    *,
    data: Any = None,
    covariance: Any = None,
    normalization: str | None = None,
    eta: float | None = None,
    spectrum: int | None = None,
    seed: int | None = 0,
    max_products: int = MAX_PRODUCTS,
) -> Diagnosis:
    """Sharpness, trace, flatness and stability of a point, exact wherever that is possible.

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``.
    target : array_like, optional
        ``M`` (``d_L x d_0``), or ``Y`` (``d_L x n``) with ``data``, or ``T`` with
        ``covariance``; None means the factors' own output (a global minimum).
    data : array_like, optional
        Samples ``X`` of shape ``(d_0, n)``, float64; the loss is then ``c ||Y - P X||_F^2``
        with ``target`` ``Y`` of shape ``(d_L, n)``, as in :func:`dmfsharp.sharpness`.
    covariance : array_like, optional
        ``Sigma_x`` of shape ``(d_0, d_0)`` instead of samples; ``target`` is then ``T``.
    normalization : {"sum", "mean", "half_mean", "torch-mean"}, optional
        The loss scale ``c``; ``"torch-mean"`` is ``torch.nn.MSELoss(reduction="mean")``
        (``c = 1/(n d_L)``). Default as in :func:`dmfsharp.sharpness`.
    eta : float, optional
        A GD step size to classify: stable iff ``lambda_max <= 2 / eta``.
    spectrum : int, optional
        Also compute the top ``spectrum`` Hessian eigenvalues (exact nonzero ones at a
        minimum via :func:`dmfsharp.hessian_spectrum`, certified Lanczos elsewhere).
    seed : int or None
        Seed of the Lanczos starts (away from minima).
    max_products : int
        Budget of Hessian-vector products per Lanczos run (away from minima); a run
        that does not converge within it reports its Ritz values, flagged.

    Returns
    -------
    Diagnosis
        Every quantity ``dmfsharp inspect`` prints: loss, residual, ``lambda_max`` and
        ``lambda_min`` (exact or certified Lanczos, see ``method``), trace, per-layer
        sharpness, flatness and, with ``eta``, the stability verdict.

    Raises
    ------
    ValueError
        Invalid factors, target, data or options (named in the message).
    ConvergenceError
        If Lanczos does not certify ``lambda_max``, ``lambda_min`` or the spectrum.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5, Lemma 3 (eqs. 56-58), Corollary 10,
    eq. 35.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> d = diagnose(section6_example(), eta=0.05)
    >>> d.lambda_max, d.lambda_min, d.is_flat, d.eta_is_stable
    (44.0, 0.0, True, False)

    Away from the minimum of ``M = 0`` the trace and Gauss-Newton part stay exact:

    >>> import numpy as np
    >>> d = diagnose([np.array([[2.0]]), np.array([[3.0]])], target=[[0.0]])
    >>> d.is_minimum, d.trace, d.gauss_newton_lambda_max, round(d.lambda_max, 10)  # 13 + sqrt(601)
    (False, 26.0, 26.0, 37.5153013443)
    """
    if eta is not None:
        eta = check_positive_float(eta, "eta")
    if spectrum is not None:
        spectrum = check_positive_int(spectrum, "spectrum")
    max_products = check_positive_int(max_products, "max_products")
    obj = make_objective(factors, target, data=data, covariance=covariance, normalization=normalization)
    chain = obj.chain
    g, loss, tol = obj.residual_terms()
    res = float(np.linalg.norm(g))
    try:
        require_minimum(obj, "diagnose")
        is_min = True
    except NotAMinimumError:
        is_min = False
    layers = tuple(float(v) for v in objective_layer_sharpness(obj))
    common: dict[str, Any] = dict(
        depth=chain.depth,
        dims=tuple(chain.dims),
        num_params=chain.num_params,
        source=obj.source,
        normalization=obj.normalization,
        scale=float(obj.scale),
        num_samples=obj.num_samples,
        target_given=obj.target is not None,
        loss=float(loss),
        residual_norm=res,
        residual_tolerance=float(tol),
        product_gradient_norm=2.0 * obj.scale * res,
        is_minimum=is_min,
        trace=objective_trace(obj),
        layer_sharpness=layers,
        upper_bound=float(sum(layers)),
        spectral_imbalance=spectral_imbalance(chain),
        frobenius_imbalance=frobenius_imbalance(chain),
    )
    spec: tuple[float, ...] | None = None
    spec_res: tuple[float, ...] | None = None
    if is_min:
        kw = _keywords(obj)
        rep = flatness_report(chain, **kw)
        lam = rep.lambda_max
        small = obj.rank * chain.dims[-1] <= SPECTRUM_DENSE_MAX
        rank = int(hessian_spectrum(chain, **kw).size) if small else None
        if spectrum is not None:
            spec = tuple(float(v) for v in hessian_spectrum(chain, k=spectrum, **kw))
        flat = _finite_or_none(rep.flat_lambda_max)
        out = Diagnosis(
            **common,
            method="exact",
            lambda_max=lam,
            lambda_max_residual=None,
            lambda_min=0.0,
            lambda_min_residual=None,
            lambda_max_converged=None,
            lambda_min_converged=None,
            gauss_newton_lambda_max=lam,
            max_stable_step=2.0 / lam if lam > 0 else None,
            flat_lambda_max=flat,
            flatness_ratio=_finite_or_none(rep.flatness_ratio) if flat else None,
            is_flat=rep.is_flat,
            hessian_rank=rank,
            corollary7=rep.corollary7,
            corollary8=rep.corollary8,
            corollary10=rep.corollary10,
            spectrum=spec,
        )
    else:
        top, top_ok = _lanczos(obj, spectrum or 1, "LA", seed, max_products)
        lam = float(top.values[0])
        # lambda_min certified relative to the spread of the spectrum (shift by lambda_max)
        low, low_ok = _lanczos(
            obj, 1, "SA", seed, max_products, shift=max(lam + float(top.residuals[0]), 0.0)
        )
        if spectrum is not None:
            spec = tuple(float(v) for v in top.values)
            spec_res = tuple(float(v) for v in top.residuals)
        flat = flat_sharpness(obj.target, chain.depth) if obj.is_identity else None
        out = Diagnosis(
            **common,
            method="lanczos",
            lambda_max=lam,
            lambda_max_residual=float(top.residuals[0]),
            lambda_min=float(low.values[0]),
            lambda_min_residual=float(low.residuals[0]),
            lambda_max_converged=top_ok,
            lambda_min_converged=low_ok,
            gauss_newton_lambda_max=gauss_newton_top(obj),
            max_stable_step=2.0 / lam if lam > 0 else None,
            flat_lambda_max=flat,
            flatness_ratio=lam / flat if flat else None,
            is_flat=None,
            hessian_rank=None,
            spectrum=spec,
            spectrum_residuals=spec_res,
        )
    if eta is None:
        return out
    return replace(out, eta=eta, eta_is_stable=bool(out.lambda_max <= 2.0 / eta))
