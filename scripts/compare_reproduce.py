"""Compare the numbers of two ``dmfsharp reproduce`` folders, or a folder with the baseline.

Usage::

    python scripts/compare_reproduce.py NEW_DIR [BASELINE_DIR]

Without ``BASELINE_DIR`` the committed baseline ``tests/data/reproduce_baseline/`` (one
``figN.json`` per preset, taken before the one-code-path redesign) is used. Every number and
string of each ``summary.json`` must be identical, except the fields that describe the run
rather than its results: the version, the preset's prose (``config.note``, ``config.title``)
and the list of figure files. Exits 1 and prints the differing paths otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Fields that may differ: they describe the software or the drawing, not the numbers.
IGNORED = {("dmfsharp_version",), ("config", "note"), ("config", "title"), ("files",)}
BASELINE = Path(__file__).resolve().parents[1] / "tests" / "data" / "reproduce_baseline"


def differences(new: object, old: object, path: tuple = ()) -> list[str]:
    """Return the paths at which two JSON documents differ, ignoring :data:`IGNORED`."""
    if path in IGNORED:
        return []
    if isinstance(new, dict) and isinstance(old, dict):
        out = []
        for key in sorted(set(new) | set(old)):
            if (*path, key) in IGNORED:
                continue
            if key not in new or key not in old:
                out.append("/".join(map(str, (*path, key))) + (" (missing)" if key not in new else " (new)"))
            else:
                out += differences(new[key], old[key], (*path, key))
        return out
    if isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            return ["/".join(map(str, path)) + f" (length {len(new)} != {len(old)})"]
        return [d for i, (a, b) in enumerate(zip(new, old)) for d in differences(a, b, (*path, i))]
    return (
        [] if new == old and type(new) is type(old) else ["/".join(map(str, path)) + f": {new!r} != {old!r}"]
    )


def load_baseline(folder: Path) -> dict[str, dict]:
    """Read ``figN.json`` files of the committed baseline or ``figN/summary.json`` of a run."""
    if (folder / "fig1.json").exists():
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.glob("*/summary.json"))}


def compare(new_dir: Path, old_dir: Path = BASELINE) -> list[str]:
    """Return every difference between two reproduce folders (empty when identical)."""
    new, old = load_baseline(new_dir), load_baseline(old_dir)
    if set(new) != set(old):
        return [f"presets differ: {sorted(new)} vs {sorted(old)}"]
    return [f"{name}: {d}" for name in sorted(new) for d in differences(new[name], old[name])]


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    diffs = compare(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else BASELINE)
    for line in diffs:
        print(line)
    print("identical" if not diffs else f"{len(diffs)} differences")
    sys.exit(1 if diffs else 0)
