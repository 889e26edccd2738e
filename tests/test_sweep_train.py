"""``kind = "train"`` sweeps: spec, rows against independent references, store, resume, reports."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dmfsharp.sweep import SpecError, load_spec, parse_spec, run_sweep
from dmfsharp.sweep.train_task import TRAIN_COLUMNS, run_train_task, train_task_setup

distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

SRC = str(Path(__file__).resolve().parents[1] / "src")

TRAIN = {
    "kind": "train",
    "name": "tt",
    "seeds": 2,
    "depths": [2, 3],
    "d0": [2],
    "dL": [2],
    "widths": [2, 3],
    "init_scales": [0.1, 0.3],
    "eta_ratios": [0.5, 0.9, 1.2, 3.0],
    "iterations": 1500,
    "track_every": 50,
}


def train_spec(**over):
    s = {**TRAIN, **over}
    return parse_spec({"sweep": {k: v for k, v in s.items() if v is not None}})


def train_rows(folder):
    conn = sqlite3.connect(f"file:{Path(folder) / 'results.sqlite'}?mode=ro", uri=True)
    try:
        cols = ", ".join(TRAIN_COLUMNS)
        return conn.execute(f"SELECT {cols} FROM train_runs ORDER BY task_id, run_index").fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    ) as c:
        yield c


@pytest.fixture(scope="module")
def finished(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "sweep"
    spec = train_spec()
    summary = run_sweep(spec, out, cluster=cluster)
    assert summary.failed == 0
    return spec, out


# --------------------------------------------------------------------------- spec


def test_train_spec_counts_and_ids_do_not_depend_on_the_number_of_seeds():
    spec = train_spec()
    assert spec.kind == "train"
    assert spec.num_tasks == 2 * 2 * 2  # depths x seeds x scales
    assert spec.num_runs == spec.num_tasks * 4
    more = {t.task_id: t for t in train_spec(seeds=5).tasks()}
    for t in spec.tasks():
        assert t.task_id in more and more[t.task_id] == t
    # every init scale of a seed trains towards the same target
    a, b = [t for t in spec.tasks() if t.depth == 2 and t.seed == 0]
    assert a.target_seed == b.target_seed and a.init_seed != b.init_seed


@pytest.mark.parametrize(
    "over, match",
    [
        ({"radius": 1e-10}, "belong to kind = 'escape'"),
        ({"step_multipliers": [1.1]}, "belong to kind = 'escape'"),
        ({"eta_ratios": [0.5, 0.5]}, "repeated"),
        ({"eta_ratios": [-1.0]}, "eta_ratios must be positive"),
        ({"init_scales": [0.0]}, "init_scales must be positive"),
        ({"init": "identity"}, "square layers"),
        ({"init": "zeros"}, "init"),
        ({"converge_tol": 2.0}, "converge_tol"),
        ({"max_period": 1}, "max_period"),
        ({"kind": "walk"}, "kind"),
    ],
)
def test_train_spec_errors_name_the_key(over, match):
    with pytest.raises(SpecError, match=match):
        train_spec(**over)


def test_escape_spec_refuses_train_keys():
    with pytest.raises(SpecError, match="belong to kind = 'train'"):
        parse_spec(
            {
                "sweep": {
                    "name": "e",
                    "seeds": 1,
                    "dims": [[1, 2, 1]],
                    "step_multipliers": [1.1],
                    "iterations": 10,
                    "eta_ratios": [0.5],
                }
            }
        )


def test_seeds_override_keeps_the_shared_tasks(tmp_path):
    f = tmp_path / "spec.toml"
    f.write_text(
        '[sweep]\nkind = "train"\nname = "s"\nseeds = 4\ndims = [[2, 3, 2]]\n'
        "init_scales = [0.1]\neta_ratios = [0.5]\niterations = 10\n"
    )
    full, quick = load_spec(f), load_spec(f, seeds=2)
    assert quick.seeds == (0, 1) and full.seeds == (0, 1, 2, 3)
    assert [t.task_id for t in quick.tasks()] == [t.task_id for t in full.tasks()][:2]
    with pytest.raises(SpecError, match="more than the spec's 4 seeds"):
        load_spec(f, seeds=5)


# --------------------------------------------------------------------------- rows


@pytest.mark.slow
def test_train_rows_match_independent_references():
    """eta from an independent SVD; landing lambda_max from a dense autograd Hessian."""
    torch_ref = pytest.importorskip("tests.autodiff_reference")
    spec = train_spec(seeds=1, depths=[2], init_scales=[0.1], iterations=3000)
    task = next(spec.tasks())
    res = run_train_task(task, "tt", save_points=True)
    dims, m = train_task_setup(task)
    assert m.shape == (dims[-1], dims[0])
    sigma = np.linalg.svd(m, compute_uv=False)[0]
    flat = 2 * 2 * sigma ** (2 - 2 / 2)  # 2 L sigma_max^(2 - 2/L), L = 2
    statuses = [r["status"] for r in res["rows"]]
    assert statuses[:2] == ["converged", "converged"]  # below eta_crit, small init
    assert statuses[3] != "converged"  # 3 eta_crit: no global minimum is stable
    for row, final in zip(res["rows"], res["finals"], strict=True):
        assert row["eta"] == pytest.approx(row["eta_ratio"] * 2 / flat, rel=1e-12)
        assert set(row) >= set(TRAIN_COLUMNS) - {"minimum_file", "final_file"}
        if row["status"] == "converged":
            h = torch_ref.hessian(final, M=m)
            lam = float(np.linalg.eigvalsh(h)[-1])
            assert row["final_lambda_max"] == pytest.approx(lam, rel=1e-6)
            assert row["lambda_eta_half"] <= 1 + 1e-6  # a stable landing (Wu et al. 2018)
            assert row["flatness_ratio"] >= 1 - 1e-6  # never flatter than lambda_flat (eq. 35)


# --------------------------------------------------------------------------- store, export, reports


def test_train_rows_go_to_their_own_table_in_process(tmp_path):
    """Without Dask: the store keeps train rows in train_runs, checks them, reads them back."""
    from dmfsharp.sweep import ResultStore, read_runs
    from dmfsharp.sweep.task import run_task
    from dmfsharp.sweep.train_stats import train_summary_table

    spec = train_spec(seeds=1, depths=[2], init_scales=[0.1], iterations=200, engine="numpy")
    with ResultStore(tmp_path, spec) as store:
        for task in spec.tasks():
            res = run_task(task, spec.name)
            store.record_done(task, res["rows"], res["elapsed"])
        assert store.counts() == {"done": spec.num_tasks, "failed": 0, "runs": spec.num_runs}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dmfsharp-sweep.lock", "results.sqlite"]
    df = read_runs(tmp_path)
    assert df["eta_ratio"].tolist() == list(spec.eta_ratios)
    table = train_summary_table(df)
    assert table["runs"].sum() == spec.num_runs


@pytest.mark.slow
def test_train_sweep_stores_every_run_and_exports(finished, tmp_path):
    from dmfsharp.sweep import export_runs, read_runs
    from dmfsharp.sweep.integrity import check_store

    spec, out = finished
    df = read_runs(out)
    assert len(df) == spec.num_runs and list(df.columns) == list(TRAIN_COLUMNS)
    assert set(df["status"]) <= {"converged", "diverged", "budget"}
    conn = sqlite3.connect(out / "results.sqlite")
    try:
        assert check_store(conn) == []
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    finally:
        conn.close()
    assert not (out / "results.sqlite-wal").exists() and not (out / "results.sqlite-shm").exists()
    path = export_runs(out, "parquet", tmp_path / "r.parquet")
    back = pd.read_parquet(path)
    assert len(back) == spec.num_runs
    assert back["eta_ratio"].tolist() == df["eta_ratio"].tolist()


@pytest.mark.slow
def test_a_damaged_train_task_is_found_and_recomputed(cluster, tmp_path):
    from dmfsharp.sweep.integrity import StoreDamagedError

    spec = train_spec(seeds=1, depths=[2], iterations=300)
    out = tmp_path / "s"
    run_sweep(spec, out, cluster=cluster)
    before = train_rows(out)
    conn = sqlite3.connect(out / "results.sqlite")
    conn.execute("DELETE FROM train_runs WHERE rowid = (SELECT min(rowid) FROM train_runs)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreDamagedError, match="missing, extra or altered"):
        run_sweep(spec, out, cluster=cluster)
    summary = run_sweep(spec, out, cluster=cluster, repair=True)
    assert summary.done == 1
    assert train_rows(out) == before


@pytest.mark.slow
def test_sweep_report_and_study_report_of_a_train_sweep(finished, tmp_path):
    from dmfsharp.sweep import write_report
    from dmfsharp.sweep.study import write_study

    spec, out = finished
    rep = write_report(out)
    for name in ("converged_fraction.png", "landing_edge.png", "above_critical.png", "summary.csv"):
        assert (rep / name).stat().st_size > 0
    written = write_study(out, tmp_path / "study")
    table = pd.read_csv(tmp_path / "study" / "summary.csv")
    assert table["runs"].sum() == spec.num_runs
    assert (table["converged"] + table["diverged"] + table["budget"] == table["runs"]).all()
    assert (
        (table["p_converged_lo"] <= table["p_converged"]) & (table["p_converged"] <= table["p_converged_hi"])
    ).all()
    meta = json.loads((tmp_path / "study" / "meta.json").read_text())
    assert meta["runs"] == spec.num_runs and meta["tasks_done"] == spec.num_tasks
    assert meta["kind"] == "train" and meta["spec_fingerprint"] == spec.fingerprint()
    assert meta["runs_per_second_per_worker"] > 0
    for p in written:
        if p.suffix == ".png":
            assert p.stat().st_size < 150_000


@pytest.mark.slow
def test_study_report_of_an_escape_sweep(cluster, tmp_path):
    from dmfsharp.sweep.study import write_study

    spec = parse_spec(
        {
            "sweep": {
                "name": "e",
                "seeds": 2,
                "depths": [2, 3],
                "d0": [1],
                "dL": [1],
                "widths": [2, 3],
                "minimizers": ["random", "flattest"],
                "direction": ["top", "random"],
                "step_multipliers": [0.9, 1.2],
                "iterations": 600,
            }
        }
    )
    run_sweep(spec, tmp_path / "s", cluster=cluster)
    write_study(tmp_path / "s", tmp_path / "study")
    table = pd.read_csv(tmp_path / "study" / "summary.csv")
    assert table["runs"].sum() == spec.num_runs
    parts = ["escaped_converged", "escaped_unconverged", "returned", "diverged", "undecided"]
    assert (table[parts].sum(axis=1) == table["runs"]).all()
    assert (table.loc[table["step_multiplier"] == 0.9, "escaped"] == 0).all()  # stable: linear theory
    assert {p.name for p in (tmp_path / "study").glob("*.png")} == {
        "escape_probability.png",
        "escape_time_error.png",
        "landing.png",
        "outcomes.png",
    }


# --------------------------------------------------------------------------- kill and resume


def _count_tasks(db):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_train_sweep_resumes_without_losing_a_row(cluster, tmp_path):
    psutil = pytest.importorskip("psutil")
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        "\n".join(
            [
                "[sweep]",
                'kind = "train"',
                'name = "kill"',
                "seeds = 10",
                "depths = [2, 3]",
                "d0 = [2]",
                "dL = [2]",
                "widths = [2, 3]",
                "init_scales = [0.1]",
                "eta_ratios = [0.5, 1.2]",
                "iterations = 1500",
                "",
            ]
        )
    )
    spec = load_spec(spec_file)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dmfsharp", "sweep", str(spec_file), "--out", str(out)]
    cmd += ["--workers", "1", "--max-in-flight", "2", "--quiet", "--no-report"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _count_tasks(out / "results.sqlite") >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the sweep finished before it could be interrupted"
        kids = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _, alive = psutil.wait_procs(kids, timeout=30)
        for k in alive:
            k.kill()
    done_at_kill = _count_tasks(out / "results.sqlite")
    assert 3 <= done_at_kill < spec.num_tasks
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"({spec.num_tasks - done_at_kill} now, {done_at_kill} before)" in res.stdout
    run_sweep(spec, tmp_path / "clean", cluster=cluster)
    resumed = train_rows(out)
    assert len(resumed) == spec.num_runs
    assert resumed == train_rows(tmp_path / "clean")
