"""The sweep store knows when it is damaged, repairs by recomputing, and admits one driver."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from dmfsharp.cli import main
from dmfsharp.sweep import ResultStore, parse_spec
from dmfsharp.sweep.integrity import StoreDamagedError, StoreLockedError, check_store
from dmfsharp.sweep.store import STORE_NAME, open_readonly
from dmfsharp.sweep.task import RUN_COLUMNS

pytest.importorskip("pydantic")

SPEC = {
    "name": "store",
    "seeds": 4,
    "dims": [[1, 2, 1]],
    "step_multipliers": [0.9, 1.1, 1.5],
    "iterations": 10,
}


def _rows(task):
    return [
        {
            **{c: None for c in RUN_COLUMNS},
            "task_id": task.task_id,
            "run_index": i,
            "status": "escaped",
            "dims": "[1, 2, 1]",
            "step_multiplier": m,
        }
        for i, m in enumerate(task.step_multipliers)
    ]


@pytest.fixture
def store_dir(tmp_path):
    spec = parse_spec({"sweep": SPEC})
    folder = tmp_path / "sweep"
    folder.mkdir()
    with ResultStore(folder, spec) as store:
        for task in spec.tasks():
            store.record_done(task, _rows(task), 0.0)
    return folder, spec


def _sql(folder, *statements):
    conn = sqlite3.connect(folder / STORE_NAME)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()


def _first_task(folder):
    conn = sqlite3.connect(folder / STORE_NAME)
    try:
        return conn.execute("SELECT task_id FROM tasks ORDER BY task_id").fetchone()[0]
    finally:
        conn.close()


def test_a_clean_store_passes_and_leaves_no_log_files(store_dir):
    folder, _spec = store_dir
    assert not (folder / f"{STORE_NAME}-wal").exists() and not (folder / f"{STORE_NAME}-shm").exists()
    # results.sqlite alone holds every row
    copy = folder.parent / "copy"
    copy.mkdir()
    shutil.copy(folder / STORE_NAME, copy / STORE_NAME)
    conn = open_readonly(copy)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 4 * 3
    assert check_store(conn) == []
    conn.close()


def _corrupt_pages(folder):
    path = folder / STORE_NAME
    data = bytearray(path.read_bytes())
    page = 4096
    for p in range(1, len(data) // page):
        data[p * page + 8 : p * page + 200] = b"\xa5" * 192
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "tasks row deleted": lambda f: _sql(f, f"DELETE FROM tasks WHERE task_id = '{_first_task(f)}'"),
    "runs rows deleted": lambda f: _sql(
        f, f"DELETE FROM runs WHERE task_id = '{_first_task(f)}' AND run_index = 1"
    ),
    "runs table dropped": lambda f: _sql(f, "DROP TABLE runs"),
    "status text corrupted": lambda f: _sql(f, "UPDATE runs SET status = 'esc\x01ped' WHERE run_index = 0"),
    "dims text corrupted": lambda f: _sql(f, "UPDATE runs SET dims = '[1, 2' WHERE run_index = 2"),
    "params text corrupted": lambda f: _sql(f, "UPDATE tasks SET params = '{\"seed\": 9}'"),
    "extra run row": lambda f: _sql(
        f,
        "INSERT INTO runs (task_id, run_index, status, dims) "
        f"VALUES ('{_first_task(f)}', 7, 'escaped', '[]')",
    ),
    "pages damaged": _corrupt_pages,
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_damage_is_detected_and_repaired(store_dir, capsys, how):
    folder, spec = store_dir
    CORRUPTIONS[how](folder)
    with pytest.raises((StoreDamagedError, OSError)):
        open_readonly(folder)
    with pytest.raises(StoreDamagedError, match="--repair"):
        ResultStore(folder, spec)
    for argv in (["sweep-export", str(folder), "--format", "csv"], ["sweep-report", str(folder)]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert "--repair" in err or "not a sweep results store" in err, err
    # the repair keeps what is intact and drops the rest, which a resume recomputes
    with ResultStore(folder, spec, repair=True) as store:
        assert check_store(store.conn) == []
        pending = [t for t in spec.tasks() if store.task_status(t.task_id) != "done"]
        assert pending, "the damaged tasks must be recomputed"
        for task in pending:
            store.record_done(task, _rows(task), 0.0)
    conn = open_readonly(folder)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 4 * 3
    conn.close()


def test_a_second_driver_is_refused_at_start(store_dir):
    folder, spec = store_dir
    first = ResultStore(folder, spec)
    try:
        with pytest.raises(StoreLockedError, match="another dmfsharp sweep"):
            ResultStore(folder, spec)
    finally:
        first.close()
    ResultStore(folder, spec).close()  # released on close


def test_wal_is_checkpointed_while_running(tmp_path, monkeypatch):
    import dmfsharp.sweep.store as store_mod

    monkeypatch.setattr(store_mod, "CHECKPOINT_EVERY", 2)
    spec = parse_spec({"sweep": SPEC})
    folder = tmp_path / "s"
    folder.mkdir()
    store = ResultStore(folder, spec)
    try:
        for task in list(spec.tasks())[:2]:
            store.record_done(task, _rows(task), 0.0)
        # as after a kill -9 now: results.sqlite alone already holds the two tasks
        copy = tmp_path / "copy"
        copy.mkdir()
        shutil.copy(folder / STORE_NAME, copy / STORE_NAME)
        conn = sqlite3.connect(copy / STORE_NAME)
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 6
        conn.close()
    finally:
        store.close()


@pytest.mark.parametrize(
    "over",
    [
        {"radius": 10.0},
        {"scale": 1e300},
        {"iterations": 10**15},
        {"iterations": 1e15},
        {"dims": [[1, 10**9, 1]]},
        {"seeds": 10**12},
        {"seeds": [99999999999999999999]},
        {"seeds": [1, "a"]},
        {"dims": [[1, 100000, 1]]},
        {"step_multipliers": [0.9, "x"]},
        {"engine": "cuda"},
        {"covariance": [1.0]},
    ],
    ids=str,
)
def test_bad_spec_values_stop_before_any_task(tmp_path, capsys, over):
    import json

    lines = [f"{k} = {json.dumps(v)}" for k, v in {**SPEC, **over}.items()]
    spec = tmp_path / "s.toml"
    spec.write_text("[sweep]\n" + "\n".join(lines) + "\n")
    key = next(iter(over))
    code = main(["sweep", str(spec), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and key in err, err
    assert not (tmp_path / "o").exists()


def test_export_refuses_to_replace_a_user_file(store_dir, capsys, tmp_path):
    pytest.importorskip("pandas")
    folder, _spec = store_dir
    precious = tmp_path / "precious.csv"
    precious.write_text("my,data\n1,2\n")
    assert main(["sweep-export", str(folder), "--format", "csv", "--output", str(precious)]) == 2
    assert "--overwrite" in capsys.readouterr().err and precious.read_text() == "my,data\n1,2\n"
    # an export dmfsharp wrote is replaced freely, a user file only when told
    ours = tmp_path / "ours.csv"
    assert main(["sweep-export", str(folder), "--format", "csv", "--output", str(ours)]) == 0
    assert main(["sweep-export", str(folder), "--format", "csv", "--output", str(ours)]) == 0
    assert (
        main(["sweep-export", str(folder), "--format", "csv", "--output", str(precious), "--overwrite"]) == 0
    )
    assert precious.read_text().startswith(",".join(RUN_COLUMNS))


def test_rows_hold_the_spec_values_exactly():
    from dmfsharp.sweep.task import run_task

    spec = parse_spec(
        {"sweep": {**SPEC, "dims": [[3, 4, 2]], "step_multipliers": [0.68, 0.78, 0.88], "etas": [0.01]}}
    )
    for task in list(spec.tasks())[:2]:
        rows = run_task(task)["rows"]
        lam = rows[0]["lambda_max"]
        mults = (0.68, 0.78, 0.88)
        # m * 2 / lam * lam / 2 is not m in floating point for these: the spec's value is stored
        assert any((m * 2.0 / lam) * lam / 2.0 != m for m in mults)
        assert [r["step_multiplier"] for r in rows[:3]] == list(mults)
        assert [r["eta"] for r in rows[:3]] == [m * 2.0 / lam for m in mults]
        assert rows[3]["eta"] == 0.01 and rows[3]["step_multiplier"] == 0.01 * lam / 2.0
