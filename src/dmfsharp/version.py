"""The version of an uninstalled source tree, read from its ``pyproject.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path


def source_version() -> str:
    """Return ``project.version`` of the ``pyproject.toml`` two folders above, plus ``+src``.

    Used only when dmfsharp runs from a checkout without being installed (``PYTHONPATH=src``),
    so that results files still record which version made them; ``"0+unknown"`` when there
    is no readable ``pyproject.toml``.
    """
    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        return str(tomllib.loads(path.read_text())["project"]["version"]) + "+src"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"
