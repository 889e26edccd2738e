"""Sweep specifications: a TOML file describing a grid of escape experiments.

(``kind = "train"`` specs describe grids of training runs instead: see
:mod:`dmfsharp.sweep.train_spec`. ``kind = "escape"`` is the default.)

A sweep is the Cartesian product of *architectures* (layer dimensions drawn at random
per seed, as in Appendix D.2, or fixed), *seeds*, *minimizer kinds* (the paper's
Gaussian recipe or a flattest minimizer of the same target), initialization *radii* and
perturbation *directions*. One **task** is one minimizer with every step size of the
sweep batched into one call of the escape engine; each step size gives one **run**.

A task's id is a hash of its parameters (not of its position in the grid), so the same
task has the same id in every run of the same spec, and its random numbers come from
63-bit seeds hashed from those parameters (:attr:`SweepTask.minimizer_seed`,
:attr:`SweepTask.engine_seed`), recorded in every row: re-running gives the same rows.

Example spec::

    [sweep]
    name = "escape-small"
    seeds = 200                    # seeds 0..199, or an explicit list [0, 5, 9]
    depths = [2, 3, 4]
    d0 = [1, 3]
    dL = [1, 2]
    widths = [3, 8]                # hidden widths drawn per seed, inclusive range
    radius = 1e-10                 # or radii = [1e-12, 1e-9]
    step_multipliers = [0.9, 1.1, 1.5]   # eta = multiplier * 2 / lambda_max
    etas = [0.01]                  # absolute step sizes (optional)
    iterations = 20000
    direction = "top"              # or "random", or a list of both
    minimizers = ["random"]        # "random" and/or "flattest"
    architectures = ["fig1"]       # the paper's layer dimensions (optional)
    dims = [[1, 9, 4, 8, 1]]       # explicit layer dimensions (optional)
    scale = 1.0                    # std of the Gaussian factors (optional)
    escape_threshold = 1e-4        # escaped once ||w_k - w*|| > this * ||w*|| (optional)
    engine = "numpy"               # or "numba" (the compiled GD engine, 'fast' extra)
    weight_decay = [0, 0.05]       # mu of L_mu = ||M - P||_F^2 + mu sum ||W_k||_F^2 (optional)
    description = "..."            # free text (optional)

The GD engine is part of the spec, and so of every task id: post-escape trajectories
are chaotic, so rounding-level differences between engines can change where a run
lands, and a sweep must not mix engines (for example on resuming after numba was
installed). ``"numba"`` needs numba on every worker.

With ``weight_decay = mu > 0`` a task starts at ``regularized_minimizer(M, dims,
weight_decay=mu, seed=minimizer_seed)`` (``M`` the product of the seed's Gaussian
factors) and runs GD on ``L_mu``, so ``lambda_max`` is that of ``L_mu``. ``mu = 0`` is
left out of task ids and the spec fingerprint, so specs without the key keep their ids.

The loss is the whitened eq. 15; a data covariance is not a spec key yet (the escape
engine runs GD on ``||M - W_L ... W_1||_F^2``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

__all__ = [
    "PAPER_ARCHITECTURES",
    "SpecError",
    "SweepSpec",
    "SweepTask",
    "canonical_json",
    "paper_architectures",
    "seed63",
    "task_id_of",
    "weight_decay_entry",
]

_FIG6_DIMS = (1, 9, 4, 8, 24, 16, 17, 11, 21, 3, 22, 3, 3, 15, 3, 18, 17, 16, 5, 12, 1)

#: Layer dimensions ``(d_0, ..., d_L)`` of the paper's experiments, the same as the
#: figure presets of :mod:`dmfsharp.presets` (which are used when that module exists).
#:
#: ``fig1``: ``M = L R^T`` with ``L`` 10 x 20, ``R`` 20 x 20 (so ``W_1 = R^T``, ``W_2 = L``);
#: ``fig4``: ``L`` 10 x 30, ``R`` 20 x 30; ``fig5``: ``L`` 25 x 30, ``R`` 20 x 30;
#: ``fig6``: the 20-layer scalar factorization of Appendix D.2 (``N = 2421``, as stated);
#: ``fig2``/``fig3``: 15 layers, whose widths the paper does not print: the first 15
#: widths of the Fig. 6 list closed by ``d_15 = 1``; ``fig7``: Appendix D.2 prints
#: ``1, 9, 4, 8, 1`` (``L = 4``, ``N = 85``) but the caption says 5 layers and the text
#: ``N = 293``; ``1, 9, 4, 8, 24, 1`` (the Fig. 6 prefix closed by 1) matches both, so the
#: printed list dropped the 24 and it is restored here.
PAPER_ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "fig1": (20, 20, 10),
    "fig2": _FIG6_DIMS[:15] + (1,),
    "fig3": _FIG6_DIMS[:15] + (1,),
    "fig4": (20, 30, 10),
    "fig5": (20, 30, 25),
    "fig6": _FIG6_DIMS,
    "fig7": (1, 9, 4, 8, 24, 1),
}


def paper_architectures() -> dict[str, tuple[int, ...]]:
    """The paper's layer dimensions by name (from :mod:`dmfsharp.presets` when it exists)."""
    try:
        from ..presets import PRESETS
    except ImportError:
        return PAPER_ARCHITECTURES
    return {name: tuple(p.dims) for name, p in PRESETS.items()}


#: Default ``escape_threshold`` (the escape engine's own default, written into every
#: spec so that results do not depend on a library default).
DEFAULT_ESCAPE_THRESHOLD = 1e-4


class SpecError(ValueError):
    """A sweep spec that cannot be run; the message names the offending key."""


@dataclass(frozen=True)
class SweepTask:
    """One minimizer and all its step sizes: the unit of work sent to a worker.

    Attributes
    ----------
    task_id : str
        16 hex digits of the SHA-256 of :meth:`params` (canonical JSON).
    architecture : str
        ``"random"`` (dims drawn per seed), ``"dims"`` (explicit) or a paper preset name.
    depth, d0, dL : int
        Shape of the architecture; hidden widths are drawn from ``widths`` when
        ``dims`` is None.
    widths : tuple of int or None
        Inclusive range of hidden widths for drawn architectures.
    dims : tuple of int or None
        Fixed layer dimensions, or None when drawn.
    seed : int
        The user-facing seed (0..seeds-1).
    minimizer : str
        ``"random"`` (Gaussian factors, ``M`` their product) or ``"flattest"`` (a
        flattest minimizer of the same ``M``).
    scale : float
        Standard deviation of the Gaussian factors.
    radius : float
        Distance of the GD starting point from the minimum.
    direction : str
        ``"top"`` (top Hessian eigenvector) or ``"random"``.
    step_multipliers, etas : tuple of float
        Step sizes as ``eta * lambda_max / 2`` and as absolute values.
    iterations : int
        GD iteration budget per run.
    escape_threshold : float
        ``tau`` of :func:`dmfsharp.dynamics.escape_experiment`: a run has escaped once
        ``||w_k - w*|| > tau ||w*||``.
    engine : str
        ``"numpy"`` or ``"numba"``.
    weight_decay : float
        ``mu >= 0``; 0 is omitted from :meth:`params` (and so from the id).
    """

    kind: ClassVar[str] = "escape"

    task_id: str
    architecture: str
    depth: int
    d0: int
    dL: int
    widths: tuple[int, int] | None
    dims: tuple[int, ...] | None
    seed: int
    minimizer: str
    scale: float
    radius: float
    direction: str
    step_multipliers: tuple[float, ...]
    etas: tuple[float, ...]
    iterations: int
    escape_threshold: float
    engine: str = "numpy"
    weight_decay: float = 0.0

    def params(self) -> dict[str, Any]:
        """Every parameter except the id, as plain JSON types (``weight_decay`` only when > 0)."""
        d = asdict(self)
        d.pop("task_id")
        if not d["weight_decay"]:
            d.pop("weight_decay")
        return json.loads(json.dumps(d))

    @property
    def minimizer_seed(self) -> int:
        """63-bit seed of the minimizer, from the architecture, ``seed`` and ``scale`` only.

        The hidden widths are drawn with ``random_dims(..., seed=[minimizer_seed, 0])``
        and the Gaussian factors with ``random_minimizer(dims, seed=minimizer_seed)``,
        so any row can be rebuilt by hand. The minimizer kind, radius, direction, step
        sizes and budget do not enter: every kind, radius and direction of one seed
        starts from the same target ``M`` (and the ``"random"`` kind from the same
        factors), which makes them comparable.
        """
        p = self.params()
        key = {k: p[k] for k in ("architecture", "depth", "d0", "dL", "widths", "dims", "seed", "scale")}
        return seed63(key)

    @property
    def engine_seed(self) -> int:
        """63-bit seed for the escape engine (the random perturbation direction)."""
        p = self.params()
        key = {
            k: v
            for k, v in p.items()
            if k
            not in ("step_multipliers", "etas", "iterations", "escape_threshold", "engine", "weight_decay")
        }
        return seed63(key)


def seed63(key: dict[str, Any]) -> int:
    """63-bit seed from the SHA-256 of the canonical JSON of ``key`` (shared by every task kind)."""
    digest = hashlib.sha256(canonical_json(key).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, no NaN) that task ids and seeds hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def weight_decay_entry(values: tuple[float, ...]) -> dict[str, Any]:
    """``{"weight_decay": [...]}`` for ``to_dict``, or ``{}`` when it is only 0 (keeps old fingerprints)."""
    return {} if tuple(values) == (0.0,) else {"weight_decay": list(values)}


def task_id_of(params: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of a task's parameters."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep (see the module docstring for the TOML keys)."""

    kind: ClassVar[str] = "escape"

    name: str
    seeds: tuple[int, ...]
    architectures: tuple[tuple[str, int, int, int, tuple[int, int] | None, tuple[int, ...] | None], ...]
    minimizers: tuple[str, ...]
    radii: tuple[float, ...]
    directions: tuple[str, ...]
    step_multipliers: tuple[float, ...]
    etas: tuple[float, ...]
    iterations: int
    scale: float = 1.0
    escape_threshold: float = DEFAULT_ESCAPE_THRESHOLD
    engine: str = "numpy"
    description: str = ""
    weight_decays: tuple[float, ...] = (0.0,)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_tasks(self) -> int:
        """Number of tasks, without enumerating them."""
        return (
            len(self.architectures)
            * len(self.seeds)
            * len(self.minimizers)
            * len(self.radii)
            * len(self.directions)
            * len(self.weight_decays)
        )

    @property
    def runs_per_task(self) -> int:
        """Step sizes per task (one run each)."""
        return len(self.step_multipliers) + len(self.etas)

    @property
    def num_runs(self) -> int:
        """Total number of GD runs."""
        return self.num_tasks * self.runs_per_task

    def to_dict(self) -> dict[str, Any]:
        """The normalized spec as plain JSON types (what the results store keeps)."""
        return {
            "name": self.name,
            "description": self.description,
            "seeds": list(self.seeds),
            "architectures": [
                {
                    "architecture": a,
                    "depth": L,
                    "d0": d0,
                    "dL": dL,
                    "widths": list(w) if w else None,
                    "dims": list(d) if d else None,
                }
                for a, L, d0, dL, w, d in self.architectures
            ],
            "minimizers": list(self.minimizers),
            "radii": list(self.radii),
            "directions": list(self.directions),
            "step_multipliers": list(self.step_multipliers),
            "etas": list(self.etas),
            "iterations": self.iterations,
            "scale": self.scale,
            "escape_threshold": self.escape_threshold,
            "engine": self.engine,
            **weight_decay_entry(self.weight_decays),
        }

    def fingerprint(self) -> str:
        """Hash of the normalized spec: a results folder belongs to one fingerprint."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()[:16]

    def tasks(self) -> Iterator[SweepTask]:
        """Enumerate the tasks lazily (constant memory for any sweep size)."""
        for arch, seed, kind, radius, direction, mu in itertools.product(
            self.architectures, self.seeds, self.minimizers, self.radii, self.directions, self.weight_decays
        ):
            name, depth, d0, dL, widths, dims = arch
            fields: dict[str, Any] = dict(
                architecture=name,
                depth=depth,
                d0=d0,
                dL=dL,
                widths=widths,
                dims=dims,
                seed=seed,
                minimizer=kind,
                scale=self.scale,
                radius=radius,
                direction=direction,
                step_multipliers=self.step_multipliers,
                etas=self.etas,
                iterations=self.iterations,
                escape_threshold=self.escape_threshold,
                engine=self.engine,
                **({"weight_decay": mu} if mu else {}),
            )
            params = json.loads(json.dumps(fields))
            yield SweepTask(task_id=task_id_of(params), **fields)
