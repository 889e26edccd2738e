"""``dmfsharp inspect FILE``: sharpness, trace, flatness and stability of saved factors on their loss.

The loss is the one the network was trained with: ``--target M.npy`` (eq. 15), or the
samples ``--data X.npy`` with their outputs ``--targets Y.npy`` (samples as columns, or
rows with ``--samples-as-rows``, PyTorch's ``(n, d)`` batches), or ``--covariance S.npy``;
``--normalization`` picks the scale ``c`` (``torch-mean`` is
``torch.nn.MSELoss(reduction="mean")``). Every number comes from
:func:`dmfsharp.diagnose`.
"""

from __future__ import annotations

import json
from typing import Any

from ..diagnostics import diagnose
from ..errors import FactorError
from ..io import load_factors, to_jsonable
from ..objective import NORMALIZATIONS, check_covariance, check_samples, check_target
from . import validate as V
from .validate import CLIError


def register(sub) -> None:
    """Add the ``inspect`` subcommand."""
    p = sub.add_parser(
        "inspect",
        help="exact sharpness, trace and flatness of the factors in an .npz or .pt file, on their loss",
        description=(
            "Read W1 ... WL (and optionally M) from an .npz file, or a PyTorch state_dict of "
            "bias-free nn.Linear weights from a .pt file (torch.load with weights_only=True, "
            "first layer = W1), and report the Hessian of the loss they were trained on: "
            "--target M.npy, or --data X.npy with --targets Y.npy, or --covariance S.npy. At a "
            "global minimum the closed forms; elsewhere the exact trace, Gauss-Newton "
            "lambda_max and layer sharpness, and the Hessian's lambda_max and lambda_min by "
            "certified Lanczos with their residuals. The normal-equation residual (distance "
            "to a minimum) is printed either way."
        ),
    )
    p.add_argument(
        "file",
        help=".npz file with arrays W1 ... WL (W1 first) and optionally M, "
        "or a .pt state_dict of a bias-free linear network",
    )
    p.add_argument("--target", metavar="M.npy", help="target M (d_L x d_0) of ||M - P||_F^2 (eq. 15)")
    p.add_argument("--data", metavar="X.npy", help="samples X, one per column (d_0 x n)")
    p.add_argument("--targets", metavar="Y.npy", help="outputs Y of the samples (d_L x n); needs --data")
    p.add_argument(
        "--samples-as-rows",
        action="store_true",
        help="--data is (n, d_0) and --targets (n, d_L), PyTorch's batch layout",
    )
    p.add_argument("--covariance", metavar="S.npy", help="input second moment Sigma_x = E[x x^T] (d_0 x d_0)")
    p.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default=None,
        help="loss scale c: sum (1), mean (1/n), half_mean (1/(2n)), torch-mean "
        "(1/(n d_L), = torch.nn.MSELoss(reduction='mean')); with --covariance 1, 1/2, 1/d_L",
    )
    p.add_argument("--spectrum", type=int, metavar="K", help="also the top K Hessian eigenvalues")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--eta", type=float, default=None, help="also classify this GD step size")
    p.set_defaults(func=run)


def _load_chain(path: str):
    """``(chain, M or None)`` from an ``.npz`` factors file or a ``.pt`` state_dict."""
    if not str(path).lower().endswith((".pt", ".pth")):
        return load_factors(path)
    V.require("torch", "reading a .pt file")
    from ..torch_interop import load_torch_factors

    try:
        return load_torch_factors(path), None
    except (ValueError, OSError):
        raise
    except Exception as exc:  # torch's unpickler and dtype errors have no common base
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"{path}: not a readable PyTorch state_dict of float weights ({first})") from None


def _checked(fn, option: str, *args):
    """Run a library check, naming the command-line option in its message."""
    try:
        return fn(*args)
    except FactorError as exc:
        raise CLIError(f"{option}: {exc}") from None


def objective_inputs(args, chain, file_target) -> dict[str, Any]:
    """The keywords of :func:`diagnose` from the options (validated, shapes as given)."""
    V.objective_options(
        target=args.target,
        data=args.data,
        targets=args.targets,
        covariance=args.covariance,
        samples_as_rows=args.samples_as_rows,
        normalization=args.normalization,
    )
    d0, dl = chain.dims[0], chain.dims[-1]
    if file_target is not None and (args.target is not None or args.data is not None):
        which = "--target" if args.target is not None else "--data"
        raise CLIError(f"{which}: {args.file} already holds a target M; pass the loss one way only")
    kw: dict[str, Any] = {"target": file_target, "normalization": args.normalization}
    rows = args.samples_as_rows
    if args.data is not None:
        a = V.npy_array(args.data, "--data")
        x = V.sample_matrix(a, f"--data {args.data}", dim=d0, dim_name="d_0, the input dimension", rows=rows)
        kw["data"] = _checked(check_samples, f"--data {args.data}", chain, x)
        kw["target"] = None
        if args.targets is not None:
            b = V.npy_array(args.targets, "--targets")
            kw["target"] = V.sample_matrix(
                b,
                f"--targets {args.targets}",
                dim=dl,
                dim_name="d_L, the output dimension",
                rows=rows,
                n=x.shape[1],
            )
    if args.covariance is not None:
        s = V.npy_array(args.covariance, "--covariance")
        kw["covariance"] = _checked(check_covariance, f"--covariance {args.covariance}", chain, s)
    if args.target is not None:
        m = V.npy_array(args.target, "--target")
        kw["target"] = _checked(check_target, f"--target {args.target}", chain, m)
    return kw


def run(args) -> int:
    """Run ``dmfsharp inspect``."""
    V.input_file(args.file, "")
    V.positive_float(args.eta, "--eta")
    V.count(args.spectrum, "--spectrum")
    chain, file_target = _load_chain(args.file)
    kw = objective_inputs(args, chain, file_target)
    info = diagnose(chain, eta=args.eta, spectrum=args.spectrum, **kw).to_dict()
    info["inputs"] = {
        "file": str(args.file),
        "target": args.target
        if args.target is not None
        else ("M in file" if file_target is not None else None),
        "data": args.data,
        "targets": args.targets,
        "covariance": args.covariance,
        "samples_as_rows": bool(args.samples_as_rows),
    }
    if args.json:
        print(json.dumps(to_jsonable(info), indent=2))
        return 0
    print(_table(args.file, info))
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.12g}"
    if isinstance(v, list):
        return " x ".join(str(x) for x in v) if all(isinstance(x, int) for x in v) else str(v)
    return str(v)


def _residual_label(info) -> str:
    if info["source"] == "samples":
        return "normal-eq. residual ||(Y - PX)X^T||_F"
    if info["source"] == "covariance":
        return "normal-eq. residual ||(T - P)Sigma_x||_F"
    return "residual ||M - P||_F"


def _loss_label(info) -> str:
    if info["source"] == "identity":
        return "||M - P||_F^2 (eq. 15)" if info["target_given"] else "none (M := product, eq. 15)"
    n = "" if info["num_samples"] is None else f", n = {info['num_samples']}"
    data = "samples" if info["source"] == "samples" else "covariance"
    return f"{data}, normalization {info['normalization']} (c = {info['scale']:.6g}{n})"


def _table(path, info) -> str:
    exact = info["method"] == "exact"
    how = " (exact)" if exact else " (Lanczos)"
    rows = [
        ("file", str(path)),
        ("dims (d_0 ... d_L)", _fmt(info["dims"])),
        ("depth L", _fmt(info["depth"])),
        ("parameters N", _fmt(info["num_params"])),
        ("loss", _loss_label(info)),
        ("loss value", _fmt(info["loss"])),
        ("global minimum", _fmt(info["is_minimum"]) + ("" if info["target_given"] else " (M := product)")),
        (
            _residual_label(info),
            f"{info['residual_norm']:.3e} (rounding level {info['residual_tolerance']:.1e})",
        ),
        ("||dL/dP||_F = 2c ||residual||_F", f"{info['product_gradient_norm']:.3e}"),
        ("lambda_max" + how, _fmt(info["lambda_max"])),
        ("lambda_min" + how, _fmt(info["lambda_min"])),
    ]
    if not exact:
        for which, bound in (("max", "a lower bound"), ("min", "an upper bound")):
            note = "" if info[f"lambda_{which}_converged"] else f" (not converged: {bound})"
            rows.append((f"  residual of lambda_{which}", f"{info[f'lambda_{which}_residual']:.2e}{note}"))
    rows += [
        ("Gauss-Newton lambda_max (exact)", _fmt(info["gauss_newton_lambda_max"])),
        ("Hessian trace (exact)", _fmt(info["trace"])),
        (
            "layer sharpness (sum = bound)" if exact else "layer sharpness (exact)",
            ", ".join(f"{v:.6g}" for v in info["layer_sharpness"]),
        ),
        ("flat value 2L s_max(M)^(2-2/L)", _fmt(info["flat_lambda_max"])),
        ("flatness ratio", _fmt(info["flatness_ratio"])),
        ("max stable GD step 2/lambda_max", _fmt(info["max_stable_step"])),
    ]
    if exact:
        rows += [
            ("Corollary 10 upper bound", _fmt(info["upper_bound"])),
            ("nonzero Hessian eigenvalues", _fmt(info["hessian_rank"])),
            ("flat", _fmt(info["is_flat"])),
            ("spectral-norm imbalance", _fmt(info["spectral_imbalance"])),
            ("Frobenius imbalance", _fmt(info["frobenius_imbalance"])),
        ]
    if info["spectrum"] is not None:
        label = f"top {len(info['spectrum'])} Hessian eigenvalues" + how
        rows.append((label, ", ".join(f"{v:.12g}" for v in info["spectrum"])))
    if info["eta"] is not None:
        rows.append((f"step eta = {info['eta']:g}", "stable" if info["eta_is_stable"] else "unstable"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
