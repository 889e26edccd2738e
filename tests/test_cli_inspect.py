"""``dmfsharp inspect``: output keys, exactness and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

REQUIRED = {
    "lambda_max",
    "trace",
    "flat_lambda_max",
    "flatness_ratio",
    "max_stable_step",
    "is_minimum",
    "depth",
    "dims",
    "num_params",
}


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_section6_json(capsys):
    code, out, err = run(capsys, "inspect", str(EXAMPLES / "section6.npz"), "--json")
    assert code == 0 and err == ""
    info = json.loads(out)
    assert REQUIRED <= set(info)
    assert info["lambda_max"] == pytest.approx(44.0, rel=1e-14)
    assert info["flat_lambda_max"] == pytest.approx(44.0, rel=1e-14)
    assert info["is_minimum"] is True and info["is_flat"] is True
    assert info["dims"] == [3, 3, 3] and info["depth"] == 2 and info["num_params"] == 18
    assert info["max_stable_step"] == pytest.approx(2 / 44)


def test_inspect_table_and_eta(capsys):
    code, out, _ = run(capsys, "inspect", str(EXAMPLES / "deep_random.npz"), "--eta", "1.0")
    assert code == 0
    assert "lambda_max (exact)" in out and "unstable" in out


def test_inspect_non_minimum_uses_lanczos(tmp_path, capsys):
    chain = dmf.random_minimizer((3, 4, 2), seed=0)
    m = chain.product + 0.1
    f = dmf.save_factors(tmp_path / "x.npz", chain, target=m)
    code, out, _ = run(capsys, "inspect", str(f), "--json")
    info = json.loads(out)
    assert code == 0 and info["is_minimum"] is False and info["method"] == "lanczos"
    ref = np.linalg.eigvalsh(dmf.dense_hessian(chain, target=m))[-1]
    assert info["lambda_max"] == pytest.approx(ref, rel=1e-8)


def test_save_load_round_trip(tmp_path):
    chain = dmf.random_minimizer((3, 4, 5, 2), seed=1)
    path = dmf.save_factors(tmp_path / "m", chain, target=chain.product)
    assert path.name == "m.npz"
    back, m = dmf.load_factors(path)
    assert back.dims == chain.dims
    assert all(np.array_equal(a, b) for a, b in zip(back, chain))
    np.testing.assert_array_equal(m, chain.product)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp files left


def bad_files(tmp_path):
    out = {}
    out["missing"] = (tmp_path / "nope.npz", "no such file")
    p = tmp_path / "garbage.npz"
    p.write_bytes(b"not a zip")
    out["garbage"] = (p, "not a readable .npz")
    p = tmp_path / "nokeys.npz"
    np.savez(p, A=np.ones((2, 2)))
    out["nokeys"] = (p, "no factors found")
    p = tmp_path / "gap.npz"
    np.savez(p, W1=np.ones((2, 2)), W3=np.ones((2, 2)))
    out["gap"] = (p, "missing")
    p = tmp_path / "shape.npz"
    np.savez(p, W1=np.ones((2, 2)), W2=np.ones((3, 3)))
    out["shape"] = (p, "W_2 has shape")
    p = tmp_path / "mshape.npz"
    np.savez(p, W1=np.ones((2, 2)), W2=np.ones((3, 2)), M=np.ones((2, 2)))
    out["mshape"] = (p, "target M has shape")
    p = tmp_path / "nan.npz"
    np.savez(p, W1=np.ones((2, 2)), W2=np.full((3, 2), np.nan))
    out["nan"] = (p, "non-finite")
    p = tmp_path / "one.npz"
    np.savez(p, W1=np.ones((2, 2)))
    out["one"] = (p, "depth L must be at least 2")
    out["folder"] = (tmp_path, "is a folder")
    return out


@pytest.mark.parametrize(
    "case", ["missing", "garbage", "nokeys", "gap", "shape", "mshape", "nan", "one", "folder"]
)
def test_inspect_bad_files_one_line_errors(tmp_path, capsys, case):
    path, match = bad_files(tmp_path)[case]
    code, out, err = run(capsys, "inspect", str(path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in err
    with pytest.raises(dmf.FactorFileError):
        dmf.load_factors(path)


def test_inspect_bad_eta(capsys):
    code, _, err = run(capsys, "inspect", str(EXAMPLES / "section6.npz"), "--eta", "-1")
    assert code == 2 and "--eta" in err


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "dmfsharp", "inspect", str(EXAMPLES / "section6.npz"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lambda_max"] == pytest.approx(44.0)


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    from dmfsharp.io import staged_folder, write_json

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with staged_folder(tmp_path / "run") as tmp:
            write_json(tmp / "b.json", {"y": 2})
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "run" / "b.json").stat().st_mode & 0o777 == 0o644
    # a failure inside leaves nothing behind
    with pytest.raises(RuntimeError):
        with staged_folder(tmp_path / "run2"):
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "run"]
    with pytest.raises(OSError, match="not empty"):
        with staged_folder(tmp_path / "run"):
            pass
