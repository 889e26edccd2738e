"""Presets (paper sizes, smoke runs), run folders (files, CSV, determinism), CLI errors."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from dmfsharp import load_factors, loss, save_factors, sharpness
from dmfsharp.presets import PRESETS, get_preset
from dmfsharp.report import write_run_folder

from .conftest import has_module, loss_slack, reference_lambda_max

needs_mpl = pytest.mark.skipif(not has_module("matplotlib"), reason="figures need matplotlib (extra 'plot')")


def test_preset_sizes_match_the_paper():
    # a specification, not a restatement: (depth, N) from the captions of Figs. 1-7 and
    # Appendix D.2 of the paper; radii from the captions of Figs. 1-3, 6 and 7
    expect = {"fig1": (2, 600), "fig4": (2, 900), "fig5": (2, 1350), "fig6": (20, 2421), "fig7": (5, 293)}
    for name, (depth, n) in expect.items():
        p = get_preset(name)
        assert (p.depth, p.num_params) == (depth, n), name
    assert get_preset("fig2").depth == get_preset("fig3").depth == 15
    for name in ("fig2", "fig3", "fig6", "fig7"):
        d = get_preset(name).dims
        assert d[0] == d[-1] == 1
    assert get_preset("fig1").radius == 1e-15 and get_preset("fig2").radius == 1e-12
    assert get_preset("fig3").radius == get_preset("fig6").radius == 1e-9
    assert get_preset("fig7").radius == 1e-12
    assert get_preset("fig1").dims == (20, 20, 10)  # M = L R^T, L 10x20, R 20x20
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("fig8")


# fig7 (the smallest) stays in the fast subset; the others run in the full suite
@needs_mpl
@pytest.mark.parametrize(
    "name", [n if n == "fig7" else pytest.param(n, marks=pytest.mark.slow) for n in PRESETS]
)
def test_preset_smoke(name, tmp_path):
    p = get_preset(name).replace(iterations=25, grid=9)
    res = p.run()
    assert len(res.runs) == len(p.step_multipliers)
    np.testing.assert_allclose([r.step_multiplier for r in res.runs], p.step_multipliers)
    summary = write_run_folder(res, tmp_path / "run", config=p.to_dict(), grid=p.grid)
    for f in ("figure.png", "figure.pdf", "summary.json", "minimum.npz"):
        assert (tmp_path / "run" / f).stat().st_size > 0
    assert summary["num_params"] == p.num_params


@needs_mpl
@pytest.mark.slow
def test_run_folder_contents_roundtrip_and_determinism(tmp_path):
    pd = pytest.importorskip("pandas")
    p = get_preset("fig7").replace(iterations=400, grid=9)
    a = write_run_folder(p.run(), tmp_path / "a", config=p.to_dict(), grid=9)
    res = p.run()
    write_run_folder(res, tmp_path / "b", config=p.to_dict(), grid=9)
    ja = (tmp_path / "a" / "summary.json").read_text()
    assert ja == (tmp_path / "b" / "summary.json").read_text()
    s = json.loads(ja)
    assert s["minimum_file"] == "minimum.npz" and s["config"]["seed"] == p.seed
    chain, m = load_factors(tmp_path / "a" / "minimum.npz")
    assert np.array_equal(chain.flatten(), p.minimum().flatten())
    for _i, (entry, run) in enumerate(zip(a["runs"], res.runs, strict=False), start=1):
        for key in (
            "eta",
            "step_multiplier",
            "status",
            "escape_iteration",
            "predicted_escape_iteration",
            "final_loss",
            "final_lambda_max",
            "final_is_stable",
            "final_file",
        ):
            assert key in entry
        df = pd.read_csv(tmp_path / "a" / entry["trace_file"])
        assert list(df["iteration"]) == list(range(run.iterations + 1))
        assert np.array_equal(df["normalized_loss"].to_numpy(), run.normalized_loss)
        assert np.array_equal(df["distance_sq"].to_numpy(), run.distance_sq)
        with open(tmp_path / "a" / entry["trace_file"], newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert float(rows[-1]["x"]) == run.coords[-1, 0]
        final, m2 = load_factors(tmp_path / "a" / entry["final_file"])
        # slack for sums in another order (the compiled engine)
        slack = loss_slack(entry["final_loss"], m2)
        assert loss(final, target=m2) == pytest.approx(entry["final_loss"], rel=1e-9, abs=slack)
        if entry["status"] == "escaped":
            lam, err = reference_lambda_max(final.factors, m2)
            assert lam <= 2 / entry["eta"] * (1 + 1e-6) + err


def _cli(capsys, *argv):
    from dmfsharp.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_presets(capsys):
    code, out, _ = _cli(capsys, "presets")
    assert code == 0 and "fig6" in out and "2421" in out
    code, out, _ = _cli(capsys, "presets", "--json")
    data = json.loads(out)
    assert [d["name"] for d in data] == list(PRESETS)
    assert data[6]["num_params"] == 293


@needs_mpl
@pytest.mark.slow
def test_cli_escape_custom_and_reproduce(capsys, tmp_path):
    out_dir = tmp_path / "custom"
    code, out, err = _cli(
        capsys,
        "escape",
        "--dims",
        "2,3,4,2",
        "--radius",
        "1e-9",
        "--step-multipliers",
        "0.8,1.3",
        "--iterations",
        "2000",
        "--seed",
        "7",
        "--grid",
        "9",
        "--out",
        str(out_dir),
        "--track-every",
        "50",
    )
    assert code == 0, err
    s = json.loads((out_dir / "summary.json").read_text())
    assert [r["status"] for r in s["runs"]] == ["returned", "escaped"]
    assert s["config"]["seed"] == 7 and (out_dir / "sharpness.png").exists()
    # start from the saved minimum file
    code, _, err = _cli(
        capsys,
        "escape",
        "--minimum",
        str(out_dir / "minimum.npz"),
        "--step-multipliers",
        "1.3",
        "--iterations",
        "50",
        "--grid",
        "5",
        "--no-figures",
        "--out",
        str(tmp_path / "from_file"),
    )
    assert code == 0, err
    # the run records the sharpness of the minimum it read: its closed form, and the
    # independent Hessian there
    chain, m = load_factors(out_dir / "minimum.npz")
    s2 = json.loads((tmp_path / "from_file" / "summary.json").read_text())
    assert s2["lambda_max"] == pytest.approx(sharpness(chain, target=m), rel=1e-14)
    ref, err_ref = reference_lambda_max(chain.factors, m)
    assert abs(s2["lambda_max"] - ref) <= 1e-12 * ref + err_ref
    code, out, err = _cli(
        capsys,
        "reproduce",
        "--out",
        str(tmp_path / "rep"),
        "--presets",
        "fig7",
        "--iterations",
        "20",
        "--grid",
        "7",
        "--quiet",
    )
    assert code == 0, err
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "fig7/figure.png" in html and "Figure 7" in html


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["escape", "--dims", "3,4", "--out", "{d}/x"], "depth"),
        (["escape", "--dims", "2,3,2", "--radius", "0", "--out", "{d}/x"], "radius"),
        (["escape", "--dims", "2,3,2", "--radius=-1e-9", "--out", "{d}/x"], "radius"),
        (["escape", "--preset", "fig9", "--out", "{d}/x"], "unknown preset"),
        (["escape", "--dims", "2,3,2", "--out", "{d}/nofolder/x"], "does not exist"),
        (["escape", "--dims", "2,3,2", "--out", "{d}/afile/x"], "does not exist"),
        (["escape", "--minimum", "{d}/notmin.npz", "--out", "{d}/x"], "not a global minimum"),
        (["escape", "--dims", "2,3,2", "--step-multipliers", "1,abc", "--out", "{d}/x"], "step-multipliers"),
        (["reproduce", "--presets", "fig1,nope", "--out", "{d}/x"], "unknown preset"),
    ],
)
def test_cli_bad_input(capsys, tmp_path, argv, msg):
    (tmp_path / "afile").write_text("x")
    bad = [np.ones((2, 2)), np.ones((2, 2))]
    save_factors(tmp_path / "notmin.npz", bad, target=np.zeros((2, 2)))
    before = sorted(os.listdir(tmp_path))
    argv = [a.format(d=tmp_path) for a in argv]
    if argv[0] == "escape" and not has_module("matplotlib"):
        argv.append("--no-figures")  # the input check under test, not the missing extra
    code, out, err = _cli(capsys, *argv)
    assert code == 2
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before  # nothing half-written


def test_cli_unwritable_and_existing_folder(capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code, _, err = _cli(capsys, "escape", "--dims", "2,3,2", "--out", str(ro / "x"))
        assert code == 2 and "not writable" in err
    finally:
        ro.chmod(0o755)


def test_cli_existing_folder_is_kept(capsys, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep")
    code, _, err = _cli(capsys, "escape", "--dims", "2,3,2", "--out", str(full))
    assert code == 2 and "not empty" in err and (full / "keep.txt").exists()


def test_cli_plane_file(capsys, tmp_path):
    from dmfsharp import random_minimizer

    n = random_minimizer((2, 3, 2), seed=0).num_params
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "plane.npz", zeta=rng.standard_normal(n), gamma=rng.standard_normal(n))
    code, _, err = _cli(
        capsys,
        "escape",
        "--dims",
        "2,3,2",
        "--iterations",
        "20",
        "--grid",
        "5",
        "--plane-file",
        str(tmp_path / "plane.npz"),
        "--no-figures",
        "--out",
        str(tmp_path / "p"),
    )
    assert code == 0, err
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["config"]["plane"].startswith("file:")
    np.savez(tmp_path / "bad.npz", zeta=np.ones(n))
    code, _, err = _cli(
        capsys,
        "escape",
        "--dims",
        "2,3,2",
        "--plane-file",
        str(tmp_path / "bad.npz"),
        "--no-figures",
        "--out",
        str(tmp_path / "q"),
    )
    assert code == 2 and "gamma" in err and not (tmp_path / "q").exists()
