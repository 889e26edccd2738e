"""Sweeps of training runs (``kind = "train"``): GD from an initialization, many step sizes.

A train sweep is the Cartesian product of *architectures* (drawn per seed or fixed, as
for escape sweeps), *seeds*, *initializations* and *init scales*. One **task** is one
target and one initialization with every step size of the sweep batched into one call
of :func:`dmfsharp.dynamics.train`; each step size ``eta = eta_ratio * eta_crit`` gives
one **run** (``eta_crit = 2 / lambda_flat(M)``, eq. 35).

Example spec::

    [sweep]
    kind = "train"
    name = "eos-small"
    seeds = 20
    depths = [2, 3]
    d0 = [2]
    dL = [2]
    widths = [2, 4]
    init = "gaussian"              # or a list of "gaussian", "orthogonal", "identity"
    init_scales = [0.1, 0.3, 1.0]
    eta_ratios = [0.5, 0.9, 1.1, 1.5]   # eta / eta_crit
    iterations = 3000
    converge_tol = 1e-10           # optional: loss below this times ||M||_F^2
    track_every = 50               # optional: Gauss-Newton lambda_max every so many steps
    max_period = 16                # optional: longest orbit period searched
    engine = "numba"

Seeds: the target ``M`` (i.i.d. standard normal, ``d_L x d_0``) and drawn hidden widths
come from :attr:`TrainTask.target_seed`, which depends on the architecture and ``seed``
only, so every initialization and scale of one seed trains towards the same ``M``; the
initialization comes from :attr:`TrainTask.init_seed`. Task ids are hashes of the
parameters, as for escape tasks, so a spec with fewer seeds gives the same rows for the
seeds it shares.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from .spec import architectures_json, canonical_json, seed63, task_id_of, weight_decay_entry

__all__ = ["TrainSpec", "TrainTask", "DEFAULT_CONVERGE_TOL", "DEFAULT_TRACK_EVERY", "DEFAULT_MAX_PERIOD"]

#: Default ``converge_tol`` of train sweeps (the training lab's default).
DEFAULT_CONVERGE_TOL = 1e-10
#: Default ``track_every`` of train sweeps: the sharpness trace of a study's run is a
#: summary, not a figure (every step costs up to 2.3x an untracked step with numba where
#: ``d_0 d_L <= 64``, ``benchmarks/bench_train.py``, and a Lanczos solve per step beyond).
DEFAULT_TRACK_EVERY = 50
#: Default ``max_period`` of train sweeps.
DEFAULT_MAX_PERIOD = 16


@dataclass(frozen=True)
class TrainTask:
    """One target and initialization with all its step sizes: the unit of work.

    Attributes
    ----------
    task_id : str
        16 hex digits of the SHA-256 of :meth:`params`.
    architecture, depth, d0, dL, widths, dims, seed :
        As for :class:`dmfsharp.sweep.spec.SweepTask`.
    init : str
        ``"gaussian"``, ``"orthogonal"`` or ``"identity"``.
    init_scale : float
        ``alpha`` of the initialization.
    eta_ratios : tuple of float
        Step sizes in units of ``eta_crit``.
    iterations, converge_tol, track_every, max_period :
        Options of :func:`dmfsharp.dynamics.train`.
    engine : str
        ``"numpy"`` or ``"numba"``.
    weight_decay : float
        ``mu >= 0`` of ``train(..., weight_decay=mu)``; 0 is omitted from :meth:`params`
        (and so from the id). With ``mu > 0``, ``eta_crit`` is ``2 / lambda_max`` at the
        global minimizers of ``L_mu`` (as :func:`dmfsharp.dynamics.train` reports it).
    """

    kind: ClassVar[str] = "train"

    task_id: str
    architecture: str
    depth: int
    d0: int
    dL: int
    widths: tuple[int, int] | None
    dims: tuple[int, ...] | None
    seed: int
    init: str
    init_scale: float
    eta_ratios: tuple[float, ...]
    iterations: int
    converge_tol: float
    track_every: int
    max_period: int
    engine: str = "numpy"
    weight_decay: float = 0.0

    def params(self) -> dict[str, Any]:
        """Every parameter except the id, as plain JSON types (with ``kind``; ``weight_decay`` if > 0)."""
        d = asdict(self)
        d.pop("task_id")
        if not d["weight_decay"]:
            d.pop("weight_decay")
        d["kind"] = "train"
        return json.loads(json.dumps(d))

    @property
    def target_seed(self) -> int:
        """63-bit seed of the target ``M`` and drawn widths: architecture and ``seed`` only."""
        p = self.params()
        key = {k: p[k] for k in ("kind", "architecture", "depth", "d0", "dL", "widths", "dims", "seed")}
        return seed63(key)

    @property
    def init_seed(self) -> int:
        """63-bit seed of the initialization: the target's key plus ``init`` and ``init_scale``."""
        p = self.params()
        key = {
            k: p[k]
            for k in (
                "kind",
                "architecture",
                "depth",
                "d0",
                "dL",
                "widths",
                "dims",
                "seed",
                "init",
                "init_scale",
            )
        }
        return seed63(key)


@dataclass(frozen=True)
class TrainSpec:
    """A validated train sweep (see the module docstring for the TOML keys)."""

    kind: ClassVar[str] = "train"

    name: str
    seeds: tuple[int, ...]
    architectures: tuple[tuple[str, int, int, int, tuple[int, int] | None, tuple[int, ...] | None], ...]
    inits: tuple[str, ...]
    init_scales: tuple[float, ...]
    eta_ratios: tuple[float, ...]
    iterations: int
    converge_tol: float = DEFAULT_CONVERGE_TOL
    track_every: int = DEFAULT_TRACK_EVERY
    max_period: int = DEFAULT_MAX_PERIOD
    engine: str = "numpy"
    description: str = ""
    weight_decays: tuple[float, ...] = (0.0,)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_tasks(self) -> int:
        """Number of tasks, without enumerating them."""
        n = len(self.architectures) * len(self.seeds) * len(self.inits) * len(self.init_scales)
        return n * len(self.weight_decays)

    @property
    def runs_per_task(self) -> int:
        """Step sizes per task (one run each)."""
        return len(self.eta_ratios)

    @property
    def num_runs(self) -> int:
        """Total number of training runs."""
        return self.num_tasks * self.runs_per_task

    def to_dict(self) -> dict[str, Any]:
        """The normalized spec as plain JSON types (what the results store keeps)."""
        return {
            "kind": "train",
            "name": self.name,
            "description": self.description,
            "seeds": list(self.seeds),
            "architectures": architectures_json(self.architectures),
            "inits": list(self.inits),
            "init_scales": list(self.init_scales),
            "eta_ratios": list(self.eta_ratios),
            "iterations": self.iterations,
            "converge_tol": self.converge_tol,
            "track_every": self.track_every,
            "max_period": self.max_period,
            "engine": self.engine,
            **weight_decay_entry(self.weight_decays),
        }

    def fingerprint(self) -> str:
        """Hash of the normalized spec: a results folder belongs to one fingerprint."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()[:16]

    def tasks(self) -> Iterator[TrainTask]:
        """Enumerate the tasks lazily."""
        for arch, seed, init, scale, mu in itertools.product(
            self.architectures, self.seeds, self.inits, self.init_scales, self.weight_decays
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
                init=init,
                init_scale=scale,
                eta_ratios=self.eta_ratios,
                iterations=self.iterations,
                converge_tol=self.converge_tol,
                track_every=self.track_every,
                max_period=self.max_period,
                engine=self.engine,
                **({"weight_decay": mu} if mu else {}),
            )
            params = json.loads(json.dumps({**fields, "kind": "train"}))
            yield TrainTask(task_id=task_id_of(params), **fields)
