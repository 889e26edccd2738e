"""Numerical references: Lanczos and power iteration against dense eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf


def point(seed, dims, at_minimum):
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    chain = dmf.FactorChain(factors)
    target = chain.product if at_minimum else rng.standard_normal((dims[-1], dims[0]))
    return chain, target


@pytest.mark.parametrize("at_minimum", [True, False])
@pytest.mark.parametrize("dims", [(6, 10, 8, 5), (4, 12, 12, 12, 3), (8, 20, 6)])
def test_lanczos_and_power_against_dense(dims, at_minimum):
    chain, m = point(0, dims, at_minimum)
    dense = dmf.numerical_sharpness(chain, target=m, method="dense")
    h = dmf.dense_hessian(chain, target=m)
    assert dense.value == pytest.approx(np.linalg.eigvalsh(h)[-1], rel=1e-12)
    assert dense.num_hvp == chain.num_params
    lan = dmf.numerical_sharpness(chain, target=m, method="lanczos", tol=1e-12, seed=1)
    assert lan.converged
    assert lan.value == pytest.approx(dense.value, rel=1e-9)
    assert lan.residual_norm <= 1e-6 * abs(lan.value)
    assert 0 < lan.num_hvp < chain.num_params
    pw = dmf.numerical_sharpness(chain, target=m, method="power", tol=1e-9, seed=1, maxiter=50_000)
    assert pw.converged
    assert pw.value == pytest.approx(dense.value, rel=1e-6)
    if at_minimum:
        assert lan.value == pytest.approx(dmf.sharpness(chain, target=m), rel=1e-9)


def test_power_iteration_finds_largest_algebraic_when_negative_dominates():
    # far from the minimum the Hessian has large negative eigenvalues
    chain, _ = point(2, (2, 3, 3, 2), True)
    m = 20.0 * chain.product
    eig = np.linalg.eigvalsh(dmf.dense_hessian(chain, target=m))
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
