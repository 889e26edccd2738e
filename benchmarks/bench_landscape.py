"""Target 6: a 201 x 201 loss-landscape map for Figure 1 in under a second.

Figure 1's factorization (``M = L R^T``, ``L`` 10 x 20, ``R`` 20 x 20, so
``W_1 = R^T``, ``W_2 = L``), directions ``v_1`` (top Hessian eigenvector) and ``v_N``
(a zero-curvature direction), ``p(x, y) = L(w* + x v_1 + y v_N)`` on a 201 x 201 grid:

- ``pointwise loop``: ``dmfsharp.loss`` at every grid point (a Python loop);
- ``batched NumPy``: all grid points as a batch of factor stacks, in chunks;
- ``dmfsharp.landscape``: the project's map, when installed.

Every route's grid is compared with the pointwise one.

    python benchmarks/bench_landscape.py
"""

from __future__ import annotations

from _threads import THREADS  # noqa: F401 - first: thread variables before NumPy loads

# isort: split
import argparse

import numpy as np
from common import clock, dmf, save, table

GRID = 201
SPAN = 1.0


def setup(seed):
    rng = np.random.default_rng(seed)
    left, right = rng.standard_normal((10, 20)), rng.standard_normal((20, 20))
    chain = dmf.FactorChain([right.T, left])
    from dmfsharp.landscape import plane_directions

    z = plane_directions(chain, "hessian")  # (v_1, v_N), orthonormal
    v1, vn = chain.unflatten(z[0]), chain.unflatten(z[1])
    xs = np.linspace(-SPAN, SPAN, GRID)
    return chain, v1, vn, xs


def pointwise(chain, v1, vn, xs):
    m = chain.product
    out = np.empty((xs.size, xs.size))
    for i, y in enumerate(xs):
        for j, x in enumerate(xs):
            out[i, j] = dmf.loss([w + x * a + y * b for w, a, b in zip(chain.factors, v1, vn)], target=m)
    return out


def batched(chain, v1, vn, xs, chunk=4096):
    m = chain.product
    X, Y = np.meshgrid(xs, xs)
    x, y = X.ravel(), Y.ravel()
    out = np.empty(x.size)
    for s in range(0, x.size, chunk):
        cx, cy = x[s : s + chunk, None, None], y[s : s + chunk, None, None]
        p = None
        for w, a, b in zip(chain.factors, v1, vn):
            wk = w + cx * a + cy * b
            p = wk if p is None else wk @ p
        r = m - p
        out[s : s + chunk] = np.einsum("bij,bij->b", r, r)
    return out.reshape(X.shape)


def engine(chain, v1, vn, xs):
    from dmfsharp.landscape import loss_grid

    plane = np.stack([np.concatenate([b.ravel() for b in v]) for v in (v1, vn)])
    return loss_grid(chain, xs, xs, plane=plane)


ROUTES = {
    "pointwise loop (dmfsharp.loss per point)": pointwise,
    "batched NumPy (chunks of 4096 points)": batched,
    "dmfsharp.landscape": engine,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    chain, v1, vn, xs = setup(args.seed)
    print(f"Figure 1 configuration: dims {chain.dims}, {GRID} x {GRID} grid on [-{SPAN}, {SPAN}]^2")
    rows, ref = [], None
    for name, fn in ROUTES.items():
        try:
            times, grid = [], None
            for _ in range(1 if fn is pointwise else args.repeat):
                t = clock()
                grid = fn(chain, v1, vn, xs)
                times.append(clock() - t)
        except (ImportError, NotImplementedError) as exc:
            print(f"  {name}: skipped ({type(exc).__name__}: {exc})")
            rows.append(dict(route=name, note=f"unavailable: {exc}"))
            continue
        if ref is None:
            ref = grid
        dev = float(np.max(np.abs(grid - ref)) / np.max(np.abs(ref)))
        rows.append(dict(route=name, time=float(np.median(times)), runs=times, max_rel_dev=dev))
    base = rows[0]["time"]
    for r in rows:
        if "time" in r:
            r["speedup_vs_pointwise"] = base / r["time"]
    table(
        rows,
        [
            ("route", "route", None),
            ("time", "time [s]", "{:.4g}"),
            ("speedup_vs_pointwise", "vs pointwise", "{:.1f}x"),
            ("max_rel_dev", "max dev. / max", "{:.1e}"),
        ],
    )
    save("landscape", dict(dims=list(chain.dims), grid=GRID, span=SPAN, seed=args.seed, rows=rows))


if __name__ == "__main__":
    main()
