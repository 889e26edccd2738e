"""Closed forms at global minima against independent dense Hessians."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dmfsharp as dmf
from dmfsharp.linalg.kron import DENSE_S_MAX

from .reference import fd_hessian, has_torch, torch_hessian

EPS = np.finfo(float).eps


@st.composite
def minima(draw, max_depth=6, max_dim=7, scalar=False):
    depth = draw(st.integers(2, max_depth))
    if scalar:
        dims = [1] + [draw(st.integers(1, max_dim)) for _ in range(depth - 1)] + [1]
    else:
        dims = [draw(st.integers(1, max_dim)) for _ in range(depth + 1)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.5, 1.0, 1.5]))
    factors = [scale * rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, depth + 1)]
    return dmf.FactorChain(factors)


def reference_eigs(chain):
    """Eigenvalues (descending) of an independent dense Hessian at the chain's own minimum."""
    m = chain.product
    h = torch_hessian(chain.factors, m) if has_torch() else fd_hessian(chain.factors, m)
    return np.sort(np.linalg.eigvalsh(h))[::-1]


def check_against_reference(chain):
    ref = reference_eigs(chain)
    lam_ref = ref[0]
    n = chain.num_params
    scale = max(lam_ref, 1e-300)
    # dense eigensolvers resolve eigenvalues to ~ n eps ||H||; our values are far tighter
    atol = 1e-9 * scale
    lam = dmf.sharpness(chain, target=chain.product)
    assert abs(lam - lam_ref) <= 1e-9 * scale
    tr = dmf.hessian_trace(chain, target=chain.product)
    ref_tr = float(np.sum(ref))
    assert abs(tr - ref_tr) <= 1e-9 * max(abs(ref_tr), scale) + n * atol * 1e-3
    spec = dmf.hessian_spectrum(chain, target=chain.product)
    assert np.all(np.diff(spec) <= 0)
    # every nonzero eigenvalue matches; the rest of the reference is zero
    assert spec.size <= n
    np.testing.assert_allclose(spec, ref[: spec.size], rtol=0, atol=atol)
    np.testing.assert_allclose(ref[spec.size :], 0.0, rtol=0, atol=atol)
    # the count is unambiguous when no reference eigenvalue sits near the zero threshold
    gap_lo, gap_hi = 1e-6 * scale, 1e-3 * scale
    if not np.any((np.abs(ref) > gap_lo) & (np.abs(ref) < gap_hi)):
        assert spec.size == int(np.sum(ref > gap_lo))


@pytest.mark.skipif(not has_torch(), reason="PyTorch not installed")
@given(minima())
def test_closed_forms_match_autograd_hessian(chain):
    check_against_reference(chain)


@given(minima(max_depth=12, max_dim=5, scalar=True))
def test_deep_scalar_chains(chain):
    check_against_reference(chain)
    # Theorem 4: the Hessian has rank one, lambda_max = trace = the Corollary 10 bound
    lam = dmf.sharpness(chain, method="theorem4")
    assert lam == pytest.approx(dmf.hessian_trace(chain), rel=1e-12)
    assert lam == pytest.approx(dmf.sharpness_upper_bound(chain), rel=1e-12)
    assert dmf.hessian_spectrum(chain).size == 1


@given(minima(max_depth=5, max_dim=7))
def test_routes_agree(chain):
    d0, dl = chain.dims[0], chain.dims[-1]
    values = {"dense": dmf.sharpness(chain, method="dense")}
    if d0 * dl >= 3:
        values["lanczos"] = dmf.sharpness(chain, method="lanczos")
    if chain.depth == 2:
        values["corollary6"] = dmf.sharpness(chain, method="corollary6")
    if d0 == dl == 1:
        values["theorem4"] = dmf.sharpness(chain, method="theorem4")
    ref = values["dense"]
    for name, v in values.items():
        assert v == pytest.approx(ref, rel=1e-11, abs=1e-300), name
    # lambda_max equals the top of the spectrum
    assert dmf.hessian_spectrum(chain)[0] == pytest.approx(ref, rel=1e-11)


def test_matrix_free_against_dense_kronecker(rng):
    # d_0 d_L above the dense threshold, but small enough to also form S
    dims = (30, 12, 9, 11, 20)  # narrow hidden widths: the product has rank 9
    r = np.random.default_rng(3)
    chain = dmf.FactorChain([r.standard_normal((dims[i], dims[i - 1])) for i in range(1, 5)])
    assert dims[0] * dims[-1] > DENSE_S_MAX
    lam_mf = dmf.sharpness(chain)  # auto -> matrix-free Lanczos
    s = dmf.sharpness_matrix(chain)
    lam_dense = 2 * np.linalg.eigvalsh(s)[-1]
    assert lam_mf == pytest.approx(lam_dense, rel=1e-12)
    # the operator equals the dense matrix on random vectors
    op = dmf.sharpness_operator(chain)
    x = rng.standard_normal(s.shape[0])
    np.testing.assert_allclose(op.matvec(x), s @ x, rtol=1e-12, atol=1e-12 * np.abs(s).max())
    # spectrum by Lanczos (k largest) equals dense
    top = dmf.hessian_spectrum(chain)[:4]
    np.testing.assert_allclose(top, 2 * np.linalg.eigvalsh(s)[::-1][:4], rtol=1e-11)


def test_large_d0_dl_matrix_free_only():
    # d_0 d_L = 40,000: the Kronecker sum would need 12.8 GB; only the matrix-free route fits
    rng = np.random.default_rng(0)
    dims = (200, 8, 6, 200)
    factors = [rng.standard_normal((dims[i], dims[i - 1])) / np.sqrt(dims[i - 1]) for i in range(1, 4)]
    chain = dmf.FactorChain(factors)
    lam = dmf.sharpness(chain)
    # independent check: Lanczos on the full Hessian operator (N = 3,248)
    ref = dmf.numerical_sharpness(chain, method="lanczos", tol=1e-13)
    assert ref.converged
    assert lam == pytest.approx(ref.value, rel=1e-9)
    top = dmf.hessian_spectrum(chain, k=3)
    assert top[0] == pytest.approx(lam, rel=1e-11)
    with pytest.raises(ValueError, match="pass k="):
        dmf.hessian_spectrum(chain)
    with pytest.raises(ValueError, match="method='dense' would form S"):
        dmf.sharpness(chain, method="dense")


@given(minima(max_depth=5, max_dim=6))
def test_top_eigenvector_is_an_eigenvector(chain):
    lam = dmf.sharpness(chain)
    v = dmf.top_eigenvector(chain)
    assert [b.shape for b in v] == list(chain.shapes)
    flat = np.concatenate([b.ravel() for b in v])
    assert np.linalg.norm(flat) == pytest.approx(1.0, rel=1e-12)
    hv = np.concatenate([b.ravel() for b in dmf.hessian_vector_product(chain, v)])
    assert float(flat @ hv) == pytest.approx(lam, rel=1e-10)  # Rayleigh quotient
    assert np.linalg.norm(hv - lam * flat) <= 1e-8 * lam  # residual
    # deterministic sign: the largest entry is positive
    assert flat[np.argmax(np.abs(flat))] > 0


@given(minima(max_depth=5, max_dim=6))
def test_zero_eigenvector_has_zero_curvature(chain):
    z = dmf.zero_eigenvector(chain)
    flat = np.concatenate([b.ravel() for b in z])
    assert np.linalg.norm(flat) == pytest.approx(1.0, rel=1e-12)
    hz = np.concatenate([b.ravel() for b in dmf.hessian_vector_product(chain, z)])
    lam = dmf.sharpness(chain)
    assert np.linalg.norm(hz) <= 1e-10 * lam
    v = np.concatenate([b.ravel() for b in dmf.top_eigenvector(chain)])
    assert abs(v @ flat) <= 1e-10


def test_section6_example_is_flat_but_not_balanced():
    chain = dmf.section6_example()
    m = np.diag([11.0, 2.0, 1.0])
    assert dmf.sharpness(chain, target=m) == pytest.approx(44.0, rel=1e-14)
    assert dmf.flat_sharpness(m, 2) == pytest.approx(44.0, rel=1e-14)
    ref = np.linalg.eigvalsh(dmf.dense_hessian(chain, target=m))[-1]
    assert ref == pytest.approx(44.0, rel=1e-12)
    rep = dmf.flatness_report(chain, target=m)
    assert rep.is_flat and rep.corollary8 and rep.corollary10
    assert rep.frobenius_imbalance > 0.1  # L L^T != R R^T
    # the balanced minimizer of the same M has the same sharpness and a smaller trace
    bal = dmf.flattest_minimizer(m, (3, 3, 3))
    assert dmf.sharpness(bal, target=m) == pytest.approx(44.0, rel=1e-12)
    assert dmf.frobenius_imbalance(bal) < 1e-12
    assert dmf.hessian_trace(bal) < dmf.hessian_trace(chain)


@pytest.mark.parametrize("dims", [(4, 5, 3), (3, 6, 5, 4, 2), (1, 4, 4, 4, 1), (5, 7, 7, 6), (2, 9, 3)])
@pytest.mark.parametrize("seed", [None, 1])
def test_flattest_minimizer_attains_flat_value(dims, seed):
    rng = np.random.default_rng(7)
    m = rng.standard_normal((dims[-1], dims[0]))
    if min(dims[1:-1]) < min(dims[0], dims[-1]):
        pytest.skip("infeasible")
    chain = dmf.flattest_minimizer(m, dims, seed=seed)
    assert dmf.is_minimum(chain, target=m)
    rep = dmf.flatness_report(chain, target=m)
    assert rep.lambda_max == pytest.approx(rep.flat_lambda_max, rel=1e-10)
    assert rep.upper_bound == pytest.approx(rep.flat_lambda_max, rel=1e-10)
    assert rep.is_flat and rep.corollary10
    assert rep.frobenius_imbalance < 1e-10
    ref = dmf.numerical_sharpness(chain, target=m, method="dense").value
    assert rep.lambda_max == pytest.approx(ref, rel=1e-9)


@given(minima(max_depth=5, max_dim=6))
def test_bounds_hold_at_every_minimum(chain):
    rep = dmf.flatness_report(chain)
    tol = 1e-10 * rep.lambda_max
    assert rep.flat_lambda_max <= rep.lambda_max + tol
    assert rep.lambda_max <= rep.upper_bound + tol
    assert rep.flatness_ratio >= 1 - 1e-10
    assert rep.max_stable_step == pytest.approx(2 / rep.lambda_max)
    assert rep.is_stable(rep.max_stable_step * (1 - 1e-9))
    assert not rep.is_stable(rep.max_stable_step * (1 + 1e-9))


def test_rescaling_keeps_product_and_changes_sharpness_as_the_formula_says():
    chain = dmf.random_minimizer((3, 4, 4, 2), seed=5)
    g = np.diag([2.0, 0.5, 1.0, 3.0])
    moved = dmf.rescale(chain, 1, g)
    np.testing.assert_allclose(moved.product, chain.product, rtol=1e-12, atol=1e-12)
    assert dmf.is_minimum(moved, target=chain.product)
    # the closed form at the moved point, against an independent dense Hessian there
    ref = np.linalg.eigvalsh(fd_hessian(moved.factors, chain.product))[-1]
    assert dmf.sharpness(moved, target=chain.product) == pytest.approx(ref, rel=1e-6)
    dense = np.linalg.eigvalsh(dmf.dense_hessian(moved))[-1]
    assert dmf.sharpness(moved) == pytest.approx(dense, rel=1e-10)
    # scalar rescaling by c multiplies W_1 by c and W_2 by 1/c: for L = 2,
    # lambda_max = 2 (c^2 s1^2 + s2^2 / c^2) exactly (Corollary 6)
    two = dmf.random_minimizer((3, 5, 4), seed=1)
    s1 = np.linalg.norm(two[0], 2)
    s2 = np.linalg.norm(two[1], 2)
    for c in (0.3, 1.0, 2.5):
        lam = dmf.sharpness(dmf.rescale(two, 1, c))
        assert lam == pytest.approx(2 * (c**2 * s1**2 + s2**2 / c**2), rel=1e-12)
    with pytest.raises(ValueError, match="singular"):
        dmf.rescale(chain, 1, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="k must"):
        dmf.rescale(chain, 3, 2.0)


def test_random_minimizer_is_seeded():
    a = dmf.random_minimizer((2, 6, 5, 4, 3), seed=7)
    b = dmf.random_minimizer((2, 6, 5, 4, 3), seed=7)
    c = dmf.random_minimizer((2, 6, 5, 4, 3), seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    dims = dmf.random_dims(5, 3, 2, (3, 8), seed=4)
    assert dims == dmf.random_dims(5, 3, 2, (3, 8), seed=4)
    assert len(dims) == 6 and dims[0] == 3 and dims[-1] == 2
    assert all(3 <= d <= 8 for d in dims[1:-1])


# --------------------------------------------------------------------------- refusals


def test_closed_forms_refuse_non_minima():
    chain = dmf.random_minimizer((3, 4, 2), seed=0)
    m = chain.product + 1e-3
    for fn in (
        dmf.sharpness,
        dmf.hessian_spectrum,
        dmf.top_eigenvector,
        dmf.zero_eigenvector,
        dmf.flatness_report,
        dmf.sharpness_matrix,
        dmf.sharpness_operator,
        dmf.sharpness_upper_bound,
    ):
        with pytest.raises(dmf.NotAMinimumError, match="numerical_sharpness"):
            fn(chain, target=m)
    assert not dmf.is_minimum(chain, target=m)
    # tiny residuals at rounding level are accepted
    assert dmf.is_minimum(chain, target=chain.product * (1 + 1e-15))
    # and the numerical route works there, matching the dense Hessian
    res = dmf.numerical_sharpness(chain, target=m, method="dense")
    assert np.isfinite(res.value)


def test_wrong_routes_are_refused():
    chain = dmf.random_minimizer((3, 4, 4, 2), seed=0)
    with pytest.raises(ValueError, match="Theorem 4"):
        dmf.sharpness(chain, method="theorem4")
    with pytest.raises(ValueError, match="Corollary 6"):
        dmf.sharpness(chain, method="corollary6")
    with pytest.raises(ValueError, match="method must be"):
        dmf.sharpness(chain, method="magic")
    with pytest.raises(ValueError, match="k must"):
        dmf.hessian_spectrum(chain, k=0)
