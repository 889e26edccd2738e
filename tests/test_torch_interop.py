"""from_torch, tensors everywhere, and ``dmfsharp inspect`` on a saved state_dict."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import dmfsharp as dmf  # noqa: E402
from dmfsharp.cli import main  # noqa: E402

from .conftest import reference_lambda_max, rel  # noqa: E402


def _net(dims, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i in range(1, len(dims)):
        lin = nn.Linear(dims[i - 1], dims[i], bias=bias).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(dims[i], dims[i - 1], generator=g, dtype=torch.float64))
        layers.append(lin)
    return nn.Sequential(*layers)


def _network_hessian(net, x, y, scale=1.0):
    """Autograd Hessian of scale * sum((y - net(x))^2) w.r.t. the network's own parameters."""
    from torch.func import functional_call

    names = [n for n, _ in net.named_parameters()]
    params = [p.detach().clone() for _, p in net.named_parameters()]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def f(v):
        ps = {n: q.reshape(s) for n, q, s in zip(names, torch.split(v, sizes), shapes, strict=True)}
        out = functional_call(net, ps, (x,))
        return scale * ((y - out) ** 2).sum()

    v = torch.cat([p.reshape(-1) for p in params])
    return torch.autograd.functional.hessian(f, v).numpy()


@pytest.mark.parametrize("dims,n", [((5, 6, 4, 3), 3), ((3, 4, 2), 7), ((4, 4, 5, 4, 2), 2)])
def test_network_sharpness_through_from_torch(dims, n):
    net = _net(dims, seed=n)
    chain = dmf.from_torch(net)
    assert chain.dims == tuple(dims)
    g = torch.Generator().manual_seed(100 + n)
    xb = torch.randn(n, dims[0], generator=g, dtype=torch.float64)  # rows are samples
    with torch.no_grad():
        yb = net(xb)  # interpolation: the network's own outputs
    h = _network_hessian(net, xb, yb, scale=1.0 / n)
    eig = np.linalg.eigvalsh(h)
    x, y = xb.T, yb.T  # dmfsharp's X is d_0 x n
    lam = dmf.sharpness(chain, data=x, target=y, normalization="mean")
    assert rel(lam, eig[-1]) <= 1e-9
    assert rel(dmf.hessian_trace(chain, data=x, target=y, normalization="mean"), np.trace(h)) <= 1e-9
    # tensors straight from the network are accepted everywhere
    ws = [p for p in net.parameters()]  # requires_grad tensors
    assert rel(dmf.sharpness(ws, data=xb.T, target=yb.T, normalization="mean"), lam) <= 1e-14
    # per-factor blocks: the network's parameter order is W_1 first, row-major like ours
    start = 0
    for k, w in enumerate(ws):
        sz = w.numel()
        blk = h[start : start + sz, start : start + sz]
        assert (
            rel(dmf.layer_sharpness(ws, data=xb.T, normalization="mean")[k], np.linalg.eigvalsh(blk)[-1])
            <= 1e-9
        )
        start += sz


def test_three_input_kinds_agree():
    net = nn.Sequential(
        nn.Linear(3, 4, bias=False),
        nn.Sequential(nn.Linear(4, 5, bias=False), nn.Linear(5, 5, bias=False)),
        nn.Linear(5, 2, bias=False),
    ).double()
    a = dmf.from_torch(net)
    b = dmf.from_torch(net.state_dict())
    c = dmf.from_torch(list(net.parameters()))
    assert a.dims == b.dims == c.dims == (3, 4, 5, 5, 2)
    for wa, wb, wc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(wa, wc)
    np.testing.assert_allclose(
        a.product, (net(torch.eye(3, dtype=torch.float64)).T).detach().numpy(), rtol=1e-13, atol=1e-14
    )
    assert a.factors[0].dtype == np.float64
    # float32 networks are widened to float64
    f32 = dmf.from_torch(nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 2, bias=False)))
    assert f32.factors[0].dtype == np.float64


@pytest.mark.parametrize(
    "bad,match",
    [
        (lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False)), "layer 0 .*has a bias"),
        (
            lambda: nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)),
            r"layer 1 \(ReLU\) is not a bias-free nn.Linear",
        ),
        (lambda: nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(5, 2, bias=False)), "W_2 = layer 1"),
        (
            lambda: nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.Linear(4, 2, bias=False)),
            r"layer 0 \(Conv2d\)",
        ),
        (lambda: nn.Linear(3, 4, bias=False), "single nn.Linear"),
        (lambda: nn.LSTM(3, 4), "pass an nn.Sequential"),
        (
            lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False)).state_dict(),
            "'0.bias' is a bias",
        ),
        (
            lambda: nn.Sequential(
                nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)
            ).state_dict(),
            "skip layer index 1",
        ),
        (
            lambda: nn.Sequential(
                nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False)
            ).state_dict(),
            r"'1.weight' has shape \(4,\)",
        ),
        (lambda: [torch.zeros(4, 3, 1), torch.zeros(2, 4)], r"weight 0 has shape \(4, 3, 1\)"),
        (lambda: {"0.weight": torch.zeros(4, 3), "0.running_mean": torch.zeros(4)}, "not a layer weight"),
        (lambda: torch.zeros(3, 3), "single tensor"),
        (lambda: 3.0, "cannot read a float"),
    ],
)
def test_refuses_non_linear_chains(bad, match):
    with pytest.raises(dmf.FactorError, match=match):
        dmf.from_torch(bad())


def test_inspect_reads_a_saved_state_dict(tmp_path, capsys):
    net = _net((4, 6, 3), seed=5)
    file = tmp_path / "net.pt"
    torch.save(net.state_dict(), file)
    chain = dmf.load_torch_factors(file)
    assert chain.dims == (4, 6, 3)
    assert main(["inspect", str(file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dims"] == [4, 6, 3] and info["is_minimum"] and info["method"] == "exact"
    assert rel(info["lambda_max"], dmf.sharpness(dmf.from_torch(net))) <= 1e-14
    # a network with biases: one line, exit 2, no traceback
    bad = tmp_path / "bias.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2, bias=False)).state_dict(), bad)
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "'0.bias' is a bias" in err and "Traceback" not in err and err.count("\n") == 1
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    assert main(["inspect", str(junk)]) == 2
    assert "not a readable weights-only PyTorch file" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2


def test_weights_only_refuses_pickled_modules(tmp_path):
    """A whole pickled module is not loaded (weights_only=True runs no pickled code)."""
    file = tmp_path / "module.pt"
    torch.save(_net((3, 4, 2)), file)
    with pytest.raises(dmf.FactorFileError, match="weights-only"):
        dmf.load_torch_factors(file)


def test_tensors_accepted_by_public_functions():
    s6 = dmf.section6_example()
    tw = [torch.tensor(np.array(w), requires_grad=True) for w in s6]
    assert dmf.sharpness(tw) == 44.0
    m = torch.tensor(np.diag([11.0, 2.0, 1.0]), requires_grad=True)
    assert dmf.flat_sharpness(m, 2) == 44.0
    g = torch.tensor(np.diag([1.0, 1 / 3, 1.0]), requires_grad=True)
    assert dmf.sharpness(dmf.rescale(tw, 1, g)) == 44.0
    # tensor input must give exactly what the same values as NumPy arrays give
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float32, generator=g)
    ws = [np.array(w) for w in s6]
    assert dmf.sharpness(tw, data=x) == dmf.sharpness(ws, data=x.double().numpy())
    a = dmf.numerical_sharpness(tw, target=torch.eye(3), v0=tw, seed=1).value
    assert a == dmf.numerical_sharpness(ws, target=np.eye(3), v0=ws, seed=1).value
    assert dmf.flatness_report(tw, covariance=torch.eye(3)).lambda_max == pytest.approx(44.0, rel=1e-13)


def test_torch_is_imported_lazily():
    code = (
        "import sys, dmfsharp; dmfsharp.sharpness(dmfsharp.section6_example()); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ},
    )
    assert out.stdout.strip() == "False"


def test_inspect_lists_layer_sharpness(tmp_path, capsys):
    file = tmp_path / "s6.pt"
    torch.save(
        {
            "0.weight": torch.tensor(np.array(dmf.section6_example()[0])),
            "1.weight": torch.tensor(np.array(dmf.section6_example()[1])),
        },
        file,
    )
    assert main(["inspect", str(file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["lambda_max"] == 44.0 and info["layer_sharpness"] == pytest.approx([22.0, 22.0], rel=1e-14)
    assert main(["inspect", str(file)]) == 0
    assert re.search(r"layer sharpness \(sum = bound\) +22, 22\n", capsys.readouterr().out)


def test_public_functions_take_a_network_directly():
    net = _net((4, 6, 5, 3), seed=0)
    chain = dmf.from_torch(net)
    ref, _ = reference_lambda_max(chain.factors, chain.product)
    assert dmf.sharpness(net) == pytest.approx(ref, rel=1e-12)
    assert dmf.sharpness(net.state_dict()) == pytest.approx(ref, rel=1e-12)
    assert dmf.hessian_trace(net) == pytest.approx(dmf.hessian_trace(chain), rel=1e-14)
    bad = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2, bias=False))
    with pytest.raises(dmf.FactorError, match="bias"):
        dmf.sharpness(bad)


def _square(d, seed):
    lin = nn.Linear(d, d, bias=False).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(d, d, generator=g, dtype=torch.float64))
    return lin


def _tied_cases():
    a, b, c = _square(3, 1), _square(3, 2), _square(3, 3)
    inner = nn.Sequential(a, b)
    shared = _square(3, 4)
    shared.weight = a.weight  # one Parameter object in two different nn.Linear layers
    return [
        (nn.Sequential(a, b, a), r"layer 2 is the same nn.Linear module as layer 0 \(tied weights\)"),
        (nn.Sequential(a, a), r"layer 1 is the same nn.Linear module as layer 0 \(tied weights\)"),
        (nn.Sequential(inner, c, inner), r"layer 2\.0 is the same nn.Linear module as layer 0\.0"),
        (nn.Sequential(c, nn.Sequential(a, c)), r"layer 1\.1 is the same nn.Linear module as layer 0"),
        (nn.Sequential(a, b, shared), r"layer 2 is an nn.Linear sharing its weight Parameter as layer 0"),
        (
            nn.Sequential(a, b, a).state_dict(),
            r"state_dict entry '2.weight' is the same tensor as state_dict entry '0.weight'",
        ),
        ([a.weight, b.weight, a.weight], r"weight 2 is the same tensor as weight 0"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_tied_weights_are_refused_by_position(case):
    obj, match = _tied_cases()[case]
    with pytest.raises(dmf.FactorError, match=match):
        dmf.from_torch(obj)
    if not isinstance(obj, list):  # a plain list of tensors is a plain factor list to FactorChain
        with pytest.raises(dmf.FactorError, match="tied weights"):
            dmf.sharpness(obj)


def test_untied_copy_matches_autograd():
    """The refusal's advice (one module per position) gives the network's own Hessian."""
    import copy

    a, b = _square(3, 1), _square(3, 2)
    net = nn.Sequential(a, b, copy.deepcopy(a))
    x = torch.eye(3, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
    h = _network_hessian(net, x, y)
    assert rel(dmf.sharpness(net, data=x.T, target=y.T), np.linalg.eigvalsh(h)[-1]) <= 1e-9


def test_state_dict_in_string_order_is_read_in_layer_order():
    dims = (2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2)  # 12 layers: keys 0..11
    net = _net(dims, seed=5)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.8)
    sd = dict(sorted(net.state_dict().items()))  # as strings: 0, 1, 10, 11, 2, ...
    assert list(sd)[:4] == ["0.weight", "1.weight", "10.weight", "11.weight"]
    chain = dmf.from_torch(sd)
    assert chain.dims == dims
    for w, layer in zip(chain.factors, net, strict=True):
        np.testing.assert_array_equal(w, layer.weight.detach().numpy())
    x = torch.eye(2, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
    lam_ref = np.linalg.eigvalsh(_network_hessian(net, x, y))[-1]
    assert rel(dmf.sharpness(sd, data=x.T, target=y.T), lam_ref) <= 1e-9
    assert dmf.sharpness(sd, data=x.T, target=y.T) == dmf.sharpness(net, data=x.T, target=y.T)
    # the gap check runs on the sorted order: a missing layer is still found
    del sd["5.weight"]
    with pytest.raises(dmf.FactorError, match="'4.weight' and '6.weight' skip layer index 5"):
        dmf.from_torch(sd)


def test_frozen_layers_are_factors_like_the_others():
    dims = (3, 4, 2, 3)
    net = _net(dims, seed=7)
    net[1].weight.requires_grad_(False)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
    h = _network_hessian(net, x, y)  # in all weights, frozen or not
    chain = dmf.from_torch(net)
    assert chain.dims == dims
    assert rel(dmf.sharpness(net, data=x.T, target=y.T), np.linalg.eigvalsh(h)[-1]) <= 1e-9
    # the trainable-only curvature: the diagonal blocks of the trainable layers
    sizes = [4 * 3, 2 * 4, 3 * 2]
    start = sizes[0] + sizes[1]
    blk = h[start:, start:]
    np.testing.assert_allclose(
        dmf.layer_hessian_block(chain, 3, data=x.T, target=y.T), blk, rtol=1e-10, atol=1e-10 * abs(blk).max()
    )
