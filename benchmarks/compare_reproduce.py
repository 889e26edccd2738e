"""Compare two `dmfsharp reproduce` folders' summary.json files field by field.

Usage: python benchmarks/compare_reproduce.py BASELINE_DIR NEW_DIR. Ignores only
``dmfsharp_version`` and any key naming a time (none exist today); exits 1 on a difference.
"""

import json
import sys
from pathlib import Path

IGNORE = {"dmfsharp_version"}  # the only version/timing field present


def walk(a, b, path, diffs):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in IGNORE or any(t in k for t in ("time", "seconds", "elapsed")):
                continue
            if k not in a or k not in b:
                diffs.append(f"{path}.{k}: missing on one side")
            else:
                walk(a[k], b[k], f"{path}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: lengths {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", diffs)
    elif a != b:
        diffs.append(f"{path}: {a!r} != {b!r}")


base, new = Path(sys.argv[1]), Path(sys.argv[2])
total = 0
for f in sorted(base.glob("fig*/summary.json")):
    g = new / f.relative_to(base)
    diffs = []
    walk(json.loads(f.read_text()), json.loads(g.read_text()), f.parent.name, diffs)
    total += len(diffs)
    print(f.parent.name, "identical" if not diffs else f"{len(diffs)} differences", *diffs[:5], sep="\n  ")
print("TOTAL differences:", total)
sys.exit(1 if total else 0)
