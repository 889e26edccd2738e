"""Cost of tracking the exact Gauss-Newton sharpness at every step of ``train`` (issue 13).

The target: tracking ``lambda_max(2 K^T K)`` at every step costs at most 3x an untracked
step, on issue 13's configuration ``(4, 8, 8, 3)`` and the paper's (the dims of Figures 1,
4, 5, 6 and 7). What is compared is the *marginal* cost of one step, so that ``train``'s
fixed set-up and final analysis (a few ms) do not dilute the ratio: each variant is timed
at ``--short`` and at ``--long`` steps in the same round, and its cost per step is
``(t_long - t_short) / (long - short)``. Rounds are interleaved (``common.paired``; one
verified thread, process CPU time) and each reported ratio is the median over rounds of
the ratio within a round.

Variants, per configuration, engine and trajectory:

- ``untracked``: ``track_every`` beyond the run (nothing tracked after step 0);
- ``gn``: the Gauss-Newton ``lambda_max`` at every step (what the target is about), the
  singular values and balancedness only at the first 90 steps (in the short and the
  long run alike, so not in the marginal cost);
- ``default``: ``train``'s default tracking: the Gauss-Newton ``lambda_max`` at every
  step, the singular values of ``P`` and the balancedness every 15 (``sample_every``'s
  default) and at every step of the first 90;
- ``all``: all three at every step (``sample_every=1``).

Trajectories: ``slow`` starts at a scaled orthogonal point with ``eta = 1e-4`` (a
clustered spectrum: every singular value of the factors equal at the start), ``edge``
from a Gaussian ``alpha = 0.1`` at ``eta = 0.9 eta_crit`` (progressive sharpening towards
``2 / eta``, the case the tracking is for).

The compiled engine and the compiled, certified tracking need numba (the ``fast`` extra);
without it the tracking takes batched LAPACK calls, and the results file says which route
ran (``tracking_route``).

    python benchmarks/bench_train.py [--short 200] [--long 2200] [--repeat 5]
"""

from __future__ import annotations

from _threads import THREADS  # first: thread variables before NumPy loads

# isort: split
import argparse
import statistics

from common import clock, save, table, verify_threads

CONFIGS = {
    "issue 13 (4,8,8,3)": (4, 8, 8, 3),
    "fig1 (20,20,10)": (20, 20, 10),
    "fig4 (20,30,10)": (20, 30, 10),
    "fig5 (20,30,25)": (20, 30, 25),
    "fig7 (1,9,4,8,24,1)": (1, 9, 4, 8, 24, 1),
    "fig6 (L=20, scalar)": (1, 9, 4, 8, 24, 16, 17, 11, 21, 3, 22, 3, 3, 15, 3, 18, 17, 16, 5, 12, 1),
}
TRAJECTORIES = {
    "slow": dict(init="orthogonal", init_scale=1.0, etas=[1e-4]),
    "edge": dict(init="gaussian", init_scale=0.1, eta_ratios=[0.9]),
}
VARIANTS = {
    "untracked": None,
    "gn": dict(track_every=1, sample_every=10**9),
    "default": dict(track_every=1),
    "all": dict(track_every=1, sample_every=1),
}


def run(dims, steps, variant, engine, trajectory):
    from dmfsharp.dynamics.train import train

    track = VARIANTS[variant] or dict(track_every=steps + 1)
    res = train(
        dims,
        iterations=steps,
        converge_tol=0.0,
        engine=engine,
        seed=0,
        **TRAJECTORIES[trajectory],
        **track,
    )
    run0 = res.runs[0]
    if run0.iterations != steps:
        raise SystemExit(
            f"{dims} {trajectory}: the run stopped ({run0.status}) at {run0.iterations} of {steps}"
        )
    return run0


def marginal(dims, engine, trajectory, short, long, repeat):
    """Per-step cost (s) of each variant per round, from paired short and long runs."""
    names = [(v, n) for v in VARIANTS for n in (short, long)]
    for v, n in names:  # warm-up (compilation, caches)
        run(dims, n, v, engine, trajectory)
    per_round = []
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        t = {}
        for v, n in order:
            start = clock()
            run(dims, n, v, engine, trajectory)
            t[v, n] = clock() - start
        per_round.append({v: (t[v, long] - t[v, short]) / (long - short) for v in VARIANTS})
    return per_round


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=200)
    ap.add_argument("--long", type=int, default=2200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from dmfsharp.dynamics.engines import numba_available
    from dmfsharp.dynamics.train import compiled_tracking

    engines = ["numpy"] + (["numba"] if numba_available() else [])
    route = "compiled, certified (numba)" if compiled_tracking() else "batched LAPACK (numba absent)"
    print(f"Gauss-Newton tracking route: {route}", flush=True)
    threads = verify_threads()
    rows = []
    for name, dims in CONFIGS.items():
        for engine in engines:
            for trajectory in TRAJECTORIES:
                rounds = marginal(dims, engine, trajectory, args.short, args.long, args.repeat)
                row = dict(config=name, engine=engine, trajectory=trajectory)
                for v in VARIANTS:
                    row[f"{v}_us"] = statistics.median(r[v] for r in rounds) * 1e6
                for v in ("gn", "default", "all"):
                    row[f"{v}_ratio"] = statistics.median(r[v] / r["untracked"] for r in rounds)
                rows.append(row)
                ratios = "  ".join(f"{v} {row[v + '_ratio']:.2f}x" for v in ("gn", "default", "all"))
                print(f"{name:<22} {engine:<6} {trajectory:<5} {ratios}", flush=True)
    table(
        rows,
        [
            ("config", "configuration", None),
            ("engine", "engine", None),
            ("trajectory", "trajectory", None),
            ("untracked_us", "untracked us/step", "{:.1f}"),
            ("gn_us", "GN every step", "{:.1f}"),
            ("gn_ratio", "ratio", "{:.2f}x"),
            ("default_us", "default", "{:.1f}"),
            ("default_ratio", "ratio", "{:.2f}x"),
            ("all_us", "all every step", "{:.1f}"),
            ("all_ratio", "ratio", "{:.2f}x"),
        ],
    )
    worst = max(r["gn_ratio"] for r in rows)
    worst_default = max(r["default_ratio"] for r in rows)
    print(f"\nworst ratio, Gauss-Newton lambda_max at every step: {worst:.2f}x")
    print(f"worst ratio, train's default tracking (samples every 15 steps): {worst_default:.2f}x")
    save(
        "train",
        dict(
            threads=threads,
            threads_requested=THREADS,
            short=args.short,
            long=args.long,
            repeat=args.repeat,
            rows=rows,
            tracking_route=route,
            worst_gn_ratio=worst,
            worst_default_ratio=worst_default,
        ),
    )


if __name__ == "__main__":
    main()
