"""Weight decay (issue 15): the scalar problem, the threshold, minimizers, exact Hessians.

References are independent of the code under test: a dense-grid + bounded-refinement brute
force for the scalar problem, PyTorch autograd for gradients and Hessians of ``L_mu``, a
plain NumPy gradient descent with weight decay, and ``torch.optim.SGD(weight_decay=)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from dmfsharp import (
    NotAMinimumError,
    WeightDecayTieWarning,
    gradient,
    hessian_spectrum,
    hessian_trace,
    hessian_vector_product,
    local_minimum_limit,
    loss,
    make_objective,
    regularized_minimizer,
    regularized_minimum_spectrum,
    scalar_minimizer,
    scalar_threshold,
    sharpness,
    weight_decay_threshold,
)
from dmfsharp.errors import FactorError
from dmfsharp.minimum import stationarity
from dmfsharp.regularized import regularized_scalar_spectrum, scalar_critical_points

EPS = np.finfo(float).eps


# ----------------------------------------------------------------- independent references


def f_scalar(s, sigma, L, mu):
    return (sigma - s**L) ** 2 + mu * L * s**2


def brute_scalar(sigma, L, mu, n=4001):
    """Global minimizer of f: every local minimum of a dense grid, refined by a bounded search."""
    hi = 1.5 * max(sigma, 1.0) ** (1.0 / L) + 1.0
    grid = np.linspace(0.0, hi, n)
    vals = f_scalar(grid, sigma, L, mu)
    inner = np.flatnonzero((vals[1:-1] <= vals[:-2]) & (vals[1:-1] <= vals[2:])) + 1
    cands = [(f_scalar(0.0, sigma, L, mu), 0.0)]
    for i in inner:
        res = minimize_scalar(
            f_scalar,
            bounds=(grid[i - 1], grid[i + 1]),
            args=(sigma, L, mu),
            method="bounded",
            options={"xatol": 1e-14},
        )
        cands += [(vals[i], grid[i]), (res.fun, res.x)]
    best = min(cands)
    return best[1], best[0]


def torch_loss_mu(shapes, m, mu):
    from .autodiff_reference import data_loss_fn

    base = data_loss_fn(shapes, M=m)
    return lambda v: base(v) + mu * (v**2).sum()


def autograd(chain, m, mu):
    """(gradient, dense Hessian) of L_mu by torch autograd, parameters as FactorChain.flatten."""
    torch = pytest.importorskip("torch")
    from .autodiff_reference import flat

    f = torch_loss_mu([w.shape for w in chain.factors], m, mu)
    v = flat(chain.factors).requires_grad_(True)
    f(v).backward()
    h = torch.autograd.functional.hessian(f, flat(chain.factors)).numpy()
    return v.grad.numpy(), 0.5 * (h + h.T)


def numpy_gd(m, dims, mu, *, seed, steps=20000, lr=None, init_scale=0.5):
    """Plain GD on L_mu written from scratch (no dmfsharp)."""
    rng = np.random.default_rng(seed)
    ws = [init_scale * rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    lr = lr if lr is not None else 0.2 / (len(ws) * max(1.0, np.linalg.norm(m, 2)) ** 2)
    for _ in range(steps):
        pre = [np.eye(dims[0])]
        for w in ws[:-1]:
            pre.append(w @ pre[-1])
        r = m - ws[-1] @ pre[-1]
        c = -2.0 * r
        grads = [None] * len(ws)
        for k in range(len(ws) - 1, -1, -1):
            grads[k] = c @ pre[k].T + 2.0 * mu * ws[k]
            c = ws[k].T @ c
        ws = [w - lr * g for w, g in zip(ws, grads)]
    p = ws[0]
    for w in ws[1:]:
        p = w @ p
    return ws, float(np.sum((m - p) ** 2) + mu * sum(np.sum(w**2) for w in ws))


# ----------------------------------------------------------------- the scalar problem

DEPTHS = (2, 3, 4, 5, 7)
SIGMAS = (0.0, 0.3, 1.0, 2.5, 10.0)
FRACTIONS = (0.0, 0.1, 0.5, 0.9, 0.97, 1.03, 1.5, 3.0)  # mu / mu*(sigma)


@pytest.mark.parametrize("L", DEPTHS)
def test_scalar_minimizer_matches_brute_force(L):
    for sigma in SIGMAS:
        for frac in FRACTIONS:
            mu = frac * scalar_threshold(sigma, L) if sigma > 0 else frac
            s = scalar_minimizer(sigma, L, weight_decay=mu)
            sb, fb = brute_scalar(sigma, L, mu)
            fs = f_scalar(s, sigma, L, mu)
            scale = max(sigma**2, 1.0)
            assert fs <= fb + 1e-12 * scale, (sigma, mu, L, s, sb)
            assert abs(s - sb) <= 1e-5 * max(1.0, sigma ** (1 / L)), (sigma, mu, L, s, sb)


@settings(max_examples=60)
@given(
    sigma=st.one_of(st.just(0.0), st.floats(1e-6, 50.0)),
    frac=st.floats(0.0, 3.0),
    L=st.integers(2, 9),
)
def test_scalar_minimizer_property(sigma, frac, L):
    mu = frac * scalar_threshold(sigma, L) if sigma > 0 else frac
    assume(abs(frac - 1.0) > 1e-9)  # off the tie, where the minimizer is unique
    s = scalar_minimizer(sigma, L, weight_decay=mu)
    sb, fb = brute_scalar(sigma, L, mu)
    assert f_scalar(s, sigma, L, mu) <= fb + 1e-12 * max(sigma**2, 1.0)
    assert (s == 0.0) == (sigma == 0 or frac > 1.0)


@pytest.mark.parametrize("L", DEPTHS)
def test_critical_points_are_all_the_sign_changes(L):
    for sigma in (0.3, 1.0, 10.0):
        for frac in (0.0, 0.2, 0.8, 1.0, 1.1, 1.2, 2.0):
            mu = frac * scalar_threshold(sigma, L)
            roots = scalar_critical_points(sigma, L, weight_decay=mu)
            assert roots[0] == 0.0 and list(roots) == sorted(roots)
            for r in roots:  # f'(r) = 2 L r (r^{L-2}(r^L - sigma) + mu) = 0
                assert abs(r ** (L - 2) * (r**L - sigma) + mu) * r <= 1e-12 * max(sigma**2, 1.0)
            if L == 2 and frac == 1.0:
                continue  # the root merges with 0: a grid cannot resolve it
            # independent count: sign changes of f'(s)/s on a fine grid over (0, 2 sigma^(1/L))
            grid = np.linspace(1e-9, 2 * sigma ** (1 / L), 200001)
            g = grid ** (L - 2) * (grid**L - sigma) + mu
            changes = int(np.sum(np.sign(g[1:]) != np.sign(g[:-1])))
            assert len(roots) - 1 == changes, (sigma, frac, roots)


@pytest.mark.parametrize("L", (3, 4, 6))
def test_threshold_is_where_brute_force_collapses(L):
    for sigma in (0.5, 1.0, 7.0):
        lo, hi = 0.0, 10.0 * max(sigma, 1.0) ** 2
        for _ in range(60):  # bisection on mu of "brute-force minimizer is nonzero"
            mid = 0.5 * (lo + hi)
            s, fb = brute_scalar(sigma, L, mid)
            lo, hi = (mid, hi) if fb < f_scalar(0.0, sigma, L, mid) - 1e-13 * sigma**2 else (lo, mid)
        assert scalar_threshold(sigma, L) == pytest.approx(lo, rel=1e-6)


@pytest.mark.parametrize("L", (3, 4, 5, 8))
def test_tie_warns_and_both_values_agree(L):
    sigma = 2.7
    mu = scalar_threshold(sigma, L)
    with pytest.warns(WeightDecayTieWarning):
        s = scalar_minimizer(sigma, L, weight_decay=mu)
    assert s > 0
    assert f_scalar(s, sigma, L, mu) == pytest.approx(sigma**2, rel=1e-12)
    # p = s^L = (L - 2) sigma / (L - 1) at the tie (the derivation's closed form)
    assert s**L == pytest.approx((L - 2) * sigma / (L - 1), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scalar_minimizer(sigma, L, weight_decay=mu * (1 + 1e-9)) == 0.0
        assert scalar_minimizer(sigma, L, weight_decay=mu * (1 - 1e-9)) > 0


def test_depth_two_is_soft_thresholding_without_a_tie():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sigma, mu in [(4.0, 3.0), (4.0, 4.0), (4.0, 5.0), (1.0, 0.0)]:
            assert scalar_minimizer(sigma, 2, weight_decay=mu) ** 2 == pytest.approx(max(sigma - mu, 0.0))


@pytest.mark.parametrize(
    "call",
    [
        lambda: scalar_minimizer(-1.0, 3, weight_decay=0.1),
        lambda: scalar_minimizer(1.0, 1, weight_decay=0.1),
        lambda: scalar_minimizer(1.0, 3, weight_decay=-0.1),
        lambda: scalar_minimizer(1.0, 3, weight_decay=float("nan")),
        lambda: scalar_threshold(1.0, 2.5),
        lambda: weight_decay_threshold(np.ones((2, 2, 2)), 3),
        lambda: regularized_minimizer(np.eye(2), (2, 2, 3), weight_decay=0.1),
        lambda: regularized_minimizer(np.eye(2), (2, 0, 2), weight_decay=0.1),
        lambda: regularized_minimizer(np.eye(2), (2, 2), weight_decay=0.1),
        lambda: regularized_minimizer([[np.inf]], (1, 1, 1), weight_decay=0.1),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_threshold_uses_sigma_max():
    m = np.array([[3.0, 0.0], [4.0, 0.0]])  # sigma_max = 5
    assert weight_decay_threshold(m, 2) == pytest.approx(5.0, rel=1e-14)
    assert weight_decay_threshold(m, 4) == pytest.approx(scalar_threshold(5.0, 4), rel=1e-14)
    # L = 3: mu* = (sigma/2)^(4/3); L = 4: 2^(1/2) sigma^(3/2) / 3^(3/2)
    assert scalar_threshold(5.0, 3) == pytest.approx(2.5 ** (4 / 3), rel=1e-14)
    assert scalar_threshold(5.0, 4) == pytest.approx(np.sqrt(2) * 5**1.5 / 3**1.5, rel=1e-14)


# ----------------------------------------------------------------- matrix minimizers

CASES = [  # (dims, target seed, mu as a fraction of the threshold)
    ((3, 4, 2), 0, 0.3),
    ((2, 3, 3, 2), 1, 0.5),
    ((3, 3, 3, 3, 2), 2, 0.7),
    ((1, 3, 2, 1), 3, 0.6),
    ((4, 2, 3), 4, 0.2),  # narrow hidden width: rank capped at 2
    ((2, 2, 2, 2), 5, 0.0),
]


def _target(dims, seed):
    return np.random.default_rng(seed).standard_normal((dims[-1], dims[0]))


@pytest.mark.parametrize(("dims", "tseed", "frac"), CASES)
def test_minimizer_is_critical_by_autograd_and_matches_module_derivatives(dims, tseed, frac):
    m = _target(dims, tseed)
    mu = frac * weight_decay_threshold(m, len(dims) - 1)
    chain = regularized_minimizer(m, dims, weight_decay=mu, seed=7)
    g, h = autograd(chain, m, mu)
    scale = max(1.0, np.linalg.norm(m)) ** 2
    assert np.linalg.norm(g) <= 1e-12 * scale * chain.num_params
    mine = np.concatenate([x.ravel() for x in gradient(chain, target=m, weight_decay=mu)])
    np.testing.assert_allclose(mine, g, atol=1e-12 * scale)
    v = np.random.default_rng(1).standard_normal(chain.num_params)
    hv = hessian_vector_product(chain, chain.unflatten(v), target=m, weight_decay=mu)
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in hv]), h @ v, atol=1e-11 * scale * 10)
    assert loss(chain, target=m, weight_decay=mu) == pytest.approx(
        float(torch_loss_mu([w.shape for w in chain], m, mu)(_flat(chain))), rel=1e-13
    )


def _flat(chain):
    from .autodiff_reference import flat

    return flat(chain.factors)


@pytest.mark.slow
@pytest.mark.parametrize(("dims", "tseed", "frac"), CASES[:4])
def test_gd_with_weight_decay_never_beats_the_minimizer(dims, tseed, frac):
    m = _target(dims, tseed)
    mu = max(frac, 0.1) * weight_decay_threshold(m, len(dims) - 1)
    best = loss(regularized_minimizer(m, dims, weight_decay=mu), target=m, weight_decay=mu)
    for seed in range(8):
        _, value = numpy_gd(m, dims, mu, seed=seed, steps=6000)
        assert value >= best - 1e-10 * max(1.0, best), (seed, value, best)


@pytest.mark.parametrize(("dims", "tseed", "frac"), CASES[:5])
def test_layer_norms_and_value_agree_across_minimizers(dims, tseed, frac):
    m = _target(dims, tseed)
    mu = frac * weight_decay_threshold(m, len(dims) - 1)
    chains = [regularized_minimizer(m, dims, weight_decay=mu, seed=s) for s in (None, 1, 2, 3)]
    norms = np.array([[np.linalg.norm(w) for w in c] for c in chains])
    np.testing.assert_allclose(norms, norms[:1].repeat(len(chains), 0), rtol=1e-13)
    np.testing.assert_allclose(norms[0], norms[0][0], rtol=1e-13)  # balanced: equal across layers
    vals = [loss(c, target=m, weight_decay=mu) for c in chains]
    np.testing.assert_allclose(vals, vals[0], rtol=1e-13)
    prods = [c.product for c in chains]
    for p in prods[1:]:  # the end-to-end minimizer is unique
        np.testing.assert_allclose(p, prods[0], atol=1e-13 * np.linalg.norm(m))


def test_above_threshold_the_minimizer_is_zero():
    for dims in [(3, 4, 2), (2, 3, 3, 2), (1, 2, 2, 2, 1)]:
        m = _target(dims, 11)
        mu = weight_decay_threshold(m, len(dims) - 1) * (1 + 1e-6)
        chain = regularized_minimizer(m, dims, weight_decay=mu, seed=0)
        assert all(not np.any(w) for w in chain)
        below = regularized_minimizer(m, dims, weight_decay=mu / (1 + 2e-6), seed=0)
        assert np.linalg.norm(below.product) > 0


def test_minimizer_product_is_the_svd_with_scalar_values():
    m = np.diag([5.0, 2.0, 0.5])[:, :2]  # 3 x 2, sigma = (5, 2)
    L, mu = 3, 0.8
    chain = regularized_minimizer(m, (2, 4, 4, 3), weight_decay=mu, seed=3)
    sv = np.linalg.svd(chain.product, compute_uv=False)
    want = [brute_scalar(x, L, mu)[0] ** L for x in (5.0, 2.0)]
    np.testing.assert_allclose(sv, want, rtol=1e-5)


# ----------------------------------------------------------------- exact Hessian at minima

HESS_CASES = [  # (dims, target seed, fraction of the threshold)
    ((1, 1), 0, 0.5),
    ((1, 3, 1), 1, 0.4),
    ((1, 2, 3, 1), 2, 0.8),
    ((1, 2, 2, 2, 1), 3, 0.95),
    ((3, 4, 2), 4, 0.3),
    ((2, 3, 3, 2), 5, 0.6),
    ((3, 3, 3, 3, 2), 6, 0.5),
    ((2, 2, 2), 7, 1.5),  # collapsed (zero) minimizer, L = 2
    ((2, 3, 2, 2), 8, 2.0),  # collapsed, L = 3
]


def _dims(d):
    return d if len(d) > 2 else (1, 1, 1)


@pytest.mark.parametrize(("dims", "tseed", "frac"), HESS_CASES)
def test_regularized_sharpness_matches_autograd(dims, tseed, frac):
    dims = _dims(dims)
    m = _target(dims, tseed)
    mu = frac * weight_decay_threshold(m, len(dims) - 1)
    chain = regularized_minimizer(m, dims, weight_decay=mu, seed=tseed)
    _, h = autograd(chain, m, mu)
    ev = np.linalg.eigvalsh(h)
    tol = 1e-10 * max(1.0, abs(ev[-1]))
    for method in ("auto", "dense", "lanczos"):
        if method == "lanczos" and chain.num_params < 3:
            continue
        assert abs(sharpness(chain, target=m, weight_decay=mu, method=method) - ev[-1]) <= tol
    if dims[0] == dims[-1] == 1 and mu > 0:
        spec = regularized_scalar_spectrum(chain, target=m, weight_decay=mu)
        np.testing.assert_allclose(spec, ev, atol=tol)
        assert abs(sharpness(chain, target=m, weight_decay=mu, method="scalar") - ev[-1]) <= tol


def test_lanczos_route_on_a_larger_problem_matches_dense():
    dims = (6, 8, 8, 8, 5)  # N = 216
    m = _target(dims, 21)
    mu = 0.4 * weight_decay_threshold(m, 4)
    chain = regularized_minimizer(m, dims, weight_decay=mu, seed=2)
    a = sharpness(chain, target=m, weight_decay=mu, method="lanczos")
    b = sharpness(chain, target=m, weight_decay=mu, method="dense")
    assert abs(a - b) <= 1e-11 * abs(b)


def test_non_critical_points_are_refused():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((2, 2))
    chain = regularized_minimizer(m, (2, 3, 2), weight_decay=0.3)
    moved = [w + 1e-4 * rng.standard_normal(w.shape) for w in chain]
    with pytest.raises(NotAMinimumError):
        sharpness(moved, target=m, weight_decay=0.3)
    with pytest.raises(NotAMinimumError):  # a minimizer of a different weight decay
        sharpness(chain, target=m, weight_decay=0.35)
    norm, scale = stationarity(make_objective(chain, m, weight_decay=0.3))
    assert norm <= 1e-14 * scale
    with pytest.raises(ValueError):
        sharpness(chain, target=m, weight_decay=0.3, method="scalar")
    with pytest.raises(FactorError):
        sharpness(chain, target=np.ones((3, 3)), weight_decay=0.3)


# ----------------------------------------------------------------- the literature's claims


@pytest.mark.parametrize("dims", [(1, 3, 1), (1, 2, 3, 1), (1, 3, 2, 2, 1)])
def test_scalar_factorization_spectrum_is_the_same_at_every_minimizer(dims):
    m = np.array([[1.7]])
    mu = 0.6 * weight_decay_threshold(m, len(dims) - 1)
    specs = []
    for seed in (None, 1, 2, 3):
        chain = regularized_minimizer(m, dims, weight_decay=mu, seed=seed)
        chain = type(chain)([chain[0] * -1, chain[1] * -1, *chain[2:]])  # sign flips: also minima
        specs.append(np.linalg.eigvalsh(autograd(chain, m, mu)[1]))
    for s in specs[1:]:
        np.testing.assert_allclose(s, specs[0], atol=1e-10 * specs[0][-1])


@pytest.mark.parametrize(("dims", "tseed", "frac"), CASES[:4])
def test_trace_formula_and_lower_bound(dims, tseed, frac):
    m = _target(dims, tseed)
    L = len(dims) - 1
    mu = frac * weight_decay_threshold(m, L)
    for seed in (None, 5):
        chain = regularized_minimizer(m, dims, weight_decay=mu, seed=seed)
        tr = np.trace(autograd(chain, m, mu)[1])
        # the residual term has zero diagonal (P is multilinear in the factors), so
        # tr = 2 sum_k ||A_k||^2 ||B_k||^2 + 2 mu N; Cauchy-Schwarz gives the lower bound
        # 2 L sum_i p_i^(2 - 2/L) + 2 mu N with p_i the singular values of P
        a = [np.linalg.norm(x) ** 2 for x in chain.suffix]
        b = [np.linalg.norm(x) ** 2 for x in chain.prefix]
        assert tr == pytest.approx(2 * np.dot(a, b) + 2 * mu * chain.num_params, rel=1e-12)
        p = np.linalg.svd(chain.product, compute_uv=False)
        assert tr >= 2 * L * np.sum(p ** (2 - 2 / L)) + 2 * mu * chain.num_params - 1e-10 * tr


@pytest.mark.slow
@pytest.mark.parametrize("L", (2, 3, 4))
def test_gd_collapse_around_the_threshold(L):
    """GD from many starts: collapse is certain only above the local-minimum limit.

    Measured (m = diag(2, 0.7), widths 3, 6 starts, lr 0.02, 8000 steps): for L = 2 every run
    ends at the global minimizer on both sides of mu*; for L = 3, 4 some runs end at 0 below
    mu* (0 is a local minimum, Hessian 2 mu I) and some at the nonzero local minimum above it.
    """
    dims = (2,) + (3,) * (L - 1) + (2,)
    m = np.diag([2.0, 0.7])
    mu_star, mu_loc = weight_decay_threshold(m, L), local_minimum_limit(m, L)
    assert mu_loc >= mu_star * (1 - 1e-15) and (L > 2 or mu_loc == mu_star)
    for mu in (0.8 * mu_star, 0.95 * mu_star, 1.05 * mu_star, 1.05 * mu_loc):
        best = loss(regularized_minimizer(m, dims, weight_decay=mu), target=m, weight_decay=mu)
        runs = [numpy_gd(m, dims, mu, seed=s, steps=8000, lr=0.02) for s in range(6)]
        values = np.array([v for _, v in runs])
        assert np.all(values >= best - 1e-9)
        collapsed = [max(np.abs(w).max() for w in ws) < 1e-6 for ws, _ in runs]
        if mu > mu_loc:  # 0 is the only critical point
            assert all(collapsed)
        if mu > mu_star:  # 0 is the global minimizer
            assert best == pytest.approx(np.sum(m**2), rel=1e-14)
        if L == 2:  # no spurious local minima: every run reaches the global minimum
            np.testing.assert_allclose(values, best, rtol=1e-8)
        elif mu < mu_star:
            assert np.any(np.isclose(values, best, rtol=1e-8))


def test_torch_sgd_weight_decay_is_twice_mu():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    dims, mu, lr = (3, 4, 2), 0.37, 0.05
    m = rng.standard_normal((2, 3))
    ws = [rng.standard_normal((dims[i], dims[i - 1])) for i in (1, 2)]
    params = [torch.tensor(w, requires_grad=True) for w in ws]
    opt = torch.optim.SGD(params, lr=lr, weight_decay=2 * mu)
    opt.zero_grad()
    ((torch.tensor(m) - params[1] @ params[0]) ** 2).sum().backward()
    opt.step()
    g = gradient(ws, target=m, weight_decay=mu)
    for p, w, gk in zip(params, ws, g):
        np.testing.assert_allclose(p.detach().numpy(), w - lr * gk, rtol=1e-14, atol=1e-14)


# ----------------------------------------------------------------- block-diagonal spectrum

SPEC_CASES = [
    ((1, 2, 1), 0.5),
    ((3, 4, 2), 0.3),
    ((2, 3, 3, 2), 0.6),
    ((3, 3, 3, 3, 2), 0.5),
    ((4, 2, 3), 0.2),  # narrow hidden layer: rank capped, unfitted sigma in the residual
    ((2, 5, 1, 3), 0.4),  # width-1 bottleneck
    ((2, 2, 2), 1.5),  # collapsed, L = 2
    ((2, 3, 2, 2), 2.0),  # collapsed, L = 3
    ((3, 3, 3), 0.0),  # no weight decay: the flattest minimizer
]


@pytest.mark.parametrize(("dims", "frac"), SPEC_CASES)
def test_block_spectrum_matches_autograd_at_every_minimizer(dims, frac):
    m = _target(dims, 3)
    mu = frac * weight_decay_threshold(m, len(dims) - 1)
    spec = regularized_minimum_spectrum(m, dims, weight_decay=mu)
    seeds = (None, 1) if mu > 0 else (None,)  # mu = 0: only the balanced minimizer has it
    for seed in seeds:
        chain = regularized_minimizer(m, dims, weight_decay=mu, seed=seed)
        ev = np.linalg.eigvalsh(autograd(chain, m, mu)[1])
        np.testing.assert_allclose(spec, ev, atol=1e-12 * max(1.0, ev[-1]))


def test_tie_set_minimizers_differ_in_layer_norms():
    L = 3
    mu = 0.5
    sigma_tie = (mu / scalar_threshold(1.0, L)) ** (1 / (2 - 2 / L))  # mu*(sigma_tie) = mu
    m = np.diag([3.0, sigma_tie])
    with pytest.warns(WeightDecayTieWarning):
        nonzero = regularized_minimizer(m, (2, 2, 2, 2), weight_decay=mu)
    s = np.linalg.svd(nonzero.product, compute_uv=False)
    assert s[1] > 0
    # zeroing the tied direction gives another global minimizer with smaller layer norms
    collapsed = regularized_minimizer(np.diag([3.0, 0.0]), (2, 2, 2, 2), weight_decay=mu)
    a = loss(nonzero, target=m, weight_decay=mu)
    b = loss(collapsed, target=m, weight_decay=mu)
    assert a == pytest.approx(b, rel=1e-12)
    assert np.linalg.norm(collapsed[0]) < np.linalg.norm(nonzero[0]) - 0.1


def test_trace_formula_holds_at_any_point():
    # the residual term's diagonal is zero at every point (P is affine in each single entry)
    rng = np.random.default_rng(4)
    dims, mu = (2, 3, 4, 2), 0.3
    ws = [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, 4)]
    m = rng.standard_normal((2, 2))
    chain = regularized_minimizer(m, dims, weight_decay=mu).with_factors(ws)
    tr = np.trace(autograd(chain, m, mu)[1])
    a = [np.linalg.norm(x) ** 2 for x in chain.suffix]
    b = [np.linalg.norm(x) ** 2 for x in chain.prefix]
    assert tr == pytest.approx(2 * np.dot(a, b) + 2 * mu * chain.num_params, rel=1e-12)


# ----------------------------------------------------------------- the public interface (issue 15)


def test_public_spectrum_and_trace_at_a_minimizer_and_at_a_saddle():
    m = np.diag([3.0, 1.0])
    dims, mu = (2, 3, 2, 2), 0.2
    chain = regularized_minimizer(m, dims, weight_decay=mu, seed=5)
    for point in (chain, chain.with_factors([w * 0 for w in chain.factors])):  # W = 0: a critical point
        h = autograd(point, m, mu)[1]
        ev = np.linalg.eigvalsh(h)[::-1]
        tol = 64 * EPS * max(1.0, ev[0]) * point.num_params
        np.testing.assert_allclose(hessian_spectrum(point, target=m, weight_decay=mu), ev, atol=tol)
        assert hessian_spectrum(point, target=m, weight_decay=mu, k=2) == pytest.approx(ev[:2], abs=tol)
        assert hessian_trace(point, target=m, weight_decay=mu) == pytest.approx(np.trace(h), rel=1e-12)
        assert sharpness(point, target=m, weight_decay=mu) == pytest.approx(ev[0], abs=tol)


def test_covariance_scale_uses_mu_over_c():
    # c ||T - P||^2 + mu sum ||W||^2 = c (||T - P||^2 + (mu / c) sum ||W||^2): same minimizers as mu / c
    m = np.array([[2.0, 0.5], [0.0, 1.0]])
    dims, mu, c = (2, 2, 3, 2), 0.15, 0.5
    chain = regularized_minimizer(m, dims, weight_decay=mu / c, seed=2)
    kw = dict(target=m, covariance=np.eye(2), normalization="half_mean", weight_decay=mu)
    g = np.concatenate([x.ravel() for x in gradient(chain, **kw)])
    assert np.linalg.norm(g) <= 1e3 * EPS * max(1.0, np.linalg.norm(m)) ** 2
    h = c * autograd(chain, m, mu / c)[1]  # the Hessian of c (||T - P||^2 + (mu / c) ||w||^2)
    lam = np.linalg.eigvalsh(h)[-1]
    assert abs(sharpness(chain, **kw) - lam) <= 1e-10 * max(1.0, lam)
    assert loss(chain, **kw) == pytest.approx(c * loss(chain, target=m, weight_decay=mu / c), rel=1e-13)


def test_bad_weight_decay_is_refused_everywhere():
    w = [np.eye(2), np.eye(2)]
    for call in (loss, gradient, sharpness, hessian_trace):
        with pytest.raises(ValueError, match="weight_decay"):
            call(w, target=np.eye(2), weight_decay=-1.0)
    with pytest.raises(ValueError, match="method"):
        sharpness(w, target=np.eye(2), weight_decay=0.1, method="theorem4")


@pytest.mark.parametrize(
    ("dims", "engine"), [((3, 4, 2), "numpy"), ((1, 2, 3, 1), "numpy"), ((2, 3, 2, 2), "numba")]
)
def test_gd_engines_follow_torch_sgd_with_weight_decay(dims, engine):
    torch = pytest.importorskip("torch")
    if engine == "numba":
        pytest.importorskip("numba")
    from dmfsharp import gradient_descent

    rng = np.random.default_rng(11)
    mu, lr, steps = 0.23, 0.02, 40
    m = rng.standard_normal((dims[-1], dims[0]))
    ws = [0.7 * rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    params = [torch.tensor(w, requires_grad=True) for w in ws]
    opt = torch.optim.SGD(params, lr=lr, weight_decay=2 * mu)  # PyTorch adds wd * W
    for _ in range(steps):
        opt.zero_grad()
        p = params[0]
        for w in params[1:]:
            p = w @ p
        ((torch.tensor(m) - p) ** 2).sum().backward()
        opt.step()
    ref = np.concatenate([p.detach().numpy().ravel() for p in params])
    tr = gradient_descent(ws, [lr], target=m, iterations=steps, engine=engine, weight_decay=mu)
    np.testing.assert_allclose(tr.final[0], ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))


def test_escape_at_a_regularized_minimum_uses_the_sharpness_of_l_mu():
    from dmfsharp import escape_experiment

    m, mu = np.diag([3.0, 1.0]), 0.3
    chain = regularized_minimizer(m, (2, 3, 3, 2), weight_decay=mu, seed=0)
    lam = np.linalg.eigvalsh(autograd(chain, m, mu)[1])[-1]
    res = escape_experiment(
        chain, target=m, weight_decay=mu, step_multipliers=(0.9, 1.1), iterations=400, engine="numpy"
    )
    assert abs(res.lambda_max - lam) <= 1e-10 * lam
    stay, go = res.runs
    assert (stay.status, go.status) == ("returned", "escaped")
    assert abs(go.escape_iteration - go.predicted_escape_iteration) <= 3
    assert stay.final_is_stable and abs(stay.final_lambda_max - lam) <= 1e-10 * lam
    with pytest.raises(NotAMinimumError):
        escape_experiment(chain, target=m, weight_decay=2 * mu, iterations=10, engine="numpy")


def test_train_with_weight_decay_lands_on_the_regularized_minimizer():
    from dmfsharp import train

    m, mu, dims = np.diag([2.0, 1.0]), 0.1, (2, 3, 2)
    res = train(
        dims, target=m, init_scale=0.5, etas=(0.05,), iterations=1500, weight_decay=mu, engine="numpy"
    )
    spec = regularized_minimum_spectrum(m, dims, weight_decay=mu)
    assert res.eta_crit == pytest.approx(2.0 / spec[-1], rel=1e-12)
    run = res.runs[0]
    assert run.status == "converged"
    best = loss(regularized_minimizer(m, dims, weight_decay=mu), target=m, weight_decay=mu)
    assert loss(run.final_factors, target=m, weight_decay=mu) == pytest.approx(best, rel=1e-9)
    h = autograd(run.final_factors, m, mu)[1]
    assert abs(run.final_lambda_max - np.linalg.eigvalsh(h)[-1]) <= 1e-9 * spec[-1]


def test_cli_weight_decay_options(tmp_path, capsys):
    import json

    from dmfsharp.cli import main

    args = ["escape", "--preset", "wd-escape", "--iterations", "120", "--no-figures", "--engine", "numpy"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["weight_decay"] == 0.05 and summary["runs"][1]["status"] == "escaped"
    m = np.asarray(np.load(tmp_path / "e" / "minimum.npz")["M"])
    chain = regularized_minimizer(m, (2, 3, 3, 2), weight_decay=0.05, seed=0)
    assert summary["lambda_max"] == pytest.approx(
        np.linalg.eigvalsh(autograd(chain, m, 0.05)[1])[-1], rel=1e-10
    )
    assert main(["train", "--dims", "2,3,2", "--weight-decay", "0.1", "--etas", "0.05", "--iterations", "20",
                 "--no-figures", "--engine", "numpy", "--out", str(tmp_path / "t")]) == 0  # fmt: skip
    assert main(["train", "--dims", "2,3,2", "--weight-decay", "-1", "--out", str(tmp_path / "u")]) == 2
    assert "--weight-decay" in capsys.readouterr().err
