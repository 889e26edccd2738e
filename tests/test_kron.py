"""The Kronecker-sum operator S and the exact route's internals: streamed Gram matrices,
the operator, the rank-one start and the Lanczos stop, each against an independent dense computation."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp import s_matrix
from dmfsharp.errors import ConvergenceError
from dmfsharp.linalg import kron, lanczos
from dmfsharp.objective import make_objective


def _chain(dims, seed=0):
    rng = np.random.default_rng(seed)
    return dmf.FactorChain(
        [rng.standard_normal((dims[i], dims[i - 1])) / np.sqrt(dims[i - 1]) for i in range(1, len(dims))]
    )


def _grams(chain):
    return s_matrix.grams(make_objective(chain))[0]


def _ks(grams):
    rb = next(gb.shape[0] for gb, _ in grams if gb is not None)
    ra = next(ga.shape[0] for _, ga in grams if ga is not None)
    return kron.KroneckerSum(grams, rb, ra)


def _full(g, n):
    return np.eye(n) if g is None else g


def _dense_s(chain):
    s = sum(np.kron(b.T @ b, a @ a.T) for a, b in zip(chain.suffix, chain.prefix))
    return 0.5 * (s + s.T)


@pytest.mark.parametrize("dims", [(3, 4, 5), (4, 2, 6, 3), (5, 7, 1, 6, 2), (2, 3, 4, 5, 6, 3)])
def test_streamed_grams_equal_prefix_suffix_grams(dims):
    chain = _chain(dims)
    streamed = _grams(dmf.FactorChain(chain.factors))  # nothing cached yet
    for (gb, ga), a, b in zip(streamed, chain.suffix, chain.prefix):
        gb, ga = _full(gb, b.shape[1]), _full(ga, a.shape[0])
        np.testing.assert_allclose(gb, b.T @ b, rtol=1e-13, atol=1e-13 * np.abs(b).max() ** 2)
        np.testing.assert_allclose(ga, a @ a.T, rtol=1e-13, atol=1e-13 * np.abs(a).max() ** 2)
    # with the products cached the same values come back
    cached = _grams(chain)
    for (gb1, ga1), (gb2, ga2) in zip(streamed, cached):
        if gb1 is None or ga1 is None or gb2 is None or ga2 is None:
            assert (gb1 is None) == (gb2 is None) and (ga1 is None) == (ga2 is None)
            continue
        np.testing.assert_allclose(gb1, gb2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ga1, ga2, rtol=1e-12, atol=1e-14)


def test_kronecker_sum_operator_equals_dense_s_and_skips_only_identities(rng):
    chain = _chain((6, 5, 4, 7, 3))
    grams = _grams(chain)
    ks = _ks(grams)
    # B_1^T B_1 and A_L A_L^T are the identities that get skipped; nothing else
    assert ks.terms[0][0] is None and ks.terms[-1][1] is None
    assert all(gb is not None for gb, _ in ks.terms[1:])
    assert all(ga is not None for _, ga in ks.terms[:-1])
    s = _dense_s(chain)
    for _ in range(3):
        x = rng.standard_normal(s.shape[0])
        np.testing.assert_allclose(ks.matvec(x), s @ x, rtol=1e-12, atol=1e-12 * np.abs(s).max())
    # a first Gram that is not the identity (e.g. a data covariance) is applied, not skipped
    grams2 = [(2.0 * np.eye(6), grams[0][1])] + grams[1:]
    ks2 = _ks(grams2)
    assert ks2.terms[0][0] is not None
    x = rng.standard_normal(s.shape[0])
    s2 = s + np.kron(np.eye(6), grams[0][1])
    np.testing.assert_allclose(ks2.matvec(x), s2 @ x, rtol=1e-12, atol=1e-12 * np.abs(s2).max())


def test_rank_one_start_is_the_top_eigenvector_for_depth_two():
    # L = 2: S = I (x) W2 W2^T + W1^T W1 (x) I, whose top eigenvector is rank one
    chain = _chain((7, 9, 5), seed=4)
    ks = _ks(_grams(chain))
    x = ks.rank_one_start(steps=200)
    s = _dense_s(chain)
    w, v = np.linalg.eigh(s)
    assert abs(abs(float(x @ v[:, -1])) / np.linalg.norm(x) - 1.0) < 1e-10


@pytest.mark.parametrize("want_vector", [False, True])
@pytest.mark.parametrize(
    "dims",
    [(20, 15, 12, 18), (30, 12, 9, 11, 20), pytest.param((17, 40, 40, 40, 23), marks=pytest.mark.slow)],
)
def test_lanczos_top_matches_dense_eigh(dims, want_vector):
    chain = _chain(dims, seed=1)
    ks = _ks(_grams(chain))
    s = _dense_s(chain)
    w, v = np.linalg.eigh(s)
    res = lanczos.top_eigenpairs(ks.matmat, s.shape[0], v0=ks.rank_one_start(), want_vectors=want_vector)
    assert res.converged
    assert res.values[0] == pytest.approx(w[-1], rel=1e-12)
    assert res.num_products < s.shape[0]
    if want_vector:
        x = res.vectors[:, 0]
        assert np.linalg.norm(s @ x - res.values[0] * x) <= 1e-10 * res.values[0]


@pytest.mark.slow
def test_lanczos_top_with_a_repeated_top_eigenvalue():
    # a diagonal PSD matrix whose top eigenvalue has multiplicity 3 and a tight cluster below
    d = np.concatenate([[5.0, 5.0, 5.0, 5.0 - 1e-7], np.linspace(0.0, 4.0, 300)])
    res = lanczos.top_eigenpairs(lambda v: d[:, None] * v, d.size, v0=np.ones(d.size), want_vectors=True)
    assert res.values[0] == pytest.approx(5.0, rel=1e-12)
    x = res.vectors[:, 0]
    assert np.linalg.norm(d * x - res.values[0] * x) <= 1e-10


def test_lanczos_top_without_convergence_raises_with_the_partial_result():
    # a spectrum with a tiny relative gap: a budget of 5 products cannot certify the top
    d = np.concatenate([[1.0], 1.0 - np.logspace(-6, 0, 400)])
    with pytest.raises(ConvergenceError) as info:
        lanczos.top_eigenpairs(lambda v: d[:, None] * v, d.size, v0=np.ones(d.size), max_products=5)
    partial = info.value.partial
    assert partial is not None and not partial.converged
    assert 0.0 < partial.values[0] <= 1.0 + 1e-15  # a Rayleigh quotient: never above the top


def test_sharpness_operator_and_matrix_agree_above_the_dense_threshold(rng):
    chain = _chain((20, 25, 25, 25, 20), seed=5)
    assert 20 * 20 > kron.DENSE_S_MAX
    s = dmf.sharpness_matrix(chain)
    lam_ref = 2 * np.linalg.eigvalsh(s)[-1]
    assert dmf.sharpness(chain) == pytest.approx(lam_ref, rel=1e-12)
    assert dmf.sharpness(chain, method="lanczos") == pytest.approx(lam_ref, rel=1e-12)
    v = dmf.top_eigenvector(chain)
    flat = np.concatenate([b.ravel() for b in v])
    hv = np.concatenate([b.ravel() for b in dmf.hessian_vector_product(chain, v)])
    assert np.linalg.norm(hv - lam_ref * flat) <= 1e-9 * lam_ref


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (40, 30), (90, 120), (150, 150)])
def test_sigma_max_sq_against_svd(shape):
    w = np.random.default_rng(3).standard_normal(shape)
    assert s_matrix.sigma_max_sq(w) == pytest.approx(np.linalg.svd(w, compute_uv=False)[0] ** 2, rel=1e-12)


def test_finiteness_check_fast_path_and_overflowing_sums():
    # entries whose sum overflows are finite and accepted; NaN and infinities are refused
    big = np.full((3, 3), 1e308)
    assert dmf.FactorChain([big, np.ones((2, 3))]).dims == (3, 3, 2)
    for bad in (np.nan, np.inf, -np.inf):
        w = np.ones((3, 3))
        w[1, 2] = bad
        with pytest.raises(dmf.FactorError, match=r"W_1 has a non-finite entry .* at index \(1, 2\)"):
            dmf.FactorChain([w, np.ones((2, 3))])
    w = np.ones((3, 3))
    w[0, 0], w[2, 2] = np.inf, -np.inf  # they would cancel to NaN in the sum: still refused
    with pytest.raises(dmf.FactorError, match="non-finite"):
        dmf.FactorChain([np.ones((3, 2)), w])
