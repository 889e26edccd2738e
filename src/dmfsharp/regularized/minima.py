"""A global minimizer of weight-decay-regularized deep matrix factorization.

Built from the scalar problems of :mod:`dmfsharp.regularized.scalar` (see its module text for the
reduction): balanced factors carrying the scalar minimizers on the top singular directions
of ``M``, with a seeded orthogonal freedom between layers.

References
----------
A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..chain import FactorChain
from ..errors import FactorError
from ..minima import check_dims
from ..validate import check_weight_decay
from .scalar import scalar_minimizer, target_matrix

__all__ = ["regularized_minimizer"]


def _random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def regularized_minimizer(
    target: Any, dims: Sequence[int], *, weight_decay: float, seed: Any = None
) -> FactorChain:
    """A global minimizer of ``||M - W_L ... W_1||_F^2 + mu sum_k ||W_k||_F^2``.

    With the SVD ``M = U diag(sigma) V^T`` and ``q = min(d_0, ..., d_L)``, each of the top
    ``q`` singular values gets ``s_i`` = :func:`scalar_minimizer` ``(sigma_i, L, mu)`` and
    the factors are balanced:
    ``W_1 = R_1 diag(s) V^T``, ``W_k = R_k diag(s) R_{k-1}^T``, ``W_L = U diag(s) R_{L-1}^T``
    (zero-padded), so ``P = U diag(s^L) V^T``. Narrow hidden widths are allowed: they
    cap the rank at ``q``. ``seed=None`` takes ``R_k = I``; a seed draws each ``R_k``
    orthogonal with ``numpy.random.default_rng(seed)``, giving another global minimizer
    of the same value (for ``mu > 0`` every global minimizer off the tie set has this
    form, so all share the layer norms ``||W_k||_F^2 = sum_i s_i^2``).

    Parameters
    ----------
    target : array_like, shape (d_L, d_0)
        ``M``.
    dims : sequence of int
        ``(d_0, d_1, ..., d_L)``, ``L >= 2``, matching ``M``.
    weight_decay : float
        ``mu >= 0`` (``mu = 0`` gives a flattest minimizer of the unregularized loss).
    seed : int or numpy.random.Generator, optional
        Seed of the orthogonal freedom between layers.

    Returns
    -------
    FactorChain
        ``[W_1, ..., W_L]``, ``W_k`` of shape ``(d_k, d_(k-1))``, float64, balanced.

    Raises
    ------
    FactorError
        If ``M`` is invalid or its shape is not ``(d_L, d_0)``, or ``dims`` are invalid.
    ValueError
        If ``weight_decay`` is negative or not finite.

    Warns
    -----
    WeightDecayTieWarning
        If some ``sigma_i`` sits exactly at its collapse threshold.

    References
    ----------
    A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
    Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.

    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15, the unregularized loss).

    Examples
    --------
    >>> import numpy as np
    >>> chain = regularized_minimizer(np.diag([4.0, 1.0]), (2, 2, 2), weight_decay=3.0)
    >>> chain.product  # soft-thresholding: diag(max(sigma - mu, 0))
    array([[1., 0.],
           [0., 0.]])
    """
    m = target_matrix(target)
    dims = check_dims(dims, feasible=False)
    mu = check_weight_decay(weight_decay)
    if (dims[-1], dims[0]) != m.shape:
        raise FactorError(
            f"target M has shape {m.shape}, but dims {list(dims)} need (d_L, d_0) = {(dims[-1], dims[0])}"
        )
    L = len(dims) - 1
    u, sig, vt = np.linalg.svd(m, full_matrices=False)
    q = min(min(dims), sig.size)
    s = np.array([scalar_minimizer(float(x), L, weight_decay=mu) for x in sig[:q]])
    rng = np.random.default_rng(seed) if seed is not None else None
    rot = [np.eye(d) if rng is None else _random_orthogonal(d, rng) for d in dims[1:-1]]
    left = [r[:, :q] for r in rot] + [u[:, :q]]  # output bases of W_1, ..., W_L
    right = [vt[:q].T] + [r[:, :q] for r in rot]  # input bases of W_1, ..., W_L
    return FactorChain([(lo * s) @ ri.T for lo, ri in zip(left, right, strict=True)])
