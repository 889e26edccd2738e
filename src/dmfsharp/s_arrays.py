r"""Theorem 5's Gauss-Newton ``lambda_max`` from raw factor arrays: the per-step tracker's route.

A GD engine holds validated float64 factors; tracking ``2 lambda_max(K^T K)`` at every
step (issue 13) should cost no chain, no validation and, where possible, no Python-level
loop over steps. :func:`gauss_newton_top_of_arrays` evaluates one chain (warm-started
where ``S`` needs the iterative route); :func:`gauss_newton_top_batch` evaluates many in
batched LAPACK calls (Theorem 4, Corollary 6, the dense ``S``). Both agree with
:func:`dmfsharp.s_matrix.gauss_newton_top` and fall back to it (exact rescaling) for
factors near float64's limits.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Theorem 4, Theorem 5, Corollary 6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .chain import FactorChain
from .errors import Float64OverflowError
from .linalg.kron import DENSE_S_MAX, top_of_grams
from .objective import Objective
from .s_matrix import PLAIN_RANGE_BITS, SIGMA_DENSE_MAX, gauss_newton_top, sigma_max_sq, stream_grams

__all__ = ["gauss_newton_top_of_arrays", "gauss_newton_top_batch"]


def _top_gram_eig(w: np.ndarray) -> float:
    if min(w.shape) > SIGMA_DENSE_MAX:
        return sigma_max_sq(w)
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return float(np.linalg.eigvalsh(g)[-1]) if g.shape[0] > 1 else float(g[0, 0])


def gauss_newton_top_of_arrays(
    factors: Sequence[np.ndarray], v0: np.ndarray | None = None
) -> tuple[float, np.ndarray | None]:
    """``(2 lambda_max(S), x)`` of raw float64 factors ``[W_1, ..., W_L]`` (``F = I``, ``c = 1``).

    For callers that hold validated arrays already (a GD engine's factors at every step):
    no validation, no chain. Theorem 4 for ``d_0 = d_L = 1``, Corollary 6 for ``L = 2``,
    the dense ``S`` up to :data:`~dmfsharp.linalg.kron.DENSE_S_MAX`, else the certified
    iterative route warm-started from ``v0`` (the previous call's ``x``, the top
    eigenvector of ``S`` as a column-major ``vec``; None where not used). Factors whose
    products approach float64's limits go through :func:`gauss_newton_top` (rescaled).
    """
    L = len(factors)
    d0, dl = factors[0].shape[1], factors[-1].shape[0]
    obj = Objective(FactorChain(list(factors))) if _needs_scaling(factors) else None
    if obj is not None:
        return gauss_newton_top(obj), None
    if d0 == dl == 1:
        gb, ga = stream_grams(list(factors), None)
        lam = sum(
            (1.0 if b is None else float(b[0, 0])) * (1.0 if a is None else float(a[0, 0]))
            for b, a in zip(gb, ga)
        )
        return 2.0 * lam, None
    if L == 2:
        return 2.0 * (_top_gram_eig(factors[0]) + _top_gram_eig(factors[1])), None
    gb, ga = stream_grams(list(factors), None)
    pairs = list(zip(gb, ga))
    if d0 * dl <= DENSE_S_MAX:  # small: S itself (no allocation check needed at this size)
        s4 = np.zeros((d0, dl, d0, dl))
        for b, a in pairs:
            s4 += (np.eye(d0) if b is None else b)[:, None, :, None] * (np.eye(dl) if a is None else a)[
                None, :, None, :
            ]
        return 2.0 * float(np.linalg.eigvalsh(s4.reshape(d0 * dl, d0 * dl))[-1]), None
    lam, x = top_of_grams(pairs, d0, dl, "auto", want_vector=True, v0=v0)
    return 2.0 * lam, x


def gauss_newton_top_batch(stacks: Sequence[np.ndarray]) -> np.ndarray | None:
    """``2 lambda_max(S)`` of ``T`` chains at once; ``stacks[i]``: ``W_{i+1}`` of each, ``(T, d_{i+1}, d_i)``.

    Batched LAPACK calls instead of ``T`` Python-level ones, for the routes that have no
    iteration: Theorem 4 (``d_0 = d_L = 1``), Corollary 6 (``L = 2``) and the dense ``S``
    up to :data:`~dmfsharp.linalg.kron.DENSE_S_MAX`. Returns None where the iterative
    route is needed (call :func:`gauss_newton_top_of_arrays` per chain, warm-started).
    Chains with non-finite entries, or whose value overflows float64, get NaN; chains
    whose products near float64's limits go through the rescaled route one by one.
    """
    L = len(stacks)
    T = stacks[0].shape[0]
    d0, dl = stacks[0].shape[2], stacks[-1].shape[1]
    if not (d0 == dl == 1 or L == 2 or d0 * dl <= DENSE_S_MAX):
        return None
    if L == 2 and max(min(w.shape[1:]) for w in stacks) > SIGMA_DENSE_MAX:
        return None
    out = np.full(T, np.nan)
    ok = np.ones(T, dtype=bool)
    bits = np.zeros(T)
    for w in stacks:
        top = np.max(np.abs(w), axis=(1, 2)) if w.size else np.zeros(T)
        ok &= np.isfinite(top)
        bits += 2 * np.abs(np.frexp(np.where(np.isfinite(top), top, 0.0))[1]) + 2 * np.log2(
            max(w.shape[1:]) + 1.0
        )
    scaled = ok & (bits >= PLAIN_RANGE_BITS)
    for t in np.flatnonzero(scaled):
        try:
            out[t] = gauss_newton_top_of_arrays([w[t] for w in stacks])[0]
        except Float64OverflowError:  # a diverging run: no float64 value (NaN, as non-finite)
            pass
    plain = ok & ~scaled
    if not np.any(plain):
        return out
    ws = [w[plain] for w in stacks]
    if L == 2:
        lam = np.zeros(int(plain.sum()))
        for w in ws:
            g = w @ w.transpose(0, 2, 1) if w.shape[1] <= w.shape[2] else w.transpose(0, 2, 1) @ w
            lam += np.linalg.eigvalsh(g)[:, -1]
        out[plain] = 2.0 * lam
        return out
    gb: list[np.ndarray | None] = [None] * L
    ga: list[np.ndarray | None] = [None] * L
    b = None
    for k in range(1, L):
        b = ws[0] if k == 1 else ws[k - 1] @ b
        gb[k] = b.transpose(0, 2, 1) @ b
    a = None
    for k in range(L - 2, -1, -1):
        a = ws[L - 1] if k == L - 2 else a @ ws[k + 1]
        ga[k] = a @ a.transpose(0, 2, 1)
    m = ws[0].shape[0]
    if d0 == dl == 1:
        lam_1 = sum(
            (np.ones(m) if x is None else x[:, 0, 0]) * (np.ones(m) if y is None else y[:, 0, 0])
            for x, y in zip(gb, ga)
        )
        out[plain] = 2.0 * lam_1
        return out
    s5 = np.zeros((m, d0, dl, d0, dl))
    for x, y in zip(gb, ga):
        xb = np.broadcast_to(np.eye(d0), (m, d0, d0)) if x is None else x
        ya = np.broadcast_to(np.eye(dl), (m, dl, dl)) if y is None else y
        s5 += xb[:, :, None, :, None] * ya[:, None, :, None, :]
    out[plain] = 2.0 * np.linalg.eigvalsh(s5.reshape(m, d0 * dl, d0 * dl))[:, -1]
    return out


def _needs_scaling(factors: Sequence[np.ndarray]) -> bool:
    bits = 0.0
    for w in factors:
        top = max(float(w.max()), -float(w.min())) if w.size else 0.0
        if not math.isfinite(top):
            return False  # non-finite factors: no rescaling can help (the caller sees NaN)
        bits += 2 * abs(math.frexp(top)[1]) + 2 * math.log2(max(w.shape) + 1.0)
    return bits >= PLAIN_RANGE_BITS
