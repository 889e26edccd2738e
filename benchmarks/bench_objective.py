"""Paired benchmark: the one-objective code path against an earlier commit (issue 11 item 1).

The plain route (eq. 15, no data) now goes through :class:`dmfsharp.objective.Objective`
with ``F = None`` (the identity, skipped). This script checks that this costs nothing
measurable: it exports ``src/`` of a reference commit (default ``8253013``, the last one
before the redesign), then alternates child processes running the same calls on the
old and the new code, several rounds, and prints the median CPU time per call and the
ratio new / old.

Usage: ``python benchmarks/bench_objective.py [--ref COMMIT] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, time, numpy as np, dmfsharp as dmf
rng = np.random.default_rng(0)
cases = {
    "sharpness L=4 (10,12,12,12,10)": (dmf.random_minimizer((10, 12, 12, 12, 10), seed=0), 200),
    "sharpness L=3 (30,40,40,30)": (dmf.random_minimizer((30, 40, 40, 30), seed=1), 20),
}
out = {}
for name, (ch, reps) in cases.items():
    fns = {
        "sharpness": lambda: dmf.sharpness(dmf.FactorChain(ch.factors)),
        "hessian_trace": lambda: dmf.hessian_trace(dmf.FactorChain(ch.factors)),
        "gradient+target": lambda: dmf.gradient(ch, target=ch.product + 1.0),
        "hvp+target": lambda: dmf.hessian_vector_product(ch, ch.factors, target=ch.product + 1.0),
    }
    for fn_name, fn in fns.items():
        fn()
        t0 = time.process_time()
        for _ in range(reps):
            fn()
        out[f"{fn_name} | {name}"] = (time.process_time() - t0) / reps
print(json.dumps(out))
"""


def _run(src: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="8253013")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        blob = subprocess.run(
            ["git", "archive", args.ref, "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=BytesIO(blob)) as tar:
            tar.extractall(tmp, filter="data")
        old_src, new_src = Path(tmp) / "src", ROOT / "src"
        old, new = [], []
        for _ in range(args.rounds):  # alternate, so drifting load hits both alike
            old.append(_run(old_src))
            new.append(_run(new_src))
    print(f"{'call | chain':<58} {'old (ms)':>9} {'new (ms)':>9} {'new/old':>8}")
    for key in old[0]:
        o = statistics.median(r[key] for r in old) * 1e3
        n = statistics.median(r[key] for r in new) * 1e3
        print(f"{key:<58} {o:9.3f} {n:9.3f} {n / o:8.3f}")


if __name__ == "__main__":
    main()
