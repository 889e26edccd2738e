"""The results folder of a training call (``dmfsharp train``), written atomically.

Layout: ``summary.json`` (setup, ``eta_crit``, ``flat_lambda_max`` and ``runs``, each with
``eta``, ``eta_ratio``, ``status``, ``final_loss``, ``final_lambda_max``, ``final_file``,
regimes), ``target.npy`` (``M``, or ``Y`` with data; ``data.npy`` holds ``X``),
``start.npz`` (the initialization), ``final_run<i>.npz`` (each run's final point, absent for
diverged runs), ``trace_run<i>.csv`` (``iteration, loss, gn_lambda_max, ...``), the figure
``training.png``/``.pdf`` and ``index.html``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write, save_factors, staged_folder, write_json

__all__ = ["write_train_folder", "train_summary"]


def train_summary(result, config: dict) -> dict[str, Any]:
    """The JSON summary of a :class:`~dmfsharp.dynamics.train.TrainResult` (no timings)."""
    from . import __version__

    summary = {"dmfsharp_version": __version__, "config": config, **result.summary()}
    for i, (run, entry) in enumerate(zip(result.runs, summary["runs"], strict=True), start=1):
        entry["final_file"] = f"final_run{i}.npz" if run.final_factors is not None else None
        entry["trace_file"] = f"trace_run{i}.csv"
    return summary


def _write_csv(path: Path, cols: dict[str, np.ndarray]) -> None:
    names = list(cols)
    data = np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in names])
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(names) + "\n")
        np.savetxt(fh, data, delimiter=",", fmt=["%d"] + ["%.17g"] * (len(names) - 1))


def _fmt(x: Any) -> str:
    if x is None:
        return "&ndash;"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, float):
        return format(x, ".5g")
    return html.escape(str(x))


def _index(path: Path, summary: dict, title: str, figure: bool) -> None:
    cols = ("eta", "eta_ratio", "status", "iterations", "final_loss", "final_lambda_max", "lambda_eta_half")
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_fmt(r[c])}</td>" for c in cols)
        + f"<td>{html.escape(', '.join(r['regimes_detected']) or '-')}</td></tr>"
        for r in summary["runs"]
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:system-ui,sans-serif;"
        "max-width:1300px;margin:2em auto;color:#222}img{max-width:100%}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        f"<p>dims {summary['dims']}, init {html.escape(str(summary['init']))} "
        f"(scale {summary['init_scale']:g}), seed {summary['seed']}; "
        f"&lambda;<sub>flat</sub> = {_fmt(summary['flat_lambda_max'])}, "
        f"&eta;<sub>crit</sub> = 2/&lambda;<sub>flat</sub> = {_fmt(summary['eta_crit'])}.</p>"
        + ("<img src='training.png' alt='training figure'>" if figure else "")
        + "<table><tr>"
        + "".join(f"<th>{c}</th>" for c in (*cols, "regimes"))
        + f"</tr>{rows}</table></body></html>\n"
    )
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(page)


def write_train_folder(
    result,
    dest: str | Path,
    *,
    config: dict,
    title: str = "",
    figures: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the results folder of ``result`` at ``dest`` atomically; return the summary.

    Parameters
    ----------
    result : TrainResult
        From :func:`dmfsharp.dynamics.train.train`.
    dest : path
        The folder to create (refused if it exists and is not empty, unless ``overwrite``).
    config : dict
        The full configuration, recorded in ``summary.json``.
    title : str
        Title of the figure and the HTML page.
    figures : bool
        Draw ``training.png``/``.pdf`` (needs matplotlib).
    overwrite : bool
        Replace a non-empty ``dest``.
    """
    summary = train_summary(result, config)
    with staged_folder(dest, overwrite=overwrite) as tmp:
        folder = Path(tmp)
        m = result.target if result.data is not None else None
        with atomic_write(folder / "target.npy", "wb") as fh:
            np.save(fh, result.target)
        if result.data is not None:
            with atomic_write(folder / "data.npy", "wb") as fh:
                np.save(fh, result.data)
        dmf_target = None if result.data is not None else result.target
        save_factors(folder / "start.npz", result.start, target=dmf_target)
        files = ["summary.json", "target.npy", "start.npz", "index.html"] + (
            ["data.npy"] if m is not None else []
        )
        for i, run in enumerate(result.runs, start=1):
            if run.final_factors is not None:
                save_factors(folder / f"final_run{i}.npz", run.final_factors, target=dmf_target)
                files.append(f"final_run{i}.npz")
            _write_csv(folder / f"trace_run{i}.csv", run.trace_columns())
            files.append(f"trace_run{i}.csv")
        if figures:
            from .plots import plot_training

            fig = plot_training(result, folder / "training", title=title, formats=("png", "pdf"))
            import matplotlib.pyplot as plt  # loaded by plot_training

            plt.close(fig)
            files += ["training.png", "training.pdf"]
        summary["files"] = files
        write_json(folder / "summary.json", summary)
        _index(folder / "index.html", summary, title or "dmfsharp train", figures)
    return summary
