"""Loss on a 2-D plane around a point (Appendix D.1): directions and a vectorized grid.

Appendix D.1 maps ``p(x, y) = L(w* + x zeta + y gamma)`` (eq. 91) for two directions
``zeta, gamma`` in parameter space. Random directions are uninformative near a minimum
of a deep factorization (most directions are flat, by the rank deficiency of the
Hessian), so the paper takes ``zeta = v_1`` and ``gamma = v_N``: the eigenvectors of the
largest and smallest Hessian eigenvalue. At a global minimum the smallest eigenvalue is
0; ``v_N`` here is :func:`dmfsharp.zero_eigenvector`, the tangent of a layer rescaling,
which is orthogonal to ``v_1`` (``v_1`` lies in the range of ``K^T``, ``v_N`` in the
null space of ``K``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, check_like, check_target
from .limits import check_allocation

__all__ = ["plane_directions", "loss_grid", "project", "flat_direction"]

#: Values accepted by ``plane_directions(..., kind=...)`` besides explicit arrays.
PLANE_KINDS = ("hessian", "random")


def flat_direction(chain: FactorChain, d: Any, name: str) -> np.ndarray:
    """Return a direction given flat (length ``N``) or as arrays shaped like the factors.

    Parameters
    ----------
    chain : FactorChain
        The point the direction belongs to.
    d : array_like or sequence of array_like
        A length-``N`` vector, or ``L`` arrays shaped like the factors.
    name : str
        What it is, for the message.

    Returns
    -------
    ndarray of float64, shape (N,)
        The direction, flattened as :meth:`FactorChain.flatten`.

    Raises
    ------
    FactorError
        If the blocks do not match the factors' shapes.
    ValueError
        If a flat vector does not have length ``N``.
    """
    flat_like = isinstance(d, np.ndarray) or (
        isinstance(d, (list, tuple)) and len(d) > 0 and all(np.isscalar(x) for x in d)
    )
    if flat_like and np.ndim(d) == 1:
        v = np.asarray(d, dtype=np.float64)
        if v.shape != (chain.num_params,):
            raise ValueError(f"{name} must have length N = {chain.num_params}, got {v.shape}")
        return v
    return np.concatenate([b.ravel() for b in check_like(chain, d, name)])


#: The old private name, still imported by :mod:`dmfsharp.dynamics` (being split elsewhere).


def plane_directions(point: FactorsLike, kind: Any = "hessian", *, seed: Any = 0) -> np.ndarray:
    """Two orthonormal directions ``(zeta, gamma)`` as a ``(2, N)`` array.

    Parameters
    ----------
    point : FactorChain or sequence of array_like
        ``w*``; for ``"hessian"`` a global minimum of its own product.
    kind : {"hessian", "random"} or pair of directions
        ``"hessian"``: ``(v_1, v_N)`` (Appendix D.1). ``"random"``: two Gaussian
        vectors from ``numpy.random.default_rng(seed)``, the first normalized, the
        second orthogonalized against it and normalized. Or the user's two directions
        (flat length-``N`` arrays or arrays shaped like the factors), orthonormalized
        the same way (Gram-Schmidt, in the given order).
    seed : int or None
        Seed for ``"random"``.

    Returns
    -------
    ndarray, shape (2, N)
        Rows ``zeta``, ``gamma`` with ``zeta . gamma = 0`` and unit norms.

    Raises
    ------
    FactorError
        If ``point`` or a given direction is invalid (wrong shapes).
    NotAMinimumError
        For ``"hessian"`` if ``point`` is not a global minimum of its product.
    ValueError
        If ``kind`` is unknown, ``N < 2``, a direction is non-finite or zero, or the two
        directions are parallel.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Appendix D.1 (the plane spanned by ``v_1`` and ``v_N``).

    Examples
    --------
    >>> import numpy as np
    >>> z = plane_directions([np.array([[1.0]]), np.array([[2.0]])])
    >>> np.round(z @ z.T, 12)
    array([[1., 0.],
           [0., 1.]])
    """
    chain = as_chain(point)
    n = chain.num_params
    if isinstance(kind, str):
        if kind == "hessian":
            from .exact import top_eigenvector, zero_eigenvector

            z = np.stack(
                [
                    np.concatenate([b.ravel() for b in top_eigenvector(chain)]),
                    np.concatenate([b.ravel() for b in zero_eigenvector(chain)]),
                ]
            )
        elif kind == "random":
            z = np.random.default_rng(seed).standard_normal((2, n))
        else:
            raise ValueError(f"plane must be one of {PLANE_KINDS} or two directions, got {kind!r}")
    else:
        try:
            first, second = kind
        except (TypeError, ValueError):
            raise ValueError("plane must be 'hessian', 'random' or a pair of directions") from None
        z = np.stack(
            [
                flat_direction(chain, first, "plane direction 1"),
                flat_direction(chain, second, "plane direction 2"),
            ]
        )
    if n < 2:
        raise ValueError("a plane needs at least N = 2 parameters")
    if not np.all(np.isfinite(z)):
        raise ValueError("plane directions have non-finite entries")
    n1 = np.linalg.norm(z[0])
    if n1 == 0:
        raise ValueError("the first plane direction is zero")
    z[0] /= n1
    z[1] -= (z[0] @ z[1]) * z[0]
    n2 = np.linalg.norm(z[1])
    if n2 <= 1e-12 * max(1.0, float(np.linalg.norm(z[1] + (z[0] @ z[1]) * z[0]))):
        raise ValueError("the two plane directions are parallel")
    z[1] /= n2
    z[1] -= (z[0] @ z[1]) * z[0]  # second pass for orthogonality to rounding
    z[1] /= np.linalg.norm(z[1])
    return z


def project(point: FactorsLike, reference: FactorsLike, plane: Any) -> np.ndarray:
    """Return the coordinates ``(x, y)`` of ``point - reference`` on the rows of ``plane``.

    Parameters
    ----------
    point, reference : FactorChain or sequence of array_like
        Two points with the same dims.
    plane : array_like, shape (2, N)
        Orthonormal rows ``zeta``, ``gamma`` (from :func:`plane_directions`).

    Returns
    -------
    ndarray of float64, shape (2,)
        ``plane @ (w - w*)``.

    Raises
    ------
    ValueError
        If the two points have different dims.
    """
    p, r = as_chain(point), as_chain(reference)
    if p.dims != r.dims:
        raise ValueError(f"point dims {p.dims} differ from reference dims {r.dims}")
    return np.asarray(plane) @ (p.flatten() - r.flatten())


def loss_grid(
    point: FactorsLike,
    xs: Any,
    ys: Any,
    *,
    plane: Any = "hessian",
    target: Any = None,
    seed: Any = 0,
    max_chunk_bytes: int = 1 << 25,
) -> np.ndarray:
    """``p(x, y) = L(w* + x zeta + y gamma)`` (eq. 91) on the grid ``xs`` x ``ys``.

    All grid points are evaluated together: the factors of a chunk of points are
    stacked on a batch axis, ``W_i(x, y) = W_i* + x zeta_i + y gamma_i``, and the
    product is one batched ``numpy.matmul`` per layer (no Python loop per point).

    Parameters
    ----------
    point : FactorChain or sequence of array_like
        ``w*``.
    xs, ys : array_like
        1-D coordinates.
    plane : {"hessian", "random"}, pair of directions, or (2, N) array
        As :func:`plane_directions`; a ``(2, N)`` array is used as given.
    target : array_like, optional
        ``M``; None means the product of ``point``.
    seed : int or None
        Seed for ``plane="random"``.
    max_chunk_bytes : int
        Memory cap for the stacked factors of one chunk.

    Returns
    -------
    ndarray, shape (len(ys), len(xs))
        ``out[j, i] = p(xs[i], ys[j])`` (the layout of ``matplotlib.contour``), float64.

    Raises
    ------
    FactorError
        If ``point``, ``target`` or a direction is invalid.
    ValueError
        If ``xs`` or ``ys`` is empty or non-finite, or ``plane`` is invalid (see
        :func:`plane_directions`).
    MemoryLimitError
        If the grid would exceed :func:`dmfsharp.limits.max_bytes`.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Appendix D.1, eq. (91).

    Examples
    --------
    Along ``v_1 = (2, 1) / sqrt 5`` from ``(W_1, W_2) = (1, 2)``, a step ``sqrt 5`` reaches
    ``(3, 3)``, with loss ``(2 - 9)^2 = 49``:

    >>> import numpy as np
    >>> loss_grid([np.array([[1.0]]), np.array([[2.0]])], [0.0, np.sqrt(5)], [0.0]).round(10)
    array([[ 0., 49.]])
    """
    chain = as_chain(point)
    m = chain.product if target is None else check_target(chain, target)
    xs = np.asarray(xs, dtype=np.float64).ravel()
    ys = np.asarray(ys, dtype=np.float64).ravel()
    if xs.size == 0 or ys.size == 0:
        raise ValueError("xs and ys must be non-empty")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError("xs and ys must be finite")
    check_allocation((ys.size, xs.size), what="the loss grid", alternative="fewer grid points per call")
    check_allocation((3, ys.size * xs.size), what="the grid coordinates")
    if isinstance(plane, np.ndarray) and plane.shape == (2, chain.num_params):
        z = np.asarray(plane, dtype=np.float64)
    else:
        z = plane_directions(chain, plane, seed=seed)
    zeta = chain.unflatten(z[0])
    gamma = chain.unflatten(z[1])
    gx, gy = np.meshgrid(xs, ys)
    px, py = gx.ravel(), gy.ravel()
    npts = px.size
    per_point = 8 * (2 * max(a.size for a in chain.factors) + 2 * max(chain.dims) * chain.dims[0])
    chunk = max(1, int(max_chunk_bytes) // max(per_point, 1))
    out = np.empty(npts)
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(0, npts, chunk):
            cx = px[s : s + chunk, None, None]
            cy = py[s : s + chunk, None, None]
            prod = chain.factors[0] + cx * zeta[0]
            prod += cy * gamma[0]
            for w, a, b in zip(chain.factors[1:], zeta[1:], gamma[1:], strict=False):
                wk = w + cx * a
                wk += cy * b
                prod = np.matmul(wk, prod)
            r = (m - prod).reshape(prod.shape[0], -1)
            out[s : s + chunk] = np.einsum("ij,ij->i", r, r)
    return out.reshape(ys.size, xs.size)
