"""The compiled, warm-started, certified Gauss-Newton tracking (issue 13) against independent references.

References: the eigenvalues a matrix was built from (``Q diag(lambda) Q^T``), LAPACK's
``eigvalsh`` of the explicit ``S`` of eq. 57 (built here from the definitions), and the
batched LAPACK route the tracker uses without numba.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

pytest.importorskip("numba")
from dmfsharp.dynamics import numba_tracking as nt  # noqa: E402
from dmfsharp.dynamics import train as train_mod  # noqa: E402
from dmfsharp.dynamics.tracking import _compiled_route, compiled_tracking  # noqa: E402
from dmfsharp.dynamics.train import train  # noqa: E402

from .conftest import explicit_s  # noqa: E402

U = 2.0**-53

if not compiled_tracking():
    pytest.skip("the compiled tracking does not compile here", allow_module_level=True)


def _spd(lams, seed):
    """``Q diag(lams) Q^T`` with a seeded orthogonal ``Q`` (symmetrized), and ``Q``."""
    n = len(lams)
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0]
    g = (q * np.asarray(lams, float)) @ q.T
    return 0.5 * (g + g.T), q


def _top(g, v, warm=True):
    n = g.shape[0]
    v = np.array(v, dtype=float)
    val, cert = nt.top_psd(g, v, warm, np.empty((n, n)), np.empty(n), np.empty(n))
    return val, cert, v


SPECTRA = {
    "distinct": lambda n: np.linspace(1.0, 0.1, n),
    "double top": lambda n: np.r_[1.0, 1.0, np.linspace(0.6, 0.1, n - 2)],
    "quintuple top": lambda n: np.r_[np.ones(min(5, n)), np.linspace(0.5, 0.1, max(n - 5, 0))],
    "all equal": lambda n: np.full(n, 3.0),
    "gap 1e-14": lambda n: np.r_[1.0, 1.0 - 1e-14, np.linspace(0.5, 0.0, n - 2)],
    "gap 1e-8": lambda n: np.r_[1.0, 1.0 - 1e-8, np.linspace(0.5, 0.0, n - 2)],
    "gap 1e-3": lambda n: np.r_[1.0, 1.0 - 1e-3, np.linspace(0.5, 0.0, n - 2)],
    "rank one": lambda n: np.r_[2.0, np.zeros(n - 1)],
    "range 1e-12..1e12": lambda n: np.logspace(12, -12, n),
    "zero": lambda n: np.zeros(n),
}


@pytest.mark.parametrize("n", [2, 5, 12, 25])
@pytest.mark.parametrize("spectrum", list(SPECTRA))
@pytest.mark.parametrize("start", ["top", "top + 1e-6", "top + 1e-2", "second", "random", "cold"])
@pytest.mark.parametrize("scale_bits", [0, -300, 300])
def test_top_eigenvalue_certified_or_lapack(n, spectrum, start, scale_bits):
    lams = np.ldexp(np.sort(SPECTRA[spectrum](n))[::-1], scale_bits)
    g, q = _spd(lams, seed=n)
    rng = np.random.default_rng(1)
    v = {
        "top": q[:, 0],
        "top + 1e-6": q[:, 0] + 1e-6 * rng.standard_normal(n),
        "top + 1e-2": q[:, 0] + 1e-2 * rng.standard_normal(n),
        "second": q[:, 1],
        "random": rng.standard_normal(n),
        "cold": np.zeros(n),
    }[start]
    v = v / (np.linalg.norm(v) or 1.0)
    val, cert, v_out = _top(g, v, warm=start != "cold")
    lam = lams[0]
    # the matrix's own rounding (forming Q diag Q^T) and the certificate's bound
    allowed = (nt.cert_rtol(n) + 32 * n * U) * abs(lam) + 4 * n * U * np.max(np.abs(lams))
    assert abs(val - lam) <= allowed, (val, lam, cert)
    if start == "second" and lams[0] > 1.001 * lams[1]:
        assert abs(val - lams[1]) > 1e-4 * lam  # never the eigenvalue the start sat on
    if lam > 0 and n > 1:  # the returned vector is a top eigenvector (to the rounding of a cluster)
        rq = v_out @ g @ v_out
        assert abs(rq - lam) <= allowed + 1e-6 * lam * (lams[0] - lams[1] < 1e-6 * lam)


def test_cholesky_certificate_is_an_upper_bound_and_fails_below():
    rng = np.random.default_rng(3)
    for n in (3, 8, 20, 40):
        for _ in range(20):
            lams = np.sort(rng.uniform(0, 1, n))[::-1]
            g, _ = _spd(lams, seed=int(rng.integers(1 << 30)))
            a = np.empty((n, n))
            for rel in (1e-9, 1e-6, 1e-2, 1.0):
                ub = nt._cholesky_bound(g, lams[0] * (1 + rel), a)
                assert ub >= lams[0] * (1 - 8 * n * U)  # succeeded, and the bound holds
            # below lambda_1 by more than the rounding: the factorization must break down
            assert nt._cholesky_bound(g, lams[0] * (1 - 1e-9), a) == -1.0


def _factors(dims, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        scale * rng.standard_normal((dims[i + 1], dims[i])) / np.sqrt(dims[i]) for i in range(len(dims) - 1)
    ]


def _explicit_gn(ws):
    """``2 lambda_max(S)`` of the explicit ``S`` (eq. 57, ``F = I``; ``tests/conftest.py``)."""
    return 2.0 * scipy.linalg.eigvalsh(explicit_s(ws))[-1]


@pytest.mark.parametrize(
    "dims",
    [
        (1, 1, 1),
        (1, 5, 1),
        (1, 9, 4, 8, 24, 1),  # Figure 7: Theorem 4
        (3, 1, 6),
        (20, 20, 10),  # Figure 1: Corollary 6
        (20, 30, 25),  # Figure 5
        (7, 3, 9),
        (4, 8, 8, 3),  # issue 13: the dense S
        (2, 5, 1, 4, 3),
        (8, 3, 6, 8),  # d_0 d_L = 64 = CERT_MAX
    ],
)
def test_gn_block_along_a_path_against_explicit_s(dims):
    nb, steps = 2, 12
    route = _compiled_route(dims, nb)
    assert route is not None
    rng = np.random.default_rng(sum(dims))
    ws = [_factors(dims, seed=sum(dims) + b) for b in range(nb)]
    snaps = np.empty((steps, nb, sum(w.size for w in ws[0])))
    refs = np.empty((steps, nb))
    for t in range(steps):  # a GD-like path: small moves, each row warm-started from the last
        for b in range(nb):
            ws[b] = [w + 1e-3 * rng.standard_normal(w.shape) for w in ws[b]]
            snaps[t, b] = np.concatenate([w.ravel() for w in ws[b]])
            refs[t, b] = _explicit_gn(ws[b])
    active = np.ones((steps, nb), dtype=bool)
    active[5, 1] = False  # a stopped run is left alone
    out, flag = np.full((steps, nb), -1.0), np.zeros((steps, nb), dtype=np.int8)
    nt.gn_block(snaps, np.arange(steps), active, *route, out, flag)
    n = max(min(dims[0], dims[1]), min(dims[-2], dims[-1]), dims[0] * dims[-1])
    ok = active
    assert out[5, 1] == -1.0
    np.testing.assert_allclose(out[ok], refs[ok], rtol=nt.cert_rtol(n) + 64 * n * U, atol=0)
    assert set(np.unique(flag[ok])) <= {0, 1}


def test_gn_block_flags_non_finite_and_far_rows():
    dims = (4, 6, 3)
    route = _compiled_route(dims, 1)
    ws = _factors(dims, seed=1)
    good = np.concatenate([w.ravel() for w in ws])
    far = np.concatenate([np.ldexp(ws[0], 500).ravel(), np.ldexp(ws[1], -500).ravel()])
    bad = good.copy()
    bad[3] = np.nan
    inf = good.copy()
    inf[-1] = np.inf
    neg = good.copy()
    neg[0], neg[7] = -np.inf, -0.0
    negnan = good.copy()
    negnan[10] = np.copysign(np.nan, -1.0)
    tiny = np.ldexp(good, -1070)  # subnormal entries: far from float64's comfortable range
    snaps = np.stack([good, far, bad, inf, neg, negnan, tiny])[:, None, :]
    out, flag = np.zeros((7, 1)), np.zeros((7, 1), dtype=np.int8)
    nt.gn_block(snaps, np.arange(7), np.ones((7, 1), bool), *route, out, flag)
    assert flag[:, 0].tolist()[1:] == [2, 3, 3, 3, 3, 2]
    assert out[0, 0] == pytest.approx(_explicit_gn(ws), rel=1e-13)
    assert np.isnan(out[1:, 0]).all()


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize(
    "dims, init, scale, ratios",
    [
        ((4, 8, 8, 3), "gaussian", 0.3, [0.3, 0.7, 1.3]),
        ((20, 20, 10), "orthogonal", 1.0, [0.5, 0.95, 1.2]),
        ((1, 9, 4, 8, 24, 1), "gaussian", 0.5, [0.1, 0.5]),
        ((5, 5, 5, 5), "identity", 0.8, [0.5, 1.1]),
        ((3, 12, 40), "gaussian", 0.2, [0.9]),
    ],
)
def test_train_compiled_tracking_equals_lapack_route(monkeypatch, engine, dims, init, scale, ratios):
    kw = dict(init=init, init_scale=scale, eta_ratios=ratios, iterations=600, seed=2, engine=engine)
    fast = train(dims, **kw)
    monkeypatch.setattr(train_mod, "compiled_tracking", lambda: False)
    slow = train(dims, **kw)
    n = max(min(dims[0], dims[1]), min(dims[-2], dims[-1]), dims[0] * dims[-1])
    for a, b in zip(fast.runs, slow.runs, strict=True):
        assert a.status == b.status and a.iterations == b.iterations
        np.testing.assert_array_equal(np.isnan(a.gn_lambda_max), np.isnan(b.gn_lambda_max))
        ok = np.isfinite(b.gn_lambda_max)
        np.testing.assert_allclose(
            a.gn_lambda_max[ok], b.gn_lambda_max[ok], rtol=nt.cert_rtol(n) + 64 * n * U, atol=0
        )
        np.testing.assert_array_equal(a.singular_values, b.singular_values)  # the same batched code


def test_sampling_cadence_and_its_validation():
    res = train((3, 4, 2), init="gaussian", init_scale=0.5, etas=[0.01], iterations=400, seed=0,
                track_every=3, sample_every=9)  # fmt: skip
    run = res.runs[0]
    k = np.arange(401)
    np.testing.assert_array_equal(np.isfinite(run.gn_lambda_max), k % 3 == 0)
    sampled = (k % 9 == 0) | ((k < 270) & (k % 3 == 0))  # each of the first 90 tracked steps
    np.testing.assert_array_equal(np.isfinite(run.singular_values[:, 0]), sampled)
    np.testing.assert_array_equal(np.isfinite(run.balancedness[:, 0]), sampled)
    default = train((3, 4, 2), init="gaussian", init_scale=0.5, etas=[0.01], iterations=400, seed=0)
    np.testing.assert_array_equal(
        np.isfinite(default.runs[0].singular_values[:, 0]), (k % 15 == 0) | (k < 90)
    )
    with pytest.raises(ValueError, match="sample_every must be a multiple of track_every=3"):
        train((3, 4, 2), etas=[0.01], iterations=5, track_every=3, sample_every=4)
    with pytest.raises(ValueError, match="sample_every must be an integer >= 1"):
        train((3, 4, 2), etas=[0.01], iterations=5, sample_every=0)
