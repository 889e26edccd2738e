"""Health of a results store: integrity and consistency checks, repair, the driver's lock.

Every open of ``results.sqlite`` runs :func:`check_store`: SQLite's ``PRAGMA
quick_check`` (damaged pages) and a consistency check (every task stored as done has one
run per step size of its parameters and its parameters hash to its id; no run belongs to
a task that is not done; statuses and ``dims`` are valid). A damaged store raises
:class:`StoreDamagedError`, whose message names the repair: ``dmfsharp sweep SPEC --out
DIR --repair``, which calls :func:`repair_store` to keep the intact tasks and drop the
others, so that the sweep recomputes them. A second driver on the same folder is refused
at start by :func:`acquire_lock` (``fcntl.flock`` on ``DIR/.dmfsharp-sweep.lock``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import IO

from .spec import task_id_of
from .task import RUN_COLUMNS
from .train_task import TRAIN_COLUMNS

__all__ = [
    "add_weight_decay_column",
    "LOCK_NAME",
    "REPAIR_COMMAND",
    "StoreDamagedError",
    "StoreLockedError",
    "acquire_lock",
    "check_store",
    "damaged",
    "repair_store",
]

LOCK_NAME = ".dmfsharp-sweep.lock"
REPAIR_COMMAND = "dmfsharp sweep SPEC --out {folder} --repair"
_STATUSES = ("escaped", "returned", "diverged", "undecided")
_BAD_RUNS = "SELECT DISTINCT task_id FROM runs WHERE status NOT IN (?, ?, ?, ?) OR NOT json_valid(dims)"
_TRAIN_STATUSES = ("converged", "diverged", "budget")
_BAD_TRAIN_RUNS = (
    "SELECT DISTINCT task_id FROM train_runs WHERE status NOT IN (?, ?, ?) OR NOT json_valid(dims)"
)
# columns added since the first stores (add_weight_decay_column gives old stores them)
_ADDED = {"weight_decay"}
# problems that leave nothing worth keeping in place: the file is moved aside on repair
_FATAL = ("unreadable", "damaged pages", "table(s)", "runs lacks", "train_runs lacks")


class StoreDamagedError(ValueError):
    """The results store failed :func:`check_store`; the message names the repair command."""


class StoreLockedError(OSError):
    """Another driver holds the results folder's lock."""


def damaged(path: Path, folder: Path, problems: list[str]) -> StoreDamagedError:
    """The one-line error for a damaged store, naming the problems and the repair."""
    return StoreDamagedError(
        f"{path}: the results store is damaged: {'; '.join(problems)}; run "
        f"`{REPAIR_COMMAND.format(folder=folder)}` to keep the intact tasks and recompute the others"
    )


def _intact_tasks(conn: sqlite3.Connection) -> tuple[set[str], list[str], dict[str, int]]:
    """``(intact done tasks, damaged task ids, run counts of tasks without a done row)``."""
    counts = dict(conn.execute("SELECT task_id, count(*) FROM runs GROUP BY task_id").fetchall())
    bad_runs = {r[0] for r in conn.execute(_BAD_RUNS, _STATUSES)}
    if _has_train_table(conn):  # stores written before train sweeps have no such table
        for task_id, n in conn.execute("SELECT task_id, count(*) FROM train_runs GROUP BY task_id"):
            counts[task_id] = counts.get(task_id, 0) + n
        bad_runs |= {r[0] for r in conn.execute(_BAD_TRAIN_RUNS, _TRAIN_STATUSES)}
    # every row of a task carries its weight decay (tasks without the parameter have mu = 0)
    mus: dict[str, set] = {}
    for table in ("runs", "train_runs") if _has_train_table(conn) else ("runs",):
        if "weight_decay" not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
            continue  # written before weight-decay sweeps: every row has mu = 0
        for task_id, mu in conn.execute(f"SELECT DISTINCT task_id, coalesce(weight_decay, 0.0) FROM {table}"):
            mus.setdefault(task_id, set()).add(mu)
    intact, bad = set(), []
    for task_id, status, params in conn.execute("SELECT task_id, status, params FROM tasks").fetchall():
        try:
            p = json.loads(params)
            ok = task_id_of(p) == task_id and mus.get(task_id, {p.get("weight_decay", 0.0)}) == {
                p.get("weight_decay", 0.0)
            }
            expected = sum(len(p.get(k) or ()) for k in ("step_multipliers", "etas", "eta_ratios"))
        except (TypeError, ValueError, AttributeError):
            ok, expected = False, -1
        n = counts.pop(task_id, 0)
        if (
            ok
            and task_id not in bad_runs
            and ((status == "done" and n == expected) or (status != "done" and not n))
        ):
            if status == "done":
                intact.add(task_id)
        else:
            bad.append(str(task_id))
    return intact, bad, counts


def add_weight_decay_column(conn: sqlite3.Connection) -> None:
    """Give a store written before weight-decay sweeps its ``weight_decay`` column (0 in every row)."""
    for table in ("runs", "train_runs"):
        cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if cols and "weight_decay" not in cols:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN weight_decay REAL NOT NULL DEFAULT 0.0")


def _has_train_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'train_runs'").fetchone()
    return row is not None


def check_store(conn: sqlite3.Connection) -> list[str]:
    """Problems of an open store, each a short phrase; ``[]`` when it is sound.

    Parameters
    ----------
    conn : sqlite3.Connection
        An open connection to ``results.sqlite``.

    Returns
    -------
    list of str
        Damaged pages, missing tables or columns, tasks with missing, extra or altered
        rows (their count and a first id), runs without a done task.
    """
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            first = " ".join(str(rows[0][0]).replace("*** in database main ***", "").split())
            return [f"damaged pages ({first[:80]})"]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted({"spec", "tasks", "runs"} - tables)
        if missing:
            return [f"table(s) {missing} missing"]
        cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        if not set(RUN_COLUMNS) - _ADDED <= cols:
            return [f"runs lacks column(s) {sorted(set(RUN_COLUMNS) - _ADDED - cols)}"]
        if _has_train_table(conn):
            cols = {r[1] for r in conn.execute("PRAGMA table_info(train_runs)")}
            if not set(TRAIN_COLUMNS) - _ADDED <= cols:
                return [f"train_runs lacks column(s) {sorted(set(TRAIN_COLUMNS) - _ADDED - cols)}"]
        problems = []
        if conn.execute("SELECT count(*) FROM spec").fetchone()[0] != 1:
            problems.append("the spec row is missing")
        _intact, bad, orphans = _intact_tasks(conn)
        if bad:
            problems.append(f"{len(bad)} task(s) with missing, extra or altered rows (first {bad[0][:16]})")
        if orphans:
            first = str(next(iter(orphans)))[:16]
            problems.append(f"runs of {len(orphans)} task(s) not stored as done (first {first})")
        return problems
    except sqlite3.DatabaseError as exc:
        return [f"unreadable ({' '.join(str(exc).split())[:80]})"]


def repair_store(path: Path, conn: sqlite3.Connection) -> sqlite3.Connection:
    """Keep the intact tasks of a damaged store and drop the rest; return a usable connection.

    A store with damaged pages, a missing table or missing columns is moved aside to
    ``results.sqlite.damaged`` (with its ``-wal``/``-shm``) and an empty one is started;
    otherwise the tasks and runs that :func:`check_store` flags are deleted in one
    transaction. Either way the next sweep recomputes what was dropped.
    """
    problems = check_store(conn)
    if not problems:
        return conn
    if any(p.startswith(_FATAL) for p in problems):
        conn.close()
        aside = path.with_name(path.name + ".damaged")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{aside}{suffix}"))
        return sqlite3.connect(path, isolation_level=None)
    intact, _bad, _orphans = _intact_tasks(conn)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TEMP TABLE keep (task_id TEXT PRIMARY KEY)")
    conn.executemany("INSERT INTO keep VALUES (?)", [(k,) for k in intact])
    conn.execute("DELETE FROM runs WHERE task_id NOT IN (SELECT task_id FROM keep)")
    if _has_train_table(conn):
        conn.execute("DELETE FROM train_runs WHERE task_id NOT IN (SELECT task_id FROM keep)")
    conn.execute("DELETE FROM tasks WHERE status = 'done' AND task_id NOT IN (SELECT task_id FROM keep)")
    conn.execute("COMMIT")
    conn.execute("DROP TABLE temp.keep")
    # tasks whose params no longer hash to their id (any status) are dropped as well
    for task_id, params in conn.execute("SELECT task_id, params FROM tasks").fetchall():
        try:
            ok = task_id_of(json.loads(params)) == task_id
        except (TypeError, ValueError, AttributeError):
            ok = False
        if not ok:
            conn.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,))
    return conn


def acquire_lock(folder: Path) -> IO[str]:
    """Hold an exclusive lock on ``folder/.dmfsharp-sweep.lock``; close the handle to release.

    Raises
    ------
    StoreLockedError
        If another process holds it (a second driver on the same folder).
    """
    import fcntl

    fh = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held until the store closes
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise StoreLockedError(
            f"{folder}: another dmfsharp sweep is running on this folder (it holds {LOCK_NAME}); "
            "wait for it to finish or use another --out"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh
