r"""Gradient descent near a global minimum, batched over step sizes; escape detection.

Section 7 of the paper starts gradient descent (GD) on eq. 15,

.. math::

    w_{k+1} = w_k - \eta \nabla L(w_k), \qquad
    \nabla_{W_i} L = -2 A_i^\top (M - W_L \cdots W_1) B_i^\top ,

at ``w_0 = w* + r v_1`` (``v_1`` the top Hessian eigenvector at the minimum ``w*``,
``r`` between 1e-15 and 1e-9) and observes: with ``eta > 2 / lambda_max`` GD escapes
(the linearization ``w_{k+1} - w* ~ (I - eta H)(w_k - w*)`` grows the ``v_1``
component by ``|1 - eta lambda_max| > 1`` per step), the training loss shows a
catapult, and GD settles on another global minimum; with ``eta <= 2 / lambda_max`` it
comes back.

:func:`escape_experiment` runs several step sizes from the same start in one call: the
factors of all runs are stacked on a leading batch axis and every step is a fixed
sequence of batched ``numpy.matmul`` calls into preallocated buffers (no Python loop
over runs, no allocation per step). With the optional ``fast`` extra (numba) a compiled
kernel runs all runs through whole chunks of steps per call instead
(``engine="numba"``, the default ``"auto"`` picks it when numba is installed).

Escape, precisely
-----------------
Let ``rho_k = ||w_k - w*|| / ||w*||`` (Euclidean norm of all parameters) and ``tau`` the
``escape_threshold`` (default 1e-4): a distance at which the factors have moved by a
relative 1e-4, where the linear theory is still accurate to about that order but the
start (``r / ||w*|| <= 1e-9``) is left far behind. A step size just above the
threshold (``eta lambda_max / 2 = 1.01``, say) can settle on a neighbouring minimum
closer than that; such a run is ``"undecided"`` and a smaller threshold classifies it.

- ``escape_iteration`` is the first ``k`` with ``rho_k > tau``.
- ``"diverged"``: the loss overflowed, became NaN, or exceeded ``1e20 ||M||_F^2``; that
  run stops cleanly (its trace ends there) and the others go on.
- ``"escaped"``: ``rho`` crossed ``tau`` and the run ends outside the ``tau``-ball
  (it did not come back; typically it has landed on another global minimum).
- ``"returned"``: the run ends inside the ``tau``-ball no farther from ``w*`` than it
  started, up to 1%: ``rho_final <= max(1.01 rho_0, 1e-12)`` (the floor is the
  rounding level of ``w*`` itself; the 1% absorbs the rounding drift of a run at
  exactly ``eta = 2 / lambda_max``, where the linear theory is neutral).
- ``"undecided"``: neither (inside the ball but drifting away; a longer budget decides).

The linear-theory prediction of the escape iteration, with the same threshold, is
``log(tau ||w*|| / r_1) / log|1 - eta lambda_max|`` where ``r_1`` is the start's
component along ``v_1`` (``r_1 = r`` for the paper's start along ``v_1``); it is
``None`` when ``eta lambda_max <= 2``.

A run also stops early when it has escaped and its loss is below
``converge_tol ||M||_F^2`` (``stop_reason="converged"``). Where the final loss is below
``minimum_tol ||M||_F^2`` the final point is taken as a global minimum of its own
product and its exact ``lambda_max`` (Theorem 5 via :func:`dmfsharp.sharpness`) is
reported with ``final_is_stable = lambda_max <= 2 / eta``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, check_target
from .errors import NotAMinimumError
from .exact import minimum_residual, sharpness, top_eigenvector

__all__ = [
    "RunResult",
    "EscapeResult",
    "escape_experiment",
    "gradient_descent",
    "start_direction",
    "resolve_engine",
    "numba_available",
    "STATUSES",
    "ENGINES",
]

#: Possible values of :attr:`RunResult.status`.
STATUSES = ("escaped", "returned", "diverged", "undecided")
#: Possible values of :attr:`RunResult.stop_reason`.
STOP_REASONS = ("max_iterations", "converged", "diverged")

_DIVERGENCE_FACTOR = 1e20
_RETURN_FLOOR = 1e-12
_RETURN_SLACK = 1.01
_CHECK_EVERY = 8
#: ``lambda_max <= 2/eta`` is decided up to this relative rounding margin.
_STABLE_RTOL = 1e-9


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class RunResult:
    """One gradient-descent run of :func:`escape_experiment`.

    Scalars
    -------
    eta : float
        The step size.
    step_multiplier : float
        ``eta lambda_max / 2``: 1 is the stability threshold ``eta = 2 / lambda_max``.
    status : str
        ``"escaped"``, ``"returned"``, ``"diverged"`` or ``"undecided"`` (module docstring).
    stop_reason : str
        ``"max_iterations"``, ``"converged"`` (escaped and settled) or ``"diverged"``.
    iterations : int
        GD steps taken; the traces have ``iterations + 1`` entries (``w_0 ... w_T``).
    escape_iteration : int or None
        First ``k`` with ``||w_k - w*|| > escape_threshold ||w*||``.
    predicted_escape_iteration : float or None
        ``log(escape_threshold ||w*|| / r_1) / log|1 - eta lambda_max|`` (linear theory).
    peak_loss, final_loss : float
        The largest loss along the run (the catapult) and the loss at the end, both of
        eq. 15 (unnormalized; divide by ``||M||_F^2`` for the plotted quantity).
    final_lambda_max : float or None
        Exact ``lambda_max`` at the final point when it is a global minimum (its loss is
        below ``minimum_tol ||M||_F^2``), else None.
    final_is_stable : bool or None
        ``final_lambda_max <= 2 / eta``.
    final_factors : FactorChain or None
        The final point; None if the run diverged.

    Traces (arrays over iterations ``k = 0 .. iterations``)
    ------
    normalized_loss : ``L(w_k) / ||M||_F^2``.
    distance_sq : ``||w_k - w*||^2 / ||w*||^2``.
    coords : ``(iterations + 1, 2)`` coordinates of ``w_k - w*`` on the two plane
        directions of the experiment.
    track_iterations, gn_lambda_max : iterations and exact ``lambda_max(2 K^T K)`` (the
        Gauss-Newton part of the Hessian, Lemma 3) when sharpness tracking is on.
    hessian_track_iterations, hessian_lambda_max : iterations and the full Hessian's
        largest eigenvalue (warm-started Lanczos) when Hessian tracking is on.
    """

    eta: float
    step_multiplier: float
    status: str
    stop_reason: str
    iterations: int
    escape_iteration: int | None
    predicted_escape_iteration: float | None
    peak_loss: float
    final_loss: float
    final_lambda_max: float | None
    final_is_stable: bool | None
    final_factors: FactorChain | None = field(repr=False)
    normalized_loss: np.ndarray = field(repr=False)
    distance_sq: np.ndarray = field(repr=False)
    coords: np.ndarray = field(repr=False)
    track_iterations: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))
    gn_lambda_max: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    hessian_track_iterations: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))
    hessian_lambda_max: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def distance(self) -> np.ndarray:
        """``||w_k - w*|| / ||w*||`` (the square root of :attr:`distance_sq`)."""
        return np.sqrt(self.distance_sq)

    def summary(self) -> dict:
        """The scalars as a JSON-ready dict (no traces, no factors)."""
        return {
            "eta": self.eta,
            "step_multiplier": self.step_multiplier,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "escape_iteration": self.escape_iteration,
            "predicted_escape_iteration": self.predicted_escape_iteration,
            "peak_loss": self.peak_loss,
            "final_loss": self.final_loss,
            "peak_normalized_loss": float(np.max(self.normalized_loss)),
            "final_normalized_loss": float(self.normalized_loss[-1]),
            "final_distance_sq": float(self.distance_sq[-1]),
            "final_lambda_max": self.final_lambda_max,
            "final_is_stable": self.final_is_stable,
        }

    def trace_columns(self) -> dict[str, np.ndarray]:
        """Per-iteration columns for a CSV: iteration, traces, tracked sharpness (NaN gaps)."""
        n = self.iterations + 1
        cols = {
            "iteration": np.arange(n),
            "normalized_loss": self.normalized_loss,
            "distance_sq": self.distance_sq,
            "x": self.coords[:, 0],
            "y": self.coords[:, 1],
        }
        if len(self.track_iterations):
            gn = np.full(n, np.nan)
            gn[self.track_iterations] = self.gn_lambda_max
            cols["gn_lambda_max"] = gn
        if len(self.hessian_track_iterations):
            h = np.full(n, np.nan)
            h[self.hessian_track_iterations] = self.hessian_lambda_max
            cols["hessian_lambda_max"] = h
        return cols


@dataclass(frozen=True, eq=False)
class EscapeResult:
    """All runs of one :func:`escape_experiment` call, with the shared setup.

    Attributes
    ----------
    minimum : FactorChain
        ``w*``.
    target : ndarray
        ``M``.
    lambda_max : float
        Exact ``lambda_max`` of the Hessian at ``w*`` (Theorem 5).
    radius : float
        ``r = ||w_0 - w*||`` (before rounding ``w_0`` to float64).
    direction : str
        ``"top"``, ``"random"`` or ``"user"``.
    seed : int or None
        The seed of the random start direction.
    start : FactorChain
        ``w_0``.
    plane : ndarray
        ``(2, N)`` orthonormal directions the ``coords`` traces are taken on.
    escape_threshold : float
        ``tau`` (relative to ``||w*||``).
    start_overlap : float
        ``|<u, v_1>|`` of the unit start direction ``u`` with ``v_1``.
    runs : list of RunResult
        One per step size, in the given order.
    engine : str
        The GD engine that ran, ``"numpy"`` or ``"numba"`` (numbers after an escape
        are reproducible per engine; see :func:`gradient_descent`).
    """

    minimum: FactorChain = field(repr=False)
    target: np.ndarray = field(repr=False)
    lambda_max: float
    radius: float
    direction: str
    seed: Any
    start: FactorChain = field(repr=False)
    plane: np.ndarray = field(repr=False)
    escape_threshold: float
    start_overlap: float
    runs: list = field(repr=False)
    engine: str = "numpy"

    @property
    def etas(self) -> np.ndarray:
        """The step sizes of the runs."""
        return np.array([r.eta for r in self.runs])

    @property
    def step_multipliers(self) -> np.ndarray:
        """``eta lambda_max / 2`` of each run."""
        return np.array([r.step_multiplier for r in self.runs])

    @property
    def target_norm_sq(self) -> float:
        """``||M||_F^2``, the loss normalization."""
        return float(np.vdot(self.target, self.target))


# --------------------------------------------------------------------------- inputs


def _positive(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return v


def _positive_array(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"{name} must be positive and finite, got {arr[bad][0]!r}")
    return arr


def _flat(blocks: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(b, dtype=np.float64).ravel() for b in blocks])


def start_direction(minimum: FactorsLike, direction: Any = "top", *, seed: Any = 0) -> np.ndarray:
    """Unit start direction ``u`` (flat, length ``N``) for ``w_0 = w* + r u``.

    Parameters
    ----------
    minimum : FactorChain or sequence of array_like
        ``w*``, a global minimum of its own product.
    direction : {"top", "random"} or sequence of array_like
        ``"top"``: ``v_1``, the top Hessian eigenvector (Section 7). ``"random"``:
        uniform on the sphere ``S^{N-1}`` (a normalized Gaussian drawn with
        ``numpy.random.default_rng(seed)``). Otherwise arrays shaped like the factors
        (or one flat array of length ``N``), normalized here.
    seed : int or None
        Seed for ``"random"``.
    """
    chain = as_chain(minimum)
    n = chain.num_params
    if isinstance(direction, str):
        if direction == "top":
            return _flat(top_eigenvector(chain))
        if direction == "random":
            u = np.random.default_rng(seed).standard_normal(n)
            return u / np.linalg.norm(u)
        raise ValueError(f"direction must be 'top', 'random' or arrays, got {direction!r}")
    from .landscape import _flat_direction

    u = _flat_direction(chain, direction, "direction")
    if not np.all(np.isfinite(u)):
        raise ValueError("direction has non-finite entries")
    norm = np.linalg.norm(u)
    if norm == 0:
        raise ValueError("direction is zero")
    return u / norm


# --------------------------------------------------------------------------- engine


class _Batch:
    """Preallocated buffers for ``B`` runs of GD on one factorization.

    The parameters of all runs live in one C-contiguous ``(B, N)`` array; the factor
    ``W_i`` of every run is a ``(B, d_i, d_{i-1})`` view into it, and so is each block
    of the gradient buffer. One step is ``3L - 3`` batched matmuls (the chain products
    without ``out=``, which is cheaper for these tiny arrays), a residual, and one
    in-place add.
    """

    def __init__(self, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray):
        self.dims = dims
        L = len(dims) - 1
        B, n = w0.shape
        self.w = np.ascontiguousarray(w0, dtype=np.float64).copy()
        self.g = np.zeros_like(self.w)
        offs = np.cumsum([0] + [dims[i] * dims[i - 1] for i in range(1, L + 1)])
        self.W = [self.w[:, offs[i] : offs[i + 1]].reshape(B, dims[i + 1], dims[i]) for i in range(L)]
        self.G = [self.g[:, offs[i] : offs[i + 1]].reshape(B, dims[i + 1], dims[i]) for i in range(L)]
        self.WT = [x.transpose(0, 2, 1) for x in self.W]
        d0, dl = dims[0], dims[-1]
        # prefix products B_{i+1} = W_i ... W_1 at index i (B_2 = W_1); filled by residual()
        self.prefix: list[Any] = [None] * L
        self.prefix[1] = self.W[0]
        self.Wmid = self.W[1:-1]
        self.R = np.empty((B, dl, d0))
        self.Rflat = self.R.reshape(B, dl * d0)
        self.M = np.asarray(target, dtype=np.float64)
        self.scale = np.zeros((B, 1, 1))
        # backward plan: for i = L-1 .. 1, G_{i+1} = C_{i+1} B_{i+1}^T, C_i = W_{i+1}^T C_{i+1}
        self.bwd = [(i, self.G[i], self.WT[i]) for i in range(L - 1, 1, -1)]
        self.params = self.w

    def layout(self, v: np.ndarray) -> np.ndarray:
        """Flat ``(..., N)`` vectors in the layout of :attr:`params`."""
        return np.ascontiguousarray(v, dtype=np.float64)

    def flat(self) -> np.ndarray:
        """The parameters of all runs as ``(B, N)`` (W_1 first, row-major blocks)."""
        return self.w.copy()

    def set_scale(self, b, value) -> None:
        """Set ``2 eta`` of run ``b`` (0 freezes it)."""
        self.scale[b] = value

    def reset(self, b: int, flat: np.ndarray) -> None:
        """Overwrite run ``b``'s parameters with the flat vector ``flat``."""
        self.w[b] = flat

    def residual(self) -> np.ndarray:
        """Compute ``R = M - P`` for the current parameters; return it as ``(B, d_L d_0)``."""
        b = self.W[0]
        prefix = self.prefix
        for i, w in enumerate(self.Wmid, start=2):
            b = w @ b
            prefix[i] = b
        np.subtract(self.M, self.W[-1] @ b, out=self.R)
        return self.Rflat

    def step(self) -> None:
        """One GD step from the residual computed last: ``w += 2 eta A^T R B^T``."""
        mm = np.matmul
        c = self.R * self.scale
        prefix = self.prefix
        for i, gout, wt in self.bwd:
            mm(c, prefix[i].mT, out=gout)
            c = wt @ c
        mm(c, self.W[0].mT, out=self.G[1])
        np.matmul(self.WT[1], c, out=self.G[0])
        np.add(self.w, self.g, out=self.w)


class _ScalarBatch(_Batch):
    """GD buffers for a scalar factorization (``d_0 = d_L = 1``): gradients in one pass.

    With ``d_0 = d_L = 1`` every gradient block is an outer product,
    ``grad_{W_k} = -2 r a_k b_k^T`` with ``b_k = B_k`` (a ``d_{k-1}``-vector) and
    ``a_k = A_k^T`` (a ``d_k``-vector). Both chains of vectors are written into two
    concatenated buffers, and the whole flat gradient is
    ``repeat(c a, d_{k-1}) * take(b, index)``: three long array operations instead of
    ``L`` small outer products, whose cost is dominated by per-call overhead.
    """

    def __init__(self, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray):
        super().__init__(w0, dims, target)
        L = len(dims) - 1
        B = self.w.shape[0]
        d = dims
        boffs = np.cumsum([0] + [d[k - 1] for k in range(1, L + 1)])  # b_1 .. b_L
        aoffs = np.cumsum([0] + [d[k] for k in range(1, L + 1)])  # a_1 .. a_L
        self.bcat = np.zeros((B, int(boffs[-1])))
        self.acat = np.zeros((B, int(aoffs[-1])))
        self.acs = np.zeros_like(self.acat)
        bv = [self.bcat[:, boffs[k] : boffs[k + 1], None] for k in range(L)]  # bv[k-1] = b_k
        av = [self.acat[:, aoffs[k] : aoffs[k + 1], None] for k in range(L)]  # av[k-1] = a_k
        self.bcat[:, 0] = 1.0  # b_1 = 1
        self.acat[:, -1] = 1.0  # a_L = 1
        # forward: b_2 = W_1 b_1 (a copy), b_{k+1} = W_k b_k for k = 2 .. L-1, P = W_L b_L
        self.b2 = (self.W[0], bv[1])
        self.fwd = [(self.W[k - 1], bv[k - 1], bv[k]) for k in range(2, L)]
        self.lastb = bv[L - 1]
        # backward: a_{L-1} = W_L^T (a copy), a_{k-1} = W_k^T a_k for k = L-1 .. 2
        self.aL1 = (self.WT[L - 1], av[L - 2])
        self.bwd_a = [(self.WT[k - 1], av[k - 1], av[k - 2]) for k in range(L - 1, 1, -1)]
        self.reps = np.repeat(np.array([d[k - 1] for k in range(1, L + 1)]), [d[k] for k in range(1, L + 1)])
        self.bidx = np.concatenate(
            [np.tile(np.arange(d[k - 1]) + boffs[k - 1], d[k]) for k in range(1, L + 1)]
        ).astype(np.intp)
        self.tk = np.empty_like(self.w)
        self.c = np.zeros((B, 1))

    def residual(self) -> np.ndarray:
        """Run the forward chain into the ``b`` buffer; ``R = m - P``."""
        mm = np.matmul
        np.copyto(self.b2[1], self.b2[0])
        for w, b, out in self.fwd:
            mm(w, b, out=out)
        np.subtract(self.M, mm(self.W[-1], self.lastb), out=self.R)
        return self.Rflat

    def step(self) -> None:
        """``W_k += 2 eta r a_k b_k^T`` for all k at once."""
        mm = np.matmul
        np.copyto(self.aL1[1], self.aL1[0])
        for wt, a, out in self.bwd_a:
            mm(wt, a, out=out)
        np.multiply(self.Rflat, self.scale[:, 0], out=self.c)
        np.multiply(self.acat, self.c, out=self.acs)
        g = np.repeat(self.acs, self.reps, axis=1)
        np.take(self.bcat, self.bidx, axis=1, out=self.tk)
        np.multiply(g, self.tk, out=g)
        np.add(self.w, g, out=self.w)


def _make_batch(w0, dims, target):
    if dims[0] == 1 and dims[-1] == 1 and len(dims) > 3:
        return _ScalarBatch(w0, dims, target)
    return _Batch(w0, dims, target)


class _NumbaBatch(_Batch):
    """GD buffers for the compiled engine: whole chunks of steps per call.

    Keeps the NumPy engine's parameter layout and views (``W``, ``flat``,
    ``set_scale``, ``reset``, used by the checks and the tracking) and replaces the
    per-step ``residual``/``step`` calls by :meth:`advance`, one call of the jitted
    kernel :func:`dmfsharp._gd_numba.advance` per chunk of iterations.
    """

    def __init__(self, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray):
        from . import _gd_numba

        super().__init__(w0, dims, target)
        self._kernel = _gd_numba.advance
        self._dims, self._offs, self._poffs, self._pref, self._res, self._ca, self._cb = (
            _gd_numba.make_buffers(self.w.shape[0], dims)
        )
        self._m = np.ascontiguousarray(self.M.ravel())
        self._scale = self.scale.reshape(-1)  # a view: set_scale reaches the kernel

    def advance(
        self,
        k0: int,
        k1: int,
        first_step: bool,
        wstar: np.ndarray,
        z: np.ndarray,
        loss_tr: np.ndarray,
        dist_tr: np.ndarray,
        coord_tr: np.ndarray,
    ) -> None:
        """Record iterations ``k0 .. k1`` (stepping in between); see the kernel's docstring."""
        self._kernel(
            self.w,
            self._scale,
            self._dims,
            self._offs,
            self._poffs,
            self._m,
            wstar,
            z,
            self._pref,
            self._res,
            self._ca,
            self._cb,
            bool(first_step),
            int(k0),
            int(k1),
            loss_tr,
            dist_tr,
            coord_tr,
        )


#: Values of the ``engine`` option of :func:`gradient_descent` / :func:`escape_experiment`.
ENGINES = ("auto", "numpy", "numba")


@functools.cache
def numba_available() -> bool:
    """Whether the optional compiled engine can run (``numba`` imports)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine: Any = "auto") -> str:
    """The engine that ``engine`` selects: ``"numpy"`` or ``"numba"``.

    ``"auto"`` is ``"numba"`` when numba is installed, else ``"numpy"``. Asking for
    ``"numba"`` without numba raises :class:`ImportError` naming the extra to install.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "numba" if numba_available() else "numpy"
    if engine == "numba" and not numba_available():
        raise ImportError("engine 'numba' needs numba: pip install 'dmfsharp[fast]'")
    return engine


def _engine_factory(engine: Any) -> tuple[Any, str]:
    if callable(engine):  # a batch class or factory (tests compare engines this way)
        return engine, getattr(engine, "engine_name", getattr(engine, "__name__", "custom"))
    name = resolve_engine(engine)
    return (_NumbaBatch if name == "numba" else _make_batch), name


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
    engine: Any = "auto",
) -> dict[str, Any]:
    """Run GD on eq. 15 from one start with several step sizes at once (the raw engine).

    Parameters
    ----------
    start : FactorChain or sequence of array_like
        ``w_0``, shared by all runs.
    etas : sequence of float
        Step sizes, one run each.
    target : array_like, optional
        ``M``; defaults to the product of ``reference`` (or of ``start``).
    iterations : int
        Maximum number of GD steps.
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
        the ``fast`` extra. ``"auto"``: numba if installed. Both compute the same
        arithmetic up to the order of floating-point sums, so traces agree to rounding
        while GD is near ``w*``; after an escape, rounding differences can grow
        (the catapult is chaotic), so exact numbers are reproducible per engine.

    Returns
    -------
    dict
        Arrays ``normalized_loss``, ``distance_sq`` ``(T+1, B)``, ``coords``
        ``(T+1, B, 2)``, ``stop_iteration`` and ``stop_reason`` per run, ``final``
        (``(B, N)`` parameters), ``mnorm2``, tracking lists, ``engine`` (the name of
        the engine that ran).
    """
    start = as_chain(start)
    ref = start if reference is None else as_chain(reference)
    if ref.dims != start.dims:
        raise ValueError(f"reference dims {ref.dims} differ from start dims {start.dims}")
    m = check_target(ref, target) if target is not None else ref.product
    eta = _positive_array(etas, "etas")
    iterations = int(iterations)
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    for name, val in (("track_every", track_every), ("track_hessian_every", track_hessian_every)):
        if val is not None and int(val) < 1:
            raise ValueError(f"{name} must be a positive integer, got {val!r}")
    n = start.num_params
    nb = eta.size
    factory, engine_name = _engine_factory(engine)
    wstar = ref.flatten()
    wstar_norm2 = float(wstar @ wstar) or 1.0
    z = np.zeros((2, n)) if plane is None else np.asarray(plane, dtype=np.float64)
    if z.shape != (2, n):
        raise ValueError(f"plane must have shape (2, {n}), got {z.shape}")
    mnorm2 = float(np.vdot(m, m))
    mscale = mnorm2 if mnorm2 > 0 else 1.0
    div_limit = _DIVERGENCE_FACTOR * mscale
    conv_limit = converge_tol * mscale
    tau2 = escape_threshold**2 * wstar_norm2

    batch = factory(np.tile(start.flatten(), (nb, 1)), start.dims, m)
    for b in range(nb):
        batch.set_scale(b, 2.0 * eta[b])
    wstar_l = np.ascontiguousarray(np.broadcast_to(batch.layout(wstar), batch.params.shape))
    z_l = batch.layout(z)
    # rows after the last iteration reached (every run stopped early) stay NaN, never
    # uninitialized memory
    loss_tr = np.full((iterations + 1, nb), np.nan)
    dist_tr = np.full((iterations + 1, nb), np.nan)
    coord_tr = np.full((iterations + 1, nb, 2), np.nan)
    diff = np.empty(batch.params.shape)
    diff3 = diff[:, None, :]
    active = np.ones(nb, bool)
    escaped = np.zeros(nb, bool)
    stop_it = np.full(nb, iterations)
    reason = ["max_iterations"] * nb
    last_check = 0
    gn_track: list[tuple[int, np.ndarray]] = []
    h_track: list[tuple[int, np.ndarray]] = []
    h_vectors: list[Any] = [None] * nb

    def bookkeeping(k: int) -> bool:
        """Checks and tracking at iteration ``k``; True when the loop must end."""
        nonlocal last_check
        if k - last_check >= _CHECK_EVERY or k == iterations:
            _check(
                k,
                last_check,
                loss_tr,
                dist_tr,
                active,
                escaped,
                stop_it,
                reason,
                div_limit,
                conv_limit,
                tau2,
                batch,
                wstar,
            )
            last_check = k
            if not active.any():
                return True
        if track_every is not None and k % int(track_every) == 0:
            gn_track.append((k, _track_gn(batch, start, active)))
        if track_hessian_every is not None and k % int(track_hessian_every) == 0:
            h_track.append((k, _track_hessian(batch, start, m, active, h_vectors)))
        return k == iterations

    vecdot = np.vecdot
    subtract = np.subtract
    chunked = hasattr(batch, "advance")
    if chunked:
        wstar_c = np.ascontiguousarray(wstar)
        z_c = np.ascontiguousarray(z_l)
    with np.errstate(all="ignore"):
        k = 0
        while chunked:
            # one kernel call up to the next check, tracking iteration or the end; then
            # exactly the per-iteration bookkeeping of the loop below at that iteration
            stop = min(iterations, last_check + _CHECK_EVERY)
            for every in (track_every, track_hessian_every):
                if every is not None:
                    stop = min(stop, -(-k // int(every)) * int(every))
            batch.advance(k, stop, k > 0, wstar_c, z_c, loss_tr, dist_tr, coord_tr)
            k = stop
            if bookkeeping(k):
                break
            k += 1
        while not chunked:
            rflat = batch.residual()
            vecdot(rflat, rflat, out=loss_tr[k])
            subtract(batch.params, wstar_l, out=diff)
            vecdot(diff, diff, out=dist_tr[k])
            vecdot(diff3, z_l, out=coord_tr[k])
            if bookkeeping(k):
                break
            batch.step()
            k += 1
    return {
        "normalized_loss": loss_tr / mscale,
        "loss": loss_tr,
        "distance_sq": dist_tr / wstar_norm2,
        "coords": coord_tr,
        "stop_iteration": stop_it,
        "stop_reason": reason,
        "final": batch.flat(),
        "mnorm2": mnorm2,
        "target": m,
        "gn_track": gn_track,
        "hessian_track": h_track,
        "etas": eta,
        "engine": engine_name,
    }


def _check(
    k, last, loss_tr, dist_tr, active, escaped, stop_it, reason, div_limit, conv_limit, tau2, batch, wstar
) -> None:
    """Stop diverged runs and runs that escaped and converged; freeze them in place."""
    lo = last + 1 if last > 0 else 0
    block_loss = loss_tr[lo : k + 1]
    bad = ~(block_loss <= div_limit)  # NaN compares False
    for b in np.flatnonzero(active & bad.any(axis=0)):
        first = lo + int(np.argmax(bad[:, b]))
        stop_it[b] = max(first - 1, 0)
        reason[b] = "diverged"
        active[b] = False
        batch.set_scale(b, 0.0)
        batch.reset(b, wstar)  # keep NaN/inf out of the shared arithmetic
    escaped |= (dist_tr[lo : k + 1] > tau2).any(axis=0)
    done = active & escaped & (loss_tr[k] <= conv_limit)
    for b in np.flatnonzero(done):
        stop_it[b] = k
        reason[b] = "converged"
        active[b] = False
        batch.set_scale(b, 0.0)


def _track_gn(batch: _Batch, like: FactorChain, active: np.ndarray) -> np.ndarray:
    out = np.full(len(active), np.nan)
    for b in np.flatnonzero(active):
        try:
            out[b] = sharpness(like.with_factors([w[b] for w in batch.W]))
        except ValueError:  # non-finite factors
            pass
    return out


def _track_hessian(batch, like, m, active, vectors) -> np.ndarray:
    from .numeric import numerical_sharpness

    out = np.full(len(active), np.nan)
    for b in np.flatnonzero(active):
        try:
            chain = like.with_factors([w[b] for w in batch.W])
            res = numerical_sharpness(chain, target=m, method="lanczos", v0=vectors[b], tol=1e-8)
        except ValueError:
            continue
        out[b] = res.value
        vectors[b] = res.vector
    return out


# --------------------------------------------------------------------------- experiment


def escape_experiment(
    minimum: FactorsLike,
    *,
    target: Any = None,
    step_multipliers: Any = None,
    etas: Any = None,
    radius: float = 1e-10,
    direction: Any = "top",
    seed: Any = 0,
    iterations: int = 5000,
    plane: Any = "hessian",
    escape_threshold: float = 1e-4,
    converge_tol: float = 1e-14,
    minimum_tol: float = 1e-12,
    track_every: int | None = None,
    track_hessian_every: int | None = None,
    lambda_max: float | None = None,
    engine: str = "auto",
) -> EscapeResult:
    """GD started next to a global minimum with several step sizes (Section 7).

    Starts every run at ``w_0 = w* + r u`` (``u`` from :func:`start_direction`), runs
    GD on eq. 15 with each step size for at most ``iterations`` steps (all runs in one
    batched loop), and classifies each run as escaped / returned / diverged /
    undecided (see the module docstring for the exact rules).

    Parameters
    ----------
    minimum : FactorChain or sequence of array_like
        The global minimum ``w*``.
    target : array_like, optional
        ``M``; None means the product of ``minimum``. If given, ``minimum`` must be a
        global minimum of it (else :class:`NotAMinimumError`).
    step_multipliers : sequence of float, optional
        Step sizes in units of ``2 / lambda_max``: ``eta = c * 2 / lambda_max``.
    etas : sequence of float, optional
        Absolute step sizes. Exactly one of ``step_multipliers`` and ``etas``; if both
        are None, ``(0.9, 1.1)`` multipliers.
    radius : float
        ``r > 0``, the distance of the start from ``w*`` (the paper uses 1e-15 to 1e-9).
    direction : {"top", "random"} or arrays
        Start direction: ``v_1`` (default), a seeded uniform random unit vector, or
        the user's (normalized).
    seed : int or None
        Seed for the random start direction and the random plane; recorded.
    iterations : int
        Maximum GD steps per run.
    plane : {"hessian", "random"} or array_like
        Directions ``(zeta, gamma)`` of the ``coords`` traces (and of the landscape
        map): see :func:`dmfsharp.landscape.plane_directions`.
    escape_threshold : float
        ``tau``, relative to ``||w*||``.
    converge_tol : float
        An escaped run stops when ``L(w_k) <= converge_tol ||M||_F^2``.
    minimum_tol : float
        A final point with ``L <= minimum_tol ||M||_F^2`` counts as a global minimum,
        and its exact ``lambda_max`` is reported.
    track_every, track_hessian_every : int, optional
        Sharpness along the trajectory: exact ``lambda_max(2 K^T K)`` every
        ``track_every`` steps and the full Hessian's ``lambda_max`` (warm-started
        Lanczos) every ``track_hessian_every`` steps.
    lambda_max : float, optional
        ``lambda_max`` at ``w*`` if already known (else computed by Theorem 5).
    engine : {"auto", "numpy", "numba"}
        The GD engine (see :func:`gradient_descent`); the one that ran is recorded in
        :attr:`EscapeResult.engine`.

    Returns
    -------
    EscapeResult

    Examples
    --------
    A scalar factorization ``m = w_2 w_1`` at ``(1, 2)``: ``lambda_max = 2 (1 + 4) = 10``.

    >>> import numpy as np
    >>> res = escape_experiment([np.array([[1.0]]), np.array([[2.0]])],
    ...                         step_multipliers=[0.5, 1.2], radius=1e-8, iterations=400)
    >>> res.lambda_max
    10.0
    >>> [r.status for r in res.runs]
    ['returned', 'escaped']
    >>> bool(res.runs[1].final_is_stable)
    True
    """
    from .landscape import plane_directions

    chain = as_chain(minimum)
    engine = resolve_engine(engine)
    if target is not None:
        m = check_target(chain, target)
        res, tol = minimum_residual(chain, target=m)
        if res > tol:
            raise NotAMinimumError(
                f"the start point is not a global minimum of M: ||M - W_L...W_1||_F = "
                f"{res:.3e} exceeds the rounding tolerance {tol:.1e}"
            )
    else:
        m = chain.product
    r = _positive(radius, "radius")
    tau = _positive(escape_threshold, "escape_threshold")
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    lam = float(sharpness(chain)) if lambda_max is None else _positive(lambda_max, "lambda_max")
    if step_multipliers is not None and etas is not None:
        raise ValueError("give step_multipliers or etas, not both")
    if etas is not None:
        eta = _positive_array(etas, "etas")
    else:
        mult = _positive_array(
            (0.9, 1.1) if step_multipliers is None else step_multipliers, "step_multipliers"
        )
        eta = mult * 2.0 / lam
    mult = eta * lam / 2.0

    u = start_direction(chain, direction, seed=seed)
    dir_name = direction if isinstance(direction, str) else "user"
    v1 = u if dir_name == "top" else _flat(top_eigenvector(chain))
    overlap = float(abs(u @ v1))
    wstar = chain.flatten()
    wnorm = float(np.linalg.norm(wstar)) or 1.0
    if r >= tau * wnorm:
        raise ValueError(
            f"radius {r:g} is not below the escape threshold tau ||w*|| = {tau * wnorm:.3g} "
            f"(tau = escape_threshold = {tau:g}); start closer or raise escape_threshold"
        )
    w0 = chain.with_factors(chain.unflatten(wstar + r * u))
    zplane = plane_directions(chain, plane, seed=seed)

    raw = gradient_descent(
        w0,
        eta,
        target=m,
        iterations=iterations,
        reference=chain,
        plane=zplane,
        escape_threshold=tau,
        converge_tol=converge_tol,
        track_every=track_every,
        track_hessian_every=track_hessian_every,
        engine=engine,
    )
    runs = []
    for b in range(eta.size):
        runs.append(
            _make_run(raw, b, chain, float(eta[b]), float(mult[b]), lam, r * overlap, wnorm, tau, minimum_tol)
        )
    return EscapeResult(
        minimum=chain,
        target=m,
        lambda_max=lam,
        radius=r,
        direction=dir_name,
        seed=seed,
        start=w0,
        plane=zplane,
        escape_threshold=tau,
        start_overlap=overlap,
        runs=runs,
        engine=raw["engine"],
    )


def predicted_escape_iteration(eta: float, lambda_max: float, r1: float, threshold: float) -> float | None:
    """Linear theory: ``log(threshold / r1) / log|1 - eta lambda_max|`` (None if stable)."""
    growth = abs(1.0 - eta * lambda_max)
    if growth <= 1.0 or r1 <= 0:
        return None
    return max(math.log(threshold / r1), 0.0) / math.log(growth)


def _make_run(raw, b, chain, eta, mult, lam, r1, wnorm, tau, minimum_tol) -> RunResult:
    t = int(raw["stop_iteration"][b])
    reason = raw["stop_reason"][b]
    nloss = raw["normalized_loss"][: t + 1, b].copy()
    dsq = raw["distance_sq"][: t + 1, b].copy()
    coords = raw["coords"][: t + 1, b].copy()
    above = np.flatnonzero(dsq > tau * tau)
    esc = int(above[0]) if above.size else None
    rho_end, rho_0 = math.sqrt(dsq[-1]), math.sqrt(dsq[0])
    if reason == "diverged":
        status = "diverged"
    elif rho_end > tau and esc is not None:
        status = "escaped"
    elif rho_end <= max(_RETURN_SLACK * rho_0, _RETURN_FLOOR):
        status = "returned"
    else:
        status = "undecided"
    final = None
    lam_f = None
    stable = None
    if reason != "diverged":
        final = chain.with_factors(chain.unflatten(raw["final"][b]))
        if nloss[-1] <= minimum_tol:
            lam_f = float(sharpness(final))
            stable = bool(lam_f <= (2.0 / eta) * (1.0 + _STABLE_RTOL))
    gn_it = np.array([k for k, v in raw["gn_track"] if k <= t and np.isfinite(v[b])], int)
    gn_v = np.array([v[b] for k, v in raw["gn_track"] if k <= t and np.isfinite(v[b])])
    h_it = np.array([k for k, v in raw["hessian_track"] if k <= t and np.isfinite(v[b])], int)
    h_v = np.array([v[b] for k, v in raw["hessian_track"] if k <= t and np.isfinite(v[b])])
    return RunResult(
        eta=eta,
        step_multiplier=mult,
        status=status,
        stop_reason=reason,
        iterations=t,
        escape_iteration=esc,
        predicted_escape_iteration=predicted_escape_iteration(eta, lam, r1, tau * wnorm),
        peak_loss=float(np.max(raw["loss"][: t + 1, b])),
        final_loss=float(raw["loss"][t, b]),
        final_lambda_max=lam_f,
        final_is_stable=stable,
        final_factors=final,
        normalized_loss=nloss,
        distance_sq=dsq,
        coords=coords,
        track_iterations=gn_it,
        gn_lambda_max=gn_v,
        hessian_track_iterations=h_it,
        hessian_lambda_max=h_v,
    )
