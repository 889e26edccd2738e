"""The Davidson route for lambda_max(S) (wide ends) against dense eigvalsh of the explicit S.

Clusters and exact multiplicities are built by the factors' Gram structure: with every
``G^B_k`` block diagonal with ``m`` copies of the same blocks, ``S`` is the direct sum of
``m`` copies of one ``S_1``; adding ``eps I`` to the last Gram's ``j``-th copy shifts that
copy's spectrum by ``j eps``. So ``lambda_max(S) = lambda_max(S_1) + (m - 1) eps`` with the
next copies ``eps`` apart (``eps = 0``: multiplicity ``m``), known from the small ``S_1``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import dmfsharp as dmf
from dmfsharp import s_matrix
from dmfsharp.linalg import davidson, kron
from dmfsharp.objective import make_objective

from .conftest import explicit_s

EPS = np.finfo(np.float64).eps


def _chain(dims, seed=0):
    rng = np.random.default_rng(seed)
    return dmf.FactorChain(
        [rng.standard_normal((dims[i], dims[i - 1])) / np.sqrt(dims[i - 1]) for i in range(1, len(dims))]
    )


def _explicit_s(chain):
    return explicit_s(chain.factors)


def _tol(lam, n):
    return 1e-12 * lam + 64 * EPS * np.sqrt(n) * lam


@pytest.mark.parametrize(
    "dims", [(10, 7, 9, 12), (12, 5, 6, 7, 11), (16, 30, 30, 14), (15, 40, 6, 30, 14), (12, 10, 15)]
)
def test_davidson_top_against_dense_s(dims):
    chain = _chain(dims, seed=len(dims))
    grams, rb, ra = s_matrix.grams(make_objective(chain))
    w, v = scipy.linalg.eigh(_explicit_s(chain))
    res = davidson.davidson_top(grams, rb, ra)
    assert res.converged
    assert abs(res.values[0] - w[-1]) <= _tol(w[-1], w.size)
    x = res.vectors[:, 0]
    assert abs(np.linalg.norm(x) - 1) <= 1e-13
    # the residual it reports certifies the value, recomputed here from the explicit S
    true_res = np.linalg.norm(_explicit_s(chain) @ x - res.values[0] * x)
    assert true_res <= _tol(w[-1], w.size)
    assert abs(abs(x @ v[:, -1]) - 1) <= 1e-8  # isolated top: the same eigenvector


def _copies(m, eps, seed, ra=6, rb1=5, depth=4):
    """Grams of ``S = (+)_j (S_1 + j eps I)`` and ``lambda_max(S_1)``."""
    rng = np.random.default_rng(seed)

    def psd(n):
        g = rng.standard_normal((n, n + 2))
        return g @ g.T / n

    ga = [psd(ra) for _ in range(depth - 1)] + [None]
    gb1 = [None] + [psd(rb1) for _ in range(depth - 1)]
    s1 = kron.dense_s(list(zip(gb1, ga)), rb1, ra)
    gb = [None]
    for k in range(1, depth):
        blocks = [gb1[k] + (j * eps * np.eye(rb1) if k == depth - 1 else 0.0) for j in range(m)]
        gb.append(scipy.linalg.block_diag(*blocks))
    return list(zip(gb, ga)), m * rb1, ra, float(scipy.linalg.eigvalsh(s1)[-1])


@pytest.mark.parametrize("m", [2, 3, 5])
@pytest.mark.parametrize("gap", [0.0, 1e-14, 1e-11, 1e-8, 1e-4, 1e-1])
def test_davidson_route_clusters_and_multiplicities(m, gap):
    grams, rb, ra, top1 = _copies(m, gap, seed=m)
    expected = top1 + (m - 1) * gap * top1
    grams, rb, ra, _ = _copies(m, gap * top1, seed=m)
    n = rb * ra
    dense = scipy.linalg.eigvalsh(kron.dense_s(grams, rb, ra))[-1]
    assert abs(dense - expected) <= _tol(expected, n)  # the construction itself
    lam, x = kron.top_of_grams(grams, rb, ra, method="davidson")
    assert abs(lam - expected) <= _tol(expected, n)
    s = kron.dense_s(grams, rb, ra)
    assert np.linalg.norm(s @ x - lam * x) <= _tol(expected, n)
    # Davidson alone: either certified and right, or handed over uncertified
    res = davidson.davidson_top(grams, rb, ra)
    if res.converged:
        assert abs(res.values[0] - expected) <= _tol(expected, n)


def test_davidson_with_data_grams_against_dense():
    rng = np.random.default_rng(5)
    dims = (12, 9, 8, 14)
    chain = _chain(dims, seed=2)
    x = rng.standard_normal((12, 40))
    obj = make_objective(chain, data=x)
    grams, rb, ra = s_matrix.grams(obj)
    assert grams[0][0] is not None  # F^T F: no identity on the B side
    ref = scipy.linalg.eigvalsh(kron.dense_s(grams, rb, ra))[-1]
    res = davidson.davidson_top(grams, rb, ra)
    assert res.converged and abs(res.values[0] - ref) <= _tol(ref, rb * ra)


def test_zero_operator_is_zero():
    z = np.zeros((20, 20))
    grams = [(None, z), (z, z), (z, None)]
    res = davidson.davidson_top(grams, 20, 20)  # a multiplicity-400 top: handed over
    assert res.values[0] == 0.0 and np.isfinite(res.vectors).all()
    lam, x = kron.top_of_grams(grams, 20, 20, method="davidson")
    assert lam == 0.0 and abs(np.linalg.norm(x) - 1) <= 1e-14


def test_auto_route_uses_davidson_for_wide_ends_and_agrees_with_lanczos():
    chain = _chain((20, 30, 30, 20), seed=3)
    grams, rb, ra = s_matrix.grams(make_objective(chain))
    assert kron.prefer_davidson(grams, rb, ra)
    lam_auto, _ = kron.top_of_grams(grams, rb, ra)
    lam_lz, _ = kron.top_of_grams(grams, rb, ra, method="lanczos")
    ref = scipy.linalg.eigvalsh(_explicit_s(chain))[-1]
    for lam in (lam_auto, lam_lz):
        assert abs(lam - ref) <= _tol(ref, rb * ra)
    assert abs(dmf.sharpness(chain) - 2 * ref) <= 2 * _tol(ref, rb * ra)


def test_cost_model_picks_davidson_only_where_the_two_eigh_pay():
    g = np.zeros((1, 1))  # the model reads only which Grams are identities and the sizes

    def terms(depth):
        return [(None, g)] + [(g, g)] * (depth - 2) + [(g, None)]

    assert kron.prefer_davidson(terms(3), 200, 200)  # issue 17's wide ends
    assert kron.prefer_davidson(terms(3), 1000, 200)
    assert not kron.prefer_davidson(terms(3), 4000, 2)  # one end narrow: eigh(4000) dominates
    assert not kron.prefer_davidson(terms(11), 3, 3000)
