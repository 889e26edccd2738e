"""Shared drawing helpers of the sweep and study reports (matplotlib imported lazily).

Step sizes are drawn on a *categorical* axis (one slot per value that was run, labelled
with it), so no line or gap suggests results at step sizes that were not run; groups
that share a slot (depths, init scales) are offset sideways and carry their own marker,
so coinciding curves stay distinguishable; legends sit outside the axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MARKERS", "categorical_errorbars", "save", "edge_slot", "log_ticks"]

#: One marker per group, in order.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def edge_slot(levels: list[float], edge: float = 1.0) -> float | None:
    """Position of ``edge`` on a categorical axis of ``levels`` (between slots if not run)."""
    if not levels:
        return None
    lv = np.asarray(levels, dtype=float)
    if np.any(np.isclose(lv, edge)):
        return float(np.flatnonzero(np.isclose(lv, edge))[0])
    return float(np.interp(edge, lv, np.arange(lv.size))) if lv[0] < edge < lv[-1] else None


def categorical_errorbars(
    ax: Any,
    levels: list[float],
    groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    *,
    width: float = 0.6,
) -> None:
    """Draw proportions with 95% intervals on a categorical step-size axis.

    ``groups``: ``(label, level values, p, lo, hi)`` each; group ``j`` of ``n`` is drawn
    ``(j - (n - 1) / 2) * width / n`` to the side of its slot, with marker ``MARKERS[j]``
    and no connecting line.
    """
    index = {round(float(v), 9): i for i, v in enumerate(levels)}
    n = max(len(groups), 1)
    for j, (label, x, p, lo, hi) in enumerate(groups):
        pos = np.array([index[round(float(v), 9)] for v in x], dtype=float) + (j - (n - 1) / 2) * width / n
        p = np.asarray(p, dtype=float)
        err = np.vstack([p - np.asarray(lo, dtype=float), np.asarray(hi, dtype=float) - p])
        ax.errorbar(
            pos,
            p,
            yerr=np.clip(err, 0, None),
            fmt=MARKERS[j % len(MARKERS)],
            ms=4,
            lw=0.9,
            capsize=2,
            color=f"C{j % 10}",
            label=label,
        )
    ax.set_xticks(range(len(levels)), [f"{v:g}" for v in levels])
    ax.set_xlim(-0.6, len(levels) - 0.4)
    slot = edge_slot(levels)
    if slot is not None:
        ax.axvline(slot, color="k", lw=0.8, ls="--")


def log_ticks(ax: Any, which: str = "both") -> None:
    """Decade ticks labelled ``10^k`` with unlabelled minor ticks on log axes."""
    from matplotlib.ticker import LogFormatterMathtext, LogLocator, NullFormatter

    axes = [ax.xaxis, ax.yaxis] if which == "both" else [ax.xaxis if which == "x" else ax.yaxis]
    for axis in axes:
        axis.set_major_locator(LogLocator(base=10, numticks=8))
        axis.set_major_formatter(LogFormatterMathtext())
        axis.set_minor_locator(LogLocator(base=10, subs=[k / 10 for k in range(2, 10)], numticks=50))
        axis.set_minor_formatter(NullFormatter())


def save(fig: Any, path: Path, dpi: int = 110) -> None:
    """Save and close a figure (tight bounding box: nothing clipped)."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
