"""Shared helpers for the benchmark scripts: factorizations, timing, tables, results files.

Every script runs its alternatives in one process, side by side, takes the median of
several runs, prints a table with ratios and writes its numbers to
``benchmarks/results/<name>.json``. Timings on a shared 2-core machine are noisy: read
the ratios, not the absolute times.
"""

from __future__ import annotations

from _threads import LOAD_AT_START, THREADS  # first: thread variables before NumPy loads

# isort: split
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

#: The clock of every timing. With one thread per route the process's CPU time
#: (``time.process_time``) is used: it equals wall time on an idle machine and, unlike
#: wall time, does not grow when other jobs take the cores. ``DMF_BENCH_CLOCK=wall``
#: (or more than one thread) switches to ``time.perf_counter``.
CLOCK_NAME = os.environ.get("DMF_BENCH_CLOCK", "cpu" if THREADS == 1 else "wall")
clock = time.process_time if CLOCK_NAME == "cpu" else time.perf_counter

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))

import dmfsharp as dmf  # noqa: E402, F401 - re-exported to the scripts (public names only)


def _limit_threads():
    """Belt and braces: limit every live BLAS/OpenMP pool to ``THREADS`` (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=THREADS)


_LIMITS = _limit_threads()


def verify_threads(require=True):
    """The live thread pools, read inside the run: threadpoolctl and ``torch.get_num_threads``.

    Returns a dict for the results file. With ``require`` it raises ``SystemExit`` when a
    pool runs more threads than ``THREADS`` (a measurement that would not be one thread).
    """
    found = {"requested": THREADS}
    try:
        from threadpoolctl import threadpool_info

        found["pools"] = [
            {
                "api": p.get("internal_api"),
                "threads": p.get("num_threads"),
                "kernel": p.get("architecture"),
                "version": p.get("version"),
                "library": os.path.basename(p.get("filepath", "")),
            }
            for p in threadpool_info()
        ]
    except ImportError:
        found["pools"] = "threadpoolctl not installed: BLAS threads not verified"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        found["torch_threads"] = torch.get_num_threads()
        found["torch_interop_threads"] = torch.get_num_interop_threads()
    bad = [p for p in found["pools"] if isinstance(p, dict) and (p["threads"] or 0) > THREADS]
    if found.get("torch_threads", THREADS) > THREADS:
        bad.append({"api": "torch", "threads": found["torch_threads"]})
    found["verified"] = not bad and isinstance(found["pools"], list)
    if require and bad:
        raise SystemExit(f"thread pools run more than {THREADS} thread(s): {bad}")
    return found


def gaussian_minimizer(dims, seed=0):
    """The paper's recipe (App. D.2) with variance ``1/d_{i-1}`` so the product stays O(1).

    Returns plain float64 arrays ``[W_1, ..., W_L]``; they are a global minimum of
    ``||M - W_L ... W_1||^2`` with ``M`` their product.
    """
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((dims[i], dims[i - 1])) / np.sqrt(dims[i - 1]) for i in range(1, len(dims))]


def lean_loss_grad(factors, m):
    """The NumPy floor: ``||M - W_L ... W_1||_F^2`` and its gradient, as a researcher writes it.

    No validation, no copy, no product with an identity: the prefix products
    ``B_k = W_{k-1} ... W_1`` are kept from the forward pass (``B_1 = I`` is never formed),
    the backward pass carries ``C = 2 (P - M)`` through ``W_k^T`` and stops before the
    unused ``W_1^T C``. Returns ``(loss, [grad W_1, ..., grad W_L])``.
    """
    n = len(factors)
    pre = [None] * n
    p = factors[0]
    for k in range(1, n):
        pre[k] = p
        p = factors[k] @ p
    r = p - m
    loss = float(np.vdot(r, r))
    c = 2.0 * r
    grads = [None] * n
    for k in range(n - 1, 0, -1):
        grads[k] = c @ pre[k].T
        c = factors[k].T @ c
    grads[0] = c
    return loss, grads


def torch_lean_loss_grad(params, mt):
    """The PyTorch floor: the loss of :func:`torch_loss` and ``torch.autograd.grad`` of it."""
    import torch

    ps = [p.detach().requires_grad_() for p in params]
    loss = torch_loss(ps, mt)
    grads = torch.autograd.grad(loss, ps)
    return float(loss.detach()), grads


def num_params(dims):
    return int(sum(dims[i] * dims[i - 1] for i in range(1, len(dims))))


def timed(fn, repeat=5, warmup=1, min_total=1.0, max_repeat=25):
    """``(median seconds, all times, last result)`` of ``fn()``.

    Short calls are repeated more (until about ``min_total`` seconds or ``max_repeat``
    runs) so that a burst of load from other jobs cannot move the median.
    """
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    while len(times) < repeat or (sum(times) < min_total and len(times) < max_repeat):
        t = clock()
        out = fn()
        times.append(clock() - t)
    return statistics.median(times), times, out


def paired(fns, repeat=15, warmup=1):
    """Time several functions in interleaved rounds (each once per round, order rotated).

    Returns ``(medians, ratios, times)``: the median time of each, the median over
    rounds of each one's time divided by the first one's in the same round, and all
    times. Ratios taken within a round see the same load from other jobs, so they are
    far steadier than ratios of separately taken medians on a shared machine.
    """
    names = list(fns)
    for _ in range(warmup):
        for f in fns.values():
            f()
    times = {n: [] for n in names}
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            t = clock()
            fns[n]()
            times[n].append(clock() - t)
    medians = {n: statistics.median(times[n]) for n in names}
    first = times[names[0]]
    ratios = {n: statistics.median([a / b for a, b in zip(times[n], first)]) for n in names}
    return medians, ratios, times


def rel_err(value, ref):
    return abs(value - ref) / abs(ref)


def environment():
    """Versions and thread counts recorded beside every result."""
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "threads_per_route": THREADS,
        "threads_verified": verify_threads(require=False),
        "clock": "process CPU time" if CLOCK_NAME == "cpu" else "wall time",
    }
    import scipy

    info["scipy"] = scipy.__version__
    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    for mod in ("curvlinops", "pyhessian"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "installed")
        except Exception as exc:  # noqa: BLE001 - report why a peer is missing
            info[mod] = f"unavailable: {type(exc).__name__}: {exc}"
    return info


def save(name, payload):
    payload = dict(payload)
    payload["environment"] = environment()
    payload["load_average"] = {"start": list(LOAD_AT_START), "end": list(os.getloadavg())}
    payload["command"] = "python " + " ".join(sys.argv)
    if THREADS != 1 or CLOCK_NAME != "cpu":  # keep the default results apart
        name = f"{name}-threads{THREADS}-{CLOCK_NAME}"
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n")
    tmp.replace(path)
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def table(rows, columns):
    """Print rows (dicts) as an aligned text table with the given ``(key, header, fmt)``."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        line = []
        for key, _, fmt in columns:
            v = r.get(key)
            line.append("-" if v is None else (fmt.format(v) if fmt else str(v)))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for j, c in enumerate(cells):
        print("  ".join(s.rjust(w) if i else s.ljust(w) for i, (s, w) in enumerate(zip(c, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


# --------------------------------------------------------------------------- PyTorch routes


def torch_setup():
    import torch

    torch.set_default_dtype(torch.float64)  # PyHessian draws its start vector in the default dtype
    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(THREADS)
    except RuntimeError:  # already set (it can be set once, before any parallel work)
        pass
    return torch


def torch_loss(params, m):
    """``||M - W_L ... W_1||_F^2`` from a tuple of tensors (W_1 first)."""
    p = params[0]
    for w in params[1:]:
        p = w @ p
    return ((m - p) ** 2).sum()


def torch_module(factors):
    """The factorization as a bias-free ``nn.Sequential`` of ``nn.Linear`` layers.

    Fed the identity ``I_{d_0}`` (rows are samples), it outputs ``P^T``; with the target
    ``M^T`` and ``MSELoss(reduction="sum")`` the loss is exactly eq. 15. This is how the
    peers (PyHessian, curvlinops) see a network.
    """
    torch = torch_setup()
    layers = []
    for w in factors:
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(w)))
        layers.append(lin)
    model = torch.nn.Sequential(*layers)
    x = torch.eye(factors[0].shape[1])
    y = torch.from_numpy(np.linalg.multi_dot(list(factors)[::-1]).T.copy())
    return model, torch.nn.MSELoss(reduction="sum"), x, y


class Counter:
    """Wraps a matvec and counts calls (Hessian-vector products)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)
