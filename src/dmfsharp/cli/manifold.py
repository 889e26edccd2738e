"""``dmfsharp manifold``: sharpness, trace and imbalance along a path of minimizers of one M."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

import numpy as np

from . import validate as V
from .validate import CLIError

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``manifold`` subcommand to the parser's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``dmfsharp`` parser.
    """
    p = sub.add_parser(
        "manifold",
        help="walk minimizers of one M from balanced through flat to sharp (Section 6)",
        description=(
            "Walk the path W_k -> G(s) W_k, W_{k+1} -> W_{k+1} G(s)^-1 with "
            "G(s) = I + (s-1) e_j e_j^T from the flattest (Frobenius-balanced) minimizer of M "
            "and write manifold.csv (exact lambda_max, trace, Corollary 10 bound, spectral and "
            "Frobenius imbalance per point), manifold.png and config.json into OUT. Default: "
            "the Section 6 example M = diag(11, 2, 1), whose point s = 3/sqrt(2) has "
            "lambda_max = 44."
        ),
    )
    p.add_argument(
        "--out", required=True, help="output folder (created; must be new or empty unless --overwrite)"
    )
    p.add_argument(
        "--target", default=None, help="M as a 2-D .npy file or an .npz holding M (default: diag(11, 2, 1))"
    )
    p.add_argument("--dims", default=None, help="comma-separated d_0,...,d_L (default d_0,max(d_0,d_L),d_L)")
    p.add_argument("--layer", type=int, default=1, help="k: rescale between W_k and W_{k+1}")
    p.add_argument("--direction", type=int, default=2, help="j: singular direction rescaled (>= 2)")
    p.add_argument("--s-min", type=float, default=1.0, help="first path parameter (1 = balanced)")
    p.add_argument(
        "--s-max",
        type=float,
        default=None,
        help="last path parameter (default: square of the flat stretch's end)",
    )
    p.add_argument("--num", type=int, default=121, help="number of log-spaced points")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--overwrite", "--force", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run)


def read_target(path: str) -> np.ndarray:
    """Read ``M`` from ``--target``: a 2-D ``.npy`` file or an ``.npz`` holding ``M``.

    Parameters
    ----------
    path : str
        The file given as ``--target``.

    Returns
    -------
    ndarray of float64, shape (d_L, d_0)
        The target.

    Raises
    ------
    CLIError
        If the file is missing, unreadable, too large, or does not hold a 2-D ``M``.
    """
    from numpy.lib import format as npformat

    from ..io import read_npz
    from ..limits import check_allocation

    file = V.input_file(path, "--target")
    with open(file, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            fh.seek(0)
            try:
                version = npformat.read_magic(fh)
                reader = (
                    npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                )
                shape, _fortran, dtype = reader(fh)
                if dtype.hasobject or dtype.kind not in "biuf":
                    raise CLIError(f"--target {path}: dtype {dtype}, expected real numbers")
                check_allocation(shape, what=f"--target {path}", itemsize=dtype.itemsize)
                fh.seek(0)
                return npformat.read_array(fh, allow_pickle=False)
            except (ValueError, EOFError, OSError) as exc:
                raise CLIError(f"--target {path}: not a readable .npy file ({exc})") from None
    arrays = read_npz(file, keys={"M"}, what=f"--target {path}")
    if "M" not in arrays:
        raise CLIError(f"--target {path}: the .npz holds no array named M")
    return arrays["M"]


def run(args: argparse.Namespace) -> int:
    """Walk the path, write ``manifold.csv``, ``config.json`` and ``manifold.png``.

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
    from ..io import write_json
    from ..manifold import CSV_COLUMNS, minima_path
    from ..plots import plot_minima_path
    from ..staging import check_destination, staged_folder

    out = check_destination(args.out, overwrite=args.overwrite)
    V.count(args.num, "--num", minimum=2, maximum=V.MAX_POINTS)
    V.count(args.layer, "--layer", maximum=V.MAX_DEPTH)
    V.count(args.direction, "--direction", minimum=2, maximum=V.MAX_DIM)
    V.positive_float(args.s_min, "--s-min")
    V.positive_float(args.s_max, "--s-max")
    target = None if args.target is None else read_target(args.target)
    dims = None if args.dims is None else V.check_dims(args.dims, "--dims")
    if not args.no_plot:
        V.require("matplotlib", "manifold's figure (or pass --no-plot)")
    path = minima_path(
        target,
        dims,
        layer=args.layer,
        direction=args.direction,
        s_min=args.s_min,
        s_max=args.s_max,
        num=args.num,
    )
    rows = path.to_rows()
    with staged_folder(out, overwrite=args.overwrite) as tmp:
        with open(tmp / "manifold.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        config = {
            "command": "manifold",
            "target": path.target,
            "target_source": args.target or "section6 default diag(11, 2, 1)",
            "dims": list(path.start.dims),
            "layer": path.layer,
            "direction": path.direction,
            "s_min": float(path.scales[0]),
            "s_max": float(path.scales[-1]),
            "num_points": len(rows),
            "seed": None,
            "flat_lambda_max": path.flat_lambda_max,
            "flat_stretch": list(path.flat_stretch),
            "marks": path.marks,
        }
        if "section6" in path.marks:
            i = int(np.argmin(abs(path.scales - path.marks["section6"])))
            config["section6_lambda_max"] = float(path.lambda_max[i])
            config["section6_trace"] = float(path.trace[i])
        write_json(tmp / "config.json", config)
        if not args.no_plot:
            plot_minima_path(path, tmp / "manifold.png")
    lo, hi = path.flat_stretch
    fig = "" if args.no_plot else f" and {out}/manifold.png"
    print(f"wrote {out}/manifold.csv ({len(rows)} points){fig}")
    print(f"flat value {path.flat_lambda_max:.12g}; flat stretch s in [{lo:.6g}, {hi:.6g}]")
    if "section6" in path.marks:
        print(
            f"Section 6 point s = {path.marks['section6']:.6g}: lambda_max = "
            f"{config['section6_lambda_max']:.12g}, trace = {config['section6_trace']:.12g}"
        )
    return 0
