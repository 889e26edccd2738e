"""Independent dense references from PyTorch autograd (float64), for the issue-5 tests.

The parameter vector is each factor row-major, W_1 first (as FactorChain.flatten). Nothing
here uses dmfsharp's own derivatives: the losses are written directly in torch.
"""

from __future__ import annotations

import numpy as np
import torch


def _unpack(v, shapes):
    sizes = [a * b for a, b in shapes]
    return [p.reshape(s) for p, s in zip(torch.split(v, sizes), shapes, strict=True)]


def _product(ws):
    p = ws[0]
    for w in ws[1:]:
        p = w @ p
    return p


def data_loss_fn(shapes, *, X=None, Y=None, M=None, cov=None, T=None, scale=1.0):
    """``scale * ||Y - P X||^2``, ``scale * ||M - P||^2`` or ``scale * tr((T-P) cov (T-P)^T)``."""
    t = lambda a: torch.tensor(np.array(a, dtype=np.float64))  # noqa: E731

    def f(v):
        p = _product(_unpack(v, shapes))
        if X is not None:
            r = t(Y) - p @ t(X)
            return scale * (r**2).sum()
        if cov is not None:
            r = t(T) - p
            return scale * torch.trace(r @ t(cov) @ r.T)
        return scale * ((t(M) - p) ** 2).sum()

    return f


def flat(factors):
    return torch.tensor(np.concatenate([np.array(w, dtype=np.float64).ravel() for w in factors]))


def hessian(factors, **kw):
    """Dense autograd Hessian of the loss (see :func:`data_loss_fn`) at ``factors``."""
    shapes = [tuple(np.shape(w)) for w in factors]
    f = data_loss_fn(shapes, **kw)
    v = flat(factors)
    # vmap over the n backward passes pays off only for larger n (it has a fixed start-up cost)
    return torch.autograd.functional.hessian(f, v, vectorize=v.numel() > 150).numpy()


def gradient(factors, **kw):
    shapes = [tuple(np.shape(w)) for w in factors]
    v = flat(factors).requires_grad_(True)
    data_loss_fn(shapes, **kw)(v).backward()
    return v.grad.numpy()


def gauss_newton(factors, X=None, scale=1.0):
    """``2 scale J^T J`` with ``J`` the autograd Jacobian of ``vec(P X)`` (``X = I`` if None)."""
    shapes = [tuple(np.shape(w)) for w in factors]
    d0 = shapes[0][1]
    x = torch.as_tensor(np.eye(d0) if X is None else np.asarray(X, dtype=np.float64))

    def out(v):
        return (_product(_unpack(v, shapes)) @ x).reshape(-1)

    j = torch.autograd.functional.jacobian(out, flat(factors)).numpy()
    return 2.0 * scale * j.T @ j


def rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)
