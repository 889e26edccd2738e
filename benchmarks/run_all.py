"""Run every benchmark script in turn (each in its own process) and print their tables.

python benchmarks/run_all.py            # all targets, a few minutes each
python benchmarks/run_all.py floor gd   # a selection, by script name without bench_
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["sharpness", "floor", "memory", "scaling", "gd", "landscape", "proto_wide_ends"]


def main():
    names = sys.argv[1:] or SCRIPTS
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {SCRIPTS}")
    failed = []
    for name in names:
        print(f"\n######## bench_{name}.py", flush=True)
        script = HERE / (f"{name}.py" if name.startswith("proto") else f"bench_{name}.py")
        rc = subprocess.call([sys.executable, str(script)] + (["--all"] if name.startswith("proto") else []))
        if rc:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {failed}")


if __name__ == "__main__":
    main()
