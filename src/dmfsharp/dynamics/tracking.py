"""Observers of a GD run: what the loop records every so many iterations.

A :class:`Tracker` is called by :func:`dmfsharp.dynamics.loop.run_loop` at every multiple
of its ``every`` with the engine (all runs' factors as views) and the active runs.
:class:`SampleTracker`, the one :func:`dmfsharp.dynamics.train.train` uses, also takes
whole blocks of iterations from a chunked engine and evaluates the Gauss-Newton
``lambda_max`` per step by the compiled, certified route of
:mod:`dmfsharp.dynamics.numba_tracking` where numba is installed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..chain import FactorChain
from ..exact import sharpness
from ..gauss_newton import gauss_newton_sharpness
from ..s_arrays import gauss_newton_top_batch, gauss_newton_top_of_arrays
from .engines import GDEngine, numba_available

__all__ = [
    "Tracker",
    "GaussNewtonTracker",
    "HessianTracker",
    "SampleTracker",
    "compiled_tracking",
    "run_factors",
    "tracked_arrays",
    "SAMPLE_STRIDE",
    "EARLY_SAMPLES",
]


class Tracker(Protocol):
    """Something the loop calls every :attr:`every` iterations with the active runs."""

    every: int

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Observe iteration ``k`` of the runs flagged in ``active`` (a ``(B,)`` bool array)."""


def run_factors(engine: GDEngine, like: FactorChain, b: int) -> FactorChain:
    """Run ``b``'s current factors as a chain shaped like ``like``."""
    return like.with_factors([w[b] for w in engine.W])


@dataclass(eq=False)
class GaussNewtonTracker:
    """Exact ``lambda_max(2 K^T K)`` of every active run (Theorem 5's expression, eq. 57).

    Computed as :func:`dmfsharp.sharpness` of the current factors against their own
    product, which is the Gauss-Newton part of the Hessian at any point (Lemma 3).
    """

    every: int
    like: FactorChain
    iterations: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Record iteration ``k``'s value of every active run (NaN for the others)."""
        out = np.full(len(active), np.nan)
        for b in map(int, np.flatnonzero(active)):
            try:
                out[b] = sharpness(run_factors(engine, self.like, b))
            except ValueError:  # non-finite factors
                pass
        self.iterations.append(k)
        self.values.append(out)


@dataclass(eq=False)
class HessianTracker:
    """The full Hessian's ``lambda_max`` of every active run, warm-started Lanczos.

    :func:`dmfsharp.numerical_sharpness` on the analytic Hessian-vector product, each run
    started from its previous top eigenvector; ``options`` are passed on (``data=``,
    ``normalization=`` for a network on data).
    """

    every: int
    like: FactorChain
    target: np.ndarray
    tol: float = 1e-8
    options: dict[str, Any] = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    vectors: dict[int, Any] = field(default_factory=dict)

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Record iteration ``k``'s value of every active run (NaN for the others)."""
        from ..numeric import numerical_sharpness

        out = np.full(len(active), np.nan)
        for b in map(int, np.flatnonzero(active)):
            try:
                chain = run_factors(engine, self.like, b)
                res = numerical_sharpness(
                    chain,
                    target=self.target,
                    method="lanczos",
                    v0=self.vectors.get(b),
                    tol=self.tol,
                    **self.options,
                )
            except (ValueError, ArithmeticError):  # non-finite factors; no convergence
                continue
            out[b] = res.value
            self.vectors[b] = res.vector
        self.iterations.append(k)
        self.values.append(out)


def tracked_arrays(tracker: Any, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """A tracker's iterations ``(K,)`` and values ``(K, B)`` as arrays."""
    its = np.array(getattr(tracker, "iterations", []), dtype=int)
    vals = np.array(getattr(tracker, "values", []), dtype=np.float64).reshape(len(its), nb)
    return its, vals


#: Default ``sample_every`` in units of ``track_every``: odd, so that the edge of
#: stability's period-2 oscillation is not aliased onto one of its two phases.
SAMPLE_STRIDE = 15
#: The first this many tracked iterations are all sampled (the early dynamics, which the
#: figures draw on a log axis).
EARLY_SAMPLES = 90


@dataclass(eq=False)
class SampleTracker:
    """Per-step sharpness tracking: Gauss-Newton ``lambda_max``, singular values of ``P``, balancedness.

    The Gauss-Newton ``lambda_max`` every ``every`` steps, the others at the rows
    :meth:`sampled` selects.

    Writes row ``k`` of preallocated ``(T + 1, B, ...)`` arrays (NaN where not tracked).
    Without data, the sharpness comes from the compiled, warm-started and certified route
    (:mod:`dmfsharp.dynamics.numba_tracking`) at once where ``compiled`` is set and the
    chain has one; otherwise the factors are buffered and evaluated ``chunk`` rows at a
    time by batched LAPACK calls (:func:`dmfsharp.s_arrays.gauss_newton_top_batch`), or
    one by one (:func:`dmfsharp.s_arrays.gauss_newton_top_of_arrays`, warm-started). The
    singular values and balancedness are always buffered and batched. No chain is built
    and nothing is re-validated. On a chunked engine the loop hands over whole blocks of
    iterations (:meth:`block`), so the kernel does not stop for the tracking.
    """

    every: int
    like: FactorChain
    gn: np.ndarray
    singular: np.ndarray
    balance: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    sample_every: int = 1
    compiled: bool = False
    vectors: dict[int, Any] = field(default_factory=dict)
    #: Rows buffered before one batched evaluation.
    chunk: int = 256
    #: The fewest rows the snapshot buffer holds: a chunked engine's longest block (the
    #: loop's check period + 1; :func:`~dmfsharp.dynamics.train.train` sets it).
    min_rows: int = 1
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    rows: int = 0
    #: Values the compiled route took from LAPACK (its certificate was not reached).
    fallbacks: int = 0
    _route: Any = None

    def __post_init__(self) -> None:
        if self.compiled:
            self._route = _compiled_route(self.like.dims, self.gn.shape[1])
        self.compiled = self._route is not None
        nb, n = self.gn.shape[1], self.like.num_params
        # the buffer of consecutive iterations (both routes): up to ``chunk`` rows or 8 MB
        cap = max(self.min_rows, min(self.chunk, (1 << 20) // max(nb * n, 1)))
        self._snap = np.empty((cap, nb, n))
        self._ks = np.zeros(cap, dtype=np.int64)
        self._act = np.zeros((cap, nb), dtype=np.bool_)
        self._used = 0
        self._lent = (-1, 0)

    def buffer(self, k0: int, k1: int) -> np.ndarray:
        """Where the parameters of iterations ``k0 .. k1`` go (a view of ``(k1 - k0 + 1, B, N)``)."""
        m = k1 - k0 + 1
        if m > self._snap.shape[0]:
            raise ValueError(f"a block of {m} iterations exceeds the buffer of {self._snap.shape[0]}")
        if self._used + m > self._snap.shape[0]:
            self._evaluate()
        self._lent = (self._used, m)
        return self._snap[self._used : self._used + m]

    def __call__(self, k: int, engine: GDEngine, active: np.ndarray) -> None:
        """Record iteration ``k`` of the active runs (buffered; :meth:`flush` writes the rest)."""
        flat = getattr(engine, "w", None)
        if self.options or flat is None:  # data: the objective's route, step by step
            for b in map(int, np.flatnonzero(active)):
                self._one(k, b, [w[b] for w in engine.W], engine)
            return
        u = self._used
        if u == self._snap.shape[0]:
            self._evaluate()
            u = 0
        self._snap[u] = flat
        self._ks[u] = k
        self._act[u] = active
        self._used = u + 1

    def block(self, k0: int, k1: int, snapshots: np.ndarray, active: np.ndarray) -> None:
        """Record iterations ``k0 .. k1`` from their parameters ``(k1 - k0 + 1, B, N)``.

        ``snapshots`` is best the view :meth:`buffer` returned (no copy).
        """
        m = k1 - k0 + 1
        if not (snapshots.base is self._snap and self._lent == (self._used, m)):
            self.buffer(k0, k1)[...] = snapshots  # not the view buffer() lent: copy it in
        u = self._used
        self._ks[u : u + m] = np.arange(k0, k1 + 1)
        self._act[u : u + m] = active
        self._used = u + m
        self._lent = (-1, 0)

    def _evaluate(self) -> None:
        """Evaluate the buffered iterations (the compiled route now; the others into :attr:`pending`)."""
        u, self._used = self._used, 0
        if u == 0:
            return
        ks, act, snaps = self._ks[:u], self._act[:u], self._snap[:u]
        if self.compiled:
            self._gn_now(ks, snaps, act)
            keep = np.flatnonzero(self.sampled(ks))
        else:
            keep = np.flatnonzero(ks % self.every == 0)
        if keep.size == 0:
            return
        t, b = np.nonzero(act[keep])
        if t.size:
            self.pending.append((ks[keep][t], b, snaps[keep[t], b]))
            self.rows += t.size
            if self.rows >= self.chunk:
                self._batch()

    def _gn_now(self, ks: np.ndarray, snapshots: np.ndarray, active: np.ndarray) -> None:
        from . import numba_tracking

        gn_block: Any = numba_tracking.gn_block
        rows = np.flatnonzero(ks % self.every == 0)
        if rows.size == 0:
            return
        out = np.full(snapshots.shape[:2], np.nan)
        flag = np.zeros(snapshots.shape[:2], dtype=np.int8)
        gn_block(snapshots, rows, active, *self._route, out, flag)
        act = active[rows]
        self.gn[ks[rows]] = np.where(act, out[rows], self.gn[ks[rows]])
        self.fallbacks += int(np.count_nonzero((flag[rows] == 1) & act))
        for t, b in zip(*np.nonzero((flag[rows] == 2) & act), strict=True):  # near float64's limits
            try:
                self.gn[ks[rows[t]], b] = gauss_newton_top_of_arrays(
                    self.like.unflatten(snapshots[rows[t], b])
                )[0]
            except (ValueError, ArithmeticError):  # a diverging run: no float64 value
                pass

    def sampled(self, ks: np.ndarray) -> np.ndarray:
        """Which of the iterations ``ks`` get singular values and balancedness.

        Every tracked one of the first :data:`EARLY_SAMPLES` tracked iterations (the fast
        early dynamics, drawn on a log axis), then every ``sample_every``-th.
        """
        return (ks % self.sample_every == 0) | ((ks < EARLY_SAMPLES * self.every) & (ks % self.every == 0))

    def _one(self, k: int, b: int, ws: list[np.ndarray], engine: GDEngine) -> None:
        ns = self.singular.shape[2]
        try:
            self.gn[k, b] = gauss_newton_sharpness(run_factors(engine, self.like, b), **self.options)
            if not self.sampled(np.array([k]))[0]:
                return
            product = ws[0]
            for w in ws[1:]:
                product = w @ product
            self.singular[k, b] = np.linalg.svd(product, compute_uv=False)[:ns]
        except (ValueError, ArithmeticError):  # non-finite factors
            return
        for i in range(len(ws) - 1):
            self.balance[k, b, i] = np.linalg.norm(ws[i + 1].T @ ws[i + 1] - ws[i] @ ws[i].T)

    def flush(self) -> None:
        """Evaluate everything buffered and write it."""
        self._evaluate()
        self._batch()

    def _batch(self) -> None:
        """The batched evaluation of :attr:`pending` (sharpness where not compiled, samples)."""
        if not self.pending:
            return
        ks = np.concatenate([p[0] for p in self.pending])
        bs = np.concatenate([p[1] for p in self.pending])
        flat = np.concatenate([p[2] for p in self.pending])
        self.pending, self.rows = [], 0
        dims = self.like.dims
        stacks, off = [], 0
        for i in range(len(dims) - 1):
            n = dims[i + 1] * dims[i]
            stacks.append(flat[:, off : off + n].reshape(-1, dims[i + 1], dims[i]))
            off += n
        ok = np.all(np.isfinite(flat), axis=1)
        if self.compiled:  # written already
            gn = self.gn[ks, bs]
        else:
            gn = gauss_newton_top_batch(stacks)
            if gn is None:  # the iterative route: one by one, each run warm-started
                gn = np.full(len(ks), np.nan)
                for t in np.flatnonzero(ok):
                    try:
                        gn[t], self.vectors[int(bs[t])] = gauss_newton_top_of_arrays(
                            [w[t] for w in stacks], self.vectors.get(int(bs[t]))
                        )
                    except (ValueError, ArithmeticError):
                        pass
            self.gn[ks, bs] = gn
        ns = self.singular.shape[2]
        ok &= np.isfinite(gn)  # as step by step: no samples where the sharpness has no value
        ok &= self.sampled(ks)
        if not np.any(ok):
            return
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run's norms may be inf
            product = stacks[0][ok]
            for w in stacks[1:]:
                product = w[ok] @ product
            self.singular[ks[ok], bs[ok]] = np.linalg.svd(product, compute_uv=False)[:, :ns]
            for i in range(len(stacks) - 1):
                a, c = stacks[i + 1][ok], stacks[i][ok]
                diff = a.transpose(0, 2, 1) @ a - c @ c.transpose(0, 2, 1)
                self.balance[ks[ok], bs[ok], i] = np.linalg.norm(diff, axis=(1, 2))


@functools.cache
def compiled_tracking() -> bool:
    """Whether the compiled Gauss-Newton tracking runs here (numba installed, compiles, caches).

    Checked once per process by evaluating one tiny chain, like
    :func:`dmfsharp.dynamics.engines.numba_problem` for the GD kernel; where it fails,
    the tracking uses batched LAPACK calls and nothing else changes.
    """
    if not numba_available():
        return False
    try:
        from . import numba_tracking

        gn_block: Any = numba_tracking.gn_block
        route: Any = _compiled_route((1, 1, 1), 1)
        out, flag = np.zeros((1, 1)), np.zeros((1, 1), dtype=np.int8)
        one, row, act = np.ones((1, 1, 2)), np.zeros(1, dtype=np.int64), np.ones((1, 1), dtype=np.bool_)
        gn_block(one, row, act, *route, out, flag)
    except Exception:  # noqa: BLE001 - any compile/cache failure means "use LAPACK"
        return False
    return bool(out[0, 0] == 4.0)


def _compiled_route(dims: tuple[int, ...], nb: int) -> tuple[Any, ...] | None:
    """The arguments of :func:`~dmfsharp.dynamics.numba_tracking.gn_block` for ``dims`` (None: no route)."""
    from . import numba_tracking as nt

    L, d0, dl = len(dims) - 1, dims[0], dims[-1]
    two = max(min(dims[0], dims[1]), min(dims[1], dims[-1])) if L == 2 else 0
    if d0 == dl == 1 and L >= 2:
        route, n0, n1 = nt.ROUTE_SCALAR, 1, 1
    elif L == 2 and two <= nt.CERT_MAX:
        route, n0, n1 = nt.ROUTE_TWO, min(dims[0], dims[1]), min(dims[1], dims[2])
    elif L >= 3 and d0 * dl <= nt.CERT_MAX:
        route, n0, n1 = nt.ROUTE_DENSE, d0 * dl, 1
    else:
        return None
    offs = np.cumsum([0] + [dims[i + 1] * dims[i] for i in range(L)]).astype(np.int64)
    vecs0, vecs1 = np.zeros((nb, 2, n0)), np.zeros((nb, 2, n1))
    return np.asarray(dims, dtype=np.int64), offs, route, vecs0, vecs1, np.zeros((nb, 2), dtype=np.int8)
