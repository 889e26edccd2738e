"""Gauss-Newton sharpness anywhere and per-factor block sharpness, against autograd."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf

from .conftest import block_slices, gaussian_factors, tol

DIMS = [(3, 4, 2), (5, 3, 6, 4), (1, 4, 3, 1), (4, 6, 5, 6, 3), (2, 7, 2)]


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


@pytest.mark.parametrize("dims", DIMS)
def test_gauss_newton_at_non_minima(dims, torch_ref):
    rng = np.random.default_rng(len(dims) * 100 + dims[0])
    ws = gaussian_factors(dims, rng)
    m = rng.standard_normal((dims[-1], dims[0]))  # far from any minimum
    assert not dmf.is_minimum(ws, target=m)
    gn = torch_ref.gauss_newton(ws)
    n = sum(w.size for w in ws)
    ref = np.linalg.eigvalsh(gn)[-1]
    assert abs(dmf.gauss_newton_sharpness(ws) - ref) <= tol(n, ref)
    # the GN matrix does not depend on the target
    assert abs(dmf.gauss_newton_sharpness(ws, target=m) - ref) <= tol(n, ref)
    # the full Hessian differs there: the residual term is real
    h = torch_ref.hessian(ws, M=m)
    assert np.abs(h - gn).max() > 1e-3 * np.abs(gn).max()


@pytest.mark.parametrize("dims,n", [((4, 5, 3), 2), ((3, 4, 4, 2), 8), ((5, 3, 6, 4), 5)])
@pytest.mark.parametrize("normalization", ["sum", "mean", "half_mean"])
def test_gauss_newton_with_data(dims, n, normalization, torch_ref):
    rng = np.random.default_rng(n * 7 + dims[0])
    ws = gaussian_factors(dims, rng)
    x = rng.standard_normal((dims[0], n)) * np.geomspace(2.0, 0.05, dims[0])[:, None]
    c = {"sum": 1.0, "mean": 1.0 / n, "half_mean": 0.5 / n}[normalization]
    gn = torch_ref.gauss_newton(ws, X=x, scale=c)
    ref = np.linalg.eigvalsh(gn)[-1]
    size = sum(w.size for w in ws)
    for method in ("auto", "dense", "lanczos"):
        val = dmf.gauss_newton_sharpness(ws, data=x, normalization=normalization, method=method)
        # the data enter through X X^T (condition up to 40^2): allow for it in the scale
        assert abs(val - ref) <= tol(size, ref, factor=1e3), method


@pytest.mark.parametrize("dims", DIMS)
def test_each_diagonal_block_at_minima_and_elsewhere(dims, torch_ref):
    rng = np.random.default_rng(sum(dims))
    ws = gaussian_factors(dims, rng)
    sl = block_slices(ws)
    n = sum(w.size for w in ws)
    for target in (None, rng.standard_normal((dims[-1], dims[0]))):
        h = torch_ref.hessian(ws, M=dmf.FactorChain(ws).product if target is None else target)
        ls = dmf.layer_sharpness(ws, target=target)
        for k, s in enumerate(sl, start=1):
            block = h[s, s]
            ref = np.linalg.eigvalsh(block)[-1]
            assert abs(ls[k - 1] - ref) <= tol(n, np.abs(block).max() * block.shape[0])
            np.testing.assert_allclose(
                dmf.layer_hessian_block(ws, k), block, rtol=0, atol=tol(n, np.abs(block).max())
            )


def test_blocks_with_data(torch_ref):
    rng = np.random.default_rng(2)
    ws = gaussian_factors((4, 5, 6, 3), rng)
    x = rng.standard_normal((4, 3)) * np.array([[2.0], [1.0], [0.2], [0.05]])
    y = rng.standard_normal((3, 3))
    h = torch_ref.hessian(ws, X=x, Y=y, scale=1 / 3)
    ls = dmf.layer_sharpness(ws, data=x, normalization="mean")
    for k, s in enumerate(block_slices(ws)):
        assert _rel(ls[k], np.linalg.eigvalsh(h[s, s])[-1]) <= 1e-12


@pytest.mark.parametrize("dims", [(5, 7, 6, 4), (1, 3, 4, 1), (3, 5, 4)])
def test_corollary10_bound_is_the_sum_of_block_maxima(dims, torch_ref):
    """Corollary 10: max_k lambda_max(H_kk) <= lambda_max(H) <= sum_k lambda_max(H_kk), the right
    side being ``sharpness_upper_bound``; with d_0 = d_L = 1 (Theorem 4, rank-one H) or L = 2
    (Corollary 6) the upper bound is attained. All blocks from the independent autograd Hessian."""
    chain = dmf.random_minimizer(dims, seed=3)
    h = torch_ref.hessian(chain.factors, M=chain.product)
    n = chain.num_params
    lam_h = np.linalg.eigvalsh(h)[-1]
    blocks = np.array([np.linalg.eigvalsh(h[s, s])[-1] for s in block_slices(chain.shapes)])
    atol = tol(n, blocks.sum())
    assert abs(dmf.sharpness_upper_bound(chain) - blocks.sum()) <= atol
    np.testing.assert_allclose(dmf.layer_sharpness(chain), blocks, rtol=0, atol=atol)
    rep = dmf.flatness_report(chain)
    np.testing.assert_allclose(rep.layer_sharpness, blocks, rtol=0, atol=atol)
    assert abs(rep.upper_bound - blocks.sum()) <= atol
    assert blocks.max() <= lam_h + atol and lam_h <= blocks.sum() + atol
    if dims[0] == dims[-1] == 1 or len(dims) == 3:
        # attained: Theorem 4 (rank-one H) and Corollary 6 (L = 2: 2 (s1^2 + s2^2))
        assert abs(lam_h - blocks.sum()) <= atol
        assert abs(dmf.sharpness(chain) - lam_h) <= atol
    else:
        assert lam_h < blocks.sum() * (1 - 1e-3)  # strict here: the bound is not an identity


def test_section6_blocks():
    # Section 6 (L = 2, sigma_max(W_1)^2 = sigma_max(W_2)^2 = 11): the W_1 block is
    # 2 (W_2^T W_2) kron I with top eigenvalue 2 * 11 = 22, and the W_2 block 2 I kron (W_1 W_1^T): 22
    np.testing.assert_allclose(dmf.layer_sharpness(dmf.section6_example()), [22.0, 22.0], rtol=1e-14)
    assert dmf.flatness_report(dmf.section6_example()).layer_sharpness == pytest.approx(
        (22.0, 22.0), rel=1e-14
    )


def test_bad_block_index():
    with pytest.raises(dmf.FactorError, match="target M has shape"):
        dmf.layer_sharpness(dmf.section6_example(), target=np.ones((2, 3)))
    with pytest.raises(ValueError, match="1 <= k <= L"):
        dmf.layer_hessian_block(dmf.section6_example(), 3)
    with pytest.raises(ValueError, match="method"):
        dmf.gauss_newton_sharpness(dmf.section6_example(), data=np.eye(3), method="corollary6")
