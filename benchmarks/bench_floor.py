"""Target 2: the exact route against one loss+gradient evaluation, with a breakdown.

The exact route validates the factors, streams the prefix and suffix products into the
Gram matrices ``B_k^T B_k`` and ``A_k A_k^T`` (two passes over the parameters, against
the gradient's three), then runs Lanczos on the ``d_0 d_L``-square ``S`` from a rank-one
start. The breakdown times each stage on its own; the references are one loss+gradient
evaluation in NumPy (``dmfsharp.loss`` + ``dmfsharp.gradient``) and in PyTorch autograd.

    python benchmarks/bench_floor.py
"""

from __future__ import annotations

import argparse

import numpy as np
from common import dmf, gaussian_minimizer, num_params, paired, save, table, timed, torch_loss

from dmfsharp import s_matrix
from dmfsharp.linalg import kron, top_eigenpairs
from dmfsharp.objective import make_objective

CASES = {
    # narrow ends, wide hidden layers: S is tiny next to the parameters
    "narrow-ends N=2.2e6": (100,) + (512,) * 9 + (100,),
    # d_0 d_L = 40,000 (the memory case's ends) with wide hidden layers
    "ends-200 N=2.1e6": (200,) + (400,) * 13 + (200,),
    # wide ends: S (200,000-square) is as large as a hidden layer
    "wide-ends N=2.2e6": (1000, 1000, 1000, 200),
}


def run_case(name, dims, seed, repeat):
    factors = gaussian_minimizer(dims, seed)
    m = np.linalg.multi_dot(factors[::-1])
    print(f"\n== {name}: dims {dims}, N = {num_params(dims):,}")
    lam = dmf.sharpness(factors)

    def loss_grad():
        c = dmf.FactorChain(factors)
        return dmf.loss(c, target=m), dmf.gradient(c, target=m)

    fns = {"exact": lambda: dmf.sharpness(factors), "numpy": loss_grad}
    try:
        from common import torch_setup

        torch = torch_setup()
        params = [torch.from_numpy(w) for w in factors]
        mt = torch.from_numpy(m)

        def torch_lg():
            ps = [p.detach().requires_grad_() for p in params]
            loss = torch_loss(ps, mt)
            loss.backward()
            return float(loss.detach()), [p.grad for p in ps]

        fns["torch"] = torch_lg
    except ImportError:
        pass
    med, ratios, times = paired(fns, repeat=repeat)
    t_exact, t_lg = med["exact"], med["numpy"]
    t_tlg = med.get("torch")
    rows = [
        dict(what="exact sharpness (total)", time=t_exact),
        dict(what="loss+gradient, NumPy (dmfsharp)", time=t_lg, exact_over_this=1.0 / ratios["numpy"]),
    ]
    if t_tlg is not None:
        rows.append(
            dict(what="loss+gradient, PyTorch autograd", time=t_tlg, exact_over_this=1.0 / ratios["torch"])
        )
    # breakdown of the exact route
    t_val, _, chain = timed(lambda: dmf.FactorChain(factors), repeat=repeat)
    t_gram, _, (grams, rb, ra) = timed(
        lambda: s_matrix.grams(make_objective(dmf.FactorChain(factors))), repeat=repeat
    )
    t_gram -= t_val
    ks = kron.KroneckerSum(grams, rb, ra)
    t_r1, _, x0 = timed(ks.rank_one_start, repeat=repeat)
    t_lz, _, pairs = timed(lambda: top_eigenpairs(ks.matmat, rb * ra, v0=x0), repeat=repeat)
    steps = pairs.num_products
    t_mv, _, _ = timed(lambda: ks.matvec(x0), repeat=repeat)
    rows += [
        dict(what="  validation (copy + finiteness check)", time=t_val),
        dict(what="  Gram matrices (prefix + suffix products)", time=t_gram),
        dict(what="  rank-one start", time=t_r1),
        dict(what=f"  Lanczos on S ({steps} steps)", time=t_lz),
        dict(what="    one application of S", time=t_mv),
    ]
    for r in rows:
        r["vs_loss_grad"] = r["time"] / t_lg
        r["vs_torch_loss_grad"] = None if t_tlg is None else r["time"] / t_tlg
    table(
        rows,
        [
            ("what", "stage", None),
            ("time", "median time [s]", "{:.4g}"),
            ("vs_loss_grad", "/ NumPy loss+grad", "{:.2f}x"),
            ("vs_torch_loss_grad", "/ torch loss+grad", "{:.2f}x"),
            ("exact_over_this", "exact / this, paired", "{:.2f}x"),
        ],
    )
    # exactness cross-check: Lanczos on the analytic Hessian from a random start
    ref = dmf.numerical_sharpness(factors, method="lanczos", tol=1e-10, seed=seed)
    check = abs(ref.value - lam) / lam
    print(
        f"exact / one loss+gradient (median of paired rounds): NumPy {1 / ratios['numpy']:.2f}x"
        + (f", PyTorch {1 / ratios['torch']:.2f}x" if "torch" in ratios else "")
    )
    print(f"cross-check vs Lanczos on the Hessian: relative difference {check:.1e} ({ref.num_hvp} HVPs)")
    if check > 1e-10:
        raise SystemExit(f"exact value disagrees with the numerical one ({check:.1e})")
    return dict(
        dims=list(dims),
        num_params=num_params(dims),
        seed=seed,
        exact=lam,
        lanczos_steps=steps,
        rows=rows,
        paired_times=times,
        ratio_exact_vs_numpy_loss_grad_paired=1.0 / ratios["numpy"],
        ratio_exact_vs_torch_loss_grad_paired=(1.0 / ratios["torch"] if "torch" in ratios else None),
        cross_check_rel_diff=check,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = {name: run_case(name, dims, args.seed, args.repeat) for name, dims in CASES.items()}
    save("floor", dict(cases=out))


if __name__ == "__main__":
    main()
