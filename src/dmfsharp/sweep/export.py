"""Reading a sweep's results into pandas and exporting them (parquet or CSV)."""

from __future__ import annotations

import os
from pathlib import Path

from ..io import atomic_write
from .store import open_readonly
from .task import RUN_COLUMNS

__all__ = ["read_runs", "read_tasks", "export_runs", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("parquet", "csv")


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading sweep results needs pandas: pip install 'dmfsharp[sweep]'") from None
    return pd


def read_runs(folder: str | os.PathLike, columns: list[str] | None = None):
    """All run rows of ``folder/results.sqlite`` as a pandas DataFrame.

    ``columns`` selects a subset (default: all of
    :data:`dmfsharp.sweep.task.RUN_COLUMNS`).

    ``dims`` stays JSON text (``json.loads`` gives ``[d_0, ..., d_L]``);
    ``final_is_stable`` is a nullable boolean and ``escape_iteration`` a nullable
    integer. Rows are ordered by
    ``(task_id, run_index)``.
    """
    pd = _pandas()
    conn = open_readonly(folder)
    try:
        cols = list(RUN_COLUMNS) if columns is None else list(columns)
        unknown = sorted(set(cols) - set(RUN_COLUMNS))
        if unknown:
            raise ValueError(f"unknown run column(s) {unknown}")
        df = pd.read_sql_query(f"SELECT {', '.join(cols)} FROM runs ORDER BY task_id, run_index", conn)
    finally:
        conn.close()
    if "final_is_stable" in df:
        df["final_is_stable"] = df["final_is_stable"].astype("boolean")
    for c in ("escape_iteration", "steps"):
        if c in df:
            df[c] = df[c].astype("Int64")
    return df


def read_tasks(folder: str | os.PathLike):
    """The ``tasks`` table (status, error, parameters) as a pandas DataFrame."""
    pd = _pandas()
    conn = open_readonly(folder)
    try:
        return pd.read_sql_query("SELECT * FROM tasks ORDER BY task_id", conn)
    finally:
        conn.close()


def export_runs(
    folder: str | os.PathLike, fmt: str = "parquet", dest: str | os.PathLike | None = None
) -> Path:
    """Write the run rows to ``dest`` (default ``folder/results.<fmt>``), atomically.

    Returns the path written. Parquet needs ``pyarrow``.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}, got {fmt!r}")
    df = read_runs(folder)
    dest = Path(dest) if dest is not None else Path(folder) / f"results.{fmt}"
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("parquet export needs pyarrow: pip install 'dmfsharp[sweep]'") from None
        with atomic_write(dest, "wb") as fh:
            df.to_parquet(fh, index=False)
    else:
        with atomic_write(dest, "w", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False)
    return dest
