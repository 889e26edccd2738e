"""Target 4: time against N (1e3 ... 1e7) for each route, log-log, as a PNG.

Factorizations ``(10, d, d, d, d, 10)`` with the hidden width ``d`` chosen for each N.
Routes: the exact ``dmfsharp.sharpness``; one lean loss+gradient evaluation (NumPy, the
floor); Lanczos (``eigsh``, ``tol=1e-8``) on the analytic HVP
(``dmfsharp.numerical_sharpness``), on a ``torch.func`` HVP, on the double-backward
autograd HVP and on curvlinops' ``HessianLinearOperator``; PyHessian's power iteration at
its default tolerance (1e-3); dense ``eigvalsh`` up to N = 3,000. Every route gets the
same protocol at every N: one warm-up call, then paired rounds (each route once per round,
order rotated), medians. Every numerical value is compared with the exact one (relative
error in the results file). One verified thread per route.

    python benchmarks/bench_scaling.py            # writes results/scaling.{json,png}
"""

from __future__ import annotations

from _threads import THREADS  # first: thread variables before NumPy loads

# isort: split
import argparse

import numpy as np
from bench_sharpness import (
    route_curvlinops,
    route_dense,
    route_dmfsharp_lanczos,
    route_double_backward,
    route_pyhessian,
    route_torch_func,
)
from common import (
    RESULTS,
    dmf,
    gaussian_minimizer,
    lean_loss_grad,
    num_params,
    paired,
    rel_err,
    save,
    verify_threads,
)

ENDS, DEPTH = 10, 5
TARGETS = (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7)


def dims_for(n_target):
    # N = 2 ENDS d + (DEPTH - 2) d^2
    a, b = DEPTH - 2, 2 * ENDS
    d = int(round((-b + np.sqrt(b * b + 4 * a * n_target)) / (2 * a)))
    return (ENDS,) + (d,) * (DEPTH - 1) + (ENDS,)


ROUTES = {
    "dmfsharp-lanczos (tol 1e-8)": (route_dmfsharp_lanczos, 1e-8, 1e7),
    "torch.func+eigsh (tol 1e-8)": (route_torch_func, 1e-8, 1e7),
    "curvlinops+eigsh (tol 1e-8)": (route_curvlinops, 1e-8, 1e7),
    "double-backward+eigsh (tol 1e-8)": (route_double_backward, 1e-8, 1e7),
    "pyhessian-power (tol 1e-3)": (route_pyhessian, 1e-3, 1e7),
    "dense eigvalsh": (route_dense, None, 3e3),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-n", type=float, default=3e6)
    ap.add_argument("--repeat", type=int, default=3, help="paired rounds above N = 1e5 (5 below)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from results/scaling.json")
    args = ap.parse_args()
    if args.plot_only:
        import json

        data = json.loads((RESULTS / "scaling.json").read_text())
        pts = data["points"]
        names = list(dict.fromkeys(k for p in pts for k in p["times"]))
        return plot(pts, names, RESULTS / "scaling.png")
    import warnings

    warnings.filterwarnings("ignore")
    threads = verify_threads()
    points = []
    for nt in TARGETS:
        if nt > args.max_n * 1.01:
            break
        dims = dims_for(nt)
        n = num_params(dims)
        factors = gaussian_minimizer(dims, args.seed)
        m = np.linalg.multi_dot(factors[::-1])
        lam = dmf.sharpness(factors)
        fns = {
            "exact (dmfsharp.sharpness)": lambda f=factors: dmf.sharpness(f),
            "loss+gradient (lean NumPy)": lambda f=factors, m=m: lean_loss_grad(f, m),
        }
        pt = dict(dims=list(dims), num_params=n, exact=lam, rel_err={}, num_hvp={})
        for name, (fn, tol, nmax) in ROUTES.items():
            if n > nmax:
                continue
            try:  # one untimed call: value, HVP count, and it fails here rather than in the rounds
                val, hv = fn(factors, m, tol, args.seed)
            except Exception as exc:  # noqa: BLE001 - report and go on
                print(f"  {name} at N={n}: {type(exc).__name__}: {exc}")
                continue
            pt["rel_err"][name] = rel_err(val, lam)
            pt["num_hvp"][name] = hv
            fns[name] = lambda fn=fn, f=factors, m=m, tol=tol: fn(f, m, tol, args.seed)
        # the same protocol for every route: a warm-up, then paired rounds
        med, ratios, _ = paired(fns, repeat=5 if n <= 1e5 else args.repeat, warmup=1)
        pt["times"] = med
        pt["ratio_to_exact_paired"] = ratios
        points.append(pt)
        print(
            f"N = {n:>10,}  " + "  ".join(f"{k.split(' ')[0]} {v:.3g}s" for k, v in pt["times"].items()),
            flush=True,
        )
    # exactness: at every N the most accurate Lanczos route agrees with the exact value
    worst = max(min(v for k, v in p["rel_err"].items() if "eigsh" in k or "lanczos" in k) for p in points)
    print(f"cross-check: worst relative difference exact vs best Lanczos over all N: {worst:.1e}")
    if worst > 1e-8:
        raise SystemExit(f"exact values disagree with the numerical ones ({worst:.1e})")
    names = list(points[0]["times"])
    for nm in [k for p in points for k in p["times"]]:
        if nm not in names:
            names.append(nm)
    slopes = {}
    for nm in names:
        xs = [p["num_params"] for p in points if nm in p["times"] and p["num_params"] >= 1e5]
        ys = [p["times"][nm] for p in points if nm in p["times"] and p["num_params"] >= 1e5]
        if len(xs) >= 2:
            slopes[nm] = float(np.polyfit(np.log(xs), np.log(ys), 1)[0])
    print("\nlog-log slopes for N >= 1e5:")
    for nm, s in slopes.items():
        print(f"  {nm:32s} {s:.2f}")
    plot(points, names, RESULTS / "scaling.png")
    save(
        "scaling",
        dict(
            ends=ENDS,
            depth=DEPTH,
            seed=args.seed,
            points=points,
            slopes_N_ge_1e5=slopes,
            cross_check_worst_rel_diff=worst,
            threads=threads,
            threads_per_route=THREADS,
        ),
    )


def plot(points, names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    styles = {"exact": ("#d62728", "o", 2.5), "loss+gradient": ("k", "s", 1.5)}
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    others = [nm for nm in names if nm.split(" ")[0] not in styles]
    for nm in names:
        xs = [p["num_params"] for p in points if nm in p["times"]]
        ys = [p["times"][nm] for p in points if nm in p["times"]]
        key = nm.split(" ")[0]
        color, marker, lw = styles.get(
            key, (palette[others.index(nm) % len(palette)] if nm in others else "C7", "^", 1.2)
        )
        ax.loglog(
            xs, ys, marker=marker, color=color, lw=lw, label=nm, ls="--" if key == "loss+gradient" else "-"
        )
    ax.set_xlabel("number of parameters N")
    from common import CLOCK_NAME

    clock_word = "CPU time" if CLOCK_NAME == "cpu" else "wall time"
    ax.set_ylabel(f"{clock_word} [s], median, one thread")
    ax.set_title(f"λ_max at a minimum of ‖M − W_{DEPTH}⋯W_1‖², dims ({ENDS}, d, …, d, {ENDS})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
