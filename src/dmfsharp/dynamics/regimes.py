r"""Regimes of a training run, detected from its traces with stated definitions.

Notation: ``l_k`` the loss at iteration ``k``, ``lambda_k`` the exact Gauss-Newton
``lambda_max(2 K^T K)`` (Theorem 5's expression, exact at every point, eq. 57) at the
tracked iterations, ``theta = 2 / eta`` the stability threshold of GD with step ``eta``,
``b`` the relative ``band`` (default 0.1).

- **Progressive sharpening** (Cohen et al. 2021): before ``lambda`` first enters the
  band (``lambda_k >= (1 - b) theta``, or up to the end if it never does), it rises by
  at least a factor ``1 + rise`` (``rise`` default 0.5) from its minimum so far, the minimum
  coming first. Reported: ``start``, ``end`` iterations and ``lambda`` there.
- **Edge of stability**: the longest stretch of consecutive tracked iterations with
  ``|lambda_k - theta| <= b theta``, at least ``min_steps`` long (default 50), over which
  the loss falls (``l_end < l_start``) while not monotonically (at least 10% of its
  steps go up). Reported: ``start``, ``end``, the mean of ``lambda_k eta / 2`` and the
  fraction of rising steps.
- **Catapult** (Lewkowycz et al. 2020): the loss rises to at least ``factor`` (default
  2) times its running minimum ``m``, later falls back to ``<= m`` and then stays below
  ``factor`` times its new running minimum for ``settle`` (default 20) iterations (a loss
  that keeps spiking is an orbit or the edge, not a catapult). Reported: the
  number of such events and the first one (``start``, ``peak``, ``end``, peak ratio,
  ``lambda`` before and after: a catapult lowers the sharpness).
- **Periodic orbit**: GD continued from the final point for ``2 p_max`` steps (default
  ``p_max = 16``) repeats with period ``p >= 2``: ``||w_{j+p} - w_j|| <= tol max ||w||``
  for every ``j <= p_max`` (``tol`` default 1e-6), ``p`` the smallest such, and the run is
  not at a fixed point. Reported: ``p``, the oscillation's amplitude
  ``max_j ||P_j - mean P|| / ||mean P||`` and its singular subspace: the left/right
  singular vectors of the deviations ``P_j - mean P`` (rank ``r``), and their overlaps
  ``||U_top^T U_osc||_F^2 / r`` with the top-``r`` singular vectors of ``mean P`` (1: the
  oscillation lives in the top singular subspace, as Ghosh et al. 2025 describe beyond
  the edge).
- **Divergence**: the loop's divergence rule (loss NaN, inf or above ``1e20`` times
  the loss scale); reported as the run's status.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "progressive_sharpening",
    "edge_of_stability",
    "catapults",
    "periodic_orbit",
    "orbit_subspace",
]


def _tracked(iters: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(lam)
    return iters[ok], lam[ok]


def progressive_sharpening(
    lam: np.ndarray, eta: float, *, band: float = 0.1, rise: float = 0.5
) -> dict[str, Any] | None:
    """Progressive sharpening of a ``lambda`` trace (NaN gaps allowed); see the module docstring.

    Parameters
    ----------
    lam : ndarray, shape (T + 1,)
        Gauss-Newton ``lambda_max`` per iteration (NaN where not tracked).
    eta : float
        The step size.
    band, rise : float
        The edge band and the required relative rise.

    Returns
    -------
    dict or None
        ``start``, ``end``, ``lambda_start``, ``lambda_end`` when detected.
    """
    its, v = _tracked(np.arange(lam.size), lam)
    if v.size < 2:
        return None
    theta = 2.0 / eta
    inside = np.flatnonzero(v >= (1.0 - band) * theta)
    stop = int(inside[0]) + 1 if inside.size else v.size
    pre = v[:stop]
    if pre.size < 2:
        return None
    runmin_idx = np.zeros(pre.size, int)
    for i in range(1, pre.size):
        runmin_idx[i] = i if pre[i] < pre[runmin_idx[i - 1]] else runmin_idx[i - 1]
    ratio = pre / np.maximum(pre[runmin_idx], np.finfo(float).tiny)
    end = int(np.argmax(ratio))
    if ratio[end] < 1.0 + rise:
        return None
    start = int(runmin_idx[end])
    return {
        "start": int(its[start]),
        "end": int(its[end]),
        "lambda_start": float(pre[start]),
        "lambda_end": float(pre[end]),
    }


def edge_of_stability(
    loss: np.ndarray, lam: np.ndarray, eta: float, *, band: float = 0.1, min_steps: int = 50
) -> dict[str, Any] | None:
    """Edge of stability: ``lambda`` near ``2 / eta`` while the loss falls non-monotonically.

    Parameters
    ----------
    loss, lam : ndarray, shape (T + 1,)
        Loss and Gauss-Newton ``lambda_max`` per iteration (NaN where not tracked).
    eta, band : float
        Step size and relative band around ``2 / eta``.
    min_steps : int
        Shortest stretch (in tracked iterations) that counts.

    Returns
    -------
    dict or None
        ``start``, ``end``, ``mean_lambda_eta_half``, ``loss_rising_fraction``.
    """
    its, v = _tracked(np.arange(lam.size), lam)
    if v.size == 0:
        return None
    theta = 2.0 / eta
    near = np.abs(v - theta) <= band * theta
    best = (0, -1)
    run_start = None
    for i, flag in enumerate(np.append(near, False)):
        if flag and run_start is None:
            run_start = i
        elif not flag and run_start is not None:
            if i - run_start > best[1] - best[0] + 1:
                best = (run_start, i - 1)
            run_start = None
    a, b = best
    if b - a + 1 < min_steps:
        return None
    seg = loss[its[a] : its[b] + 1]
    seg = seg[np.isfinite(seg)]
    if seg.size < 3:
        return None
    rising = float(np.mean(np.diff(seg) > 0))
    if not (seg[-1] < seg[0] and rising >= 0.1):
        return None
    return {
        "start": int(its[a]),
        "end": int(its[b]),
        "mean_lambda_eta_half": float(np.mean(v[a : b + 1]) * eta / 2.0),
        "loss_rising_fraction": rising,
    }


def catapults(
    loss: np.ndarray, lam: np.ndarray, *, factor: float = 2.0, settle: int = 20, converged: bool = False
) -> dict[str, Any] | None:
    """Catapults of a loss trace: rises to ``factor`` times the running minimum, then back.

    An event counts only when the loss then stays below ``factor`` times its new running
    minimum for ``settle`` iterations (or until the run ends): a loss that keeps
    spiking is an oscillation (an orbit or the edge of stability), not a catapult.

    Parameters
    ----------
    loss : ndarray, shape (T + 1,)
        Loss per iteration (NaN after the end).
    lam : ndarray, shape (T + 1,)
        Gauss-Newton ``lambda_max`` per iteration (NaN where not tracked).
    factor : float
        The rise that counts, relative to the running minimum.
    settle : int
        Iterations without a new rise that end a catapult (fewer suffice when the run
        converged before they elapsed, ``converged=True``).
    converged : bool
        Whether the run ended by convergence.

    Returns
    -------
    dict or None
        ``count`` and ``first`` (``start``, ``peak``, ``end``, ``peak_ratio``,
        ``lambda_before``, ``lambda_after``: the last tracked values at or before
        ``start`` and at or after ``end``).
    """
    vals = loss[np.isfinite(loss)]
    events = []
    k = 0
    n = vals.size
    while k < n:
        runmin = np.minimum.accumulate(vals[k:])
        up = np.flatnonzero(vals[k:] >= factor * runmin)
        if not up.size:
            break
        rise = k + int(up[0])
        level = float(runmin[rise - k])
        start = k + int(np.argmin(vals[k : rise + 1]))
        back = np.flatnonzero(vals[rise:] <= level)
        if not back.size:
            break
        end = rise + int(back[0])
        after = vals[end : end + settle + 1]
        complete = after.size == settle + 1 or converged
        if complete and np.all(after < factor * np.minimum.accumulate(after)):
            peak = rise + int(np.argmax(vals[rise : end + 1]))
            events.append((start, peak, end, float(vals[peak] / max(level, np.finfo(float).tiny))))
        k = end + 1
    if not events:
        return None
    start, peak, end, ratio = events[0]
    its, v = _tracked(np.arange(lam.size), lam)
    before = v[its <= start]
    after_lam = v[its >= end]
    return {
        "count": len(events),
        "first": {
            "start": start,
            "peak": peak,
            "end": end,
            "peak_ratio": ratio,
            "lambda_before": float(before[-1]) if before.size else None,
            "lambda_after": float(after_lam[0]) if after_lam.size else None,
        },
    }


def periodic_orbit(states: np.ndarray, *, max_period: int = 16, tol: float = 1e-6) -> int | None:
    """The smallest period ``p`` in ``2 .. max_period`` of a sequence of states, or None.

    Parameters
    ----------
    states : ndarray, shape (2 max_period + 1, N)
        ``w_0 ... w_{2 p_max}`` of GD continued from a run's final point.
    max_period : int
        ``p_max``.
    tol : float
        Relative tolerance on ``||w_{j+p} - w_j||``.

    Returns
    -------
    int or None
        ``p``, or None for a fixed point (``p = 1``) or no period up to ``p_max``.

    Examples
    --------
    >>> import numpy as np
    >>> periodic_orbit(np.array([[1.0], [2.0], [3.0]] * 11), max_period=16)
    3
    """
    scale = tol * max(float(np.max(np.linalg.norm(states, axis=1))), np.finfo(float).tiny)
    if not np.all(np.isfinite(states)):
        return None
    for p in range(1, max_period + 1):
        gaps = np.linalg.norm(states[p : p + max_period + 1] - states[: max_period + 1], axis=1)
        if gaps.size and np.all(gaps <= scale):
            return None if p == 1 else p
    return None


def orbit_subspace(products: np.ndarray) -> dict[str, Any]:
    """Singular subspace of an oscillation of the end-to-end product over one period.

    Parameters
    ----------
    products : ndarray, shape (p, d_L, d_0)
        ``P_j`` over one period.

    Returns
    -------
    dict
        ``rank`` of the deviations ``P_j - mean P``, ``amplitude`` (relative), and
        ``left_overlap``, ``right_overlap`` with the top-``rank`` singular subspaces of
        ``mean P`` (1 = inside them).
    """
    mean = products.mean(axis=0)
    dev = products - mean
    u_m, s_m, vt_m = np.linalg.svd(mean)
    left = np.concatenate(list(dev), axis=1)
    right = np.concatenate(list(dev), axis=0)
    u_l, s_l, _ = np.linalg.svd(left, full_matrices=False)
    _, s_r, vt_r = np.linalg.svd(right, full_matrices=False)
    top = s_l[0] if s_l.size else 0.0
    rank = int(np.sum(s_l > 1e-8 * top)) if top > 0 else 0
    norm_mean = float(np.linalg.norm(mean)) or 1.0
    out: dict[str, Any] = {
        "rank": rank,
        "amplitude": float(max(np.linalg.norm(d) for d in dev) / norm_mean),
        "left_overlap": None,
        "right_overlap": None,
    }
    if rank:
        out["left_overlap"] = float(np.linalg.norm(u_m[:, :rank].T @ u_l[:, :rank]) ** 2 / rank)
        out["right_overlap"] = float(np.linalg.norm(vt_m[:rank] @ vt_r[:rank].T) ** 2 / rank)
    return out
