"""Run folders of the escape experiments: summary JSON, points, CSV traces, figures, HTML.

A run folder holds ``summary.json`` (the configuration with its seed, ``lambda_max``,
``minimum_file`` and one entry per run), ``minimum.npz`` (``W1 ... WL`` and ``M``),
``final_run<i>.npz`` for every run that did not diverge, ``trace_run<i>.csv`` (one row
per iteration: ``iteration, normalized_loss, distance_sq, x, y`` and, when tracked,
``gn_lambda_max, hessian_lambda_max`` with empty-as-``nan`` gaps), ``figure.png`` and
``figure.pdf`` (and ``sharpness.png`` when sharpness was tracked). Folders are written
to a temporary sibling and renamed into place at the end, so a failed run leaves
nothing half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .io import atomic_write, save_factors, write_json
from .staging import staged_folder

if TYPE_CHECKING:
    from .dynamics import EscapeResult, RunResult

__all__ = [
    "write_run_folder",
    "fill_run_folder",
    "write_trace_csv",
    "summary_dict",
    "write_index",
    "render_html",
]


def summary_dict(result: EscapeResult, config: dict) -> dict:
    """Return the JSON summary of an :class:`~dmfsharp.EscapeResult` (no timings).

    Parameters
    ----------
    result : EscapeResult
        From :func:`dmfsharp.escape_experiment`.
    config : dict
        The run's full configuration (seed included), written into the summary.

    Returns
    -------
    dict
        JSON-ready: the configuration, ``lambda_max``, the version and one entry per run.
    """
    from . import __version__

    runs = []
    for i, run in enumerate(result.runs, start=1):
        entry = {"run": i, **run.summary()}
        entry["final_file"] = None if run.final_factors is None else f"final_run{i}.npz"
        entry["trace_file"] = f"trace_run{i}.csv"
        runs.append(entry)
    return {
        "dmfsharp_version": __version__,
        "config": config,
        "dims": list(result.minimum.dims),
        "depth": result.minimum.depth,
        "num_params": result.minimum.num_params,
        "lambda_max": result.lambda_max,
        "threshold_eta": 2.0 / result.lambda_max,
        "radius": result.radius,
        "direction": result.direction,
        "seed": result.seed,
        "start_overlap_with_v1": result.start_overlap,
        "escape_threshold": result.escape_threshold,
        "target_norm_sq": result.target_norm_sq,
        "minimum_norm": float(np.linalg.norm(result.minimum.flatten())),
        "minimum_file": "minimum.npz",
        "engine": getattr(result, "engine", "numpy"),
        "runs": runs,
        **({"weight_decay": result.weight_decay} if getattr(result, "weight_decay", 0.0) else {}),
    }


def write_trace_csv(path: str | Path, run: RunResult) -> None:
    """Write one run's per-iteration traces as CSV (``%.17g``: exact round trip).

    Parameters
    ----------
    path : str or Path
        The CSV file (written atomically).
    run : RunResult
        One run of an escape experiment.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    cols = run.trace_columns()
    names = list(cols)
    data = np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in names])
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(names) + "\n")
        fmt = ["%d"] + ["%.17g"] * (len(names) - 1)
        np.savetxt(fh, data, delimiter=",", fmt=fmt)


def fill_run_folder(
    result: EscapeResult,
    folder: str | Path,
    *,
    config: dict,
    title: str = "",
    grid: int = 201,
    figures: bool = True,
) -> dict:
    """Write every file of a run folder into the existing (empty) ``folder``.

    Parameters
    ----------
    result : EscapeResult
        From :func:`dmfsharp.escape_experiment`.
    folder : str or Path
        An existing, empty folder.
    config : dict
        The run's full configuration (seed included), written into the summary.
    title : str, optional
        The figure title.
    grid : int, optional
        Points per axis of the contour map.
    figures : bool, optional
        Whether to draw the figures (needs matplotlib).

    Returns
    -------
    dict
        The summary written to ``summary.json`` (with the list of ``files``).

    Raises
    ------
    OSError
        If a file cannot be written.
    """
    folder = Path(folder)
    summary = summary_dict(result, config)
    save_factors(folder / "minimum.npz", result.minimum, target=result.target)
    for i, run in enumerate(result.runs, start=1):
        if run.final_factors is not None:
            save_factors(folder / f"final_run{i}.npz", run.final_factors, target=result.target)
        write_trace_csv(folder / f"trace_run{i}.csv", run)
    files = ["summary.json", "minimum.npz"]
    if figures:
        from .plots import plot_escape, plot_sharpness
        from .presets import PRESETS

        preset = PRESETS.get(config.get("preset", ""))  # the paper's layout of that figure
        rows = preset.rows if preset is not None else None
        fig = plot_escape(result, folder / "figure", grid=grid, title=title, rows=rows)
        import matplotlib.pyplot as plt  # the plots module has chosen the backend by now

        plt.close(fig)
        files += ["figure.png", "figure.pdf"]
        if any(len(r.track_iterations) or len(r.hessian_track_iterations) for r in result.runs):
            fig = plot_sharpness(result, folder / "sharpness", title=title)
            plt.close(fig)
            files.append("sharpness.png")
    summary["files"] = files
    write_json(folder / "summary.json", summary)
    return summary


def write_run_folder(
    result: EscapeResult,
    dest: str | Path,
    *,
    config: dict,
    title: str = "",
    grid: int = 201,
    figures: bool = True,
    overwrite: bool = False,
) -> dict:
    """Write a complete run folder at ``dest`` atomically; return the summary.

    Parameters
    ----------
    result : EscapeResult
        From :func:`dmfsharp.escape_experiment`.
    dest : str or Path
        The results folder (see :func:`dmfsharp.staging.check_destination`).
    config : dict
        The run's full configuration (seed included), written into the summary.
    title : str, optional
        The figure title.
    grid : int, optional
        Points per axis of the contour map.
    figures : bool, optional
        Whether to draw the figures (needs matplotlib).
    overwrite : bool, optional
        Whether an existing results folder may be replaced.

    Returns
    -------
    dict
        The summary written to ``summary.json``.

    Raises
    ------
    DestinationError
        If ``dest`` may not be written.
    OSError
        If a file cannot be written (``dest`` is then untouched).
    """
    with staged_folder(dest, overwrite=overwrite) as tmp:
        return fill_run_folder(result, tmp, config=config, title=title, grid=grid, figures=figures)


def _fmt(x: Any, spec: str = ".4g") -> str:
    """A number for an HTML table: ints as is, floats by ``spec``, None as a dash."""
    if x is None or (isinstance(x, float) and x != x):
        return "\u2013"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return format(float(x), spec)
    return str(x)


def render_html(path: str | Path, template: str, **context: Any) -> None:
    """Render one of the package's HTML templates to ``path``, atomically.

    The one page builder of dmfsharp: the run-folder index of ``reproduce``
    (``runs_index.html``) and the sweep report (``sweep_index.html``) both extend
    ``page.html`` in ``dmfsharp/templates/``. Autoescaping is on, so every value from a
    summary or a spec is shown as text. Filters: ``num(spec)`` formats a number (None as
    a dash), ``tuple_str`` a list as a tuple.

    Parameters
    ----------
    path : path-like
        The ``.html`` file to write.
    template : str
        The template's file name in ``dmfsharp/templates/``.
    **context
        The template's variables.

    Raises
    ------
    ImportError
        If jinja2 (the ``plot`` and ``sweep`` extras) is not installed.
    """
    try:
        import jinja2
    except ImportError:
        raise ImportError("HTML pages need jinja2: pip install 'dmfsharp[plot]'") from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dmfsharp", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _fmt
    env.filters["tuple_str"] = lambda v: str(tuple(v))
    text = env.get_template(template).render(**context)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_index(path: str | Path, entries: list[dict], *, title: str, intro: str = "") -> None:
    """An HTML page showing each run folder's figure above its summary table.

    ``entries``: dicts with ``folder`` (relative), ``heading``, ``note`` and ``summary``
    (as :func:`summary_dict` returns it). Rendered from ``templates/runs_index.html``.

    Parameters
    ----------
    path : str or Path
        The HTML file (written atomically).
    entries : list of dict
        One per run folder, with the keys above.
    title : str
        The page title.
    intro : str, optional
        A paragraph under the title.

    Raises
    ------
    ImportError
        If jinja2 (the ``plot`` extra) is not installed.
    OSError
        If the file cannot be written.
    """
    render_html(path, "runs_index.html", entries=entries, title=title, intro=intro)
