"""``dmfsharp reproduce --out DIR``: every preset (Figures 1-7) and an ``index.html``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from . import validate as V
from .validate import CLIError

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``reproduce`` subcommand to ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``dmfsharp`` parser.
    """
    p = sub.add_parser(
        "reproduce",
        help="run every preset (Figures 1-7) and write run folders and an index.html",
        description=(
            "Run the escape experiment of every preset (or those named by --presets) into "
            "DIR/<preset>/ and write DIR/index.html showing each figure with its summary "
            "table. Seeded: the same command gives the same numbers."
        ),
    )
    p.add_argument("--out", required=True, help="output folder to create")
    p.add_argument("--presets", help="comma-separated preset names (default: the paper's Figures 1-7)")
    p.add_argument("--iterations", type=int, help="override every preset's GD budget")
    p.add_argument("--grid", type=int, help="override the contour-map resolution")
    p.add_argument(
        "--track-every",
        type=int,
        metavar="K",
        default=10,
        help="record exact lambda_max(2 K^T K) every K steps for sharpness.png (default 10; 0 turns it off)",
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
        default="numpy",
        help="GD engine (default numpy, so the figures' numbers do not depend on "
        "whether the optional numba is installed: after an escape the engines "
        "differ at rounding level and the catapult amplifies it; GD is a small "
        "part of this command's time, the figures most of it)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every selected preset into DIR and write DIR/index.html.

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
    from ..presets import PRESETS, get_preset
    from ..progress import Progress
    from ..report import fill_run_folder, write_index
    from ..staging import check_destination, staged_folder

    # by default the paper's figures (wd-escape, weight decay, is not one of them)
    paper = [n for n, p in PRESETS.items() if not p.weight_decay]
    names = paper if not args.presets else [s.strip() for s in args.presets.split(",")]
    try:
        presets = [get_preset(n) for n in names if n]
    except ValueError as exc:
        raise CLIError(f"--presets: {exc}") from None
    if not presets:
        raise CLIError("--presets names no preset")
    V.count(args.iterations, "--iterations", maximum=V.MAX_ITERATIONS)
    V.count(args.grid, "--grid", minimum=2, maximum=V.MAX_GRID)
    V.count(args.track_every, "--track-every", minimum=0, maximum=V.MAX_ITERATIONS)
    if args.track_every == 0:
        args.track_every = None
    V.count(args.track_hessian_every, "--track-hessian-every", maximum=V.MAX_ITERATIONS)
    check_destination(args.out, overwrite=args.overwrite)
    V.require("matplotlib", "reproduce's figures")
    V.require("jinja2", "reproduce's index.html")
    engine = V.engine(args.engine, "--engine")
    t0 = time.perf_counter()
    entries = []
    bar = Progress(len(presets) + 1, "reproduce", stream=None if args.quiet else sys.stderr, unit="step")
    with staged_folder(args.out, overwrite=args.overwrite) as tmp, bar:
        for preset in presets:
            bar.update(0, label=f"reproduce {preset.name}")
            changes = {}
            if args.iterations is not None:
                changes["iterations"] = args.iterations
            if args.grid is not None:
                changes["grid"] = args.grid
            preset = preset.replace(**changes)
            result = preset.run(
                track_every=args.track_every, track_hessian_every=args.track_hessian_every, engine=engine
            )
            folder = tmp / preset.name
            folder.mkdir()
            config = {
                "source": "preset",
                "preset": preset.name,
                **preset.to_dict(),
                "track_every": args.track_every,
                "track_hessian_every": args.track_hessian_every,
                "engine": args.engine,
            }
            title = f"{preset.figure}: {preset.title}"
            summary = fill_run_folder(result, folder, config=config, title=title, grid=preset.grid)
            entries.append({"folder": preset.name, "heading": title, "note": preset.note, "summary": summary})
            bar.update(1)
        write_index(
            tmp / "index.html",
            entries,
            title="dmfsharp: escape from sharp minima (Figures 1-7)",
            intro=(
                "Gradient descent started at distance r from a global minimum w* along the top "
                "Hessian eigenvector v_1, one colour per step size eta (in units of "
                "2/lambda_max, lambda_max exact by Theorem 5). A run 'escaped' when "
                "||w_k - w*|| exceeded tau ||w*|| and it did not come back; 'returned' when it "
                "ended no farther from w* than it started. 'predicted' is the linear-theory "
                "escape iteration log(tau ||w*|| / r) / log|1 - eta lambda_max|."
            ),
        )
        bar.update(1, label="reproduce index.html")
    print(f"wrote {args.out}/index.html ({len(presets)} experiments, {time.perf_counter() - t0:.1f}s)")
    return 0
