"""Eigensolvers against operators and factor chains with prescribed spectra (issue 9).

Every expected value here is known in closed form from how the operator was built:
``A = Q diag(lam) Q^T`` with a seeded orthogonal ``Q``, and, for the Hessian at an
``L = 2`` minimum, ``S = (W_1^T W_1) kron I + I kron (W_2 W_2^T)`` whose eigenvalues are
``sigma_i(W_1)^2 + sigma_j(W_2)^2`` for prescribed singular values (Theorem 5 and
Corollary 6), so ``lambda_max(H) = 2 (sigma_1(W_1)^2 + sigma_1(W_2)^2)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dmfsharp as dmf
from dmfsharp.errors import ConvergenceError
from dmfsharp.linalg.lanczos import top_eigenpairs

EPS = np.finfo(np.float64).eps


def orthogonal(n: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diagonal(r))


def prescribed(lam, seed: int = 0):
    """``(A, Q)`` with ``A = Q diag(lam) Q^T`` exactly symmetric."""
    lam = np.asarray(lam, dtype=float)
    q = orthogonal(lam.size, seed)
    a = (q * lam) @ q.T
    return 0.5 * (a + a.T), q


def tolerance(expected, lam) -> np.ndarray:
    """1e-12 relative, plus rounding of the operator itself (eps ||A|| n)."""
    return 1e-12 * np.abs(expected) + 64 * EPS * np.sqrt(lam.size) * np.max(np.abs(lam))


def rest(n, lo=0.3, hi=0.9):
    return np.linspace(hi, lo, n)


N = 80
SPECTRA = {
    **{f"gap 1e-{e}": np.r_[1.0, 1.0 - 10.0**-e, rest(N - 2)] for e in (1, 4, 8, 11, 14)},
    "gap 0": np.r_[1.0, 1.0, rest(N - 2)],
    **{f"multiplicity {m}": np.r_[[2.0] * m, [2.0 - 1e-9] * 2, rest(N - m - 2)] for m in (2, 3, 5)},
    "two clusters": np.r_[[3.0] * 3, [3.0 - 1e-10] * 2, [2.5] * 4, rest(N - 9)],
    "zero": np.zeros(N),
    "negative": -np.r_[1.0, 1.0 - 1e-9, rest(N - 2)],
    "range 1e-12..1e12": np.r_[1e12, 1e12 * (1 - 1e-13), np.logspace(-12, 11, N - 2)],
    "indefinite": np.r_[5.0, 5.0 - 1e-12, np.linspace(-20.0, 4.0, N - 2)],
}


def check_pairs(res, a, expected, lam, k):
    assert res.converged
    assert res.values.shape == (k,) and res.residuals.shape == (k,)
    np.testing.assert_array_less(np.abs(res.values - expected), tolerance(expected, lam) + 1e-300)
    if res.vectors is not None:
        v = res.vectors
        assert v.shape == (lam.size, k)
        np.testing.assert_allclose(v.T @ v, np.eye(k), atol=64 * EPS * np.sqrt(lam.size))
        # residuals recomputed here from the dense matrix: they certify the values
        true_res = np.linalg.norm(a @ v - v * res.values, axis=0)
        assert np.all(true_res <= tolerance(expected, lam))
        np.testing.assert_allclose(res.residuals, true_res, atol=64 * EPS * np.max(np.abs(lam)) * lam.size)


@pytest.mark.parametrize("name", list(SPECTRA))
@pytest.mark.parametrize("k", [1, 3, pytest.param(5, marks=pytest.mark.slow)])
@pytest.mark.parametrize("which", ["LA", pytest.param("SA", marks=pytest.mark.slow)])
def test_top_eigenpairs_prescribed_spectra(name, k, which):
    lam = SPECTRA[name]
    a, _ = prescribed(lam, seed=len(name))
    res = top_eigenpairs(lambda x: a @ x, lam.size, k=k, which=which, want_vectors=True, seed=3)
    expected = np.sort(lam)[::-1][:k] if which == "LA" else np.sort(lam)[:k]
    check_pairs(res, a, expected, lam, k)
    values_only = top_eigenpairs(lambda x: a @ x, lam.size, k=k, which=which, seed=4)
    assert values_only.vectors is None
    np.testing.assert_array_less(np.abs(values_only.values - expected), tolerance(expected, lam) + 1e-300)


@pytest.mark.parametrize("name", list(SPECTRA))
def test_warm_start_at_the_second_eigenvector_finds_the_top(name):
    lam = SPECTRA[name]
    a, q = prescribed(lam, seed=7)
    order = np.argsort(lam)[::-1]
    second = q[:, order[1]]
    expected = np.sort(lam)[::-1][:1]
    res = top_eigenpairs(lambda x: a @ x, lam.size, v0=second, want_vectors=True)
    check_pairs(res, a, expected, lam, 1)
    # the v0 block itself may be zero: a defined start, no warning
    res0 = top_eigenpairs(lambda x: a @ x, lam.size, v0=np.zeros(lam.size))
    check_pairs(res0, a, expected, lam, 1)


@pytest.mark.slow
def test_issue_example_cluster_is_resolved():
    # eigenvalues 4 and 4 (1 - 5e-8): the old stopping rule returned 4 - 1.05e-7
    lam = np.r_[4.0, 4.0 * (1 - 5e-8), 4.0 * rest(298, 0.3, 0.9)]
    a, q = prescribed(lam, seed=1)
    for v0 in (None, q[:, 1], q[:, 0] + q[:, 1]):
        res = top_eigenpairs(lambda x: a @ x, lam.size, v0=v0)
        assert abs(res.values[0] - 4.0) <= 1e-12 * 4.0


def test_zero_operator_is_zero_with_a_unit_vector(recwarn, capfd):
    n = 50
    for which in ("LA", "SA"):
        res = top_eigenpairs(lambda x: np.zeros_like(x), n, k=3, which=which, want_vectors=True)
        assert res.converged and np.all(res.values == 0) and np.all(np.isfinite(res.vectors))
        np.testing.assert_allclose(res.vectors.T @ res.vectors, np.eye(3), atol=1e-14)
    assert len(recwarn) == 0
    assert capfd.readouterr() == ("", "")


def test_budget_exhausted_raises_with_partial():
    lam = np.r_[1.0, 1.0 - 1e-6, rest(198, 0.0, 0.999)]
    a, _ = prescribed(lam, seed=2)
    with pytest.raises(ConvergenceError) as info:
        top_eigenpairs(lambda x: a @ x, lam.size, max_products=5)
    part = info.value.partial
    assert part is not None and not part.converged and part.num_products <= 5
    assert part.values[0] <= 1.0 + 1e-15  # a Ritz value never exceeds lambda_max


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k must be"),
        (dict(which="LM"), "which must be"),
        (dict(rtol=-1.0), "rtol must be"),
        (dict(max_products=0), "max_products must be"),
        (dict(v0=np.ones(3)), "v0 must have shape"),
    ],
)
def test_top_eigenpairs_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        top_eigenpairs(lambda x: x, 40, **kwargs)


@settings(max_examples=20)
@given(
    gap_exp=st.integers(min_value=1, max_value=15),
    mult=st.integers(min_value=1, max_value=5),
    k=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**16),
    scale_exp=st.integers(min_value=-12, max_value=12),
)
def test_property_clusters_and_multiplicities(gap_exp, mult, k, seed, scale_exp):
    n = 48
    top = [1.0] * mult + [1.0 - 10.0**-gap_exp] * 2
    lam = 10.0**scale_exp * np.r_[top, np.random.default_rng(seed).uniform(-0.9, 0.9, n - len(top))]
    a, _ = prescribed(lam, seed=seed)
    res = top_eigenpairs(lambda x: a @ x, n, k=k, want_vectors=True, seed=seed)
    check_pairs(res, a, np.sort(lam)[::-1][:k], lam, k)


# --- the Hessian of a chain with prescribed singular values ------------------------------


def two_factor_minimum(s1, s2, d0, d1, d2, seed=0):
    """``W_1`` (d1 x d0) and ``W_2`` (d2 x d1) with singular values ``s1``, ``s2``."""
    w1 = orthogonal(d1, seed)[:, : len(s1)] @ np.diag(s1) @ orthogonal(d0, seed + 1)[:, : len(s1)].T
    w2 = orthogonal(d2, seed + 2)[:, : len(s2)] @ np.diag(s2) @ orthogonal(d1, seed + 3)[:, : len(s2)].T
    return [w1, w2]


def hessian_top(s1, s2) -> float:
    """``2 lambda_max(S)``, ``S = (W_1^T W_1) kron I + I kron (W_2 W_2^T)`` (Corollary 6)."""
    return 2.0 * (max(s1) ** 2 + max(s2) ** 2)


CHAINS = {
    "separated": ([3.0, 1.0, 0.5], [2.0, 1.0, 0.2]),
    "cluster 5e-8": ([1.0, np.sqrt(1 - 5e-8), 0.9, 0.7], [1.0, np.sqrt(1 - 5e-8), 0.8]),
    "cluster 1e-13": ([1.0, 1.0 - 1e-13, 0.5], [1.0, 0.6, 0.5]),
    "multiplicity 4": ([1.0, 1.0, 0.5, 0.1], [1.0, 1.0, 0.3]),
    "range 1e-6..1e6": ([1e6, 1e6 * (1 - 1e-12), 1e-6], [1e-6, 1e-6, 1e-6]),
    "zero": ([0.0, 0.0], [0.0, 0.0]),
}


@pytest.mark.parametrize("name", list(CHAINS))
@pytest.mark.parametrize("method", ["lanczos", "dense"])
def test_numerical_sharpness_prescribed_chains(name, method):
    s1, s2 = CHAINS[name]
    factors = two_factor_minimum(s1, s2, 6, 5, 7)
    expected = hessian_top(s1, s2)
    res = dmf.numerical_sharpness(factors, method=method, tol=1e-13)
    assert res.converged
    assert abs(res.value - expected) <= 1e-12 * expected + 64 * EPS * np.sqrt(65) * max(expected, 1e-300)
    assert np.isfinite(res.residual_norm)


def test_numerical_sharpness_warm_start_at_second_eigenvector():
    # issue 9 item 3: random_minimizer((3, 4, 5, 2), seed=0), true value 112.86
    chain = dmf.random_minimizer((3, 4, 5, 2), seed=0)
    from tests.reference import fd_hessian

    h = fd_hessian(chain.factors, chain.product)
    w, v = np.linalg.eigh(0.5 * (h + h.T))
    dense = np.linalg.eigvalsh(dmf.dense_hessian(chain))
    assert w[-1] == pytest.approx(dense[-1], rel=1e-6)  # the finite-difference reference agrees
    second = chain.unflatten(np.linalg.eigh(dmf.dense_hessian(chain))[1][:, -2])
    for method in ("power", "lanczos"):
        res = dmf.numerical_sharpness(chain, method=method, v0=second, tol=1e-12)
        assert res.converged
        assert res.value == pytest.approx(dense[-1], rel=1e-11), method
        assert res.value == pytest.approx(112.86, abs=5e-3)


@pytest.mark.parametrize("dims", [(3, 4, 5, 2), (15, 6, 7, 15), (4, 4, 4, 4, 4)])
@pytest.mark.parametrize("method", ["lanczos", "power", "dense"])
def test_zero_hessian_is_zero(dims, method, recwarn, capfd):
    factors = [np.zeros((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    res = dmf.numerical_sharpness(factors, method=method)
    assert res.value == 0.0 and res.converged
    flat = np.concatenate([b.ravel() for b in res.vector])
    assert np.linalg.norm(flat) == pytest.approx(1.0, abs=1e-14)
    assert len(recwarn) == 0
    assert capfd.readouterr() == ("", "")


def test_numerical_sharpness_non_convergence_policy():
    s1, s2 = CHAINS["separated"]
    factors = two_factor_minimum(s1, s2, 6, 5, 7)
    for method in ("lanczos", "power"):
        with pytest.raises(ConvergenceError) as info:
            dmf.numerical_sharpness(factors, method=method, maxiter=2, tol=1e-13)
        part = info.value.partial
        assert isinstance(part, dmf.EigenResult) and not part.converged and part.method == method
    with pytest.raises(ValueError, match="maxiter must be"):
        dmf.numerical_sharpness(factors, method="power", maxiter=0)


@pytest.mark.slow
def test_issue_example_flattest_minimizer_numerically():
    # M = diag(1, 1 - 5e-8, linspace(.9, .3, n - 2)) (smaller than the issue's 100): at a
    # flattest minimizer of depth 2, sigma_i(W_1)^2 = sigma_i(W_2)^2 = s_i, so
    # lambda_max = 2 (1 + 1) = 4
    n = 30
    m = np.diag(np.r_[1, 1 - 5e-8, np.linspace(0.9, 0.3, n - 2)])
    chain = dmf.flattest_minimizer(m, (n, n, n))
    res = dmf.numerical_sharpness(chain, tol=1e-13)
    assert abs(res.value - 4.0) <= 1e-12 * 4.0


@pytest.mark.parametrize("n", [1, 2, 33, 40])
def test_small_and_full_space(n):
    lam = np.linspace(-1.0, 1.0, n) if n > 1 else np.array([0.5])
    a, _ = prescribed(lam, seed=n)
    for k in {1, n}:
        res = top_eigenpairs(lambda x: a @ x, n, k=k, want_vectors=True, which="SA")
        check_pairs(res, a, np.sort(lam)[:k], lam, k)
