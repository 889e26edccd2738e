"""``dmfsharp inspect`` on the loss a network was trained with (issue 16).

Every number is compared with an independent dense autograd Hessian of the *torch* loss
(``torch.nn.MSELoss(reduction="mean")`` on the network's own parameters), at a trained
point that is not a minimum and at a constructed least-squares minimum.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.cli import main

torch = pytest.importorskip("torch")

from .autodiff_reference import gauss_newton, hessian, rel  # noqa: E402 - needs torch

nn = torch.nn

DIMS = (4, 5, 4, 3)
N_SAMPLES = 24


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _data(seed=0, n=N_SAMPLES, dims=DIMS):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dims[0], generator=g, dtype=torch.float64)  # PyTorch layout: rows
    teacher = torch.randn(dims[-1], dims[0], generator=g, dtype=torch.float64)
    y = x @ teacher.T + 0.3 * torch.randn(n, dims[-1], generator=g, dtype=torch.float64)
    return x, y


def _trained_net(x, y, dims=DIMS, steps=300, lr=0.05, seed=1):
    torch.manual_seed(seed)
    net = nn.Sequential(*[nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:])]).double()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    crit = nn.MSELoss(reduction="mean")
    for _ in range(steps):
        opt.zero_grad()
        crit(net(x), y).backward()
        opt.step()
    return net


def _torch_hessian(net, x, y):
    """Dense autograd Hessian of ``MSELoss(reduction="mean")(net(x), y)`` in the parameters."""
    from torch.func import functional_call

    names = [k for k, _ in net.named_parameters()]
    params = [p.detach().clone() for _, p in net.named_parameters()]
    sizes = [p.numel() for p in params]
    crit = nn.MSELoss(reduction="mean")

    def f(v):
        ps = {k: q.reshape(p.shape) for k, q, p in zip(names, torch.split(v, sizes), params, strict=True)}
        return crit(functional_call(net, ps, (x,)), y)

    v = torch.cat([p.reshape(-1) for p in params])
    with torch.no_grad():
        value = float(f(v))
    return torch.autograd.functional.hessian(f, v).numpy(), value


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("net")
    x, y = _data()
    net = _trained_net(x, y)
    torch.save(net.state_dict(), d / "net.pt")
    np.save(d / "X.npy", x.numpy())
    np.save(d / "Y.npy", y.numpy())
    h, value = _torch_hessian(net, x, y)
    return d, net, x, y, h, value


def test_trained_network_every_number_against_autograd(trained, capsys):
    d, net, x, y, h, value = trained
    k = 6
    code, out, err = run(
        capsys, "inspect", d / "net.pt", "--data", d / "X.npy", "--targets", d / "Y.npy",
        "--samples-as-rows", "--normalization", "torch-mean", "--json", "--spectrum", k,
    )  # fmt: skip
    assert code == 0, err
    info = json.loads(out)
    n, dl = N_SAMPLES, DIMS[-1]
    assert info["normalization"] == "torch-mean" and info["num_samples"] == n
    assert rel(info["scale"], 1.0 / (n * dl)) <= 1e-15
    assert info["is_minimum"] is False and info["method"] == "lanczos"
    assert info["inputs"]["samples_as_rows"] is True
    eig = np.linalg.eigvalsh(h)
    assert eig[0] < 0 < eig[-1]  # a trained point after a few hundred steps: not a minimum
    tol = 1e-10
    assert rel(info["loss"], value) <= tol
    assert rel(info["trace"], np.trace(h)) <= tol
    assert rel(info["lambda_max"], eig[-1]) <= tol
    assert rel(info["lambda_min"], eig[0]) <= tol
    assert info["lambda_max_residual"] <= 1e-10 * abs(eig[-1])
    assert info["lambda_min_residual"] <= 1e-10 * (eig[-1] - eig[0])
    assert info["lambda_max_converged"] is True and info["lambda_min_converged"] is True
    np.testing.assert_allclose(info["spectrum"], eig[::-1][:k], rtol=tol)
    # the Gauss-Newton part: 2c J^T J from the autograd Jacobian of the outputs
    ws = dmf.from_torch(net).factors
    xs = x.numpy().T
    gn = np.linalg.eigvalsh(gauss_newton(ws, X=xs, scale=1.0 / (n * dl)))[-1]
    assert rel(info["gauss_newton_lambda_max"], gn) <= tol
    # per-layer blocks: the top eigenvalue of each diagonal block of the autograd Hessian
    start = 0
    for i, (a, b) in enumerate(zip(DIMS, DIMS[1:])):
        blk = h[start : start + a * b, start : start + a * b]
        assert rel(info["layer_sharpness"][i], np.linalg.eigvalsh(blk)[-1]) <= tol
        start += a * b
    # the normal-equation residual ||(Y - P X) X^T||_F and its scaled form
    p = dmf.FactorChain(ws).product
    g = (y.numpy().T - p @ xs) @ xs.T
    assert rel(info["residual_norm"], np.linalg.norm(g)) <= 1e-12
    assert rel(info["product_gradient_norm"], 2 * np.linalg.norm(g) / (n * dl)) <= 1e-12
    required = {"is_minimum", "trace", "gauss_newton_lambda_max", "lambda_max", "lambda_min", "normalization"}
    assert required <= set(info)


def test_trained_network_table_says_not_a_minimum(trained, capsys):
    d = trained[0]
    code, out, _ = run(
        capsys, "inspect", d / "net.pt", "--data", d / "X.npy", "--targets", d / "Y.npy",
        "--samples-as-rows", "--normalization", "torch-mean",
    )  # fmt: skip
    assert code == 0
    assert re.search(r"^global minimum\s+no$", out, re.M)
    assert "lambda_min (Lanczos)" in out and "normal-eq. residual" in out and "torch-mean" in out


def _least_squares_minimum(rng, dims=(3, 4, 5, 2), n=10):
    """A global minimum of ``||Y - P X||^2``: the last factor completes ``P = Y X^+``."""
    x = rng.standard_normal((dims[0], n))
    y = rng.standard_normal((dims[-1], n))
    p_star = np.linalg.lstsq(x.T, y.T, rcond=None)[0].T  # normal equations P X X^T = Y X^T
    ws = [rng.standard_normal((b, a)) for a, b in zip(dims[:-2], dims[1:-1])]
    b_last = dmf.FactorChain([*ws, np.zeros((dims[-1], dims[-2]))]).prefix[-1]
    ws.append(p_star @ np.linalg.pinv(b_last))  # B_L has full column rank d_0
    return ws, x, y


def test_constructed_minimum_closed_forms_against_autograd(tmp_path, capsys):
    rng = np.random.default_rng(16)
    ws, x, y = _least_squares_minimum(rng)
    f = dmf.save_factors(tmp_path / "min.npz", ws)
    np.save(tmp_path / "X.npy", x.T)  # rows, as PyTorch would have them
    np.save(tmp_path / "Y.npy", y.T)
    k = 5
    code, out, err = run(
        capsys, "inspect", f, "--data", tmp_path / "X.npy", "--targets", tmp_path / "Y.npy",
        "--samples-as-rows", "--normalization", "torch-mean", "--json", "--spectrum", k,
    )  # fmt: skip
    assert code == 0, err
    info = json.loads(out)
    assert info["is_minimum"] is True and info["method"] == "exact"
    c = 1.0 / (x.shape[1] * y.shape[0])
    h = hessian(ws, X=x, Y=y, scale=c)
    eig = np.linalg.eigvalsh(h)
    tol = 1e-10
    assert rel(info["lambda_max"], eig[-1]) <= tol
    assert rel(info["gauss_newton_lambda_max"], eig[-1]) <= tol
    assert rel(info["trace"], np.trace(h)) <= tol
    assert info["lambda_min"] == 0.0 and abs(eig[0]) <= 1e-12 * eig[-1]
    np.testing.assert_allclose(info["spectrum"], eig[::-1][:k], rtol=tol)
    assert info["residual_norm"] <= info["residual_tolerance"]
    assert info["lambda_max_residual"] is None


@pytest.mark.parametrize("seed", [0, 1])
def test_hessian_trace_exact_at_non_minima(seed):
    rng = np.random.default_rng(seed)
    dims = (3, 4, 2, 3)
    ws = [rng.standard_normal((b, a)) for a, b in zip(dims, dims[1:])]
    m = rng.standard_normal((dims[-1], dims[0]))
    h = hessian(ws, M=m)
    assert np.linalg.eigvalsh(h)[0] < -1e-3  # far from a minimum: the residual term matters
    assert not dmf.is_minimum(ws, target=m)
    assert rel(dmf.hessian_trace(ws, target=m), np.trace(h)) <= 1e-12
    x = rng.standard_normal((dims[0], 7))
    y = rng.standard_normal((dims[-1], 7))
    for norm, c in [("sum", 1.0), ("mean", 1 / 7), ("torch-mean", 1 / (7 * dims[-1]))]:
        h = hessian(ws, X=x, Y=y, scale=c)
        got = dmf.hessian_trace(ws, data=x, target=y, normalization=norm)
        assert rel(got, np.trace(h)) <= 1e-12
    cov = x @ x.T / 7
    t = rng.standard_normal((dims[-1], dims[0]))
    h = hessian(ws, cov=cov, T=t, scale=1 / dims[-1])
    got = dmf.hessian_trace(ws, covariance=cov, target=t, normalization="torch-mean")
    assert rel(got, np.trace(h)) <= 1e-12


def test_diagnose_non_minimum_eq15_against_dense():
    rng = np.random.default_rng(3)
    ws = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    m = rng.standard_normal((2, 3))
    d = dmf.diagnose(ws, m, spectrum=3)
    eig = np.linalg.eigvalsh(hessian(ws, M=m))
    assert not d.is_minimum
    assert rel(d.lambda_max, eig[-1]) <= 1e-10 and rel(d.lambda_min, eig[0]) <= 1e-10
    np.testing.assert_allclose(d.spectrum, eig[::-1][:3], rtol=1e-10)
    assert rel(d.gauss_newton_lambda_max, np.linalg.eigvalsh(gauss_newton(ws))[-1]) <= 1e-10
    assert isinstance(d, dmf.Diagnosis) and not hasattr(d, "info")
    with pytest.raises(AttributeError):
        d.lambda_max = 0.0  # frozen


def _bad_cases(d):
    x, y, m, s = d / "X.npy", d / "Y.npy", d / "M.npy", d / "S.npy"
    return {
        "targets without data": (["--targets", y], "--targets"),
        "target with data": (["--target", m, "--data", x, "--samples-as-rows"], "--target"),
        "rows without data": (["--samples-as-rows"], "--samples-as-rows"),
        "data and covariance": (["--data", x, "--covariance", s], "--covariance"),
        "mean without data": (["--normalization", "mean"], "--normalization"),
        "sum with covariance": (["--covariance", s, "--normalization", "sum"], "--normalization"),
        "data not as rows": (["--data", x, "--targets", y], "(24, 4)"),
        "targets wrong n": (["--data", x, "--targets", d / "Yshort.npy", "--samples-as-rows"], "(20, 3)"),
        "targets wrong dim": (["--data", x, "--targets", d / "Ywide.npy", "--samples-as-rows"], "--targets"),
        "target wrong shape": (["--target", d / "Ywide.npy"], "--target"),
        "covariance shape": (["--covariance", m], "--covariance"),
        "data missing": (["--data", d / "nope.npy"], "--data"),
        "data folder": (["--data", d], "--data"),
        "data not npy": (["--data", d / "junk.npy"], "--data"),
        "data object": (["--data", d / "obj.npy"], "--data"),
        "data nan": (["--data", d / "nan.npy", "--samples-as-rows"], "--data"),
        "spectrum zero": (["--spectrum", "0"], "--spectrum"),
        "bad normalization": (["--normalization", "avg"], "--normalization"),
    }


def test_bad_option_combinations_one_line_exit_2(trained, tmp_path, capsys):
    d = trained[0]
    x, y = np.load(d / "X.npy"), np.load(d / "Y.npy")
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    np.save(tmp_path / "Yshort.npy", y[:20])
    np.save(tmp_path / "Ywide.npy", np.ones((24, 5)))
    np.save(tmp_path / "M.npy", np.ones((3, 4)))
    np.save(tmp_path / "S.npy", np.eye(4))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.full((24, 4), np.nan))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    for name, (opts, needle) in _bad_cases(tmp_path).items():
        code, out, err = run(capsys, "inspect", d / "net.pt", *opts)
        lines = err.strip().splitlines()
        assert code == 2 and out == "", name
        assert len(lines) == 1 and "Traceback" not in err, (name, err)
        assert needle in lines[0], (name, lines[0])


def test_torch_mean_scales():
    ws = [np.eye(2), np.ones((3, 2))]
    x = np.ones((2, 5))
    assert make_scale(ws, data=x) == pytest.approx(1 / 15)
    assert make_scale(ws, covariance=np.eye(2)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="normalization"):
        dmf.make_objective(ws, normalization="torch-mean")


def make_scale(ws, **kw):
    return dmf.make_objective(ws, normalization="torch-mean", **kw).scale


def test_unconverged_lanczos_is_reported_as_bounds():
    rng = np.random.default_rng(5)
    dims = (4, 6, 6, 3)
    ws = [rng.standard_normal((b, a)) for a, b in zip(dims, dims[1:])]
    m = rng.standard_normal((dims[-1], dims[0]))
    eig = np.linalg.eigvalsh(hessian(ws, M=m))
    d = dmf.diagnose(ws, m, max_products=4)
    assert d.lambda_max_converged is False and d.lambda_min_converged is False
    # Ritz values: inside the spectrum, and an eigenvalue within each residual
    assert eig[0] - 1e-9 <= d.lambda_min and d.lambda_max <= eig[-1] + 1e-9
    assert np.min(np.abs(eig - d.lambda_max)) <= d.lambda_max_residual * (1 + 1e-9)
    full = dmf.diagnose(ws, m)
    assert full.lambda_max_converged and rel(full.lambda_max, eig[-1]) <= 1e-10
