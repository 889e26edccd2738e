"""Gradient-descent throughput for the Figure 6 configuration (issue 4, target 5).

Side by side in one process, medians of several runs, per (run x step):

- ``torch plain``: a PyTorch autograd loop written the way a researcher would, one
  step size at a time (forward product, loss, ``torch.autograd.grad``, in-place update,
  ``loss.item()`` recorded every step);
- ``torch batched``: the same loop vectorized over the 8 step sizes (factors stacked on a
  batch axis, one ``autograd.grad`` per step);
- ``dmfsharp numpy``: :func:`dmfsharp.dynamics.gradient_descent` with ``engine="numpy"``
  (batched ``numpy.matmul``, one Python iteration per step);
- ``dmfsharp numba``: the same with ``engine="numba"`` (compiled chunks of steps).

The dmfsharp engines also record, every step, the squared distance to ``w*`` and the two
plane coordinates (the torch loops only the loss). Runs start at ``w* + 1e-9 v_1`` of the
``fig6`` preset's minimum (20 layers, N = 2421) with step sizes
``(0.5, 0.7, 0.9, 0.95, 1.05, 1.1, 1.3, 1.6) x 2 / lambda_max``; ``converge_tol=0`` keeps
every run going for the whole budget. The numba kernel is compiled (or loaded from its
cache) in a warm-up call that is not timed.

Also timed, once per engine: ``escape_experiment`` for the fig6 preset (5 step sizes,
4000 iterations, setup included) and the whole ``dmfsharp reproduce`` command in a
subprocess (``--no-reproduce`` skips it).

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_gd_engines.py

Prints a table and writes ``benchmarks/results/gd_engines.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dmfsharp import sharpness
from dmfsharp.dynamics import escape_experiment, gradient_descent, numba_available, start_direction
from dmfsharp.io import write_json
from dmfsharp.presets import get_preset

HERE = Path(__file__).resolve().parent
MULTS = (0.5, 0.7, 0.9, 0.95, 1.05, 1.1, 1.3, 1.6)


def setup():
    chain = get_preset("fig6").minimum()
    lam = float(sharpness(chain))
    etas = np.array(MULTS) * 2.0 / lam
    start = chain.with_factors(chain.unflatten(chain.flatten() + 1e-9 * start_direction(chain, "top")))
    return chain, lam, etas, start


def torch_plain(start, m, etas, steps):
    """One step size at a time; returns (seconds, final flat parameters of the first run)."""
    import torch

    mt = torch.tensor(m, dtype=torch.float64)
    first = None
    t0 = time.perf_counter()
    for eta in etas:
        ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in start.factors]
        losses = []
        for _ in range(steps):
            p = ws[0]
            for w in ws[1:]:
                p = w @ p
            loss = ((mt - p) ** 2).sum()
            grads = torch.autograd.grad(loss, ws)
            with torch.no_grad():
                for w, g in zip(ws, grads):
                    w -= eta * g
            losses.append(loss.item())
        if first is None:
            first = np.concatenate([w.detach().numpy().ravel() for w in ws])
    return time.perf_counter() - t0, first


def torch_batched(start, m, etas, steps):
    """All step sizes at once on a batch axis; returns (seconds, losses (steps, B))."""
    import torch

    nb = len(etas)
    mt = torch.tensor(m, dtype=torch.float64)
    ws = [torch.tensor(np.repeat(w[None], nb, axis=0), dtype=torch.float64, requires_grad=True)
          for w in start.factors]
    et = torch.tensor(np.asarray(etas), dtype=torch.float64)[:, None, None]
    losses = torch.empty((steps, nb), dtype=torch.float64)
    t0 = time.perf_counter()
    for k in range(steps):
        p = ws[0]
        for w in ws[1:]:
            p = w @ p
        per_run = ((mt - p) ** 2).sum(dim=(1, 2))
        grads = torch.autograd.grad(per_run.sum(), ws)
        with torch.no_grad():
            for w, g in zip(ws, grads):
                w -= et * g
            losses[k] = per_run
    return time.perf_counter() - t0, losses.numpy()


def engine_run(start, chain, etas, steps, engine):
    z = np.zeros((2, chain.num_params))
    z[0] = start_direction(chain, "top")
    t0 = time.perf_counter()
    raw = gradient_descent(start, etas, iterations=steps, reference=chain, plane=z,
                           converge_tol=0.0, engine=engine)
    return time.perf_counter() - t0, raw


def median_time(fn, repeats):
    samples = []
    out = None
    for _ in range(repeats):
        dt, out = fn()
        samples.append(dt)
    return statistics.median(samples), samples, out


def time_reproduce(engine):
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dmfsharp", "reproduce", "--out", f"{tmp}/x",
                        "--engine", engine, "--quiet"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--torch-steps", type=int, default=250, help="steps per step size, plain torch")
    ap.add_argument("--steps", type=int, default=4000, help="steps for the batched methods")
    ap.add_argument("--no-reproduce", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "gd_engines.json"))
    args = ap.parse_args(argv)

    chain, lam, etas, start = setup()
    m = chain.product
    nb = len(etas)
    rows = {}
    have_torch = True
    try:
        import torch
    except ImportError:
        have_torch = False

    checks = {}
    if have_torch:
        med, samples, first = median_time(
            lambda: torch_plain(start, m, etas, args.torch_steps), args.repeats)
        rows["torch plain (one step size at a time)"] = dict(
            per_run_step_us=1e6 * med / (nb * args.torch_steps), samples_s=samples,
            steps=args.torch_steps, runs=nb)
        torch_first = first
        med, samples, _ = median_time(
            lambda: torch_batched(start, m, etas, args.torch_steps * 4), args.repeats)
        rows["torch batched over step sizes"] = dict(
            per_run_step_us=1e6 * med / (nb * args.torch_steps * 4), samples_s=samples,
            steps=args.torch_steps * 4, runs=nb)
    med, samples, raw_np = median_time(
        lambda: engine_run(start, chain, etas, args.steps, "numpy"), args.repeats)
    rows["dmfsharp numpy engine"] = dict(per_run_step_us=1e6 * med / (nb * args.steps),
                                         samples_s=samples, steps=args.steps, runs=nb)
    if numba_available():
        engine_run(start, chain, etas, 10, "numba")  # compile or load the cache
        med, samples, raw_nb = median_time(
            lambda: engine_run(start, chain, etas, args.steps, "numba"), args.repeats)
        rows["dmfsharp numba engine"] = dict(per_run_step_us=1e6 * med / (nb * args.steps),
                                             samples_s=samples, steps=args.steps, runs=nb)
    # same arithmetic: parameters after the plain loop's budget, relative to max |w|, for
    # the stable step sizes (above 2 / lambda_max any rounding difference grows by
    # |1 - eta lambda_max| per step, whatever the engine). This minimum has
    # lambda_max ~ 3e20, so loss and distance at r = 1e-9 are rounding dominated and
    # only the parameters compare meaningfully.
    stable = np.array(MULTS) < 1
    short = {eng: gradient_descent(start, etas, iterations=args.torch_steps, reference=chain,
                                   converge_tol=0.0, engine=eng)["final"]
             for eng in (("numpy", "numba") if numba_available() else ("numpy",))}
    wmax = float(np.abs(short["numpy"]).max())
    if "numba" in short:
        checks["numba_vs_numpy_max_param_diff_rel"] = float(
            np.abs(short["numba"][stable] - short["numpy"][stable]).max() / wmax)
    if have_torch:
        checks["torch_vs_numpy_max_param_diff_rel_run1"] = float(
            np.abs(torch_first - short["numpy"][0]).max() / wmax)

    base_key = "torch plain (one step size at a time)"
    base = rows[base_key]["per_run_step_us"] if base_key in rows else None
    for r in rows.values():
        r["speedup_vs_torch_plain"] = None if base is None else base / r["per_run_step_us"]

    end_to_end = {}
    for eng in ("numpy", "numba") if numba_available() else ("numpy",):
        t0 = time.perf_counter()
        escape_experiment(chain, step_multipliers=get_preset("fig6").step_multipliers,
                          radius=1e-9, iterations=4000, engine=eng)
        end_to_end[f"escape_experiment fig6 ({eng})"] = time.perf_counter() - t0
    if not args.no_reproduce:
        for eng in ("numpy", "numba") if numba_available() else ("numpy",):
            end_to_end[f"dmfsharp reproduce --engine {eng}"] = time_reproduce(eng)

    print(f"Figure 6 configuration: dims {chain.dims}, N = {chain.num_params}, "
          f"{nb} step sizes, medians of {args.repeats}")
    print(f"{'method':<40} {'us per run-step':>16} {'vs torch plain':>15}")
    for name, r in rows.items():
        sp = r["speedup_vs_torch_plain"]
        print(f"{name:<40} {r['per_run_step_us']:>16.2f} {'-' if sp is None else f'{sp:.1f}x':>15}")
    for name, v in end_to_end.items():
        print(f"{name:<40} {v:>14.2f} s")
    for name, v in checks.items():
        print(f"check {name}: {v:.2e}")

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    if have_torch:
        versions["torch"] = torch.__version__
        versions["torch_threads"] = torch.get_num_threads()
    if numba_available():
        import numba

        versions["numba"] = numba.__version__
    result = {
        "benchmark": "gd_engines",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor()},
        "versions": versions,
        "config": {"dims": list(chain.dims), "num_params": chain.num_params,
                   "step_multipliers": list(MULTS), "lambda_max": lam, "radius": 1e-9,
                   "repeats": args.repeats},
        "per_run_step": rows,
        "end_to_end_s": end_to_end,
        "checks": checks,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
