"""The results store of a sweep: one SQLite file, ``DIR/results.sqlite``.

Written only by the driver, one transaction per finished task (its ``tasks`` row and
all its ``runs`` rows together), so a crash, a Ctrl-C or a killed process leaves every
task either fully recorded or absent. ``runs`` has the primary key
``(task_id, run_index)``: a task can never be stored twice. Tables:

``spec``
    One row: the sweep's name, fingerprint, normalized spec (JSON) and the TOML text.
``tasks``
    One row per attempted task: ``status`` (``done`` or ``failed``), its parameters
    (JSON), the error of a failed task, elapsed seconds, attempts.
``runs``
    One row per GD run (step size) of a done escape task; columns as
    :data:`dmfsharp.sweep.task.RUN_COLUMNS`.
``train_runs``
    One row per training run (step size) of a done ``kind = "train"`` task; columns as
    :data:`dmfsharp.sweep.train_task.TRAIN_COLUMNS`, primary key ``(task_id, run_index)``.

Files: ``results.sqlite`` is the store. While a driver runs, SQLite keeps the latest
commits in ``results.sqlite-wal`` (with ``results.sqlite-shm``) and the driver holds the
lock file ``.dmfsharp-sweep.lock``; the log is checkpointed into ``results.sqlite`` every
:data:`CHECKPOINT_EVERY` tasks and on exit, when the database also leaves WAL mode, so
after a clean finish ``results.sqlite`` alone holds every row (after a ``kill -9``, copy
it together with ``results.sqlite-wal``). Every open checks the store
(:mod:`dmfsharp.sweep.integrity`); ``repair=True`` keeps the intact tasks and drops the
damaged ones, which the sweep then recomputes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from .integrity import acquire_lock, add_weight_decay_column, check_store, damaged, repair_store
from .spec import SweepSpec, SweepTask
from .task import RUN_COLUMNS
from .train_spec import TrainSpec, TrainTask
from .train_task import TRAIN_COLUMNS

__all__ = ["CHECKPOINT_EVERY", "RUN_TABLES", "ResultStore", "STORE_NAME", "open_readonly", "store_kind"]

STORE_NAME = "results.sqlite"
#: Tasks stored between two checkpoints of the write-ahead log into ``results.sqlite``.
CHECKPOINT_EVERY = 50

_RUN_TYPES = {
    "task_id": "TEXT NOT NULL",
    "run_index": "INTEGER NOT NULL",
    "sweep": "TEXT",
    "architecture": "TEXT",
    "minimizer": "TEXT",
    "seed": "INTEGER",
    "minimizer_seed": "INTEGER",
    "engine_seed": "INTEGER",
    "dims": "TEXT",
    "depth": "INTEGER",
    "num_params": "INTEGER",
    "iterations": "INTEGER",
    "steps": "INTEGER",
    "escape_iteration": "INTEGER",
    "final_is_stable": "INTEGER",
    "direction": "TEXT",
    "status": "TEXT NOT NULL",
    "stop_reason": "TEXT",
    "minimum_file": "TEXT",
    "final_file": "TEXT",
}

_TRAIN_TYPES = {
    "task_id": "TEXT NOT NULL",
    "run_index": "INTEGER NOT NULL",
    "sweep": "TEXT",
    "architecture": "TEXT",
    "seed": "INTEGER",
    "target_seed": "INTEGER",
    "init_seed": "INTEGER",
    "dims": "TEXT",
    "depth": "INTEGER",
    "num_params": "INTEGER",
    "init": "TEXT",
    "iterations": "INTEGER",
    "steps": "INTEGER",
    "status": "TEXT NOT NULL",
    "is_flat": "INTEGER",
    "final_is_stable": "INTEGER",
    "orbit_period": "INTEGER",
    "orbit_rank": "INTEGER",
    "progressive_sharpening": "INTEGER",
    "edge_of_stability": "INTEGER",
    "catapult": "INTEGER",
    "minimum_file": "TEXT",
    "final_file": "TEXT",
}

#: The run table of each task kind and its columns.
RUN_TABLES = {"escape": ("runs", RUN_COLUMNS), "train": ("train_runs", TRAIN_COLUMNS)}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS spec (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    spec_toml TEXT,
    created_at TEXT NOT NULL,
    dmfsharp_version TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    params TEXT NOT NULL,
    error TEXT,
    elapsed REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    {", ".join(f"{c} {_RUN_TYPES.get(c, 'REAL')}" for c in RUN_COLUMNS)},
    PRIMARY KEY (task_id, run_index),
    FOREIGN KEY (task_id) REFERENCES tasks (task_id)
);
CREATE TABLE IF NOT EXISTS train_runs (
    {", ".join(f"{c} {_TRAIN_TYPES.get(c, 'REAL')}" for c in TRAIN_COLUMNS)},
    PRIMARY KEY (task_id, run_index),
    FOREIGN KEY (task_id) REFERENCES tasks (task_id)
);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def open_readonly(folder: str | os.PathLike) -> sqlite3.Connection:
    """Open ``folder/results.sqlite`` read-only (for export and reports), checked first.

    Raises
    ------
    FileNotFoundError
        If the folder holds no store.
    dmfsharp.sweep.integrity.StoreDamagedError
        If the store fails :func:`dmfsharp.sweep.integrity.check_store`.
    """
    path = Path(folder) / STORE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no sweep results here (missing {STORE_NAME})")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise OSError(f"{path}: not a sweep results store ({exc})") from None
    problems = check_store(conn)
    if problems:
        conn.close()
        raise damaged(path, Path(folder), problems)
    return conn


def store_kind(conn: sqlite3.Connection) -> str:
    """The task kind of an open store's spec: ``"escape"`` or ``"train"``."""
    row = conn.execute("SELECT spec_json FROM spec").fetchone()
    return "escape" if row is None else str(json.loads(row[0]).get("kind", "escape"))


class ResultStore:
    """The driver's handle on ``DIR/results.sqlite`` (see the module docstring).

    Opening a folder that already holds a store checks that it belongs to the same
    spec (same fingerprint) and raises ``ValueError`` otherwise, so that results of
    two different sweeps never mix.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        spec: SweepSpec | TrainSpec,
        *,
        spec_toml: str | None = None,
        repair: bool = False,
    ):
        from .. import __version__

        self.folder = Path(folder)
        self.path = self.folder / STORE_NAME
        self._lock = acquire_lock(self.folder)
        self._since_checkpoint = 0
        try:
            existed = self.path.exists()
            self.conn = sqlite3.connect(self.path, isolation_level=None)
            if existed:
                add_weight_decay_column(self.conn)
            if existed and repair:
                self.conn = repair_store(self.path, self.conn)
            elif existed:
                problems = check_store(self.conn)
                if problems:
                    self.conn.close()
                    raise damaged(self.path, self.folder, problems)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash or kill of this process; after a power
            # loss the last commits may be missing, and the next run simply recomputes them.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(_SCHEMA)
            row = self.conn.execute("SELECT name, fingerprint FROM spec").fetchone()
        except sqlite3.DatabaseError as exc:
            self._unlock()
            raise damaged(self.path, self.folder, [f"unreadable ({exc})"]) from None
        except BaseException:
            self._unlock()
            raise
        fp = spec.fingerprint()
        if row is None:
            with self._transaction():
                self.conn.execute(
                    "INSERT INTO spec VALUES (1, ?, ?, ?, ?, ?, ?)",
                    (
                        spec.name,
                        fp,
                        json.dumps(spec.to_dict(), sort_keys=True),
                        spec_toml,
                        _now(),
                        __version__,
                    ),
                )
        elif row[1] != fp:
            self.conn.close()
            self._unlock()
            raise ValueError(
                f"{self.folder} holds sweep {row[0]!r} with a different spec "
                f"(fingerprint {row[1]}, this spec {fp}); use another --out folder"
            )

    # -- transactions

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        conn = self.conn

        class _Tx:
            def __enter__(self_) -> None:
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_, exc_type: object, exc: object, tb: object) -> Literal[False]:
                conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    def _unlock(self) -> None:
        with contextlib.suppress(OSError):
            self._lock.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead log into ``results.sqlite``: every committed row then lives there."""
        with contextlib.suppress(sqlite3.DatabaseError):  # a reader holds the log; data is safe
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._since_checkpoint = 0

    def _committed(self) -> None:
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self.checkpoint()

    def close(self) -> None:
        """Checkpoint, leave WAL mode (no ``-wal``/``-shm`` file stays), close, release the lock.

        Everything is already committed; afterwards ``results.sqlite`` alone holds every
        row, so copying that one file loses nothing.
        """
        try:
            self.checkpoint()
            with contextlib.suppress(sqlite3.DatabaseError):
                self.conn.execute("PRAGMA journal_mode=DELETE")
            self.conn.close()
        finally:
            self._unlock()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries

    def task_status(self, task_id: str) -> str | None:
        """``"done"``, ``"failed"`` or None (never attempted)."""
        row = self.conn.execute("SELECT status FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else row[0]

    def counts(self) -> dict[str, int]:
        """Numbers of done and failed tasks and of stored runs."""
        done, failed = self.conn.execute(
            "SELECT coalesce(sum(status = 'done'), 0), coalesce(sum(status = 'failed'), 0) FROM tasks"
        ).fetchone()
        runs = sum(
            self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table, _ in RUN_TABLES.values()
        )
        return {"done": int(done), "failed": int(failed), "runs": int(runs)}

    # -- writes

    def record_done(self, task: SweepTask | TrainTask, rows: list[dict[str, Any]], elapsed: float) -> None:
        """Store a finished task and all its runs (in its kind's table) in one transaction."""
        table, columns = RUN_TABLES[task.kind]
        cols = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        with self._transaction():
            prev = self.conn.execute(
                "SELECT status, attempts FROM tasks WHERE task_id = ?", (task.task_id,)
            ).fetchone()
            if prev is not None and prev[0] == "done":
                raise ValueError(f"task {task.task_id} is already stored")
            self.conn.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, 'done', ?, NULL, ?, ?, ?)",
                (
                    task.task_id,
                    json.dumps(task.params(), sort_keys=True),
                    elapsed,
                    1 + (prev[1] if prev else 0),
                    _now(),
                ),
            )
            self.conn.executemany(
                f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                [tuple(_sql(r.get(c)) for c in columns) for r in rows],
            )
        self._committed()

    def record_failed(self, task: SweepTask | TrainTask, error: str) -> None:
        """Store a task that raised (no runs); a later success replaces it."""
        with self._transaction():
            prev = self.conn.execute(
                "SELECT status, attempts FROM tasks WHERE task_id = ?", (task.task_id,)
            ).fetchone()
            if prev is not None and prev[0] == "done":
                return
            self.conn.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, 'failed', ?, ?, NULL, ?, ?)",
                (
                    task.task_id,
                    json.dumps(task.params(), sort_keys=True),
                    error,
                    1 + (prev[1] if prev else 0),
                    _now(),
                ),
            )
        self._committed()


def _sql(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    return v
