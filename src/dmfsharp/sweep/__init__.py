"""Sweeps of escape experiments at scale on Dask distributed (spec, driver, store, report)."""

from .driver import SweepSummary, run_sweep
from .spec import PAPER_ARCHITECTURES, SpecError, SweepSpec, SweepTask, load_spec, parse_spec
from .store import STORE_NAME, ResultStore

__all__ = [
    "SweepSpec",
    "SweepTask",
    "SpecError",
    "PAPER_ARCHITECTURES",
    "load_spec",
    "parse_spec",
    "run_sweep",
    "SweepSummary",
    "ResultStore",
    "STORE_NAME",
]
