"""GD escape experiments: linear growth rate, statuses, final points, determinism, input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dmfsharp import FactorChain, NotAMinimumError, loss, random_minimizer
from dmfsharp.dynamics import escape_experiment, gradient_descent, start_direction

from .conftest import GD_CASES as CASES
from .conftest import loss_slack as _rounding
from .conftest import reference_lambda_max


def _dense_lambda(chain, target):
    """``(lambda_max, err)`` of the independent Hessian: autograd (err = 0), or finite
    differences without torch (err their own error)."""
    return reference_lambda_max(chain.factors, target)


def test_one_step_matches_autograd():
    torch = pytest.importorskip("torch")
    chain = random_minimizer((2, 3, 4, 2), seed=3)
    rng = np.random.default_rng(0)
    start = FactorChain([w + 0.1 * rng.standard_normal(w.shape) for w in chain.factors])
    m = chain.product
    etas = [1e-3, 2e-3]
    raw = gradient_descent(start, etas, target=m, iterations=1, reference=chain)
    ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in start.factors]
    p = ws[0]
    for w in ws[1:]:
        p = w @ p
    ((torch.tensor(m) - p) ** 2).sum().backward()
    grad = np.concatenate([w.grad.numpy().ravel() for w in ws])
    for b, eta in enumerate(etas):
        expect = start.flatten() - eta * grad
        tol = 1e-13 * np.abs(expect).max()
        np.testing.assert_allclose(raw.final[b], expect, rtol=0, atol=tol)
    assert raw.loss[0, 0] == pytest.approx(loss(start, target=m), rel=1e-13)


@pytest.mark.parametrize("mult", [0.8, 1.3])
def test_linear_growth_rate(mult):
    chain = random_minimizer(CASES["deep_matrix"], seed=1)
    lam, err = _dense_lambda(chain, chain.product)  # independent of the closed form
    wnorm = np.linalg.norm(chain.flatten())
    res = escape_experiment(chain, step_multipliers=[mult], radius=1e-7 * wnorm, iterations=60)
    run = res.runs[0]
    rho = run.distance
    rate = abs(1.0 - mult * 2.0)  # |1 - eta lambda_max| with eta = mult * 2 / lambda
    # consecutive ratios while the distance is in the linear regime and above rounding
    ok = (rho[:-1] < 1e-5) & (rho[:-1] > 1e-12) & (rho[1:] > 1e-12)
    ratios = rho[1:][ok] / rho[:-1][ok]
    assert ratios.size >= 5
    np.testing.assert_allclose(ratios[:5], rate, rtol=1e-4)
    assert abs(res.lambda_max - lam) <= 1e-10 * lam + err


@pytest.mark.parametrize("case", sorted(CASES))
def test_returns_below_and_escapes_above(case):
    chain = random_minimizer(CASES[case], seed=2)
    m = chain.product
    res = escape_experiment(chain, step_multipliers=[0.8, 1.3], radius=1e-8, iterations=3000)
    below, above = res.runs
    assert below.status == "returned" and below.escape_iteration is None
    assert below.predicted_escape_iteration is None
    assert above.status == "escaped"
    assert above.escape_iteration is not None
    # the linear theory predicts the escape within a few steps
    assert abs(above.escape_iteration - above.predicted_escape_iteration) <= 3
    # final points: independent dense-Hessian check of stability and of the loss
    for run in (below, above):
        final = run.final_factors
        expect = loss(final, target=m)
        assert run.final_loss == pytest.approx(expect, rel=1e-9, abs=_rounding(expect, m))
    assert above.stop_reason == "converged"
    lam_dense, err = _dense_lambda(above.final_factors, m)
    # the recorded value is the closed form at the final point, a minimum of its own product
    # (the point is not exactly a minimum of m: the residual term makes the gap with lam_dense)
    final = above.final_factors
    lam_own, err_own = _dense_lambda(final, final.product)
    assert above.final_lambda_max == pytest.approx(lam_own, rel=1e-10, abs=err_own)
    assert above.final_lambda_max == pytest.approx(lam_dense, rel=1e-5, abs=err)
    assert above.final_is_stable is True
    assert lam_dense <= 2.0 / above.eta * (1 + 1e-6) + err
    assert res.runs[1].peak_loss > 1e6 * res.runs[0].peak_loss  # the catapult


def test_diverged_run_stops_cleanly_others_go_on():
    chain = random_minimizer((1, 2, 3, 1), seed=0)
    res = escape_experiment(chain, step_multipliers=[0.5, 60.0], radius=1e-6, iterations=500)
    ok, bad = res.runs
    assert bad.status == "diverged" and bad.stop_reason == "diverged"
    assert bad.final_factors is None and bad.final_lambda_max is None
    assert np.all(np.isfinite(bad.normalized_loss)) and bad.iterations < 500
    assert ok.status == "returned" and ok.iterations == 500


def test_deterministic_and_seeded_random_direction():
    chain = random_minimizer((2, 3, 2), seed=5)
    kw = dict(step_multipliers=[0.9, 1.2], radius=1e-9, iterations=300, direction="random")
    a = escape_experiment(chain, seed=7, **kw)
    b = escape_experiment(chain, seed=7, **kw)
    c = escape_experiment(chain, seed=8, **kw)
    for ra, rb in zip(a.runs, b.runs, strict=False):
        assert np.array_equal(ra.normalized_loss, rb.normalized_loss)
        assert np.array_equal(ra.coords, rb.coords)
        assert ra.summary() == rb.summary()
    assert not np.array_equal(a.start.flatten(), c.start.flatten())
    assert 0 < a.start_overlap < 1


def test_start_is_at_radius_along_v1():
    chain = random_minimizer((2, 3, 2), seed=5)
    r = 1e-6
    res = escape_experiment(chain, step_multipliers=[0.5], radius=r, iterations=1)
    d = res.start.flatten() - chain.flatten()
    assert np.linalg.norm(d) == pytest.approx(r, rel=1e-8)
    u = start_direction(chain, "top")
    assert abs(d @ u) == pytest.approx(r, rel=1e-8)
    assert res.start_overlap == pytest.approx(1.0, rel=0, abs=1e-12)


def test_sharpness_tracking():
    chain = random_minimizer((2, 3, 2), seed=4)
    m = chain.product
    res = escape_experiment(
        chain, step_multipliers=[1.3], radius=1e-8, iterations=200, track_every=10, track_hessian_every=50
    )
    run = res.runs[0]
    assert run.track_iterations[0] == 0 and np.all(np.diff(run.track_iterations) == 10)
    assert run.gn_lambda_max[0] == pytest.approx(res.lambda_max, rel=1e-6)  # w_0 is r from w*
    assert run.hessian_lambda_max[0] == pytest.approx(res.lambda_max, rel=1e-6)
    # at a tracked iteration away from w*, compare with a dense Hessian at that point
    k = int(run.hessian_track_iterations[-1])
    raw = gradient_descent(res.start, [run.eta], target=m, iterations=k, reference=chain)
    point = chain.with_factors(chain.unflatten(raw.final[0]))
    lam, err = _dense_lambda(point, m)
    assert run.hessian_lambda_max[-1] == pytest.approx(lam, rel=1e-6, abs=err)
    cols = run.trace_columns()
    assert np.isnan(cols["gn_lambda_max"][1]) and not np.isnan(cols["gn_lambda_max"][10])


def test_bad_input():
    chain = random_minimizer((2, 3, 2), seed=0)
    with pytest.raises(ValueError, match="radius"):
        escape_experiment(chain, radius=0.0)
    with pytest.raises(ValueError, match="radius"):
        escape_experiment(chain, radius=-1e-9)
    with pytest.raises(ValueError, match="not both"):
        escape_experiment(chain, etas=[0.1], step_multipliers=[1.0])
    with pytest.raises(ValueError, match="step_multipliers"):
        escape_experiment(chain, step_multipliers=[1.0, -2.0])
    with pytest.raises(ValueError, match="iterations"):
        escape_experiment(chain, iterations=0)
    with pytest.raises(ValueError, match="direction"):
        escape_experiment(chain, direction="sideways")
    with pytest.raises(NotAMinimumError):
        escape_experiment(chain, target=chain.product + 1.0)
    with pytest.raises(ValueError, match="depth"):
        escape_experiment([np.ones((2, 2))])
    with pytest.raises(ValueError, match="escape threshold"):
        escape_experiment(chain, radius=1.0)


@pytest.mark.parametrize("dims", [(1, 2, 3, 1), (1, 3, 2, 4, 2, 1)])
def test_scalar_engine_matches_general_engine(dims):
    from dmfsharp.dynamics.engines import BatchedEngine, ScalarEngine
    from dmfsharp.dynamics.loop import run_loop

    chain = random_minimizer(dims, seed=1)
    rng = np.random.default_rng(0)
    start = FactorChain([w + 1e-3 * rng.standard_normal(w.shape) for w in chain.factors])
    lam, _ = _dense_lambda(chain, chain.product)
    etas = np.array([0.5, 1.3, 2.5]) * 2 / lam
    z = rng.standard_normal((2, chain.num_params))
    w0 = np.tile(start.flatten(), (etas.size, 1))
    m = chain.product
    kw = dict(
        iterations=200,
        reference=chain.flatten(),
        plane=z,
        div_limit=1e20,
        conv_limit=1e-14 * float(np.vdot(m, m)),
        escape_sq=1e-8 * float(chain.flatten() @ chain.flatten()),
    )
    a = run_loop(BatchedEngine(w0, chain.dims, m), etas, **kw)
    b = run_loop(ScalarEngine(w0, chain.dims, m), etas, **kw)
    assert list(a.stop_iteration) == list(b.stop_iteration)
    np.testing.assert_allclose(b.final, a.final, rtol=0, atol=1e-12)
    for i, t in enumerate(a.stop_iteration):
        np.testing.assert_allclose(b.loss[: t + 1, i], a.loss[: t + 1, i], rtol=1e-8, atol=1e-14)


def test_user_start_direction():
    chain = random_minimizer((2, 3, 2), seed=5)
    n = chain.num_params
    u = np.zeros(n)
    u[0] = 3.0
    res = escape_experiment(chain, step_multipliers=[0.5], radius=1e-6, iterations=1, direction=u)
    d = res.start.flatten() - chain.flatten()
    np.testing.assert_allclose(d, 1e-6 * u / 3.0, atol=1e-15)
    assert res.direction == "user"
    blocks = chain.unflatten(u)
    res2 = escape_experiment(chain, step_multipliers=[0.5], radius=1e-6, iterations=1, direction=blocks)
    assert np.array_equal(res2.start.flatten(), res.start.flatten())
    with pytest.raises(ValueError, match="zero"):
        escape_experiment(chain, direction=np.zeros(n))


@st.composite
def valid_dims(draw):
    """Dimensions satisfying eq. 17 (every hidden width >= min(d_0, d_L)), depth 2 to 4."""
    depth = draw(st.integers(2, 4))
    d0, dl = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    hidden = [draw(st.integers(min(d0, dl), 4)) for _ in range(depth - 1)]
    return (d0, *hidden, dl)


@settings(max_examples=8)
@given(dims=valid_dims(), seed=st.integers(0, 10_000), above=st.floats(1.15, 1.6))
def test_property_escape_above_return_below(dims, seed, above):
    chain = random_minimizer(dims, seed=seed)
    m = chain.product
    res = escape_experiment(chain, step_multipliers=[0.7, above], radius=1e-9, iterations=4000)
    below, up = res.runs
    assert below.status == "returned"
    assert up.status != "returned"
    event(f"above 2/lambda: {up.status}, {up.stop_reason}")
    if up.status == "escaped" and up.stop_reason == "converged":
        # GD settles only where it is stable: lambda_max of the independent Hessian <= 2 / eta
        lam, err = _dense_lambda(up.final_factors, m)
        assert lam <= 2.0 / up.eta * (1 + 1e-6) + err
        assert up.final_is_stable


def test_results_pickle_roundtrip():
    import pickle

    res = escape_experiment(
        random_minimizer((2, 3, 2), seed=0), step_multipliers=[0.9, 1.3], radius=1e-9, iterations=300
    )
    back = pickle.loads(pickle.dumps(res))
    assert back.lambda_max == res.lambda_max
    for a, b in zip(res.runs, back.runs, strict=True):
        assert a.summary() == b.summary()
        assert np.array_equal(a.coords, b.coords)
        assert np.array_equal(a.final_factors.flatten(), b.final_factors.flatten())
