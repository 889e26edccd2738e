"""``dmfsharp study-report``: a study's small, committable results from a sweep's store.

Writes into ``out`` (for example ``studies/escape/``): ``summary.csv`` (one row per
group, with a ``runs`` column), the study's figures (a few PNGs) and ``meta.json`` (the
spec's fingerprint and the SHA-256 of its TOML text, the dmfsharp version that ran the
sweep and the one that wrote the report, the engine, task and run counts and the
throughput). Never the store or the rows themselves: those stay in the sweep's folder
(``dmfsharp sweep-export`` writes them as Parquet).

Throughput: ``runs_per_second_per_worker`` is the number of runs divided by the summed
compute seconds of the tasks (each task is timed on its worker), so it does not depend
on how many workers ran; ``finish_span_s`` is the time between the first and the last
task's finish (whole seconds), a lower bound of the sweep's wall time.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..io import atomic_write
from .export import read_runs, read_tasks
from .store import open_readonly

__all__ = ["write_study", "study_meta", "STUDY_FILES"]

#: Files a study report writes besides its figures.
STUDY_FILES = ("summary.csv", "meta.json")


def _spec_row(folder: Path) -> dict[str, Any]:
    conn = open_readonly(folder)
    try:
        row = conn.execute(
            "SELECT name, fingerprint, spec_json, spec_toml, dmfsharp_version FROM spec"
        ).fetchone()
    finally:
        conn.close()
    name, fp, spec_json, toml, version = row
    return {"name": name, "fingerprint": fp, "spec": json.loads(spec_json), "toml": toml, "version": version}


def _epoch(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def _git_commit() -> str | None:
    """The commit of the source tree dmfsharp runs from, when it is a git checkout."""
    import subprocess

    try:
        res = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def study_meta(folder: str | os.PathLike, runs: int) -> dict[str, Any]:
    """The ``meta.json`` of a study: provenance, counts and throughput (module docstring)."""
    from .. import __version__

    folder = Path(folder)
    s = _spec_row(folder)
    tasks = read_tasks(folder)
    done = tasks[tasks["status"] == "done"]
    busy = float(done["elapsed"].sum())
    stamps = [_epoch(t) for t in done["finished_at"]] if len(done) else []
    return {
        "study": s["name"],
        "kind": s["spec"].get("kind", "escape"),
        "spec_fingerprint": s["fingerprint"],
        "spec_toml_sha256": hashlib.sha256(s["toml"].encode()).hexdigest() if s["toml"] else None,
        "dmfsharp_version_sweep": s["version"],
        "dmfsharp_version_report": __version__,
        "git_commit_report": _git_commit(),
        "engine": s["spec"].get("engine", "numpy"),
        "seeds": len(s["spec"].get("seeds", [])),
        "tasks_done": int(len(done)),
        "tasks_failed": int((tasks["status"] == "failed").sum()),
        "runs": int(runs),
        "task_compute_s": round(busy, 3),
        "runs_per_second_per_worker": round(runs / busy, 3) if busy > 0 else None,
        "finish_span_s": (max(stamps) - min(stamps)) if stamps else None,
    }


def write_study(folder: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write a study's ``summary.csv``, figures and ``meta.json`` from a sweep folder.

    Parameters
    ----------
    folder : path
        A sweep results folder (``results.sqlite``), escape or ``kind = "train"``.
    out : path
        The study folder (created if missing); files of the same names are replaced,
        nothing else in it is touched (the spec and README live there).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no store.
    ValueError
        If the store holds no runs.
    """
    folder, out = Path(folder), Path(out)
    kind = _spec_row(folder)["spec"].get("kind", "escape")
    df = read_runs(folder)
    if not len(df):
        raise ValueError(f"{folder}: the store holds no runs yet")
    if kind == "train":
        from .train_stats import TRAIN_FIGURES, train_summary_table

        table, figures = train_summary_table(df), TRAIN_FIGURES
    else:
        from .escape_study import ESCAPE_STUDY_FIGURES, escape_study_table

        table, figures = escape_study_table(df), ESCAPE_STUDY_FIGURES
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, (fn, _caption) in figures.items():
        fn(df, out / fname)
        written.append(out / fname)
    with atomic_write(out / "summary.csv", "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False, float_format="%.6g")
    meta = study_meta(folder, len(df))
    meta["groups"] = int(len(table))
    meta["figures"] = {name: caption for name, (_fn, caption) in figures.items()}
    with atomic_write(out / "meta.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return written + [out / "summary.csv", out / "meta.json"]
