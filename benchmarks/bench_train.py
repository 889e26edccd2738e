"""Cost of tracking the exact Gauss-Newton sharpness at every step of ``train`` (issue 13).

For the paper's configurations (the dims of Figures 1, 4, 5, 6 and 7), one GD run from a
scaled orthogonal initialization, timed side by side in one process:

- untracked: ``train(..., track_every=T)`` (the tracking runs once, at step 0);
- tracked: ``track_every=1``: the exact ``lambda_max(2 K^T K)`` (public
  ``gauss_newton_sharpness``), the top singular values of ``P`` and the balancedness of
  every layer pair at every step.

The ratio tracked/untracked per step is printed for the NumPy and (if installed) numba
engines. Best of ``--repeat`` timings each.

    python benchmarks/bench_train.py [--steps 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

CONFIGS = {
    "fig1 (20,20,10)": (20, 20, 10),
    "fig4 (20,30,10)": (20, 30, 10),
    "fig5 (20,30,25)": (20, 30, 25),
    "fig7 (1,9,4,8,24,1)": (1, 9, 4, 8, 24, 1),
    "fig6 (L=20, scalar)": (1, 9, 4, 8, 24, 16, 17, 11, 21, 3, 22, 3, 3, 15, 3, 18, 17, 16, 5, 12, 1),
}


def per_step(dims, steps, every, engine, repeat):
    from dmfsharp.dynamics.train import train

    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
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
        best = min(best, time.perf_counter() - t0)
        assert res.runs[0].iterations == steps
    return best / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from dmfsharp.dynamics.engines import numba_available

    engines = ["numpy"] + (["numba"] if numba_available() else [])
    print(
        f"{'configuration':<22} {'engine':<6} {'untracked us/step':>18} {'tracked us/step':>16} {'ratio':>7}"
    )
    for name, dims in CONFIGS.items():
        for engine in engines:
            per_step(dims, 10, 1, engine, 1)  # warm-up (compilation, caches)
            plain = per_step(dims, args.steps, args.steps, engine, args.repeat)
            tracked = per_step(dims, args.steps, 1, engine, args.repeat)
            print(
                f"{name:<22} {engine:<6} {plain * 1e6:>18.1f} {tracked * 1e6:>16.1f} {tracked / plain:>7.1f}"
            )


if __name__ == "__main__":
    main()
