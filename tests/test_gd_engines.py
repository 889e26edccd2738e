"""The two GD engines (NumPy batched matmuls, numba compiled chunks) agree; engine choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmfsharp import random_minimizer, sharpness
from dmfsharp.cli import main
from dmfsharp.dynamics import (
    escape_experiment,
    gradient_descent,
    numba_available,
    resolve_engine,
    start_direction,
)

from .conftest import GD_CASES as CASES
from .conftest import loss_slack as _loss_slack

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba (the 'fast' extra) is absent")


def _both(start, etas, **kw):
    return (
        gradient_descent(start, etas, engine="numpy", **kw),
        gradient_descent(start, etas, engine="numba", **kw),
    )


@needs_numba
@pytest.mark.parametrize("case", sorted(CASES))
def test_engines_agree_step_by_step_in_the_linear_regime(case):
    chain = random_minimizer(CASES[case], seed=2)
    m = chain.product
    lam = float(sharpness(chain))
    wnorm = np.linalg.norm(chain.flatten())
    u = start_direction(chain, "random", seed=1)  # all eigendirections, not only v_1
    start = chain.with_factors(chain.unflatten(chain.flatten() + 1e-4 * wnorm * u))
    etas = np.array([0.5, 0.9, 1.3]) * 2 / lam
    z = np.random.default_rng(0).standard_normal((2, chain.num_params))
    a, b = _both(start, etas, iterations=25, reference=chain, plane=z, escape_threshold=1.0)
    assert a.engine == "numpy" and b.engine == "numba"
    assert list(a.stop_iteration) == list(b.stop_iteration) == [25, 25, 25]
    # parameters to rounding, every trace row to rounding of its own conditioning
    np.testing.assert_allclose(b.final, a.final, rtol=0, atol=1e-13 * np.abs(a.final).max())
    np.testing.assert_allclose(b.distance_sq, a.distance_sq, rtol=1e-10, atol=0)
    assert np.all(np.abs(b.loss - a.loss) <= _loss_slack(a.loss, m) + 1e-11 * a.loss)
    coord_scale = np.abs(a.coords).max(axis=0)
    assert np.all(np.abs(b.coords - a.coords) <= 1e-10 * coord_scale)
    # still in the linear regime: the unstable run grew, the others shrank
    d = a.distance_sq[-1] / a.distance_sq[0]
    assert d[2] > 1e3 and d[0] < 1 and d[1] < 1


@needs_numba
@pytest.mark.parametrize("case", sorted(CASES))
def test_engines_give_the_same_statuses(case):
    chain = random_minimizer(CASES[case], seed=2)
    kw = dict(step_multipliers=[0.8, 1.3, 1.6], radius=1e-8, iterations=3000)
    ra = escape_experiment(chain, engine="numpy", **kw)
    rb = escape_experiment(chain, engine="numba", **kw)
    assert (ra.engine, rb.engine) == ("numpy", "numba")
    for x, y in zip(ra.runs, rb.runs, strict=True):
        assert (x.status, x.stop_reason, x.iterations, x.escape_iteration) == (
            y.status,
            y.stop_reason,
            y.iterations,
            y.escape_iteration,
        )
        assert x.predicted_escape_iteration == y.predicted_escape_iteration
        # up to the escape the traces agree to rounding (relative eps ||w*|| / rho, so
        # only where rho = ||w_k - w*|| / ||w*|| is well above the rounding floor)
        k = x.escape_iteration or x.iterations
        ok = x.distance_sq[:k] > 1e-20
        assert ok.sum() >= 5
        np.testing.assert_allclose(y.distance_sq[:k][ok], x.distance_sq[:k][ok], rtol=1e-5)
        assert x.final_is_stable == y.final_is_stable
        assert y.final_lambda_max == pytest.approx(x.final_lambda_max, rel=1e-6)
    assert [r.status for r in rb.runs] == ["returned", "escaped", "escaped"]


@needs_numba
def test_diverged_and_converged_runs_freeze_alike():
    chain = random_minimizer((1, 2, 3, 1), seed=0)
    lam = float(sharpness(chain))
    etas = np.array([0.5, 1.3, 60.0]) * 2 / lam
    start = chain.with_factors(chain.unflatten(chain.flatten() + 1e-6 * start_direction(chain, "top")))
    a, b = _both(start, etas, iterations=600, reference=chain)
    assert a.stop_reason == b.stop_reason == ("max_iterations", "converged", "diverged")
    assert list(a.stop_iteration) == list(b.stop_iteration)
    t_div = int(b.stop_iteration[2])
    assert t_div < 600
    np.testing.assert_allclose(b.loss[: t_div + 1, 2], a.loss[: t_div + 1, 2], rtol=1e-9)
    # a converged run is frozen in place: rows after its stop repeat the stop row, and its
    # final point is the point of that row (the NumPy engine adds exact zeros to it)
    t_conv = int(b.stop_iteration[1])
    for key in ("loss", "distance_sq"):
        assert np.all(getattr(b, key)[t_conv:, 1] == getattr(b, key)[t_conv, 1])
        assert np.all(getattr(a, key)[t_conv:, 1] == getattr(a, key)[t_conv, 1])
    np.testing.assert_allclose(b.final[1], a.final[1], rtol=0, atol=1e-12)
    assert np.all(np.isfinite(b.final[:2]))


@needs_numba
def test_overflow_inside_a_chunk_is_caught_at_the_check():
    # a huge step overflows within a few iterations, between two checks
    chain = random_minimizer((2, 3, 2), seed=1)
    lam = float(sharpness(chain))
    etas = np.array([0.7, 1e6]) * 2 / lam
    start = chain.with_factors(
        chain.unflatten(chain.flatten() + 1e-3 * start_direction(chain, "random", seed=0))
    )
    raw = gradient_descent(start, etas, iterations=40, reference=chain, engine="numba")
    assert raw.stop_reason[1] == "diverged" and raw.stop_reason[0] != "diverged"
    t = int(raw.stop_iteration[1])
    assert np.all(np.isfinite(raw.loss[: t + 1, 1]))
    assert not np.isfinite(raw.loss[t + 1, 1]) or raw.loss[t + 1, 1] > 1e20
    assert np.all(np.isfinite(raw.final[0]))
    ref = gradient_descent(start, etas, iterations=40, reference=chain, engine="numpy")
    assert list(ref.stop_iteration) == list(raw.stop_iteration)
    assert ref.stop_reason == raw.stop_reason


@needs_numba
def test_numba_engine_is_deterministic_and_tracks_like_numpy():
    chain = random_minimizer((2, 3, 2), seed=4)
    kw = dict(
        step_multipliers=[0.9, 1.3], radius=1e-8, iterations=120, track_every=7, direction="random", seed=3
    )
    r1 = escape_experiment(chain, engine="numba", **kw)
    r2 = escape_experiment(chain, engine="numba", **kw)
    rn = escape_experiment(chain, engine="numpy", **kw)
    for x, y, w in zip(r1.runs, r2.runs, rn.runs, strict=True):
        assert x.summary() == y.summary()
        for key in ("normalized_loss", "distance_sq", "coords", "gn_lambda_max"):
            assert np.array_equal(getattr(x, key), getattr(y, key))
        # chunks end at the tracking iterations (7 is not a multiple of the check period)
        assert np.array_equal(x.track_iterations, w.track_iterations)
        assert x.track_iterations[1] == 7
        # not tighter: past the escape (eta > 2 / lambda) the iteration amplifies the engines'
        # ~1e-13 rounding differences by |1 - eta lambda| per step; 1e-11 fails by 1e-9 here
        np.testing.assert_allclose(x.gn_lambda_max, w.gn_lambda_max, rtol=1e-8)


def test_engine_selection(monkeypatch):
    import dmfsharp.dynamics.engines as dyn

    with pytest.raises(ValueError, match="engine"):
        resolve_engine("fortran")
    assert resolve_engine("numpy") == "numpy"
    if numba_available():
        assert resolve_engine("auto") == "numba"
    monkeypatch.setattr(dyn, "numba_problem", lambda: "numba is not installed (pip install 'dmfsharp[fast]')")
    with pytest.warns(UserWarning, match="not installed"):
        assert resolve_engine("auto") == "numpy"
    with pytest.raises(ImportError, match="fast"):
        resolve_engine("numba")
    with pytest.warns(UserWarning, match="NumPy"):
        res = escape_experiment(
            random_minimizer((2, 3, 2), seed=0), step_multipliers=[0.9], radius=1e-9, iterations=20
        )
    assert res.engine == "numpy"


def test_auto_falls_back_when_numba_cannot_cache(monkeypatch):
    """A read-only install: numba's ``cache=True`` raises "cannot cache function" at import."""
    pytest.importorskip("numba")
    import sys
    import types

    import dmfsharp.dynamics.engines as dyn

    broken = types.ModuleType("dmfsharp.dynamics.numba_kernel")

    def fail(*args, **kwargs):
        raise RuntimeError("cannot cache function 'advance': no locator available for file")

    broken.make_buffers = fail
    broken.advance = fail
    monkeypatch.setitem(sys.modules, "dmfsharp.dynamics.numba_kernel", broken)
    monkeypatch.setattr(sys.modules["dmfsharp.dynamics"], "numba_kernel", broken, raising=False)
    dyn.numba_problem.cache_clear()
    try:
        assert not dyn.numba_available()
        with pytest.warns(UserWarning, match="cannot cache"):
            assert resolve_engine("auto") == "numpy"
        with pytest.raises(ImportError, match="cannot cache"):
            resolve_engine("numba")
    finally:
        dyn.numba_problem.cache_clear()


def test_cli_records_the_engine(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    rc = main(
        [
            "escape",
            "--dims",
            "2,3,2",
            "--iterations",
            "30",
            "--grid",
            "5",
            "--no-figures",
            "--engine",
            "numpy",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "numpy" and summary["config"]["engine"] == "numpy"
    import dmfsharp.dynamics.engines as dyn

    monkeypatch.setattr(dyn, "numba_problem", lambda: "numba is not installed")
    rc = main(
        [
            "escape",
            "--dims",
            "2,3,2",
            "--iterations",
            "30",
            "--no-figures",
            "--engine",
            "numba",
            "--out",
            str(tmp_path / "other"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "numba" in err and "Traceback" not in err
    assert not (tmp_path / "other").exists()
