"""Weight decay in sweeps: the spec key, task ids, rows, the store, exports and reports."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.minima import random_minimizer
from dmfsharp.regularized import regularized_minimizer
from dmfsharp.sweep import SpecError, load_spec, parse_spec

pytest.importorskip("pydantic")
pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[1]

ESCAPE = {
    "name": "wd",
    "seeds": 1,
    "depths": [2, 3],
    "d0": [1],
    "dL": [2],
    "widths": [2, 3],
    "step_multipliers": [0.9, 1.5],
    "iterations": 200,
    "weight_decay": [0, 0.05],
}
TRAIN = {
    "kind": "train",
    "name": "wdt",
    "seeds": 1,
    "depths": [2],
    "d0": [2],
    "dL": [2],
    "widths": [2, 3],
    "init_scales": [0.3],
    "eta_ratios": [0.5, 1.5],
    "iterations": 300,
    "track_every": 50,
    "weight_decay": [0.0, 0.05],
}


def spec_of(base, **over):
    s = {**base, **over}
    return parse_spec({"sweep": {k: v for k, v in s.items() if v is not None}})


# ids computed on main before weight decay existed (commit bfddbb7): (first, second, last)
@pytest.mark.parametrize(
    ("path", "count", "ids"),
    [
        (
            "examples/sweep-escape-small.toml",
            120,
            ("c1b2a53647daad0f", "4ea954580e488acb", "89161d180d2556ba"),
        ),
        ("studies/escape/spec.toml", 2560, ("7998e0f2b7317581", "e6c94a5d8453ec91", "b0dc4738fae83b47")),
        ("studies/eos/spec.toml", 480, ("94c43be3cc2e089f", "3e2399add12ea0ea", "da6201e6270fd061")),
    ],
)
def test_task_ids_of_committed_specs_are_unchanged(path, count, ids):
    tasks = list(load_spec(ROOT / path).tasks())
    assert len(tasks) == count
    assert (tasks[0].task_id, tasks[1].task_id, tasks[-1].task_id) == ids
    assert all(t.weight_decay == 0.0 and "weight_decay" not in t.params() for t in tasks)


def test_fingerprints_of_committed_specs_are_unchanged():
    # computed on main before weight decay existed (commit bfddbb7)
    assert load_spec(ROOT / "examples/sweep-escape-small.toml").fingerprint() == "52bf6c831f550fed"
    assert load_spec(ROOT / "studies/escape/spec.toml").fingerprint() == "3ee80682edaff795"


@pytest.mark.parametrize("base", [ESCAPE, TRAIN], ids=["escape", "train"])
def test_zero_weight_decay_keeps_ids_and_positive_ones_get_their_own(base):
    both = spec_of(base)
    none = spec_of(base, weight_decay=None)
    assert both.num_tasks == 2 * none.num_tasks == len(list(both.tasks()))
    ids0 = [t.task_id for t in both.tasks() if t.weight_decay == 0]
    assert ids0 == [t.task_id for t in none.tasks()]
    ids_mu = {t.task_id for t in both.tasks() if t.weight_decay == 0.05}
    assert len(ids_mu) == none.num_tasks and not ids_mu & set(ids0)
    assert spec_of(base, weight_decay=0).fingerprint() == none.fingerprint() != both.fingerprint()


@pytest.mark.parametrize("base", [ESCAPE, TRAIN], ids=["escape", "train"])
@pytest.mark.parametrize("bad", [-1.0, -1, "x", math.nan, math.inf, [0.1, "x"], [0.1, 0.1], [], True])
def test_bad_weight_decay_is_one_line_naming_the_key(base, bad):
    with pytest.raises(SpecError) as info:
        spec_of(base, weight_decay=bad)
    msg = str(info.value)
    assert "weight_decay" in msg and "\n" not in msg


def test_flattest_minimizers_with_weight_decay_are_refused():
    with pytest.raises(SpecError, match="weight_decay > 0 with minimizers 'flattest'"):
        spec_of(ESCAPE, minimizers=["random", "flattest"])
    assert spec_of(ESCAPE, minimizers=["random", "flattest"], weight_decay=0).num_tasks == 4


def _run_in_process(spec, folder):
    from dmfsharp.sweep import ResultStore
    from dmfsharp.sweep.task import run_task

    with ResultStore(folder, spec) as store:
        for task in spec.tasks():
            res = run_task(task, spec.name)
            store.record_done(task, res["rows"], res["elapsed"])


def test_escape_rows_with_weight_decay_match_an_independent_sharpness(tmp_path):
    from dmfsharp.sweep import export_runs, read_runs
    from dmfsharp.sweep.integrity import check_store
    from dmfsharp.sweep.report import summary_table

    spec = spec_of(ESCAPE)
    _run_in_process(spec, tmp_path)
    df = read_runs(tmp_path)
    assert sorted(df["weight_decay"].unique()) == [0.0, 0.05]
    assert len(df) == spec.num_runs
    tasks = {t.task_id: t for t in spec.tasks()}
    for _, row in df[df["weight_decay"] > 0].iterrows():
        task = tasks[row["task_id"]]
        dims = tuple(json.loads(row["dims"]))
        M = random_minimizer(dims, seed=task.minimizer_seed).product
        chain = regularized_minimizer(M, dims, weight_decay=0.05, seed=task.minimizer_seed)
        ref = dmf.sharpness(chain, target=M, weight_decay=0.05)
        assert row["lambda_max"] == pytest.approx(ref, rel=1e-10)
    # mu = 0 rows keep the unregularized sharpness at the Gaussian minimizer
    for _, row in df[df["weight_decay"] == 0].iterrows():
        task = tasks[row["task_id"]]
        dims = tuple(json.loads(row["dims"]))
        ref = dmf.sharpness(random_minimizer(dims, seed=task.minimizer_seed))
        assert row["lambda_max"] == pytest.approx(ref, rel=1e-10)
    csv = export_runs(tmp_path, "csv")
    assert "weight_decay" in pd.read_csv(csv).columns
    table = summary_table(df)
    assert sorted(table["weight_decay"].unique()) == [0.0, 0.05]
    assert table["runs"].sum() == spec.num_runs
    assert "weight_decay" not in summary_table(df[df["weight_decay"] == 0]).columns
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    try:
        assert check_store(conn) == []
        # a row whose weight decay disagrees with its task's parameters is caught
        conn.execute("UPDATE runs SET weight_decay = 0.5 WHERE weight_decay > 0 AND run_index = 0")
        conn.commit()
        assert any("altered rows" in p for p in check_store(conn))
    finally:
        conn.close()


def test_train_rows_with_weight_decay(tmp_path):
    from dmfsharp.sweep import read_runs
    from dmfsharp.sweep.train_stats import train_summary_table

    spec = spec_of(TRAIN)
    _run_in_process(spec, tmp_path)
    df = read_runs(tmp_path)
    assert sorted(df["weight_decay"].unique()) == [0.0, 0.05]
    from dmfsharp.sweep.train_task import train_task_setup

    tasks = {t.task_id: t for t in spec.tasks()}
    for _, row in df.iterrows():
        mu = row["weight_decay"]
        dims, M = train_task_setup(tasks[row["task_id"]])
        if mu == 0:  # 2 / lambda_flat(M), eq. 35
            lam = 2 * len(dims[1:]) * np.linalg.norm(M, 2) ** (2 - 2 / (len(dims) - 1))
        else:  # 2 / lambda_max of L_mu at a global minimizer
            lam = dmf.sharpness(
                regularized_minimizer(M, dims, weight_decay=mu, seed=3), target=M, weight_decay=mu
            )
        assert row["eta_crit"] == pytest.approx(2 / lam, rel=1e-10)
        assert row["eta"] == pytest.approx(row["eta_ratio"] * row["eta_crit"], rel=1e-14)
    table = train_summary_table(df, by=("depth", "weight_decay", "eta_ratio"))
    assert table["runs"].sum() == spec.num_runs


def test_a_store_written_before_weight_decay_is_read_and_upgraded(tmp_path):
    from dmfsharp.sweep import ResultStore, read_runs
    from dmfsharp.sweep.integrity import check_store

    spec = spec_of(ESCAPE, weight_decay=None, depths=[2])
    _run_in_process(spec, tmp_path)
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    try:
        conn.execute("ALTER TABLE runs DROP COLUMN weight_decay")
        conn.commit()
        assert check_store(conn) == []
    finally:
        conn.close()
    assert read_runs(tmp_path)["weight_decay"].tolist() == [0.0] * spec.num_runs
    with ResultStore(tmp_path, spec) as store:
        assert store.counts()["done"] == spec.num_tasks
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        assert "weight_decay" in cols and check_store(conn) == []
    finally:
        conn.close()
