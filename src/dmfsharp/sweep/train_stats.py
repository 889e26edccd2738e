"""Statistics and figures of a ``kind = "train"`` sweep (used by the sweep and study reports).

Figures:

``converged_fraction.png``
    Fraction of runs converging to a global minimum against ``eta / eta_crit``
    (``eta_crit = 2 / lambda_flat(M)``, eq. 35: above 1 no global minimum is linearly
    stable), one marker per init scale, 95% Wilson intervals.
``landing_edge.png``
    ``lambda_max eta / 2`` of the landing minimum of converged runs (at most 1 for a
    linearly stable landing) and its flatness ratio ``lambda_max / lambda_flat``,
    against the init scale.
``above_critical.png``
    What runs with ``eta > eta_crit`` do: diverge, settle on a periodic orbit (by
    period) or run out of budget without a detected period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .figures import MARKERS, categorical_errorbars, save
from .intervals import wilson_interval

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

__all__ = ["train_summary_table", "TRAIN_FIGURES", "outcome"]


def outcome(df: pd.DataFrame) -> pd.Series:
    """Per run: ``converged``, ``diverged``, ``period p`` (an orbit) or ``budget, no period``."""
    period = df["orbit_period"]
    out = df["status"].astype(object).copy()
    orbit = (df["status"] == "budget") & period.notna()
    out[orbit] = "period " + period[orbit].astype("Int64").astype(str)
    out[(df["status"] == "budget") & period.isna()] = "budget, no period"
    return out


def train_summary_table(
    df: pd.DataFrame, by: tuple[str, ...] = ("depth", "init_scale", "eta_ratio")
) -> pd.DataFrame:
    """One row per group: counts by status, P(converged) with its 95% Wilson interval, landings.

    Columns: the ``by`` keys, ``runs``, ``converged``, ``diverged``, ``budget``,
    ``p_converged``, ``p_converged_lo``, ``p_converged_hi``, ``median_lambda_eta_half``
    and ``max_lambda_eta_half`` (converged runs), ``flat_fraction`` (converged runs
    landing within 0.1% of ``lambda_flat``), ``orbits`` (budget runs with a detected
    period), ``period2`` (of which period 2), ``median_period``, ``eos_fraction`` and
    ``catapult_fraction`` (runs with those regimes detected).
    """
    import pandas as pd

    rows = []
    for key, g in df.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        n = len(g)
        counts = g["status"].value_counts()
        conv = g[g["status"] == "converged"]
        lo, hi = wilson_interval(counts.get("converged", 0), n)
        periods = g["orbit_period"].dropna()
        edge = conv["lambda_eta_half"].dropna()
        flat = conv["is_flat"].dropna()
        rows.append(
            {
                **{k: v for k, v in zip(by, key, strict=True)},
                "runs": n,
                "converged": int(counts.get("converged", 0)),
                "diverged": int(counts.get("diverged", 0)),
                "budget": int(counts.get("budget", 0)),
                "p_converged": counts.get("converged", 0) / n,
                "p_converged_lo": float(lo),
                "p_converged_hi": float(hi),
                "median_lambda_eta_half": float(edge.median()) if len(edge) else None,
                "max_lambda_eta_half": float(edge.max()) if len(edge) else None,
                "flat_fraction": float(flat.astype(bool).mean()) if len(flat) else None,
                "orbits": int(len(periods)),
                "period2": int((periods == 2).sum()),
                "median_period": float(periods.median()) if len(periods) else None,
                "eos_fraction": float(g["edge_of_stability"].astype(bool).mean()),
                "catapult_fraction": float(g["catapult"].astype(bool).mean()),
            }
        )
    return pd.DataFrame(rows)


def _fig_converged(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    levels = sorted(float(v) for v in df["eta_ratio"].round(9).unique())
    depths = sorted(df["depth"].unique())
    fig, axes = plt.subplots(
        1, len(depths), figsize=(4.2 * len(depths) + 1.5, 3.8), sharey=True, squeeze=False
    )
    for ax, depth in zip(axes[0], depths, strict=True):
        d = df[df["depth"] == depth]
        groups = []
        for scale, g in d.groupby("init_scale"):
            hit = (g["status"] == "converged").astype(int)
            agg = hit.groupby(g["eta_ratio"].round(9)).agg(n="size", k="sum")
            lo, hi = wilson_interval(agg["k"], agg["n"])
            groups.append((rf"$\alpha$ = {scale:g}", agg.index.to_numpy(float), agg["k"] / agg["n"], lo, hi))
        categorical_errorbars(ax, levels, groups)
        ax.set_title(f"depth L = {depth} ({len(d)} runs)")
        ax.set_xlabel(r"$\eta/\eta_{\mathrm{crit}}$ (dashed: 1)")
        ax.set_ylim(-0.05, 1.05)
        ax.tick_params(axis="x", labelrotation=45)
    axes[0][0].set_ylabel("fraction converged to a global minimum\n(95% Wilson CI)")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="init scale")
    fig.tight_layout()
    save(fig, path)


def _fig_landing(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    conv = df[df["status"] == "converged"].dropna(subset=["lambda_eta_half"])
    scales = sorted(conv["init_scale"].unique()) if len(conv) else []
    ratios = sorted(conv["eta_ratio"].round(9).unique()) if len(conv) else []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rng = np.random.default_rng(0)  # jitter only
    for i, r in enumerate(ratios):
        g = conv[conv["eta_ratio"].round(9) == r]
        pos = np.array([scales.index(s) for s in g["init_scale"]], dtype=float)
        pos += (i - (len(ratios) - 1) / 2) * 0.7 / max(len(ratios), 1) + rng.uniform(-0.02, 0.02, len(g))
        kw = dict(s=7, marker=MARKERS[i % len(MARKERS)], color=f"C{i % 10}", alpha=0.6, rasterized=True)
        axes[0].scatter(pos, g["lambda_eta_half"], label=rf"$\eta/\eta_{{crit}}$ = {r:g}", **kw)
        axes[1].scatter(pos, g["flatness_ratio"], **kw)
    for ax in axes:
        ax.set_xticks(range(len(scales)), [f"{s:g}" for s in scales])
        ax.set_xlabel(r"init scale $\alpha$")
    axes[0].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[0].set_ylabel(r"$\lambda_{\max}\,\eta/2$ at the landing minimum")
    axes[0].set_title(f"landing sharpness vs the edge 2/eta ({len(conv)} converged runs)")
    axes[1].axhline(1.0, color="k", lw=0.8, ls="--")
    fr = conv["flatness_ratio"].dropna()
    if len(fr) and fr.max() > 10 * max(fr.min(), 1e-300):
        axes[1].set_yscale("log")
    axes[1].set_ylabel(r"$\lambda_{\max}/\lambda_{\mathrm{flat}}$ (1: a flattest minimum)")
    axes[1].set_title("flatness of the landing minimum")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    save(fig, path)


def _fig_above(df: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    above = df[df["eta_ratio"] > 1.0]
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(above):
        out = outcome(above)
        table = out.groupby(above["eta_ratio"].round(9)).value_counts().unstack(fill_value=0)

        def order(name: str) -> tuple:
            if name.startswith("period"):
                return (1, int(name.split()[1]))
            return ({"converged": 0, "budget, no period": 2, "diverged": 3}.get(name, 4), 0)

        cols = sorted(table.columns, key=order)
        bottom = np.zeros(len(table))
        x = np.arange(len(table))
        for i, c in enumerate(cols):
            ax.bar(x, table[c].to_numpy(), bottom=bottom, color=f"C{i % 10}", label=c, width=0.7)
            bottom += table[c].to_numpy()
        ax.set_xticks(x, [f"{v:g}" for v in table.index])
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="outcome")
    ax.set_xlabel(r"$\eta/\eta_{\mathrm{crit}}$ (> 1: no global minimum is linearly stable)")
    ax.set_ylabel("runs")
    ax.set_title(f"what GD does above eta_crit ({len(above)} runs)")
    fig.tight_layout()
    save(fig, path)


#: File name -> (drawing function, caption).
TRAIN_FIGURES = {
    "converged_fraction.png": (_fig_converged, "Fraction converged vs eta/eta_crit, per init scale"),
    "landing_edge.png": (_fig_landing, "Landing lambda_max eta/2 and flatness vs init scale"),
    "above_critical.png": (_fig_above, "Outcomes above eta_crit: orbit periods and divergence"),
}
