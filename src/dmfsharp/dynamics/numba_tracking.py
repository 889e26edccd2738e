r"""Compiled per-step Gauss-Newton ``lambda_max`` (numba): warm-started, certified, exact fallback.

Issue 13 asks for the exact Gauss-Newton sharpness ``2 lambda_max(S)`` (Theorem 5's
expression holds for the Gauss-Newton part at every point, eq. 57) at *every* GD step,
for at most three times the cost of an untracked step. One step of the compiled engine
on the paper's configurations costs 2-16 us; a LAPACK eigensolve of a 20 x 20 Gram
matrix alone costs about 13 us, so an eigensolve per step cannot meet that. Successive
steps move ``S`` only a little, though, and its top eigenvector from the previous step
is an excellent start. :func:`gn_block` evaluates a block of consecutive parameter
snapshots, carrying per run the top eigenvector of each symmetric positive
semidefinite matrix it needs:

- ``d_0 = d_L = 1``: Theorem 4, ``lambda_max(S) = sum_k ||B_k||^2 ||A_k||^2`` (no
  eigenproblem);
- ``L = 2``: Corollary 6, ``lambda_max(S) = sigma_1(W_1)^2 + sigma_1(W_2)^2``, the top
  eigenvalues of the two smaller Gram matrices;
- otherwise, for ``d_0 d_L <= CERT_MAX``: ``S = sum_k (B_k^T B_k) kron (A_k A_k^T)`` built
  densely (eq. 57 with ``F = I``).

The top eigenvalue ``lambda_1`` of a PSD matrix ``G`` (order ``n``) is returned only with
a proof that it is within :func:`cert_rtol` ``(n) = 4 n (n + 1) u`` (relative; ``u =
2^-53``) of the top eigenvalue of the computed ``G``:

1. From the warm unit vector ``v`` the Rayleigh quotient ``theta = v^T G v`` is a lower
   bound, ``theta <= lambda_1``.
2. An upper bound comes from a Cholesky factorization of ``x I - G``: if it runs to
   completion in floating point, then ``x I - G + Delta`` is positive semidefinite with
   ``|Delta| <= gamma_{n+1} |R^T| |R|`` (Higham, *Accuracy and Stability of Numerical
   Algorithms*, 2nd ed., Theorem 10.3; Rump, BIT 46, 2006, for its use as a
   certificate), hence ``lambda_1 <= x + gamma_{n+1} ||R||_F^2 + 2 u max_i |x - g_ii|``
   (the last term: rounding in forming the diagonal of ``x I - G``; the computed
   ``||R||_F^2`` is inflated by 1 %, far above its own rounding). Underflow adds at most a
   few multiples of ``2^-1074`` per entry (Rump's bound), negligible against ``u theta``
   for the ``theta >= 2^-400`` this route accepts.
3. The shift is ``x = theta + ||G v - theta v|| + 2 n (n + 1) u theta``. Where the bound
   is not yet tight, inverse iteration with the same factor, ``v <- (x I - G)^{-1} v``
   (at most :data:`MAX_SOLVES` solves, until the residual stops halving or is below
   ``tau theta / 4``, ``tau = 2 n (n + 1) u``), sharpens
   ``v``, and the next shift follows from the new Rayleigh quotient and residual (a
   shifted inverse iteration kept above ``lambda_1``), at most :data:`MAX_REFINE`
   factorizations in all.

When the certificate is not reached (the warm vector lost the top eigenvector, a
factorization broke down, ``theta`` is too small for the rounding model to hold, or there
is no warm vector yet) the value comes from LAPACK (``numpy.linalg.eigh``, as numba
compiles it), whose top eigenvector becomes the next warm start. Either way the value
is the top eigenvalue to rounding-level accuracy; the certified route never guesses.

Imported only when numba is installed (the ``fast`` extra); without it the tracker
uses batched LAPACK calls (:func:`dmfsharp.s_arrays.gauss_newton_top_batch`).

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Theorem 4, Theorem 5, Corollary 6, eq. 57).
N. J. Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., SIAM, 2002
(Theorem 10.3). S. M. Rump, Verification of positive definiteness, BIT 46, 2006.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..s_matrix import PLAIN_RANGE_BITS

#: Unit roundoff of float64.
U = 2.0**-53
#: Largest order of a matrix the compiled route takes (larger ones: the tracker's batched
#: LAPACK or iterative routes).
CERT_MAX = 64
#: Inverse-iteration refinements tried before the LAPACK fallback.
MAX_REFINE = 3
#: Inverse-iteration solves per factorization.
MAX_SOLVES = 4
#: Below this ``theta`` (and above it for ``1 / theta``) the rounding model of the
#: certificate could meet underflow or overflow: LAPACK instead.
TINY = 2.0**-400
HUGE = 2.0**400

ROUTE_SCALAR, ROUTE_TWO, ROUTE_DENSE = 0, 1, 2
ABS_MASK = np.int64(0x7FFFFFFFFFFFFFFF)
INF_BITS = np.int64(0x7FF0000000000000)


def cert_rtol(n: int) -> float:
    """The certified relative accuracy ``4 n (n + 1) u`` of a top eigenvalue of order ``n``."""
    return 4.0 * n * (n + 1) * U


@njit(cache=True, nogil=True)
def _cholesky_bound(g, x, a):
    """Cholesky of ``x I - g`` into the lower triangle of ``a``; the certified bound or -1.

    Returns an upper bound of ``lambda_max(g)`` proved by the factorization running to
    completion (module docstring, step 2), or ``-1.0`` where a pivot is not positive.
    """
    n = g.shape[0]
    gam = (n + 1) * U / (1.0 - (n + 1) * U)
    diag = 0.0
    for i in range(n):
        for j in range(i):
            a[i, j] = -g[i, j]
        a[i, i] = x - g[i, i]
        diag = max(diag, abs(a[i, i]))
    # right-looking (outer-product) order: the inner loops run along rows of ``a`` with no
    # reduction chain; Theorem 10.3's bound holds for any order of the inner products
    fro = 0.0
    for j in range(n):
        s = a[j, j]
        if not s > 0.0:
            return -1.0
        d = math.sqrt(s)
        a[j, j] = d
        fro += s
        for i in range(j + 1, n):
            t = a[i, j] / d
            a[i, j] = t
            a[j, i] = t  # a copy in the unused upper triangle: contiguous below
            fro += t * t
        for i in range(j + 1, n):
            t = a[i, j]
            for k in range(j + 1, i + 1):
                a[i, k] -= t * a[j, k]
    # 1.01: the rounding of the computed ||R||_F^2 itself (relative n^2 u << 0.01)
    return x + 1.01 * gam * fro + 2.0 * U * diag


@njit(cache=True, nogil=True)
def _solve_shifted(a, v, y):
    """``y = (L L^T)^{-1} v`` for the lower Cholesky factor in ``a``."""
    n = v.shape[0]
    for i in range(n):
        y[i] = v[i]
    for k in range(n):  # L z = v, column by column
        y[k] /= a[k, k]
        t = y[k]
        for i in range(k + 1, n):
            y[i] -= a[i, k] * t
    for k in range(n - 1, -1, -1):  # L^T y = z, row k of L is column k of L^T
        y[k] /= a[k, k]
        t = y[k]
        for i in range(k):
            y[i] -= a[k, i] * t


@njit(cache=True, nogil=True)
def _rayleigh(g, v, w):
    """``w = g v`` and ``(theta, ||w - theta v||)`` for a unit ``v``."""
    n = v.shape[0]
    for i in range(n):
        w[i] = 0.0
    for j in range(n):  # g is symmetric: w += v_j g[j, :] (rows, no reduction chain)
        vj = v[j]
        for i in range(n):
            w[i] += g[j, i] * vj
    theta = 0.0
    for i in range(n):
        theta += v[i] * w[i]
    r = 0.0
    for i in range(n):
        d = w[i] - theta * v[i]
        r += d * d
    return theta, math.sqrt(r)


@njit(cache=True, nogil=True)
def top_psd(g, v, warm, a, w, y, theta=0.0, r=-1.0):
    """``(lambda_max(g), certified)`` of a symmetric PSD ``g``; ``v`` (unit) is updated.

    ``warm``: whether ``v`` holds the previous top eigenvector. ``a``, ``w``, ``y``:
    scratch of shapes ``(n, n)``, ``(n,)``, ``(n,)``. ``theta``, ``r``: ``v``'s Rayleigh
    quotient and residual norm where the caller has them (``r < 0``: computed here).
    ``certified`` is False where the value came from LAPACK (module docstring).
    """
    n = g.shape[0]
    if n == 1:
        v[0] = 1.0
        return g[0, 0], True
    if warm and n <= CERT_MAX:
        tol = 4.0 * n * (n + 1) * U
        tau = 2.0 * n * (n + 1) * U
        if r < 0.0:
            theta, r = _rayleigh(g, v, w)
        if TINY < theta < HUGE:
            for _ in range(MAX_REFINE):
                ub = _cholesky_bound(g, theta + r + tau * theta, a)
                if ub < 0.0:
                    break
                if ub - theta <= tol * theta:
                    return theta, True
                # inverse iteration with this factor until the residual stalls: each
                # solve divides the other components by (x - lambda_i) / (x - lambda_1)
                for _ in range(MAX_SOLVES):
                    _solve_shifted(a, v, y)
                    nrm = 0.0
                    for i in range(n):
                        nrm += y[i] * y[i]
                    nrm = math.sqrt(nrm)
                    if not (nrm > 0.0 and nrm < np.inf):
                        break
                    for i in range(n):
                        v[i] = y[i] / nrm
                    t2, r2 = _rayleigh(g, v, w)
                    theta = max(theta, t2)  # both are lower bounds (t2 may dip at rounding level)
                    stalled = r2 > 0.5 * r
                    r = r2
                    if stalled or r <= 0.25 * tau * theta:  # small enough for a tight bound
                        break
    vals, vecs = np.linalg.eigh(g)
    for i in range(n):
        v[i] = vecs[i, n - 1]
    return max(vals[n - 1], 0.0), False


@njit(cache=True, nogil=True)
def _tracked_top(g, vv, level, j, a, w, y, z):
    """:func:`top_psd` of ``g`` warm-started from the last two top eigenvectors of its run.

    ``vv`` ``(2, n)``: the top eigenvector of the previous row and of the one before
    (signs aligned); ``level[j]``: how many of them exist. With two, the linear
    extrapolation ``2 v_1 - v_2`` (normalized) starts the solve where its residual is the
    smaller, which cuts the inverse-iteration solves of a smooth trajectory; an
    oscillating one keeps ``v_1``.
    """
    n = g.shape[0]
    cur = vv[0]
    if level[j] >= 1:
        for i in range(n):
            z[i] = cur[i]
    theta, r = 0.0, -1.0  # not yet computed: top_psd does it
    if level[j] >= 2:
        nrm = 0.0
        for i in range(n):
            y[i] = 2.0 * cur[i] - vv[1, i]
            nrm += y[i] * y[i]
        nrm = math.sqrt(nrm)
        if nrm > 0.0:
            for i in range(n):
                y[i] /= nrm
            t_pred, r_pred = _rayleigh(g, y, w)
            theta, r = _rayleigh(g, cur, w)
            if r_pred < r:  # start from the extrapolation; its quotient and residual are known
                theta, r = t_pred, r_pred
                for i in range(n):
                    cur[i] = y[i]
    val, cert = top_psd(g, cur, level[j] >= 1, a, w, y, theta, r)
    if level[j] >= 1:
        dot = 0.0
        for i in range(n):
            dot += cur[i] * z[i]
        if dot < 0.0:
            for i in range(n):
                cur[i] = -cur[i]
        for i in range(n):
            vv[1, i] = z[i]
    level[j] = min(level[j] + 1, 2)
    return val, cert


@njit(cache=True, nogil=True)
def _mul(a, b, out):
    """``out = a @ b`` for small C-contiguous 2-D arrays (no BLAS call overhead)."""
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = 0.0
        for k in range(a.shape[1]):
            aik = a[i, k]
            for j in range(b.shape[1]):
                out[i, j] += aik * b[k, j]


@njit(cache=True, nogil=True)
def _gram(w, out):
    """The smaller Gram matrix of ``w``, ``w^T w`` or ``w w^T``, into ``out`` (BLAS, then symmetrized)."""
    r, c = w.shape
    if c <= r:
        out[:, :] = np.dot(w.T, w)
    else:
        out[:, :] = np.dot(w, w.T)
    n = out.shape[0]
    for i in range(n):  # exactly symmetric (the product's halves may round apart)
        for j in range(i):
            out[j, i] = out[i, j]


@njit(cache=True, nogil=True)
def gn_block(snaps, rows, active, dims, offs, route, vecs0, vecs1, warm, out, flag):
    """``2 lambda_max(S)`` of ``snaps[t, b]`` for ``t`` in ``rows`` and ``b`` with ``active[t, b]``.

    ``snaps`` ``(S, B, N)`` holds consecutive iterations; rows are taken in order, so
    ``vecs0`` ``(B, 2, n_0)``, ``vecs1`` ``(B, 2, n_1)`` and ``warm`` ``(B, 2)`` carry each
    run's top eigenvectors of its (one or two) matrices from one row to the next and from
    one call to the next (:func:`_tracked_top`); ``n_0``, ``n_1``: the matrices' orders
    (the two Gram matrices for ``L = 2``, ``S`` and 1 otherwise). Writes ``out[t, b]``
    and ``flag[t, b]``: 0 certified (or a closed form), 1 from LAPACK, 2 not evaluated
    here (products near float64's limits: the caller's rescaled route), 3 non-finite (NaN).
    """
    nl = dims.shape[0] - 1
    d0 = dims[0]
    dl = dims[nl]
    n0 = vecs0.shape[2]
    n1 = vecs1.shape[2]
    # contiguous scratch of the exact orders: the inner loops vectorize
    g0, a0 = np.empty((n0, n0)), np.empty((n0, n0))
    g1, a1 = np.empty((n1, n1)), np.empty((n1, n1))
    w0, y0, z0 = np.empty(n0), np.empty(n0), np.empty(n0)
    w1, y1, z1 = np.empty(n1), np.empty(n1), np.empty(n1)
    mw = 1
    for i in range(nl + 1):
        mw = max(mw, dims[i])
    pre = np.empty((nl + 1, mw, d0))  # pre[k] = B_{k+1} = W_k ... W_1 (k >= 1)
    suf = np.empty((nl + 1, dl, mw))  # suf[k] = A_k = W_L ... W_{k+1} (k <= L - 1)
    gb = np.empty((d0, d0))
    ga = np.empty((dl, dl))
    vb, va, nb2 = np.empty(mw), np.empty(mw), np.empty(nl + 1)
    for t in rows:
        for b in range(snaps.shape[1]):
            if not active[t, b]:
                continue
            wb = snaps[t, b]
            f = _screen(wb, dims, offs)
            if f != 0:
                out[t, b], flag[t, b] = np.nan, f
                continue
            if route == ROUTE_TWO:
                _gram(wb[offs[0] : offs[1]].reshape(dims[1], d0), g0)
                _gram(wb[offs[1] : offs[2]].reshape(dl, dims[1]), g1)
                v0, c0 = _tracked_top(g0, vecs0[b], warm[b], 0, a0, w0, y0, z0)
                v1, c1 = _tracked_top(g1, vecs1[b], warm[b], 1, a1, w1, y1, z1)
                out[t, b], flag[t, b] = 2.0 * (v0 + v1), 0 if c0 and c1 else 1
            elif route == ROUTE_SCALAR:
                out[t, b], flag[t, b] = 2.0 * _scalar_top(wb, dims, offs, vb, va, nb2), 0
            else:
                _products(wb, dims, offs, pre, suf)
                _dense_s(dims, pre, suf, gb, ga, g0)
                v0, c0 = _tracked_top(g0, vecs0[b], warm[b], 0, a0, w0, y0, z0)
                out[t, b], flag[t, b] = 2.0 * v0, 0 if c0 else 1


@njit(cache=True, nogil=True)
def _screen(wb, dims, offs):
    """The flag of one parameter vector: 0 plain, 3 non-finite, 2 near float64's limits.

    2: its products may leave float64's comfortable range (the test of
    :func:`dmfsharp.s_arrays.gauss_newton_top_batch`: ``sum_i 2 |e_i| + 2 log2(max(d_i,
    d_{i-1}) + 1) >= PLAIN_RANGE_BITS``, ``e_i`` the binary exponent of ``max |W_i|``).
    """
    # on the bit patterns: for |x| (sign bit cleared) the integer order is the float order,
    # and inf/NaN lie above every finite value, so one integer max per factor (which
    # vectorizes) gives both the largest magnitude and the finiteness test
    bits = 0.0
    wi = wb.view(np.int64)
    for i in range(dims.shape[0] - 1):
        top = 0
        for q in range(offs[i], offs[i + 1]):
            top = max(top, wi[q] & ABS_MASK)
        if top >= INF_BITS:
            return 3
        e = 0 if top == 0 else (top >> 52) - 1022  # frexp's exponent (subnormals: far anyway)
        bits += 2.0 * abs(e) + 2.0 * math.log2(max(dims[i + 1], dims[i]) + 1.0)
    return 2 if bits >= PLAIN_RANGE_BITS else 0


@njit(cache=True, nogil=True)
def _products(wb, dims, offs, pre, suf):
    """Prefix products ``pre[k] = B_{k+1} = W_k ... W_1`` and suffixes ``suf[k] = A_k = W_L ... W_{k+1}``."""
    nl = dims.shape[0] - 1
    d0, dl = dims[0], dims[nl]
    pre[1, : dims[1], :] = wb[offs[0] : offs[1]].reshape(dims[1], d0)
    for k in range(2, nl):
        wk = wb[offs[k - 1] : offs[k]].reshape(dims[k], dims[k - 1])
        _mul(wk, pre[k - 1, : dims[k - 1], :], pre[k, : dims[k], :])
    suf[nl - 1, :, : dims[nl - 1]] = wb[offs[nl - 1] : offs[nl]].reshape(dl, dims[nl - 1])
    for k in range(nl - 2, 0, -1):
        wk1 = wb[offs[k] : offs[k + 1]].reshape(dims[k + 1], dims[k])
        _mul(suf[k + 1, :, : dims[k + 1]], wk1, suf[k, :, : dims[k]])


@njit(cache=True, nogil=True)
def _scalar_top(wb, dims, offs, vb, va, nb2):
    """Theorem 4: ``lambda_max(S) = sum_k ||B_k||^2 ||A_k||^2`` (``d_0 = d_L = 1``; ``B_1 = A_L = 1``).

    ``B_k = W_{k-1} ... W_1`` is a column and ``A_k = W_L ... W_{k+1}`` a row: two passes of
    matrix-vector products over the flat parameters (``vb``, ``va``: scratch of the widest
    layer; ``nb2[k] = ||B_k||^2``). The products run along rows of each ``W`` (the
    suffix pass) or with four independent partial sums (the prefix pass), so neither is
    one long chain of dependent additions.
    """
    nl = dims.shape[0] - 1
    nb2[1] = 1.0
    d = dims[1]
    for i in range(d):  # B_2 = W_1, a column of d_1
        vb[i] = wb[offs[0] + i]
    for k in range(2, nl + 1):
        acc = 0.0
        for i in range(d):
            acc += vb[i] * vb[i]
        nb2[k] = acc
        if k == nl:
            break
        rows, cols, o = dims[k], dims[k - 1], offs[k - 1]
        for i in range(rows):  # va as scratch: W_k B_k
            s0 = s1 = s2 = s3 = 0.0
            base = o + i * cols
            j = 0
            while j + 4 <= cols:
                s0 += wb[base + j] * vb[j]
                s1 += wb[base + j + 1] * vb[j + 1]
                s2 += wb[base + j + 2] * vb[j + 2]
                s3 += wb[base + j + 3] * vb[j + 3]
                j += 4
            while j < cols:
                s0 += wb[base + j] * vb[j]
                j += 1
            va[i] = (s0 + s1) + (s2 + s3)
        for i in range(rows):
            vb[i] = va[i]
        d = rows
    # suffix: A_{L-1} = W_L (a row of d_{L-1}); A_{k-1} = A_k W_k
    d = dims[nl - 1]
    for j in range(d):
        va[j] = wb[offs[nl - 1] + j]
    lam = nb2[nl]  # k = L: ||B_L||^2 ||A_L||^2, A_L = 1
    for k in range(nl - 1, 0, -1):
        acc = 0.0
        for j in range(d):
            acc += va[j] * va[j]
        lam += nb2[k] * acc
        if k == 1:
            break
        rows, cols, o = dims[k], dims[k - 1], offs[k - 1]
        for j in range(cols):
            vb[j] = 0.0
        for i in range(rows):  # vb as scratch: A_k W_k, along rows of W_k
            ai = va[i]
            base = o + i * cols
            for j in range(cols):
                vb[j] += ai * wb[base + j]
        for j in range(cols):
            va[j] = vb[j]
        d = cols
    return lam


@njit(cache=True, nogil=True)
def _dense_s(dims, pre, suf, gb, ga, s):
    """``S = sum_k (B_k^T B_k) kron (A_k A_k^T)`` into ``s`` (row ``i d_L + p``; eq. 57, ``F = I``)."""
    nl = dims.shape[0] - 1
    d0, dl = dims[0], dims[nl]
    s[:, :] = 0.0
    for k in range(1, nl + 1):
        if k >= 2:
            _gram_cols(pre[k - 1, : dims[k - 1], :], gb)
        else:
            gb[:, :] = 0.0
            for i in range(d0):
                gb[i, i] = 1.0
        if k <= nl - 1:
            _gram_cols(suf[k, :, : dims[k]].T, ga)  # A_k A_k^T
        else:
            ga[:, :] = 0.0
            for i in range(dl):
                ga[i, i] = 1.0
        for i in range(d0):
            for p in range(dl):
                row = i * dl + p
                for j in range(d0):
                    gij = gb[i, j]
                    for q in range(dl):
                        s[row, j * dl + q] += gij * ga[p, q]


@njit(cache=True, nogil=True)
def _gram_cols(x, out):
    """``out = x^T x`` (small, any layout)."""
    for i in range(x.shape[1]):
        for j in range(x.shape[1]):
            acc = 0.0
            for q in range(x.shape[0]):
                acc += x[q, i] * x[q, j]
            out[i, j] = acc
