"""Target 3: time and peak memory of the exact route at d_0 d_L = 40,000.

Here the Kronecker sum S would be a 40,000-square matrix (12.8 GB in float64); the
exact route applies it matrix-free. Each measurement runs in a fresh subprocess: the
peak of Python-tracked allocations (``tracemalloc``; NumPy reports its buffers to it)
above the factors already in memory, and the process's peak resident size
(``resource.getrusage``, interpreter and libraries included).

    python benchmarks/bench_memory.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _threads import THREADS  # noqa: F401 - first: thread variables before NumPy loads

# isort: split
from common import gaussian_minimizer, num_params, save, table

DIMS = (200, 500, 500, 500, 500, 200)  # d_0 d_L = 40,000, N = 950,000


def child(route, seed):
    import resource
    import time
    import tracemalloc

    import numpy as np
    from common import dmf

    factors = gaussian_minimizer(DIMS, seed)
    fbytes = sum(w.nbytes for w in factors)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    t = time.perf_counter()
    if route == "exact sharpness":
        value = dmf.sharpness(factors)
    elif route == "exact top eigenvector":
        value = float(np.linalg.norm(np.concatenate([b.ravel() for b in dmf.top_eigenvector(factors)])))
    elif route == "loss+gradient":
        m = np.linalg.multi_dot(factors[::-1])
        value = float(sum(np.vdot(g, g) for g in dmf.gradient(factors, target=m)))
    elif route == "numerical Lanczos (tol 1e-8)":
        value = dmf.numerical_sharpness(factors, method="lanczos", tol=1e-8).value
    else:
        raise SystemExit(f"unknown route {route}")
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            dict(
                route=route,
                time=dt,
                value=value,
                factor_bytes=fbytes,
                traced_peak=peak - base,
                rss_peak=rss,
                rss_before=base_rss,
            )
        )
    )


ROUTES = ("exact sharpness", "exact top eigenvector", "loss+gradient", "numerical Lanczos (tol 1e-8)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.seed)
    d0, dl = DIMS[0], DIMS[-1]
    print(
        f"dims {DIMS}: N = {num_params(DIMS):,}, d_0 d_L = {d0 * dl:,}; a dense S would take "
        f"{(d0 * dl) ** 2 * 8 / 1e9:.1f} GB"
    )
    rows = []
    for route in ROUTES:
        runs = []
        for _ in range(args.repeat if route != ROUTES[-1] else 1):
            out = subprocess.run(
                [sys.executable, __file__, "--child", route, "--seed", str(args.seed)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        runs.sort(key=lambda r: r["time"])
        r = dict(runs[len(runs) // 2])
        r["runs"] = [x["time"] for x in runs]
        r["traced_MB"] = r["traced_peak"] / 2**20
        r["rss_MB"] = r["rss_peak"] / 2**20
        r["traced_over_factors"] = r["traced_peak"] / r["factor_bytes"]
        rows.append(r)
    table(
        rows,
        [
            ("route", "route", None),
            ("time", "time [s]", "{:.3f}"),
            ("traced_MB", "peak traced [MiB]", "{:.1f}"),
            ("traced_over_factors", "/ factor bytes", "{:.2f}x"),
            ("rss_MB", "peak RSS [MiB]", "{:.0f}"),
        ],
    )
    print(f"factors: {rows[0]['factor_bytes'] / 2**20:.1f} MiB")
    lam, ref = rows[0]["value"], rows[-1]["value"]
    check = abs(lam - ref) / lam
    print(f"cross-check vs numerical Lanczos: relative difference {check:.1e}")
    if check > 1e-7:
        raise SystemExit(f"exact value disagrees with the numerical one ({check:.1e})")
    save(
        "memory",
        dict(
            dims=list(DIMS),
            num_params=num_params(DIMS),
            d0_dL=d0 * dl,
            dense_S_bytes=(d0 * dl) ** 2 * 8,
            seed=args.seed,
            rows=rows,
            cross_check_rel_diff=check,
        ),
    )


if __name__ == "__main__":
    main()
