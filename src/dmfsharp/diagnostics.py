"""One call for everything ``dmfsharp inspect`` reports about a point: :func:`diagnose`.

At a global minimum (the closed forms hold, :func:`dmfsharp.is_minimum`): the exact
sharpness, trace, flatness, Corollary 10 bound, layer sharpnesses, Hessian rank and
balance. Elsewhere: the Hessian's ``lambda_max`` by Lanczos, beside the Gauss-Newton
part's exact value and trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chain import FactorsLike
from .errors import NotAMinimumError
from .exact import hessian_spectrum
from .flatness import flat_sharpness, flatness_report
from .linalg.kron import SPECTRUM_DENSE_MAX
from .minimum import require_minimum
from .numeric import numerical_sharpness
from .objective import make_objective
from .s_matrix import gauss_newton_top, objective_trace
from .validate import check_positive_float

__all__ = ["Diagnosis", "diagnose"]


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found (the record ``dmfsharp inspect --json`` prints).

    Attributes
    ----------
    info : dict
        Plain-Python values keyed as in ``dmfsharp inspect --json``: ``depth``, ``dims``,
        ``num_params``, ``target_given``, ``residual_norm``, ``is_minimum``, ``method``
        (``"exact"`` or ``"lanczos"``), ``lambda_max``, ``flat_lambda_max``,
        ``flatness_ratio``, ``max_stable_step`` and the route's own entries; with a step
        size, ``eta`` and ``eta_is_stable``.
    """

    info: dict[str, Any] = field(default_factory=dict)

    @property
    def lambda_max(self) -> float:
        """The Hessian's largest eigenvalue (exact at a minimum, Lanczos elsewhere)."""
        return float(self.info["lambda_max"])

    @property
    def is_minimum(self) -> bool:
        """Whether the closed forms hold at this point."""
        return bool(self.info["is_minimum"])

    def to_dict(self) -> dict[str, Any]:
        """A copy of :attr:`info` (JSON-serializable after :func:`dmfsharp.io.to_jsonable`)."""
        return dict(self.info)


def diagnose(
    factors: FactorsLike,
    target: Any = None,
    *,
    eta: float | None = None,
) -> Diagnosis:
    """Sharpness, flatness and stability of a point, exact where the closed forms hold.

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, or mapping
        The point ``[W_1, ..., W_L]``.
    target : array_like, optional
        ``M``; None means the factors' own product (a global minimum).
    eta : float, optional
        A GD step size to classify: stable iff ``lambda_max <= 2 / eta``.

    Returns
    -------
    Diagnosis

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025: Theorem 5, Corollary 10, eq. 35.

    Examples
    --------
    >>> from dmfsharp import section6_example
    >>> d = diagnose(section6_example(), eta=0.05)
    >>> d.lambda_max, d.info["is_flat"], d.info["eta_is_stable"]
    (44.0, True, False)
    """
    if eta is not None:
        eta = check_positive_float(eta, "eta")
    obj = make_objective(factors, target)
    chain = obj.chain
    g = obj.residual()[0]
    res = float(np.linalg.norm(g))
    try:
        require_minimum(obj, "diagnose")
        is_min = True
    except NotAMinimumError:
        is_min = False
    m = chain.product if obj.target is None else obj.target
    info: dict[str, Any] = {
        "depth": chain.depth,
        "dims": list(chain.dims),
        "num_params": chain.num_params,
        "target_given": obj.target is not None,
        "residual_norm": res,
        "is_minimum": bool(is_min),
    }
    small = chain.dims[0] * chain.dims[-1] <= SPECTRUM_DENSE_MAX
    if is_min:
        rep = flatness_report(chain)
        nonzero = hessian_spectrum(chain, k=None if small else 1)
        info.update(
            method="exact",
            lambda_max=rep.lambda_max,
            trace=rep.trace,
            flat_lambda_max=rep.flat_lambda_max,
            flatness_ratio=rep.flatness_ratio,
            is_flat=rep.is_flat,
            upper_bound=rep.upper_bound,
            layer_sharpness=list(rep.layer_sharpness),
            max_stable_step=rep.max_stable_step,
            hessian_rank=int(nonzero.size) if small else None,
            spectral_imbalance=rep.spectral_imbalance,
            frobenius_imbalance=rep.frobenius_imbalance,
            corollary7=rep.corollary7,
            corollary8=rep.corollary8,
            corollary10=rep.corollary10,
        )
    else:
        num = numerical_sharpness(chain, target=obj.target, method="lanczos")
        flat = flat_sharpness(m, chain.depth)
        lam = num.value
        gn = make_objective(chain)
        info.update(
            method="lanczos",
            lambda_max=lam,
            lanczos_converged=num.converged,
            trace=None,
            flat_lambda_max=flat,
            flatness_ratio=lam / flat if flat > 0 else None,
            max_stable_step=2.0 / lam if lam > 0 else None,
            gauss_newton_lambda_max=gauss_newton_top(gn),
            gauss_newton_trace=objective_trace(gn),
        )
    if eta is not None:
        info["eta"] = eta
        info["eta_is_stable"] = bool(info["lambda_max"] <= 2.0 / eta)
    return Diagnosis(info)
