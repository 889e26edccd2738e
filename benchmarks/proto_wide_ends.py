"""Prototype (issue 17, item 5): a certified lambda_max(S) for wide ends in a mean-field basis.

At a global minimum the sharpness is ``2 lambda_max(S)`` with (Theorem 5)

    S(X) = sum_k Ga_k X Gb_k,   Ga_k = A_k A_k^T (d_L x d_L),  Gb_k = B_k^T B_k (d_0 x d_0),

and ``Gb_1 = I``, ``Ga_L = I``. When ``d_0 d_L`` is comparable to the widths squared,
Lanczos on ``S`` needs ~60 applications of ``S`` (a relative gap of ~1% at the top) and
the exact route costs ~20 loss+gradients. The structure gives a much better basis.

Algorithm (everything here is ``O(d_0^3 + d_L^3)`` set-up plus a few applications of S):

1. **Mean-field split (exact).** For any scalars ``ca_k, cb_k`` (k = 2 .. L-1)

       S(X) = A X + X B + sum_k (Ga_k - ca_k I) X (Gb_k - cb_k I),
       A = Ga_1 + sum_k cb_k Ga_k,   B = Gb_L + sum_k ca_k Gb_k - (sum_k ca_k cb_k) I.

   The first two terms are a Kronecker sum ``B (+) A``; the remainder is what couples the
   two ends. With ``ca_k = u^T Ga_k u``, ``cb_k = v^T Gb_k v`` at the best rank-one
   ``X = u v^T`` (a few alternating power steps on d-vectors, negligible cost), ``u`` and
   ``v`` are the top eigenvectors of ``A`` and ``B`` (the stationarity conditions of the
   rank-one Rayleigh quotient), so the Kronecker-sum top pair ``u v^T`` is the rank-one
   optimum and the remainder only acts on its corrections.
2. **Basis.** ``A = Ua diag(a) Ua^T`` and ``B = Ub diag(b) Ub^T`` (two dense ``eigh`` of
   sizes ``d_L`` and ``d_0``). In ``Y = Ua^T X Ub`` the operator is
   ``T(Y) = a_i Y_ij + Y_ij b_j + sum_k Ra_k Y Rb_k`` with ``Ra_k = Ua^T (Ga_k - ca_k) Ua``:
   the identity terms cost no matrix product any more, so one application of ``T`` costs
   ``2 (L - 2)`` products against ``S``'s ``2 (L - 2) + 2`` (half of it for L = 3).
   Its diagonal is ``D_ij = a_i + b_j + sum_k (Ra_k)_ii (Rb_k)_jj``.
3. **Solver.** Davidson (Rayleigh–Ritz on a growing orthonormal basis, reorthogonalized
   twice) from ``e_i e_j^T`` at ``argmax D`` plus 1e-3 of a seeded random vector (so no
   invariant subspace can hide the top), the correction ``t = r / (theta - D)`` (Jacobi
   preconditioner: the inverse of the diagonal part minus the Ritz value).
4. **Stop and certificate (residual only, no gap estimate).** It stops when the Ritz
   residual ``||T y - theta y|| <= rtol theta``. The Ritz vector is then mapped back,
   ``X = Ua Y Ub^T``, and ``||S(X) - theta X|| / ||X||`` is computed with the ORIGINAL
   Gram matrices: this certified residual bounds the distance from ``theta`` to an
   eigenvalue of ``S`` (Weyl), independent of the rounding in ``eigh`` and the basis
   change. ``theta`` is a Rayleigh quotient, so it never exceeds ``lambda_max``.

Moving it into ``linalg/``: steps 1-2 need only the Gram lists (``Ga_1``, ``Gb_L`` and the
middle ones) the exact route already streams; step 3 is a generic preconditioned
eigensolver on a callable with a diagonal; step 4 needs one application of the existing
``S`` operator. Falls back to the existing Lanczos when ``d_0`` or ``d_L`` is so large that
a dense ``eigh`` of that size costs more than the ~60 applications of ``S`` it saves.

    PYTHONPATH=$PWD/src python benchmarks/proto_wide_ends.py            # (200, 400, 400, 200)
    PYTHONPATH=$PWD/src python benchmarks/proto_wide_ends.py --all      # + two more cases
"""

from __future__ import annotations

from _threads import THREADS  # first: thread variables before NumPy loads

# isort: split
import argparse

import numpy as np
from common import dmf, gaussian_minimizer, lean_loss_grad, num_params, paired, save, table, verify_threads

CASES = {
    "wide ends (200, 400, 400, 200)": (200, 400, 400, 200),
    "ends-200, depth 5 (200, 400 x 4, 200)": (200, 400, 400, 400, 400, 200),
    "README wide-ends (1000, 1000, 1000, 200)": (1000, 1000, 1000, 200),
}
RTOL = 1e-13


def grams(factors):
    """``(Ga, Gb)``: ``Ga[k] = A_k A_k^T`` and ``Gb[k] = B_k^T B_k`` (0-based k), identities as None."""
    n = len(factors)
    gb = [None] * n
    b = None
    for k in range(1, n):
        b = factors[0] if k == 1 else factors[k - 1] @ b
        gb[k] = b.T @ b
    ga = [None] * n
    a = None
    for k in range(n - 2, -1, -1):
        a = factors[n - 1] if k == n - 2 else a @ factors[k + 1]
        ga[k] = a @ a.T
    return ga, gb


def apply_s(ga, gb, x):
    """``S(X) = sum_k Ga_k X Gb_k`` with the original Gram matrices (identity terms skipped)."""
    n = len(ga)
    out = ga[0] @ x + x @ gb[n - 1]
    for k in range(1, n - 1):
        out += ga[k] @ x @ gb[k]
    return out


def _power_top(g, v, steps):
    for _ in range(steps):
        v = g @ v
        v /= np.linalg.norm(v)
    return v


def mean_field(ga, gb, rounds=2, steps=15):
    """The scalars ``ca_k, cb_k`` of the best rank-one ``u v^T`` (alternating power steps)."""
    n = len(ga)
    mid = range(1, n - 1)
    u = np.ones(ga[0].shape[0]) / np.sqrt(ga[0].shape[0])
    v = np.ones(gb[n - 1].shape[0]) / np.sqrt(gb[n - 1].shape[0])
    for _ in range(rounds):
        cb = [float(v @ gb[k] @ v) for k in mid]
        u = _power_top(ga[0] + sum((c * ga[k] for c, k in zip(cb, mid)), 0.0), u, steps)
        ca = [float(u @ ga[k] @ u) for k in mid]
        eye_term = gb[n - 1] + sum((c * gb[k] for c, k in zip(ca, mid)), 0.0)
        v = _power_top(eye_term, v, steps)
    cb = [float(v @ gb[k] @ v) for k in mid]
    ca = [float(u @ ga[k] @ u) for k in mid]
    return ca, cb


def davidson(op, diag, x0, *, rtol, max_iter=120):
    """Top eigenpair of a symmetric operator on matrices by Davidson with a Jacobi preconditioner.

    Returns ``(theta, Y, iterations, rho)`` with ``rho = ||op(Y) - theta Y||`` (unit ``Y``), or
    raises ``RuntimeError`` when ``rho <= rtol theta`` is not reached in ``max_iter``.
    """
    shape, n = diag.shape, diag.size
    d = diag.ravel()
    v = np.empty((max_iter, n))
    av = np.empty((max_iter, n))
    h = np.zeros((max_iter, max_iter))
    t = x0.ravel() / np.linalg.norm(x0)
    tiny = np.finfo(float).tiny
    for it in range(max_iter):
        for _ in range(2):  # two passes of classical Gram-Schmidt
            if it:
                t = t - (v[:it] @ t) @ v[:it]
        t /= np.linalg.norm(t)
        v[it] = t
        av[it] = op(t.reshape(shape)).ravel()
        h[it, : it + 1] = v[: it + 1] @ av[it]
        h[: it + 1, it] = h[it, : it + 1]
        w, s = np.linalg.eigh(h[: it + 1, : it + 1])
        theta, c = float(w[-1]), s[:, -1]
        y = c @ v[: it + 1]
        r = c @ av[: it + 1] - theta * y
        rho = float(np.linalg.norm(r))
        scale = max(abs(theta), tiny)
        if rho <= rtol * scale:
            return theta, y.reshape(shape), it + 1, rho
        den = theta - d
        floor = 1e-10 * scale
        den = np.where(np.abs(den) < floor, floor, den)
        t = r / den
    raise RuntimeError(f"Davidson: residual {rho / scale:.1e} > {rtol:g} after {max_iter} steps")


def top_eig_mean_field(ga, gb, *, rtol=RTOL, seed=0):
    """``lambda_max(S)`` certified by its residual; returns a dict with value, steps, residuals."""
    n = len(ga)
    mid = list(range(1, n - 1))
    ca, cb = mean_field(ga, gb)
    dl, d0 = ga[0].shape[0], gb[n - 1].shape[0]
    a_mat = ga[0] + sum((c * ga[k] for c, k in zip(cb, mid)), np.zeros((dl, dl)))
    b_mat = gb[n - 1] + sum((c * gb[k] for c, k in zip(ca, mid)), np.zeros((d0, d0)))
    b_mat[np.diag_indices(d0)] -= sum(x * y for x, y in zip(ca, cb))
    a, ua = np.linalg.eigh(a_mat)
    b, ub = np.linalg.eigh(b_mat)
    ra, rb = [], []
    for c, k in zip(ca, mid):
        g = ga[k].copy()
        g[np.diag_indices(dl)] -= c
        ra.append(ua.T @ g @ ua)
    for c, k in zip(cb, mid):
        g = gb[k].copy()
        g[np.diag_indices(d0)] -= c
        rb.append(ub.T @ g @ ub)
    diag = a[:, None] + b[None, :]
    for x, y in zip(ra, rb):
        diag += np.diag(x)[:, None] * np.diag(y)[None, :]

    def op(y):
        out = a[:, None] * y + y * b[None, :]
        for x, z in zip(ra, rb):
            out += x @ y @ z
        return out

    i, j = np.unravel_index(np.argmax(diag), diag.shape)
    y0 = 1e-3 * np.random.default_rng(seed).standard_normal(diag.shape) / np.sqrt(diag.size)
    y0[i, j] += 1.0
    theta, y, steps, rho = davidson(op, diag, y0, rtol=rtol)
    x = ua @ y @ ub.T
    certified = float(np.linalg.norm(apply_s(ga, gb, x) - theta * x) / np.linalg.norm(x))
    if certified > rtol * theta:
        raise RuntimeError(f"certified residual {certified / theta:.1e} above {rtol:g}")
    return dict(value=theta, steps=steps, residual_rel=rho / theta, certified_residual_rel=certified / theta)


def lanczos_on_s(ga, gb, *, rtol=RTOL, seed=0, max_iter=120):
    """Reference with the same residual stop: Lanczos (= unpreconditioned Davidson) on ``S``."""
    shape = (ga[0].shape[0], gb[-1].shape[0])
    x0 = np.random.default_rng(seed).standard_normal(shape)
    zero = np.zeros(shape)
    theta, x, steps, rho = davidson(lambda z: apply_s(ga, gb, z), zero, x0, rtol=rtol, max_iter=max_iter)
    return dict(value=theta, steps=steps, residual_rel=rho / theta)


def sharpness_mean_field(factors, rtol=RTOL):
    """The whole prototype route: Gram matrices, then the certified ``2 lambda_max(S)``."""
    ga, gb = grams(factors)
    return 2.0 * top_eig_mean_field(ga, gb, rtol=rtol)["value"]


def run_case(name, dims, seed, repeat):
    factors = gaussian_minimizer(dims, seed)
    m = np.linalg.multi_dot(factors[::-1])
    print(f"\n== {name}: dims {dims}, N = {num_params(dims):,}, d_0 d_L = {dims[0] * dims[-1]:,}")
    ga, gb = grams(factors)
    info = top_eig_mean_field(ga, gb)
    ref = dmf.sharpness(factors)
    rel = abs(2 * info["value"] - ref) / ref
    lz = lanczos_on_s(ga, gb, max_iter=400)
    print(
        f"mean-field Davidson: {info['steps']} steps, certified residual "
        f"{info['certified_residual_rel']:.1e}; Lanczos on S with the same stop: {lz['steps']} steps; "
        f"2 theta vs dmfsharp.sharpness: relative difference {rel:.1e}"
    )
    if rel > 1e-12:
        raise SystemExit(f"prototype disagrees with dmfsharp.sharpness ({rel:.1e})")
    fns = {
        "lean NumPy loss+gradient": lambda: lean_loss_grad(factors, m),
        "dmfsharp.sharpness (exact route now)": lambda: dmf.sharpness(factors),
        "prototype: mean-field Davidson (total)": lambda: sharpness_mean_field(factors),
        "  of which Gram matrices": lambda: grams(factors),
    }
    if dims[0] * dims[-1] <= 50_000:  # the reference is slow (Rayleigh-Ritz every step) on larger S
        fns["Lanczos on S, residual stop (+ Grams)"] = lambda: lanczos_on_s(*grams(factors))
    med, ratios, times = paired(fns, repeat=repeat, warmup=1)
    rows = [dict(route=k, time=med[k], ratio=ratios[k]) for k in fns]
    table(
        rows,
        [
            ("route", "route", None),
            ("time", "median CPU [s]", "{:.4g}"),
            ("ratio", "/ lean loss+grad", "{:.2f}x"),
        ],
    )
    return dict(
        dims=list(dims),
        num_params=num_params(dims),
        seed=seed,
        sharpness=ref,
        rel_diff_vs_dmfsharp=rel,
        mean_field=info,
        lanczos_residual_stop=lz,
        rows=rows,
        paired_times=times,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="also the depth-5 and README wide-ends cases")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    verify_threads()
    names = list(CASES) if args.all else list(CASES)[:1]
    out = {nm: run_case(nm, CASES[nm], args.seed, args.repeat) for nm in names}
    save("proto_wide_ends", dict(rtol=RTOL, threads=THREADS, cases=out))


if __name__ == "__main__":
    main()
