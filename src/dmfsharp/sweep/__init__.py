"""Sweeps of escape experiments and training runs at scale on Dask (spec, driver, store, reports)."""

from .driver import SweepSummary, run_sweep
from .export import export_runs, read_runs, read_tasks
from .report import summary_table, wilson_interval, write_report
from .schema import load_spec, parse_spec
from .spec import PAPER_ARCHITECTURES, SpecError, SweepSpec, SweepTask
from .store import STORE_NAME, ResultStore
from .study import write_study
from .task import build_minimizer, recompute_task, run_task
from .train_spec import TrainSpec, TrainTask
from .train_task import run_train_task

__all__ = [
    "SweepSpec",
    "SweepTask",
    "TrainSpec",
    "TrainTask",
    "run_train_task",
    "write_study",
    "SpecError",
    "PAPER_ARCHITECTURES",
    "load_spec",
    "parse_spec",
    "run_sweep",
    "SweepSummary",
    "ResultStore",
    "STORE_NAME",
    "build_minimizer",
    "run_task",
    "recompute_task",
    "read_runs",
    "read_tasks",
    "export_runs",
    "write_report",
    "summary_table",
    "wilson_interval",
]
