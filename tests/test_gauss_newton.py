"""Gauss-Newton sharpness anywhere and per-factor block sharpness, against autograd."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import dmfsharp as dmf  # noqa: E402

from .autodiff_reference import gauss_newton as torch_gn  # noqa: E402
from .autodiff_reference import hessian as torch_hessian  # noqa: E402
from .autodiff_reference import rel  # noqa: E402

DIMS = [(3, 4, 2), (5, 3, 6, 4), (1, 4, 3, 1), (4, 6, 5, 6, 3), (2, 7, 2)]


def _factors(rng, dims):
    return [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]


def _block_slices(ws):
    out, start = [], 0
    for w in ws:
        out.append(slice(start, start + w.size))
        start += w.size
    return out


@pytest.mark.parametrize("dims", DIMS)
def test_gauss_newton_at_non_minima(dims):
    rng = np.random.default_rng(len(dims) * 100 + dims[0])
    ws = _factors(rng, dims)
    m = rng.standard_normal((dims[-1], dims[0]))  # far from any minimum
    assert not dmf.is_minimum(ws, target=m)
    gn = torch_gn(ws)
    assert rel(dmf.gauss_newton_sharpness(ws), np.linalg.eigvalsh(gn)[-1]) <= 1e-9
    assert dmf.gauss_newton_sharpness(ws, target=m) == dmf.gauss_newton_sharpness(ws)
    # the full Hessian differs there: the residual term is real
    h = torch_hessian(ws, M=m)
    assert np.abs(h - gn).max() > 1e-3 * np.abs(gn).max()


@pytest.mark.parametrize("dims,n", [((4, 5, 3), 2), ((3, 4, 4, 2), 8), ((5, 3, 6, 4), 5)])
@pytest.mark.parametrize("normalization", ["sum", "mean", "half_mean"])
def test_gauss_newton_with_data(dims, n, normalization):
    rng = np.random.default_rng(n * 7 + dims[0])
    ws = _factors(rng, dims)
    x = rng.standard_normal((dims[0], n)) * np.geomspace(2.0, 0.05, dims[0])[:, None]
    c = {"sum": 1.0, "mean": 1.0 / n, "half_mean": 0.5 / n}[normalization]
    gn = torch_gn(ws, X=x, scale=c)
    val = dmf.gauss_newton_sharpness(ws, data=x, normalization=normalization)
    assert rel(val, np.linalg.eigvalsh(gn)[-1]) <= 1e-9
    for method in ("dense", "lanczos"):
        assert (
            rel(dmf.gauss_newton_sharpness(ws, data=x, normalization=normalization, method=method), val)
            <= 1e-10
        )


@pytest.mark.parametrize("dims", DIMS)
def test_each_diagonal_block_at_minima_and_elsewhere(dims):
    rng = np.random.default_rng(sum(dims))
    ws = _factors(rng, dims)
    sl = _block_slices(ws)
    for target in (None, rng.standard_normal((dims[-1], dims[0]))):
        h = torch_hessian(ws, M=dmf.FactorChain(ws).product if target is None else target)
        ls = dmf.layer_sharpness(ws, target=target)
        for k, s in enumerate(sl, start=1):
            block = h[s, s]
            assert rel(ls[k - 1], np.linalg.eigvalsh(block)[-1]) <= 1e-9
            np.testing.assert_allclose(
                dmf.layer_hessian_block(ws, k), block, rtol=0, atol=1e-11 * np.abs(block).max()
            )


def test_blocks_with_data_and_relation_to_corollary10():
    rng = np.random.default_rng(2)
    ws = _factors(rng, (4, 5, 6, 3))
    x = rng.standard_normal((4, 3)) * np.array([[2.0], [1.0], [0.2], [0.05]])
    y = rng.standard_normal((3, 3))
    h = torch_hessian(ws, X=x, Y=y, scale=1 / 3)
    ls = dmf.layer_sharpness(ws, data=x, normalization="mean")
    for k, s in enumerate(_block_slices(ws)):
        assert rel(ls[k], np.linalg.eigvalsh(h[s, s])[-1]) <= 1e-9
    # at a minimum without data: sum = Corollary 10 bound, max <= lambda_max <= sum
    chain = dmf.random_minimizer((5, 7, 6, 4), seed=3)
    ls0 = dmf.layer_sharpness(chain)
    lam = dmf.sharpness(chain)
    assert rel(ls0.sum(), dmf.sharpness_upper_bound(chain)) <= 1e-12
    assert ls0.max() <= lam * (1 + 1e-12) and lam <= ls0.sum() * (1 + 1e-12)
    rep = dmf.flatness_report(chain)
    np.testing.assert_allclose(rep.layer_sharpness, ls0, rtol=1e-12)
    assert rel(rep.upper_bound, sum(rep.layer_sharpness)) <= 1e-12


def test_scalar_factorization_blocks_reach_the_bound():
    """Theorem 4 (d_0 = d_L = 1): lambda_max equals the sum of the layer sharpnesses."""
    chain = dmf.random_minimizer((1, 3, 4, 1), seed=0)
    assert rel(dmf.sharpness(chain), dmf.layer_sharpness(chain).sum()) <= 1e-12


def test_section6_blocks():
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
