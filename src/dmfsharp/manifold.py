r"""A one-parameter path along the manifold of minima, and the Section 6 discussion.

All factorizations of one target ``M`` are global minima (eq. 19), and invertible
rescalings ``W_k -> G W_k``, ``W_{k+1} -> W_{k+1} G^{-1}`` move along them without
changing the product (Appendix D.1, "Scale Invariance and Manifolds"). This module
walks the path

.. math::

    G(s) = I + (s - 1)\, e_j e_j^\top \quad (s > 0)

in hidden layer ``k`` of the flattest minimizer of ``M`` (:func:`dmfsharp.flattest_minimizer`,
whose hidden coordinate ``j`` carries the ``j``-th singular direction of ``M``): row
``j`` of ``W_k`` is multiplied by ``s`` and column ``j`` of ``W_{k+1}`` divided by it.
``s = 1`` is Frobenius-balanced. Only the layer products ``sigma_max(A_k)
sigma_max(B_k)`` with index ``k`` and ``k + 1`` change, to
``sigma_1^{(k-1)/L} max(sigma_1^{(L-k)/L}, sigma_j^{(L-k)/L} / s)`` and
``sigma_1^{(L-k-1)/L} max(sigma_1^{k/L}, s sigma_j^{k/L})``; both equal
``sigma_1^{1 - 1/L}`` exactly for

.. math::

    (\sigma_j / \sigma_1)^{(L-k)/L} \le s \le (\sigma_1 / \sigma_j)^{k/L},

so by Corollary 10 every minimizer on this *flat stretch* has the flat sharpness
``2 L sigma_1^{2 - 2/L}`` (eq. 35), while the Hessian trace
``2 sum_k ||A_k||_F^2 ||B_k||_F^2`` and the Frobenius imbalance change with ``s``: the
point of Section 6 that flat minima need not be (Frobenius-)balanced and that the
trace and ``lambda_max`` disagree as sharpness measures. Beyond the stretch the minima
become sharp. For ``L = 2`` Corollary 8 makes the stretch exactly the set of flat
points of the path.

The default is the Section 6 example: ``M = diag(11, 2, 1)``, dims ``(3, 3, 3)``,
``k = 1``, ``j = 2``; the flattest minimizer is ``W_1 = W_2 = diag(sqrt 11, sqrt 2, 1)``,
and ``s = 3 / sqrt 2`` gives ``W_1 = diag(sqrt 11, 3, 1) = R^T``,
``W_2 = diag(sqrt 11, 2/3, 1) = L`` -- the paper's ``(L^*, R^*)`` with ``lambda_max = 44``.
The flat stretch is ``s in [sqrt(2/11), sqrt(11/2)]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chain import FactorChain, as_float_array
from .errors import FactorError
from .exact import hessian_trace, sharpness
from .flatness import flat_sharpness, frobenius_imbalance, spectral_imbalance
from .gauss_newton import layer_sharpness
from .minima import check_dims, flattest_minimizer

__all__ = ["ManifoldPath", "minima_path", "SECTION6_SCALE", "CSV_COLUMNS"]

#: The path parameter of the Section 6 minimizer on the default path: ``3 / sqrt(2)``.
SECTION6_SCALE = 3.0 / np.sqrt(2.0)

#: Columns of :meth:`ManifoldPath.to_rows` and of the CSV file, in order.
CSV_COLUMNS = (
    "s",
    "lambda_max",
    "flat_lambda_max",
    "flatness_ratio",
    "trace",
    "upper_bound",
    "spectral_imbalance",
    "frobenius_imbalance",
    "product_rel_error",
    "on_flat_stretch",
)


@dataclass(frozen=True)
class ManifoldPath:
    """Diagnostics along a path of minimizers of one target (see :func:`minima_path`).

    Attributes
    ----------
    scales : ndarray
        The path parameter ``s`` at each point (ascending).
    lambda_max, trace, upper_bound : ndarray
        Exact sharpness (Theorem 5), Hessian trace and Corollary 10's bound.
    flat_lambda_max : float
        ``2 L sigma_max(M)^(2 - 2/L)`` (eq. 35), the same for every point.
    spectral_imbalance, frobenius_imbalance : ndarray
        As :func:`dmfsharp.spectral_imbalance`, :func:`dmfsharp.frobenius_imbalance`.
    product_rel_error : ndarray
        ``||W_L ... W_1 - M||_F / ||M||_F`` at each point (rounding only).
    flat_stretch : tuple of float
        ``(s_lo, s_hi)``: Corollary 10 guarantees ``lambda_max = flat_lambda_max`` there.
    marks : dict
        Named points: ``"balanced"`` (``s = 1``) and, on the default path,
        ``"section6"`` (``s = 3/sqrt(2)``).
    target, start : ndarray, FactorChain
        ``M`` and the flattest (balanced) minimizer at ``s = 1``.
    layer, direction : int
        ``k`` and ``j`` of ``G(s)``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 6, Corollary 10, eq. (35) and Appendix D.1.

    Examples
    --------
    >>> path = minima_path(num=5)
    >>> path.flat_lambda_max, round(path.flat_stretch[1] ** 2, 12)  # s_hi^2 = 11/2
    (44.0, 5.5)
    >>> round(sharpness(path.factors_at(SECTION6_SCALE)), 10)
    44.0
    >>> sorted(path.to_rows()[0])[:3]
    ['flat_lambda_max', 'flatness_ratio', 'frobenius_imbalance']
    """

    scales: np.ndarray
    lambda_max: np.ndarray
    trace: np.ndarray
    upper_bound: np.ndarray
    flat_lambda_max: float
    spectral_imbalance: np.ndarray
    frobenius_imbalance: np.ndarray
    product_rel_error: np.ndarray
    flat_stretch: tuple
    marks: dict
    target: np.ndarray = field(repr=False)
    start: FactorChain = field(repr=False)
    layer: int = 1
    direction: int = 2

    def factors_at(self, s: float) -> FactorChain:
        """Return the minimizer at path parameter ``s``.

        Parameters
        ----------
        s : float
            The path parameter, ``> 0``.

        Returns
        -------
        FactorChain
            ``W_k -> G(s) W_k``, ``W_{k+1} -> W_{k+1} G(s)^{-1}`` applied to :attr:`start`.
        """
        return _point(self.start, self.layer, self.direction, s)

    def to_rows(self) -> list[dict]:
        """Return one dict per point with the keys :data:`CSV_COLUMNS`.

        Returns
        -------
        list of dict
            One row per entry of :attr:`scales`, plain Python floats and bools.
        """
        lo, hi = self.flat_stretch
        rows = []
        for i, s in enumerate(self.scales):
            lam = float(self.lambda_max[i])
            rows.append(
                {
                    "s": float(s),
                    "lambda_max": lam,
                    "flat_lambda_max": self.flat_lambda_max,
                    "flatness_ratio": lam / self.flat_lambda_max,
                    "trace": float(self.trace[i]),
                    "upper_bound": float(self.upper_bound[i]),
                    "spectral_imbalance": float(self.spectral_imbalance[i]),
                    "frobenius_imbalance": float(self.frobenius_imbalance[i]),
                    "product_rel_error": float(self.product_rel_error[i]),
                    "on_flat_stretch": bool(lo * (1 - 1e-12) <= s <= hi * (1 + 1e-12)),
                }
            )
        return rows


def _point(start: FactorChain, layer: int, direction: int, s: float) -> FactorChain:
    """Apply ``G(s) = I + (s-1) e_j e_j^T`` between ``W_k`` and ``W_{k+1}``."""
    ws = [np.array(w) for w in start.factors]
    j = direction - 1
    ws[layer - 1][j, :] *= s
    ws[layer][:, j] /= s
    return FactorChain(ws)


def _section6_target() -> np.ndarray:
    return np.diag([11.0, 2.0, 1.0])


def minima_path(
    target: Any = None,
    dims: Any = None,
    *,
    layer: int = 1,
    direction: int = 2,
    scales: Any = None,
    s_min: float = 1.0,
    s_max: float | None = None,
    num: int = 121,
) -> ManifoldPath:
    """Walk minimizers of one ``M`` from Frobenius-balanced through flat to sharp ones.

    See the module docstring for the path ``G(s) = I + (s - 1) e_j e_j^T`` in hidden
    layer ``k`` of the flattest minimizer and for its flat stretch (Corollary 10).

    Parameters
    ----------
    target : array_like, optional
        ``M`` (``d_L x d_0``); default the Section 6 target ``diag(11, 2, 1)``.
    dims : sequence of int, optional
        ``(d_0, ..., d_L)``; default ``(d_0, max(d_0, d_L), d_L)`` (depth 2).
    layer : int
        ``k`` with ``1 <= k < L``: rescale between ``W_k`` and ``W_{k+1}``.
    direction : int
        ``j`` with ``2 <= j <= rank(M)``: the singular direction rescaled (``j = 1``
        would move the top direction, which leaves no flat stretch).
    scales : array_like, optional
        Explicit positive values of ``s``; otherwise ``num`` log-spaced values from
        ``s_min`` to ``s_max`` (default ``s_hi^2``: as far beyond the flat stretch's end
        ``s_hi`` as ``s_hi`` is beyond 1), plus ``1``, ``s_hi`` and, on the default
        path, the Section 6 point ``3/sqrt(2)``.

    s_min, s_max : float, optional
        The range of the log-spaced grid, ``0 < s_min < s_max``.
    num : int, optional
        The number of grid points, ``>= 2``.

    Returns
    -------
    ManifoldPath
        The diagnostics at every ``s`` (arrays of shape ``(n_s,)``).

    Raises
    ------
    FactorError
        If ``target``, ``dims`` or ``scales`` is invalid or their shapes disagree.
    ValueError
        If ``layer``, ``direction``, ``s_min``, ``s_max``, ``num`` or a scale is out of
        range.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 6, Corollaries 8 and 10, eqs. (19) and (35), Appendix D.1.

    Examples
    --------
    >>> path = minima_path()
    >>> i = int(np.argmin(abs(path.scales - path.marks["section6"])))
    >>> round(float(path.lambda_max[i]), 10), path.flat_lambda_max
    (44.0, 44.0)
    """
    default = target is None
    m = _section6_target() if default else as_float_array(target, "target M")
    d0, dl = m.shape[1], m.shape[0]
    dims = check_dims((d0, max(d0, dl), dl) if dims is None else dims)
    if (dims[-1], dims[0]) != m.shape:
        raise FactorError(
            f"target M has shape {m.shape}, but dims {list(dims)} need (d_L, d_0) = {(dims[-1], dims[0])}"
        )
    L = len(dims) - 1
    if not (isinstance(layer, (int, np.integer)) and 1 <= layer < L):
        raise ValueError(f"layer k must be an integer with 1 <= k < L = {L}, got {layer!r}")
    sv = np.linalg.svd(m, compute_uv=False)
    rank = int(np.sum(sv > max(m.shape) * np.finfo(float).eps * sv[0])) if sv[0] > 0 else 0
    if not (isinstance(direction, (int, np.integer)) and 2 <= direction <= rank):
        raise ValueError(
            f"direction j must be an integer with 2 <= j <= rank(M) = {rank}, got {direction!r}"
            + (" (M needs rank >= 2 for a flat stretch)" if rank < 2 else "")
        )
    start = flattest_minimizer(m, dims)
    s1, sj = float(sv[0]), float(sv[direction - 1])
    lo = (sj / s1) ** ((L - layer) / L)
    hi = (s1 / sj) ** (layer / L)
    marks = {"balanced": 1.0}
    if default and layer == 1 and direction == 2 and tuple(dims) == (3, 3, 3):
        marks["section6"] = float(SECTION6_SCALE)
    if scales is None:
        s_min = float(s_min)
        s_max = hi * hi if s_max is None else float(s_max)
        if not (np.isfinite(s_min) and np.isfinite(s_max) and 0 < s_min < s_max):
            raise ValueError(f"need 0 < s_min < s_max, got s_min={s_min}, s_max={s_max}")
        if not isinstance(num, (int, np.integer)) or num < 2:
            raise ValueError(f"num must be an integer >= 2, got {num!r}")
        grid = np.geomspace(s_min, s_max, int(num))
        extra = [v for v in (1.0, hi, lo, *marks.values()) if s_min <= v <= s_max]
        s_all = np.unique(np.concatenate([grid, extra]))
    else:
        s_all = np.asarray(as_float_array(scales, "scales", ndim=1))
        if np.any(s_all <= 0):
            raise ValueError("every path parameter s must be positive")
        s_all = np.unique(s_all)
    flat = flat_sharpness(m, L)
    mn = float(np.linalg.norm(m))
    cols: dict[str, list[float]] = {k: [] for k in ("lam", "tr", "ub", "si", "fi", "pe")}
    for s in s_all:
        chain = _point(start, layer, direction, float(s))
        cols["lam"].append(sharpness(chain))
        cols["tr"].append(hessian_trace(chain))
        cols["ub"].append(float(np.sum(layer_sharpness(chain))))
        cols["si"].append(spectral_imbalance(chain))
        cols["fi"].append(frobenius_imbalance(chain))
        cols["pe"].append(float(np.linalg.norm(chain.product - m)) / mn)
    return ManifoldPath(
        scales=s_all,
        lambda_max=np.array(cols["lam"]),
        trace=np.array(cols["tr"]),
        upper_bound=np.array(cols["ub"]),
        flat_lambda_max=float(flat),
        spectral_imbalance=np.array(cols["si"]),
        frobenius_imbalance=np.array(cols["fi"]),
        product_rel_error=np.array(cols["pe"]),
        flat_stretch=(float(lo), float(hi)),
        marks=marks,
        target=m,
        start=start,
        layer=int(layer),
        direction=int(direction),
    )
