"""Training from an initialization (issue 13): tracking against independent references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmfsharp.cli import main
from dmfsharp.dynamics import regimes
from dmfsharp.dynamics.train import train

DIAG = np.diag([2.0, 1.5, 1.0, 0.5, 0.2])


def _top_eig(a):
    return float(np.linalg.eigvalsh(0.5 * (a + a.T))[-1])


@pytest.mark.parametrize("k", [0, 3, 25])
def test_tracked_gauss_newton_matches_autograd(k):
    ad = pytest.importorskip("tests.autodiff_reference")
    res = train(
        (3, 4, 5, 2), init="gaussian", init_scale=0.6, etas=[0.01], iterations=k, seed=1, engine="numpy"
    )
    run = res.runs[0]
    assert run.iterations == k and run.final_factors is not None
    ref = _top_eig(ad.gauss_newton(run.final_factors.factors))
    assert run.gn_lambda_max[k] == pytest.approx(ref, rel=1e-10)


def test_tracked_sharpness_with_data_matches_autograd():
    ad = pytest.importorskip("tests.autodiff_reference")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 7)), rng.standard_normal((2, 7))
    res = train(
        (3, 4, 2),
        init="gaussian",
        init_scale=0.5,
        data=x,
        target=y,
        normalization="mean",
        etas=[0.05],
        iterations=6,
        track_hessian_every=3,
        seed=2,
    )
    run = res.runs[0]
    ws = run.final_factors.factors
    assert res.eta_crit is None and res.engine == "numpy"
    gn = _top_eig(ad.gauss_newton(ws, X=x, scale=1 / 7))
    full = _top_eig(ad.hessian(ws, X=x, Y=y, scale=1 / 7))
    assert run.gn_lambda_max[6] == pytest.approx(gn, rel=1e-10)
    assert run.hessian_lambda_max[6] == pytest.approx(full, rel=1e-7)
    assert np.isnan(run.hessian_lambda_max[5])


def test_trajectory_matches_autograd_gd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    for data in (None, x):
        kw = dict(data=x, target=y) if data is not None else {}
        res = train(
            (3, 4, 2), init="orthogonal", init_scale=0.7, etas=[0.02, 0.05], iterations=10, seed=5, **kw
        )
        m = torch.tensor(res.target)
        for run in res.runs:
            ws = [torch.tensor(w, requires_grad=True) for w in res.start.factors]
            losses = []
            for _ in range(11):
                p = ws[1] @ ws[0]
                r = (m - p @ torch.tensor(x)) if data is not None else (m - p)
                loss = (r**2).sum()
                losses.append(float(loss.detach()))
                loss.backward()
                with torch.no_grad():
                    for w in ws:
                        w -= run.eta * w.grad
                        w.grad = None
            np.testing.assert_allclose(run.loss, losses, rtol=1e-11)


def test_balancedness_drift_is_second_order_in_eta():
    ad = pytest.importorskip("tests.autodiff_reference")
    drift = []
    for eta in (1e-3, 5e-4):
        res = train(
            (2, 3, 4, 2), init="gaussian", init_scale=0.8, etas=[eta], iterations=1, seed=7, sample_every=1
        )
        run = res.runs[0]
        ws = res.start.factors
        g = res.start.unflatten(ad.gradient(ws, M=res.target))
        # one GD step changes D_i = W_{i+1}^T W_{i+1} - W_i W_i^T by eta^2 (G_{i+1}^T G_{i+1} - G_i G_i^T)
        for i in range(2):
            d0 = ws[i + 1].T @ ws[i + 1] - ws[i] @ ws[i].T
            d1 = d0 + eta**2 * (g[i + 1].T @ g[i + 1] - g[i] @ g[i].T)
            assert run.balancedness[0, i] == pytest.approx(np.linalg.norm(d0), rel=1e-13)
            assert run.balancedness[1, i] == pytest.approx(np.linalg.norm(d1), rel=1e-12)
        drift.append(np.abs(run.balancedness[1] - run.balancedness[0]))
    ratio = drift[0] / drift[1]
    assert np.all((ratio > 3.5) & (ratio < 4.5))  # O(eta^2): halving eta quarters the drift


def test_just_below_eta_crit_from_balanced_start_converges_stably():
    res = train(
        (5, 5, 5, 5), init="identity", init_scale=0.1, target=DIAG, eta_ratios=[0.95], iterations=3000
    )
    run = res.runs[0]
    # lambda_flat = 2 L sigma_max^(2 - 2/L) (eq. 35) computed here independently
    assert res.flat_lambda_max == pytest.approx(2 * 3 * 2.0 ** (2 - 2 / 3), rel=1e-14)
    assert run.status == "converged"
    dense = _top_eig(
        pytest.importorskip("tests.autodiff_reference").hessian(
            run.final_factors.factors, M=run.final_factors.product
        )
    )
    assert run.final_lambda_max == pytest.approx(dense, rel=1e-9)
    assert run.lambda_eta_half <= 1.0
    assert run.flatness_ratio == pytest.approx(1.0, abs=0.1)  # a balanced start lands near flat


def test_well_above_eta_crit_never_reaches_a_global_minimum():
    res = train((4, 6, 3), init="gaussian", init_scale=0.3, eta_ratios=[1.5, 2.0], iterations=3000, seed=2)
    for run in res.runs:
        assert run.status in ("budget", "diverged")
        assert np.nanmin(run.loss) > 1e-6 * float(np.vdot(res.target, res.target))


def test_constructed_period_two_orbit_is_detected():
    from scipy.optimize import brentq

    eta = 0.55  # m = w_2 w_1 = 1, balanced: lambda_flat = 4, eta lambda_flat / 2 = 1.1

    def f(x):
        return x + 2 * eta * (1 - x * x) * x

    xa = brentq(lambda x: f(f(x)) - x, 0.6, 0.95, xtol=1e-15)  # the period-2 points of f
    assert abs(f(xa) - xa) > 0.1
    start = [np.array([[xa]]), np.array([[xa]])]
    res = train(init=start, target=[[1.0]], etas=[eta], iterations=40)
    run = res.runs[0]
    assert run.status == "budget"
    orbit = run.regimes["periodic_orbit"]
    assert orbit is not None and orbit["period"] == 2
    assert run.loss[::2] == pytest.approx(run.loss[0], rel=1e-9)


def test_regime_definitions_on_synthetic_traces():
    loss = np.r_[np.geomspace(1, 1e-2, 20), [0.5], np.geomspace(5e-3, 1e-8, 40)]
    lam = np.full(loss.size, np.nan)
    lam[::5] = np.r_[np.linspace(10, 3, 6), np.full(lam[::5].size - 6, 3.0)]
    cat = regimes.catapults(loss, lam, converged=True)
    assert cat["count"] == 1 and cat["first"]["peak"] == 20
    assert cat["first"]["lambda_before"] > cat["first"]["lambda_after"]
    rising = np.r_[np.linspace(1, 9.5, 50), 10 + 0.3 * np.sin(np.arange(200))]
    ps = regimes.progressive_sharpening(rising, eta=0.2)  # 2/eta = 10
    assert ps["start"] == 0 and ps["end"] < 50
    wiggle = np.exp(-np.arange(250) / 50) * (1 + 0.3 * (np.arange(250) % 2))
    eos = regimes.edge_of_stability(wiggle, rising, eta=0.2)
    assert eos is not None and abs(eos["mean_lambda_eta_half"] - 1) < 0.1
    assert regimes.edge_of_stability(np.exp(-np.arange(250) / 50), rising, eta=0.2) is None  # monotone


def test_input_errors():
    with pytest.raises(ValueError, match="identity"):
        train((2, 3, 2), init="identity", eta_ratios=[0.5])
    with pytest.raises(ValueError, match="exactly one"):
        train((2, 3, 2), etas=[0.1], eta_ratios=[0.5])
    with pytest.raises(ValueError, match="iterations"):
        train((2, 3, 2), eta_ratios=[0.5], iterations=2.5)
    with pytest.raises(ValueError, match="eta_crit"):
        train((2, 3, 2), data=np.ones((2, 4)), target=np.ones((2, 4)), eta_ratios=[0.5])


@pytest.mark.slow
def test_cli_writes_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["train", "--preset", "train-catapult", "--iterations", "40", "--out", str(out)]) == 0
    assert (out / "training.png").stat().st_size > 10_000 and (out / "training.pdf").exists()
    assert "training.png" in (out / "index.html").read_text()


def test_cli_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--dims",
        "2,3,2",
        "--init",
        "gaussian",
        "--init-scale",
        "0.3",
        "--eta-ratios",
        "0.5,1.8",
    ]
    assert main([*args, "--iterations", "30", "--seed", "3", "--no-figures", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eta_crit"] == pytest.approx(2 / summary["flat_lambda_max"])
    for i, run in enumerate(summary["runs"], start=1):
        assert set(run) >= {"eta", "eta_ratio", "status", "final_loss", "final_lambda_max", "final_file"}
        assert run["status"] in ("converged", "diverged", "budget")
        head = (out / f"trace_run{i}.csv").read_text().splitlines()[0].split(",")
        assert head[:3] == ["iteration", "loss", "gn_lambda_max"]
    assert (out / "index.html").exists() and (out / "final_run1.npz").exists()
    m = np.load(out / "target.npy")
    np.save(tmp_path / "m.npy", m)
    out2 = tmp_path / "again"
    assert (
        main(
            [
                "train",
                "--dims",
                "2,3,2",
                "--etas",
                "0.01",
                "--iterations",
                "5",
                "--target",
                str(tmp_path / "m.npy"),
                "--no-figures",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    again = json.loads((out2 / "summary.json").read_text())
    assert again["flat_lambda_max"] == summary["flat_lambda_max"]  # the saved target round-trips
    capsys.readouterr()
    assert main(["train", "--dims", "2,3,2", "--init", "identity", "--out", str(tmp_path / "x")]) == 2
    assert "identity" in capsys.readouterr().err


def test_engines_agree_and_initializations_are_what_they_say():
    from dmfsharp.dynamics.engines import numba_available
    from dmfsharp.dynamics.initialization import initial_factors

    ch = initial_factors((3, 5, 2), "orthogonal", 0.7, np.random.default_rng(0))
    w1, w2 = ch.factors
    np.testing.assert_allclose(w1.T @ w1, 0.49 * np.eye(3), atol=1e-15)  # orthonormal columns
    np.testing.assert_allclose(w2 @ w2.T, 0.49 * np.eye(2), atol=1e-15)  # orthonormal rows
    if not numba_available():
        pytest.skip("numba (the 'fast' extra) is absent")
    kw = dict(init="gaussian", init_scale=0.4, eta_ratios=[0.5, 1.2], iterations=60, seed=4)
    a = train((2, 3, 4, 2), engine="numpy", **kw)
    b = train((2, 3, 4, 2), engine="numba", **kw)
    for x, y in zip(a.runs, b.runs, strict=True):
        np.testing.assert_allclose(y.loss[:30], x.loss[:30], rtol=1e-9)
        np.testing.assert_allclose(y.gn_lambda_max[:30], x.gn_lambda_max[:30], rtol=1e-9)


def test_cli_data_and_init_file(tmp_path):
    rng = np.random.default_rng(1)
    x = np.linalg.qr(rng.standard_normal((6, 3)))[0].T * np.sqrt(6)  # whitened: X X^T = 6 I
    y = rng.standard_normal((2, 6))
    np.savez(tmp_path / "d.npz", X=x, Y=y)
    np.savez(tmp_path / "w.npz", W1=0.3 * rng.standard_normal((4, 3)), W2=0.3 * rng.standard_normal((2, 4)))
    out = tmp_path / "run"
    args = [
        "train",
        "--init",
        "file",
        "--init-file",
        str(tmp_path / "w.npz"),
        "--data",
        str(tmp_path / "d.npz"),
    ]
    rc = main(
        [*args, "--normalization", "mean", "--eta-ratios", "0.5", "--iterations", "4000", "--no-figures"]
        + ["--out", str(out)]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    # whitened data: (1/n) ||Y - P X||^2 = ||M - P||^2 + const with M = Y X^T / n
    m = y @ x.T / 6
    assert summary["flat_lambda_max"] == pytest.approx(4 * np.linalg.norm(m, 2), rel=1e-12)
    run = summary["runs"][0]
    assert run["status"] == "converged" and run["lambda_eta_half"] <= 1.0
    floor = np.sum((y - m @ x) ** 2) / 6  # least-squares residual of the data loss
    assert run["final_loss"] == pytest.approx(floor, rel=1e-8)


def test_torch_mean_data_loss_is_pytorch_mse_mean():
    # GD on c ||Y - P X||^2 with torch-mean (c = 1/(n d_L)) against torch.optim.SGD on
    # nn.MSELoss(reduction="mean") from the same start: the same losses, step by step
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((3, 6)), rng.standard_normal((2, 6))
    res = train(
        (3, 4, 2), init="gaussian", init_scale=0.5, data=x, target=y,
        normalization="torch-mean", etas=[0.3], iterations=8, seed=1,
    )  # fmt: skip
    ws = [torch.tensor(w, requires_grad=True) for w in res.start.factors]
    opt = torch.optim.SGD(ws, lr=0.3)
    mse = torch.nn.MSELoss(reduction="mean")
    losses = []
    for _ in range(9):
        opt.zero_grad()
        out = (ws[1] @ ws[0] @ torch.tensor(x)).T  # (n, d_L) batch as PyTorch sees it
        loss = mse(out, torch.tensor(y.T))
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    np.testing.assert_allclose(res.runs[0].loss, losses, rtol=1e-11)


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("with_data", [False, True])
def test_converged_run_is_tracked_at_its_last_iteration(engine, with_data):
    """The row a run converges at holds its Gauss-Newton value (the final point's), on every engine.

    Reference: the dense autograd ``2 c J^T J`` at the run's final factors, which are the
    parameters of its last iteration.
    """
    ad = pytest.importorskip("tests.autodiff_reference")
    if engine == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(7)
    kw: dict = {}
    x = None
    if with_data:
        x, y = rng.standard_normal((3, 6)), rng.standard_normal((2, 6))
        kw = dict(data=x, target=y)
    res = train(
        (3, 4, 2),
        init="gaussian",
        init_scale=0.5,
        etas=[0.05, 0.02],
        iterations=400,
        seed=3,
        engine=engine,
        **kw,
    )
    converged = [run for run in res.runs if run.status == "converged"]
    assert converged  # the setup must exercise the convergence row
    for run in converged:
        k = run.iterations
        ref = _top_eig(ad.gauss_newton(run.final_factors.factors, X=x))
        assert run.gn_lambda_max[k] == pytest.approx(ref, rel=1e-10), (engine, k)


def test_periods_beyond_the_budget_track_iteration_zero_only():
    """``track_every`` / ``sample_every`` past int64 are valid (whole numbers >= 1): row 0 alone."""
    for kw in (dict(track_every=10**30), dict(sample_every=10**30), dict(track_every=2**62)):
        res = train((2, 3, 2), eta_ratios=[0.5], iterations=30, seed=1, engine="numpy", **kw)
        run = res.runs[0]
        rows = np.flatnonzero(np.isfinite(run.gn_lambda_max))
        if "track_every" in kw:
            assert list(rows) == [0]
        else:
            assert list(rows) == list(range(run.iterations + 1))
        # the singular values: each of the first 90 tracked rows, so here the tracked ones
        assert list(np.flatnonzero(np.isfinite(run.singular_values[:, 0]))) == list(rows)


def test_untracked_run_copies_no_snapshots(monkeypatch):
    """``track_every`` beyond the budget: the compiled engine runs as untracked (the
    benchmark's baseline), no per-iteration parameter copies, and row 0 is still tracked."""
    pytest.importorskip("numba")
    from dmfsharp.dynamics import train as train_mod

    def no_blocks(*args, **kwargs):
        raise AssertionError("an untracked run was handed parameter blocks")

    monkeypatch.setattr(train_mod.SampleTracker, "block", no_blocks)
    res = train((3, 4, 2), init="gaussian", init_scale=0.5, etas=[0.01], iterations=50, seed=0,
                engine="numba", track_every=51)  # fmt: skip
    run = res.runs[0]
    assert res.engine == "numba" and run.iterations == 50
    assert list(np.flatnonzero(np.isfinite(run.gn_lambda_max))) == [0]
    ws = res.start.factors  # row 0: the start, by Corollary 6 (L = 2)
    ref = 2.0 * (np.linalg.norm(ws[0], 2) ** 2 + np.linalg.norm(ws[1], 2) ** 2)
    assert run.gn_lambda_max[0] == pytest.approx(ref, rel=1e-13)


def test_weight_decay_gauss_newton_trace_is_that_of_the_regularized_loss():
    # GN of L_mu = L + mu sum ||W||^2 is 2 K^T K + 2 mu I: the trace is autograd's GN + 2 mu,
    # the same quantity the full-Hessian dots and 2 / eta refer to
    ad = pytest.importorskip("tests.autodiff_reference")
    mu = 0.05
    for engine in ("numpy", "numba"):
        if engine == "numba":
            pytest.importorskip("numba")
        res = train((3, 4, 2), init="gaussian", init_scale=0.6, etas=[0.01], iterations=7,
                    weight_decay=mu, converge_tol=0.0, seed=1, engine=engine)  # fmt: skip
        run = res.runs[0]
        assert run.status == "budget" and run.final_factors is not None
        ref = _top_eig(ad.gauss_newton(run.final_factors.factors)) + 2 * mu
        assert run.gn_lambda_max[7] == pytest.approx(ref, rel=1e-12)


def test_converged_run_beyond_float64_reports_no_lambda_instead_of_failing():
    # P = (1e-154 I)(1e154 ones) = M exactly: converged at step 0, lambda_max ~ 2 (2e154)^2
    start = [np.full((2, 2), 1e154), 1e-154 * np.eye(2)]
    res = train(init=start, target=np.ones((2, 2)), etas=[1e-3, 2e-3], iterations=5)
    for run in res.runs:
        assert run.status == "converged" and run.final_lambda_max is None
        assert not np.isfinite(run.gn_lambda_max[0])
