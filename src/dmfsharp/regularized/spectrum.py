r"""The whole Hessian spectrum of ``L_mu`` at its global minimizers, from small exact blocks.

Every global minimizer of ``L_mu`` (``mu > 0``, off the tie set) is, up to orthogonal
changes of basis in ``R^{d_0}, ..., R^{d_L}`` (isometries of parameter space that leave
``L_mu`` invariant), the diagonal chain ``W_k = diag(s)`` (zero-padded to
``d_k x d_{k-1}``) with ``M = diag(sigma)``, ``s_i`` the scalar minimizers. So all of them
share one Hessian spectrum, computed here without any factors.

**Block structure.** In that frame write ``a_k(i) = (A_k)_{ii}``, ``b_k(i) = (B_k)_{ii}``,
``g_{kj}(i) = (W_{k-1} \cdots W_{j+1})_{ii}`` (``j < k``) and ``R_{ii} = sigma_i - s_i^L``;
``R`` is diagonal. In the second derivative of eqs. 56-58,
``2 ||sum_k A_k U_k B_k||^2 - 4 <R, sum_{j<k} A_k U_k W_{k-1} ... W_{j+1} U_j B_j> + 2 mu ||U||^2``,
the entry ``(U_k)_{ac}`` meets only ``(U_l)_{ac}`` (Gauss-Newton part, through ``J_{ac}``)
and ``(U_l)_{ca}`` (residual part, through ``R_{aa}`` and ``R_{cc}``). The Hessian is
therefore block diagonal over unordered index pairs ``{a, c}``, each block of size at most
``2L``, with entries (``x_k = (U_k)_{ac}``, ``y_k = (U_k)_{ca}``, ``j < k``)

.. math::

    H_{x_k x_l} = 2 a_k(a) b_k(c)\, a_l(a) b_l(c) + 2\mu\delta_{kl}, \qquad
    H_{x_k y_j} = -2 R_{aa}\, a_k(a)\, g_{kj}(c)\, b_j(a),

and the same with ``a`` and ``c`` swapped for ``y``. Diagonalizing the ``O(D^2)`` blocks
(``D = max_i d_i``) gives all ``N`` eigenvalues exactly.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Lemma 3, eqs. 56-58).
A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..chain import as_float_array
from ..errors import FactorError
from ..minima import check_dims
from ..validate import check_weight_decay
from .scalar import scalar_minimizer

__all__ = ["regularized_minimum_spectrum"]


def _diagonal_frame(
    m: np.ndarray, dims: tuple[int, ...], mu: float
) -> tuple[
    int,
    int,
    Callable[[int, int], float],
    Callable[[int, int], float],
    Callable[[int, int, int], float],
    np.ndarray,
]:
    L = len(dims) - 1
    D = max(dims)
    sigma = np.zeros(D)
    sv = np.linalg.svd(m, compute_uv=False)
    sigma[: sv.size] = sv
    q = min(min(dims), sv.size)
    s = np.zeros(D)
    s[:q] = [scalar_minimizer(float(x), L, weight_decay=mu) for x in sv[:q]]

    def alpha(k: int, i: int) -> float:  # (A_k)_{ii}, k = 1..L
        if k == L:
            return 1.0 if i < dims[L] else 0.0
        return s[i] ** (L - k)

    def beta(k: int, i: int) -> float:  # (B_k)_{ii}
        if k == 1:
            return 1.0 if i < dims[0] else 0.0
        return s[i] ** (k - 1)

    def gamma(k: int, j: int, i: int) -> float:  # (W_{k-1} ... W_{j+1})_{ii}, j < k
        if k == j + 1:
            return 1.0 if i < dims[j] else 0.0
        return s[i] ** (k - j - 1)

    resid = sigma - s**L
    resid[min(dims[0], dims[-1]) :] = 0.0
    return L, D, alpha, beta, gamma, resid


def regularized_minimum_spectrum(target: Any, dims: Sequence[int], *, weight_decay: float) -> np.ndarray:
    """All ``N`` Hessian eigenvalues of ``L_mu`` at its global minimizers, ascending.

    Exact up to the rounding of small dense ``eigh`` calls (blocks of size ``<= 2L``,
    see the module text); no factors, no Lanczos. The same at every global minimizer
    produced by :func:`dmfsharp.regularized_minimizer` (any seed); at a tie
    (``mu = mu*(sigma_i)``) it is the spectrum at the minimizer with nonzero ``s_i``.

    Parameters
    ----------
    target : array_like, shape (d_L, d_0)
        ``M``.
    dims : sequence of int
        ``(d_0, ..., d_L)``.
    weight_decay : float
        ``mu >= 0`` (for ``mu = 0``: the spectrum at the flattest minimizer).

    Returns
    -------
    ndarray, shape (N,)
        The eigenvalues, ascending, float64 (``N = sum_k d_k d_(k-1)``).

    Raises
    ------
    FactorError
        If ``M`` is invalid or its shape is not ``(d_L, d_0)``, or ``dims`` are invalid.
    ValueError
        If ``weight_decay`` is negative or not finite.

    References
    ----------
    A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
    Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.

    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Lemma 3, eqs. 56-58: the Hessian, here plus
    ``2 mu I``).

    Examples
    --------
    >>> import numpy as np
    >>> ev = regularized_minimum_spectrum(np.array([[4.0]]), (1, 2, 1), weight_decay=3.0)
    >>> np.round(ev, 12).tolist()  # s^2 = 1: 2 L s^2 - 2 (L-2) mu, 4 mu, 0 and 4 mu
    [0.0, 4.0, 12.0, 12.0]
    """
    m = as_float_array(target, "target M")
    dims = check_dims(dims, feasible=False)
    mu = check_weight_decay(weight_decay)
    if (dims[-1], dims[0]) != m.shape:
        raise FactorError(
            f"target M has shape {m.shape}, but dims {list(dims)} need (d_L, d_0) = {(dims[-1], dims[0])}"
        )
    L, D, alpha, beta, gamma, resid = _diagonal_frame(m, dims, mu)
    out = []
    for a in range(D):
        for c in range(a, D):
            # variables: ("x", k) = (U_k)_{ac} and, if c != a, ("y", k) = (U_k)_{ca}
            var = [(a, c, k) for k in range(1, L + 1) if a < dims[k] and c < dims[k - 1]]
            if c != a:
                var += [(c, a, k) for k in range(1, L + 1) if c < dims[k] and a < dims[k - 1]]
            if not var:
                continue
            n = len(var)
            h = 2.0 * mu * np.eye(n)
            g = np.array([alpha(k, r) * beta(k, col) for r, col, k in var])
            for rr, cc in ((a, c), (c, a)):  # Gauss-Newton: J_{rr,cc} uses entries (rr, cc)
                sel = np.array([(r, col) == (rr, cc) for r, col, _ in var])
                gv = np.where(sel, g, 0.0)
                h += 2.0 * np.outer(gv, gv)
                if a == c:
                    break
            for p, (r1, c1, k) in enumerate(var):
                for t, (r2, c2, j) in enumerate(var):
                    # residual term: (U_k)_{r c'} with (U_j)_{c' r}, j < k, weighted by R_{rr}
                    if j < k and r2 == c1 and c2 == r1:
                        h[p, t] -= 2.0 * resid[r1] * alpha(k, r1) * gamma(k, j, c1) * beta(j, r1)
                        if p != t:
                            h[t, p] = h[p, t]
            out.append(np.linalg.eigvalsh(h))
    return np.sort(np.concatenate(out))
