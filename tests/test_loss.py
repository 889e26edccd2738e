"""Loss, gradient and Hessian-vector product at arbitrary points (not minima)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dmfsharp as dmf

from .conftest import EPS, flat, needs_torch, random_point, reference_hessian, tol


def add(factors, direction, t):
    return [w + t * u for w, u in zip(factors, direction)]


def inner(a, b):
    return float(sum(np.vdot(x, y) for x, y in zip(a, b)))


@pytest.mark.parametrize("dims", [(3, 4, 2), (2, 3, 4, 3, 2), (1, 3, 3, 3, 3, 1), (4, 2, 5)])
def test_taylor_expansion(dims):
    """The Taylor remainders shrink at orders 2 and 3: gradient and HVP are right."""
    chain, m, u = random_point(dims, 0)
    nrm = np.sqrt(inner(u, u))
    u = [x / nrm for x in u]
    f0 = dmf.loss(chain, target=m)
    g = dmf.gradient(chain, target=m)
    hu = dmf.hessian_vector_product(chain, u, target=m)
    gu, uhu = inner(g, u), inner(u, hu)
    ts = np.array([8e-3, 4e-3, 2e-3, 1e-3])
    r1, r2 = [], []
    for t in ts:
        ft = dmf.loss(add(chain.factors, u, t), target=m)
        r1.append(abs(ft - f0 - t * gu))
        r2.append(abs(ft - f0 - t * gu - 0.5 * t**2 * uhu))
    slope1 = np.polyfit(np.log(ts), np.log(r1), 1)[0]
    slope2 = np.polyfit(np.log(ts), np.log(r2), 1)[0]
    assert slope1 == pytest.approx(2.0, abs=0.1)
    assert slope2 > 2.8  # 3, or 4 when the cubic term vanishes


@given(st.integers(0, 10_000), st.sampled_from([(3, 4, 2), (2, 3, 4, 2), (1, 2, 3, 2, 1)]))
def test_hvp_matches_gradient_differences(seed, dims):
    chain, m, u = random_point(dims, seed)
    hu = dmf.hessian_vector_product(chain, u, target=m)
    h = 1e-5
    gp = dmf.gradient(add(chain.factors, u, h), target=m)
    gm = dmf.gradient(add(chain.factors, u, -h), target=m)
    fd = (flat(gp) - flat(gm)) / (2 * h)
    # central difference: truncation h^2 |g^(3)(u,u,u)| / 6 plus cancellation eps |g| / h; the
    # loss is a polynomial with unit-size coefficients, so both are bounded by their sum times
    # the size of the gradient and its derivatives, here taken as 1 + max|g| + max|Hu|
    size = 1.0 + np.abs(flat(gp)).max() + np.abs(fd).max()
    ref_err = 100 * (h**2 + EPS / h) * size
    np.testing.assert_allclose(flat(hu), fd, rtol=0, atol=ref_err)


@needs_torch
@given(st.integers(0, 10_000), st.sampled_from([(3, 4, 2), (2, 3, 4, 3, 2), (1, 4, 3, 1), (5, 2, 3)]))
def test_dense_hessian_matches_autograd_away_from_minima(seed, dims):
    chain, m, _ = random_point(dims, seed)
    ref, _ = reference_hessian(chain.factors, m)
    ours = dmf.dense_hessian(chain, target=m)
    # each entry is a sum over at most n products of factor entries
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol(chain.num_params, np.abs(ref).max()))


@pytest.mark.parametrize("dims", [(3, 4, 5, 2), (1, 3, 2, 1), (4, 2, 3)])
def test_gauss_newton_product_against_autograd(dims, torch_ref):
    """The GN product is 2 J^T J u (autograd J); at a minimum it is the Hessian product, and
    away from one it is not (the residual term is really dropped)."""
    chain, m, u = random_point(dims, 3)
    n, x = chain.num_params, flat(u)
    scale = np.abs(x).max()
    gn = torch_ref.gauss_newton(chain.factors)
    gu = flat(dmf.gauss_newton_vector_product(chain, u))
    np.testing.assert_allclose(gu, gn @ x, rtol=0, atol=tol(n, np.abs(gn).max() * scale))
    h_min = torch_ref.hessian(chain.factors, M=chain.product)
    hu = flat(dmf.hessian_vector_product(chain, u))
    np.testing.assert_allclose(hu, h_min @ x, rtol=0, atol=tol(n, np.abs(h_min).max() * scale))
    h_far = torch_ref.hessian(chain.factors, M=m)
    assert np.linalg.norm(gu - h_far @ x) > 1e-3 * np.linalg.norm(gu)
    hu_far = flat(dmf.hessian_vector_product(chain, u, target=m))
    np.testing.assert_allclose(hu_far, h_far @ x, rtol=0, atol=tol(n, np.abs(h_far).max() * scale))


def test_loss_and_gradient_values():
    # f(W1, W2) = ||M - W2 W1||^2 with W1 = [1, 2], W2 = [3], M = [1, 1]:
    # r = M - W2 W1 = [-2, -5], f = 4 + 25 = 29,
    # df/dW1 = -2 W2^T r = [12, 30], df/dW2 = -2 r W1^T = -2 (-2 - 10) = 24
    w1, w2 = np.array([[1.0, 2.0]]), np.array([[3.0]])
    m = np.array([[1.0, 1.0]])
    assert dmf.loss([w1, w2], target=m) == 29.0
    g1, g2 = dmf.gradient([w1, w2], target=m)
    assert g1.tolist() == [[12.0, 30.0]]
    assert g2.tolist() == [[24.0]]
    assert dmf.loss([w1, w2]) == 0.0


@needs_torch
def test_operator_and_flattening_order():
    chain, m, u = random_point((2, 3, 2), 1)
    op = dmf.hessian_operator(chain, target=m)
    v = chain.flatten()
    assert v[:6].reshape(3, 2).tolist() == chain[0].tolist()  # W_1 first, row-major
    # autograd's parameter order (W_1 first, row-major) is written independently in
    # autodiff_reference._unpack, so a wrong flattening order in the operator shows here
    ref, _ = reference_hessian(chain.factors, m)
    x = flat(u)
    np.testing.assert_allclose(
        op.matvec(x), ref @ x, rtol=0, atol=tol(x.size, np.abs(ref).max() * np.abs(x).max())
    )
    assert chain.unflatten(v)[1].tolist() == chain[1].tolist()


def test_bad_directions_and_targets():
    chain, m, u = random_point((3, 4, 2), 0)
    with pytest.raises(dmf.FactorError, match="block 2 has shape"):
        dmf.hessian_vector_product(chain, [u[0], u[0]], target=m)
    with pytest.raises(dmf.FactorError, match="expected 2"):
        dmf.hessian_vector_product(chain, u[:1])
    with pytest.raises(dmf.FactorError, match=r"target M has shape \(3, 2\)"):
        dmf.loss(chain, target=np.ones((3, 2)))
    with pytest.raises(dmf.FactorError, match="non-finite"):
        dmf.loss(chain, target=np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="dense_hessian would build"):
        dmf.dense_hessian(dmf.random_minimizer((80, 80, 80), seed=0))
