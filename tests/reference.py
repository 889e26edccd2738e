"""Independent numerical references for the tests: autograd and finite-difference Hessians.

The autograd losses live in :mod:`tests.autodiff_reference` (which needs torch); this
module adds a NumPy finite-difference Hessian that runs without it.
"""

from __future__ import annotations

import numpy as np


def torch_hessian(factors, target):
    """Dense Hessian of ||M - W_L...W_1||_F^2 by PyTorch autograd (float64).

    Parameter order: each factor row-major, W_1 first (as FactorChain.flatten).
    """
    from .autodiff_reference import hessian

    return hessian(factors, M=target)


def fd_hessian(factors, target, h=1e-5):
    """Dense Hessian by central differences of an independent NumPy gradient."""
    shapes = [np.shape(w) for w in factors]
    sizes = [int(np.prod(s)) for s in shapes]
    m = np.asarray(target, dtype=float)

    def grad(w):
        parts = np.split(w, np.cumsum(sizes)[:-1])
        ws = [p.reshape(s) for p, s in zip(parts, shapes)]
        prods = [np.eye(shapes[0][1])]
        for x in ws:
            prods.append(x @ prods[-1])
        r = m - prods[-1]
        out, c = [], -2.0 * r
        grads = [None] * len(ws)
        for k in range(len(ws) - 1, -1, -1):
            grads[k] = c @ prods[k].T
            c = ws[k].T @ c
        out = np.concatenate([g.ravel() for g in grads])
        return out

    w0 = np.concatenate([np.ravel(w) for w in factors])
    n = w0.size
    H = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        H[:, i] = (grad(w0 + e) - grad(w0 - e)) / (2 * h)
    return 0.5 * (H + H.T)


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
