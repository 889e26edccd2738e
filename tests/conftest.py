"""Shared test configuration, factories and the one tolerance helper.

Profiles: hypothesis is derandomized everywhere. The default profile ``fast`` draws 25
examples per property (the fast subset ``-m "not slow"``); ``ci`` draws 100 (``.ci/run``
sets ``HYPOTHESIS_PROFILE=ci`` for the full suite).

Tolerances: :func:`tol` is the only place a tolerance is derived. A float64 computation with
``n`` rounding steps on numbers of magnitude ``scale`` is accurate to about ``n eps scale``
(Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3: inner products and
matrix products carry ``gamma_n = n eps / (1 - n eps)``; dense symmetric eigensolvers are
backward stable with error ``O(n eps ||H||)``). ``factor`` absorbs the constant; ``ref_err``
adds the reference's own error (0 for autograd; ``h^2 |f'''| + eps |f| / h`` for a central
finite difference with step ``h``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fast",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=15)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

os.environ.setdefault("MPLBACKEND", "Agg")

EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- tolerance


def tol(n: int, scale: float = 1.0, *, factor: float = 64.0, ref_err: float = 0.0) -> float:
    """Absolute tolerance ``factor * eps * n * |scale| + ref_err``.

    Parameters
    ----------
    n : int
        Problem size: the number of parameters (a dense Hessian's order) or the length of the
        longest sum in the computation.
    scale : float
        Magnitude of the compared quantity, e.g. ``||H||_2 = lambda_max`` at a minimum.
    factor : float
        The constant in front of ``n eps``; 64 covers the dense eigensolver and the few
        matrix products between the factors and the result.
    ref_err : float
        The reference's own error (0 for autograd).
    """
    return factor * EPS * max(int(n), 1) * abs(float(scale)) + ref_err


def fd_error(h: float, scale: float) -> float:
    """Error of a central difference with step ``h`` of a gradient of magnitude ``scale``.

    Truncation ``h^2 |g'''| / 6`` plus cancellation ``eps |g| / h``; for the polynomial losses
    here ``|g'''|`` is of the order of ``scale`` (unit-size factors), so the sum is
    ``(h^2 + eps / h) * scale`` up to a constant absorbed by the factor 10.
    """
    return 10.0 * (h**2 + EPS / h) * abs(scale)


def assert_close(value, ref, *, n: int, scale: float | None = None, factor: float = 64.0, ref_err=0.0):
    """Assert ``|value - ref| <= tol(n, scale)`` elementwise (``scale`` defaults to ``max|ref|``)."""
    value = np.asarray(value, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if scale is None:
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    bound = tol(n, scale, factor=factor, ref_err=ref_err)
    err = float(np.max(np.abs(value - ref))) if ref.size else 0.0
    assert err <= bound, f"error {err:.3e} > tolerance {bound:.3e} (n={n}, scale={scale:.3e})"


# --------------------------------------------------------------------------- factories


def has_module(name: str) -> bool:
    """True when ``name`` can be imported (without importing it)."""
    return importlib.util.find_spec(name) is not None


HAS_TORCH = has_module("torch")

# autodiff_reference imports torch at module level; --doctest-modules would import it
collect_ignore = [] if HAS_TORCH else ["autodiff_reference.py"]
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="the autograd reference needs PyTorch (extra 'torch')")


# the three shapes of the GD tests: depth 2, deep scalar (d_0 = d_L = 1), deep matrix
GD_CASES = {
    "depth2": (3, 4, 2),
    "deep_scalar": (1, 3, 2, 4, 1),
    "deep_matrix": (2, 3, 4, 3, 2),
}


def gaussian_factors(dims: Sequence[int], seed=0, *, scale: float = 1.0) -> list[np.ndarray]:
    """Factors ``W_i`` of shape ``(d_i, d_{i-1})`` with i.i.d. ``N(0, scale^2)`` entries."""
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]


def random_point(dims: Sequence[int], seed=0, *, at_minimum: bool = False):
    """``(chain, target, direction)``: Gaussian factors, a target and a direction of the same shapes.

    With ``at_minimum`` the target is the chain's own product (a global minimum, eq. 15);
    otherwise an independent Gaussian matrix (far from any minimum).
    """
    import dmfsharp as dmf

    rng = np.random.default_rng([int(seed), *map(int, dims)])
    factors = [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    chain = dmf.FactorChain(factors)
    target = chain.product if at_minimum else rng.standard_normal((dims[-1], dims[0]))
    direction = [rng.standard_normal(w.shape) for w in factors]
    return chain, target, direction


def explicit_s(factors: Sequence[np.ndarray]) -> np.ndarray:
    """``S = sum_k B_k^T B_k (x) A_k A_k^T`` from the definitions (eq. 57 with ``F = I``).

    Plain products from identities, no streaming and no library code: the reference for
    every route that evaluates ``lambda_max(S)`` (symmetrized).
    """
    L = len(factors)
    total: Any = 0.0
    for k in range(L):
        b = np.eye(factors[0].shape[1])
        for w in factors[:k]:
            b = w @ b
        a = np.eye(factors[-1].shape[0])
        for w in factors[k + 1 :][::-1]:
            a = a @ w
        total = total + np.kron(b.T @ b, a @ a.T)
    return 0.5 * (total + total.T)


def flat(blocks) -> np.ndarray:
    """One vector from per-factor blocks: each block row-major, W_1 first (FactorChain.flatten)."""
    return np.concatenate([np.asarray(b, dtype=float).ravel() for b in blocks])


def block_slices(shapes) -> list[slice]:
    """Slices of the flat parameter vector belonging to each factor (shapes or arrays)."""
    out, start = [], 0
    for s in shapes:
        size = int(np.prod(np.shape(s) if hasattr(s, "shape") else s))
        out.append(slice(start, start + size))
        start += size
    return out


def reference_hessian(factors, target, *, h: float = 1e-4):
    """``(H, err)``: an independent dense Hessian of ``||M - W_L...W_1||_F^2`` and its own error.

    Autograd (float64, ``err = 0``) when PyTorch is installed, otherwise central differences of
    an independent NumPy gradient (:func:`tests.reference.fd_hessian`) with ``err`` from
    :func:`fd_error`. Neither uses dmfsharp's derivatives.
    """
    ws = [np.asarray(w, dtype=float) for w in factors]
    if HAS_TORCH:
        from .autodiff_reference import hessian

        return hessian(ws, M=target), 0.0
    from .reference import fd_hessian

    hess = fd_hessian(ws, target, h=h)
    return hess, fd_error(h, float(np.abs(hess).max()) + 1.0)


def reference_lambda_max(factors, target) -> tuple[float, float]:
    """``(lambda_max, err)`` of :func:`reference_hessian` (``err`` covers the reference only)."""
    hess, err = reference_hessian(factors, target)
    return float(np.linalg.eigvalsh(hess)[-1]), err


def loss_slack(loss_value, target, *, rel: float = 1e-13):
    """Slack for a loss ``||M - P||^2`` recomputed with sums in another order.

    ``R = M - P`` loses ``delta = rel ||M||_F`` to cancellation whatever the order, so
    ``||R||^2`` moves by ``2 sqrt(L) delta + delta^2``.
    """
    delta = rel * float(np.linalg.norm(target))
    return 2.0 * np.sqrt(np.abs(loss_value)) * delta + delta**2


@pytest.fixture
def rng():
    """A fresh seeded generator per test."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def torch_ref():
    """The autograd reference module (skips the test when PyTorch is missing)."""
    pytest.importorskip("torch", reason="the autograd reference needs PyTorch (extra 'torch')")
    from . import autodiff_reference

    return autodiff_reference


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (exit_code, stdout, stderr)`` running ``dmfsharp.cli.main`` in-process."""
    from dmfsharp.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def rel(a, b) -> float:
    """Relative error ``|a - b| / |b|`` (``b = 0`` compares absolutely against 1e-300)."""
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)
