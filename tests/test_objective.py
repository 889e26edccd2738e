"""Deep linear networks with data: closed forms against dense autograd Hessians."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dmfsharp as dmf

from .conftest import block_slices, gaussian_factors, rel

SCALES = {"sum": lambda n: 1.0, "mean": lambda n: 1.0 / n, "half_mean": lambda n: 0.5 / n}


def _factors(rng, dims):
    return gaussian_factors(dims, rng)


def _aniso(rng, d0, n):
    """Anisotropic samples: row scales spread over two orders of magnitude."""
    return rng.standard_normal((d0, n)) * np.geomspace(3.0, 0.03, d0)[:, None]


def _orth_residual(rng, x, dl):
    """A nonzero ``E`` with ``E X^T = 0`` (rows orthogonal to the row space of X)."""
    q, _ = np.linalg.qr(x.T)  # n x d0, orthonormal basis of the row space of X
    e0 = rng.standard_normal((dl, x.shape[1]))
    return e0 - (e0 @ q) @ q.T


# (dims, n): n < d_0, n = 1, n > d_0, deeper chains, d_L = 1
CASES = [
    ((5, 6, 4), 3),
    ((4, 5, 6, 3), 2),
    ((3, 4, 2), 9),
    ((4, 3, 5, 4, 2), 7),
    ((6, 6, 1), 4),
    ((2, 3, 3), 1),
    ((3, 5, 4), 20),
]


@pytest.mark.parametrize("dims,n", CASES)
@pytest.mark.parametrize("normalization", ["sum", "mean", "half_mean"])
def test_interpolating_minimum_against_autograd(dims, n, normalization, torch_ref):
    rng = np.random.default_rng([n, *dims])
    ws = _factors(rng, dims)
    x = _aniso(rng, dims[0], n)
    chain = dmf.FactorChain(ws)
    y = chain.product @ x
    c = SCALES[normalization](n)
    h = torch_ref.hessian(ws, X=x, Y=y, scale=c)
    eig = np.linalg.eigvalsh(h)[::-1]
    kw = dict(data=x, target=y, normalization=normalization)
    lam = dmf.sharpness(chain, **kw)
    assert rel(lam, eig[0]) <= 1e-9
    assert rel(dmf.hessian_trace(chain, **kw), np.trace(h)) <= 1e-9
    spec = dmf.hessian_spectrum(chain, **kw)
    tol = 1e-10 * eig[0]
    np.testing.assert_allclose(spec, eig[: spec.size], rtol=0, atol=tol)
    assert np.all(np.abs(eig[spec.size :]) <= tol)  # the rest of the Hessian is zero
    # top eigenvector: unit, H v = lambda v against the autograd Hessian
    v = np.concatenate([b.ravel() for b in dmf.top_eigenvector(chain, **kw)])
    assert abs(np.linalg.norm(v) - 1) <= 1e-12
    assert np.linalg.norm(h @ v - lam * v) <= 1e-9 * lam
    # the dense Hessian of the package agrees with autograd entrywise
    np.testing.assert_allclose(dmf.dense_hessian(chain, **kw), h, rtol=0, atol=1e-11 * np.abs(h).max())


@pytest.mark.parametrize("dims,n", [((3, 4, 2), 9), ((4, 5, 5, 3), 12), ((2, 3, 4, 1), 6)])
def test_non_interpolating_minimum(dims, n, torch_ref):
    """R != 0 but R X^T = 0 (n > d_0): still a global minimum, closed forms still exact."""
    rng = np.random.default_rng(7 + n)
    ws = _factors(rng, dims)
    x = _aniso(rng, dims[0], n)
    chain = dmf.FactorChain(ws)
    e = _orth_residual(rng, x, dims[-1])
    y = chain.product @ x + e
    assert np.linalg.norm(e) > 0.5
    assert dmf.is_minimum(chain, data=x, target=y)
    h = torch_ref.hessian(ws, X=x, Y=y)
    eig = np.linalg.eigvalsh(h)
    assert rel(dmf.sharpness(chain, data=x, target=y), eig[-1]) <= 1e-9
    assert rel(dmf.hessian_trace(chain, data=x, target=y), np.trace(h)) <= 1e-9
    # the residual term of the Hessian vanishes: autograd Hessian = Gauss-Newton part
    res = dmf.numerical_sharpness(chain, data=x, target=y, method="dense")
    assert rel(res.value, eig[-1]) <= 1e-9


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_routes_agree(method):
    rng = np.random.default_rng(3)
    ws = _factors(rng, (6, 7, 8, 5))
    x = _aniso(rng, 6, 4)
    ref = dmf.sharpness(ws, data=x)
    assert rel(dmf.sharpness(ws, data=x, method=method), ref) <= 1e-10


def test_normalizations_scale_as_documented():
    rng = np.random.default_rng(11)
    ws = _factors(rng, (4, 5, 3))
    n = 6
    x = _aniso(rng, 4, n)
    y = dmf.FactorChain(ws).product @ x + 0.1 * rng.standard_normal((3, n))
    base = {f: f(ws, data=x) for f in (dmf.sharpness, dmf.hessian_trace)}
    for norm, c in (("mean", 1.0 / n), ("half_mean", 0.5 / n)):
        for f, v in base.items():
            assert rel(f(ws, data=x, normalization=norm), c * v) <= 1e-12
        assert (
            rel(dmf.loss(ws, data=x, target=y, normalization=norm), c * dmf.loss(ws, data=x, target=y))
            <= 1e-12
        )
        g0 = dmf.gradient(ws, data=x, target=y)
        g1 = dmf.gradient(ws, data=x, target=y, normalization=norm)
        for a, b in zip(g1, g0, strict=True):
            np.testing.assert_allclose(a, c * b, rtol=1e-12, atol=0)
    # "sum" is the default and is the plain ||Y - P X||_F^2
    r = y - dmf.FactorChain(ws).product @ x
    assert rel(dmf.loss(ws, data=x, target=y), np.sum(r**2)) <= 1e-13
    assert dmf.loss(ws, data=x, target=y) == dmf.loss(ws, data=x, target=y, normalization="sum")


def test_identity_data_is_eq15():
    chain = dmf.random_minimizer((4, 6, 3), seed=2)
    assert rel(dmf.sharpness(chain, data=np.eye(4)), dmf.sharpness(chain)) <= 1e-12
    assert rel(dmf.sharpness(dmf.section6_example(), covariance=np.eye(3)), 44.0) <= 1e-14


def test_covariance_matches_samples(torch_ref):
    rng = np.random.default_rng(5)
    ws = _factors(rng, (4, 6, 5, 3))
    n = 30
    x = _aniso(rng, 4, n)
    sigma = x @ x.T / n
    t = rng.standard_normal((3, 4))
    for norm in ("mean", "half_mean"):
        kw_s = dict(data=x, normalization=norm)
        kw_c = dict(covariance=sigma, normalization=norm)
        assert rel(dmf.sharpness(ws, **kw_c), dmf.sharpness(ws, **kw_s)) <= 1e-10
        assert rel(dmf.hessian_trace(ws, **kw_c), dmf.hessian_trace(ws, **kw_s)) <= 1e-10
        np.testing.assert_allclose(
            dmf.hessian_spectrum(ws, **kw_c), dmf.hessian_spectrum(ws, **kw_s), rtol=1e-9
        )
    # away from a minimum, with targets y = T x: autograd Hessian of tr((T - P) S (T - P)^T)
    h = torch_ref.hessian(ws, cov=sigma, T=t)
    hd = dmf.dense_hessian(ws, covariance=sigma, target=t)
    np.testing.assert_allclose(hd, h, rtol=0, atol=1e-11 * np.abs(h).max())
    np.testing.assert_allclose(
        np.concatenate([g.ravel() for g in dmf.gradient(ws, covariance=sigma, target=t)]),
        torch_ref.gradient(ws, cov=sigma, T=t),
        rtol=1e-11,
        atol=1e-12,
    )
    with pytest.raises(dmf.NotAMinimumError):
        dmf.sharpness(ws, covariance=sigma, target=t)
    # a singular covariance (rank 2 in d_0 = 4) and its autograd Hessian at a minimum
    f = rng.standard_normal((4, 2))
    sing = f @ f.T
    hs = torch_ref.hessian(ws, cov=sing, T=dmf.FactorChain(ws).product)
    assert rel(dmf.sharpness(ws, covariance=sing), np.linalg.eigvalsh(hs)[-1]) <= 1e-9


def test_loss_gradient_hvp_at_any_point_against_autograd(torch_ref):
    rng = np.random.default_rng(21)
    dims, n = (4, 5, 3, 2), 3
    ws = _factors(rng, dims)
    x = _aniso(rng, 4, n)
    y = rng.standard_normal((2, n))
    c = 1.0 / (2 * n)
    kw = dict(data=x, target=y, normalization="half_mean")
    g = np.concatenate([b.ravel() for b in dmf.gradient(ws, **kw)])
    np.testing.assert_allclose(g, torch_ref.gradient(ws, X=x, Y=y, scale=c), rtol=1e-11, atol=1e-13)
    h = torch_ref.hessian(ws, X=x, Y=y, scale=c)
    u = [rng.standard_normal(w.shape) for w in ws]
    hu = np.concatenate([b.ravel() for b in dmf.hessian_vector_product(ws, u, **kw)])
    np.testing.assert_allclose(
        hu, h @ np.concatenate([b.ravel() for b in u]), rtol=1e-10, atol=1e-12 * np.abs(h).max()
    )
    op = dmf.hessian_operator(ws, **kw)
    e = np.eye(op.shape[0])[3]
    np.testing.assert_allclose(op.matvec(e), h[:, 3], rtol=0, atol=1e-12 * np.abs(h).max())
    # full Hessian lambda_max away from a minimum (it has negative eigenvalues here)
    eig = np.linalg.eigvalsh(h)
    assert eig[0] < 0
    for method in ("dense", "lanczos"):
        res = dmf.numerical_sharpness(ws, method=method, **kw)
        assert rel(res.value, eig[-1]) <= 1e-8


def test_warm_start_with_data():
    """Warm start from the exact eigenvector: power iteration needs fewer steps (it still
    damps the seeded admixture every start gets, issue 9)."""
    rng = np.random.default_rng(4)
    ws = _factors(rng, (5, 6, 4))
    x = _aniso(rng, 5, 3)
    y = dmf.FactorChain(ws).product @ x
    v = dmf.top_eigenvector(ws, data=x, target=y)
    lam = dmf.sharpness(ws, data=x, target=y)
    warm = dmf.numerical_sharpness(ws, data=x, target=y, method="power", v0=v, tol=1e-9)
    cold = dmf.numerical_sharpness(ws, data=x, target=y, method="power", tol=1e-9, seed=1)
    assert warm.converged and cold.converged
    assert rel(warm.value, lam) <= 1e-9 and rel(cold.value, lam) <= 1e-8
    assert warm.num_hvp < cold.num_hvp
    # Lanczos accepts the same warm start
    lz = dmf.numerical_sharpness(ws, data=x, target=y, v0=v)
    assert rel(lz.value, lam) <= 1e-9


def test_refuses_non_minima_with_data(torch_ref):
    rng = np.random.default_rng(8)
    ws = _factors(rng, (3, 4, 2))
    x = _aniso(rng, 3, 9)
    y = dmf.FactorChain(ws).product @ x + 1e-3 * rng.standard_normal((2, 9))
    assert not dmf.is_minimum(ws, data=x, target=y)
    res, tol = dmf.minimum_residual(ws, data=x, target=y)
    assert res > tol > 0
    for f in (
        dmf.sharpness,
        dmf.hessian_spectrum,
        dmf.top_eigenvector,
        dmf.flatness_report,
    ):
        with pytest.raises(dmf.NotAMinimumError, match="numerical_sharpness"):
            f(ws, data=x, target=y)
    # the numerical route and the Gauss-Newton part are fine there
    h = torch_ref.hessian(ws, X=x, Y=y)
    assert rel(dmf.numerical_sharpness(ws, data=x, target=y).value, np.linalg.eigvalsh(h)[-1]) <= 1e-10
    gn = torch_ref.gauss_newton(ws, X=x)
    assert rel(dmf.gauss_newton_sharpness(ws, data=x), np.linalg.eigvalsh(gn)[-1]) <= 1e-10


def test_flatness_report_with_data(torch_ref):
    rng = np.random.default_rng(9)
    ws = _factors(rng, (4, 5, 6, 3))
    x = _aniso(rng, 4, 3)
    rep = dmf.flatness_report(ws, data=x, normalization="mean")
    h = torch_ref.hessian(ws, X=x, Y=dmf.FactorChain(ws).product @ x, scale=1 / 3)
    assert rel(rep.lambda_max, np.linalg.eigvalsh(h)[-1]) <= 1e-9
    assert rel(rep.trace, np.trace(h)) <= 1e-9
    assert rep.data_source == "samples" and rep.normalization == "mean"
    assert np.isnan(rep.flat_lambda_max) and rep.is_flat is None and rep.corollary10 is None
    # the per-layer values and the bound from the diagonal blocks of the independent H
    blocks = [np.linalg.eigvalsh(h[s, s])[-1] for s in block_slices(ws)]
    np.testing.assert_allclose(rep.layer_sharpness, blocks, rtol=1e-10, atol=0)
    assert rel(rep.upper_bound, sum(blocks)) <= 1e-10
    assert max(blocks) <= rep.lambda_max * (1 + 1e-12)
    assert rep.lambda_max <= rep.upper_bound * (1 + 1e-12)
    # whitened covariance c0 I: the flat value scales by c c0
    s6 = dmf.section6_example()
    rep6 = dmf.flatness_report(s6, covariance=2.0 * np.eye(3), normalization="half_mean")
    assert rel(rep6.lambda_max, 44.0) <= 1e-13 and rep6.is_flat
    assert rel(rep6.flat_lambda_max, 44.0) <= 1e-13


def test_bad_data_input():
    ws = dmf.random_minimizer((3, 4, 2), seed=0)
    with pytest.raises(dmf.FactorError, match="pass X.T"):
        dmf.sharpness(ws, data=np.ones((5, 3)))
    with pytest.raises(dmf.FactorError, match="target Y has shape"):
        dmf.sharpness(ws, data=np.ones((3, 5)), target=np.ones((2, 4)))
    with pytest.raises(ValueError, match="not both"):
        dmf.sharpness(ws, data=np.ones((3, 5)), covariance=np.eye(3))
    with pytest.raises(ValueError, match="sample count"):
        dmf.sharpness(ws, covariance=np.eye(3), normalization="sum")
    with pytest.raises(ValueError, match="needs data"):
        dmf.sharpness(ws, normalization="mean")
    with pytest.raises(ValueError, match="normalization must be one of"):
        dmf.sharpness(ws, data=np.ones((3, 5)), normalization="avg")
    with pytest.raises(dmf.FactorError, match="not positive semidefinite"):
        dmf.sharpness(ws, covariance=np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(dmf.FactorError, match="not symmetric"):
        dmf.sharpness(ws, covariance=np.triu(np.ones((3, 3))))
    with pytest.raises(dmf.FactorError, match="non-finite"):
        dmf.sharpness(ws, data=np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="Theorem 4 and Corollary 6"):
        dmf.sharpness(ws, data=np.ones((3, 5)), method="corollary6")
    with pytest.raises(dmf.FactorError, match="is zero"):
        dmf.sharpness(ws, covariance=np.zeros((3, 3)))


def test_many_samples_cost_nothing_extra():
    """The reduced problem has size rank(C) d_L, whatever n is (checked structurally)."""
    from dmfsharp.objective import make_objective
    from dmfsharp.s_matrix import grams

    chain = dmf.random_minimizer((3, 4, 2), seed=1)
    x = np.random.default_rng(0).standard_normal((3, 5000))
    obj = make_objective(chain, data=x)
    assert obj.factor.shape == (3, 3)
    assert all(gb.shape == (3, 3) for gb, _ in grams(obj)[0])
    assert (
        rel(
            dmf.sharpness(chain, data=x),
            dmf.sharpness(chain, covariance=x @ x.T / 5000, normalization="mean") * 5000,
        )
        <= 1e-10
    )


@settings(max_examples=25)
@given(
    dims=st.lists(st.integers(1, 4), min_size=3, max_size=5),
    n=st.integers(1, 7),
    normalization=st.sampled_from(["sum", "mean", "half_mean"]),
    seed=st.integers(0, 2**16),
)
def test_property_data_sharpness_matches_autograd(dims, n, normalization, seed, torch_ref):
    rng = np.random.default_rng(seed)
    ws = _factors(rng, dims)
    x = _aniso(rng, dims[0], n)
    y = dmf.FactorChain(ws).product @ x
    c = SCALES[normalization](n)
    eig = np.linalg.eigvalsh(torch_ref.hessian(ws, X=x, Y=y, scale=c))
    lam = dmf.sharpness(ws, data=x, target=y, normalization=normalization)
    assert abs(lam - eig[-1]) <= 1e-9 * eig[-1] + 1e-300
    gn = dmf.gauss_newton_sharpness(ws, data=x, normalization=normalization)
    gn_ref = np.linalg.eigvalsh(torch_ref.gauss_newton(ws, X=x, scale=c))[-1]
    assert abs(gn - gn_ref) <= 1e-9 * gn_ref + 1e-300
