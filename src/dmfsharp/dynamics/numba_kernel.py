r"""Compiled gradient-descent kernel (numba) behind :class:`dmfsharp.dynamics.engines.NumbaEngine`.

Imported only when the ``"numba"`` engine is selected (numba is an optional extra); with
numba missing, or unable to compile or cache (a read-only install), the engine module
falls back to NumPy and nothing fails at import.

:func:`advance` moves every run of a batch through a whole chunk of GD steps on eq. 15,

.. math::

    W_i \leftarrow W_i + 2 \eta\, A_i^\top (M - W_L \cdots W_1) B_i^\top ,

and writes the per-iteration traces (loss, squared distance to ``w*``, the two plane
coordinates) straight into the caller's preallocated arrays, so Python is entered only
at the chunk boundaries (the divergence/convergence checks and the tracking
iterations) instead of a dozen NumPy calls per step.

Per run the parameters are one flat row-major vector (``W_1`` first), the same layout
as the NumPy engine. The forward pass stores the prefix products
``B_{i+1} = W_i \cdots W_1`` (Section 3 notation) and the residual; the backward pass
carries ``C_i = (2 eta) A_i^\top R`` down the chain, ``C_i = W_{i+1}^\top C_{i+1}``, and
adds ``C_i B_i^\top`` to ``W_i`` in the same sweep over ``W_i`` that forms
``W_i^\top C_i`` from its old entries. The arithmetic is the NumPy engine's up to the
order of the floating-point sums (rounding level). Compiled without fast-math: every sum
runs in source order with IEEE semantics, so the kernel gives the same bits on every call
whatever the arrays' memory alignment, and an overflowing run just carries inf/NaN
until the caller's check stops it. (Allowing reassociation, ``fastmath={"reassoc"}``,
vectorizes the sums and was measured 1.3x faster on the Figure 6 configuration; it was
left out because the order of the sums would then depend on the compiler's
vectorization choices.)
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _forward(wb, dims, offs, poffs, m, pb, rb):
    """Prefix products into ``pb``, residual ``R = M - W_L ... W_1`` into ``rb``; return ``||R||^2``."""
    nl = dims.shape[0] - 1
    d0 = dims[0]
    # P_1 = W_1 is read from wb directly; pb holds P_2 .. P_{L-1} at poffs[i] (P_{i+1})
    src = wb[offs[0] : offs[1]]
    for i in range(1, nl):
        rows = dims[i + 1]
        inner = dims[i]
        w = wb[offs[i] : offs[i + 1]]
        last = i == nl - 1
        dst = rb if last else pb[poffs[i] : poffs[i + 1]]
        if d0 == 1:
            for r in range(rows):
                acc = 0.0
                base = r * inner
                for j in range(inner):
                    acc += w[base + j] * src[j]
                dst[r] = acc
        else:
            for r in range(rows):
                for c in range(d0):
                    dst[r * d0 + c] = 0.0
                for j in range(inner):
                    wrj = w[r * inner + j]
                    for c in range(d0):
                        dst[r * d0 + c] += wrj * src[j * d0 + c]
        src = dst
    total = 0.0
    for t in range(rb.shape[0]):
        v = m[t] - rb[t]
        rb[t] = v
        total += v * v
    return total


@njit(cache=True, nogil=True)
def _step(wb, s, dk, dims, offs, poffs, pb, rb, ca, cb):
    """``W_i <- dk W_i + s C_i B_i^T`` for all ``i`` (``dk = 1 - s mu``, weight decay)."""
    nl = dims.shape[0] - 1
    d0 = dims[0]
    c = ca
    cn = cb
    for t in range(rb.shape[0]):
        c[t] = s * rb[t]
    for i in range(nl - 1, -1, -1):
        rows = dims[i + 1]
        cols = dims[i]
        w = wb[offs[i] : offs[i + 1]]
        if i == 0:  # B_1 = I: W_1 += C_1
            for t in range(rows * cols):
                w[t] = dk * w[t] + c[t]
            break
        if i == 1:
            p = wb[offs[0] : offs[1]]
        else:
            p = pb[poffs[i - 1] : poffs[i]]
        for t in range(cols * d0):
            cn[t] = 0.0
        if d0 == 1:
            for r in range(rows):
                cr = c[r]
                base = r * cols
                for j in range(cols):
                    cn[j] += w[base + j] * cr
                    w[base + j] = dk * w[base + j] + cr * p[j]
        else:
            for r in range(rows):
                base = r * cols
                for j in range(cols):
                    wrj = w[base + j]
                    acc = 0.0
                    for q in range(d0):
                        cn[j * d0 + q] += wrj * c[r * d0 + q]
                        acc += c[r * d0 + q] * p[j * d0 + q]
                    w[base + j] = dk * wrj + acc
        c, cn = cn, c


@njit(cache=True, nogil=True)
def advance(
    w,
    scale,
    mu,
    dims,
    offs,
    poffs,
    m,
    wstar,
    z,
    pref,
    res,
    ca,
    cb,
    first_step,
    k0,
    k1,
    loss_tr,
    dist_tr,
    coord_tr,
    snap,
    snap_k0,
):
    """Advance all runs from iteration ``k0`` to ``k1`` and record traces ``k0 .. k1``.

    ``first_step``: take the step of iteration ``k0 - 1`` first (from the residual left
    in ``res`` by the previous call). A run with ``scale == 0`` is frozen: no step, its
    trace rows repeat row ``k0 - 1`` (what the NumPy engine records for a frozen run).
    ``mu`` is the weight decay: each step multiplies the parameters by ``1 - scale mu``.
    ``snap`` ``(S, B, N)``: the parameters of iteration ``k`` are copied to
    ``snap[k - snap_k0]`` where that row exists (per-step tracking without leaving the
    kernel; ``S = 0`` copies nothing).
    """
    nb, n = w.shape
    for b in range(nb):
        s = scale[b]
        dk = 1.0 - s * mu
        wb = w[b]
        pb = pref[b]
        rb = res[b]
        if s == 0.0 and k0 > 0:
            for k in range(k0, k1 + 1):
                loss_tr[k, b] = loss_tr[k - 1, b]
                dist_tr[k, b] = dist_tr[k - 1, b]
                coord_tr[k, b, 0] = coord_tr[k - 1, b, 0]
                coord_tr[k, b, 1] = coord_tr[k - 1, b, 1]
            continue
        if first_step and s != 0.0:
            _step(wb, s, dk, dims, offs, poffs, pb, rb, ca, cb)
        for k in range(k0, k1 + 1):
            loss_tr[k, b] = _forward(wb, dims, offs, poffs, m, pb, rb)
            dd = 0.0
            x = 0.0
            y = 0.0
            for t in range(n):
                dlt = wb[t] - wstar[t]
                dd += dlt * dlt
                x += dlt * z[0, t]
                y += dlt * z[1, t]
            dist_tr[k, b] = dd
            coord_tr[k, b, 0] = x
            coord_tr[k, b, 1] = y
            j = k - snap_k0
            if 0 <= j < snap.shape[0]:
                for t in range(n):
                    snap[j, b, t] = wb[t]
            if k < k1 and s != 0.0:
                _step(wb, s, dk, dims, offs, poffs, pb, rb, ca, cb)


def make_buffers(nb: int, dims: tuple[int, ...]):
    """Index arrays and scratch buffers for :func:`advance` on ``nb`` runs of ``dims``."""
    nl = len(dims) - 1
    d0 = dims[0]
    offs = np.cumsum([0] + [dims[i + 1] * dims[i] for i in range(nl)]).astype(np.int64)
    # poffs[i] .. poffs[i+1] holds P_{i+1} (d_{i+1} x d_0) for i = 1 .. L-2; poffs[0] = poffs[1] = 0
    sizes = [dims[i + 1] * d0 if 1 <= i <= nl - 2 else 0 for i in range(nl)]
    poffs = np.cumsum([0] + sizes).astype(np.int64)
    pref = np.zeros((nb, max(int(poffs[-1]), 1)))
    res = np.zeros((nb, dims[-1] * d0))
    cmax = max(dims[i] * d0 for i in range(nl + 1))
    return (np.asarray(dims, dtype=np.int64), offs, poffs, pref, res, np.zeros(cmax), np.zeros(cmax))
