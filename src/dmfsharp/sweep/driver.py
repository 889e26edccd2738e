"""The sweep driver: submit tasks to Dask distributed in bounded batches, store results.

The driver enumerates the spec's tasks lazily, skips those already done in the store,
keeps at most ``max_in_flight`` tasks on the cluster at once (memory stays flat for
any number of tasks) and writes each result to the store as it arrives, in one
transaction per task. Point files (``--save-points``) are written before the task's
transaction commits, so a stored row always references a complete file. A task that
raises is stored as failed with its error; the sweep goes on (unless the first
``abort_after`` tasks all fail, which points at the environment rather than a task). Re-running the same
command resumes: done tasks are skipped, failed ones are tried again.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..io import atomic_write
from ..progress import Progress
from .spec import SweepSpec, SweepTask
from .store import ResultStore
from .task import run_task
from .train_spec import TrainSpec, TrainTask

__all__ = ["SweepSummary", "SweepAborted", "run_sweep", "require_distributed", "MISSING_DASK"]

MISSING_DASK = (
    "the sweep runs on Dask distributed, which is not installed; "
    "install it with: pip install 'dmfsharp[sweep]'"
)


def require_distributed() -> Any:
    """Import ``distributed`` or raise ``ImportError`` with the install command."""
    try:
        import distributed
    except ImportError:
        raise ImportError(MISSING_DASK) from None
    return distributed


class SweepAborted(RuntimeError):
    """Every task so far failed: the sweep stopped early (see ``abort_after``)."""


@dataclass(frozen=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did.

    Attributes
    ----------
    total : int
        Tasks in the spec.
    skipped : int
        Tasks already done in the store before this call.
    done, failed : int
        Tasks finished and failed in this call.
    runs : int
        Runs stored in this call.
    elapsed : float
        Wall-clock seconds of this call, cluster start included.
    compute_elapsed : float
        Seconds from the first submission to the last result.
    workers : int
        Worker threads on the cluster.
    """

    total: int
    skipped: int
    done: int
    failed: int
    runs: int
    elapsed: float
    compute_elapsed: float
    workers: int

    @property
    def runs_per_second(self) -> float:
        """Runs stored per second of compute time (0 when nothing ran)."""
        return self.runs / self.compute_elapsed if self.compute_elapsed > 0 else 0.0


def _close(client: Any, cluster: Any, store: ResultStore) -> None:
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()
    store.close()


def _save_points(folder: Path, task: SweepTask | TrainTask, result: dict[str, Any]) -> None:
    """Write the task's minimizer and final points; set the rows' file columns."""
    import numpy as np

    rel = Path("points") / task.task_id
    (folder / rel).mkdir(parents=True, exist_ok=True)

    def write(name: str, arrays: Iterable[np.ndarray]) -> str:
        with atomic_write(folder / rel / name, "wb") as fh:
            named: dict[str, Any] = {f"W{i}": w for i, w in enumerate(arrays, start=1)}
            np.savez(fh, **named)
        return (rel / name).as_posix()

    minimum = write("minimum.npz", result["minimum"])
    for row, final in zip(result["rows"], result["finals"]):
        row["minimum_file"] = minimum
        row["final_file"] = None if final is None else write(f"run{row['run_index']}.npz", final)


def run_sweep(
    spec: SweepSpec | TrainSpec,
    out: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: Any = None,
    save_points: bool = False,
    max_in_flight: int | None = None,
    retry_failed: bool = True,
    progress: TextIO | None = None,
    spec_toml: str | None = None,
    task_fn: Callable[..., dict[str, Any]] = run_task,
    abort_after: int = 50,
    connect_timeout: float = 20.0,
    repair: bool = False,
) -> SweepSummary:
    """Run (or resume) a sweep into the folder ``out``.

    Parameters
    ----------
    spec : SweepSpec or TrainSpec
        The validated sweep (escape or ``kind = "train"``).
    out : path
        Results folder; created if missing. Holds ``results.sqlite`` and, with
        ``save_points``, ``points/``. A folder of another spec is refused.
    workers : int, optional
        Worker processes of the local cluster (one thread each); default: CPU count.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://HOST:8786``); no local cluster
        is started. Its workers must be able to import ``dmfsharp``.
    cluster : distributed cluster, optional
        An existing cluster object to connect to (tests); it is not closed here.
    save_points : bool
        Keep each task's minimizer and each run's final point as ``.npz``.
    max_in_flight : int, optional
        Tasks on the cluster at once; default ``4 x`` worker threads (at least 8).
    retry_failed : bool
        Try tasks stored as failed again (default) or leave them.
    progress : text stream, optional
        Where to print the progress line (None: silent).
    spec_toml : str, optional
        The spec's TOML text, kept in the store beside the normalized spec.
    task_fn : callable
        The task function ``(task, sweep_name, save_points) -> result dict``; the
        default :func:`dmfsharp.sweep.task.run_task`.
    abort_after : int
        Stop with :class:`SweepAborted` when this many tasks have failed and none has
        succeeded (a broken environment, not a bad task); failures already stored stay.
    connect_timeout : float
        Seconds to wait for ``scheduler``.
    repair : bool
        Open a damaged store anyway: keep its intact tasks, drop the others (they are
        recomputed); see :mod:`dmfsharp.sweep.integrity`.

    Returns
    -------
    SweepSummary
    """
    distributed = require_distributed()
    if sum(x is not None for x in (scheduler, cluster)) > 1:
        raise ValueError("give either scheduler or cluster, not both")
    if workers is not None and (scheduler is not None or cluster is not None):
        raise ValueError("--workers sets up a local cluster; it cannot be combined with --scheduler")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if max_in_flight is not None and max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    t_start = time.perf_counter()
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: exists and is not a folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        store = ResultStore(folder, spec, spec_toml=spec_toml, repair=repair)
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    own_cluster = None
    client = None
    done = failed = runs = 0
    last_error = ""
    t_first = t_last = None
    try:
        skipped = store.counts()["done"]

        def pending() -> Iterator[SweepTask | TrainTask]:
            for task in spec.tasks():
                status = store.task_status(task.task_id)
                if status == "done" or (status == "failed" and not retry_failed):
                    continue
                yield task

        queue = pending()
        head = next(queue, None)
        if head is None:  # nothing left to do: no cluster needed
            store.close()
            return SweepSummary(spec.num_tasks, skipped, 0, 0, 0, time.perf_counter() - t_start, 0.0, 0)
        queue = itertools.chain([head], queue)
        if cluster is not None:
            client = distributed.Client(cluster)
        elif scheduler is not None:
            try:
                client = distributed.Client(scheduler, timeout=f"{connect_timeout}s")
            except (OSError, TimeoutError) as exc:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            n = workers or os.cpu_count() or 1
            own_cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                # a failing task is stored with its error and counted in the summary; the
                # workers' own "Compute Failed ... Traceback" blocks (ERROR) stay off stderr
                silence_logs=logging.CRITICAL,
            )
            client = distributed.Client(own_cluster)
        nthreads = sum(client.nthreads().values()) or 1
        limit = max_in_flight or max(8, 4 * nthreads)
        bar = Progress(spec.num_tasks, f"sweep {spec.name}", stream=progress, initial=skipped)
        prefix = f"dmfsharp-sweep-{spec.fingerprint()}-"

        by_key: dict[str, SweepTask | TrainTask] = {}
        ac = distributed.as_completed()

        def submit_one() -> bool:
            task = next(queue, None)
            if task is None:
                return False
            fut = client.submit(task_fn, task, spec.name, save_points, key=prefix + task.task_id, pure=False)
            by_key[fut.key] = task
            ac.add(fut)
            return True

        t_first = time.perf_counter()
        while len(by_key) < limit and submit_one():
            pass
        for fut in ac:
            task = by_key.pop(fut.key)
            try:
                result = fut.result()
            except Exception as exc:  # the task raised, or its worker died repeatedly
                msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                store.record_failed(task, msg)
                failed += 1
                last_error = msg.splitlines()[0]
            else:
                if save_points:
                    _save_points(folder, task, result)
                store.record_done(task, result["rows"], float(result.get("elapsed", 0.0)))
                done += 1
                runs += len(result["rows"])
            finally:
                fut.release()
            t_last = time.perf_counter()
            rate = runs / max(t_last - t_first, 1e-9)
            bar.update(1, postfix=f"{failed} failed, {rate:.1f} runs/s")
            if done == 0 and failed >= abort_after:
                bar.close()
                raise SweepAborted(
                    f"the first {failed} tasks all failed, so the sweep stopped (they are stored "
                    f"as failed and are retried on the next run); last error: {last_error}; "
                    "on an existing cluster, check that the scheduler and workers run the same "
                    "dmfsharp as this driver"
                )
            while len(by_key) < limit and submit_one():
                pass
        bar.close()
    except BaseException:
        # a folder this call created and that holds no result (say, the scheduler could
        # not be reached) is removed, so a failed start leaves nothing behind
        empty = created and store.counts() == {"done": 0, "failed": 0, "runs": 0}
        _close(client, own_cluster, store)
        if empty:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    _close(client, own_cluster, store)
    return SweepSummary(
        total=spec.num_tasks,
        skipped=skipped,
        done=done,
        failed=failed,
        runs=runs,
        elapsed=time.perf_counter() - t_start,
        compute_elapsed=(t_last - t_first) if (t_first is not None and t_last is not None) else 0.0,
        workers=nthreads,
    )
