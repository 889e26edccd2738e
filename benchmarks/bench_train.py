"""Cost of tracking the exact Gauss-Newton sharpness at every step of ``train`` (issue 13).

For issue 13's configuration ``(4, 8, 8, 3)`` and the paper's (the dims of Figures 1, 4,
5, 6 and 7), one GD run from a scaled orthogonal initialization, timed in paired rounds
(one verified thread, process CPU time, medians of per-round ratios; ``common.paired``):

- untracked: ``train(..., track_every=T)`` (the samples are taken once, at step 0);
- tracked: ``track_every=1``: the exact ``lambda_max(2 K^T K)``, the top singular values
  of ``P`` and the balancedness of every layer pair at every step.

Both include ``train``'s fixed set-up and final analysis, so the ratio per step is
``(tracked - untracked) / untracked + 1`` of whole runs of ``--steps`` steps.

    python benchmarks/bench_train.py [--steps 300] [--repeat 5]
"""

from __future__ import annotations

from _threads import THREADS  # first: thread variables before NumPy loads

# isort: split
import argparse

from common import paired, save, table, verify_threads

CONFIGS = {
    "issue 13 (4,8,8,3)": (4, 8, 8, 3),
    "fig1 (20,20,10)": (20, 20, 10),
    "fig4 (20,30,10)": (20, 30, 10),
    "fig5 (20,30,25)": (20, 30, 25),
    "fig7 (1,9,4,8,24,1)": (1, 9, 4, 8, 24, 1),
    "fig6 (L=20, scalar)": (1, 9, 4, 8, 24, 16, 17, 11, 21, 3, 22, 3, 3, 15, 3, 18, 17, 16, 5, 12, 1),
}


def run(dims, steps, every, engine):
    from dmfsharp.dynamics.train import train

    res = train(
        dims,
        init="orthogonal",
        init_scale=1.0,
        etas=[1e-4],
        iterations=steps,
        converge_tol=0.0,
        track_every=every,
        engine=engine,
        seed=0,
    )
    if res.runs[0].iterations != steps:
        raise SystemExit(f"{dims}: the run stopped at {res.runs[0].iterations} of {steps} steps")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from dmfsharp.dynamics.engines import numba_available

    engines = ["numpy"] + (["numba"] if numba_available() else [])
    threads = verify_threads()
    rows = []
    for name, dims in CONFIGS.items():
        for engine in engines:
            fns = {
                "untracked": lambda d=dims, e=engine: run(d, args.steps, args.steps, e),
                "tracked": lambda d=dims, e=engine: run(d, args.steps, 1, e),
            }
            med, ratios, _ = paired(fns, repeat=args.repeat)
            rows.append(
                dict(
                    config=name,
                    engine=engine,
                    untracked_us=med["untracked"] / args.steps * 1e6,
                    tracked_us=med["tracked"] / args.steps * 1e6,
                    ratio=ratios["tracked"],
                )
            )
            print(f"{name:<22} {engine:<6} {ratios['tracked']:.2f}x", flush=True)
    table(
        rows,
        [
            ("config", "configuration", None),
            ("engine", "engine", None),
            ("untracked_us", "untracked us/step", "{:.1f}"),
            ("tracked_us", "tracked us/step", "{:.1f}"),
            ("ratio", "tracked / untracked (paired)", "{:.2f}x"),
        ],
    )
    save("train", dict(threads=threads, threads_requested=THREADS, steps=args.steps, rows=rows))


if __name__ == "__main__":
    main()
