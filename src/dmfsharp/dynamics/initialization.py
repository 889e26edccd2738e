"""Initializations for training, and the default seeded target.

All draws come from one ``numpy.random.default_rng(seed)``: the default target first
(when one is drawn), then the factors ``W_1, ..., W_L`` in order, so a seed fixes both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..chain import FactorChain, as_chain
from .inputs import positive_float

__all__ = ["INITS", "initial_factors", "gaussian_target", "load_start"]

#: Named initializations of :func:`initial_factors`.
INITS = ("gaussian", "orthogonal", "identity")


def gaussian_target(dims: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A ``(d_L, d_0)`` target with i.i.d. standard normal entries."""
    return rng.standard_normal((dims[-1], dims[0]))


def initial_factors(dims: tuple[int, ...], init: str, scale: float, rng: np.random.Generator) -> FactorChain:
    """Factors ``W_1 ... W_L`` of a named initialization of scale ``alpha``.

    Parameters
    ----------
    dims : tuple of int
        ``(d_0, ..., d_L)``.
    init : {"gaussian", "orthogonal", "identity"}
        ``"gaussian"``: i.i.d. entries ``alpha N(0, 1)`` (small ``alpha`` is the rich,
        low-rank regime). ``"orthogonal"``: ``alpha Q_i`` with ``Q_i`` a uniformly random
        ``d_i x d_{i-1}`` matrix with orthonormal rows or columns (QR of a Gaussian,
        signs fixed by ``diag(R) > 0``). ``"identity"``: ``alpha I`` (all widths equal;
        a balanced start, ``W_{i+1}^T W_{i+1} = W_i W_i^T``, as in Ghosh et al. 2025).
    scale : float
        ``alpha > 0``.
    rng : numpy.random.Generator
        The source of randomness.

    Returns
    -------
    FactorChain

    Raises
    ------
    ValueError
        An unknown ``init``, a non-positive scale, or unequal widths for ``"identity"``.

    Examples
    --------
    >>> import numpy as np
    >>> ch = initial_factors((2, 2, 2), "identity", 0.5, np.random.default_rng(0))
    >>> ch.product.tolist()
    [[0.25, 0.0], [0.0, 0.25]]
    """
    alpha = positive_float(scale, "init_scale")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)} or a factors file, got {init!r}")
    pairs = [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]
    if init == "identity":
        if len(set(dims)) != 1:
            raise ValueError(f"init 'identity' needs equal widths d_0 = ... = d_L, got dims {dims}")
        return FactorChain([alpha * np.eye(r) for r, _ in pairs])
    if init == "gaussian":
        return FactorChain([alpha * rng.standard_normal(shape) for shape in pairs])
    factors = []
    for r, c in pairs:
        g = rng.standard_normal((max(r, c), min(r, c)))
        q, rr = np.linalg.qr(g)
        q = q * np.where(np.diag(rr) < 0, -1.0, 1.0)
        factors.append(alpha * (q if r >= c else q.T))
    return FactorChain(factors)


def load_start(source: Any) -> tuple[FactorChain, np.ndarray | None]:
    """A start point from a file (``.npz`` with ``W1 ... WL``, or a PyTorch ``.pt``) or factors.

    Returns the chain and the file's target ``M`` if it holds one.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix in (".pt", ".pth"):
            from ..torch_interop import load_torch_factors

            return load_torch_factors(path), None
        from ..io import load_factors

        return load_factors(path)
    return as_chain(source), None
