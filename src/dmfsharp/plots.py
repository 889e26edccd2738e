"""Figures of the escape experiments in the paper's three-panel layout (matplotlib, Agg).

Panel (a): normalized training loss ``L(w_k) / ||M||_F^2`` against the iteration (log
scale). Panel (b): normalized squared distance ``||w_k - w*||^2 / ||w*||^2`` (log scale).
Panel (c): the contour map of the loss on the plane ``w* + x zeta + y gamma``
(Appendix D.1, eq. 91) with the projected trajectories and a star at each run's end.
One colour per step size; the legend gives ``eta`` in units of ``2 / lambda_max``.

matplotlib is an optional dependency (``pip install "dmfsharp[plot]"``); it is imported
inside the functions with the non-interactive ``Agg`` backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_escape", "plot_sharpness", "map_extent"]


def pyplot_backend():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'dmfsharp[plot]'") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int):
    plt = pyplot_backend()
    cmap = plt.get_cmap("viridis" if n > 10 else "tab10")
    return [cmap(i / max(n - 1, 1)) if n > 10 else cmap(i) for i in range(n)]


def _label(run) -> str:
    return f"$\\eta = {run.step_multiplier:.3g}\\cdot 2/\\lambda_{{\\max}}$ ({run.status})"


def _floor(traces) -> float:
    """Lowest positive value of the traces (exact zeros are drawn there), at least 1e-40."""
    pos = [np.min(t[t > 0]) for t in traces if np.any(t > 0)]
    return float(max(min(pos), 1e-40)) if pos else 1e-40


def map_extent(result, margin: float = 1.25) -> float:
    """Half-width of the square contour map: the trajectories' reach times ``margin``.

    Diverged runs are left out; at least ``10 r`` so the start is inside.
    """
    reach = [np.max(np.abs(r.coords)) for r in result.runs if r.status != "diverged"]
    reach = [x for x in reach if np.isfinite(x)]
    ext = margin * max(reach) if reach else 0.0
    return float(max(ext, 10.0 * result.radius))


def plot_escape(
    result,
    path: str | Path | None = None,
    *,
    grid: int = 201,
    title: str = "",
    formats: tuple[str, ...] = ("png", "pdf"),
    landscape: Any = None,
):
    """The three-panel escape figure of an :class:`~dmfsharp.dynamics.EscapeResult`.

    Parameters
    ----------
    result : EscapeResult
        From :func:`dmfsharp.dynamics.escape_experiment`.
    path : str or Path, optional
        File stem; each of ``formats`` is written as ``path.<fmt>``. None: no file.
    grid : int
        Points per axis of the contour map (``grid x grid`` loss evaluations, done by
        :func:`dmfsharp.landscape.loss_grid` in one vectorized pass).
    title : str
        Figure title.
    formats : tuple of str
        File formats to save.
    landscape : tuple, optional
        Precomputed ``(xs, ys, values)`` for panel (c).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .landscape import loss_grid

    plt = pyplot_backend()
    runs = result.runs
    colors = _colors(len(runs))
    mnorm2 = result.target_norm_sq or 1.0
    with plt.rc_context({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9}):
        fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.9), constrained_layout=True)
        ax_l, ax_d, ax_c = axes
        floor_l = _floor([r.normalized_loss for r in runs])
        floor_d = _floor([r.distance_sq for r in runs])
        for run, c in zip(runs, colors, strict=False):
            k = np.arange(run.iterations + 1)
            ax_l.semilogy(k, np.maximum(run.normalized_loss, floor_l), color=c, lw=1.3, label=_label(run))
            ax_d.semilogy(k, np.maximum(run.distance_sq, floor_d), color=c, lw=1.3)
            if run.escape_iteration is not None:
                ax_d.axvline(run.escape_iteration, color=c, lw=0.8, ls=":")
        ax_d.axhline(
            result.escape_threshold**2,
            color="0.4",
            lw=0.9,
            ls="--",
            label=f"escape threshold $\\tau^2$ ($\\tau$ = {result.escape_threshold:g})",
        )
        longest = max(r.iterations for r in runs)
        if longest > 500:  # escapes happen early; a log axis shows them and the long tails
            for ax in (ax_l, ax_d):
                ax.set_xscale("symlog", linthresh=10, linscale=0.5)
                ax.set_xlim(0, longest)
        xlabel = "iteration $k$" + (" (log scale beyond 10)" if longest > 500 else "")
        ax_l.set_xlabel(xlabel)
        ax_l.set_ylabel(r"$\mathcal{L}(w_k)\,/\,\|M\|_F^2$")
        ax_l.set_title("(a) normalized training loss")
        ax_d.set_xlabel(xlabel)
        ax_d.set_ylabel(r"$\|w_k - w^*\|_2^2\,/\,\|w^*\|_2^2$")
        ax_d.set_title("(b) normalized squared distance from $w^*$")
        ax_d.legend(loc="center right", frameon=True, framealpha=0.85)
        ax_l.legend(loc="best", frameon=False)

        ext = map_extent(result)
        if landscape is None:
            xs = np.linspace(-ext, ext, int(grid))
            ys = xs
            values = loss_grid(result.minimum, xs, ys, plane=result.plane, target=result.target)
        else:
            xs, ys, values = landscape
        z = np.log10(np.maximum(values / mnorm2, 1e-300))
        finite = z[np.isfinite(z)]
        lo, hi = (np.percentile(finite, 1), finite.max()) if finite.size else (0.0, 1.0)
        if not hi > lo:
            hi = lo + 1.0
        levels = np.linspace(lo, hi, 25)
        cs = ax_c.contourf(xs, ys, np.clip(z, lo, hi), levels=levels, cmap="Greys_r", alpha=0.9)
        ax_c.contour(xs, ys, np.clip(z, lo, hi), levels=levels[::3], colors="k", linewidths=0.4, alpha=0.5)
        cb = fig.colorbar(cs, ax=ax_c, shrink=0.9)
        cb.set_label(r"$\log_{10}\,\mathcal{L}(w^* + x\zeta + y\gamma)/\|M\|_F^2$")
        for run, c in zip(runs, colors, strict=False):
            if run.status == "diverged":
                continue
            ax_c.plot(run.coords[:, 0], run.coords[:, 1], color=c, lw=1.0, alpha=0.9)
            ax_c.plot(
                run.coords[-1, 0], run.coords[-1, 1], marker="*", ms=15, color=c, mec="k", mew=0.6, ls="none"
            )
        ax_c.plot(0, 0, marker="o", ms=5, color="w", mec="k", ls="none")
        ax_c.set_xlim(xs[0], xs[-1])
        ax_c.set_ylim(ys[0], ys[-1])
        names = ("v_1", "v_N") if result_plane_is_hessian(result) else (r"\zeta", r"\gamma")
        ax_c.set_xlabel(f"$x$ along ${names[0]}$")
        ax_c.set_ylabel(f"$y$ along ${names[1]}$")
        ax_c.set_title(r"(c) trajectories on the loss map ($\circ$ = $w^*$, $\star$ = end)")
        ax_c.ticklabel_format(style="sci", scilimits=(-2, 3))
        if title:
            fig.suptitle(title + f"   [$\\lambda_{{\\max}}(w^*)$ = {result.lambda_max:.6g}]", fontsize=13)
        if path is not None:
            for fmt in formats:
                fig.savefig(f"{path}.{fmt}", dpi=130)
    return fig


def result_plane_is_hessian(result) -> bool:
    """Whether the plane of ``result`` is ``(v_1, v_N)`` (its first row is ``+-v_1``)."""
    from .exact import top_eigenvector

    v1 = np.concatenate([b.ravel() for b in top_eigenvector(result.minimum)])
    return bool(abs(abs(float(v1 @ result.plane[0])) - 1.0) < 1e-8)


def plot_sharpness(
    result, path: str | Path | None = None, *, title: str = "", formats: tuple[str, ...] = ("png",)
):
    """Sharpness along each trajectory against the iteration, with ``2/eta`` lines.

    Solid: the exact ``lambda_max(2 K^T K)`` (Gauss-Newton part, Lemma 3) at the tracked
    iterations; markers: the full Hessian's ``lambda_max`` (Lanczos); dashed: ``2/eta``
    of the same run (the edge of stability). Needs ``track_every`` and/or
    ``track_hessian_every`` in the experiment.
    """
    plt = pyplot_backend()
    colors = _colors(len(result.runs))
    with plt.rc_context({"font.size": 11, "legend.fontsize": 9}):
        fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
        for run, c in zip(result.runs, colors, strict=False):
            if len(run.track_iterations):
                ax.plot(run.track_iterations, run.gn_lambda_max, color=c, lw=1.4, label=_label(run))
            if len(run.hessian_track_iterations):
                ax.plot(
                    run.hessian_track_iterations,
                    run.hessian_lambda_max,
                    ls="none",
                    marker="o",
                    ms=3.5,
                    color=c,
                    mec="k",
                    mew=0.3,
                )
            ax.axhline(2.0 / run.eta, color=c, lw=1.0, ls="--")
        longest = max(r.iterations for r in result.runs)
        if longest > 500:
            ax.set_xscale("symlog", linthresh=10, linscale=0.5)
            ax.set_xlim(0, longest)
        ax.set_xlabel("iteration $k$" + (" (log scale beyond 10)" if longest > 500 else ""))
        ax.set_ylabel(r"$\lambda_{\max}$ at $w_k$")
        ax.set_title(
            (title + "\n" if title else "") + r"sharpness along GD: lines "
            r"$\lambda_{\max}(2K^\top K)$, dots $\lambda_{\max}(\nabla^2\mathcal{L})$, "
            r"dashed $2/\eta$"
        )
        ax.legend(loc="center right", frameon=True, framealpha=0.85)
        if path is not None:
            for fmt in formats:
                fig.savefig(f"{path}.{fmt}", dpi=130)
    return fig
