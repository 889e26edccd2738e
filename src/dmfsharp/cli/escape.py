"""``dmfsharp escape``: one escape experiment (a preset, custom dims, or a saved minimum)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import validate as V
from .validate import CLIError

if TYPE_CHECKING:
    import argparse

    import numpy as np


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``escape`` subcommand to ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``dmfsharp`` parser.
    """
    p = sub.add_parser(
        "escape",
        help="run GD from next to a global minimum with several step sizes; write a run folder",
        description=(
            "Start gradient descent at w* + r v_1 (Section 7) with several step sizes in one "
            "batched run, classify each run (escaped / returned / diverged / undecided), and "
            "write a run folder: figure.png, figure.pdf, summary.json, minimum.npz, "
            "final_run<i>.npz and trace_run<i>.csv. The minimum comes from --preset, from "
            "--dims (Gaussian factors, M := their product, Appendix D.2) or from --minimum FILE."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a preset name (see `dmfsharp presets`)")
    src.add_argument("--dims", help="comma-separated d_0,...,d_L for a seeded Gaussian minimum")
    src.add_argument("--minimum", metavar="FILE", help=".npz with W1 ... WL (and optionally M)")
    p.add_argument("--out", required=True, help="run folder to create")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument("--step-multipliers", help="comma-separated eta in units of 2/lambda_max")
    steps.add_argument("--etas", help="comma-separated absolute step sizes")
    p.add_argument("--radius", type=float, help="start distance r > 0 (default 1e-10)")
    p.add_argument("--iterations", type=int, help="GD steps per run (default 5000)")
    p.add_argument("--seed", type=int, help="seed of the minimum and random directions (default 0)")
    p.add_argument(
        "--direction",
        choices=("top", "random"),
        help="start along v_1 (default) or a seeded random unit vector",
    )
    planes = p.add_mutually_exclusive_group()
    planes.add_argument(
        "--plane",
        choices=("hessian", "random"),
        help="contour-map plane: (v_1, v_N) (default) or seeded random",
    )
    planes.add_argument(
        "--plane-file",
        metavar="FILE",
        help=".npz with flat arrays 'zeta' and 'gamma' (length N): your own "
        "plane directions (orthonormalized in that order)",
    )
    p.add_argument(
        "--escape-threshold",
        type=float,
        default=1e-4,
        help="tau: escape when ||w_k - w*|| > tau ||w*|| (default 1e-4)",
    )
    p.add_argument("--grid", type=int, help="contour-map points per axis (default 201)")
    p.add_argument(
        "--track-every",
        type=int,
        metavar="K",
        help="record exact lambda_max(2 K^T K) every K steps (sharpness.png)",
    )
    p.add_argument(
        "--track-hessian-every",
        type=int,
        metavar="K2",
        help="record the full Hessian's lambda_max (Lanczos) every K2 steps",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "numpy", "numba"),
        default="auto",
        help="GD engine: numba's compiled kernel, NumPy's batched matmuls, or auto "
        "(numba if installed; default). Numbers after an escape are "
        "reproducible per engine; summary.json records the one that ran",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        metavar="MU",
        help="mu of L_mu = ||M - P||^2 + mu sum ||W_k||^2: with --dims the start is the global "
        "minimizer of L_mu for M = the seeded minimum's product, with --minimum a critical point "
        "of L_mu (the file holds M), with --preset it overrides the preset's (default 0)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip figure.png/figure.pdf")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    V.positive_float(args.radius, "--radius")
    V.count(args.iterations, "--iterations", maximum=V.MAX_ITERATIONS)
    V.positive_float(args.escape_threshold, "--escape-threshold")
    V.count(args.grid, "--grid", minimum=2, maximum=V.MAX_GRID)
    V.count(args.track_every, "--track-every", maximum=V.MAX_ITERATIONS)
    V.count(args.track_hessian_every, "--track-hessian-every", maximum=V.MAX_ITERATIONS)
    V.nonnegative_float(args.weight_decay, "--weight-decay")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise CLIError(f"--seed must be in 0 .. 2**63-1, got {args.seed}")


def read_plane(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the plane directions ``(zeta, gamma)`` of ``--plane-file``.

    Parameters
    ----------
    path : str
        An ``.npz`` file holding arrays ``zeta`` and ``gamma``.

    Returns
    -------
    tuple of ndarray
        ``(zeta, gamma)``, each flattened to float64 of shape ``(N,)``.

    Raises
    ------
    CLIError
        If the file is missing or not a regular file, or lacks ``zeta`` or ``gamma``.
    FactorFileError
        If the file is not a readable ``.npz`` archive within the size limits.
    """
    import numpy as np

    from ..io import read_npz

    V.input_file(path, "--plane-file")
    data = read_npz(path, keys={"zeta", "gamma"}, what=f"--plane-file {path}")
    if "zeta" not in data or "gamma" not in data:
        raise CLIError(f"--plane-file {path}: needs arrays 'zeta' and 'gamma'")
    return np.asarray(data["zeta"], float).ravel(), np.asarray(data["gamma"], float).ravel()


def run(args: argparse.Namespace) -> int:
    """Run one escape experiment and write its run folder.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status: 0 on success.

    Raises
    ------
    CLIError
        If an option or an input file is invalid (``main`` prints it as one line and
        exits with status 2).
    """
    from ..dynamics import escape_experiment
    from ..io import load_factors
    from ..minima import check_dims, random_minimizer
    from ..presets import get_preset
    from ..regularized import regularized_minimizer
    from ..report import write_run_folder
    from ..staging import check_destination

    _check_options(args)
    check_destination(args.out, overwrite=args.overwrite)
    user_plane = read_plane(args.plane_file) if args.plane_file else None
    plane: str | tuple[np.ndarray, np.ndarray]
    mults = V.positive_floats(args.step_multipliers, "--step-multipliers")
    etas = V.positive_floats(args.etas, "--etas")
    target = None
    title = ""
    if args.preset:
        preset = get_preset(args.preset)
        changes = {
            k: v
            for k, v in (
                ("radius", args.radius),
                ("iterations", args.iterations),
                ("seed", args.seed),
                ("direction", args.direction),
                ("plane", args.plane),
                ("grid", args.grid),
                ("weight_decay", args.weight_decay),
            )
            if v is not None
        }
        if mults is not None:
            changes["step_multipliers"] = mults
        preset = preset.replace(**changes)
        chain = preset.minimum()
        mu = preset.weight_decay
        if mu:
            target = preset.target()
        config = {"source": "preset", "preset": preset.name, **preset.to_dict()}
        title = f"{preset.figure}: {preset.title}"
        radius, iterations, seed = preset.radius, preset.iterations, preset.seed
        direction, plane, grid = preset.direction, preset.plane, preset.grid
        if etas is None:
            mults = preset.step_multipliers
    else:
        seed = 0 if args.seed is None else args.seed
        mu = args.weight_decay or 0.0
        if args.dims:
            dims = check_dims(V.check_dims(args.dims, "--dims"))
            chain = random_minimizer(dims, seed=seed)
            if mu:
                target = chain.product
                chain = regularized_minimizer(target, dims, weight_decay=mu, seed=seed)
            config = {"source": "dims", "dims": list(dims), "seed": seed, "weight_decay": mu}
            title = f"custom: dims {','.join(map(str, dims))}"
        else:
            V.input_file(args.minimum, "--minimum")
            chain, target = load_factors(args.minimum, what=f"--minimum {args.minimum}")
            V.check_dims(",".join(map(str, chain.dims)), f"--minimum {args.minimum}")
            config = {"source": "file", "minimum_input": str(args.minimum), "seed": seed, "weight_decay": mu}
            title = f"minimum from {args.minimum}"
        radius = 1e-10 if args.radius is None else args.radius
        iterations = 5000 if args.iterations is None else args.iterations
        direction = args.direction or "top"
        plane = args.plane or "hessian"
        grid = 201 if args.grid is None else args.grid
        if mults is None and etas is None:
            mults = (0.9, 1.1)
        config.update(radius=radius, iterations=iterations, direction=direction, plane=plane, grid=grid)
    config.update(
        step_multipliers=None if mults is None else list(mults),
        etas=None if etas is None else list(etas),
        escape_threshold=args.escape_threshold,
        track_every=args.track_every,
        track_hessian_every=args.track_hessian_every,
        engine=args.engine,
    )
    if user_plane is not None:
        plane = user_plane
        config["plane"] = f"file:{args.plane_file}"
    V.trace_budget(iterations, len(etas or mults or ()))
    if not args.no_figures:
        V.require("matplotlib", "escape's figures (or pass --no-figures)")
    result = escape_experiment(
        chain,
        target=target,
        step_multipliers=mults,
        etas=etas,
        radius=radius,
        direction=direction,
        seed=seed,
        iterations=iterations,
        plane=plane,
        escape_threshold=args.escape_threshold,
        track_every=args.track_every,
        track_hessian_every=args.track_hessian_every,
        engine=V.engine(args.engine, "--engine"),
        weight_decay=mu,
    )
    summary = write_run_folder(
        result,
        args.out,
        config=config,
        title=title,
        grid=grid,
        figures=not args.no_figures,
        overwrite=args.overwrite,
    )
    print(format_summary(summary))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def format_summary(summary: dict) -> str:
    """Format the per-run table printed after ``escape``.

    Parameters
    ----------
    summary : dict
        As :func:`dmfsharp.report.summary_dict` returns it.

    Returns
    -------
    str
        The table, one line per run under a header.
    """
    lines = [
        f"dims {','.join(map(str, summary['dims']))}  N = {summary['num_params']}  "
        f"lambda_max = {summary['lambda_max']:.10g}  2/lambda_max = {summary['threshold_eta']:.6g}",
        f"{'eta*lam/2':>10} {'status':>10} {'stop':>15} {'escape':>7} {'predicted':>9} "
        f"{'final lam*eta/2':>15} {'stable':>6}",
    ]
    for r in summary["runs"]:
        lam = r["final_lambda_max"]
        esc = "-" if r["escape_iteration"] is None else str(r["escape_iteration"])
        pred = r["predicted_escape_iteration"]
        pred = "-" if pred is None else format(pred, ".1f")
        lam_s = "-" if lam is None else format(lam * r["eta"] / 2, ".6f")
        stable = {None: "-", True: "yes", False: "no"}[r["final_is_stable"]]
        lines.append(
            f"{r['step_multiplier']:>10.4g} {r['status']:>10} {r['stop_reason']:>15} "
            f"{esc:>7} {pred:>9} {lam_s:>15} {stable:>6}"
        )
    return "\n".join(lines)
