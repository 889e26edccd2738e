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
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .dynamics import EscapeResult, RunResult
    from .dynamics.train_results import TrainResult, TrainRun
    from .manifold import ManifoldPath

__all__ = ["plot_escape", "plot_sharpness", "map_extent", "plot_training", "plot_minima_path"]


def pyplot_backend() -> ModuleType:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'dmfsharp[plot]'") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int) -> list[Any]:
    plt = pyplot_backend()
    cmap = plt.get_cmap("viridis" if n > 10 else "tab10")
    return [cmap(i / max(n - 1, 1)) if n > 10 else cmap(i) for i in range(n)]


def _label(run: RunResult) -> str:
    return f"$\\eta = {run.step_multiplier:.3g}\\cdot 2/\\lambda_{{\\max}}$ ({run.status})"


def _floor(traces: Sequence[np.ndarray]) -> float:
    """Lowest positive value of the traces (exact zeros are drawn there), at least 1e-40."""
    pos = [np.min(t[t > 0]) for t in traces if np.any(t > 0)]
    return float(max(min(pos), 1e-40)) if pos else 1e-40


def map_extent(result: EscapeResult, margin: float = 1.25) -> float:
    """Half-width of a square contour map: the trajectories' reach times ``margin``.

    Diverged runs are left out; at least ``10 r`` so the start is inside. (The figure itself
    uses a window fitted to each row's trajectories, see :func:`plot_escape`.)

    Parameters
    ----------
    result : EscapeResult
        The experiment.
    margin : float, optional
        The factor on the farthest projected point.

    Returns
    -------
    float
        The half-width, in the units of the plane coordinates.
    """
    reach = [np.max(np.abs(r.coords)) for r in result.runs if r.status != "diverged"]
    reach = [x for x in reach if np.isfinite(x)]
    ext = margin * max(reach) if reach else 0.0
    return float(max(ext, 10.0 * result.radius))


#: End-of-run markers, one per run in a row (the start ``w*`` is the white circle).
_END_MARKERS = ("*", "D", "s", "^", "v", "P", "X", "p", "h", "<", ">")


def _window(
    runs: Sequence[RunResult], radius: float, pad: float = 0.08, quantile: float = 0.0
) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` of the map: the row's trajectories and ``w*``, padded.

    Each axis gets its own range (the runs oscillate along ``v_1`` far more than they move
    along ``v_N``), the short one at least 2% of the long one, both at least ``20 r``.
    """
    pts = [r.coords[np.all(np.isfinite(r.coords), axis=1)] for r in runs if r.status != "diverged"]
    pts = [p for p in pts if len(p)]
    # Each run's points between the given quantiles (all of them by default) and its end.
    keep = [np.zeros((1, 2))]
    for p in pts:
        keep += [np.quantile(p, [quantile, 1.0 - quantile], axis=0), p[-1:]]
    allp = np.vstack(keep)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = np.maximum(hi - lo, 20.0 * radius)
    span = np.maximum(span, 0.02 * span.max())
    mid = 0.5 * (lo + hi)
    half = 0.5 * span * (1.0 + 2.0 * pad)
    return float(mid[0] - half[0]), float(mid[0] + half[0]), float(mid[1] - half[1]), float(mid[1] + half[1])


def _positive_or_zero(
    ax: Axes, k: np.ndarray, values: Any, color: Any, lw: float = 1.3, slot: int = 0
) -> bool:
    """Draw ``values`` on a log axis; exact zeros as a bar along the bottom, not a floor.

    Returns whether there were exact zeros.
    """
    v = np.asarray(values, dtype=float)
    ax.plot(k, np.where(v > 0, v, np.nan), color=color, lw=lw)
    zero = v == 0
    if not np.any(zero):
        return False
    trans = ax.get_xaxis_transform()  # x in data, y in axes fraction
    y = 0.012 + 0.02 * slot  # one lane per run, so bars of different runs do not hide each other
    ax.plot(k, np.where(zero, y, np.nan), color=color, lw=4, solid_capstyle="butt", transform=trans)
    return True


def _zoom_inset(
    ax: Axes,
    runs: Sequence[RunResult],
    colors: Sequence[Any],
    window: tuple[float, float, float, float],
    draw: Callable[[Axes], Any],
) -> None:
    """Zoom on the runs' ends when they sit in a small part of the map.

    The inset goes into the corner of the map that the trajectories cross least (points
    counted), and ``draw(inset)`` fills it like the main map.
    """
    live = [r for r in runs if r.status != "diverged" and np.all(np.isfinite(r.coords[-1]))]
    if len(live) < 2:
        return
    ends = np.vstack([np.zeros((1, 2))] + [r.coords[-1:] for r in live])
    x0, x1, y0, y1 = window
    lo, hi = ends.min(axis=0), ends.max(axis=0)
    fx, fy = (hi[0] - lo[0]) / (x1 - x0), (hi[1] - lo[1]) / (y1 - y0)
    if fx * fy > 0.03 or max(fx, fy) < 0.01:  # ends already apart, or all at w* (rounding)
        return
    span = np.maximum(hi - lo, 1e-3 * np.array([x1 - x0, y1 - y0]))
    zx0, zx1 = lo[0] - 0.2 * span[0], hi[0] + 0.2 * span[0]
    zy0, zy1 = lo[1] - 0.2 * span[1], hi[1] + 0.2 * span[1]
    pts = np.vstack([r.coords for r in live])
    u = (pts[:, 0] - x0) / (x1 - x0)
    v = (pts[:, 1] - y0) / (y1 - y0)
    size = 0.4
    corners = [(0.02, 0.02), (0.58, 0.02), (0.02, 0.53), (0.58, 0.53)]  # room for the title
    zoom_u = ((zx0 + zx1) / 2 - x0) / (x1 - x0)
    zoom_v = ((zy0 + zy1) / 2 - y0) / (y1 - y0)

    def cost(c: tuple[float, float]) -> int:
        inside = (u >= c[0]) & (u <= c[0] + size) & (v >= c[1]) & (v <= c[1] + size)
        covers_zoom = c[0] <= zoom_u <= c[0] + size and c[1] <= zoom_v <= c[1] + size
        return int(inside.sum()) + (10**9 if covers_zoom else 0)

    cu, cv = min(corners, key=cost)
    inset = ax.inset_axes((cu, cv, size, size))
    draw(inset)
    inset.set_xlim(zx0, zx1)
    inset.set_ylim(zy0, zy1)
    inset.tick_params(labelleft=False, labelbottom=False, length=2)  # the box gives the scale
    inset.set_title("zoom on the ends (boxed)", fontsize=8, pad=2)
    ax.indicate_inset_zoom(inset, edgecolor="k", alpha=0.8)


def _split_rows(runs: Sequence[RunResult], rows: int | None) -> list[list[int]]:
    """Indices of the runs of each row: ``eta > 2/lambda_max`` above, the rest below."""
    idx = list(range(len(runs)))
    above = [i for i in idx if runs[i].step_multiplier > 1.0]
    below = [i for i in idx if runs[i].step_multiplier <= 1.0]
    if rows is None:
        rows = 2 if above and below else 1
    if rows == 1 or not above or not below:
        return [idx]
    return [above, below]


def plot_escape(
    result: EscapeResult,
    path: str | Path | None = None,
    *,
    grid: int = 201,
    title: str = "",
    formats: tuple[str, ...] = ("png", "pdf"),
    landscape: Any = None,
    rows: int | None = None,
) -> Figure:
    r"""Plot the escape figure of an :class:`~dmfsharp.EscapeResult`, in the paper's layout.

    Each row has three panels: (a) the normalized loss :math:`\mathcal{L}(w_k)/\|M\|_F^2`,
    (b) the normalized squared distance :math:`\|w_k - w^*\|^2/\|w^*\|^2` with each run's
    observed escape iteration (dotted) and its linear-theory prediction (dash-dot), and
    (c) the loss contour map on the plane ``w* + x zeta + y gamma`` (Appendix D.1, eq. 91)
    with the projected trajectories, fitted to them, and a distinct marker at each run's
    end. With step sizes on both sides of ``2 / lambda_max`` the figure has two rows like
    the paper's Figures 2 and 4-7: panels (a)-(c) for ``eta > 2 / lambda_max``, (d)-(f) for
    ``eta <= 2 / lambda_max``. A loss that is exactly 0 is drawn as a bar along the bottom
    axis, not at an invented floor. The legends sit below each row, off the curves.

    Parameters
    ----------
    result : EscapeResult
        From :func:`dmfsharp.dynamics.escape_experiment`.
    path : str or Path, optional
        File stem; each of ``formats`` is written as ``path.<fmt>``. None: no file.
    grid : int
        Points per axis of each contour map (``grid x grid`` loss evaluations, done by
        :func:`dmfsharp.landscape.loss_grid` in one vectorized pass).
    title : str
        Figure title (``lambda_max(w*)`` is appended).
    formats : tuple of str
        File formats to save.
    landscape : tuple or list of tuples, optional
        Precomputed ``(xs, ys, values)`` for panel (c), one per row.
    rows : {None, 1, 2}
        None: two rows when there are step sizes on both sides of ``2 / lambda_max``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one row of three panels per group of step sizes (left open; close
        it with ``matplotlib.pyplot.close``).

    Raises
    ------
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.
    OSError
        If a file cannot be written.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Section 7, Figures 1-7; Appendix D.1).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from dmfsharp import get_preset
    >>> preset = get_preset("fig3").replace(dims=(2, 2, 2), iterations=30, step_multipliers=(0.5, 1.5))
    >>> fig = plot_escape(preset.run(), grid=11)
    >>> len(fig.subfigs)  # eta on both sides of 2 / lambda_max: two rows
    2
    >>> plt.close(fig)
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from .landscape import loss_grid

    plt = pyplot_backend()
    runs = result.runs
    groups = _split_rows(runs, rows)
    if landscape is not None and isinstance(landscape, tuple):
        landscape = [landscape]
    mnorm2 = result.target_norm_sq or 1.0
    longest = max(r.iterations for r in runs)
    logx = longest > 500  # escapes happen early; a log axis shows them and the long tails
    xlabel = "iteration $k$" + (" (log scale beyond 10)" if logx else "")
    names = ("v_1", "v_N") if result_plane_is_hessian(result) else (r"\zeta", r"\gamma")
    letters = (("a", "b", "c"), ("d", "e", "f"))
    rc = {"font.size": 11, "axes.titlesize": 11.5, "axes.labelsize": 11, "legend.fontsize": 9.5}
    with plt.rc_context(rc):
        fig = plt.figure(figsize=(16.5, 5.9 * len(groups) + (0.5 if title else 0.0)), layout="constrained")
        subfigs = fig.subfigures(len(groups), 1, squeeze=False)[:, 0]
        for g, (sub, members) in enumerate(zip(subfigs, groups, strict=True)):
            ax_l, ax_d, ax_c = sub.subplots(1, 3, gridspec_kw={"width_ratios": [1.0, 1.0, 1.12]})
            la, lb, lc = letters[g]
            row_runs = [runs[i] for i in members]
            colors = _colors(len(row_runs)) if len(groups) == 1 else [_colors(len(runs))[i] for i in members]
            handles = []
            zero_seen = False
            for j, (run, c) in enumerate(zip(row_runs, colors, strict=True)):
                k = np.arange(run.iterations + 1)
                zero_seen |= _positive_or_zero(ax_l, k, run.normalized_loss, c, slot=j)
                zero_seen |= _positive_or_zero(ax_d, k, run.distance_sq, c, slot=j)
                if run.escape_iteration is not None:
                    ax_d.axvline(run.escape_iteration, color=c, lw=1.0, ls=":")
                if run.predicted_escape_iteration is not None and np.isfinite(run.predicted_escape_iteration):
                    ax_d.axvline(run.predicted_escape_iteration, color=c, lw=1.0, ls="-.", alpha=0.8)
                mk = _END_MARKERS[j % len(_END_MARKERS)] if run.status != "diverged" else None
                handles.append(
                    Line2D([], [], color=c, lw=1.6, marker=mk, ms=9, mec="k", mew=0.6, label=_label(run))
                )
            ax_d.axhline(result.escape_threshold**2, color="0.35", lw=0.9, ls="--")
            handles.append(
                Line2D([], [], color="0.35", lw=0.9, ls="--", label=f"({lb}) escape threshold $\\tau^2$")
            )
            if any(r.escape_iteration is not None for r in row_runs):
                handles.append(
                    Line2D([], [], color="0.2", lw=1.0, ls=":", label=f"({lb}) observed escape iteration")
                )
            if any(r.predicted_escape_iteration is not None for r in row_runs):
                handles.append(
                    Line2D([], [], color="0.2", lw=1.0, ls="-.", label=f"({lb}) linear prediction of it")
                )
            if zero_seen:
                handles.append(Line2D([], [], color="0.2", lw=4, label="bar on the bottom axis: exactly 0"))
            for ax in (ax_l, ax_d):
                ax.set_yscale("log")
                if logx:
                    ax.set_xscale("symlog", linthresh=10, linscale=0.5)
                ax.set_xlim(0, longest)
                ax.set_xlabel(xlabel)
            for ax in (ax_l, ax_d):  # at least two decades, so a flat curve reads as flat
                ylo, yhi = ax.get_ylim()
                if yhi < 100.0 * ylo:
                    mid = np.sqrt(ylo * yhi)
                    ax.set_ylim(mid / 10.0, mid * 10.0)
            ax_l.set_ylabel(r"$\mathcal{L}(w_k)\,/\,\|M\|_F^2$")
            ax_l.set_title(f"({la}) normalized training loss")
            ax_d.set_ylabel(r"$\|w_k - w^*\|_2^2\,/\,\|w^*\|_2^2$")
            ax_d.set_title(f"({lb}) normalized squared distance from $w^*$")

            x0, x1, y0, y1 = _window(row_runs, result.radius)
            if landscape is not None and g < len(landscape):
                xs, ys, values = landscape[g]
            else:
                xs = np.linspace(x0, x1, int(grid))
                ys = np.linspace(y0, y1, int(grid))
                values = loss_grid(result.minimum, xs, ys, plane=result.plane, target=result.target)
            with np.errstate(divide="ignore"):
                z = np.log10(np.asarray(values) / mnorm2)
            finite = z[np.isfinite(z)]
            lo, hi = (np.percentile(finite, 1), finite.max()) if finite.size else (0.0, 1.0)
            if not hi > lo:
                hi = lo + 1.0
            levels = np.asarray(MaxNLocator(nbins=16, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
            levels = levels[(levels >= lo - 1e-12) & (levels <= hi + 1e-12)]
            if levels.size < 3:
                levels = np.linspace(lo, hi, 9)
            zc = np.clip(np.where(np.isfinite(z), z, levels[0]), levels[0], levels[-1])

            def draw_map(
                ax: Axes,
                xs: np.ndarray = xs,
                ys: np.ndarray = ys,
                zc: np.ndarray = zc,
                levels: np.ndarray = levels,
                row_runs: list[RunResult] = row_runs,
                colors: list[Any] = colors,
            ) -> Any:
                filled = ax.contourf(xs, ys, zc, levels=levels, cmap="Greys_r", alpha=0.9)
                ax.contour(xs, ys, zc, levels=levels, colors="k", linewidths=0.35, alpha=0.45)
                for j, (run, c) in enumerate(zip(row_runs, colors, strict=True)):
                    if run.status == "diverged":
                        continue
                    ax.plot(run.coords[:, 0], run.coords[:, 1], color=c, lw=1.0, alpha=0.85)
                    ax.plot(
                        run.coords[-1, 0],
                        run.coords[-1, 1],
                        marker=_END_MARKERS[j % len(_END_MARKERS)],
                        ms=13 if j == 0 else 9,
                        color=c,
                        mec="k",
                        mew=0.7,
                        ls="none",
                        zorder=5,
                    )
                ax.plot(0, 0, marker="o", ms=6, color="w", mec="k", ls="none", zorder=4)
                return filled

            cs = draw_map(ax_c)
            cb = sub.colorbar(cs, ax=ax_c, shrink=0.95)
            ticks = np.asarray(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]).tick_values(levels[0], levels[-1]))
            cb.set_ticks(ticks[(ticks >= levels[0]) & (ticks <= levels[-1])])
            cb.ax.yaxis.set_major_formatter(plt.FormatStrFormatter("%g"))
            cb.set_label(r"$\log_{10}\,\mathcal{L}(w^* + x\zeta + y\gamma)\,/\,\|M\|_F^2$")
            _zoom_inset(ax_c, row_runs, colors, (xs[0], xs[-1], ys[0], ys[-1]), draw_map)
            ax_c.set_xlim(xs[0], xs[-1])
            ax_c.set_ylim(ys[0], ys[-1])
            ax_c.set_xlabel(f"$x$ along ${names[0]}$")
            ax_c.set_ylabel(f"$y$ along ${names[1]}$")
            ax_c.set_title(f"({lc}) GD trajectories on the loss map (white circle: $w^*$; markers: ends)")
            ax_c.ticklabel_format(style="sci", scilimits=(-2, 3))
            if len(groups) == 2:
                sub.suptitle(
                    r"step sizes $\eta > 2/\lambda_{\max}$ (linearly unstable)"
                    if g == 0
                    else r"step sizes $\eta \leq 2/\lambda_{\max}$ (linearly stable or neutral)",
                    fontsize=12,
                )
            sub.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
        if title:
            fig.suptitle(title + f"   [$\\lambda_{{\\max}}(w^*)$ = {result.lambda_max:.6g}]", fontsize=13)
        if path is not None:
            for fmt in formats:
                fig.savefig(f"{path}.{fmt}", dpi=130)
    return fig


def result_plane_is_hessian(result: EscapeResult) -> bool:
    """Whether the plane of ``result`` is ``(v_1, v_N)`` (its first row is ``+-v_1``)."""
    from .exact import top_eigenvector

    v1 = np.concatenate([b.ravel() for b in top_eigenvector(result.minimum)])
    return bool(abs(abs(float(v1 @ result.plane[0])) - 1.0) < 1e-8)


def plot_sharpness(
    result: EscapeResult,
    path: str | Path | None = None,
    *,
    title: str = "",
    formats: tuple[str, ...] = ("png",),
) -> Figure:
    """Plot the sharpness along each trajectory against the iteration, with the edge 2/eta per run.

    Solid: the exact ``lambda_max(2 K^T K)`` (Gauss-Newton part, Lemma 3) at the tracked
    iterations; markers: the full Hessian's ``lambda_max`` (Lanczos); dashed: ``2/eta``
    of the same run (the edge of stability). Needs ``track_every`` and/or
    ``track_hessian_every`` in the experiment.

    Parameters
    ----------
    result : EscapeResult
        From :func:`dmfsharp.escape_experiment` with ``track_every`` and/or
        ``track_hessian_every`` set (otherwise only the ``2/eta`` lines are drawn).
    path : str or Path, optional
        File stem; each of ``formats`` is written as ``path.<fmt>``. None: no file.
    title : str
        A first title line.
    formats : tuple of str
        File formats to save.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, sharpness against the iteration (left open).

    Raises
    ------
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.
    OSError
        If a file cannot be written.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Lemma 3, Theorem 5, Section 7). L. Wu, C. Ma and
    W. E, How SGD selects the global minima in over-parameterized learning: a dynamical
    stability perspective, NeurIPS 2018 (the stability threshold ``2/eta``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from dmfsharp import get_preset
    >>> preset = get_preset("fig1").replace(dims=(2, 2, 2), iterations=20, grid=5, step_multipliers=(1.5,))
    >>> result = preset.run(track_every=5)
    >>> fig = plot_sharpness(result)
    >>> edge = fig.axes[0].lines[-1].get_ydata()[0]  # the dashed 2 / eta, eta = 1.5 * 2 / lambda_max
    >>> bool(abs(1.5 * edge - result.lambda_max) <= 1e-12 * result.lambda_max)
    True
    >>> plt.close(fig)
    """
    plt = pyplot_backend()
    colors = _colors(len(result.runs))
    with plt.rc_context({"font.size": 11, "legend.fontsize": 9}):
        fig, ax = plt.subplots(figsize=(11, 5.2), layout="constrained")
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
        dots = any(len(r.hessian_track_iterations) for r in result.runs)
        ax.set_title(
            (title + "\n" if title else "")
            + r"sharpness along GD: solid $\lambda_{\max}(2K^\top K)$"
            + (r", dots $\lambda_{\max}(\nabla^2\mathcal{L})$" if dots else "")
            + r", dashed $2/\eta$ of the same colour"
        )
        fig.legend(loc="outside lower center", ncol=2, frameon=False)  # off the curves
        if path is not None:
            for fmt in formats:
                fig.savefig(f"{path}.{fmt}", dpi=130)
    return fig


# --------------------------------------------------------------------------- training


def plot_training(
    result: TrainResult,
    path: str | Path | None = None,
    *,
    title: str = "",
    formats: tuple[str, ...] = ("png",),
) -> Figure:
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

    Parameters
    ----------
    result : TrainResult
        From :func:`dmfsharp.train`.
    path : str or Path, optional
        File stem; each of ``formats`` is written as ``path.<fmt>``. None: no file.
    title : str
        A title above the panels.
    formats : tuple of str
        File formats to save.

    Returns
    -------
    matplotlib.figure.Figure
        The four-panel figure (left open).

    Raises
    ------
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.
    OSError
        If a file cannot be written.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Theorem 5 and eq. (35).
    """
    plt = pyplot_backend()
    runs = result.runs
    colors = _colors(len(runs))
    longest = max(r.iterations for r in runs)

    def label(run: TrainRun) -> str:
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
            # sampled every ``sample_every`` steps: draw the sampled rows only (NaN between)
            for j, ls in zip(range(run.singular_values.shape[1]), ("-", "--", ":"), strict=False):
                sv_j = run.singular_values[:, j]
                oks = np.isfinite(sv_j)
                ax_sv.plot(k[oks], sv_j[oks], color=c, lw=1.1, ls=ls)
            bal = np.nansum(run.balancedness, axis=1)
            okb = np.isfinite(run.balancedness).any(axis=1) & (bal > 0)
            ax_bal.plot(k[okb], bal[okb], color=c, lw=1.1)
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


def plot_minima_path(path: ManifoldPath, file: Any = None) -> Figure:
    """Plot sharpness measures (top) and imbalances (bottom) along the path.

    The flat stretch is shaded: there ``lambda_max`` stays at the flat value while the
    Hessian trace and the Frobenius imbalance move (Section 6). Returns the matplotlib
    figure; saves it to ``file`` when given (atomically, format from the suffix).

    Parameters
    ----------
    path : ManifoldPath
        The result of :func:`dmfsharp.minima_path`.
    file : str or path-like, optional
        Where to save the figure (PNG, PDF or SVG by suffix); None only returns it.

    Returns
    -------
    matplotlib.figure.Figure
        The two-panel figure (closed after saving when ``file`` is given).

    Raises
    ------
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.
    OSError
        If ``file`` cannot be written.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 6.

    Examples
    --------
    >>> from dmfsharp import minima_path
    >>> fig = plot_minima_path(minima_path(num=5))
    >>> len(fig.axes)
    2
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    import matplotlib

    if file is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    s = path.scales
    lo, hi = path.flat_stretch
    fig, (ax1, ax2) = plt.subplots(
        2, 1, sharex=True, figsize=(7.0, 6.4), gridspec_kw={"height_ratios": [3, 2]}
    )
    for ax in (ax1, ax2):
        ax.axvspan(max(lo, s[0]), min(hi, s[-1]), color="tab:green", alpha=0.12, lw=0)
        for name, v in path.marks.items():
            ax.axvline(v, color="0.4", ls=":" if name == "balanced" else "--", lw=1)
    ax1.plot(s, path.lambda_max, color="tab:red", lw=2, label=r"$\lambda_{\max}$ (exact)")
    ax1.plot(s, path.trace, color="tab:blue", lw=2, label=r"trace$(\nabla^2\mathcal{L})$")
    ax1.plot(s, path.upper_bound, color="tab:orange", lw=1, ls="-.", label="Corollary 10 bound")
    ax1.axhline(
        path.flat_lambda_max,
        color="k",
        ls="--",
        lw=1,
        label=rf"flat value $2L\sigma_{{\max}}(M)^{{2-2/L}}$ = {path.flat_lambda_max:.4g}",
    )
    if "section6" in path.marks:
        i = int(np.argmin(abs(s - path.marks["section6"])))
        ax1.plot([s[i]], [path.lambda_max[i]], "o", color="tab:red")
        ax1.plot([s[i]], [path.trace[i]], "o", color="tab:blue")
        ax1.annotate(
            rf"Section 6 $(L^*, R^*)$: $\lambda_{{\max}}$ = {path.lambda_max[i]:.6g}",
            (s[i], path.lambda_max[i]),
            textcoords="offset points",
            xytext=(-10, 18),
            ha="right",
            fontsize=9,
        )
        ax1.annotate(
            f"trace = {path.trace[i]:.6g}",
            (s[i], path.trace[i]),
            textcoords="offset points",
            xytext=(-10, 10),
            ha="right",
            fontsize=9,
        )
    ax1.set_ylabel("curvature")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8, loc="upper left")
    ax1.set_title(
        f"Minimizers of one M (dims {tuple(path.start.dims)}): "
        rf"$W_{path.layer}\to G(s)W_{path.layer}$, "
        rf"$W_{path.layer + 1}\to W_{path.layer + 1}G(s)^{{-1}}$",
        fontsize=10,
    )
    ax2.plot(s, path.spectral_imbalance, color="tab:purple", lw=2, label="spectral-norm imbalance")
    ax2.plot(s, path.frobenius_imbalance, color="tab:brown", lw=2, label="Frobenius imbalance")
    ax2.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    nice = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100])
    ticks = nice[(nice >= s[0]) & (nice <= s[-1])]
    if ticks.size >= 2:
        ax2.xaxis.set_major_locator(FixedLocator(ticks))
        ax2.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax2.xaxis.set_minor_formatter(NullFormatter())
    ax2.set_xlabel(
        rf"path parameter $s$ (singular direction {path.direction}; "
        r"$s=1$ balanced; shaded: flat stretch)"
    )
    ax2.set_ylabel("imbalance")
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    if file is not None:
        from pathlib import Path

        from .io import atomic_write

        file = Path(file)
        with atomic_write(file, "wb") as fh:
            fig.savefig(fh, format=file.suffix.lstrip(".") or "png", dpi=150)
        plt.close(fig)
    return fig
