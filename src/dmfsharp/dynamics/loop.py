r"""The gradient-descent loop: several step sizes from one start, a typed trace back.

:func:`gradient_descent` runs GD on eq. 15,
``w_{k+1} = w_k - eta grad L(w_k)`` with ``grad_{W_i} L = -2 A_i^T (M - P) B_i^T``,
for every step size at once on one engine (:mod:`dmfsharp.dynamics.engines`) and
returns a :class:`GDTrace`: per-iteration loss, squared distance to a reference point
and coordinates on a plane, and per run the iteration and reason it stopped.

Stopping, checked every few iterations (the check period does not change any number):

- ``"diverged"``: the loss overflowed, became NaN, or exceeded ``1e20 ||M||_F^2``; that
  run's trace ends at the last finite iteration and it is frozen (reset to the
  reference so no inf/NaN enters the shared arithmetic); the others go on.
- ``"converged"``: ``L(w_k) <= converge_tol ||M||_F^2``, and (escape experiments) the
  run has been farther than ``escape_threshold ||w*||`` from the reference ``w*``;
  the run is frozen in place, so its trace rows repeat from there.
- ``"max_iterations"``: the budget ran out.

Trackers (:class:`Tracker`) observe the factors of the active runs every so many
iterations; :func:`gradient_descent` offers the two of the escape experiments, the
exact Gauss-Newton ``lambda_max`` and the full Hessian's (warm-started Lanczos).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..chain import FactorsLike, as_chain, check_target
from ..validate import check_weight_decay
from .engines import GDEngine, make_engine, resolve_engine
from .inputs import nonnegative_float, positive_array, positive_float, positive_int
from .tracking import GaussNewtonTracker, HessianTracker, Tracker, tracked_arrays

__all__ = ["GDTrace", "LoopOutput", "gradient_descent", "run_loop", "STOP_REASONS"]

#: Possible values of :attr:`GDTrace.stop_reason` entries.
STOP_REASONS = ("max_iterations", "converged", "diverged")

#: A loss above this multiple of ``||M||_F^2`` is divergence.
DIVERGENCE_FACTOR = 1e20
#: Divergence/convergence are checked every this many iterations.
CHECK_EVERY = 8


@dataclass(frozen=True, eq=False)
class GDTrace:
    """What :func:`gradient_descent` returns: ``B`` runs from one start.

    Attributes
    ----------
    etas : ndarray, shape (B,)
        The step sizes.
    loss, normalized_loss : ndarray, shape (T + 1, B)
        ``L(w_k)`` of eq. 15 and ``L(w_k) / ||M||_F^2``; rows after every run stopped
        are NaN.
    distance_sq : ndarray, shape (T + 1, B)
        ``||w_k - w*||^2 / ||w*||^2`` (``w*`` the reference).
    coords : ndarray, shape (T + 1, B, 2)
        Coordinates of ``w_k - w*`` on the plane's two directions.
    stop_iteration : ndarray of int, shape (B,)
        The last iteration of each run.
    stop_reason : tuple of str
        Per run, one of :data:`STOP_REASONS`.
    final : ndarray, shape (B, N)
        Final parameters (``W_1`` first, row-major blocks); a diverged run holds ``w*``.
    target : ndarray, shape (d_L, d_0)
        ``M``.
    target_norm_sq : float
        ``||M||_F^2``.
    track_iterations, gn_lambda_max : ndarray, shapes (K,) and (K, B)
        Exact Gauss-Newton ``lambda_max`` at the tracked iterations (NaN for stopped runs).
    hessian_track_iterations, hessian_lambda_max : ndarray, shapes (K',) and (K', B)
        The full Hessian's ``lambda_max`` at its tracked iterations.
    engine : str
        ``"numpy"`` or ``"numba"``.
    """

    etas: np.ndarray
    loss: np.ndarray
    normalized_loss: np.ndarray
    distance_sq: np.ndarray
    coords: np.ndarray
    stop_iteration: np.ndarray
    stop_reason: tuple[str, ...]
    final: np.ndarray
    target: np.ndarray
    target_norm_sq: float
    track_iterations: np.ndarray
    gn_lambda_max: np.ndarray
    hessian_track_iterations: np.ndarray
    hessian_lambda_max: np.ndarray
    engine: str


@dataclass(frozen=True, eq=False)
class LoopOutput:
    """Raw arrays of :func:`run_loop` (see :class:`GDTrace` for their meaning)."""

    loss: np.ndarray
    distance_sq: np.ndarray
    coords: np.ndarray
    stop_iteration: np.ndarray
    stop_reason: tuple[str, ...]
    final: np.ndarray


def run_loop(
    engine: GDEngine,
    etas: np.ndarray,
    *,
    iterations: int,
    reference: np.ndarray,
    plane: np.ndarray,
    div_limit: float,
    conv_limit: float,
    escape_sq: float | None,
    trackers: Sequence[Tracker] = (),
) -> LoopOutput:
    """Run the GD loop on ``engine`` (already holding the start of every run).

    Parameters
    ----------
    engine : GDEngine
        Built by :func:`dmfsharp.dynamics.engines.make_engine`.
    etas : ndarray, shape (B,)
        Step sizes.
    iterations : int
        The budget ``T``.
    reference : ndarray, shape (N,)
        ``w*`` for the distance and plane traces (and the reset of diverged runs).
    plane : ndarray, shape (2, N)
        Directions of the coordinate traces.
    div_limit, conv_limit : float
        Absolute loss limits of divergence and convergence.
    escape_sq : float or None
        Convergence counts only after ``||w_k - w*||^2 > escape_sq`` (escape
        experiments); None: convergence needs the loss alone.
    trackers : sequence of Tracker
        Called at every multiple of their ``every`` while a run is active, including the
        iteration it converges at (its last row). On a chunked engine a tracker with
        ``buffer(k0, k1)`` and ``block(k0, k1, snapshots, active)`` methods and ``every``
        within the budget is instead handed the parameters of iterations ``k0 .. k1``
        (``(k1 - k0 + 1, B, N)``, written by the kernel into the first such tracker's
        buffer) after each kernel call, and the kernel does not stop for it.

    Returns
    -------
    LoopOutput
    """
    nb = etas.size
    for b in range(nb):
        engine.set_scale(b, 2.0 * etas[b])
    wstar = np.ascontiguousarray(reference, dtype=np.float64)
    wstar_l = np.ascontiguousarray(np.broadcast_to(wstar, engine.params.shape))
    z_l = np.ascontiguousarray(plane, dtype=np.float64)
    tau2 = -1.0 if escape_sq is None else escape_sq
    # rows after the last iteration reached (every run stopped early) stay NaN, never
    # uninitialized memory
    loss_tr = np.full((iterations + 1, nb), np.nan)
    dist_tr = np.full((iterations + 1, nb), np.nan)
    coord_tr = np.full((iterations + 1, nb, 2), np.nan)
    diff = np.empty(engine.params.shape)
    diff3 = diff[:, None, :]
    active = np.ones(nb, bool)
    escaped = np.zeros(nb, bool)
    stop_it = np.full(nb, iterations)
    reason = ["max_iterations"] * nb
    last_check = 0
    chunked = engine.chunked
    # a chunked engine copies every iteration's parameters out for the trackers that take
    # blocks (no return to Python per tracked step); the others stop the kernel. A tracker
    # that observes iteration 0 alone (``every`` beyond the budget) needs no copies: it is
    # called there, and the kernel runs as untracked
    blocks: list[Any] = [t for t in trackers if chunked and hasattr(t, "block") and t.every <= iterations]
    per_step = [t for t in trackers if not any(t is u for u in blocks)]

    def bookkeeping(k: int) -> bool:
        """Checks and tracking at iteration ``k``; True when the loop must end."""
        nonlocal last_check
        seen = active
        if k - last_check >= CHECK_EVERY or k == iterations:
            lo = last_check + 1 if last_check > 0 else 0
            seen = active.copy()
            check_block(lo, k, loss_tr, dist_tr, active, escaped, stop_it, reason, engine, wstar)
            last_check = k
            # a run that converged at k still has iteration k as its last row (a chunked
            # engine's blocks record it too); a diverged one stopped earlier and was reset
            seen &= active | ((stop_it == k) & np.array([r == "converged" for r in reason]))
        if seen.any():
            for tracker in per_step:
                if k % tracker.every == 0:
                    tracker(k, engine, seen)
        return k == iterations or not active.any()

    def check_block(
        lo: int,
        k: int,
        loss_tr: np.ndarray,
        dist_tr: np.ndarray,
        active: np.ndarray,
        escaped: np.ndarray,
        stop_it: np.ndarray,
        reason: list[str],
        engine: GDEngine,
        wstar: np.ndarray,
    ) -> None:
        """Stop diverged runs and runs that (escaped and) converged; freeze them in place."""
        block_loss = loss_tr[lo : k + 1]
        bad = ~(block_loss <= div_limit)  # NaN compares False
        for b in np.flatnonzero(active & bad.any(axis=0)).tolist():
            first = lo + int(np.argmax(bad[:, b]))
            stop_it[b] = max(first - 1, 0)
            reason[b] = "diverged"
            active[b] = False
            engine.set_scale(b, 0.0)
            engine.reset(b, wstar)  # keep NaN/inf out of the shared arithmetic
        escaped |= (dist_tr[lo : k + 1] > tau2).any(axis=0)
        done = active & escaped & (loss_tr[k] <= conv_limit)
        for b in np.flatnonzero(done).tolist():
            stop_it[b] = k
            reason[b] = "converged"
            active[b] = False
            engine.set_scale(b, 0.0)

    vecdot = np.vecdot
    subtract = np.subtract
    with np.errstate(all="ignore"):
        k = 0
        while chunked:
            # one kernel call up to the next check, tracking iteration or the end; then
            # exactly the per-iteration bookkeeping of the loop below at that iteration
            stop = min(iterations, last_check + CHECK_EVERY)
            for tracker in per_step:
                stop = min(stop, -(-k // tracker.every) * tracker.every)
            if not blocks:
                engine.advance(k, stop, k > 0, wstar, z_l, loss_tr, dist_tr, coord_tr)
            else:
                snap = blocks[0].buffer(k, stop)
                engine.advance(k, stop, k > 0, wstar, z_l, loss_tr, dist_tr, coord_tr, snap)
                for tracker in blocks:
                    tracker.block(k, stop, snap, active)
            k = stop
            if bookkeeping(k):
                break
            k += 1
        while not chunked:
            rflat = engine.residual()
            vecdot(rflat, rflat, out=loss_tr[k])
            subtract(engine.params, wstar_l, out=diff)
            vecdot(diff, diff, out=dist_tr[k])
            vecdot(diff3, z_l, out=coord_tr[k])
            if bookkeeping(k):
                break
            engine.step()
            k += 1
    return LoopOutput(
        loss=loss_tr,
        distance_sq=dist_tr,
        coords=coord_tr,
        stop_iteration=stop_it,
        stop_reason=tuple(reason),
        final=engine.params.copy(),
    )


def gradient_descent(
    start: FactorsLike,
    etas: Any,
    *,
    target: Any = None,
    iterations: int = 1000,
    reference: FactorsLike | None = None,
    plane: Any = None,
    escape_threshold: float = 1e-4,
    converge_tol: float = 1e-14,
    track_every: int | None = None,
    track_hessian_every: int | None = None,
    engine: str = "auto",
    weight_decay: float = 0.0,
) -> GDTrace:
    """Run GD on eq. 15 from one start with several step sizes at once.

    Parameters
    ----------
    start : FactorChain or sequence of array_like
        ``w_0``, shared by all runs.
    etas : sequence of float
        Step sizes, one run each.
    target : array_like, optional
        ``M``; defaults to the product of ``reference`` (or of ``start``).
    iterations : int
        Maximum number of GD steps (``>= 0``).
    reference : FactorChain, optional
        ``w*`` for the distance traces; defaults to ``start``.
    plane : array_like, optional
        ``(2, N)`` directions for the ``coords`` traces (zeros if omitted).
    escape_threshold, converge_tol : float
        A run stops (``"converged"``) once ``||w_k - w*|| > escape_threshold ||w*||``
        has happened and ``L(w_k) <= converge_tol ||M||_F^2``.
    track_every, track_hessian_every : int, optional
        Every so many iterations record ``lambda_max(2 K^T K)`` exactly
        (:func:`dmfsharp.sharpness` of the current factors) and the full Hessian's
        ``lambda_max`` (warm-started Lanczos, :func:`dmfsharp.numerical_sharpness`).
    engine : {"auto", "numpy", "numba"}
        ``"numpy"``: batched ``numpy.matmul`` calls, one Python iteration per step.
        ``"numba"``: a compiled kernel that runs all runs through whole chunks of steps
        (between the checks every few iterations and the tracking iterations); needs
        the ``fast`` extra. ``"auto"``: numba if it runs here, else NumPy with a
        warning. Both compute the same arithmetic up to the order of floating-point
        sums, so traces agree to rounding while GD is near ``w*``; after an escape,
        rounding differences can grow (the catapult is chaotic), so exact numbers are
        reproducible per engine.
    weight_decay : float
        ``mu >= 0``: GD on ``L_mu = L + mu sum_k ||W_k||_F^2``, each step
        ``w <- (1 - 2 eta mu) w + 2 eta A^T R B^T`` (PyTorch's ``SGD(lr=eta,
        weight_decay=2 mu)``). The ``loss`` trace stays ``||M - P||_F^2`` (the data term);
        with ``mu > 0`` runs never stop as ``"converged"`` (the minima of ``L_mu`` have a
        nonzero residual), only at the budget or on divergence.

    Returns
    -------
    GDTrace
        The ``B`` runs' traces over iterations ``0 .. T`` (arrays of shape
        ``(T + 1, B)``), their stop iterations and reasons, and the final parameters
        (shape ``(B, N)``).

    Raises
    ------
    ValueError
        For invalid factors, target, step sizes, budget, plane or tracking periods.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (eq. 15, Section 7).

    Examples
    --------
    ``m = w_2 w_1`` from ``(1, 1)`` towards ``m = 2``: the loss ``(2 - w_2 w_1)^2``.

    >>> import numpy as np
    >>> tr = gradient_descent([np.ones((1, 1)), np.ones((1, 1))], [0.05], target=[[2.0]],
    ...                       iterations=3, engine="numpy")
    >>> float(tr.loss[0, 0]), tr.stop_reason
    (1.0, ('max_iterations',))
    """
    start = as_chain(start)
    ref = start if reference is None else as_chain(reference)
    if ref.dims != start.dims:
        raise ValueError(f"reference dims {ref.dims} differ from start dims {start.dims}")
    m = check_target(ref, target) if target is not None else ref.product
    eta = positive_array(etas, "etas")
    iterations = int(positive_int(iterations, "iterations", minimum=0) or 0)
    gn_every = positive_int(track_every, "track_every", optional=True)
    h_every = positive_int(track_hessian_every, "track_hessian_every", optional=True)
    n = start.num_params
    name = resolve_engine(engine)
    wstar = ref.flatten()
    wstar_norm2 = float(wstar @ wstar) or 1.0
    z = np.zeros((2, n)) if plane is None else np.asarray(plane, dtype=np.float64)
    if z.shape != (2, n):
        raise ValueError(f"plane must have shape (2, {n}), got {z.shape}")
    mnorm2 = float(np.vdot(m, m))
    mscale = mnorm2 if mnorm2 > 0 else 1.0
    trackers: list[Any] = []
    gn = GaussNewtonTracker(gn_every, start) if gn_every is not None else None
    hess = HessianTracker(h_every, start, m) if h_every is not None else None
    # order matters only for the chunk ends; GN first as before
    trackers = [t for t in (gn, hess) if t is not None]
    mu = check_weight_decay(weight_decay)
    eng = make_engine(name, np.tile(start.flatten(), (eta.size, 1)), start.dims, m, mu)
    conv = nonnegative_float(converge_tol, "converge_tol") * mscale
    out = run_loop(
        eng,
        eta,
        iterations=iterations,
        reference=wstar,
        plane=z,
        div_limit=DIVERGENCE_FACTOR * mscale,
        conv_limit=-1.0 if mu else conv,
        escape_sq=positive_float(escape_threshold, "escape_threshold") ** 2 * wstar_norm2,
        trackers=trackers,
    )
    gn_it, gn_v = tracked_arrays(gn, eta.size)
    h_it, h_v = tracked_arrays(hess, eta.size)
    return GDTrace(
        etas=eta,
        loss=out.loss,
        normalized_loss=out.loss / mscale,
        distance_sq=out.distance_sq / wstar_norm2,
        coords=out.coords,
        stop_iteration=out.stop_iteration,
        stop_reason=out.stop_reason,
        final=out.final,
        target=m,
        target_norm_sq=mnorm2,
        track_iterations=gn_it,
        gn_lambda_max=gn_v,
        hessian_track_iterations=h_it,
        hessian_lambda_max=h_v,
        engine=name,
    )
