"""The escape study's table and figures (Study A of ``studies/escape``), from a sweep's runs.

Groups are ``(depth, minimizer, direction, radius, step_multiplier)``; every proportion
carries its 95% Wilson interval. Outcomes of a run:

- ``escaped, converged``: left the ``tau``-ball and reached another global minimum
  (loss below the convergence tolerance), with its exact ``lambda_max`` recorded;
- ``escaped, not converged``: left the ball but was still moving when the budget ended
  (or ended off any minimum);
- ``returned``, ``diverged``, ``undecided`` as in :mod:`dmfsharp.dynamics.escape`.

A landing minimum is *flat* when ``lambda_max / lambda_flat(M) <= 1 + FLAT_TOLERANCE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .figures import MARKERS, categorical_errorbars, save
from .intervals import wilson_interval
from .train_task import FLAT_TOLERANCE

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

__all__ = ["ESCAPE_GROUPS", "ESCAPE_STUDY_FIGURES", "escape_outcome", "escape_study_table"]

ESCAPE_GROUPS = ("depth", "minimizer", "direction", "radius", "step_multiplier")


def escape_outcome(df: pd.DataFrame) -> pd.Series:
    """Per run: one of the outcomes of the module docstring."""
    out = df["status"].astype(object).copy()
    esc = df["status"] == "escaped"
    out[esc & (df["stop_reason"] == "converged")] = "escaped, converged"
    out[esc & (df["stop_reason"] != "converged")] = "escaped, not converged"
    return out


def _with_derived(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(
        outcome=escape_outcome(df),
        flatness=df["final_lambda_max"] / df["flat_lambda_max"],
        time_ratio=df["escape_iteration"].astype(float) / df["predicted_escape_iteration"],
    )


def escape_study_table(df: pd.DataFrame, by: tuple[str, ...] = ESCAPE_GROUPS) -> pd.DataFrame:
    """One row per group: outcome counts, P(escape) with CI, escape-time error, landings.

    Columns: the ``by`` keys, ``runs``, ``escaped``, ``escaped_converged``,
    ``escaped_unconverged``, ``returned``, ``diverged``, ``undecided``, ``p_escape``,
    ``p_escape_lo``, ``p_escape_hi``, ``median_time_ratio`` (observed / predicted escape
    iteration), ``p05_time_ratio``, ``p95_time_ratio``, ``median_landing_edge``
    (``lambda_max(final) eta / 2`` of escaped runs at a minimum), ``max_landing_edge``,
    ``flat_landings`` (how many of those landed flat).
    """
    import pandas as pd

    d = _with_derived(df)
    rows = []
    for key, g in d.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        n = len(g)
        oc = g["outcome"].value_counts()
        k = int((g["status"] == "escaped").sum())
        lo, hi = wilson_interval(k, n)
        tr = g["time_ratio"].dropna()
        tr = tr[np.isfinite(tr)]
        land = g[g["outcome"] == "escaped, converged"]
        edge = land["final_edge_ratio"].dropna()
        rows.append(
            {
                **{c: v for c, v in zip(by, key, strict=True)},
                "runs": n,
                "escaped": k,
                "escaped_converged": int(oc.get("escaped, converged", 0)),
                "escaped_unconverged": int(oc.get("escaped, not converged", 0)),
                "returned": int(oc.get("returned", 0)),
                "diverged": int(oc.get("diverged", 0)),
                "undecided": int(oc.get("undecided", 0)),
                "p_escape": k / n,
                "p_escape_lo": float(lo),
                "p_escape_hi": float(hi),
                "median_time_ratio": float(tr.median()) if len(tr) else None,
                "p05_time_ratio": float(tr.quantile(0.05)) if len(tr) else None,
                "p95_time_ratio": float(tr.quantile(0.95)) if len(tr) else None,
                "median_landing_edge": float(edge.median()) if len(edge) else None,
                "max_landing_edge": float(edge.max()) if len(edge) else None,
                "flat_landings": int((land["flatness"] <= 1 + FLAT_TOLERANCE).sum()),
            }
        )
    return pd.DataFrame(rows)


def _fig_probability(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    levels = sorted(float(v) for v in df["step_multiplier"].round(9).unique())
    kinds = sorted(df["minimizer"].unique())
    dirs = sorted(df["direction"].unique())
    fig, axes = plt.subplots(
        len(kinds), len(dirs), figsize=(5 * len(dirs) + 1.2, 3.4 * len(kinds)), squeeze=False
    )
    for i, kind in enumerate(kinds):
        for j, direction in enumerate(dirs):
            ax = axes[i][j]
            d = df[(df["minimizer"] == kind) & (df["direction"] == direction)]
            groups = []
            for depth, g in d.groupby("depth"):
                hit = (g["status"] == "escaped").astype(int)
                agg = hit.groupby(g["step_multiplier"].round(9)).agg(n="size", k="sum")
                lo, hi = wilson_interval(agg["k"], agg["n"])
                groups.append((f"L = {depth}", agg.index.to_numpy(float), agg["k"] / agg["n"], lo, hi))
            categorical_errorbars(ax, levels, groups)
            ax.set_ylim(-0.05, 1.05)
            ax.set_title(f"{kind} minimizers, {direction} direction ({len(d)} runs)", fontsize=10)
            ax.set_xlabel(r"$\eta\lambda_{\max}/2$ (dashed: 1)")
            if j == 0:
                ax.set_ylabel("P(escape), 95% CI")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="depth")
    fig.tight_layout()
    save(fig, path)


def _fig_time_error(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    d = _with_derived(df).dropna(subset=["time_ratio"])
    d = d[np.isfinite(d["time_ratio"]) & (d["time_ratio"] > 0)]
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4), sharey=True)
    for ax, direction in zip(axes, ("top", "random"), strict=True):
        g0 = d[d["direction"] == direction]
        levels = sorted(float(v) for v in g0["step_multiplier"].round(9).unique())
        radii = sorted(g0["radius"].unique())
        for j, r in enumerate(radii):
            g = g0[g0["radius"] == r]
            q = g.groupby(g["step_multiplier"].round(9))["time_ratio"].quantile([0.05, 0.5, 0.95]).unstack()
            pos = np.array([levels.index(float(v)) for v in q.index]) + (
                j - (len(radii) - 1) / 2
            ) * 0.6 / len(radii)
            err = np.vstack([q[0.5] - q[0.05], q[0.95] - q[0.5]])
            ax.errorbar(
                pos, q[0.5], yerr=err, fmt=MARKERS[j], ms=4, capsize=2, color=f"C{j}", label=f"r = {r:g}"
            )
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(levels)), [f"{v:g}" for v in levels])
        ax.set_xlabel(r"$\eta\lambda_{\max}/2$")
        ax.set_title(f"{direction} direction ({len(g0)} escaped runs)", fontsize=10)
    axes[0].set_ylabel("observed / predicted escape iteration\n(median, 5-95% range)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="start radius")
    fig.tight_layout()
    save(fig, path)


def _fig_landing(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    d = _with_derived(df)
    land = d[d["outcome"] == "escaped, converged"].dropna(subset=["final_edge_ratio"])
    levels = sorted(float(v) for v in land["step_multiplier"].round(9).unique())
    depths = sorted(land["depth"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4))
    for j, depth in enumerate(depths):
        g = land[land["depth"] == depth]
        q = g.groupby(g["step_multiplier"].round(9))["final_edge_ratio"].quantile([0.05, 0.5, 0.95]).unstack()
        pos = np.array([levels.index(float(v)) for v in q.index]) + (j - (len(depths) - 1) / 2) * 0.6 / len(
            depths
        )
        err = np.vstack([q[0.5] - q[0.05], q[0.95] - q[0.5]])
        axes[0].errorbar(
            pos, q[0.5], yerr=err, fmt=MARKERS[j], ms=4, capsize=2, color=f"C{j}", label=f"L = {depth}"
        )
        flat = (g["flatness"] <= 1 + FLAT_TOLERANCE).astype(int)
        agg = flat.groupby(g["step_multiplier"].round(9)).agg(n="size", k="sum")
        lo, hi = wilson_interval(agg["k"], agg["n"])
        p = agg["k"] / agg["n"]
        pos = np.array([levels.index(float(v)) for v in agg.index]) + (j - (len(depths) - 1) / 2) * 0.6 / len(
            depths
        )
        axes[1].errorbar(
            pos,
            p,
            yerr=np.clip(np.vstack([p - lo, hi - p]), 0, None),
            fmt=MARKERS[j],
            ms=4,
            capsize=2,
            color=f"C{j}",
        )
    for ax in axes:
        ax.set_xticks(range(len(levels)), [f"{v:g}" for v in levels])
        ax.set_xlabel(r"$\eta\lambda_{\max}/2$ of the starting minimum")
    axes[0].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[0].set_ylabel(r"$\lambda_{\max}(\mathrm{final})\,\eta/2$ (median, 5-95%)")
    axes[0].set_title(f"landing sharpness ({len(land)} escaped runs at a minimum)", fontsize=10)
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].set_ylabel("fraction landing on a flat minimum (95% CI)")
    axes[1].set_title(r"flat landings: $\lambda_{\max} \leq 1.001\,\lambda_{\mathrm{flat}}$", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="depth")
    fig.tight_layout()
    save(fig, path)


_OUTCOMES = ("escaped, converged", "escaped, not converged", "returned", "undecided", "diverged")


def _fig_outcomes(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    d = _with_derived(df)
    table = d.groupby(d["step_multiplier"].round(9))["outcome"].value_counts().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for i, c in enumerate(_OUTCOMES):
        if c in table:
            v = table[c].to_numpy()
            ax.bar(x, v, bottom=bottom, width=0.7, color=f"C{i}", label=f"{c} ({int(v.sum())})")
            bottom += v
    ax.set_xticks(x, [f"{v:g}" for v in table.index])
    ax.set_xlabel(r"$\eta\lambda_{\max}/2$")
    ax.set_ylabel("runs")
    ax.set_title(f"outcome of every run ({len(d)} runs)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="outcome")
    fig.tight_layout()
    save(fig, path)


#: File name -> (drawing function, caption).
ESCAPE_STUDY_FIGURES = {
    "escape_probability.png": (
        _fig_probability,
        "P(escape) vs eta lambda_max/2 per depth, kind and direction",
    ),
    "escape_time_error.png": (_fig_time_error, "Observed / predicted escape iteration per radius"),
    "landing.png": (_fig_landing, "Landing lambda_max eta/2 and flat landings after escape"),
    "outcomes.png": (_fig_outcomes, "Outcome of every run, by step size"),
}
