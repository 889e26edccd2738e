"""The path along the manifold of minima and the Section 6 discussion."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.cli import main
from dmfsharp.manifold import CSV_COLUMNS, SECTION6_SCALE

from .conftest import has_module


def test_default_path_reproduces_section6():
    path = dmf.minima_path()
    i = int(np.flatnonzero(path.scales == path.marks["section6"])[0])
    assert path.lambda_max[i] == pytest.approx(44.0, rel=1e-14)
    assert path.flat_lambda_max == 44.0
    # the paper's (L*, R*): W_1 = R^T = diag(sqrt 11, 3, 1), W_2 = L = diag(sqrt 11, 2/3, 1)
    pt = path.factors_at(SECTION6_SCALE)
    for a, b in zip(pt, dmf.section6_example(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    # trace there: 2 * 3 * (||W_1||^2 + ||W_2||^2) = 6 * (21 + 11 + 4/9 + 1)
    assert path.trace[i] == pytest.approx(6 * (21 + 12 + 4 / 9), rel=1e-13)
    assert path.frobenius_imbalance[i] > 0.5 and path.spectral_imbalance[i] == 0.0


def test_path_keeps_the_product_and_shows_the_flat_stretch():
    path = dmf.minima_path()
    m = np.diag([11.0, 2.0, 1.0])
    assert np.all(path.product_rel_error <= 1e-15)
    for s in path.scales[::10]:
        np.testing.assert_allclose(path.factors_at(s).product, m, rtol=0, atol=1e-13)
    lo, hi = path.flat_stretch
    assert lo == pytest.approx(np.sqrt(2 / 11), rel=1e-14) and hi == pytest.approx(np.sqrt(11 / 2), rel=1e-14)
    on = (path.scales >= 1) & (path.scales <= hi)
    off = path.scales > hi * (1 + 1e-9)
    assert on.sum() > 20 and off.sum() > 20
    # flat stretch: lambda_max pinned at 44 while trace and Frobenius imbalance move
    np.testing.assert_allclose(path.lambda_max[on], 44.0, rtol=1e-13)
    assert np.ptp(path.trace[on]) > 30 and np.ptp(path.frobenius_imbalance[on]) > 0.5
    assert np.all(path.spectral_imbalance[on] <= 1e-12)
    # beyond it the minima are sharp, and for L = 2 (Corollary 6) exactly 2 (2 s^2 + 11)
    s = path.scales[off]
    np.testing.assert_allclose(path.lambda_max[off], 2 * (2 * s**2 + 11), rtol=1e-13)
    assert np.all(np.diff(path.lambda_max[off]) > 0)
    # the trace is smallest at the balanced point s = 1 (Ding et al.'s measure)
    assert np.argmin(path.trace) == 0
    np.testing.assert_allclose(path.upper_bound, path.lambda_max, rtol=1e-12)  # L = 2 here


def test_path_against_dense_hessian():
    """lambda_max and trace along a deeper path, against the dense Hessian."""
    rng = np.random.default_rng(0)
    m = rng.standard_normal((3, 4))
    path = dmf.minima_path(m, (4, 5, 4, 3), layer=2, direction=2, num=7)
    for i in (0, 3, 6):
        chain = path.factors_at(path.scales[i])
        h = dmf.dense_hessian(chain, target=m)
        eig = np.linalg.eigvalsh(h)
        assert path.lambda_max[i] == pytest.approx(eig[-1], rel=1e-10)
        assert path.trace[i] == pytest.approx(np.trace(h), rel=1e-10)
    lo, hi = path.flat_stretch
    on = path.scales <= hi
    np.testing.assert_allclose(path.lambda_max[on], path.flat_lambda_max, rtol=1e-10)
    assert path.lambda_max[-1] > path.flat_lambda_max * (1 + 1e-3)


def test_bad_path_arguments():
    with pytest.raises(ValueError, match="direction j"):
        dmf.minima_path(direction=1)
    with pytest.raises(ValueError, match="rank >= 2"):
        dmf.minima_path(np.ones((2, 2)), direction=2)
    with pytest.raises(ValueError, match="layer k"):
        dmf.minima_path(layer=2)
    with pytest.raises(ValueError, match="s_min < s_max"):
        dmf.minima_path(s_min=2.0, s_max=1.0)
    with pytest.raises(ValueError, match="positive"):
        dmf.minima_path(scales=[1.0, -1.0])


def test_cli_writes_csv_figure_and_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["manifold", "--out", str(out), "--num", "25", "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert "lambda_max = 44" in printed
    with open(out / "manifold.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    s6 = [r for r in rows if float(r["s"]) == SECTION6_SCALE]
    assert len(s6) == 1 and float(s6[0]["lambda_max"]) == pytest.approx(44.0, rel=1e-14)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["section6_lambda_max"] == pytest.approx(44.0, rel=1e-14) and cfg["seed"] is None
    if has_module("matplotlib"):
        # same command with the figure, same numbers
        out2 = tmp_path / "run2"
        assert main(["manifold", "--out", str(out2), "--num", "25"]) == 0
        assert (out2 / "manifold.png").stat().st_size > 10_000
        assert (out2 / "manifold.csv").read_text() == (out / "manifold.csv").read_text()
    # refuses to overwrite, and bad input is one line with exit 2, leaving nothing behind
    assert main(["manifold", "--out", str(out), "--num", "25"]) == 2
    assert "exists" in capsys.readouterr().err
    bad = tmp_path / "bad"
    assert main(["manifold", "--out", str(bad), "--direction", "7", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert "direction j" in err and "Traceback" not in err
    assert not bad.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # a target from a file
    np.save(tmp_path / "m.npy", np.diag([4.0, 1.0]))
    assert (
        main(
            [
                "manifold",
                "--out",
                str(tmp_path / "m"),
                "--target",
                str(tmp_path / "m.npy"),
                "--dims",
                "2,3,3,2",
                "--no-plot",
                "--num",
                "5",
            ]
        )
        == 0
    )
    # eq. 35: the flat value is 2 L sigma_max(M)^(2 - 2/L) = 6 * 4^(4/3) for M = diag(4, 1), L = 3,
    # attained at s = 1 (the balanced point the path starts from)
    with open(tmp_path / "m" / "manifold.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    first = rows[0]
    assert float(first["s"]) == 1.0
    assert float(first["lambda_max"]) == pytest.approx(6 * 4 ** (4 / 3), rel=1e-13)
    assert float(first["flat_lambda_max"]) == pytest.approx(6 * 4 ** (4 / 3), rel=1e-13)
