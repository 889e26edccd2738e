"""Closed forms at global minima against independent dense Hessians."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import dmfsharp as dmf
from dmfsharp.linalg.kron import DENSE_S_MAX

from .conftest import block_slices, flat, needs_torch, reference_hessian, reference_lambda_max, tol


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
    """``(eigenvalues descending, H, err)`` of an independent dense Hessian at the chain's minimum."""
    h, err = reference_hessian(chain.factors, chain.product)
    return np.sort(np.linalg.eigvalsh(h))[::-1], h, err


def check_against_reference(chain):
    ref, h, err = reference_eigs(chain)
    lam_ref = ref[0]
    n = chain.num_params
    scale = max(lam_ref, 1e-300)
    # a dense symmetric eigensolver resolves every eigenvalue to ~ n eps ||H||_2
    atol = tol(n, scale, ref_err=err)
    lam = dmf.sharpness(chain, target=chain.product)
    assert abs(lam - lam_ref) <= atol
    # the trace is read off H's diagonal (n terms of size <= ||H||_2)
    tr = dmf.hessian_trace(chain, target=chain.product)
    assert abs(tr - np.trace(h)) <= tol(n, scale, ref_err=n * err)
    spec = dmf.hessian_spectrum(chain, target=chain.product)
    assert np.all(np.diff(spec) <= 0)
    # every nonzero eigenvalue matches; the rest of the reference is zero
    assert spec.size <= n
    np.testing.assert_allclose(spec, ref[: spec.size], rtol=0, atol=atol)
    np.testing.assert_allclose(ref[spec.size :], 0.0, rtol=0, atol=atol)
    # the count is unambiguous when no reference eigenvalue sits near the zero threshold
    gap_lo, gap_hi = 1e-6 * scale, 1e-3 * scale
    unambiguous = not np.any((np.abs(ref) > gap_lo) & (np.abs(ref) < gap_hi))
    event(f"rank count checked: {unambiguous}")
    if unambiguous:
        assert spec.size == int(np.sum(ref > gap_lo))


@needs_torch
@given(minima())
def test_closed_forms_match_autograd_hessian(chain):
    check_against_reference(chain)


@given(minima(max_depth=12, max_dim=5, scalar=True))
def test_deep_scalar_chains(chain):
    check_against_reference(chain)
    # Theorem 4: for d_0 = d_L = 1 the Hessian has rank one, so lambda_max(H) = trace(H) and
    # the second eigenvalue of the independent H is zero
    ref, h, err = reference_eigs(chain)
    n = chain.num_params
    assert abs(ref[0] - np.trace(h)) <= tol(n, ref[0], ref_err=n * err)
    assert abs(ref[1]) <= tol(n, ref[0], ref_err=err)
    assert abs(dmf.sharpness(chain, method="theorem4") - ref[0]) <= tol(n, ref[0], ref_err=err)
    assert dmf.hessian_spectrum(chain).size == 1


@given(minima(max_depth=5, max_dim=7))
def test_routes_agree(chain):
    """Every route against the independent Hessian (not against another route's S)."""
    d0, dl = chain.dims[0], chain.dims[-1]
    ref, _, err = reference_eigs(chain)
    values = {"dense": dmf.sharpness(chain, method="dense")}
    if d0 * dl >= 3:
        values["lanczos"] = dmf.sharpness(chain, method="lanczos")
    if chain.depth == 2:
        values["corollary6"] = dmf.sharpness(chain, method="corollary6")
    if d0 == dl == 1:
        values["theorem4"] = dmf.sharpness(chain, method="theorem4")
    atol = tol(chain.num_params, ref[0], ref_err=err)
    for name, v in values.items():
        assert abs(v - ref[0]) <= atol, name
    assert abs(dmf.hessian_spectrum(chain)[0] - ref[0]) <= atol


def _slices(chain):
    return block_slices(chain.shapes)


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
    # one value independent of S: Lanczos on the Hessian-vector product (loss route)
    ref = dmf.numerical_sharpness(chain, method="lanczos", tol=1e-13)
    assert ref.converged
    assert abs(lam_mf - ref.value) <= 1e-11 * ref.value
    # the operator equals the dense matrix on random vectors
    op = dmf.sharpness_operator(chain)
    x = rng.standard_normal(s.shape[0])
    np.testing.assert_allclose(op.matvec(x), s @ x, rtol=1e-12, atol=1e-12 * np.abs(s).max())
    # spectrum by Lanczos (k largest) equals dense
    top = dmf.hessian_spectrum(chain)[:4]
    np.testing.assert_allclose(top, 2 * np.linalg.eigvalsh(s)[::-1][:4], rtol=1e-11)


@pytest.mark.slow
def test_large_d0_dl_matrix_free_only():
    # d_0 d_L = 4,900 is above the dense thresholds (spectrum and S): only the matrix-free
    # route is taken; N = 1,028 keeps the independent Lanczos-on-H reference quick
    rng = np.random.default_rng(0)
    dims = (70, 8, 6, 70)
    factors = [rng.standard_normal((dims[i], dims[i - 1])) / np.sqrt(dims[i - 1]) for i in range(1, 4)]
    chain = dmf.FactorChain(factors)
    lam = dmf.sharpness(chain)
    # independent check: Lanczos on the full Hessian operator (HVPs, not S)
    ref = dmf.numerical_sharpness(chain, method="lanczos", tol=1e-13)
    assert ref.converged
    assert lam == pytest.approx(ref.value, rel=1e-9)
    top = dmf.hessian_spectrum(chain, k=3)
    assert top[0] == pytest.approx(lam, rel=1e-11)


def test_large_d0_dl_refuses_dense_routes():
    rng = np.random.default_rng(0)
    dims = (70, 8, 6, 70)
    chain = dmf.FactorChain([rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, 4)])
    with pytest.raises(ValueError, match="pass k="):
        dmf.hessian_spectrum(chain)
    with pytest.raises(ValueError, match="method='dense' would form S"):
        dmf.sharpness(chain, method="dense")


@given(minima(max_depth=5, max_dim=6))
def test_top_eigenvector_is_an_eigenvector(chain):
    lam = dmf.sharpness(chain)
    v = dmf.top_eigenvector(chain)
    assert [b.shape for b in v] == list(chain.shapes)
    x = flat(v)
    n = chain.num_params
    assert abs(np.linalg.norm(x) - 1.0) <= tol(n)
    # residual against the independent Hessian (the library HVP shares code with top_eigenvector)
    h, err = reference_hessian(chain.factors, chain.product)
    hv = h @ x
    assert abs(float(x @ hv) - lam) <= tol(n, lam, ref_err=err)  # Rayleigh quotient
    # an eigenvector computed from S carries an error ~ eps ||H|| / gap; bound the residual by
    # sqrt(eps) ||H|| (the top eigenvalue may be nearly double)
    assert np.linalg.norm(hv - lam * x) <= 1e-7 * lam + err
    # deterministic sign: the largest entry is positive
    assert x[np.argmax(np.abs(x))] > 0


@given(minima(max_depth=5, max_dim=6))
def test_zero_eigenvector_has_zero_curvature(chain):
    z = flat(dmf.zero_eigenvector(chain))
    n = chain.num_params
    assert abs(np.linalg.norm(z) - 1.0) <= tol(n)
    h, err = reference_hessian(chain.factors, chain.product)
    lam = float(np.linalg.eigvalsh(h)[-1])
    assert np.linalg.norm(h @ z) <= tol(n, lam, ref_err=err)
    v = flat(dmf.top_eigenvector(chain))
    assert abs(v @ z) <= 1e-7


def test_section6_example_is_flat_but_not_balanced():
    chain = dmf.section6_example()
    m = np.diag([11.0, 2.0, 1.0])
    assert dmf.sharpness(chain, target=m) == pytest.approx(44.0, rel=1e-14)
    assert dmf.flat_sharpness(m, 2) == pytest.approx(44.0, rel=1e-14)
    # Corollary 6: 2 (sigma_max(W_1)^2 + sigma_max(W_2)^2) = 2 (11 + 11) = 44
    ref, err = reference_lambda_max(chain.factors, m)
    assert abs(ref - 44.0) <= tol(chain.num_params, 44.0, ref_err=err)
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
    ref, err = reference_lambda_max(chain.factors, m)
    assert abs(rep.lambda_max - ref) <= tol(chain.num_params, ref, ref_err=err)


@given(minima(max_depth=5, max_dim=6))
def test_bounds_hold_at_every_minimum(chain):
    rep = dmf.flatness_report(chain)
    slack = 1e-10 * rep.lambda_max
    assert rep.flat_lambda_max <= rep.lambda_max + slack
    assert rep.lambda_max <= rep.upper_bound + slack
    assert rep.flatness_ratio >= 1 - 1e-10
    # the upper bound is the sum of the diagonal blocks' top eigenvalues (Corollary 10), and
    # lambda_max lies between the largest block's and that sum; blocks of the independent H
    h, err = reference_hessian(chain.factors, chain.product)
    blocks = [np.linalg.eigvalsh(h[s, s])[-1] for s in _slices(chain)]
    atol = tol(chain.num_params, rep.upper_bound, ref_err=err)
    assert abs(rep.upper_bound - sum(blocks)) <= atol
    assert max(blocks) <= rep.lambda_max + atol


def test_rescaling_keeps_product_and_changes_sharpness_as_the_formula_says():
    chain = dmf.random_minimizer((3, 4, 4, 2), seed=5)
    g = np.diag([2.0, 0.5, 1.0, 3.0])
    moved = dmf.rescale(chain, 1, g)
    np.testing.assert_allclose(moved.product, chain.product, rtol=1e-12, atol=1e-12)
    assert dmf.is_minimum(moved, target=chain.product)
    # the closed form at the moved point, against an independent dense Hessian there
    ref, err = reference_lambda_max(moved.factors, chain.product)
    assert abs(dmf.sharpness(moved, target=chain.product) - ref) <= tol(moved.num_params, ref, ref_err=err)
    # scalar rescaling by c multiplies W_1 by c and W_2 by 1/c; the sharpness changes
    # (for L = 2 it is 2 (c^2 s1^2 + s2^2 / c^2), Corollary 6): check each against H there
    two = dmf.random_minimizer((3, 5, 4), seed=1)
    lams = []
    for c in (0.3, 1.0, 2.5):
        moved2 = dmf.rescale(two, 1, c)
        ref, err = reference_lambda_max(moved2.factors, two.product)
        lams.append(dmf.sharpness(moved2))
        assert abs(lams[-1] - ref) <= tol(two.num_params, ref, ref_err=err)
    assert lams[0] > lams[1] and lams[2] > lams[1]
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
    # and the numerical route works there, matching the independent Hessian
    res = dmf.numerical_sharpness(chain, target=m, method="dense")
    ref, err = reference_lambda_max(chain.factors, m)
    assert abs(res.value - ref) <= tol(chain.num_params, ref, ref_err=err)


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
