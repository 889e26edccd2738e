"""``dmfsharp sweep``, ``sweep-export``, ``sweep-report``, ``study-report``: sweeps on Dask."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import validate as V
from .validate import CLIError

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sweep``, ``sweep-export``, ``sweep-report`` and ``study-report`` subcommands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``dmfsharp`` parser.
    """
    p = sub.add_parser(
        "sweep",
        help="run (or resume) a sweep of escape experiments or training runs on Dask distributed",
        description=(
            "Run every task of a TOML sweep spec on a local Dask cluster of processes "
            "(--workers) or on an existing one (--scheduler), storing one row per GD run in "
            "OUT/results.sqlite as results arrive. Re-running the same command resumes: "
            "finished tasks are skipped, failed ones are tried again. Exit status 1 when "
            "some task failed in this run (its error is stored; the others still ran)."
        ),
    )
    p.add_argument("spec", help="sweep spec (TOML with a [sweep] table)")
    p.add_argument("--out", required=True, help="results folder (created if missing)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, help="worker processes of the local cluster (default: CPU count)"
    )
    where.add_argument(
        "--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://HOST:8786"
    )
    p.add_argument(
        "--save-points",
        action="store_true",
        help="keep each minimizer and each final point as .npz under OUT/points/",
    )
    p.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="tasks on the cluster at once (default: 4 x worker threads, at least 8)",
    )
    p.add_argument(
        "--no-retry-failed",
        action="store_true",
        help="leave tasks stored as failed instead of trying them again",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="run only the spec's first N seeds (a quick reproduction: the shared tasks give the same rows)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report/ at the end")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "--repair",
        action="store_true",
        help="if OUT/results.sqlite is damaged, keep its intact tasks and recompute the others",
    )
    p.set_defaults(func=run_sweep_cmd)

    e = sub.add_parser(
        "sweep-export",
        help="export a sweep's runs for pandas (parquet or csv)",
        description="Write every run row of DIR/results.sqlite to DIR/results.<format>.",
    )
    e.add_argument("dir", help="sweep results folder")
    e.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    e.add_argument("--output", default=None, help="file to write (default DIR/results.<format>)")
    e.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output file that dmfsharp did not write",
    )
    e.set_defaults(func=export_cmd)

    r = sub.add_parser(
        "sweep-report",
        help="figures, summary table and index.html of a sweep",
        description="Write DIR/report/: escape probability vs eta*lambda_max/2, landing "
        "sharpness, escape time, sharpness vs depth, summary.csv and index.html.",
    )
    r.add_argument("dir", help="sweep results folder")
    r.set_defaults(func=report_cmd)

    st = sub.add_parser(
        "study-report",
        help="a study's summary.csv, figures and meta.json (small, committable) from a sweep",
        description="Write OUT/summary.csv (one row per group, with a runs column), the study's "
        "figures and OUT/meta.json (spec hash, dmfsharp version, engine, counts, runs/s per "
        "worker) from the sweep folder DIR. Other files in OUT (spec, README) are left alone.",
    )
    st.add_argument("dir", help="sweep results folder")
    st.add_argument("--out", required=True, help="study folder, e.g. studies/escape")
    st.set_defaults(func=study_cmd)


def run_sweep_cmd(args: argparse.Namespace) -> int:
    """``dmfsharp sweep``: run or resume, print a summary line, write the report.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status: 0 on success, 1 if some tasks failed.

    Raises
    ------
    CLIError
        If an option or an input file is invalid (``main`` prints it as one line and
        exits with status 2).
    """
    from ..sweep.driver import SweepAborted, run_sweep
    from ..sweep.schema import load_spec

    V.input_file(args.spec, "SPEC")
    V.count(args.workers, "--workers", maximum=1024)
    V.count(args.max_in_flight, "--max-in-flight", maximum=1_000_000)
    V.count(args.seeds, "--seeds", maximum=1_000_000)
    spec = load_spec(args.spec, seeds=args.seeds)
    spec_toml = Path(args.spec).read_text(encoding="utf-8")
    try:
        summary = run_sweep(
            spec,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            save_points=args.save_points,
            max_in_flight=args.max_in_flight,
            retry_failed=not args.no_retry_failed,
            progress=None if args.quiet else sys.stderr,
            spec_toml=spec_toml,
            repair=args.repair,
        )
    except (ImportError, SweepAborted) as exc:
        raise CLIError(str(exc)) from None
    out = Path(args.out)
    print(
        f"sweep {spec.name}: {summary.skipped + summary.done}/{summary.total} tasks done "
        f"({summary.done} now, {summary.skipped} before), {summary.failed} failed; "
        f"{summary.runs} runs in {summary.compute_elapsed:.1f} s "
        f"({summary.runs_per_second:.1f} runs/s on {summary.workers} "
        f"worker thread{'s' if summary.workers != 1 else ''}); "
        f"results in {out / 'results.sqlite'}"
    )
    if not args.no_report:
        try:
            from ..sweep.report import write_report

            print(f"report: {write_report(out) / 'index.html'}")
        except ImportError as exc:
            print(f"no report written ({exc}); install matplotlib and pandas", file=sys.stderr)
    return 1 if summary.failed else 0


def export_cmd(args: argparse.Namespace) -> int:
    """``dmfsharp sweep-export``: write the runs as parquet or CSV.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status: 0 on success.

    Raises
    ------
    CLIError
        If an option or an input file is invalid (``main`` prints it as one line and
        exits with status 2).
    """
    from ..sweep.export import export_runs

    try:
        path = export_runs(args.dir, args.format, args.output, overwrite=args.overwrite)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    print(path)
    return 0


def study_cmd(args: argparse.Namespace) -> int:
    """``dmfsharp study-report``: write the study's small results into ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status: 0 on success.

    Raises
    ------
    CLIError
        If an extra the report needs is missing (``main`` prints it as one line and exits
        with status 2).
    """
    from ..sweep.study import write_study

    try:
        paths = write_study(args.dir, args.out)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    for path in paths:
        print(path)
    return 0


def report_cmd(args: argparse.Namespace) -> int:
    """``dmfsharp sweep-report``: write ``DIR/report/``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status: 0 on success.

    Raises
    ------
    CLIError
        If an option or an input file is invalid (``main`` prints it as one line and
        exits with status 2).
    """
    from ..sweep.report import write_report

    try:
        path = write_report(args.dir)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    print(path / "index.html")
    return 0
