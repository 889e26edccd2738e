"""The work of one sweep task, run on a Dask worker: build the minimizer, run the engine.

Kept thin on purpose: everything scientific happens in the escape engine
(:func:`dmfsharp.dynamics.escape_experiment`); this module only builds the
minimizer from the task's seeds and turns the engine's result into plain rows. It
writes nothing: the driver alone writes the results store and the point files.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np

from ..chain import FactorChain
from ..dynamics import escape_experiment
from ..flatness import flat_sharpness
from ..minima import flattest_minimizer, random_dims, random_minimizer
from ..regularized import regularized_minimizer
from .spec import SweepTask
from .train_spec import TrainTask
from .train_task import run_train_task

__all__ = ["build_minimizer", "run_task", "recompute_task", "task_from_params", "RUN_COLUMNS"]

#: Columns of one run row, in store order (see :mod:`dmfsharp.sweep.store`).
RUN_COLUMNS = (
    "task_id",
    "run_index",
    "sweep",
    "architecture",
    "minimizer",
    "seed",
    "minimizer_seed",
    "engine_seed",
    "dims",
    "depth",
    "num_params",
    "lambda_max",
    "flat_lambda_max",
    "sharpness_ratio",
    "radius",
    "direction",
    "escape_threshold",
    "iterations",
    "weight_decay",
    "step_multiplier",
    "eta",
    "steps",
    "status",
    "stop_reason",
    "escape_iteration",
    "predicted_escape_iteration",
    "peak_loss",
    "final_loss",
    "final_lambda_max",
    "final_edge_ratio",
    "final_is_stable",
    "minimum_file",
    "final_file",
)


def build_minimizer(task: SweepTask) -> tuple[FactorChain, np.ndarray]:
    """``(chain, M)``: the task's starting minimizer and its target.

    Hidden widths come from ``random_dims(depth, d0, dL, widths, seed=[minimizer_seed,
    0])`` unless the architecture fixes them; the Gaussian factors (Appendix D.2) from
    ``random_minimizer(dims, seed=minimizer_seed, scale=scale)``, whose product is ``M``.
    For ``minimizer = "flattest"`` the start is ``flattest_minimizer(M, dims,
    seed=minimizer_seed)``: the same target at the flat sharpness ``2 L
    sigma_max(M)^(2 - 2/L)`` (eq. 35). With ``weight_decay = mu > 0`` the start is
    ``regularized_minimizer(M, dims, weight_decay=mu, seed=minimizer_seed)``, a global
    minimizer of ``L_mu`` (the target stays ``M``).
    """
    ms = task.minimizer_seed
    if task.dims is not None:
        dims = tuple(task.dims)
    else:
        lo, hi = task.widths or (task.d0, task.d0)
        dims = random_dims(task.depth, task.d0, task.dL, (lo, hi), seed=[ms, 0])
    chain = random_minimizer(dims, seed=ms, scale=task.scale)
    target = chain.product
    if task.weight_decay:
        chain = regularized_minimizer(target, dims, weight_decay=task.weight_decay, seed=ms)
    elif task.minimizer == "flattest":
        chain = flattest_minimizer(target, dims, seed=ms)
    return chain, target


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def run_task(task: SweepTask | TrainTask, sweep_name: str = "", save_points: bool = False) -> dict[str, Any]:
    """Run one task; return its rows and, with ``save_points``, the factor arrays.

    A :class:`~dmfsharp.sweep.train_spec.TrainTask` goes to
    :func:`dmfsharp.sweep.train_task.run_train_task`; the rest of this docstring is about
    escape tasks.

    Returns
    -------
    dict
        ``task_id``, ``rows`` (one dict per step size, keys :data:`RUN_COLUMNS` minus
        the file columns, which the driver fills), ``minimum`` and ``finals`` (lists of
        arrays ``W1 ... WL``, or None; only with ``save_points``), ``elapsed`` (s).
    """
    if isinstance(task, TrainTask):
        return run_train_task(task, sweep_name, save_points)
    t0 = time.perf_counter()
    chain, target = build_minimizer(task)
    common: dict[str, Any] = dict(
        target=target,
        radius=task.radius,
        direction=task.direction,
        seed=task.engine_seed,
        iterations=task.iterations,
        escape_threshold=task.escape_threshold,
        engine=task.engine,
        weight_decay=task.weight_decay,
    )
    # the engine takes step sizes either relative or absolute per call: one call each
    results = []
    if task.step_multipliers:
        results.append(escape_experiment(chain, step_multipliers=list(task.step_multipliers), **common))
    if task.etas:
        results.append(escape_experiment(chain, etas=list(task.etas), **common))
    res_runs = [run for res in results for run in res.runs]
    lam = float(results[0].lambda_max)
    # The spec's values are stored exactly (a groupby on step_multiplier must not split one
    # spec value into neighbours one ulp apart); the other member of each pair is derived
    # from it once: eta = m * 2 / lambda_max (what the engine ran), m = eta * lambda_max / 2.
    given = [("m", m) for m in task.step_multipliers] + [("eta", e) for e in task.etas]
    flat = flat_sharpness(target, chain.depth)
    base = {
        "task_id": task.task_id,
        "sweep": sweep_name,
        "architecture": task.architecture,
        "minimizer": task.minimizer,
        "seed": task.seed,
        "minimizer_seed": task.minimizer_seed,
        "engine_seed": task.engine_seed,
        "dims": json.dumps(list(chain.dims)),
        "depth": chain.depth,
        "num_params": chain.num_params,
        "lambda_max": lam,
        "flat_lambda_max": flat,
        "sharpness_ratio": lam / flat if flat > 0 else None,
        "radius": task.radius,
        "direction": task.direction,
        "escape_threshold": task.escape_threshold,
        "iterations": task.iterations,
        "weight_decay": task.weight_decay,
    }
    rows, finals = [], []
    for i, (run, (kind, value)) in enumerate(zip(res_runs, given, strict=True)):
        eta = float(run.eta) if kind == "m" else float(value)
        mult = float(value) if kind == "m" else eta * lam / 2.0
        flam = _num(run.final_lambda_max)
        rows.append(
            {
                **base,
                "run_index": i,
                "step_multiplier": mult,
                "eta": eta,
                "steps": int(run.iterations),
                "status": str(run.status),
                "stop_reason": str(run.stop_reason),
                "escape_iteration": None if run.escape_iteration is None else int(run.escape_iteration),
                "predicted_escape_iteration": _num(run.predicted_escape_iteration),
                "peak_loss": _num(run.peak_loss),
                "final_loss": _num(run.final_loss),
                "final_lambda_max": flam,
                "final_edge_ratio": None if flam is None else flam * eta / 2.0,
                "final_is_stable": None if run.final_is_stable is None else bool(run.final_is_stable),
            }
        )
        if save_points:
            ff = run.final_factors
            finals.append(None if ff is None else [np.asarray(w) for w in ff.factors])
    return {
        "task_id": task.task_id,
        "rows": rows,
        "minimum": [np.asarray(w) for w in chain.factors] if save_points else None,
        "finals": finals if save_points else None,
        "elapsed": time.perf_counter() - t0,
    }


def task_from_params(task_id: str, params: dict[str, Any]) -> SweepTask | TrainTask:
    """Rebuild a task from its stored parameters (``tasks.params``).

    ``kind = "train"`` gives a :class:`~dmfsharp.sweep.train_spec.TrainTask`.

    Raises ``ValueError`` if the parameters do not hash to ``task_id``.
    """
    from .spec import task_id_of

    if task_id_of(params) != task_id:
        raise ValueError(f"stored parameters do not match task id {task_id}")
    p = dict(params)
    for key in ("widths", "dims", "step_multipliers", "etas", "eta_ratios"):
        if p.get(key) is not None:
            p[key] = tuple(p[key])
    if p.pop("kind", "escape") == "train":
        return TrainTask(task_id=task_id, **p)
    return SweepTask(task_id=task_id, **p)


def recompute_task(folder: str | os.PathLike[str], task_id: str) -> list[dict[str, Any]]:
    """Run a stored task again in this process and return its rows (for checking a store).

    The rows equal the stored ones exactly when the same code runs: every random number
    comes from the task's stored parameters.
    """
    import json as _json

    from .store import open_readonly

    conn = open_readonly(folder)
    try:
        row = conn.execute("SELECT params FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        name = conn.execute("SELECT name FROM spec").fetchone()[0]
    finally:
        conn.close()
    if row is None:
        raise ValueError(f"{folder}: no task {task_id}")
    return run_task(task_from_params(task_id, _json.loads(row[0])), name)["rows"]
