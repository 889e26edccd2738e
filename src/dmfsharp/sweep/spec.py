"""Sweep specifications: a TOML file describing a grid of escape experiments.

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
    description = "..."            # free text (optional)

The GD engine is part of the spec, and so of every task id: post-escape trajectories
are chaotic, so rounding-level differences between engines can change where a run
lands, and a sweep must not mix engines (for example on resuming after numba was
installed). ``"numba"`` needs numba on every worker.

The loss is the whitened eq. 15; a data covariance is not a spec key yet (the escape
engine runs GD on ``||M - W_L ... W_1||_F^2``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PAPER_ARCHITECTURES",
    "SpecError",
    "SweepSpec",
    "SweepTask",
    "load_spec",
    "parse_spec",
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


def _paper_architectures() -> dict[str, tuple[int, ...]]:
    try:
        from ..presets import PRESETS
    except ImportError:
        return PAPER_ARCHITECTURES
    return {name: tuple(p.dims) for name, p in PRESETS.items()}


#: Default ``escape_threshold`` (the escape engine's own default, written into every
#: spec so that results do not depend on a library default).
DEFAULT_ESCAPE_THRESHOLD = 1e-4

_MINIMIZERS = ("random", "flattest")
_DIRECTIONS = ("top", "random")
_KNOWN_KEYS = {
    "name",
    "seeds",
    "depths",
    "d0",
    "dL",
    "widths",
    "radius",
    "radii",
    "step_multipliers",
    "etas",
    "iterations",
    "direction",
    "minimizers",
    "architectures",
    "dims",
    "scale",
    "description",
    "escape_threshold",
    "engine",
}
_ENGINES = ("numpy", "numba")


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
    """

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

    def params(self) -> dict[str, Any]:
        """Every parameter except the id, as plain JSON types."""
        d = asdict(self)
        d.pop("task_id")
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
        return _seed63(key)

    @property
    def engine_seed(self) -> int:
        """63-bit seed for the escape engine (the random perturbation direction)."""
        p = self.params()
        key = {
            k: v
            for k, v in p.items()
            if k not in ("step_multipliers", "etas", "iterations", "escape_threshold", "engine")
        }
        return _seed63(key)


def _seed63(key: dict[str, Any]) -> int:
    digest = hashlib.sha256(_canonical(key).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def task_id_of(params: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(params).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep (see the module docstring for the TOML keys)."""

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
        }

    def fingerprint(self) -> str:
        """Hash of the normalized spec: a results folder belongs to one fingerprint."""
        return hashlib.sha256(_canonical(self.to_dict()).encode()).hexdigest()[:16]

    def tasks(self) -> Iterator[SweepTask]:
        """Enumerate the tasks lazily (constant memory for any sweep size)."""
        for arch, seed, kind, radius, direction in itertools.product(
            self.architectures, self.seeds, self.minimizers, self.radii, self.directions
        ):
            name, depth, d0, dL, widths, dims = arch
            fields = dict(
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
            )
            params = json.loads(json.dumps(fields))
            yield SweepTask(task_id=task_id_of(params), **fields)


# --- validation -------------------------------------------------------------------------


def _int(value: Any, key: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"[sweep] {key} must be an integer, got {value!r}")
    if value < minimum:
        raise SpecError(f"[sweep] {key} must be >= {minimum}, got {value}")
    return value


def _int_list(value: Any, key: str, *, minimum: int) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SpecError(f"[sweep] {key} must be a non-empty list of integers, got {value!r}")
    out = tuple(_int(v, key, minimum=minimum) for v in value)
    if len(set(out)) != len(out):
        raise SpecError(f"[sweep] {key} has repeated values: {list(out)}")
    return out


def _positive(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"[sweep] {key} must be a number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise SpecError(f"[sweep] {key} must be positive and finite, got {value!r}")
    return v


def _positive_list(value: Any, key: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise SpecError(f"[sweep] {key} must be a list of positive numbers, got {value!r}")
    out = tuple(_positive(v, key) for v in value)
    if len(set(out)) != len(out):
        raise SpecError(f"[sweep] {key} has repeated values: {list(out)}")
    return out


def _choices(value: Any, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SpecError(f"[sweep] {key} must be one of {list(allowed)} or a list of them")
    for v in value:
        if v not in allowed:
            raise SpecError(f"[sweep] {key}: unknown value {v!r}; expected one of {list(allowed)}")
    if len(set(value)) != len(value):
        raise SpecError(f"[sweep] {key} has repeated values: {value}")
    return tuple(value)


def parse_spec(doc: dict[str, Any]) -> SweepSpec:
    """Validate a parsed TOML document and return the :class:`SweepSpec`.

    Raises
    ------
    SpecError
        Naming the offending key: a missing or unknown key, a wrong type, an empty or
        repeated list, a non-positive step size or radius, hidden widths that violate
        eq. 17 (``min_i d_i >= min(d_0, d_L)``), an unknown paper architecture.

    Examples
    --------
    >>> spec = parse_spec({"sweep": {"name": "t", "seeds": 2, "depths": [2, 3], "d0": [1],
    ...     "dL": [1], "widths": [1, 3], "step_multipliers": [0.9, 1.5], "iterations": 100}})
    >>> spec.num_tasks, spec.num_runs
    (4, 8)
    """
    if not isinstance(doc, dict) or "sweep" not in doc:
        raise SpecError("spec must have a [sweep] table")
    extra_tables = sorted(set(doc) - {"sweep"})
    if extra_tables:
        raise SpecError(f"unknown top-level table(s) {extra_tables}; everything goes under [sweep]")
    s = doc["sweep"]
    if not isinstance(s, dict):
        raise SpecError("[sweep] must be a table")
    unknown = sorted(set(s) - _KNOWN_KEYS)
    if unknown:
        hint = ""
        if any("cov" in k for k in unknown):
            hint = " (a data covariance is not supported yet: the loss is the whitened eq. 15)"
        raise SpecError(f"[sweep] unknown key(s) {unknown}; known keys: {sorted(_KNOWN_KEYS)}{hint}")

    name = s.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpecError("[sweep] name must be a non-empty string")
    description = s.get("description", "")
    if not isinstance(description, str):
        raise SpecError("[sweep] description must be a string")

    if "seeds" not in s:
        raise SpecError("[sweep] seeds is required: a count (seeds 0..n-1) or a list of seeds")
    seeds_raw = s["seeds"]
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        seeds = tuple(range(_int(seeds_raw, "seeds", minimum=1)))
    else:
        seeds = _int_list(seeds_raw, "seeds", minimum=0)

    architectures: list = []
    random_keys = [k for k in ("depths", "d0", "dL", "widths") if k in s]
    if random_keys:
        missing = [k for k in ("depths", "d0", "dL", "widths") if k not in s]
        if missing:
            raise SpecError(f"[sweep] drawn architectures need depths, d0, dL and widths; missing {missing}")
        depths = _int_list(s["depths"], "depths", minimum=2)
        d0s = _int_list(s["d0"], "d0", minimum=1)
        dLs = _int_list(s["dL"], "dL", minimum=1)
        w = s["widths"]
        if (
            not isinstance(w, list)
            or len(w) != 2
            or any(isinstance(x, bool) or not isinstance(x, int) for x in w)
        ):
            raise SpecError(f"[sweep] widths must be an inclusive range [lo, hi] of integers, got {w!r}")
        lo, hi = w
        if not 1 <= lo <= hi:
            raise SpecError(f"[sweep] widths [lo, hi] needs 1 <= lo <= hi, got {w}")
        for d0, dL in itertools.product(d0s, dLs):
            if lo < min(d0, dL):
                raise SpecError(
                    f"[sweep] widths lower end {lo} is below min(d0, dL) = {min(d0, dL)} "
                    f"for d0 = {d0}, dL = {dL}: such widths violate eq. 17"
                )
        for depth, d0, dL in itertools.product(depths, d0s, dLs):
            architectures.append(("random", depth, d0, dL, (lo, hi), None))
    paper = _paper_architectures()
    for preset in _choices_any(s.get("architectures", []), "architectures"):
        if preset not in paper:
            raise SpecError(
                f"[sweep] architectures: unknown preset {preset!r}; expected one of {sorted(paper)}"
            )
        d = paper[preset]
        architectures.append((preset, len(d) - 1, d[0], d[-1], None, d))
    explicit = s.get("dims", [])
    if not isinstance(explicit, list):
        raise SpecError("[sweep] dims must be a list of layer-dimension lists, e.g. [[1, 9, 4, 1]]")
    for d in explicit:
        if not isinstance(d, list):
            raise SpecError(f"[sweep] dims entries must be lists (d_0, ..., d_L), got {d!r}")
        dd = tuple(_int(x, "dims", minimum=1) for x in d)
        if len(dd) < 3:
            raise SpecError(f"[sweep] dims {list(dd)} needs depth L >= 2 (at least 3 entries)")
        if min(dd[1:-1]) < min(dd[0], dd[-1]):
            raise SpecError(f"[sweep] dims {list(dd)} violate eq. 17 (a hidden width below min(d_0, d_L))")
        architectures.append(("dims", len(dd) - 1, dd[0], dd[-1], None, dd))
    if not architectures:
        raise SpecError("[sweep] no architectures: give depths/d0/dL/widths, architectures or dims")
    keys = [a[1:] for a in architectures]
    if len(set(keys)) != len(keys):
        raise SpecError("[sweep] the same architecture is listed twice (check architectures and dims)")

    minimizers = _choices(s.get("minimizers", "random"), "minimizers", _MINIMIZERS)
    directions = _choices(s.get("direction", "top"), "direction", _DIRECTIONS)
    if "radius" in s and "radii" in s:
        raise SpecError("[sweep] give either radius or radii, not both")
    radii = (
        (_positive(s["radius"], "radius"),)
        if "radius" in s
        else _positive_list(s.get("radii", [1e-10]), "radii")
    )
    if not radii:
        raise SpecError("[sweep] radii must not be empty")
    mults = _positive_list(s.get("step_multipliers", []), "step_multipliers")
    etas = _positive_list(s.get("etas", []), "etas")
    if not mults and not etas:
        raise SpecError("[sweep] give step_multipliers (eta * lambda_max / 2) and/or etas (absolute)")
    if "iterations" not in s:
        raise SpecError("[sweep] iterations (the GD budget per run) is required")
    iterations = _int(s["iterations"], "iterations", minimum=1)
    scale = _positive(s.get("scale", 1.0), "scale")
    tau = _positive(s.get("escape_threshold", DEFAULT_ESCAPE_THRESHOLD), "escape_threshold")
    engine = s.get("engine", "numpy")
    if engine not in _ENGINES:
        raise SpecError(f"[sweep] engine must be one of {list(_ENGINES)}, got {engine!r}")
    return SweepSpec(
        name=name.strip(),
        seeds=seeds,
        architectures=tuple(architectures),
        minimizers=minimizers,
        radii=radii,
        directions=directions,
        step_multipliers=mults,
        etas=etas,
        iterations=iterations,
        scale=scale,
        escape_threshold=tau,
        engine=engine,
        description=description,
        raw=doc,
    )


def _choices_any(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"[sweep] {key} must be a list of names, got {value!r}")
    return value


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec from a TOML file.

    Raises
    ------
    SpecError
        If the file is missing, is not valid TOML, or fails :func:`parse_spec`
        (the message starts with the file name).
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder, expected a TOML spec file") from None
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    try:
        return parse_spec(doc)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
