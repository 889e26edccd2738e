"""Validation of sweep specs: TOML -> a pydantic model of the keys -> checked values.

Two layers: a pydantic (v2) model checks the keys of the ``[sweep]`` table and their
types, and its errors are reformatted into one line naming the key and the expected
type; then the values are checked for what they mean (ranges, eq. 17, the documented
limits of :mod:`dmfsharp.limits`, float64 range, the escape threshold) before any task
runs. pydantic is imported lazily: it comes with the ``sweep`` extra. The keys are
documented in :mod:`dmfsharp.sweep.spec`.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Any

from .spec import DEFAULT_ESCAPE_THRESHOLD, SpecError, SweepSpec, paper_architectures
from .spec_values import listed as _listed
from .spec_values import positive_value as _positive
from .spec_values import unique_values as _unique
from .spec_values import weight_decay_values
from .train_schema import parse_train_values
from .train_spec import DEFAULT_CONVERGE_TOL, DEFAULT_MAX_PERIOD, DEFAULT_TRACK_EVERY, TrainSpec

__all__ = ["MAX_SPEC_BYTES", "load_spec", "parse_spec", "ESCAPE_ONLY_KEYS", "TRAIN_ONLY_KEYS"]

#: Keys that only an escape sweep (``kind = "escape"``, the default) takes.
ESCAPE_ONLY_KEYS = (
    "minimizers",
    "radius",
    "radii",
    "direction",
    "step_multipliers",
    "etas",
    "scale",
    "escape_threshold",
)
#: Keys that only a train sweep (``kind = "train"``) takes.
TRAIN_ONLY_KEYS = ("init", "init_scales", "eta_ratios", "converge_tol", "track_every", "max_period")

#: Largest spec file read (a spec is a few lines of TOML).
MAX_SPEC_BYTES = 1_000_000


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "bool_type": "true or false",
    "literal_error": "one of",
}


def _model() -> Any:
    """The pydantic model of the ``[sweep]`` table (built once, pydantic imported lazily)."""
    global _MODEL
    if _MODEL is not None:
        return _MODEL
    try:
        from pydantic import BaseModel, ConfigDict, Field
    except ImportError:
        raise ImportError("reading a sweep spec needs pydantic: pip install 'dmfsharp[sweep]'") from None
    from typing import Literal

    Minimizer = Literal["random", "flattest"]
    Direction = Literal["top", "random"]
    Init = Literal["gaussian", "orthogonal", "identity"]

    class SweepTable(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

        kind: Literal["escape", "train"] = "escape"
        name: str
        description: str = ""
        seeds: int | list[int]
        depths: int | list[int] | None = None
        d0: int | list[int] | None = None
        dL: int | list[int] | None = None
        widths: list[int] | None = Field(default=None)
        radius: float | None = None
        radii: list[float] | None = None
        step_multipliers: list[float] = []
        etas: list[float] = []
        iterations: int
        direction: Direction | list[Direction] = "top"
        minimizers: Minimizer | list[Minimizer] = "random"
        architectures: str | list[str] = []
        dims: list[list[int]] = []
        scale: float = 1.0
        escape_threshold: float = DEFAULT_ESCAPE_THRESHOLD
        engine: Literal["numpy", "numba"] = "numpy"
        weight_decay: float | list[float] = 0.0
        # kind = "train" (dmfsharp.sweep.train_spec)
        init: Init | list[Init] = "gaussian"
        init_scales: list[float] = []
        eta_ratios: list[float] = []
        converge_tol: float = DEFAULT_CONVERGE_TOL
        track_every: int = DEFAULT_TRACK_EVERY
        max_period: int = DEFAULT_MAX_PERIOD

    _MODEL = SweepTable
    return _MODEL


_MODEL: Any = None


def _pydantic_message(exc: Any) -> str:
    """One line from a pydantic ``ValidationError``: the first error, its key and type."""
    errors = exc.errors()
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        hint = ""
        if any("cov" in k for k in unknown):
            hint = " (a data covariance is not supported yet: the loss is the whitened eq. 15)"
        fields = sorted(_model().model_fields)
        return f"[sweep] unknown key(s) {sorted(unknown)}; known keys: {fields}{hint}"
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    if missing:
        return f"[sweep] {missing[0]} is required"
    # a union reports one error per member: prefer the scalar's wording for the key
    e = errors[0]
    key = str(e["loc"][0])
    same = [x for x in errors if x["loc"][0] == e["loc"][0]]
    if len(same) > 1:  # a union: report the member that matches the given value's kind
        listed = [x for x in same if any(str(t).startswith("list") for t in x["loc"][1:2])]
        scalar = [x for x in same if x not in listed]
        given = _given(same)
        e = (listed if isinstance(given, list) and listed else scalar or same)[0]
    index = next((x for x in e["loc"][1:] if isinstance(x, int)), None)
    what = _TYPE_WORDS.get(e["type"])
    if e["type"] == "literal_error":
        expected_values = e.get("ctx", {}).get("expected", "")
        return f"[sweep] {key} must be one of {expected_values}, got {e['input']!r}"
    where = key if index is None else f"{key}[{index}]"
    expected = f"must be {what}" if what else e["msg"].lower()
    shown = repr(e["input"])
    return f"[sweep] {where} {expected}, got {shown[:60]}"


def _given(errors: list) -> Any:
    """The value the user gave for the key of a group of pydantic errors."""
    return next((x["input"] for x in errors if len(x["loc"]) <= 2), errors[0]["input"])


def _ints(value: Any, key: str, lo: int, hi: int) -> tuple[int, ...]:
    values = _unique(_listed(value), key)
    for v in values:
        if v < lo:
            raise SpecError(f"[sweep] {key} must be >= {lo}, got {v}")
        if v > hi:
            raise SpecError(f"[sweep] {key} must be <= {hi} (the documented limit), got {v}")
    return values


def _check_size(dims: tuple[int, ...], key: str) -> None:
    from ..limits import MAX_PARAMS, check_allocation

    n = sum(a * b for a, b in zip(dims, dims[1:]))
    if n > MAX_PARAMS:
        raise SpecError(f"[sweep] {key}: N = {n} parameters is more than the limit of {MAX_PARAMS}")
    try:
        check_allocation((dims[0] * dims[-1], dims[0] * dims[-1]), what=f"[sweep] {key}: the matrix S")
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def parse_spec(doc: dict[str, Any]) -> SweepSpec | TrainSpec:
    """Validate a parsed TOML document and return the :class:`SweepSpec`.

    Keys and types are checked by a pydantic model, then the values: ranges, eq. 17,
    sizes against the limits of :mod:`dmfsharp.limits` (depth, dimensions, parameters,
    iterations, seeds, tasks, the memory of the GD traces), a scale whose products stay
    within float64, and a radius below the escape threshold. Nothing runs before all of
    this holds.

    Parameters
    ----------
    doc : dict
        The parsed TOML document, with a ``[sweep]`` table.

    Returns
    -------
    SweepSpec or TrainSpec
        The validated sweep (:class:`~dmfsharp.sweep.train_spec.TrainSpec` for
        ``kind = "train"``).

    Raises
    ------
    SpecError
        One line naming the offending key and what it must satisfy.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("pydantic")  # the 'sweep' extra
    >>> spec = parse_spec({"sweep": {"name": "t", "seeds": 2, "depths": [2, 3], "d0": [1],
    ...     "dL": [1], "widths": [1, 3], "step_multipliers": [0.9, 1.5], "iterations": 100}})
    >>> spec.num_tasks, spec.num_runs
    (4, 8)
    """
    from pydantic import ValidationError

    from ..limits import (
        MAX_DEPTH,
        MAX_DIM,
        MAX_ITERATIONS,
        MAX_SEEDS,
        MAX_TASKS,
        check_allocation,
    )

    if not isinstance(doc, dict) or "sweep" not in doc:
        raise SpecError("spec must have a [sweep] table")
    extra_tables = sorted(set(doc) - {"sweep"})
    if extra_tables:
        raise SpecError(f"unknown top-level table(s) {extra_tables}; everything goes under [sweep]")
    if not isinstance(doc["sweep"], dict):
        raise SpecError("[sweep] must be a table")
    try:
        m = _model().model_validate(doc["sweep"])
    except ValidationError as exc:
        raise SpecError(_pydantic_message(exc)) from None

    if not m.name.strip():
        raise SpecError("[sweep] name must be a non-empty string")
    given = set(m.model_fields_set)
    foreign = sorted(given & set(ESCAPE_ONLY_KEYS if m.kind == "train" else TRAIN_ONLY_KEYS))
    if foreign:
        other = "escape" if m.kind == "train" else "train"
        raise SpecError(
            f"[sweep] key(s) {foreign} belong to kind = {other!r} sweeps, and this spec has kind = {m.kind!r}"
        )
    if isinstance(m.seeds, int):
        if not 1 <= m.seeds <= MAX_SEEDS:
            raise SpecError(
                f"[sweep] seeds must be >= 1 and <= {MAX_SEEDS} (the documented limit), got {m.seeds}"
            )
        seeds = tuple(range(m.seeds))
    else:
        if len(m.seeds) > MAX_SEEDS:
            raise SpecError(f"[sweep] seeds lists {len(m.seeds)} seeds, more than the limit of {MAX_SEEDS}")
        seeds = _ints(m.seeds, "seeds", 0, 2**63 - 1)

    architectures: list = []
    drawn = {k: getattr(m, k) for k in ("depths", "d0", "dL", "widths")}
    if any(v is not None for v in drawn.values()):
        missing = [k for k, v in drawn.items() if v is None]
        if missing:
            raise SpecError(f"[sweep] drawn architectures need depths, d0, dL and widths; missing {missing}")
        depths = _ints(m.depths, "depths", 2, MAX_DEPTH)
        d0s = _ints(m.d0, "d0", 1, MAX_DIM)
        dLs = _ints(m.dL, "dL", 1, MAX_DIM)
        w = m.widths
        if len(w) != 2:
            raise SpecError(f"[sweep] widths must be an inclusive range [lo, hi] of integers, got {w!r}")
        lo, hi = w
        if not 1 <= lo <= hi:
            raise SpecError(f"[sweep] widths [lo, hi] needs 1 <= lo <= hi, got {w}")
        if hi > MAX_DIM:
            raise SpecError(f"[sweep] widths must be <= {MAX_DIM} (the documented limit), got {hi}")
        for d0, dL in itertools.product(d0s, dLs):
            if lo < min(d0, dL):
                raise SpecError(
                    f"[sweep] widths lower end {lo} is below min(d0, dL) = {min(d0, dL)} "
                    f"for d0 = {d0}, dL = {dL}: such widths violate eq. 17"
                )
        for depth, d0, dL in itertools.product(depths, d0s, dLs):
            _check_size((d0,) + (hi,) * (depth - 1) + (dL,), "widths")
            architectures.append(("random", depth, d0, dL, (lo, hi), None))
    paper = paper_architectures()
    for preset in _listed(m.architectures):
        if preset not in paper:
            raise SpecError(
                f"[sweep] architectures: unknown preset {preset!r}; expected one of {sorted(paper)}"
            )
        d = tuple(paper[preset])
        architectures.append((preset, len(d) - 1, d[0], d[-1], None, d))
    for d in m.dims:
        dd = tuple(d)
        if len(dd) < 3:
            raise SpecError(f"[sweep] dims {list(dd)} needs depth L >= 2 (at least 3 entries)")
        _ints(list(set(dd)), "dims", 1, MAX_DIM)
        if len(dd) - 1 > MAX_DEPTH:
            raise SpecError(f"[sweep] dims: depth must be <= {MAX_DEPTH}, got {len(dd) - 1}")
        if min(dd[1:-1]) < min(dd[0], dd[-1]):
            raise SpecError(f"[sweep] dims {list(dd)} violate eq. 17 (a hidden width below min(d_0, d_L))")
        _check_size(dd, "dims")
        architectures.append(("dims", len(dd) - 1, dd[0], dd[-1], None, dd))
    if not architectures:
        raise SpecError("[sweep] no architectures: give depths/d0/dL/widths, architectures or dims")
    keys = [a[1:] for a in architectures]
    if len(set(keys)) != len(keys):
        raise SpecError("[sweep] the same architecture is listed twice (check architectures and dims)")
    if m.kind == "train":
        return parse_train_values(m, seeds, tuple(architectures), doc)

    minimizers = _unique(_listed(m.minimizers), "minimizers")
    mus = weight_decay_values(m.weight_decay, minimizers)
    directions = _unique(_listed(m.direction), "direction")
    if m.radius is not None and m.radii is not None:
        raise SpecError("[sweep] give either radius or radii, not both")
    if m.radius is not None:
        radii: tuple[float, ...] = (_positive(m.radius, "radius"),)
    else:
        radii = _unique([_positive(r, "radii") for r in (m.radii or [1e-10])], "radii")
    mults = tuple(_positive(v, "step_multipliers") for v in m.step_multipliers)
    etas = tuple(_positive(v, "etas") for v in m.etas)
    for key, vals in (("step_multipliers", mults), ("etas", etas)):
        if len(set(vals)) != len(vals):
            raise SpecError(f"[sweep] {key} has repeated values: {list(vals)[:20]}")
        if len(vals) > 1000:
            raise SpecError(f"[sweep] {key} lists {len(vals)} values, more than the limit of 1000")
    if not mults and not etas:
        raise SpecError("[sweep] give step_multipliers (eta * lambda_max / 2) and/or etas (absolute)")
    if m.iterations < 1:
        raise SpecError(f"[sweep] iterations must be >= 1, got {m.iterations}")
    if m.iterations > MAX_ITERATIONS:
        raise SpecError(
            f"[sweep] iterations must be <= {MAX_ITERATIONS} (the documented limit), got {m.iterations}"
        )
    try:
        check_allocation(
            (m.iterations + 1, 8 * (len(mults) + len(etas))), what="[sweep] iterations: the GD traces"
        )
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    scale = _positive(m.scale, "scale")
    tau = _positive(m.escape_threshold, "escape_threshold")
    for _name, depth, d0, dL, widths, dims in architectures:
        # the product of L Gaussian factors of std `scale` has entries of size ~scale**L
        exponent = depth * math.log10(scale)
        if not -100 <= exponent <= 100:
            raise SpecError(
                f"[sweep] scale {scale!r} gives products of size scale**L = 1e{exponent:.0f} "
                f"at depth {depth}: outside float64's safe range (keep scale**L within 1e-100 .. 1e100)"
            )
        # ||w*|| ~ scale sqrt(N) for Gaussian factors: a start beyond tau ||w*|| has escaped already
        hidden = widths[0] if widths else None
        d = dims or (d0,) + (hidden,) * (depth - 1) + (dL,)
        norm = scale * math.sqrt(sum(a * b for a, b in zip(d, d[1:])))
        if max(radii) >= tau * norm:
            raise SpecError(
                f"[sweep] radius {max(radii)!r} is beyond the escape threshold tau ||w*|| ~ {tau * norm:.3g} "
                f"(escape_threshold {tau!r} x scale sqrt(N)) for depth {depth}: runs would start escaped"
            )
    spec = SweepSpec(
        name=m.name.strip(),
        seeds=seeds,
        architectures=tuple(architectures),
        minimizers=minimizers,
        radii=radii,
        directions=directions,
        step_multipliers=mults,
        etas=etas,
        iterations=m.iterations,
        scale=scale,
        escape_threshold=tau,
        engine=m.engine,
        description=m.description,
        weight_decays=mus,
        raw=doc,
    )
    if spec.num_tasks > MAX_TASKS:
        raise SpecError(f"[sweep] {spec.num_tasks} tasks, more than the limit of {MAX_TASKS}")
    return spec


def load_spec(path: str | Path, *, seeds: int | None = None) -> SweepSpec | TrainSpec:
    """Read and validate a sweep spec from a TOML file.

    ``seeds`` overrides the spec's ``seeds`` with ``0 .. seeds-1`` (a quick reproduction:
    task ids do not depend on how many seeds a spec has, so the shared tasks give the
    same rows); it must not exceed the spec's own number of seeds.

    Raises
    ------
    SpecError
        If the file is missing, is not valid TOML, or fails :func:`parse_spec`
        (the message starts with the file name).
    """
    import stat

    path = Path(path)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise SpecError(f"{path}: is a folder, expected a TOML spec file")
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"{path}: not a regular file, expected a TOML spec file")
        if st.st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: {st.st_size} bytes, more than the limit of {MAX_SPEC_BYTES} for a spec")
        text = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    if seeds is not None:
        sweep = doc.get("sweep")
        own = sweep.get("seeds") if isinstance(sweep, dict) else None
        count = own if isinstance(own, int) else len(own) if isinstance(own, list) else None
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise SpecError(f"--seeds must be a positive integer, got {seeds!r}")
        if count is not None and seeds > count:
            raise SpecError(f"--seeds {seeds} is more than the spec's {count} seeds")
        if isinstance(sweep, dict):
            sweep["seeds"] = own[:seeds] if isinstance(own, list) else seeds
    try:
        return parse_spec(doc)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
