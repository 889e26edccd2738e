"""The ``dmfsharp`` command line.

Each subcommand lives in its own module of this package, which defines
``register(subparsers)`` adding its parser and setting ``func`` to a function of the
parsed arguments that returns an exit code. Option values are checked by the helpers of
:mod:`dmfsharp.cli.validate`. :func:`main` is the one place where exceptions become
messages: every error a user can cause is printed as one line on stderr and the exit
status is 2, never with a traceback (set ``DMFSHARP_TRACEBACK=1`` to see one). SIGTERM
and SIGINT unwind like an error, so staging folders are removed (exit 143 and 130).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from .. import __version__
from .validate import EXTRAS, CLIError

__all__ = ["main", "CLIError"]

# Subcommand modules, in the order ``dmfsharp --help`` lists them.
_COMMANDS = ["inspect", "manifold", "presets", "escape", "reproduce", "sweep", "train"]
# A staging folder ``.<out>.<rand>.tmp`` in a message is shown as the output it stands for.
_STAGING = re.compile(r"\.([^/\s'\"]+)\.[A-Za-z0-9_]{8}\.(?:tmp|old)")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage follows ``--help``)."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the command and exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that ``finally`` blocks clean up."""


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Terminated


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    import importlib

    parser = _Parser(
        prog="dmfsharp",
        description="Exact sharpness of minima in deep matrix factorization.",
    )
    parser.add_argument("--version", action="version", version=f"dmfsharp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def _message(exc: BaseException) -> str:
    """One line for ``exc``: its first line, staging paths shown as the output path."""
    if isinstance(exc, ImportError) and not isinstance(exc, CLIError):
        mod = (getattr(exc, "name", None) or "").split(".")[0]
        if mod in EXTRAS and "pip install" not in str(exc):
            return f"this needs {mod}, which is not installed: pip install 'dmfsharp[{EXTRAS[mod]}]'"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, MemoryError) and not text.strip():
        first = "out of memory"
    return _STAGING.sub(r"\1", first)


def _quiet_stdout() -> None:
    """After a broken pipe: send further output to /dev/null so exit is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a sweep stored failed tasks, 2 for any error (one line on
        stderr), 130 after SIGINT, 143 after SIGTERM, 141 when stdout was closed early.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except _Terminated:
        print(f"dmfsharp {args.command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"dmfsharp {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("DMFSHARP_TRACEBACK"):
            raise
        print(f"dmfsharp {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
