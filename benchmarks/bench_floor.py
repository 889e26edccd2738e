"""Target 2: the exact route against one loss+gradient evaluation (the floor).

The floor is a LEAN loss+gradient, as a researcher writes it: no validation, no copy, no
product with an identity (``common.lean_loss_grad`` in NumPy, ``torch.autograd.grad`` in
PyTorch). dmfsharp's own validated ``loss`` + ``gradient`` is timed beside it for
reference. Every route runs in the same paired rounds (a warm-up, then each route once per
round in rotated order; medians of the per-round ratios), one verified thread each.
Library calls use public names only. The exact route picks its eigensolver for
``lambda_max(S)`` by a flop model (``dmfsharp.linalg.kron.prefer_davidson``): on all four
cases here that is Davidson in the eigenbasis of the Kronecker-sum split
(``dmfsharp.linalg.davidson``, 13-15 applications) instead of the certified Lanczos
(46-126); the prototype it grew from (``proto_wide_ends.py``) is timed beside it.

    python benchmarks/bench_floor.py
"""

from __future__ import annotations

from _threads import THREADS  # first: thread variables before NumPy loads

# isort: split
import argparse

import numpy as np
from common import (
    dmf,
    gaussian_minimizer,
    lean_loss_grad,
    num_params,
    paired,
    save,
    table,
    torch_lean_loss_grad,
    verify_threads,
)
from proto_wide_ends import sharpness_mean_field

CASES = {
    # narrow ends, wide hidden layers: S is tiny next to the parameters
    "narrow-ends N=2.2e6": (100,) + (512,) * 9 + (100,),
    # d_0 d_L = 40,000 (the memory case's ends) with wide hidden layers
    "ends-200 N=2.1e6": (200,) + (400,) * 13 + (200,),
    # the issue-17 case: d_0 d_L = 40,000 with widths 400
    "wide-ends (200,400,400,200)": (200, 400, 400, 200),
    # wide ends: S (200,000-square) is as large as a hidden layer
    "wide-ends N=2.2e6": (1000, 1000, 1000, 200),
}


def run_case(name, dims, seed, repeat):
    factors = gaussian_minimizer(dims, seed)
    m = np.linalg.multi_dot(factors[::-1])
    print(f"\n== {name}: dims {dims}, N = {num_params(dims):,}", flush=True)
    lam = dmf.sharpness(factors)
    proto = sharpness_mean_field(factors)

    def dmfsharp_loss_grad():
        c = dmf.FactorChain(factors)
        return dmf.loss(c, target=m), dmf.gradient(c, target=m)

    fns = {
        "lean NumPy loss+gradient": lambda: lean_loss_grad(factors, m),
        "exact route (dmfsharp.sharpness)": lambda: dmf.sharpness(factors),
        "prototype (mean-field Davidson)": lambda: sharpness_mean_field(factors),
        "dmfsharp loss+gradient (validated)": dmfsharp_loss_grad,
        "  validation only (dmfsharp.FactorChain)": lambda: dmf.FactorChain(factors),
    }
    try:
        from common import torch_setup

        torch = torch_setup()
        params = [torch.from_numpy(w) for w in factors]
        mt = torch.from_numpy(m)
        fns["lean PyTorch loss+gradient"] = lambda: torch_lean_loss_grad(params, mt)
    except ImportError:
        pass
    threads = verify_threads()
    med, ratios, times = paired(fns, repeat=repeat)
    t_torch = med.get("lean PyTorch loss+gradient")
    rows = []
    for k in fns:
        rows.append(
            dict(
                route=k,
                time=med[k],
                vs_lean_numpy=ratios[k],
                vs_lean_torch=None if t_torch is None else med[k] / t_torch,
            )
        )
    table(
        rows,
        [
            ("route", "route", None),
            ("time", "median CPU [s]", "{:.4g}"),
            ("vs_lean_numpy", "/ lean NumPy LG (paired)", "{:.2f}x"),
            ("vs_lean_torch", "/ lean torch LG (medians)", "{:.2f}x"),
        ],
    )
    # exactness cross-check: Lanczos on the analytic Hessian from a random start
    ref = dmf.numerical_sharpness(factors, method="lanczos", tol=1e-10, seed=seed)
    check = abs(ref.value - lam) / lam
    check_proto = abs(proto - lam) / lam
    print(
        f"cross-check vs Lanczos on the Hessian: {check:.1e} ({ref.num_hvp} HVPs); prototype vs exact: "
        f"{check_proto:.1e}"
    )
    if check > 1e-10 or check_proto > 1e-12:
        raise SystemExit(f"exact value disagrees with the numerical one ({check:.1e}, {check_proto:.1e})")
    r = {row["route"]: row for row in rows}
    return dict(
        dims=list(dims),
        num_params=num_params(dims),
        seed=seed,
        exact=lam,
        rows=rows,
        paired_times=times,
        threads=threads,
        ratio_exact_vs_lean_numpy=r["exact route (dmfsharp.sharpness)"]["vs_lean_numpy"],
        ratio_exact_vs_lean_torch=r["exact route (dmfsharp.sharpness)"]["vs_lean_torch"],
        ratio_prototype_vs_lean_numpy=r["prototype (mean-field Davidson)"]["vs_lean_numpy"],
        ratio_dmfsharp_lg_vs_lean_numpy=r["dmfsharp loss+gradient (validated)"]["vs_lean_numpy"],
        cross_check_rel_diff=check,
        prototype_rel_diff=check_proto,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", nargs="*", default=list(CASES), help="a selection of the case names")
    args = ap.parse_args()
    out = {name: run_case(name, CASES[name], args.seed, args.repeat) for name in args.cases}
    save("floor", dict(threads_per_route=THREADS, cases=out))


if __name__ == "__main__":
    main()
