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

import html
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write, save_factors, staged_folder, write_json

__all__ = ["write_run_folder", "fill_run_folder", "write_trace_csv", "summary_dict", "write_index"]


def summary_dict(result, config: dict) -> dict:
    """The JSON summary of an :class:`~dmfsharp.dynamics.EscapeResult` (no timings)."""
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
    }


def write_trace_csv(path: str | Path, run) -> None:
    """Write one run's per-iteration traces as CSV (``%.17g``: exact round trip)."""
    cols = run.trace_columns()
    names = list(cols)
    data = np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in names])
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(names) + "\n")
        fmt = ["%d"] + ["%.17g"] * (len(names) - 1)
        np.savetxt(fh, data, delimiter=",", fmt=fmt)


def fill_run_folder(
    result, folder: str | Path, *, config: dict, title: str = "", grid: int = 201, figures: bool = True
) -> dict:
    """Write every file of a run folder into the existing (empty) ``folder``."""
    folder = Path(folder)
    summary = summary_dict(result, config)
    save_factors(folder / "minimum.npz", result.minimum, target=result.target)
    for i, run in enumerate(result.runs, start=1):
        if run.final_factors is not None:
            save_factors(folder / f"final_run{i}.npz", run.final_factors, target=result.target)
        write_trace_csv(folder / f"trace_run{i}.csv", run)
    files = ["summary.json", "minimum.npz"]
    if figures:
        from .plots import plot_escape, plot_sharpness, pyplot_backend

        plt = pyplot_backend()
        from .presets import PRESETS

        preset = PRESETS.get(config.get("preset", ""))  # the paper's layout of that figure
        rows = preset.rows if preset is not None else None
        fig = plot_escape(result, folder / "figure", grid=grid, title=title, rows=rows)
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
    result,
    dest: str | Path,
    *,
    config: dict,
    title: str = "",
    grid: int = 201,
    figures: bool = True,
    overwrite: bool = False,
) -> dict:
    """Write a complete run folder at ``dest`` atomically; return the summary."""
    with staged_folder(dest, overwrite=overwrite) as tmp:
        return fill_run_folder(result, tmp, config=config, title=title, grid=grid, figures=figures)


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "&ndash;"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return format(float(x), spec)


def write_index(path: str | Path, entries: list[dict], *, title: str, intro: str = "") -> None:
    """An HTML page showing each run folder's figure above its summary table.

    ``entries``: dicts with ``folder`` (relative), ``heading``, ``note`` and ``summary``.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1500px;margin:2em auto;padding:0 1em;color:#222}",
        "img{max-width:100%;border:1px solid #ddd}",
        "table{border-collapse:collapse;margin:0.6em 0 2.5em;font-size:0.92em}",
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}",
        "th{background:#f3f3f3}td.s{text-align:left}",
        ".escaped{color:#b22}.returned{color:#272}.diverged{color:#777}.undecided{color:#a60}",
        "p.note{color:#555;font-size:0.9em;max-width:75em}",
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{esc(intro)}</p>")
    parts.append(
        "<ul>"
        + "".join(f"<li><a href='#{esc(e['folder'])}'>{esc(e['heading'])}</a></li>" for e in entries)
        + "</ul>"
    )
    for e in entries:
        s = e["summary"]
        f = esc(e["folder"])
        parts.append(f"<h2 id='{f}'>{esc(e['heading'])}</h2>")
        parts.append(
            f"<p>dims {esc(str(tuple(s['dims'])))}, depth L = {s['depth']}, N = {s['num_params']}, "
            f"r = {_fmt(s['radius'], '.0e')}, seed {esc(str(s['seed']))}, "
            f"&lambda;<sub>max</sub>(w*) = {_fmt(s['lambda_max'], '.8g')} (exact), "
            f"2/&lambda;<sub>max</sub> = {_fmt(s['threshold_eta'], '.6g')}, escape threshold "
            f"&tau; = {_fmt(s['escape_threshold'], 'g')} &middot; "
            f"<a href='{f}/summary.json'>summary.json</a> &middot; "
            f"<a href='{f}/figure.pdf'>figure.pdf</a></p>"
        )
        parts.append(f"<a href='{f}/figure.png'><img src='{f}/figure.png' alt='{f} figure'></a>")
        if "sharpness.png" in s.get("files", []):
            parts.append(f"<p><img src='{f}/sharpness.png' alt='{f} sharpness' style='max-width:700px'></p>")
        head = [
            "run",
            "&eta;&lambda;<sub>max</sub>/2",
            "&eta;",
            "status",
            "stop",
            "escape iter.",
            "predicted",
            "peak L/&#8214;M&#8214;&sup2;",
            "final L/&#8214;M&#8214;&sup2;",
            "final &lambda;<sub>max</sub>",
            "final &eta;&lambda;<sub>max</sub>/2",
            "stable",
            "files",
        ]
        rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
        for r in s["runs"]:
            lam = r["final_lambda_max"]
            links = f"<a href='{f}/{esc(r['trace_file'])}'>csv</a>"
            if r["final_file"]:
                links += f" <a href='{f}/{esc(r['final_file'])}'>npz</a>"
            cells = [
                _fmt(r["run"]),
                _fmt(r["step_multiplier"]),
                _fmt(r["eta"], ".6g"),
                f"<span class='{esc(r['status'])}'>{esc(r['status'])}</span>",
                esc(r["stop_reason"]),
                _fmt(r["escape_iteration"]),
                _fmt(r["predicted_escape_iteration"], ".1f"),
                _fmt(r["peak_normalized_loss"], ".3g"),
                _fmt(r["final_normalized_loss"], ".3g"),
                _fmt(lam, ".6g"),
                _fmt(None if lam is None else lam * r["eta"] / 2, ".4f"),
                _fmt(r["final_is_stable"]),
                links,
            ]
            rows.append(
                "<tr>"
                + "".join(
                    f"<td class='s'>{c}</td>" if i in (3, 4, 12) else f"<td>{c}</td>"
                    for i, c in enumerate(cells)
                )
                + "</tr>"
            )
        rows.append("</table>")
        if e.get("note"):
            parts.append(f"<p class='note'>{esc(e['note'])}</p>")
        parts.extend(rows)
    parts.append("</body></html>\n")
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
