"""Sweeps on Dask distributed: spec validation, deterministic tasks, the store, resume,
failures, export and report. Tiny budgets; every cluster is closed."""

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

from dmfsharp import flat_sharpness, load_factors, numerical_sharpness, random_minimizer, sharpness
from dmfsharp.sweep import ResultStore, SpecError, load_spec, parse_spec, run_sweep
from dmfsharp.sweep.task import RUN_COLUMNS, build_minimizer, run_task

distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

SRC = str(Path(__file__).resolve().parents[1] / "src")

BASE = {
    "name": "t",
    "seeds": 3,
    "depths": [2, 3],
    "d0": [1, 2],
    "dL": [1],
    "widths": [2, 4],
    "radius": 1e-10,
    "step_multipliers": [0.8, 1.2],
    "iterations": 400,
}


def spec_of(**over):
    s = {**BASE, **over}
    s = {k: v for k, v in s.items() if v is not None}
    return parse_spec({"sweep": s})


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=50,
    ) as c:
        yield c


def rows(folder):
    conn = sqlite3.connect(f"file:{Path(folder) / 'results.sqlite'}?mode=ro", uri=True)
    try:
        cols = [c for c in RUN_COLUMNS]
        return conn.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY task_id, run_index").fetchall()
    finally:
        conn.close()


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize(
    "over, match",
    [
        ({"name": ""}, "name"),
        ({"bogus": 1}, "unknown key"),
        ({"covariance": [1.0]}, "covariance is not supported"),
        ({"widths": [0, 3]}, "widths"),
        ({"widths": [4, 2]}, "widths"),
        ({"d0": [3], "dL": [3], "widths": [2, 4]}, "eq. 17"),
        ({"depths": [1]}, "depths must be >= 2"),
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"seeds": True}, "seeds"),
        ({"radius": -1.0}, "radius must be positive"),
        ({"step_multipliers": [1.1, 1.1]}, "repeated"),
        ({"step_multipliers": None}, "step_multipliers"),
        ({"iterations": None}, "iterations"),
        ({"iterations": 2.5}, "iterations must be an integer"),
        ({"direction": "sideways"}, "direction"),
        ({"minimizers": ["random", "sharpest"]}, "minimizers"),
        ({"architectures": ["fig99"]}, "unknown preset"),
        ({"dims": [[1, 2]]}, "depth L >= 2"),
        ({"dims": [[3, 1, 3]]}, "eq. 17"),
        ({"depths": None}, "missing"),
        ({"etas": [0.0]}, "etas must be positive"),
        ({"escape_threshold": 0}, "escape_threshold must be positive"),
    ],
)
def test_spec_validation_errors_name_the_key(over, match):
    with pytest.raises(SpecError, match=match):
        spec_of(**over)


def test_default_escape_threshold_is_the_engines():
    import inspect

    from dmfsharp.dynamics import escape_experiment
    from dmfsharp.sweep.spec import DEFAULT_ESCAPE_THRESHOLD

    default = inspect.signature(escape_experiment).parameters["escape_threshold"].default
    assert DEFAULT_ESCAPE_THRESHOLD == default
    assert spec_of().escape_threshold == default
    assert spec_of(escape_threshold=1e-3).to_dict()["escape_threshold"] == 1e-3


def test_spec_needs_sweep_table_and_valid_toml(tmp_path):
    with pytest.raises(SpecError, match=r"\[sweep\] table"):
        parse_spec({"name": "x"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep\nname = 1\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.toml")


def test_example_spec_files_parse(tmp_path):
    text = """
[sweep]
name = "escape-small"
seeds = 200                    # random minimizers per architecture (seeds 0..199)
depths = [2, 3, 4]
d0 = [1, 3]                    # input dims to try
dL = [1, 2]                    # output dims to try
widths = [3, 8]                # hidden widths drawn per seed, inclusive range
radius = 1e-10
step_multipliers = [0.9, 1.1, 1.5]
iterations = 20000
direction = "top"              # or "random"
"""
    f = tmp_path / "s.toml"
    f.write_text(text)
    spec = load_spec(f)
    assert (spec.num_tasks, spec.num_runs) == (200 * 3 * 2 * 2, 200 * 3 * 2 * 2 * 3)
    example = Path(__file__).resolve().parents[1] / "examples" / "sweep-escape-small.toml"
    assert load_spec(example).num_runs == 360


def test_spec_counts_presets_and_explicit_dims():
    spec = spec_of(
        architectures=["fig7", "fig1"],
        dims=[[2, 3, 2, 1]],
        minimizers=["random", "flattest"],
        radius=None,
        radii=[1e-12, 1e-9],
        etas=[0.01],
    )
    n_arch = 2 * 2 * 1 + 3  # drawn (depth x d0 x dL) + two presets + one explicit
    assert spec.num_tasks == n_arch * 3 * 2 * 2
    assert spec.runs_per_task == 3
    tasks = list(spec.tasks())
    assert len(tasks) == spec.num_tasks
    assert len({t.task_id for t in tasks}) == len(tasks)
    # Fig. 7: 5 layers and N = 293 as the caption and text say (the printed widths drop a 24)
    fig7 = {t.dims for t in tasks if t.architecture == "fig7"}
    assert fig7 == {(1, 9, 4, 8, 24, 1)}
    (d,) = fig7
    assert sum(a * b for a, b in zip(d, d[1:])) == 293


def test_task_ids_and_seeds_are_deterministic_and_shared_where_documented():
    a = list(spec_of(minimizers=["random", "flattest"]).tasks())
    b = list(spec_of(minimizers=["random", "flattest"]).tasks())
    assert [t.task_id for t in a] == [t.task_id for t in b]
    assert [t.minimizer_seed for t in a] == [t.minimizer_seed for t in b]
    # the minimizer kind changes the task but not the minimizer seed (same target M)
    pairs = {}
    for t in a:
        pairs.setdefault((t.architecture, t.depth, t.d0, t.dL, t.seed), []).append(t)
    for ts in pairs.values():
        assert len(ts) == 2 and ts[0].task_id != ts[1].task_id
        assert ts[0].minimizer_seed == ts[1].minimizer_seed
    # a different budget is a different task with the same minimizer
    c = list(spec_of(iterations=999).tasks())
    d = list(spec_of().tasks())
    assert all(x.task_id != y.task_id for x, y in zip(c, d, strict=True))
    assert [x.minimizer_seed for x in c] == [y.minimizer_seed for y in d]
    # different user seeds give different minimizers
    assert len({t.minimizer_seed for t in d}) == len(d)


def test_build_minimizer_follows_the_recorded_seeds():
    spec = spec_of(minimizers=["random", "flattest"])
    for task in list(spec.tasks())[:6]:
        chain, m = build_minimizer(task)
        ref = random_minimizer(chain.dims, seed=task.minimizer_seed)
        np.testing.assert_allclose(m, ref.product, rtol=0, atol=0)
        if task.minimizer == "random":
            assert all(np.array_equal(w, r) for w, r in zip(chain.factors, ref.factors, strict=True))
        else:
            np.testing.assert_allclose(chain.product, m, atol=1e-12 * np.linalg.norm(m))
            assert sharpness(chain, target=m) == pytest.approx(flat_sharpness(m, chain.depth), rel=1e-10)


# --------------------------------------------------------------------------- running


def _check_rows_consistent(folder, spec):
    df = pd.read_sql_query("SELECT * FROM runs", sqlite3.connect(Path(folder) / "results.sqlite"))
    assert len(df) == spec.num_runs
    assert not df.duplicated(["task_id", "run_index"]).any()
    assert set(df["task_id"]) == {t.task_id for t in spec.tasks()}
    np.testing.assert_allclose(df["eta"] * df["lambda_max"] / 2, df["step_multiplier"], rtol=1e-12)
    assert set(df["step_multiplier"].round(12)) == set(spec.step_multipliers)
    assert set(df["status"]) <= {"escaped", "returned", "diverged", "undecided"}
    # an escaped run that converged sits on a linearly stable minimum (lambda_max <= 2/eta)
    conv = df[(df["status"] == "escaped") & (df["stop_reason"] == "converged")]
    assert conv["final_is_stable"].astype(bool).all()
    known = df.dropna(subset=["final_is_stable"])
    np.testing.assert_array_equal(
        known["final_is_stable"].astype(bool), known["final_edge_ratio"] <= 1 + 1e-9
    )
    # independent recomputation: rebuild each minimizer from the recorded seed and dims,
    # compare the stored sharpness with a dense Hessian eigenvalue
    by_task = {t.task_id: t for t in spec.tasks()}
    for _, r in df.drop_duplicates("task_id").head(6).iterrows():
        chain, m = build_minimizer(by_task[r["task_id"]])
        assert json.loads(r["dims"]) == list(chain.dims)
        dense = numerical_sharpness(chain, target=m, method="dense").value
        assert r["lambda_max"] == pytest.approx(dense, rel=1e-9)
        assert r["flat_lambda_max"] == pytest.approx(flat_sharpness(m, chain.depth), rel=1e-12)
    return df


def test_small_sweep_on_local_cluster_is_complete_consistent_and_repeatable(cluster, tmp_path):
    spec = spec_of(minimizers=["random", "flattest"])
    s1 = run_sweep(spec, tmp_path / "a", cluster=cluster, max_in_flight=3)
    assert (s1.done, s1.failed, s1.skipped, s1.runs) == (spec.num_tasks, 0, 0, spec.num_runs)
    df = _check_rows_consistent(tmp_path / "a", spec)
    assert (df["status"] == "escaped").any() and (df["status"] == "returned").any()
    # re-running resumes: nothing to do, nothing duplicated
    s2 = run_sweep(spec, tmp_path / "a", cluster=cluster)
    assert (s2.done, s2.skipped) == (0, spec.num_tasks)
    # a fresh run gives identical rows (seeds derived from the spec, not from the order),
    # here through the scheduler's address as against an existing cluster
    s3 = run_sweep(spec, tmp_path / "b", scheduler=cluster.scheduler_address, max_in_flight=1)
    assert s3.done == spec.num_tasks and s3.workers == 2
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    # the spec is kept in the store, and another spec is refused in this folder
    conn = sqlite3.connect(tmp_path / "a" / "results.sqlite")
    stored = json.loads(conn.execute("SELECT spec_json FROM spec").fetchone()[0])
    conn.close()
    assert stored == spec.to_dict()
    with pytest.raises(ValueError, match="different spec"):
        run_sweep(spec_of(seeds=4), tmp_path / "a", cluster=cluster)


def test_tasks_on_the_cluster_stay_within_the_window(cluster, tmp_path):
    import threading

    spec = spec_of(seeds=8, iterations=2000)  # 32 tasks through a window of 3
    seen, stop = [], threading.Event()

    def watch():
        # in flight = submitted and not finished; a finished task lingers in 'memory'
        # until the driver has read its result and released it
        while not stop.is_set():
            seen.append(
                sum(
                    k.startswith("dmfsharp-sweep-")
                    and ts.state not in ("memory", "released", "forgotten", "erred")
                    for k, ts in list(cluster.scheduler.tasks.items())
                )
            )
            time.sleep(0.002)

    th = threading.Thread(target=watch)
    th.start()
    try:
        run_sweep(spec, tmp_path, cluster=cluster, max_in_flight=3)
    finally:
        stop.set()
        th.join()
    assert spec.num_tasks == 32 and max(seen) <= 3 and max(seen) >= 1


def test_stored_tasks_recompute_to_identical_rows(cluster, tmp_path):
    from dmfsharp.sweep.task import recompute_task

    spec = spec_of(seeds=2, direction=["top", "random"], minimizers=["random", "flattest"])
    run_sweep(spec, tmp_path, cluster=cluster)
    stored = rows(tmp_path)
    sample = sorted({r[0] for r in stored})[::5]
    assert sample
    for task_id in sample:
        again = [tuple(r.get(c) for c in RUN_COLUMNS) for r in recompute_task(tmp_path, task_id)]
        again = [tuple(int(v) if isinstance(v, bool) else v for v in r) for r in again]
        assert again == [r for r in stored if r[0] == task_id]
    with pytest.raises(ValueError, match="no task"):
        recompute_task(tmp_path, "0" * 16)


@pytest.mark.slow
def test_killed_worker_does_not_lose_tasks(tmp_path):
    import threading

    spec = spec_of(seeds=6, iterations=3000)
    out = tmp_path / "w"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    ) as c:
        with distributed.Client(c) as client:
            pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _count_tasks(out / "results.sqlite") < 3:
                time.sleep(0.01)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(_count_tasks(out / "results.sqlite"))

        th = threading.Thread(target=kill_one)
        th.start()
        s = run_sweep(spec, out, cluster=c, max_in_flight=4)
        th.join()
    assert killed and killed[0] < spec.num_tasks  # the worker died mid-sweep
    assert (s.done, s.failed) == (spec.num_tasks, 0)
    _check_rows_consistent(out, spec)


def test_save_points_writes_minimizers_and_final_points(cluster, tmp_path):
    spec = spec_of(seeds=1, depths=[2], d0=[1])
    run_sweep(spec, tmp_path, cluster=cluster, save_points=True)
    df = pd.read_sql_query("SELECT * FROM runs", sqlite3.connect(tmp_path / "results.sqlite"))
    assert df["minimum_file"].notna().all()
    for _, r in df.iterrows():
        chain, _ = load_factors(tmp_path / r["minimum_file"])
        assert list(chain.dims) == json.loads(r["dims"])
        assert sharpness(chain) == pytest.approx(r["lambda_max"], rel=1e-12)
        if r["final_file"] is not None:
            final, _ = load_factors(tmp_path / r["final_file"])
            assert sharpness(final) == pytest.approx(r["final_lambda_max"], rel=1e-12)


def _flaky_task(task, name, save_points):
    """Fails for every task of seed 1; otherwise the real task function."""
    if task.seed == 1:
        raise RuntimeError(f"injected failure for seed {task.seed}")
    return run_task(task, name, save_points)


def test_failed_tasks_are_recorded_and_retried_on_resume(cluster, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spec = spec_of()
    s = run_sweep(spec, tmp_path, cluster=cluster, task_fn=_flaky_task)
    n_bad = sum(t.seed == 1 for t in spec.tasks())
    assert (s.failed, s.done) == (n_bad, spec.num_tasks - n_bad)
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    errors = conn.execute("SELECT error FROM tasks WHERE status = 'failed'").fetchall()
    assert len(errors) == n_bad and all("injected failure" in e[0] for e in errors)
    assert conn.execute("SELECT count(*) FROM runs WHERE seed = 1").fetchone()[0] == 0
    conn.close()
    # --no-retry-failed leaves them, the default tries them again
    s2 = run_sweep(spec, tmp_path, cluster=cluster, retry_failed=False)
    assert s2.done == 0 and s2.failed == 0
    s3 = run_sweep(spec, tmp_path, cluster=cluster)
    assert (s3.done, s3.failed) == (n_bad, 0)
    _check_rows_consistent(tmp_path, spec)
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    assert conn.execute("SELECT max(attempts) FROM tasks").fetchone()[0] == 2
    conn.close()


def _broken_task(task, name, save_points):
    raise ImportError("no module named dmfsharp on this worker")


def test_sweep_stops_when_every_task_fails(cluster, tmp_path):
    import cloudpickle

    from dmfsharp.sweep.driver import SweepAborted

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spec = spec_of(seeds=5)
    with pytest.raises(SweepAborted, match="first .* tasks all failed.*no module named dmfsharp"):
        run_sweep(spec, tmp_path, cluster=cluster, task_fn=_broken_task, abort_after=4, max_in_flight=2)
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    n_failed = conn.execute("SELECT count(*) FROM tasks WHERE status = 'failed'").fetchone()[0]
    conn.close()
    assert 4 <= n_failed < spec.num_tasks
    from dmfsharp.sweep import write_report

    html = (write_report(tmp_path) / "index.html").read_text()  # no runs yet, only failures
    assert f"Failed tasks ({n_failed})" in html and "no module named dmfsharp" in html
    s = run_sweep(spec, tmp_path, cluster=cluster)  # the next run retries them
    assert (s.done, s.failed) == (spec.num_tasks, 0)


def test_unreachable_scheduler_leaves_nothing_behind(tmp_path):
    import socket

    with socket.socket() as sock:  # a free port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "never"
    with pytest.raises(OSError, match="cannot reach the Dask scheduler"):
        run_sweep(spec_of(), out, scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=1)
    assert not out.exists()


def test_store_refuses_to_store_a_task_twice(tmp_path):
    spec = spec_of(seeds=1, depths=[2], d0=[1])
    task = next(spec.tasks())
    out = run_task(task, spec.name)
    with ResultStore(tmp_path, spec) as store:
        store.record_done(task, out["rows"], 0.0)
        with pytest.raises(ValueError, match="already stored"):
            store.record_done(task, out["rows"], 0.0)
        store.record_failed(task, "late failure")  # ignored for a done task
        assert store.task_status(task.task_id) == "done"
        assert store.counts() == {"done": 1, "failed": 0, "runs": 2}


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
def test_killed_driver_resumes_without_losing_or_duplicating(cluster, tmp_path):
    psutil = pytest.importorskip("psutil")
    spec_text = "\n".join(
        [
            "[sweep]",
            'name = "kill"',
            "seeds = 12",
            "depths = [2, 3]",
            "d0 = [1]",
            "dL = [1, 2]",
            "widths = [2, 4]",
            "step_multipliers = [0.9, 1.2]",
            "iterations = 3000",
            "",
        ]
    )
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(spec_text)
    spec = load_spec(spec_file)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "dmfsharp",
        "sweep",
        str(spec_file),
        "--out",
        str(out),
        "--workers",
        "1",
        "--max-in-flight",
        "2",
        "--quiet",
        "--no-report",
    ]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = []
    try:
        deadline = time.monotonic() + 120
        n = 0
        while time.monotonic() < deadline and proc.poll() is None:
            n = _count_tasks(out / "results.sqlite")
            if n >= 3:
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
    # resume with the same command (minus the kill) and compare with an uninterrupted run
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"({spec.num_tasks - done_at_kill} now, {done_at_kill} before)" in res.stdout
    run_sweep(spec, tmp_path / "clean", cluster=cluster)
    assert rows(out) == rows(tmp_path / "clean")
    _check_rows_consistent(out, spec)


# --------------------------------------------------------------------------- export, report, CLI


@pytest.fixture(scope="module")
def finished(cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    spec = spec_of(minimizers=["random", "flattest"], etas=[0.05])
    run_sweep(spec, folder, cluster=cluster)
    return folder, spec


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_round_trips_through_pandas(finished, fmt, tmp_path):
    from dmfsharp.cli import main
    from dmfsharp.sweep.export import read_runs

    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder, spec = finished
    dest = tmp_path / f"out.{fmt}"
    assert main(["sweep-export", str(folder), "--format", fmt, "--output", str(dest)]) == 0
    ref = read_runs(folder)
    got = pd.read_parquet(dest) if fmt == "parquet" else pd.read_csv(dest)
    assert len(got) == spec.num_runs == len(ref)
    assert list(got.columns) == list(RUN_COLUMNS)
    if fmt == "csv":
        got["final_is_stable"] = got["final_is_stable"].astype("boolean")
        for c in ("escape_iteration", "steps"):
            got[c] = got[c].astype("Int64")
        for c in ("minimum_file", "final_file"):  # CSV has no None, only empty fields
            assert got[c].isna().all() and ref[c].isna().all()
            got[c] = ref[c]
    pd.testing.assert_frame_equal(got, ref, check_dtype=(fmt == "parquet"))


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    from dmfsharp.sweep.report import wilson_interval

    for k, n in [(0, 10), (3, 10), (10, 10), (57, 200)]:
        lo, hi = wilson_interval(k, n)
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (float(lo), float(hi)) == pytest.approx((ci.low, ci.high), abs=1e-12)
    lo, hi = wilson_interval(0, 0)
    assert np.isnan(lo) and np.isnan(hi)


def test_report_writes_figures_table_and_index(finished):
    from dmfsharp.cli import main
    from dmfsharp.sweep.export import read_runs
    from dmfsharp.sweep.report import summary_table

    folder, spec = finished
    assert main(["sweep-report", str(folder)]) == 0
    rep = folder / "report"
    names = {p.name for p in rep.iterdir()}
    assert {
        "escape_probability.png",
        "edge_distribution.png",
        "escape_time.png",
        "sharpness_vs_depth.png",
        "summary.csv",
        "index.html",
    } <= names
    html = (rep / "index.html").read_text()
    assert all(f'src="{n}"' in html for n in names if n.endswith(".png"))
    table = summary_table(read_runs(folder))
    assert table["runs"].sum() == spec.num_runs
    assert (table[["escaped", "returned", "diverged", "undecided"]].sum(axis=1) == table["runs"]).all()
    assert ((table["p_escape_lo"] <= table["p_escape"]) & (table["p_escape"] <= table["p_escape_hi"])).all()
    assert not any(p.name.startswith(".report") for p in folder.iterdir())


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from dmfsharp.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text(
        '[sweep]\nname = "x"\nseeds = 2\ndepths = [2]\nd0 = [1]\ndL = [1]\n'
        "widths = [1, 2]\nstep_multipliers = [-1.0]\niterations = 10\n"
    )
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "step_multipliers must be positive" in err
    assert not (tmp_path / "o").exists()
    assert main(["sweep-report", str(tmp_path / "nothing")]) == 2
    assert "no sweep results" in capsys.readouterr().err
    # without Dask distributed: a clear message naming the extra
    spec.write_text(spec.read_text().replace("-1.0", "1.1"))
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'dmfsharp[sweep]'" in capsys.readouterr().err


def test_engine_is_part_of_the_spec_and_the_task_ids():
    a = spec_of()
    assert a.engine == "numpy" and a.to_dict()["engine"] == "numpy"
    b = spec_of(engine="numba")
    assert a.fingerprint() != b.fingerprint()
    ta, tb = next(a.tasks()), next(b.tasks())
    assert ta.task_id != tb.task_id and tb.engine == "numba"
    assert ta.minimizer_seed == tb.minimizer_seed and ta.engine_seed == tb.engine_seed
    with pytest.raises(SpecError, match="engine must be one of"):
        spec_of(engine="cuda")


def test_task_runs_on_the_engine_its_spec_names():
    pytest.importorskip("numba")
    from dmfsharp.sweep.task import run_task

    task = next(spec_of(engine="numba", iterations=300).tasks())
    fast = run_task(task)["rows"]
    slow = run_task(next(spec_of(iterations=300).tasks()))["rows"]
    assert [r["status"] for r in fast] == [r["status"] for r in slow]
    for r, q in zip(fast, slow):
        assert r["lambda_max"] == pytest.approx(q["lambda_max"], rel=1e-12)
