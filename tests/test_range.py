"""Extreme factor scales (issue 9 item 4): right whenever representable, else Float64OverflowError.

Reference (independent of the code under test): factors ``W_m = Q_m D_m Q_{m-1}^T`` with
seeded orthogonal ``Q_m`` and diagonal ``D_m = 2^{e_m} diag(d_m)``. Then ``S`` is
orthogonally similar to ``sum_k diag(prod_{m<k} D_m^2) (x) diag(prod_{m>k} D_m^2)``, so
every Hessian eigenvalue at the minimum is ``2 sum_k prod_{m<k} D_m[j]^2 prod_{m>k}
D_m[i]^2`` and the trace ``2 sum_k tr(prod_{m<k} D_m^2) tr(prod_{m>k} D_m^2)``, computed
here in exact rational arithmetic (``fractions.Fraction``) at any scale.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.errors import Float64OverflowError

BIG = Fraction(sys.float_info.max)
TINY = Fraction(2) ** -1000  # below this a value is (gradually) underflowing: not compared


def orthogonal(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diagonal(r))


def build(d, depth, exps, seed=0):
    """``(factors, diag entries as Fractions)``; factor ``m`` scaled by ``2^exps[m]``."""
    rng = np.random.default_rng(seed)
    qs = [orthogonal(d, seed + 10 * m) for m in range(depth + 1)]
    diags = [rng.uniform(0.5, 2.0, d) for _ in range(depth)]
    factors = [np.ldexp((qs[m + 1] * diags[m]) @ qs[m].T, e) for m, e in enumerate(exps)]
    exact = [[Fraction(float(x)) * Fraction(2) ** e for x in dm] for dm, e in zip(diags, exps)]
    return factors, exact


def reference(exact, d):
    """Exact ``(eigenvalues of H at the minimum, descending; trace)`` as Fractions."""
    L = len(exact)

    def prod(rng_m, idx):
        out = Fraction(1)
        for m in rng_m:
            out *= exact[m][idx] ** 2
        return out

    eig = []
    for i in range(d):
        for j in range(d):
            eig.append(2 * sum(prod(range(k), j) * prod(range(k + 1, L), i) for k in range(L)))
    trace = 2 * sum(
        sum(prod(range(k), j) for j in range(d)) * sum(prod(range(k + 1, L), i) for i in range(d))
        for k in range(L)
    )
    return sorted(eig, reverse=True), trace


EXPONENTS = {
    "moderate": (0, 0, 0),
    "uniform 1e-80": (-266, -266, -266),
    "uniform 1e+75": (249, 249, 249),
    "gauge 1e+-160 (product 1)": (532, -532, 0),
    "B-Gram overflows, term tiny": (665, -665, -500),
    "one factor 1e+300": (0, 997, -700),
    "mixed 1e+-120": (-400, 400, 150),
    "overflows": (400, 400, 400),
    "underflows": (-400, -400, -400),
}


def _first(values):
    return float(values[0]) if values.size else 0.0  # all underflowing: no nonzero value left


def _check(value, expected, rtol=1e-12):
    if expected > BIG:
        pytest.fail("expected an overflow error")
    if expected < TINY:
        assert abs(value) <= 2.0**-900
        return
    assert abs(Fraction(float(value)) - expected) <= rtol * expected


@pytest.mark.parametrize("name", list(EXPONENTS))
@pytest.mark.parametrize("d", [4, 15])  # dense S; matrix-free S (d_0 d_L = 225)
def test_scales_table_against_exact_rationals(name, d):
    exps = EXPONENTS[name]
    factors, exact = build(d, 3, exps, seed=d)
    eig, trace = reference(exact, d)
    calls = {
        "sharpness": (lambda: dmf.sharpness(factors), eig[0]),
        "gauss_newton_sharpness": (lambda: dmf.gauss_newton_sharpness(factors), eig[0]),
        "hessian_trace": (lambda: dmf.hessian_trace(factors), trace),
        "hessian_spectrum": (lambda: _first(dmf.hessian_spectrum(factors, k=3)), eig[0]),
    }
    for _what, (fn, expected) in calls.items():
        if expected > BIG:
            with pytest.raises(Float64OverflowError, match="overflows float64"):
                fn()
        else:
            _check(fn(), expected)
    if eig[0] <= BIG and eig[0] >= TINY:
        spec = dmf.hessian_spectrum(factors, k=5)
        for v, e in zip(spec, eig[:5]):
            if e >= TINY:
                _check(v, e, rtol=1e-10)


@pytest.mark.parametrize("name", list(EXPONENTS))
def test_top_eigenvector_is_defined_at_every_scale(name):
    exps = EXPONENTS[name]
    d = 4
    factors, exact = build(d, 3, exps, seed=1)
    eig, _ = reference(exact, d)
    # the top pair (i, j): block k of the direction has norm prod_{m>k}|D_m[i]| prod_{m<k}|D_m[j]|
    best = None
    for i in range(d):
        for j in range(d):
            lam = 2 * sum(
                np.prod([exact[m][j] ** 2 for m in range(k)] or [Fraction(1)])
                * np.prod([exact[m][i] ** 2 for m in range(k + 1, 3)] or [Fraction(1)])
                for k in range(3)
            )
            if best is None or lam > best[0]:
                best = (lam, i, j)
    _, i, j = best
    norms = []
    for k in range(3):
        c = Fraction(1)
        for m in range(k + 1, 3):
            c *= exact[m][i] ** 2
        for m in range(k):
            c *= exact[m][j] ** 2
        norms.append(c)  # squared block norms
    total = sum(norms)
    expected = np.array([float(c / total) ** 0.5 for c in norms])
    blocks = dmf.top_eigenvector(factors)
    assert all(np.all(np.isfinite(b)) for b in blocks)
    got = np.array([np.linalg.norm(b) for b in blocks])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("exps", [(0, 0), (600, -600), (510, 0), (-520, -520), (540, 1)])
def test_depth_two_and_scalar_ends(exps):
    # L = 2 (Corollary 6) with diagonal structure; d_0 = d_L = 1 (Theorem 4) exactly
    factors, exact = build(3, 2, exps, seed=2)
    eig, trace = reference(exact, 3)
    for fn, expected in ((dmf.sharpness, eig[0]), (dmf.hessian_trace, trace)):
        if expected > BIG:
            with pytest.raises(Float64OverflowError):
                fn(factors)
        else:
            _check(fn(factors), expected)
    m1, m2 = np.array([[1.0], [0.5], [-0.75]]), np.array([[0.25, 1.0, 0.5]])
    w1, w2 = np.ldexp(m1, exps[0]), np.ldexp(m2, exps[1])
    fr = [Fraction(float(x)) * Fraction(2) ** exps[0] for x in m1.ravel()]
    fs = [Fraction(float(x)) * Fraction(2) ** exps[1] for x in m2.ravel()]
    lam = 2 * (sum(x * x for x in fr) + sum(x * x for x in fs))  # Theorem 4, L = 2
    if lam > BIG:
        with pytest.raises(Float64OverflowError):
            dmf.sharpness([w1, w2])
    else:
        _check(dmf.sharpness([w1, w2]), lam)


def test_nothing_on_stderr_at_extreme_scales(capfd, recwarn):
    factors, _ = build(15, 3, (665, -665, -500), seed=3)
    dmf.sharpness(factors)
    dmf.hessian_trace(factors)
    with pytest.raises(Float64OverflowError):
        dmf.sharpness(build(15, 3, (400, 400, 400))[0])
    assert capfd.readouterr() == ("", "")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# --- the numerical routes and the flat value at extreme scales (issue 9 item 4) ----------
# The loss is homogeneous: with every W_i scaled by s and the target by s^L, the Hessian is
# s^(2L - 2) times the Hessian at scale 1, whose top eigenvalue comes from an independent
# dense autograd (or finite-difference) Hessian at ordinary scale.


@pytest.mark.parametrize("scale", [1e40, 1e75, 1e-50, 1e-75])
@pytest.mark.parametrize("method", ["lanczos", "power", "dense"])
@pytest.mark.parametrize("at_minimum", [True, False])
def test_numerical_sharpness_at_extreme_scales(scale, method, at_minimum):
    from tests.conftest import reference_lambda_max

    chain = dmf.random_minimizer((3, 4, 5, 2), seed=0)
    target = chain.product * (1.0 if at_minimum else 1.001)
    ref, err = reference_lambda_max(list(chain.factors), target)
    ws = [np.asarray(w) * scale for w in chain.factors]
    res = dmf.numerical_sharpness(ws, target=target * scale**3, method=method)
    assert res.converged
    assert res.value / scale**4 == pytest.approx(ref, rel=1e-11, abs=err)
    top = dmf.numerical_eigenvalues(ws, target=target * scale**3, k=1).values[0]
    assert top / scale**4 == pytest.approx(ref, rel=1e-11, abs=err)


@pytest.mark.parametrize("c", [1e-200, 1e-120, 1e150, 1e200])
@pytest.mark.parametrize("depth", [2, 3, 5])
def test_flat_value_at_extreme_scales(c, depth):
    # sigma_max(c diag(3, 1)) = 3c; 2 L (3c)^(2 - 2/L) in logarithms (an independent route)
    p = 2.0 - 2.0 / depth
    log_ref = math.log(2 * depth) + p * (math.log(3.0) + math.log(c))
    if log_ref > math.log(sys.float_info.max):  # e.g. L = 5, c = 1e200: about 1e320
        with pytest.raises(Float64OverflowError, match="overflows float64"):
            dmf.flat_sharpness(np.diag([3.0, 1.0]) * c, depth)
        return
    ref = math.exp(log_ref)
    assert dmf.flat_sharpness(np.diag([3.0, 1.0]) * c, depth) == pytest.approx(ref, rel=1e-12)
