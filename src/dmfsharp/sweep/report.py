"""Statistics and figures of a sweep: ``DIR/report/`` with PNGs, a summary table, index.html.

A ``kind = "train"`` sweep gets the figures and table of :mod:`dmfsharp.sweep.train_stats`;
an escape sweep these figures:

``escape_probability.png``
    Fraction of runs that escaped (left the minimum and converged elsewhere) and that
    returned, against ``eta lambda_max / 2`` (1 is the stability edge ``eta = 2 /
    lambda_max``), with 95% Wilson intervals, per depth.
``edge_distribution.png``
    ``final_lambda_max * eta / 2`` of escaped runs: how close to the edge ``2 / eta``
    the minimum GD lands on is (``<= 1`` is linearly stable).
``escape_time.png``
    Observed against predicted escape iteration.
``sharpness_vs_depth.png``
    ``lambda_max / (2 L sigma_max(M)^(2 - 2/L))`` of the starting minima against depth
    (1 is flat, eq. 35), per minimizer kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import atomic_write
from ..report import render_html
from ..staging import staged_folder
from .export import read_runs, read_tasks
from .figures import MARKERS, categorical_errorbars, log_ticks, save
from .intervals import wilson_interval
from .store import open_readonly

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["wilson_interval", "summary_table", "write_report", "REPORT_DIR"]

REPORT_DIR = "report"
_REPORT_COLUMNS = [
    "task_id",
    "depth",
    "minimizer",
    "step_multiplier",
    "status",
    "stop_reason",
    "escape_iteration",
    "predicted_escape_iteration",
    "final_edge_ratio",
    "final_is_stable",
    "sharpness_ratio",
    "weight_decay",
]
_MAX_LEVELS = 30


def _levels(df: pd.DataFrame) -> pd.Series:
    """Group key for the step size: the multiplier, binned when there are many values."""
    m = df["step_multiplier"].round(9)
    if m.nunique() <= _MAX_LEVELS:
        return m
    import pandas as pd

    bins = np.linspace(m.min(), m.max(), _MAX_LEVELS + 1)
    cut = pd.cut(m, bins, include_lowest=True)
    return cut.map(lambda iv: round(float(iv.mid), 6)).astype(float)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per depth and step multiplier: counts by status, P(escape) with CI, edge ratio.

    Columns: ``depth``, ``step_multiplier``, ``runs``, ``escaped``, ``returned``,
    ``diverged``, ``undecided``, ``escaped_unconverged`` (escaped runs that did not
    reach a minimum within the budget: their loss never fell below the convergence
    tolerance), ``p_escape``, ``p_escape_lo``, ``p_escape_hi``,
    ``median_final_edge_ratio`` (escaped runs), ``stable_fraction`` (escaped runs
    whose final point is linearly stable), ``median_escape_time_ratio`` (observed /
    predicted escape iteration). With more than one ``weight_decay`` in ``df`` the groups
    are per depth, weight decay and step multiplier, and ``weight_decay`` is a column.
    """
    import pandas as pd

    d = df.assign(level=_levels(df))
    if "weight_decay" not in d or d["weight_decay"].nunique() <= 1:
        d = d.assign(weight_decay=None)
    rows = []
    for (depth, mu, level), g in d.groupby(["depth", "weight_decay", "level"], sort=True, dropna=False):
        counts = g["status"].value_counts()
        n = len(g)
        esc = g[g["status"] == "escaped"]
        lo, hi = wilson_interval(counts.get("escaped", 0), n)
        both = g.dropna(subset=["escape_iteration", "predicted_escape_iteration"])
        both = both[both["predicted_escape_iteration"] > 0]
        stable = esc["final_is_stable"].dropna()
        rows.append(
            {
                "depth": int(depth),
                **({} if mu is None or mu != mu else {"weight_decay": float(mu)}),
                "step_multiplier": float(level),
                "runs": n,
                "escaped": int(counts.get("escaped", 0)),
                "returned": int(counts.get("returned", 0)),
                "diverged": int(counts.get("diverged", 0)),
                "undecided": int(counts.get("undecided", 0)),
                "escaped_unconverged": int((esc["stop_reason"] != "converged").sum())
                if "stop_reason" in esc
                else None,
                "p_escape": counts.get("escaped", 0) / n,
                "p_escape_lo": float(lo),
                "p_escape_hi": float(hi),
                "median_final_edge_ratio": float(esc["final_edge_ratio"].median()) if len(esc) else None,
                "stable_fraction": float(stable.astype(bool).mean()) if len(stable) else None,
                "median_escape_time_ratio": float(
                    (both["escape_iteration"] / both["predicted_escape_iteration"]).median()
                )
                if len(both)
                else None,
            }
        )
    return pd.DataFrame(rows)


def _fig_escape(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    d = df.assign(level=_levels(df))
    levels = sorted(float(v) for v in d["level"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, status in ((axes[0], "escaped"), (axes[1], "returned")):
        groups = []
        for depth, g in d.groupby("depth"):
            hit = (g["status"] == status).astype(int)
            agg = hit.groupby(g["level"]).agg(n="size", k="sum")
            lo, hi = wilson_interval(agg["k"], agg["n"])
            groups.append((f"L = {depth}", agg.index.to_numpy(float), agg["k"] / agg["n"], lo, hi))
        categorical_errorbars(ax, levels, groups)
        ax.set_xlabel(r"$\eta\,\lambda_{\max}/2$ (step sizes run; dashed: the edge 1)")
        ax.set_title(f"fraction of runs {status} (95% Wilson CI)")
        ax.set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("fraction of runs")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="depth")
    fig.tight_layout()
    save(fig, path)


def _fig_edge(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    esc = df[df["status"] == "escaped"].dropna(subset=["final_edge_ratio"])
    esc = esc.assign(level=_levels(esc)) if len(esc) else esc
    x = esc["final_edge_ratio"].to_numpy(float)
    unconverged = int(((df["status"] == "escaped") & df["final_edge_ratio"].isna()).sum())
    fig, ax = plt.subplots(figsize=(7, 4))
    if x.size:
        edges = np.linspace(min(x.min(), 0.0), max(x.max(), 1.0), min(60, max(10, int(np.sqrt(x.size)))) + 1)
        bins = [float(b) for b in edges]
        levels = sorted(esc["level"].unique())
        if len(levels) <= 10:  # one histogram per step size, stacked
            ax.hist(
                [esc.loc[esc["level"] == v, "final_edge_ratio"].to_numpy(float) for v in levels],
                bins=bins,
                stacked=True,
                color=[f"C{i}" for i in range(len(levels))],
                label=[rf"$\eta\lambda_{{\max}}/2$ = {v:g}" for v in levels],
            )
        else:
            ax.hist(x, bins=bins, color="C0")
    ax.axvline(1.0, color="k", lw=0.8, ls="--", label=r"edge $\lambda_{\max} = 2/\eta$")
    ax.set_xlabel(r"$\lambda_{\max}(\mathrm{final})\,\eta/2$ (escaped runs that reached a minimum)")
    ax.set_ylabel("runs")
    ax.set_title(f"where GD lands after escaping ({x.size} runs; {unconverged} escaped without converging)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    save(fig, path)


def _fig_time(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    d = df.dropna(subset=["escape_iteration", "predicted_escape_iteration"])
    d = d[(d["predicted_escape_iteration"] > 0) & (d["escape_iteration"] > 0)]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    if len(d):
        levels = sorted(d["step_multiplier"].round(9).unique())
        for i, v in enumerate(levels):
            g = d[d["step_multiplier"].round(9) == v]
            ax.scatter(
                g["predicted_escape_iteration"],
                g["escape_iteration"],
                s=8,
                marker=MARKERS[i % len(MARKERS)],
                color=f"C{i % 10}",
                alpha=0.7,
                label=rf"$\eta\lambda_{{\max}}/2$ = {v:g} ({len(g)})",
                rasterized=True,
            )
        lim = (
            float(min(d["predicted_escape_iteration"].min(), d["escape_iteration"].min())) / 1.5,
            float(max(d["predicted_escape_iteration"].max(), d["escape_iteration"].max())) * 1.5,
        )
        ax.plot(lim, lim, "k--", lw=0.8, label="observed = predicted")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        log_ticks(ax)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_xlabel("predicted escape iteration (linear theory)")
    ax.set_ylabel("observed escape iteration")
    ax.set_title(f"escape time ({len(d)} runs with both)")
    fig.tight_layout()
    save(fig, path)


def _fig_sharpness(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    t = df.drop_duplicates("task_id")
    fig, ax = plt.subplots(figsize=(6, 4))
    kinds = sorted(t["minimizer"].unique())
    depths = sorted(t["depth"].unique())
    width = 0.8 / max(len(kinds), 1)
    for j, kind in enumerate(kinds):
        data = [
            t.loc[(t["minimizer"] == kind) & (t["depth"] == L), "sharpness_ratio"].dropna().to_numpy(float)
            for L in depths
        ]
        pos = [i + (j - (len(kinds) - 1) / 2) * width for i in range(len(depths))]
        keep = [(p, x) for p, x in zip(pos, data, strict=True) if x.size]
        if keep:
            bp = ax.boxplot(
                [x for _, x in keep],
                positions=[p for p, _ in keep],
                widths=width * 0.9,
                patch_artist=True,
                showfliers=True,
                medianprops={"color": "k"},
            )
            for b in bp["boxes"]:
                b.set_facecolor(f"C{j}")
            ax.plot([], [], "s", color=f"C{j}", label=f"{kind} ({int((t['minimizer'] == kind).sum())})")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(depths)), [str(L) for L in depths])
    ax.set_yscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel(r"$\lambda_{\max} / (2L\,\sigma_{\max}(M)^{2-2/L})$")
    ax.set_title("sharpness of starting minima relative to the flat value")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    save(fig, path)


_FIGURES = {
    "escape_probability.png": (_fig_escape, "Escape and return probability vs step size"),
    "edge_distribution.png": (_fig_edge, "Sharpness of the landing minimum relative to 2/eta"),
    "escape_time.png": (_fig_time, "Observed vs predicted escape iteration"),
    "sharpness_vs_depth.png": (_fig_sharpness, "Sharpness of random minima vs the flat value"),
}


def write_report(folder: str | os.PathLike) -> Path:
    """Write ``folder/report/`` (figures, ``summary.csv``, ``index.html``) from the store.

    The report is built in a temporary folder and moved into place at the end, so a
    failure leaves the previous report intact. Returns the report folder.
    """
    folder = Path(folder)
    conn = open_readonly(folder)
    try:
        row = conn.execute("SELECT name, spec_json FROM spec").fetchone()
    finally:
        conn.close()
    name, spec = (row[0], json.loads(row[1])) if row else ("?", {})
    if spec.get("kind", "escape") == "train":
        from .train_stats import TRAIN_FIGURES, train_summary_table

        df = read_runs(folder)
        several = "weight_decay" in df and df["weight_decay"].nunique() > 1
        by = ("depth", "weight_decay", "init_scale", "eta_ratio") if several else None
        table = (train_summary_table(df, by=by) if by else train_summary_table(df)) if len(df) else None
        figure_set = TRAIN_FIGURES
    else:
        df = read_runs(folder, columns=_REPORT_COLUMNS)
        table = summary_table(df) if len(df) else None
        figure_set = _FIGURES
    tasks = read_tasks(folder)
    counts = {
        "done": int((tasks["status"] == "done").sum()),
        "failed": int((tasks["status"] == "failed").sum()),
        "runs": len(df),
    }
    dest = folder / REPORT_DIR
    with staged_folder(dest, overwrite=True, require_marker=False) as tmp:
        figures = []
        if table is not None:
            for fname, (fn, title) in figure_set.items():
                fn(df, tmp / fname)
                figures.append((fname, title))
            with atomic_write(tmp / "summary.csv", "w", encoding="utf-8", newline="") as fh:
                table.to_csv(fh, index=False)
        failed = tasks[tasks["status"] == "failed"]
        render_html(
            tmp / "index.html",
            "sweep_index.html",
            title=f"Sweep {name}",
            intro="",
            counts=counts,
            figures=figures,
            columns=list(table.columns) if table is not None else [],
            table=[] if table is None else [list(r) for r in table.itertuples(index=False)],
            failed=[(str(r.task_id), str(r.error)) for r in failed.itertuples(index=False)],
            spec_json=json.dumps(spec, indent=2),
        )
    return dest
