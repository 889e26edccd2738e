"""The eigensolver interface :func:`dmfsharp.linalg.top_eigenpairs` on operators with known spectra."""

from __future__ import annotations

import numpy as np
import pytest

from dmfsharp.linalg import EigenPairs, top_eigenpairs


def _op(eigs, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    a = (q * np.asarray(eigs)) @ q.T
    return 0.5 * (a + a.T)


@pytest.mark.parametrize("want_vectors", [False, True])
def test_top_eigenpair_of_a_known_spectrum(want_vectors):
    eigs = np.linspace(0.0, 3.0, 60)
    a = _op(eigs)
    res = top_eigenpairs(lambda x: a @ x, 60, want_vectors=want_vectors)
    assert isinstance(res, EigenPairs) and res.converged
    assert res.values[0] == pytest.approx(3.0, rel=1e-12)
    # without vectors the stop is on the eigenvalue error (quadratic in the vector's)
    assert res.residuals[0] <= (1e-10 if want_vectors else 1e-5) * 3.0
    assert res.num_products >= 2
    if want_vectors:
        v = res.vectors[:, 0]
        assert np.linalg.norm(a @ v - 3.0 * v) <= 1e-10


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_several_pairs_are_sorted_orthonormal_and_have_small_residuals(which):
    eigs = np.r_[np.linspace(1.0, 2.0, 40), 5.0, 6.0, 7.0]
    a = _op(eigs, seed=1)
    res = top_eigenpairs(lambda x: a @ x, a.shape[0], k=3, which=which, want_vectors=True)
    expect = [7.0, 6.0, 5.0] if which == "LA" else [1.0, 1.0 + 1 / 39, 1.0 + 2 / 39]
    np.testing.assert_allclose(res.values, expect, rtol=1e-10)
    np.testing.assert_allclose(res.vectors.T @ res.vectors, np.eye(3), atol=1e-10)
    assert np.all(res.residuals <= 1e-8)
