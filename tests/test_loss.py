"""Loss, gradient and Hessian-vector product at arbitrary points (not minima)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dmfsharp as dmf

from .reference import has_torch, torch_hessian


def random_point(seed, dims):
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    target = rng.standard_normal((dims[-1], dims[0]))
    direction = [rng.standard_normal(w.shape) for w in factors]
    return dmf.FactorChain(factors), target, direction


def add(factors, direction, t):
    return [w + t * u for w, u in zip(factors, direction)]


def inner(a, b):
    return float(sum(np.vdot(x, y) for x, y in zip(a, b)))


@pytest.mark.parametrize("dims", [(3, 4, 2), (2, 3, 4, 3, 2), (1, 3, 3, 3, 3, 1), (4, 2, 5)])
def test_taylor_expansion(dims):
    """The Taylor remainders shrink at orders 2 and 3: gradient and HVP are right."""
    chain, m, u = random_point(0, dims)
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
    chain, m, u = random_point(seed, dims)
    hu = dmf.hessian_vector_product(chain, u, target=m)
    h = 1e-6
    gp = dmf.gradient(add(chain.factors, u, h), target=m)
    gm = dmf.gradient(add(chain.factors, u, -h), target=m)
    for a, b, c in zip(hu, gp, gm):
        fd = (b - c) / (2 * h)
        np.testing.assert_allclose(a, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


@pytest.mark.skipif(not has_torch(), reason="PyTorch not installed")
@given(st.integers(0, 10_000), st.sampled_from([(3, 4, 2), (2, 3, 4, 3, 2), (1, 4, 3, 1), (5, 2, 3)]))
def test_dense_hessian_matches_autograd_away_from_minima(seed, dims):
    chain, m, _ = random_point(seed, dims)
    ref = torch_hessian(chain.factors, m)
    ours = dmf.dense_hessian(chain, target=m)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-11 * np.abs(ref).max())


def test_gauss_newton_product_is_hvp_at_minima():
    chain, _, u = random_point(3, (3, 4, 5, 2))
    a = dmf.gauss_newton_vector_product(chain, u)
    b = dmf.hessian_vector_product(chain, u)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_loss_and_gradient_values():
    w1, w2 = np.array([[1.0, 2.0]]), np.array([[3.0]])
    m = np.array([[1.0, 1.0]])
    assert dmf.loss([w1, w2], target=m) == pytest.approx(4.0 + 25.0)
    g1, g2 = dmf.gradient([w1, w2], target=m)
    r = m - w2 @ w1
    np.testing.assert_allclose(g1, -2 * w2.T @ r)
    np.testing.assert_allclose(g2, -2 * r @ w1.T)
    assert dmf.loss([w1, w2]) == 0.0


def test_operator_and_flattening_order():
    chain, m, u = random_point(1, (2, 3, 2))
    op = dmf.hessian_operator(chain, target=m)
    v = chain.flatten()
    assert v[:6].reshape(3, 2).tolist() == chain[0].tolist()  # W_1 first, row-major
    hu = op.matvec(np.concatenate([x.ravel() for x in u]))
    ref = np.concatenate([x.ravel() for x in dmf.hessian_vector_product(chain, u, target=m)])
    np.testing.assert_allclose(hu, ref, rtol=1e-13)
    assert chain.unflatten(v)[1].tolist() == chain[1].tolist()


def test_bad_directions_and_targets():
    chain, m, u = random_point(0, (3, 4, 2))
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
