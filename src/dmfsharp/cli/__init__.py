"""The ``dmfsharp`` command line.

Each subcommand lives in its own module of this package, which defines
``register(subparsers)`` adding its parser and setting ``func`` to a function of the
parsed arguments that returns an exit code. Errors a user can cause raise
:class:`CLIError` (or a ``ValueError``/``OSError``); :func:`main` prints them as one
line on stderr and exits with status 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__

__all__ = ["main", "CLIError"]

# Subcommand modules, in the order ``dmfsharp --help`` lists them.
_COMMANDS = ["inspect", "manifold", "presets", "escape", "reproduce", "sweep", "train"]


class CLIError(Exception):
    """An error to report as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="dmfsharp",
        description="Exact sharpness of minima in deep matrix factorization.",
    )
    parser.add_argument("--version", action="version", version=f"dmfsharp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("dmfsharp: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"dmfsharp {args.command}: error: {msg}", file=sys.stderr)
        return 2
