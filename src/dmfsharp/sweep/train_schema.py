"""Values of a ``kind = "train"`` sweep spec (the keys are checked by :mod:`dmfsharp.sweep.schema`)."""

from __future__ import annotations

import math
from typing import Any

from .spec import SpecError
from .spec_values import listed, positive_value, unique_values, weight_decay_values
from .train_spec import TrainSpec

__all__ = ["parse_train_values"]


def parse_train_values(
    m: Any, seeds: tuple[int, ...], architectures: tuple, doc: dict[str, Any]
) -> TrainSpec:
    """Check the values of a ``kind = "train"`` spec and build its :class:`TrainSpec`.

    ``m`` is the validated pydantic model of the ``[sweep]`` table, ``seeds`` and
    ``architectures`` are already checked by :func:`dmfsharp.sweep.schema.parse_spec`.
    Raises :class:`~dmfsharp.sweep.spec.SpecError` naming the offending key.
    """
    from ..limits import MAX_ITERATIONS, MAX_TASKS, check_allocation

    inits = unique_values(listed(m.init), "init")
    if "identity" in inits:
        for _name, depth, d0, dL, widths, dims in architectures:
            square = dims is not None and len(set(dims)) == 1
            if not square and not (widths is not None and d0 == dL == widths[0] == widths[1]):
                raise SpecError(
                    f"[sweep] init 'identity' needs square layers (all d_i equal); depth {depth} "
                    f"with d0 = {d0}, dL = {dL} is not"
                )
    scales = unique_values([positive_value(v, "init_scales") for v in m.init_scales], "init_scales")
    ratios = unique_values([positive_value(v, "eta_ratios") for v in m.eta_ratios], "eta_ratios")
    if len(ratios) > 1000:
        raise SpecError(f"[sweep] eta_ratios lists {len(ratios)} values, more than the limit of 1000")
    if not 1 <= m.iterations <= MAX_ITERATIONS:
        raise SpecError(f"[sweep] iterations must be >= 1 and <= {MAX_ITERATIONS}, got {m.iterations}")
    if m.track_every < 1:
        raise SpecError(f"[sweep] track_every must be >= 1, got {m.track_every}")
    if m.max_period < 2:
        raise SpecError(f"[sweep] max_period must be >= 2, got {m.max_period}")
    tol = m.converge_tol
    if not (math.isfinite(tol) and 0 <= tol < 1):
        raise SpecError(f"[sweep] converge_tol must be in [0, 1), got {tol!r}")
    for scale in scales:
        for _name, depth, *_rest in architectures:
            exponent = depth * math.log10(scale)
            if not -100 <= exponent <= 100:
                raise SpecError(
                    f"[sweep] init_scales {scale!r} gives products of size 1e{exponent:.0f} at depth "
                    f"{depth}: outside float64's safe range (keep init_scale**L within 1e-100 .. 1e100)"
                )
    widest = max(max(d) if d else max(w[1], d0, dL) for _n, _L, d0, dL, w, d in architectures)
    try:  # the tracked traces: loss, GN lambda_max, singular values and balancedness per step size
        check_allocation(
            (m.iterations + 1, len(ratios) * (3 + widest + max(a[1] for a in architectures))),
            what="[sweep] iterations: the training traces",
        )
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    spec = TrainSpec(
        name=m.name.strip(),
        seeds=seeds,
        architectures=architectures,
        inits=inits,
        init_scales=scales,
        eta_ratios=ratios,
        iterations=m.iterations,
        converge_tol=float(tol),
        track_every=m.track_every,
        max_period=m.max_period,
        engine=m.engine,
        description=m.description,
        weight_decays=weight_decay_values(m.weight_decay),
        raw=doc,
    )
    if spec.num_tasks > MAX_TASKS:
        raise SpecError(f"[sweep] {spec.num_tasks} tasks, more than the limit of {MAX_TASKS}")
    return spec
