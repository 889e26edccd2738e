"""Every bad input of every command: one line on stderr, exit 2, no traceback, nothing left.

A table of bad files, arguments and destinations, run in-process through ``main([...])``.
Each case asserts the exit status, exactly one stderr line naming the option or file, no
traceback, no staging folder and every user file unchanged.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from dmfsharp import save_factors
from dmfsharp.cli import main


def _npy_header(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder of bad (and one good) input files, shared: no case may change it."""
    d = tmp_path_factory.mktemp("inputs")
    np.save(d / "single.npy", np.eye(2))
    (d / "renamed.npz").write_bytes((d / "single.npy").read_bytes())
    np.savez(d / "w01.npz", W01=np.eye(2), W02=np.eye(2))
    np.savez(d / "gap.npz", W1=np.eye(2), W3=np.eye(2))
    np.savez(d / "hugekey.npz", W1=np.eye(2), W99999999999999999999=np.eye(2))
    np.savez(d / "nofactors.npz", A=np.eye(2))
    save_factors(d / "good.npz", [np.eye(2), np.eye(2)])
    good = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(good[: len(good) // 2])
    (d / "empty.npz").write_bytes(b"")
    (d / "text.npz").write_text("not a zip")
    with zipfile.ZipFile(d / "bigheader.npz", "w") as z:  # header claims 100000 x 100000
        z.writestr("W1.npy", _npy_header((100000, 100000)) + b"\0" * 64)
    with zipfile.ZipFile(d / "liar.npz", "w") as z:  # header claims more than the member holds
        z.writestr("W1.npy", _npy_header((100, 100)) + b"\0" * 64)
        z.writestr("W2.npy", _npy_header((100, 100)) + b"\0" * 64)
    with zipfile.ZipFile(d / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("W1.npy", _npy_header((1000, 1000)) + b"\0" * 8_000_000)
    with zipfile.ZipFile(d / "objects.npz", "w") as z:
        z.writestr("W1.npy", _npy_header((2,), descr="|O") + b"\0" * 16)
    with zipfile.ZipFile(d / "deflate.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.save(buf, np.random.default_rng(0).standard_normal((40, 40)))
        z.writestr("W1.npy", buf.getvalue())
        z.writestr("W2.npy", buf.getvalue())
    raw = bytearray((d / "deflate.npz").read_bytes())
    raw[200:240] = b"\xff" * 40
    (d / "deflate.npz").write_bytes(bytes(raw))
    os.mkfifo(d / "fifo.npz")
    (d / "afile").write_text("user data")
    (d / "precious").mkdir()
    (d / "precious" / "thesis.tex").write_text("user data")
    np.savez(d / "plane_short.npz", zeta=np.ones(3))
    return d


BAD_FILES = [
    "single.npy",
    "renamed.npz",
    "w01.npz",
    "gap.npz",
    "hugekey.npz",
    "nofactors.npz",
    "truncated.npz",
    "empty.npz",
    "text.npz",
    "bigheader.npz",
    "liar.npz",
    "bomb.npz",
    "objects.npz",
    "deflate.npz",
    "fifo.npz",
    "missing.npz",
    "precious",
]

CASES = (
    [(["inspect", "{d}/" + f], f) for f in BAD_FILES]
    + [(["escape", "--minimum", "{d}/" + f, "--out", "{d}/o"], f) for f in BAD_FILES]
    + [
        (["escape", "--dims", "2,2,2", "--plane-file", "{d}/" + f, "--out", "{d}/o"], f)
        for f in ("single.npy", "fifo.npz", "truncated.npz", "bigheader.npz", "plane_short.npz")
    ]
    + [
        (["manifold", "--target", "{d}/" + f, "--out", "{d}/o", "--no-plot"], f)
        for f in ("truncated.npz", "fifo.npz", "bigheader.npz", "w01.npz", "missing.npz", "objects.npz")
    ]
    + [
        (["inspect", "{d}/good.npz", "--eta", "-1"], "--eta"),
        (["inspect", "{d}/good.npz", "--eta", "nan"], "--eta"),
        (["inspect"], "file"),
        (["inspect", "{d}/good.npz", "--bogus"], "--bogus"),
        (["nosuchcommand"], "nosuchcommand"),
        (["escape", "--dims", "100000,100000,100000", "--out", "{d}/o"], "--dims"),
        (["escape", "--dims", "4096,4096,4096", "--out", "{d}/o"], "--dims"),
        (["escape", "--dims", "2,x,2", "--out", "{d}/o"], "--dims"),
        (["escape", "--dims", "2,0,2", "--out", "{d}/o"], "--dims"),
        (["escape", "--dims", "2,2,2", "--iterations", "10000000000", "--out", "{d}/o"], "--iterations"),
        (["escape", "--dims", "2,2,2", "--iterations", "0", "--out", "{d}/o"], "--iterations"),
        (["escape", "--dims", "2,2,2", "--iterations", "1e3", "--out", "{d}/o"], "--iterations"),
        (["escape", "--dims", "2,2,2", "--grid", "100000", "--out", "{d}/o"], "--grid"),
        (["escape", "--dims", "2,2,2", "--seed", "-1", "--out", "{d}/o"], "--seed"),
        (["escape", "--dims", "2,2,2", "--seed", "99999999999999999999", "--out", "{d}/o"], "--seed"),
        (["escape", "--dims", "2,2,2", "--escape-threshold", "inf", "--out", "{d}/o"], "--escape-threshold"),
        (["escape", "--dims", "2,2,2", "--etas", "0.1,-2", "--out", "{d}/o"], "--etas"),
        (["escape", "--dims", "2,2,2", "--track-every", "0", "--out", "{d}/o"], "--track-every"),
        (["escape", "--dims", "2,2,2", "--out", "{d}/afile"], "afile"),
        (["escape", "--dims", "2,2,2", "--out", "{d}/precious"], "--overwrite"),
        (["escape", "--dims", "2,2,2", "--out", "{d}/precious", "--overwrite"], "marker"),
        (["escape", "--dims", "2,2,2", "--out", "{d}", "--overwrite"], "current folder"),
        (["manifold", "--num", "100000000", "--out", "{d}/o"], "--num"),
        (["manifold", "--num", "1", "--out", "{d}/o"], "--num"),
        (["manifold", "--s-min", "-1", "--out", "{d}/o"], "--s-min"),
        (["manifold", "--dims", "3,100000,3", "--out", "{d}/o"], "--dims"),
        (["manifold", "--out", "{d}/afile"], "afile"),
        (["manifold", "--out", "{d}/afile", "--overwrite"], "afile"),
        (["reproduce", "--out", "{d}/o", "--presets", "fig99"], "--presets"),
        (["reproduce", "--out", "{d}/o", "--iterations", "10000000000"], "--iterations"),
        (["reproduce", "--out", "{d}/o", "--grid", "1"], "--grid"),
        (["reproduce", "--out", "{d}/precious", "--overwrite"], "marker"),
        (["presets", "--bogus"], "--bogus"),
    ]
)


@pytest.mark.parametrize("argv, names", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(files, capsys, monkeypatch, argv, names):
    monkeypatch.setenv("DMFSHARP_MAX_BYTES", str(2**30))
    monkeypatch.chdir(files)
    before = {p: p.stat().st_mtime_ns for p in files.rglob("*") if not p.is_fifo()}
    code = main([a.format(d=files) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and ".tmp" not in err
    assert names in err
    after = {p: p.stat().st_mtime_ns for p in files.rglob("*") if not p.is_fifo()}
    assert after == before  # no staging folder, no output, no user file touched


def test_presets_json_into_a_closed_pipe_exits_quietly(capsys, monkeypatch):
    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["presets", "--json"]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["escape", "--dims", "2,2,2", "--iterations", "5", "--out", "{d}/o"],
        ["manifold", "--out", "{d}/o", "--num", "5"],
        ["reproduce", "--out", "{d}/o", "--presets", "fig7", "--iterations", "5"],
    ],
)
def test_missing_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    code = main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "dmfsharp[plot]" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_unexpected_errors_are_one_line_too(capsys, monkeypatch):
    import dmfsharp.cli.presets as presets

    def boom(args):
        raise RuntimeError("ARPACK error -9: Starting vector is zero.\nsecond line")

    monkeypatch.setattr(presets, "run", boom)
    code = main(["presets"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "ARPACK error -9" in err


@pytest.mark.parametrize("target", [None, np.eye(2)])
def test_an_exactly_zero_hessian_is_answered(tmp_path, capsys, target):
    # all factors zero: at M = 0 the Hessian is exactly zero (a minimum); at M = I it is not
    # a minimum and the Lanczos route must not fail on its zero start (ArpackError -9)
    save_factors(tmp_path / "zero.npz", [np.zeros((2, 2)), np.zeros((2, 2))], target=target)
    code = main(["inspect", str(tmp_path / "zero.npz"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert '"lambda_max"' in out


def test_bfloat16_weights_are_widened(tmp_path, capsys):
    # issue 9 item 5: every floating dtype is widened to float64, not refused; the product of
    # W2 = ones(1, 3) and W1 = ones(3, 2) is a minimum of itself, and 1, 1.5, 2 are exact in
    # bfloat16, so the sharpness is that of the float64 chain (Corollary 6 checks it)
    torch = pytest.importorskip("torch")
    w1 = torch.tensor([[1.0, 1.5], [2.0, 1.0], [1.0, 1.0]], dtype=torch.bfloat16)
    torch.save({"0.weight": w1, "1.weight": torch.ones(1, 3, dtype=torch.bfloat16)}, tmp_path / "w.pt")
    assert main(["inspect", str(tmp_path / "w.pt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    W1, W2 = w1.double().numpy(), np.ones((1, 3))
    # L = 2: lambda_max = 2 (sigma_max(W1)^2 + sigma_max(W2)^2) (Corollary 6)
    expected = 2 * (np.linalg.norm(W1, 2) ** 2 + np.linalg.norm(W2, 2) ** 2)
    assert info["lambda_max"] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("kind", ["junk", "empty"])
def test_bad_torch_files_are_one_line(tmp_path, capsys, kind):
    pytest.importorskip("torch")
    path = tmp_path / "w.pt"
    if kind == "junk":
        path.write_bytes(b"not a torch file")
    else:
        path.write_bytes(b"")
    code = main(["inspect", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "w.pt" in err, err


@pytest.mark.parametrize(
    "args, option",
    [
        (["--dims", "4,8,3", "--iterations", "10000000000"], "--iterations"),
        (["--dims", "100000,100000,100000"], "--dims"),
        (["--dims", "4,8,3", "--seed", "-1"], "--seed"),
        (["--dims", "4,8,3", "--track-every", "0"], "--track-every"),
        (["--dims", "4,8,3", "--sample-every", "0"], "--sample-every"),
        (["--dims", "4,8,3", "--track-every", "3", "--sample-every", "4"], "--sample-every"),
        (["--dims", "4,8,3", "--init-scale", "-1"], "--init-scale"),
        (["--dims", "4,8,3", "--weight-decay", "nan"], "--weight-decay"),
    ],
)
def test_train_refuses_before_allocating_and_names_the_option(tmp_path, capsys, args, option):
    code = main(["train", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and option in err, err
    assert not (tmp_path / "out").exists()
