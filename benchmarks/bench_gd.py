"""Target 5: gradient-descent steps per second, Figure 6 configuration, 8 step sizes.

Figure 6 of the paper: a 20-layer scalar factorization (dims 1, 9, 4, ..., 12, 1;
N = 2,421), started at ``w* + r v_1`` with ``r = 1e-9``, for 8 step sizes around
``2 / lambda_max``. Compared per (run x step), every route recording the loss at every
step:

- ``plain PyTorch``: autograd, one step size at a time, as a researcher writes it (the
  loss kept as a tensor every step, no ``.item()`` synchronisation per step);
- ``batched PyTorch``: the 8 step sizes stacked in batched tensors (``bmm``), one
  backward per step, also without ``.item()``;
- ``batched NumPy``: the analytic gradient on stacked ``(8, d_i, d_{i-1})`` arrays;
- ``dmfsharp.dynamics``: the project's escape engine, NumPy and (if numba is installed)
  compiled (``engine="numpy"`` and ``engine="numba"``).

Each route's trajectories are checked against the batched NumPy ones. Every route gets the
same protocol: a warm-up, then paired rounds (each route once per round, order rotated),
medians; one verified thread each (``_threads.py``, threadpoolctl, ``torch.get_num_threads``).

    python benchmarks/bench_gd.py
"""

from __future__ import annotations

from _threads import THREADS  # first: thread variables before NumPy loads

# isort: split
import argparse

import numpy as np
from common import dmf, paired, save, table, torch_setup, verify_threads

FIG6_DIMS = (1, 9, 4, 8, 24, 16, 17, 11, 21, 3, 22, 3, 3, 15, 3, 18, 17, 16, 5, 12, 1)
MULTIPLIERS = (0.5, 0.7, 0.9, 0.99, 1.05, 1.1, 1.3, 1.6)  # eta = mult * 2 / lambda_max
RADIUS = 1e-9


def setup(seed):
    chain = dmf.random_minimizer(FIG6_DIMS, seed=seed)  # the paper's recipe: N(0, 1) entries
    lam = dmf.sharpness(chain)
    v1 = dmf.top_eigenvector(chain)
    start = [w + RADIUS * v for w, v in zip(chain.factors, v1)]
    etas = np.array([m * 2.0 / lam for m in MULTIPLIERS])
    return chain, lam, start, etas


def numpy_batched(start, m, etas, steps):
    """Plain NumPy, the 8 runs batched: forward prefix products, backward sweep."""
    b = len(etas)
    ws = [np.repeat(w[None], b, axis=0) for w in start]
    eta = etas[:, None, None]
    losses = np.empty((steps, b))
    L = len(ws)
    for t in range(steps):
        pre = [None] * L  # B_k, batched
        p = ws[0]
        pre[0] = None
        for k in range(1, L):
            pre[k] = p
            p = ws[k] @ p
        r = m - p  # (b, dL, d0)
        losses[t] = np.einsum("bij,bij->b", r, r)
        c = -2.0 * r
        for k in range(L - 1, -1, -1):
            g = c if k == 0 else c @ np.swapaxes(pre[k], 1, 2)
            if k > 0:
                c = np.swapaxes(ws[k], 1, 2) @ c
            ws[k] = ws[k] - eta * g
    return losses, ws


def torch_plain(start, m, etas, steps):
    """One step size at a time, autograd, the loss kept as a tensor every step (no ``.item()``)."""
    torch = torch_setup()
    mt = torch.from_numpy(m)
    all_losses, finals = [], []
    for eta in etas:
        ps = [torch.tensor(w, requires_grad=True) for w in start]
        losses = torch.empty(steps)
        eta = float(eta)
        for t in range(steps):
            p = ps[0]
            for w in ps[1:]:
                p = w @ p
            loss = ((mt - p) ** 2).sum()
            loss.backward()
            with torch.no_grad():
                for w in ps:
                    w -= eta * w.grad
                    w.grad = None
                losses[t] = loss
        all_losses.append(losses.numpy())
        finals.append([w.detach().numpy().copy() for w in ps])
    return np.array(all_losses).T, [np.stack([f[k] for f in finals]) for k in range(len(start))]


def torch_batched(start, m, etas, steps):
    """The 8 step sizes as a batch dimension; one backward of the summed loss per step."""
    torch = torch_setup()
    b = len(etas)
    mt = torch.from_numpy(m)
    ps = [torch.tensor(np.repeat(w[None], b, axis=0), requires_grad=True) for w in start]
    eta = torch.from_numpy(etas)[:, None, None]
    losses = torch.empty((steps, b))
    for t in range(steps):
        p = ps[0]
        for w in ps[1:]:
            p = torch.bmm(w, p)
        per_run = ((mt - p) ** 2).sum(dim=(1, 2))
        per_run.sum().backward()
        with torch.no_grad():
            for w in ps:
                w -= eta * w.grad
                w.grad = None
            losses[t] = per_run.detach()
    return losses.numpy(), [w.detach().numpy() for w in ps]


def engine(start, m, etas, steps, reference=None, kind="numpy"):
    """``dmfsharp.dynamics.gradient_descent``: the escape engine, all runs batched.

    ``converge_tol=0`` keeps every run going for all ``steps`` (no early stop), so it
    does the same number of steps as the others; it also records the distance to
    ``w*`` and the plane coordinates at every step. ``kind`` is its ``engine=``:
    ``"numpy"`` (batched matmuls, one Python iteration per step) or ``"numba"`` (the
    optional compiled kernel, ``pip install 'dmfsharp[fast]'``).
    """
    if kind == "numba":
        import numba  # noqa: F401 - the compiled engine needs it; ImportError = skipped

    out = dmf.gradient_descent(
        start, etas, target=m, iterations=steps, reference=reference, converge_tol=0.0, engine=kind
    )
    return out.loss[:steps], out.final


def engine_numba(start, m, etas, steps):
    return engine(start, m, etas, steps, kind="numba")


ROUTES = {
    "plain PyTorch (one eta at a time)": (torch_plain, 0.25),
    "batched PyTorch (8 etas, bmm)": (torch_batched, 1.0),
    "batched NumPy (8 etas)": (numpy_batched, 1.0),
    "dmfsharp.dynamics, engine=numpy": (engine, 1.0),
    "dmfsharp.dynamics, engine=numba": (engine_numba, 1.0),
}


def time_reproduce():
    """Wall and CPU time of ``dmfsharp reproduce`` at its default settings (all presets)."""
    import os
    import resource
    import subprocess
    import sys
    import tempfile
    import time

    from common import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dmfsharp", "reproduce", "--out", os.path.join(tmp, "out"), "--quiet"],
            check=True,
            env=env,
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"dmfsharp reproduce (default settings): wall {wall:.1f} s, CPU {cpu:.1f} s")
    return dict(wall_s=wall, cpu_s=cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reproduce", action="store_true", help="skip timing `dmfsharp reproduce`")
    args = ap.parse_args()
    chain, lam, start, etas = setup(args.seed)
    m = chain.product
    print(
        f"Figure 6 configuration: N = {chain.num_params:,}, lambda_max = {lam:.6g}, "
        f"{len(etas)} step sizes, {args.steps} steps, r = {RADIUS:g}"
    )
    check_steps = 20  # the unstable runs escape from r = 1e-9 within ~25 steps, after which
    # rounding differences between implementations grow like |1 - eta lambda|^k
    ref_losses, _ = numpy_batched(start, m, etas, check_steps)
    threads = verify_threads()
    fns, steps_of, rows = {}, {}, []
    for name, (fn, frac) in ROUTES.items():
        steps = max(10, int(args.steps * frac))
        try:
            losses, _ = fn(start, m, etas, check_steps)  # also the import check
        except (ImportError, NotImplementedError) as exc:
            print(f"  {name}: skipped ({type(exc).__name__}: {exc})")
            rows.append(dict(route=name, note=f"unavailable: {exc}"))
            continue
        # on the paper's axis, L / ||M||^2 (the rounding floor of a loss is ~eps ||M||^2)
        dev = float(np.max(np.abs(losses[:check_steps] - ref_losses)) / np.vdot(m, m))
        fns[name] = lambda fn=fn, steps=steps: fn(start, m, etas, steps)
        steps_of[name] = steps
        rows.append(dict(route=name, steps=steps, max_rel_dev_vs_numpy=dev))
    med, _, times = paired(fns, repeat=args.repeat, warmup=1)
    for r in rows:
        if r["route"] in med:
            per = med[r["route"]] / (steps_of[r["route"]] * len(etas))
            r.update(
                time=med[r["route"]],
                runs=times[r["route"]],
                us_per_run_step=per * 1e6,
                run_steps_per_s=1.0 / per,
            )
    base = next(r for r in rows if r["route"].startswith("plain PyTorch"))
    for r in rows:
        if "us_per_run_step" in r:
            r["speedup_vs_plain_torch"] = base["us_per_run_step"] / r["us_per_run_step"]
    table(
        rows,
        [
            ("route", "route", None),
            ("us_per_run_step", "µs per run×step", "{:.2f}"),
            ("run_steps_per_s", "run×steps/s", "{:,.0f}"),
            ("speedup_vs_plain_torch", "vs plain PyTorch", "{:.1f}x"),
            ("max_rel_dev_vs_numpy", "max |Δloss|/‖M‖², 20 steps", "{:.1e}"),
        ],
    )
    repro = None if args.no_reproduce else time_reproduce()
    save(
        "gd",
        dict(
            dims=list(FIG6_DIMS),
            num_params=chain.num_params,
            seed=args.seed,
            lambda_max=lam,
            multipliers=list(MULTIPLIERS),
            radius=RADIUS,
            rows=rows,
            reproduce=repro,
            threads=threads,
            threads_per_route=THREADS,
        ),
    )


if __name__ == "__main__":
    main()
