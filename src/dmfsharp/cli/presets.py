"""``dmfsharp presets``: list the paper's escape-experiment presets (Figures 1-7)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..io import to_jsonable
from ..presets import PRESETS

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``presets`` subcommand to ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``dmfsharp`` parser.
    """
    p = sub.add_parser(
        "presets",
        help="list the presets of the paper's escape experiments (Figures 1-7)",
        description="List each preset: name, figure, dims, depth, N, radius, step multipliers.",
    )
    p.add_argument("--json", action="store_true", help="print the presets as a JSON list")
    p.set_defaults(func=run)


def _dims(dims: tuple[int, ...]) -> str:
    s = ",".join(str(d) for d in dims)
    return s if len(s) <= 28 else s[:25] + "..."


def run(args: argparse.Namespace) -> int:
    """Print the presets as a table or JSON.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status: 0.
    """
    if args.json:
        print(json.dumps(to_jsonable([p.to_dict() for p in PRESETS.values()]), indent=2))
        return 0
    head = ("name", "figure", "dims", "L", "N", "radius", "step multipliers (x 2/lambda_max)", "iterations")
    rows = [
        (
            p.name,
            p.figure,
            _dims(p.dims),
            str(p.depth),
            str(p.num_params),
            f"{p.radius:.0e}",
            ", ".join(f"{c:g}" for c in p.step_multipliers),
            str(p.iterations),
        )
        for p in PRESETS.values()
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for r in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
    return 0
