"""Adapter between the sweep and the escape-experiment engine.

The sweep calls :func:`escape_experiment` with the signature of
``dmfsharp.dynamics.escape_experiment`` and reads only these fields of its result:
``lambda_max``, ``etas`` and ``runs`` (each with ``eta``, ``step_multiplier``,
``status``, ``stop_reason``, ``escape_iteration``, ``predicted_escape_iteration``,
``peak_loss``, ``final_loss``, ``final_lambda_max``, ``final_is_stable``,
``final_factors``).

INTERIM: when ``dmfsharp.dynamics`` is not available (it is built separately), a small
stand-in engine below runs plain gradient descent with the same interface so that the
sweep machinery can be developed and tested. It is marked ``engine = "interim"`` in
every row; delete it once ``dmfsharp.dynamics`` has landed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["escape_experiment", "engine_name"]


def _real_engine():
    try:
        from ..dynamics import escape_experiment as real
    except ImportError:
        return None
    return real


def engine_name() -> str:
    """``"dynamics"`` when ``dmfsharp.dynamics`` is importable, else ``"interim"``."""
    return "dynamics" if _real_engine() is not None else "interim"


def escape_experiment(minimum, **kwargs: Any):
    """Run the escape experiment on ``minimum`` (see ``dmfsharp.dynamics``)."""
    real = _real_engine()
    if real is not None:
        return real(minimum, **kwargs)
    return _interim_escape_experiment(minimum, **kwargs)


# --------------------------------------------------------------------------- INTERIM


@dataclass(frozen=True)
class _Run:
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
    final_factors: Any


@dataclass(frozen=True)
class _Result:
    lambda_max: float
    etas: tuple
    runs: list


def _interim_escape_experiment(
    minimum, *, target=None, step_multipliers=None, etas=None, radius=1e-10,
    direction="top", seed=0, iterations=10000,
):
    from ..chain import FactorChain, as_chain
    from ..exact import sharpness, top_eigenvector

    if step_multipliers is not None and etas is not None:
        raise ValueError("give step_multipliers or etas, not both")
    chain = as_chain(minimum)
    m = chain.product if target is None else np.asarray(target, dtype=float)
    lam = sharpness(chain, target=m)
    mults = [float(c) for c in (step_multipliers or [])]
    all_etas = [2.0 * c / lam for c in mults] + [float(e) for e in (etas or [])]
    mults += [e * lam / 2.0 for e in all_etas[len(mults):]]
    wstar = chain.flatten()
    if direction == "top":
        v = np.concatenate([b.ravel() for b in top_eigenvector(chain, target=m)])
    else:
        v = np.random.default_rng(seed).standard_normal(wstar.size)
    v = v / np.linalg.norm(v)
    m2 = max(float(np.vdot(m, m)), 1e-300)
    escape_dist = 1e-3 * max(1.0, float(np.linalg.norm(wstar)))
    runs = []
    for eta, mult in zip(all_etas, mults):
        growth = abs(1.0 - eta * lam)
        pred = math.log(escape_dist / radius) / math.log(growth) if growth > 1 else None
        w = [np.array(x) for x in chain.unflatten(wstar + radius * v)]
        escaped_at, peak, status, reason = None, 0.0, "undecided", "max_iterations"
        cur = 0.0
        for k in range(iterations):
            pre = [np.eye(w[0].shape[1])]
            for x in w[:-1]:
                pre.append(x @ pre[-1])
            r = m - w[-1] @ pre[-1]
            cur = float(np.vdot(r, r))
            if not math.isfinite(cur) or cur > 1e12 * m2:
                status, reason = "diverged", "diverged"
                break
            peak = max(peak, cur)
            dist = float(np.linalg.norm(np.concatenate([x.ravel() for x in w]) - wstar))
            if escaped_at is None and dist > escape_dist:
                escaped_at = k
            if escaped_at is not None and cur <= 1e-14 * m2:
                reason = "converged"
                break
            g = r
            grads = [None] * len(w)
            for i in range(len(w) - 1, -1, -1):
                grads[i] = -2.0 * g @ pre[i].T
                g = w[i].T @ g
            w = [x - eta * gi for x, gi in zip(w, grads)]
        if status != "diverged":
            end = float(np.linalg.norm(np.concatenate([x.ravel() for x in w]) - wstar))
            if escaped_at is not None and end > escape_dist:
                status = "escaped"
            elif end <= max(radius, 1e-12 * max(1.0, float(np.linalg.norm(wstar)))):
                status = "returned"
        final = None if status == "diverged" else FactorChain(w)
        flam = None if final is None or cur > 1e-12 * m2 else sharpness(final)
        runs.append(_Run(
            eta=eta, step_multiplier=mult, status=status, stop_reason=reason, iterations=k,
            escape_iteration=escaped_at, predicted_escape_iteration=pred, peak_loss=peak,
            final_loss=cur, final_lambda_max=flam,
            final_is_stable=None if flam is None else bool(flam * eta / 2.0 <= 1.0),
            final_factors=final,
        ))
    return _Result(lambda_max=lam, etas=tuple(all_etas), runs=runs)
