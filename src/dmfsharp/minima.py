"""Constructing global minimizers: random (the paper's recipe), flattest, rescaled, Section 6.

Every constructor returns a :class:`FactorChain` whose product is the target, so it
is a global minimum of ``||M - W_L ... W_1||_F^2`` with ``M`` its product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, as_float_array
from .errors import FactorError
from .limits import check_allocation
from .validate import check_int_at_least, check_int_pair, check_positive_float

__all__ = [
    "check_dims",
    "random_dims",
    "random_minimizer",
    "flattest_minimizer",
    "rescale",
    "section6_example",
]


def check_dims(dims: Sequence[int], *, feasible: bool = True) -> tuple[int, ...]:
    """Validate ``(d_0, ..., d_L)``: integers >= 1, ``L >= 2`` and, if ``feasible``, eq. 17.

    Eq. 17 (``min_i d_i >= min(d_0, d_L)``) makes every ``M`` factorizable.

    Parameters
    ----------
    dims : sequence of int
        ``(d_0, ..., d_L)``.
    feasible : bool, optional
        Whether to require eq. (17).

    Returns
    -------
    tuple of int
        ``dims`` as Python ints.

    Raises
    ------
    FactorError
        If an entry is not an integer ``>= 1``, there are fewer than 3, or (with
        ``feasible``) a hidden width is below ``min(d_0, d_L)``.

    Examples
    --------
    >>> check_dims([20, 20.0, 10])
    (20, 20, 10)
    """
    try:
        out = tuple(int(d) for d in dims)
    except (TypeError, ValueError):
        raise FactorError(f"dims must be a sequence of integers, got {dims!r}") from None
    if any(float(d) != o for d, o in zip(dims, out)):
        raise FactorError(f"dims must be integers, got {list(dims)}")
    if len(out) < 3:
        raise FactorError(f"dims (d_0, ..., d_L) need depth L >= 2, i.e. at least 3 entries, got {list(out)}")
    if min(out) < 1:
        raise FactorError(f"every dimension must be >= 1, got {list(out)}")
    if feasible:
        need = min(out[0], out[-1])
        narrow = [i for i, d in enumerate(out[1:-1], start=1) if d < need]
        if narrow:
            i = narrow[0]
            raise FactorError(
                f"hidden width d_{i} = {out[i]} is below min(d_0, d_L) = {need}: the widths "
                f"{list(out)} violate eq. 17, so not every target is reachable"
            )
    return out


def random_dims(
    depth: int, d0: int, dL: int, widths: tuple[int, int], *, seed: Any = None
) -> tuple[int, ...]:
    """Random layer dimensions as in Appendix D.2: hidden widths uniform in ``widths``.

    ``widths = (lo, hi)`` is inclusive; ``lo`` must satisfy eq. 17.

    Parameters
    ----------
    depth : int
        The depth ``L >= 2``.
    d0, dL : int
        The input and output dimensions ``d_0`` and ``d_L``, ``>= 1``.
    widths : tuple of int
        ``(lo, hi)``, the inclusive range of each hidden width; ``lo >= min(d_0, d_L)``.
    seed : int, numpy.random.Generator or None, optional
        Passed to ``numpy.random.default_rng``.

    Returns
    -------
    tuple of int
        ``(d_0, d_1, ..., d_L)``, of length ``L + 1``.

    Raises
    ------
    FactorError
        If ``depth`` or ``widths`` is invalid, or the widths violate eq. (17).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Appendix D.2 and eq. (17).

    Examples
    --------
    >>> random_dims(3, 5, 4, (5, 8), seed=0)
    (5, 8, 7, 4)
    """
    try:
        depth = check_int_at_least(depth, 2, "depth L")
        lo, hi = check_int_pair(widths, "widths")
    except ValueError as exc:
        raise FactorError(str(exc)) from None
    rng = np.random.default_rng(seed)
    hidden = rng.integers(lo, hi + 1, size=depth - 1)
    return check_dims((d0, *hidden.tolist(), dL))


def random_minimizer(dims: Sequence[int], *, seed: Any = None, scale: float = 1.0) -> FactorChain:
    """The paper's recipe (Appendix D.2): Gaussian factors, ``M :=`` their product.

    Each entry of ``W_i`` is drawn from ``N(0, scale^2)`` with
    ``numpy.random.default_rng(seed)``, W_1 first.

    Parameters
    ----------
    dims : sequence of int
        ``(d_0, ..., d_L)``, ``L >= 2``, satisfying eq. (17).
    seed : int, numpy.random.Generator or None, optional
        Passed to ``numpy.random.default_rng``.
    scale : float, optional
        The standard deviation of each entry, ``> 0`` (default 1).

    Returns
    -------
    FactorChain
        ``W_i`` of shape ``(d_i, d_{i-1})``, float64; a global minimum of its own product.

    Raises
    ------
    FactorError
        If ``dims`` is invalid or violates eq. (17).
    ValueError
        If ``scale`` is not a positive finite number.
    MemoryLimitError
        If the factors would exceed :func:`dmfsharp.limits.max_bytes`.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Appendix D.2.

    Examples
    --------
    >>> chain = random_minimizer((20, 20, 10), seed=0)
    >>> chain.dims, chain.num_params
    ((20, 20, 10), 600)
    """
    dims = check_dims(dims)
    scale = check_positive_float(scale, "scale")
    for i in range(1, len(dims)):
        check_allocation((dims[i], dims[i - 1]), what=f"factor W_{i}")
    check_allocation((sum(dims[i] * dims[i - 1] for i in range(1, len(dims))),), what="the factors")
    rng = np.random.default_rng(seed)
    return FactorChain([scale * rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))])


def _random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def flattest_minimizer(target: Any, dims: Sequence[int], *, seed: Any = None) -> FactorChain:
    """A flattest (balanced) minimizer of ``M`` with the given dims.

    With the SVD ``M = U diag(s) V^T`` of rank ``r``, every factor carries
    ``diag(s)^(1/L)`` on the first ``r`` hidden coordinates:
    ``W_1 = [diag(s)^(1/L) V_r^T; 0]``, ``W_i = diag(s)^(1/L)`` padded,
    ``W_L = [U_r diag(s)^(1/L), 0]``. Then ``sigma_max(A_k) sigma_max(B_k) =
    sigma_max(M)^(1 - 1/L)`` for every k, so ``lambda_max = 2 L sigma_max(M)^(2-2/L)``
    (Corollary 10 with eq. 35): the flat value. The factors are also Frobenius-balanced
    (``W_{i+1}^T W_{i+1} = W_i W_i^T``). With a ``seed``, each hidden space is rotated
    by a random orthogonal matrix, which keeps both properties.

    Parameters
    ----------
    target : array_like
        ``M``, shape ``(d_L, d_0)``.
    dims : sequence of int
        ``(d_0, ..., d_L)`` matching ``M``; every hidden width must be ``>= rank(M)``.
    seed : int, numpy.random.Generator or None, optional
        If given, each hidden space is rotated by a random orthogonal matrix.

    Returns
    -------
    FactorChain
        A flat, balanced global minimizer of ``M`` (float64).

    Raises
    ------
    FactorError
        If ``target`` or ``dims`` is invalid, their shapes disagree, or a hidden width is
        below ``rank(M)``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Corollary 10 and eq. (35).

    R. Mulayoff and T. Michaeli, Unique Properties of Flat Minima in Deep Networks, ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import sharpness, flat_sharpness
    >>> m = np.diag([11.0, 2.0, 1.0])
    >>> chain = flattest_minimizer(m, (3, 3, 3))
    >>> bool(np.isclose(sharpness(chain, target=m), flat_sharpness(m, 2)))
    True
    """
    m = as_float_array(target, "target M")
    dims = check_dims(dims, feasible=False)
    if (dims[-1], dims[0]) != m.shape:
        raise FactorError(
            f"target M has shape {m.shape}, but dims {list(dims)} need (d_L, d_0) = {(dims[-1], dims[0])}"
        )
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    tol = max(m.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0)
    r = int(np.sum(s > tol))
    narrow = [i for i, d in enumerate(dims[1:-1], start=1) if d < r]
    if narrow:
        i = narrow[0]
        raise FactorError(f"hidden width d_{i} = {dims[i]} is below rank(M) = {r}: no factorization exists")
    L = len(dims) - 1
    root = s[:r] ** (1.0 / L)
    factors = []
    for i in range(1, L + 1):
        w = np.zeros((dims[i], dims[i - 1]))
        if i == 1:
            w[:r, :] = root[:, None] * vt[:r]
        elif i == L:
            w[:, :r] = u[:, :r] * root[None, :]
        else:
            w[:r, :r] = np.diag(root)
        factors.append(w)
    if seed is not None:
        rng = np.random.default_rng(seed)
        qs = [_random_orthogonal(d, rng) for d in dims[1:-1]]
        for i in range(L):
            left = qs[i] if i < L - 1 else None
            right = qs[i - 1].T if i > 0 else None
            if left is not None:
                factors[i] = left @ factors[i]
            if right is not None:
                factors[i] = factors[i] @ right
    return FactorChain(factors)


def rescale(factors: FactorsLike, k: int, g: Any) -> FactorChain:
    """Move along the manifold of minima: ``W_k -> G W_k``, ``W_{k+1} -> W_{k+1} G^{-1}``.

    ``G`` is an invertible ``d_k x d_k`` matrix (or a nonzero scalar), ``1 <= k < L``;
    the product ``W_L ... W_1`` is unchanged. ``G^{-1}`` is applied by a linear solve.

    Parameters
    ----------
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).
    k : int
        The factor multiplied by ``G``, ``1 <= k < L``.
    g : array_like, shape (d_k, d_k), or float
        The invertible matrix ``G`` (a scalar ``g`` means ``g I``).

    Returns
    -------
    FactorChain
        The rescaled chain, with the same product.

    Raises
    ------
    FactorError
        If ``factors`` or ``G`` is invalid, ``G`` has the wrong shape, or is singular
        (condition number above ``1e12``).
    ValueError
        If ``k`` is not an integer in ``1 .. L-1``.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 6 (the manifold of minima).

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import sharpness, section6_example
    >>> balanced = rescale(section6_example(), 1, np.diag([1.0, np.sqrt(2) / 3, 1.0]))
    >>> np.allclose(balanced[0], balanced[1]), sharpness(balanced)
    (True, 44.0)
    """
    chain = as_chain(factors)
    L = chain.depth
    if not (isinstance(k, (int, np.integer)) and 1 <= k < L):
        raise ValueError(f"k must be an integer with 1 <= k < L = {L}, got {k!r}")
    d = chain.dims[k]
    if hasattr(g, "detach") and hasattr(g, "cpu"):  # a torch.Tensor
        g = g.detach().cpu().numpy()
    garr = np.asarray(g, dtype=float)
    if garr.ndim == 0:
        garr = float(garr) * np.eye(d)
    garr = as_float_array(garr, "rescaling G")
    if garr.shape != (d, d):
        raise FactorError(f"rescaling G must be {d} x {d} (d_{k} = {d}), got {garr.shape}")
    cond = np.linalg.cond(garr)
    if not np.isfinite(cond) or cond > 1e12:
        raise FactorError(f"rescaling G is singular or nearly so (condition number {cond:.3e})")
    new = list(chain.factors)
    new[k - 1] = garr @ new[k - 1]
    # W_{k+1} G^{-1} = (G^{-T} W_{k+1}^T)^T
    new[k] = np.linalg.solve(garr.T, new[k].T).T
    return FactorChain(new)


def section6_example() -> FactorChain:
    """The Section 6 minimizer: flat (sharpness 44) but not Frobenius-balanced.

    ``M = diag(11, 2, 1) = L R^T`` with ``L = diag(sqrt 11, 2/3, 1)`` and
    ``R = diag(sqrt 11, 3, 1)``; in the W_1-first convention ``W_1 = R^T``,
    ``W_2 = L``. Corollary 6 gives ``2 (11 + 11) = 44 = 4 sigma_max(M)``, the flat value,
    although ``L L^T != R R^T``.

    Returns
    -------
    FactorChain
        ``[W_1, W_2]``, both ``3 x 3`` diagonal, float64.

    Raises
    ------
    FactorError
        Never for these fixed factors (listed for completeness of the constructor).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 6 and Corollary 6.

    Examples
    --------
    >>> section6_example().product.diagonal().round(12).tolist()
    [11.0, 2.0, 1.0]
    """
    s11 = np.sqrt(11.0)
    return FactorChain([np.diag([s11, 3.0, 1.0]), np.diag([s11, 2.0 / 3.0, 1.0])])
