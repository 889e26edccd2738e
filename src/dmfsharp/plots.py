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

__all__ = ["plot_escape", "plot_sharpness", "map_extent", "plot_training"]


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


# --------------------------------------------------------------------------- training


def plot_training(
    result, path: str | Path | None = None, *, title: str = "", formats: tuple[str, ...] = ("png",)
):
    """The four-panel figure of a :func:`dmfsharp.dynamics.train.train` call.

    (a) loss (log scale); (b) sharpness: the exact Gauss-Newton ``lambda_max(2 K^T K)``
    (lines; Theorem 5's expression, exact at every point) and the full Hessian's
    ``lambda_max`` (dots, where tracked), each run's ``2/eta`` (dashed, same colour) and
    ``lambda_flat(M)`` (black dotted: no global minimum is flatter, eq. 35); (c) top
    singular values of ``P`` (solid ``sigma_1``, dashed ``sigma_2``, dotted ``sigma_3``)
    with those of the target (grey); (d) balancedness
    ``||W_{i+1}^T W_{i+1} - W_i W_i^T||_F`` summed over layers (log scale; constant under
    gradient flow). One colour per step size, labelled ``eta / eta_crit``. Diverged runs
    are drawn until they leave the axes, which keep the scale of the other runs.
    """
    plt = _pyplot()
    runs = result.runs
    colors = _colors(len(runs))
    longest = max(r.iterations for r in runs)

    def label(run) -> str:
        ratio = f"{run.eta_ratio:.3g}" + r"\,\eta_{crit}" if run.eta_ratio is not None else f"{run.eta:.3g}"
        return f"$\\eta = {ratio}$ ({run.status})"

    with plt.rc_context({"font.size": 10, "legend.fontsize": 8.5}):
        fig, axes = plt.subplots(2, 2, figsize=(12, 8.2), constrained_layout=True)
        ax_loss, ax_sharp, ax_sv, ax_bal = axes.ravel()
        for run, c in zip(runs, colors, strict=False):
            k = np.arange(run.iterations + 1)
            loss = np.where(run.loss > 0, run.loss, np.nan)
            ax_loss.plot(k, loss, color=c, lw=1.1, label=label(run))
            ok = np.isfinite(run.gn_lambda_max)
            ax_sharp.plot(k[ok], run.gn_lambda_max[ok], color=c, lw=1.2)
            okh = np.isfinite(run.hessian_lambda_max)
            if okh.any():
                ax_sharp.plot(
                    k[okh],
                    run.hessian_lambda_max[okh],
                    ls="none",
                    marker="o",
                    ms=3,
                    color=c,
                    mec="k",
                    mew=0.3,
                )
            ax_sharp.axhline(2.0 / run.eta, color=c, lw=1.0, ls="--")
            for j, ls in zip(range(run.singular_values.shape[1]), ("-", "--", ":"), strict=False):
                ax_sv.plot(k, run.singular_values[:, j], color=c, lw=1.1, ls=ls)
            bal = np.nansum(run.balancedness, axis=1)
            bal = np.where(np.isfinite(run.balancedness).any(axis=1) & (bal > 0), bal, np.nan)
            ax_bal.plot(k, bal, color=c, lw=1.1)
        if result.flat_lambda_max:
            ax_sharp.axhline(result.flat_lambda_max, color="k", lw=1.2, ls=":", label=r"$\lambda_{flat}(M)$")
            ax_sharp.legend(loc="lower right", frameon=True, framealpha=0.85)
        if result.data is None:
            ns = max(r.singular_values.shape[1] for r in runs)
            for s in np.linalg.svd(result.target, compute_uv=False)[:ns]:
                ax_sv.axhline(s, color="0.6", lw=0.9, zorder=0)
        # diverged runs leave the picture: the axes keep the scale of the others
        kept = [r for r in runs if r.status != "diverged"]
        if kept and len(kept) < len(runs):
            top = [2.0 / r.eta for r in runs] + [result.flat_lambda_max or 0.0]
            top += [np.nanmax(np.r_[r.gn_lambda_max, r.hessian_lambda_max, 0.0]) for r in kept]
            ax_sharp.set_ylim(0, 1.12 * max(top))
            sv = [np.nanmax(np.r_[r.singular_values.ravel(), 0.0]) for r in kept]
            if result.data is None:
                sv.append(float(np.linalg.norm(result.target, 2)))
            ax_sv.set_ylim(0, 1.12 * max(sv))
        ax_loss.set_yscale("log")
        ax_bal.set_yscale("log")
        if kept and len(kept) < len(runs):
            vals = np.concatenate([r.loss[np.isfinite(r.loss) & (r.loss > 0)] for r in kept])
            if vals.size:
                ax_loss.set_ylim(vals.min() / 3, 10 * vals.max())
        titles = (
            "(a) training loss",
            r"(b) sharpness: lines $\lambda_{\max}(2K^\top K)$, dots full Hessian, dashed $2/\eta$",
            r"(c) top singular values of $P = W_L\cdots W_1$ (grey: target)",
            r"(d) balancedness $\sum_i \|W_{i+1}^\top W_{i+1} - W_i W_i^\top\|_F$",
        )
        for ax, t in zip(axes.ravel(), titles, strict=True):
            ax.set_title(t, fontsize=10)
            ax.set_xlabel("iteration $k$" + (" (log scale beyond 10)" if longest > 500 else ""))
            if longest > 500:
                ax.set_xscale("symlog", linthresh=10, linscale=0.5)
                ax.set_xlim(0, longest)
        ax_loss.legend(loc="best", frameon=True, framealpha=0.85)
        if title:
            fig.suptitle(title)
        if path is not None:
            for fmt in formats:
                fig.savefig(f"{path}.{fmt}", dpi=120)
    return fig
