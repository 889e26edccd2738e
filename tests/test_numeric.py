"""Numerical references: Lanczos and power iteration against independent dense Hessians."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf

from .conftest import random_point, reference_hessian, tol


def point(seed, dims, at_minimum):
    chain, target, _ = random_point(dims, seed, at_minimum=at_minimum)
    return chain, target


@pytest.mark.parametrize("at_minimum", [True, False])
@pytest.mark.parametrize("dims", [(6, 10, 8, 5), (4, 12, 12, 12, 3), (8, 20, 6)])
def test_lanczos_and_power_against_dense(dims, at_minimum):
    chain, m = point(0, dims, at_minimum)
    n = chain.num_params
    h, err = reference_hessian(chain.factors, m)
    eig = np.linalg.eigvalsh(h)
    lam_ref, norm = eig[-1], np.abs(eig).max()
    dense = dmf.numerical_sharpness(chain, target=m, method="dense")
    assert abs(dense.value - lam_ref) <= tol(n, norm, ref_err=err)
    lan = dmf.numerical_sharpness(chain, target=m, method="lanczos", tol=1e-12, seed=1)
    assert lan.converged
    assert abs(lan.value - lam_ref) <= 1e-12 * norm + tol(n, norm, ref_err=err)
    # the Ritz residual bounds the eigenvalue error by its square / gap; with tol = 1e-12 the
    # residual itself is below ~1e-9 |lambda| (it is O(sqrt(tol)) at worst)
    assert lan.residual_norm <= 1e-9 * norm
    assert 0 < lan.num_hvp < n
    pw = dmf.numerical_sharpness(chain, target=m, method="power", tol=1e-9, seed=1, maxiter=50_000)
    assert pw.converged
    assert pw.value == pytest.approx(lam_ref, rel=1e-6)
    if at_minimum:
        assert abs(dmf.sharpness(chain, target=m) - lam_ref) <= tol(n, norm, ref_err=err)


def test_power_iteration_finds_largest_algebraic_when_negative_dominates():
    # far from the minimum the Hessian has large negative eigenvalues
    chain, _ = point(1, (2, 3, 3, 2), True)
    m = 20.0 * chain.product
    h, _ = reference_hessian(chain.factors, m)
    eig = np.linalg.eigvalsh(h)
    assert abs(eig[0]) > abs(eig[-1])
    pw = dmf.numerical_sharpness(chain, target=m, method="power", tol=1e-10, maxiter=100_000)
    assert pw.value == pytest.approx(eig[-1], rel=1e-6)


def test_warm_start_agrees_with_cold_start():
    # a warm start gets an admixture and an independent random column (certification), so
    # on a low-rank Hessian it is not cheaper; it must give the same value
    chain, m = point(3, (5, 9, 9, 4), True)
    cold = dmf.numerical_sharpness(chain, target=m, tol=1e-10)
    warm = dmf.numerical_sharpness(chain, target=m, tol=1e-10, v0=cold.vector)
    assert warm.value == pytest.approx(cold.value, rel=1e-10)
    assert warm.num_hvp <= 2 * cold.num_hvp


def test_seeded_and_validated():
    chain, m = point(4, (3, 5, 2), False)
    a = dmf.numerical_sharpness(chain, target=m, seed=5)
    b = dmf.numerical_sharpness(chain, target=m, seed=5)
    assert a.value == b.value and a.num_hvp == b.num_hvp
    with pytest.raises(ValueError, match="method must be"):
        dmf.numerical_sharpness(chain, method="qr")
    with pytest.raises(ValueError, match="tol must be"):
        dmf.numerical_sharpness(chain, tol=-1.0)
