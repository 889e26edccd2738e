"""Reading a sweep's results into pandas and exporting them (parquet or CSV)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import atomic_write
from .store import RUN_TABLES, open_readonly, store_kind
from .task import RUN_COLUMNS
from .train_task import TRAIN_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_runs", "read_tasks", "export_runs", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("parquet", "csv")


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading sweep results needs pandas: pip install 'dmfsharp[sweep]'") from None
    return pd


def read_runs(folder: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """All run rows of ``folder/results.sqlite`` as a pandas DataFrame.

    ``columns`` selects a subset (default: all of
    :data:`dmfsharp.sweep.task.RUN_COLUMNS`, or of
    :data:`dmfsharp.sweep.train_task.TRAIN_COLUMNS` for a ``kind = "train"`` sweep, whose
    rows come from the ``train_runs`` table).

    ``dims`` stays JSON text (``json.loads`` gives ``[d_0, ..., d_L]``);
    ``final_is_stable`` is a nullable boolean and ``escape_iteration`` a nullable
    integer. Rows are ordered by
    ``(task_id, run_index)``.
    """
    pd = _pandas()
    conn = open_readonly(folder)
    try:
        table, known = RUN_TABLES[store_kind(conn)]
        cols = list(known) if columns is None else list(columns)
        unknown = sorted(set(cols) - set(known))
        if unknown:
            raise ValueError(f"unknown run column(s) {unknown}")
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        # a store written before weight-decay sweeps has no weight_decay column: mu = 0 there
        sel = [c if c in have or c != "weight_decay" else "0.0 AS weight_decay" for c in cols]
        df = pd.read_sql_query(f"SELECT {', '.join(sel)} FROM {table} ORDER BY task_id, run_index", conn)
    finally:
        conn.close()
    for c in (
        "final_is_stable",
        "is_flat",
        "progressive_sharpening",
        "edge_of_stability",
        "catapult",
    ):
        if c in df:
            df[c] = df[c].astype("boolean")
    for c in ("escape_iteration", "steps", "orbit_period", "orbit_rank"):
        if c in df:
            df[c] = df[c].astype("Int64")
    return df


def read_tasks(folder: str | os.PathLike) -> pd.DataFrame:
    """The ``tasks`` table (status, error, parameters) as a pandas DataFrame."""
    pd = _pandas()
    conn = open_readonly(folder)
    try:
        return pd.read_sql_query("SELECT * FROM tasks ORDER BY task_id", conn)
    finally:
        conn.close()


def _written_by_dmfsharp(path: Path, fmt: str) -> bool:
    """Whether ``path`` is an export dmfsharp wrote (CSV header or parquet metadata)."""
    try:
        if fmt == "csv":
            with open(path, encoding="utf-8") as fh:
                header = fh.readline().rstrip("\r\n")
                return header in (",".join(RUN_COLUMNS), ",".join(TRAIN_COLUMNS))
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        return meta.get(_PARQUET_KEY) is not None
    except Exception:  # unreadable or another format: not ours
        return False


_PARQUET_KEY = b"dmfsharp"


def export_runs(
    folder: str | os.PathLike,
    fmt: str = "parquet",
    dest: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the run rows to ``dest`` (default ``folder/results.<fmt>``), atomically.

    An existing ``dest`` is replaced only when dmfsharp wrote it (a sweep export: the CSV
    header or the parquet metadata says so) or when ``overwrite`` is set; never a folder
    or a special file. Parquet needs ``pyarrow``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``dest`` exists, dmfsharp did not write it and ``overwrite`` is not set.
    """
    import stat

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}, got {fmt!r}")
    dest = Path(dest) if dest is not None else Path(folder) / f"results.{fmt}"
    if dest.exists() or dest.is_symlink():
        mode = dest.lstat().st_mode
        if not stat.S_ISREG(mode):
            raise FileExistsError(f"{dest}: exists and is not a regular file; choose another --output")
        if not overwrite and not _written_by_dmfsharp(dest, fmt):
            raise FileExistsError(
                f"{dest}: exists and is not a dmfsharp {fmt} export; pass --overwrite to replace it"
            )
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("parquet export needs pyarrow: pip install 'dmfsharp[sweep]'") from None
    df = read_runs(folder)
    if fmt == "parquet":
        table = pa.Table.from_pandas(df, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[_PARQUET_KEY] = b"sweep-export"
        with atomic_write(dest, "wb") as fh:
            pq.write_table(table.replace_schema_metadata(meta), fh)
    else:
        with atomic_write(dest, "w", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False)
    return dest
