"""``dmfsharp inspect FILE``: sharpness, flatness and stability of a saved factorization."""

from __future__ import annotations

import json

from ..diagnostics import diagnose
from ..io import load_factors, to_jsonable
from . import validate as V
from .validate import CLIError


def register(sub) -> None:
    """Add the ``inspect`` subcommand."""
    p = sub.add_parser(
        "inspect",
        help="exact sharpness and flatness of the factors in an .npz or .pt file",
        description=(
            "Read W1 ... WL (and optionally M) from an .npz file and report the exact "
            "sharpness, Hessian trace, flatness and the largest stable GD step. At a point "
            "that is not a global minimum of M the sharpness comes from Lanczos instead. "
            "A .pt/.pth file is read as a PyTorch state_dict of bias-free nn.Linear "
            "weights (torch.load with weights_only=True), first layer = W1."
        ),
    )
    p.add_argument(
        "file",
        help=".npz file with arrays W1 ... WL (W1 first) and optionally M, "
        "or a .pt state_dict of a bias-free linear network",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--eta", type=float, default=None, help="also classify this GD step size")
    p.set_defaults(func=run)


def inspect_factors(chain, target) -> dict:
    """The inspection record for a chain and optional target (what ``--json`` prints)."""
    return diagnose(chain, target).to_dict()


def run(args) -> int:
    """Run ``dmfsharp inspect``."""
    V.input_file(args.file, "")
    V.positive_float(args.eta, "--eta")
    if str(args.file).lower().endswith((".pt", ".pth")):
        V.require("torch", "reading a .pt file")
        from ..torch_interop import load_torch_factors

        try:
            chain, target = load_torch_factors(args.file), None
        except (ValueError, OSError):
            raise
        except Exception as exc:  # torch's unpickler and dtype errors have no common base
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CLIError(
                f"{args.file}: not a readable PyTorch state_dict of float weights ({first})"
            ) from None
    else:
        chain, target = load_factors(args.file)
    info = diagnose(chain, target, eta=args.eta).to_dict()
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


def _table(path, info) -> str:
    rows = [
        ("file", str(path)),
        ("dims (d_0 ... d_L)", _fmt(info["dims"])),
        ("depth L", _fmt(info["depth"])),
        ("parameters N", _fmt(info["num_params"])),
        ("global minimum", _fmt(info["is_minimum"]) + ("" if info["target_given"] else " (M := product)")),
    ]
    if not info["is_minimum"]:
        rows.append(("residual ||M - P||_F", f"{info['residual_norm']:.3e}"))
    rows += [
        (
            "lambda_max" + (" (exact)" if info["method"] == "exact" else " (Lanczos)"),
            _fmt(info["lambda_max"]),
        ),
        ("flat value 2L s_max(M)^(2-2/L)", _fmt(info["flat_lambda_max"])),
        ("flatness ratio", _fmt(info["flatness_ratio"])),
        ("max stable GD step 2/lambda_max", _fmt(info["max_stable_step"])),
    ]
    if info["method"] == "exact":
        rows += [
            ("Hessian trace", _fmt(info["trace"])),
            ("Corollary 10 upper bound", _fmt(info["upper_bound"])),
            ("layer sharpness (sum = bound)", ", ".join(f"{v:.6g}" for v in info["layer_sharpness"])),
            ("nonzero Hessian eigenvalues", _fmt(info["hessian_rank"])),
            ("flat", _fmt(info["is_flat"])),
            ("spectral-norm imbalance", _fmt(info["spectral_imbalance"])),
            ("Frobenius imbalance", _fmt(info["frobenius_imbalance"])),
        ]
    if "eta" in info:
        rows.append((f"step eta = {info['eta']:g}", "stable" if info["eta_is_stable"] else "unstable"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
