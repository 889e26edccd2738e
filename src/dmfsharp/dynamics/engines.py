r"""Batched gradient-descent engines on eq. 15, behind one :class:`GDEngine` protocol.

Every engine runs ``B`` GD runs of one factorization at once,

.. math::

    W_i \leftarrow W_i + 2 \eta\, A_i^\top (M - W_L \cdots W_1) B_i^\top ,

with the parameters of all runs in one C-contiguous ``(B, N)`` array (``W_1`` first,
row-major blocks), so the loop (:mod:`dmfsharp.dynamics.loop`) and the tracking read the
same layout whatever engine runs:

- :class:`BatchedEngine` (``"numpy"``): a fixed sequence of batched ``numpy.matmul``
  calls into preallocated buffers, one Python iteration per step;
- :class:`ScalarEngine` (``"numpy"`` when ``d_0 = d_L = 1`` and ``L >= 3``): the same
  arithmetic with every gradient block an outer product, computed in one pass;
- :class:`NumbaEngine` (``"numba"``): a compiled kernel
  (:mod:`dmfsharp.dynamics.numba_kernel`) that runs all runs through whole chunks of
  steps per call. numba is an optional extra (``pip install 'dmfsharp[fast]'``),
  imported only here and only when this engine is asked for.

``engine="auto"`` picks numba when it imports *and* its kernel compiles (and caches);
otherwise it falls back to NumPy with a :class:`UserWarning` saying why (numba missing,
or e.g. "cannot cache function" on a read-only install).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ENGINES",
    "GDEngine",
    "BatchedEngine",
    "ScalarEngine",
    "NumbaEngine",
    "DataEngine",
    "numba_available",
    "numba_problem",
    "resolve_engine",
    "make_engine",
]

#: Values of the ``engine`` option of :func:`dmfsharp.gradient_descent` and
#: :func:`dmfsharp.escape_experiment`.
ENGINES = ("auto", "numpy", "numba")


@runtime_checkable
class GDEngine(Protocol):
    """What the GD loop needs from an engine (all runs share ``dims`` and ``M``).

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"numba"`` (recorded in results).
    params : ndarray, shape (B, N)
        The parameters of all runs, updated in place.
    W : list of ndarray
        ``W[i]`` is a ``(B, d_{i+1}, d_i)`` view of factor ``W_{i+1}`` of every run.
    chunked : bool
        True when the engine implements :meth:`advance` (whole chunks of steps per
        call); False when the loop calls :meth:`residual` and :meth:`step` per step.
    """

    name: str
    params: np.ndarray
    W: list[np.ndarray]
    chunked: bool

    def set_scale(self, b: int, value: float) -> None:
        """Set ``2 eta`` of run ``b``; 0 freezes it."""

    def reset(self, b: int, flat: np.ndarray) -> None:
        """Overwrite run ``b``'s parameters with the flat vector ``flat``."""

    def residual(self) -> np.ndarray:
        """``R = M - P`` of every run at the current parameters, shape ``(B, d_L d_0)``."""

    def step(self) -> None:
        """One GD step of every run from the residual computed last."""

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
        snap: np.ndarray | None = None,
    ) -> None:
        """Record iterations ``k0 .. k1`` of every run, stepping in between.

        ``snap`` ``(k1 - k0 + 1, B, N)``, where given, receives the parameters of every
        recorded iteration (per-step tracking of a chunked engine).
        """


class BatchedEngine:
    """Preallocated buffers for ``B`` runs of GD on one factorization (NumPy).

    The factor ``W_i`` of every run is a ``(B, d_i, d_{i-1})`` view into the ``(B, N)``
    parameter array, and so is each block of the gradient buffer. One step is ``3L - 3``
    batched matmuls (the chain products without ``out=``, which is cheaper for these
    tiny arrays), a residual, and one in-place add.

    Parameters
    ----------
    w0 : ndarray, shape (B, N)
        Start of every run (flat, ``W_1`` first, row-major blocks).
    dims : tuple of int
        ``(d_0, ..., d_L)``.
    target : ndarray, shape (d_L, d_0)
        ``M``.
    weight_decay : float
        ``mu >= 0``: the gradient gains ``2 mu W``, so a step is
        ``w <- (1 - 2 eta mu) w + 2 eta A^T R B^T``.
    """

    name = "numpy"
    chunked = False

    def __init__(self, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray, weight_decay: float = 0.0):
        self.dims = dims
        self.mu = float(weight_decay)
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

    def set_scale(self, b: int, value: float) -> None:
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
        self.decay()
        np.add(self.w, self.g, out=self.w)

    def decay(self) -> None:
        """Weight decay after the gradient is formed: ``w *= 1 - 2 eta mu`` (nothing for ``mu = 0``)."""
        if self.mu:
            self.w *= 1.0 - self.mu * self.scale[:, 0]

    def advance(self, *args: Any) -> None:
        """Not available: this engine is stepped one iteration at a time."""
        raise NotImplementedError("the NumPy engines step one iteration at a time")


class ScalarEngine(BatchedEngine):
    """GD buffers for a scalar factorization (``d_0 = d_L = 1``): gradients in one pass.

    With ``d_0 = d_L = 1`` every gradient block is an outer product,
    ``grad_{W_k} = -2 r a_k b_k^T`` with ``b_k = B_k`` (a ``d_{k-1}``-vector) and
    ``a_k = A_k^T`` (a ``d_k``-vector). Both chains of vectors are written into two
    concatenated buffers, and the whole flat gradient is
    ``repeat(c a, d_{k-1}) * take(b, index)``: three long array operations instead of
    ``L`` small outer products, whose cost is dominated by per-call overhead.
    Parameters as :class:`BatchedEngine`.
    """

    def __init__(self, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray, weight_decay: float = 0.0):
        super().__init__(w0, dims, target, weight_decay)
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
        self.decay()
        np.add(self.w, g, out=self.w)


class NumbaEngine(BatchedEngine):
    """GD buffers for the compiled engine: whole chunks of steps per call.

    Keeps the NumPy engine's parameter layout and views (``W``, ``params``,
    ``set_scale``, ``reset``, used by the checks and the tracking) and replaces the
    per-step ``residual``/``step`` calls by :meth:`advance`, one call of the jitted
    kernel :func:`dmfsharp.dynamics.numba_kernel.advance` per chunk of iterations.
    Parameters as :class:`BatchedEngine`; needs numba.
    """

    name = "numba"
    chunked = True

    def __init__(self, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray, weight_decay: float = 0.0):
        from . import numba_kernel

        super().__init__(w0, dims, target, weight_decay)
        self._kernel = numba_kernel.advance
        self._dims, self._offs, self._poffs, self._pref, self._res, self._ca, self._cb = (
            numba_kernel.make_buffers(self.w.shape[0], dims)
        )
        self._m = np.ascontiguousarray(self.M.ravel())
        self._scale = self.scale.reshape(-1)  # a view: set_scale reaches the kernel
        self._nosnap = np.empty((0,) + self.w.shape)

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
        snap: np.ndarray | None = None,
    ) -> None:
        """Record iterations ``k0 .. k1`` (stepping in between); see the kernel's docstring."""
        if snap is None:
            snap = self._nosnap
        self._kernel(
            self.w,
            self._scale,
            self.mu,
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
            snap,
            int(k0),
        )


class DataEngine(BatchedEngine):
    """GD of a deep linear network on data, ``c ||Y - W_L ... W_1 X||_F^2`` (NumPy).

    The gradient is ``grad_{W_i} = -2 A_i^T G B_i^T`` with the residual correlation
    ``G = c (Y - P X) X^T`` in place of eq. 15's ``M - P``, so the step is
    :class:`BatchedEngine`'s with ``R := G``; :meth:`residual` returns
    ``sqrt(c) (Y - P X)`` (flat), whose squared norm is the loss.

    Parameters
    ----------
    w0 : ndarray, shape (B, N)
        Start of every run.
    dims : tuple of int
        ``(d_0, ..., d_L)``.
    data : ndarray, shape (d_0, n)
        Samples ``X``, one per column.
    targets : ndarray, shape (d_L, n)
        ``Y``.
    scale : float
        ``c`` (1 for ``"sum"``, ``1/n`` for ``"mean"``, ``1/(2n)`` for ``"half_mean"``).
    weight_decay : float
        ``mu >= 0`` (not scaled by ``c``).
    """

    def __init__(
        self,
        w0: np.ndarray,
        dims: tuple[int, ...],
        data: np.ndarray,
        targets: np.ndarray,
        scale: float,
        weight_decay: float = 0.0,
    ):
        super().__init__(w0, dims, np.zeros((dims[-1], dims[0])), weight_decay)
        self.X = np.asarray(data, dtype=np.float64)
        self.XT = np.ascontiguousarray(self.X.T)
        self.Y = np.asarray(targets, dtype=np.float64)
        self.root_c = float(np.sqrt(scale))
        B = self.w.shape[0]
        self.E = np.empty((B,) + self.Y.shape)
        self.Eflat = self.E.reshape(B, -1)

    def residual(self) -> np.ndarray:
        """``G = c (Y - P X) X^T`` into the step's buffer; return ``sqrt(c) (Y - P X)`` flat."""
        b = self.W[0]
        prefix = self.prefix
        for i, w in enumerate(self.Wmid, start=2):
            b = w @ b
            prefix[i] = b
        np.subtract(self.Y, (self.W[-1] @ b) @ self.X, out=self.E)
        self.E *= self.root_c
        np.matmul(self.E, self.XT, out=self.R)
        self.R *= self.root_c
        return self.Eflat


@functools.cache
def numba_problem() -> str | None:
    """Why the compiled engine cannot run here, or None when it can.

    Imports numba and the kernel module and runs the kernel once on a one-parameter
    problem, so a missing extra, a failed compilation and numba's "cannot cache
    function" (``cache=True`` on a read-only install without a writable cache folder)
    are all found here, once per process.
    """
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numba is not installed (pip install 'dmfsharp[fast]')"
    try:
        eng = NumbaEngine(np.ones((1, 2)), (1, 1, 1), np.ones((1, 1)))
        tr = np.zeros((2, 1))
        eng.advance(0, 1, False, np.ones(2), np.zeros((2, 2)), tr, tr.copy(), np.zeros((2, 1, 2)))
    except Exception as exc:  # noqa: BLE001 - any compile/cache failure means "use NumPy"
        return f"numba cannot compile or cache the GD kernel ({type(exc).__name__}: {exc})"
    return None


def numba_available() -> bool:
    """Whether the optional compiled engine can run here (see :func:`numba_problem`)."""
    return numba_problem() is None


def resolve_engine(engine: Any = "auto") -> str:
    """The engine that ``engine`` selects: ``"numpy"`` or ``"numba"``.

    Parameters
    ----------
    engine : {"auto", "numpy", "numba"}
        ``"auto"`` is ``"numba"`` when the compiled kernel runs here, else ``"numpy"``
        with a :class:`UserWarning` saying why.

    Returns
    -------
    str
        ``"numpy"`` or ``"numba"``.

    Raises
    ------
    ValueError
        If ``engine`` is not one of :data:`ENGINES`.
    ImportError
        If ``"numba"`` is asked for and cannot run (the message says why and names the
        extra to install).
    """
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "numpy":
        return engine
    problem = numba_problem()
    if engine == "numba":
        if problem is not None:
            raise ImportError(f"engine 'numba' cannot run: {problem}")
        return engine
    if problem is not None:
        warnings.warn(f"engine 'auto' uses NumPy: {problem}", UserWarning, stacklevel=2)
        return "numpy"
    return "numba"


def make_engine(
    name: str, w0: np.ndarray, dims: tuple[int, ...], target: np.ndarray, weight_decay: float = 0.0
) -> GDEngine:
    """Build the engine ``name`` (``"numpy"`` or ``"numba"``, resolved) for runs from ``w0``.

    ``"numpy"`` gives :class:`ScalarEngine` for deep scalar factorizations
    (``d_0 = d_L = 1``, ``L >= 3``) and :class:`BatchedEngine` otherwise. ``weight_decay``
    is ``mu`` of ``L_mu`` (every engine steps ``w <- (1 - 2 eta mu) w + 2 eta A^T R B^T``).
    """
    if name == "numba":
        return NumbaEngine(w0, dims, target, weight_decay)
    if dims[0] == 1 and dims[-1] == 1 and len(dims) > 3:
        return ScalarEngine(w0, dims, target, weight_decay)
    return BatchedEngine(w0, dims, target, weight_decay)
