"""The work of one ``kind = "train"`` sweep task: draw the target and train every step size.

Thin on purpose, like :mod:`dmfsharp.sweep.task`: everything scientific happens in
:func:`dmfsharp.dynamics.train`; this module draws the target from the task's seed and
turns the :class:`~dmfsharp.dynamics.TrainResult` into plain rows (columns
:data:`TRAIN_COLUMNS`, stored in the ``train_runs`` table).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from ..dynamics.initialization import gaussian_target
from ..dynamics.train import train
from ..minima import random_dims
from .train_spec import TrainTask

__all__ = ["TRAIN_COLUMNS", "FLAT_TOLERANCE", "STABLE_TOLERANCE", "train_task_setup", "run_train_task"]

#: A landing minimum counts as flat when ``lambda_max / lambda_flat <= 1 + FLAT_TOLERANCE``.
FLAT_TOLERANCE = 1e-3
#: A landing minimum counts as linearly stable when ``lambda_max eta / 2 <= 1 + STABLE_TOLERANCE``
#: (GD stops within ``converge_tol`` of the minimum, so the edge is met only up to that).
STABLE_TOLERANCE = 1e-6

#: Columns of one train run row, in store order (``minimum_file`` is the initialization's
#: factors file with ``--save-points``).
TRAIN_COLUMNS = (
    "task_id",
    "run_index",
    "sweep",
    "architecture",
    "seed",
    "target_seed",
    "init_seed",
    "dims",
    "depth",
    "num_params",
    "init",
    "init_scale",
    "iterations",
    "converge_tol",
    "weight_decay",
    "flat_lambda_max",
    "eta_crit",
    "eta_ratio",
    "eta",
    "steps",
    "status",
    "final_loss",
    "peak_loss",
    "final_gn_lambda_max",
    "final_lambda_max",
    "lambda_eta_half",
    "flatness_ratio",
    "is_flat",
    "final_is_stable",
    "orbit_period",
    "orbit_rank",
    "orbit_left_overlap",
    "progressive_sharpening",
    "edge_of_stability",
    "catapult",
    "minimum_file",
    "final_file",
)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def train_task_setup(task: TrainTask) -> tuple[tuple[int, ...], np.ndarray]:
    """``(dims, M)`` of a task: drawn widths and the Gaussian target from ``target_seed``.

    Hidden widths: ``random_dims(depth, d0, dL, widths, seed=[target_seed, 0])`` unless
    the architecture fixes them; ``M``: i.i.d. standard normal, drawn from
    ``numpy.random.default_rng([target_seed, 1])``.
    """
    ts = task.target_seed
    if task.dims is not None:
        dims = tuple(task.dims)
    else:
        lo, hi = task.widths or (task.d0, task.d0)
        dims = tuple(random_dims(task.depth, task.d0, task.dL, (lo, hi), seed=[ts, 0]))
    return dims, gaussian_target(dims, np.random.default_rng([ts, 1]))


def run_train_task(task: TrainTask, sweep_name: str = "", save_points: bool = False) -> dict[str, Any]:
    """Run one train task; return its rows (and with ``save_points`` the final factors).

    Returns
    -------
    dict
        ``task_id``, ``rows`` (one dict per step size, keys :data:`TRAIN_COLUMNS`),
        ``minimum`` (the initialization's factors) and ``finals`` (final factors or
        None per run), both only with ``save_points``; ``elapsed`` (s).
    """
    t0 = time.perf_counter()
    dims, target = train_task_setup(task)
    res = train(
        dims,
        init=task.init,
        init_scale=task.init_scale,
        target=target,
        eta_ratios=list(task.eta_ratios),
        iterations=task.iterations,
        seed=task.init_seed,
        converge_tol=task.converge_tol,
        track_every=task.track_every,
        max_period=task.max_period,
        engine=task.engine,
        weight_decay=task.weight_decay,
    )
    base = {
        "task_id": task.task_id,
        "sweep": sweep_name,
        "architecture": task.architecture,
        "seed": task.seed,
        "target_seed": task.target_seed,
        "init_seed": task.init_seed,
        "dims": json.dumps(list(res.dims)),
        "depth": len(res.dims) - 1,
        "num_params": int(sum(a * b for a, b in zip(res.dims, res.dims[1:]))),
        "init": task.init,
        "init_scale": task.init_scale,
        "iterations": task.iterations,
        "converge_tol": task.converge_tol,
        "weight_decay": task.weight_decay,
        "flat_lambda_max": _num(res.flat_lambda_max),
        "eta_crit": _num(res.eta_crit),
    }
    rows, finals = [], []
    for i, (run, ratio) in enumerate(zip(res.runs, task.eta_ratios, strict=True)):
        s = run.summary()
        orbit = run.regimes.get("periodic_orbit") or {}
        edge = _num(s["lambda_eta_half"])
        flatness = _num(s["flatness_ratio"])
        rows.append(
            {
                **base,
                "run_index": i,
                "eta_ratio": float(ratio),  # the spec's value exactly (groupby-safe)
                "eta": float(run.eta),
                "steps": int(run.iterations),
                "status": str(run.status),
                "final_loss": _num(run.final_loss),
                "peak_loss": _num(s["peak_loss"]),
                "final_gn_lambda_max": _num(s["final_gn_lambda_max"]),
                "final_lambda_max": _num(run.final_lambda_max),
                "lambda_eta_half": edge,
                "flatness_ratio": flatness,
                "is_flat": None if flatness is None else bool(flatness <= 1 + FLAT_TOLERANCE),
                "final_is_stable": None if edge is None else bool(edge <= 1 + STABLE_TOLERANCE),
                "orbit_period": orbit.get("period"),
                "orbit_rank": orbit.get("rank"),
                "orbit_left_overlap": _num(orbit.get("left_overlap")),
                "progressive_sharpening": bool(run.regimes.get("progressive_sharpening")),
                "edge_of_stability": bool(run.regimes.get("edge_of_stability")),
                "catapult": bool(run.regimes.get("catapult")),
            }
        )
        if save_points:
            ff = run.final_factors
            finals.append(None if ff is None else [np.asarray(w) for w in ff.factors])
    return {
        "task_id": task.task_id,
        "rows": rows,
        "minimum": [np.asarray(w) for w in res.start.factors] if save_points else None,
        "finals": finals if save_points else None,
        "elapsed": time.perf_counter() - t0,
    }
