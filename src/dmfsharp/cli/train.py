"""``dmfsharp train``: full-batch GD from an initialization, exact sharpness at every step."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..objective import NORMALIZATIONS
from . import CLIError
from . import validate as V

if TYPE_CHECKING:
    import argparse

    import numpy as np


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` subcommand to ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``dmfsharp`` parser.
    """
    p = sub.add_parser(
        "train",
        help="train a deep matrix factorization from an initialization; track exact sharpness",
        description=(
            "Full-batch GD from a Gaussian, orthogonal, identity or saved initialization with "
            "several step sizes at once; records loss, the exact Gauss-Newton lambda_max at every "
            "step, top singular values of the product and balancedness; reports eta/eta_crit "
            "(eta_crit = 2/lambda_flat(M)) and detected regimes. Writes summary.json, "
            "trace_run<i>.csv, final_run<i>.npz, target.npy, start.npz, training.png and index.html."
        ),
    )
    p.add_argument("--out", required=True, help="results folder to create")
    p.add_argument(
        "--preset", help="a training preset (train-sharpening, train-catapult, train-above-critical)"
    )
    p.add_argument("--dims", help="comma-separated d_0,...,d_L")
    p.add_argument(
        "--init",
        choices=("gaussian", "orthogonal", "identity", "file"),
        help="initialization (default gaussian; 'file' needs --init-file)",
    )
    p.add_argument("--init-scale", type=float, help="alpha of the initialization (default 0.1)")
    p.add_argument("--init-file", metavar="FILE", help=".npz with W1 ... WL (or a PyTorch .pt state_dict)")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument("--eta-ratios", help="comma-separated step sizes in units of eta_crit")
    steps.add_argument("--etas", help="comma-separated absolute step sizes")
    p.add_argument(
        "--target", metavar="FILE", help="M as .npy, or .npz with array 'M' (default: seeded Gaussian)"
    )
    p.add_argument("--data", metavar="FILE", help=".npz with arrays 'X' (d_0 x n) and 'Y' (d_L x n)")
    p.add_argument(
        "--normalization", choices=NORMALIZATIONS, help="data loss scale c (torch-mean: MSELoss mean)"
    )
    p.add_argument("--iterations", type=int, help="GD steps per run (default 10000)")
    p.add_argument("--seed", type=int, help="seed of the target and the initialization (default 0)")
    p.add_argument(
        "--converge-tol", type=float, default=1e-10, help="relative loss tolerance (default 1e-10)"
    )
    p.add_argument(
        "--track-every", type=int, default=1, help="Gauss-Newton lambda_max every so many steps (default 1)"
    )
    p.add_argument(
        "--sample-every",
        type=int,
        metavar="K",
        help="singular values of P and balancedness every K steps (and at each of the first 90 "
        "tracked steps), a multiple of --track-every (default 15 x --track-every: odd, so a "
        "period-2 oscillation is not aliased)",
    )
    p.add_argument(
        "--track-hessian-every", type=int, metavar="K", help="full-Hessian lambda_max every K steps (Lanczos)"
    )
    p.add_argument("--engine", choices=("auto", "numpy", "numba"), default="auto", help="GD engine")
    p.add_argument(
        "--weight-decay",
        type=float,
        metavar="MU",
        help="train on L + mu sum ||W_k||^2 (eta_crit = 2/lambda_max of its global minimizers; default 0)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip training.png/.pdf")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run)


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise CLIError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not vals or not all(math.isfinite(v) and v > 0 for v in vals):
        raise CLIError(f"{name} must be positive finite numbers, got {text!r}")
    return vals


def _load_array(path: str, key: str, what: str) -> np.ndarray:
    import numpy as np

    try:
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.ndarray):
            return obj
        with obj:
            if key not in obj.files:
                raise CLIError(f"{path}: {what} needs an array named {key!r}")
            return obj[key]
    except (OSError, ValueError, EOFError) as exc:
        raise CLIError(f"{path}: not a readable .npy/.npz file ({exc})") from None


def _load_arrays(path: str, keys: tuple[str, ...], what: str) -> tuple[np.ndarray, ...]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as obj:
            missing = [k for k in keys if k not in getattr(obj, "files", ())]
            if missing:
                raise CLIError(f"{path}: {what} needs arrays {', '.join(keys)}; missing {', '.join(missing)}")
            return tuple(obj[k] for k in keys)
    except (OSError, ValueError, EOFError) as exc:
        raise CLIError(f"{path}: not a readable .npz file ({exc})") from None


def run(args: argparse.Namespace) -> int:
    """Run one training call and write its results folder.

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
    from ..dynamics.train import SAMPLE_STRIDE, train
    from ..presets import get_train_preset
    from ..train_report import write_train_folder

    V.count(args.iterations, "--iterations", maximum=V.MAX_ITERATIONS)
    V.count(args.seed, "--seed", minimum=0, maximum=2**63 - 1)
    V.count(args.track_every, "--track-every", maximum=V.MAX_ITERATIONS)
    V.count(args.track_hessian_every, "--track-hessian-every", maximum=V.MAX_ITERATIONS)
    V.count(args.sample_every, "--sample-every", maximum=V.MAX_ITERATIONS)
    if args.sample_every is not None and args.sample_every % args.track_every:
        raise CLIError(
            f"--sample-every must be a multiple of --track-every ({args.track_every}), "
            f"got {args.sample_every}"
        )
    V.positive_float(args.init_scale, "--init-scale")
    V.positive_float(args.converge_tol, "--converge-tol")
    V.nonnegative_float(args.weight_decay, "--weight-decay")
    kw: dict = {}
    title = "dmfsharp train"
    if args.preset:
        preset = get_train_preset(args.preset)
        kw = dict(
            init=preset.init,
            init_scale=preset.init_scale,
            eta_ratios=preset.eta_ratios,
            iterations=preset.iterations,
            seed=preset.seed,
            target=preset.target(),
            track_hessian_every=preset.track_hessian_every,
        )
        dims = preset.dims
        title = f"{preset.name}: {preset.title}"
    elif args.dims:
        dims = V.check_dims(args.dims, "--dims")
    elif args.init != "file":
        raise CLIError("give --dims (or --preset, or --init file --init-file FILE)")
    else:
        dims = None
    if args.init == "file":
        if not args.init_file:
            raise CLIError("--init file needs --init-file FILE")
        kw["init"] = str(Path(args.init_file))
    elif args.init_file:
        raise CLIError("--init-file needs --init file")
    elif args.init:
        kw["init"] = args.init
    for key, val in (("init_scale", args.init_scale), ("iterations", args.iterations), ("seed", args.seed)):
        if val is not None:
            kw[key] = val
    if args.eta_ratios:
        kw.pop("eta_ratios", None)
        kw["eta_ratios"] = _floats(args.eta_ratios, "--eta-ratios")
    elif args.etas:
        kw.pop("eta_ratios", None)
        kw["etas"] = _floats(args.etas, "--etas")
    elif "eta_ratios" not in kw:
        kw["eta_ratios"] = (0.5, 0.9, 1.1)
    if args.data:
        if args.target:
            raise CLIError("--data holds Y already; drop --target")
        kw["data"], kw["target"] = _load_arrays(args.data, ("X", "Y"), "--data")
    elif args.target:
        kw["target"] = _load_array(args.target, "M", "--target")
    if args.normalization:
        kw["normalization"] = args.normalization
    if args.track_hessian_every is not None:
        kw["track_hessian_every"] = args.track_hessian_every
    if args.sample_every is not None:
        kw["sample_every"] = args.sample_every
    if args.weight_decay is not None:
        kw["weight_decay"] = args.weight_decay
    runs = len(kw.get("eta_ratios") or kw.get("etas") or ())
    V.trace_budget(int(kw.get("iterations", 10000)), runs)
    engine = V.engine(args.engine, "--engine")
    result = train(
        dims,
        converge_tol=args.converge_tol,
        track_every=args.track_every,
        engine=engine,
        **kw,
    )
    config = {
        k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in kw.items() if k not in ("target", "data")
    }
    config.update(
        preset=args.preset,
        dims=list(result.dims),
        target_input=args.target,
        data_input=args.data,
        converge_tol=args.converge_tol,
        track_every=args.track_every,
        sample_every=kw.get("sample_every", SAMPLE_STRIDE * args.track_every),
        engine=args.engine,
    )
    summary = write_train_folder(
        result, args.out, config=config, title=title, figures=not args.no_figures, overwrite=args.overwrite
    )
    print(format_summary(summary))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def format_summary(summary: dict) -> str:
    """Format the per-run table printed after ``train``.

    Parameters
    ----------
    summary : dict
        The summary written to the results folder's ``summary.json``.

    Returns
    -------
    str
        The table, one line per run under a header.
    """
    crit = summary["eta_crit"]
    lines = [
        f"dims {','.join(map(str, summary['dims']))}  lambda_flat = {summary['flat_lambda_max']}  "
        f"eta_crit = {crit}",
        f"{'eta':>10} {'eta/crit':>8} {'status':>9} {'iters':>7} {'final loss':>11} {'lam*eta/2':>9}  "
        "regimes",
    ]
    for r in summary["runs"]:
        ratio = "-" if r["eta_ratio"] is None else format(r["eta_ratio"], ".3g")
        lh = "-" if r["lambda_eta_half"] is None else format(r["lambda_eta_half"], ".4f")
        lines.append(
            f"{r['eta']:>10.4g} {ratio:>8} {r['status']:>9} {r['iterations']:>7} {r['final_loss']:>11.3e} "
            f"{lh:>9}  {', '.join(r['regimes_detected']) or '-'}"
        )
    return "\n".join(lines)
