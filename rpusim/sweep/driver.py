"""The Dask driver: send the unfinished runs to a cluster, keep every result as it arrives.

Each run is one Dask task (``client.submit``) of :func:`run_point`, which never raises: an
exception of the experiment becomes a record with status ``"error"``. The driver collects
results with ``as_completed`` and writes each one's record at once, so only the driver touches
the results folder (a remote cluster needs no shared file system). When a worker dies, the
scheduler gives its tasks to the remaining workers (Dask's own resilience); a task that kills
``distributed.scheduler.allowed-failures`` workers in a row is reported as lost, left
unrecorded, and a rerun tries it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import pathlib
import signal
import sys
import threading
import time
import traceback
from typing import TextIO

from rpusim.sweep import records as rec
from rpusim.sweep.report import plot_sweep, table, write_csv
from rpusim.sweep.spec import Point, SweepSpec

__all__ = ["SweepResult", "run_sweep", "run_point", "available_cores", "local_cluster_size",
           "start_local_cluster", "scheduler_workers"]


@dataclasses.dataclass
class SweepResult:
    """What a sweep gives back.

    Attributes
    ----------
    rows : list of dict
        The table, one row per run (point and seed) in grid order: ``point``, the parameters,
        ``seed``, ``status``, the metrics, ``wall_s``, ``worker``, ``error``
        (``pandas.DataFrame(result.rows)`` makes a data frame of it).
    columns : list of str
        The table's columns in order.
    computed, skipped, failed, lost : int
        Runs computed now, found finished in the folder, recorded with an error (of all),
        and lost to dying workers (unrecorded; a rerun retries them).
    csv, plot : pathlib.Path or None
        ``results.csv`` and the plot, where written.

    Iterating over the result (and ``len``) goes over ``rows``.
    """

    rows: list
    columns: list
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    lost: int = 0
    csv: pathlib.Path | None = None
    plot: pathlib.Path | None = None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


# -- the task -----------------------------------------------------------------------------------
def _current_worker():
    """The Dask worker running this task, or ``None`` outside Dask (without importing Dask:
    a process that has not imported it is no worker)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker
    try:
        return get_worker()
    except ValueError:
        return None


def _worker_name() -> str:
    """The running worker's address, or ``"local"`` outside Dask."""
    worker = _current_worker()
    return "local" if worker is None else str(worker.address)


def _limit_numba_threads() -> None:
    """Keep (tasks in parallel) x (numba threads) within the worker machine's cores.

    A worker started elsewhere (``dask worker``) runs ``nthreads`` tasks at once, each of which
    would otherwise use every core for numba's parallel kernels.
    """
    worker = _current_worker()
    if worker is None:
        return
    tasks_at_once = worker.state.nthreads
    import numba
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS,
                                     available_cores() // max(1, tasks_at_once))))


def run_point(function, params: dict, seed: int) -> dict:
    """Run one point; never raises. Returns ``status``, ``metrics`` or ``error`` (with its
    traceback), ``wall_s`` and ``worker``."""
    _limit_numba_threads()
    start = time.perf_counter()
    try:
        metrics = function(dict(params), seed)
        if not isinstance(metrics, dict) or not all(isinstance(k, str) for k in metrics):
            raise TypeError(f"an experiment must return a dict of metric name -> value, got "
                            f"{type(metrics).__name__} {metrics!r:.80}")
        outcome = {"status": "ok", "metrics": {k: _plain(v) for k, v in metrics.items()},
                   "error": None, "traceback": None}
    except Exception as err:  # the user's code: any failure becomes the run's record
        outcome = {"status": "error", "metrics": {}, "error": f"{type(err).__name__}: {err}",
                   "traceback": traceback.format_exc()}
    outcome["wall_s"] = time.perf_counter() - start
    outcome["worker"] = _worker_name()
    return outcome


def _plain(value):
    """Metrics as JSON-safe Python scalars (NumPy scalars included)."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"metric values must be numbers or strings, got {type(value).__name__}")


# -- the cluster --------------------------------------------------------------------------------
def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def local_cluster_size(workers: int | None = None) -> tuple[int, int]:
    """``(worker processes, numba threads each)`` for a local cluster.

    By default one single-threaded worker process per core: the runs are independent, and a
    small network's training step is bound by Python (validation, dispatch), which threads do
    not speed up, so processes over runs use the cores better than numba threads within a run.
    With ``workers`` given, each gets ``cores // workers`` numba threads (at least one), so
    workers x threads never exceeds the cores.
    """
    cores = available_cores()
    if workers is None:
        workers = cores
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return workers, max(1, cores // workers)


def start_local_cluster(workers: int | None = None):
    """A ``distributed.LocalCluster`` of worker processes on 127.0.0.1, sized by
    :func:`local_cluster_size`: one task at a time per worker, numba and BLAS threads set
    through the workers' environment before they import anything."""
    from distributed import LocalCluster
    n, threads = local_cluster_size(workers)
    env = {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with _workers_ignore_ctrl_c():
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=None, env=env,
                            silence_logs=logging.ERROR)


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Start processes with SIGINT ignored (an ignored signal stays ignored in a child, and
    Python keeps it so): Ctrl-C in a terminal reaches every process of the group, and only the
    driver should react, by closing the cluster; the workers would each print a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def scheduler_workers(client) -> dict:
    """The workers the scheduler of ``client`` (a synchronous Dask client) knows now, by
    address, asked directly: ``Client.scheduler_info`` returns a cached copy that the client's
    own periodic refresh, which asks for no per-worker information, can overwrite between the
    fetch and the return (distributed 2026.8), so it can show no workers at all."""
    async def identity():
        return await client.scheduler.identity(n_workers=-1)

    return client.sync(identity)["workers"]


@contextlib.contextmanager
def _client(scheduler, workers, client):
    """The client to use: given, connected to ``scheduler``, or of a new local cluster."""
    if client is not None:
        yield client, f"the given client's cluster ({client.scheduler.address})"
        return
    from distributed import Client
    if scheduler is not None:
        try:
            connected = Client(scheduler, timeout="30s")
        except OSError as err:  # also TimeoutError: nothing listens there
            raise ConnectionError(f"cannot connect to the Dask scheduler at {scheduler!r}: "
                                  f"{err}") from None
        with connected:
            n = len(scheduler_workers(connected))
            yield connected, f"the cluster at {scheduler} ({n} workers now)"
        return
    n, threads = local_cluster_size(workers)
    with start_local_cluster(workers) as cluster, Client(cluster) as local:
        yield local, (f"a local cluster of {n} worker processes x 1 task, {threads} numba "
                      f"thread(s) each ({available_cores()} cores)")


# -- the sweep ----------------------------------------------------------------------------------
def _record(spec: SweepSpec, point: Point, outcome: dict) -> dict:
    import rpusim
    return {"key": point.key, "index": point.index, "experiment": spec.experiment.name,
            "params": point.params, "seed": point.seed, **outcome,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "rpusim": rpusim.__version__}


class _Progress:
    """One line per finished run: finished/total, failures, estimated time left."""

    def __init__(self, stream: TextIO, total: int, done: int, todo: int, metric: str | None):
        self.stream, self.total, self.done, self.todo = stream, total, done, todo
        self.metric, self.failed, self.count, self.start = metric, 0, 0, time.perf_counter()

    def __call__(self, point: Point, outcome: dict | None, spec: SweepSpec) -> None:
        self.done += 1
        self.count += 1
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.count * (self.todo - self.count)
        chosen = ", ".join(f"{p}={point.params[p]}" for p in spec.grid)
        if outcome is None:
            result = "NOT RUN (see the message above; a rerun retries it)"
        elif outcome["status"] == "error":
            result = f"FAILED: {outcome['error'][:120]}"
        else:
            metrics = outcome["metrics"]
            name = self.metric or next((k for k, v in metrics.items()
                                        if isinstance(v, (int, float))), None)
            value = metrics.get(name)
            shown = (f"{name} {value:.4g}" if isinstance(value, (int, float))
                     and not isinstance(value, bool) else "ok")
            result = f"{shown} ({outcome['wall_s']:.1f} s on {outcome['worker']})"
        self.failed += outcome is None or outcome["status"] == "error"
        print(f"[{self.done}/{self.total}] {self.failed} failed, ~{left:.0f} s left | "
              f"{chosen}, seed {point.seed}: {result}", file=self.stream, flush=True)


def _compute(spec, pending, scheduler, workers, client, on_result, say) -> int:
    """Run the pending points (in this process when ``workers == 0``, else on Dask); call
    ``on_result(point, outcome)`` as each finishes. Return how many were lost."""
    if workers == 0:
        for point in pending:
            on_result(point, run_point(spec.experiment.function, point.params, point.seed))
        return 0
    from distributed import as_completed
    lost = 0
    with _client(scheduler, workers, client) as (dask_client, where):
        say(f"running on {where}")
        by_key = {}
        for point in pending:
            future = dask_client.submit(run_point, spec.experiment.function, point.params,
                                        point.seed, key=f"rpusim-sweep-{point.key}")
            by_key[future.key] = (point, future)
        for future in as_completed([future for _, future in by_key.values()]):
            point = by_key[future.key][0]
            try:
                outcome = future.result()
            except Exception as err:  # KilledWorker, a lost connection: nothing to record
                say(f"run {point.key} lost: {type(err).__name__}: {err}")
                lost += 1
                outcome = None
            on_result(point, outcome)
            future.release()
    return lost


def run_sweep(spec: SweepSpec, *, out=None, scheduler: str | None = None,
              workers: int | None = None, client=None, retry_failed: bool = False,
              plot: bool = True, stream: TextIO | None = None) -> SweepResult:
    """Run a validated sweep on Dask, keeping every finished run; see :func:`rpusim.sweep.sweep`.

    Parameters
    ----------
    spec : SweepSpec
    out : str or path-like, optional
        Results folder (records, ``results.csv``, the plot); ``None`` keeps results in memory.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).
    workers : int, optional
        Worker processes of the local cluster (default: one per core); ``0`` runs the points
        one after another in this process, without Dask.
    client : distributed.Client, optional
        An existing client to use (left open).
    retry_failed : bool
        Recompute runs recorded with an error instead of skipping them.
    plot : bool
        Write the plot (needs matplotlib) next to ``results.csv``.
    stream : file, optional
        Where progress goes (default ``sys.stdout``).
    """
    stream = stream or sys.stdout
    if workers is not None and workers != 0:
        local_cluster_size(workers)  # a bad count fails before anything starts

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    points = spec.points()
    folder = pathlib.Path(out) if out is not None else None
    finished = rec.open_folder(folder, spec.describe(), points) if folder else {}
    if retry_failed:
        finished = {k: r for k, r in finished.items() if r["status"] == "ok"}
    pending = [p for p in points if p.key not in finished]
    n_grid = len(points) // len(spec.seeds)
    say(f"sweep of {spec.experiment.name!r}: {len(points)} runs ({n_grid} grid points x "
        f"{len(spec.seeds)} seeds)" + (f", results in {folder}" if folder else ""))
    if finished:
        say(f"skipping {len(finished)} finished runs found in {folder}; {len(pending)} to run")
    metric = spec.metric or spec.experiment.metric
    progress = _Progress(stream, len(points), len(finished), len(pending), metric)

    def on_result(point: Point, outcome: dict | None) -> None:
        if outcome is not None:
            record = _record(spec, point, outcome)
            finished[point.key] = record
            if folder:
                rec.write_record(folder, record)
        progress(point, outcome, spec)

    lost = _compute(spec, pending, scheduler, workers, client, on_result, say) if pending else 0
    rows, columns = table(spec, points, finished)
    result = SweepResult(rows, columns, computed=len(pending) - lost,
                         skipped=len(points) - len(pending),
                         failed=sum(r["status"] == "error" for r in finished.values()),
                         lost=lost)
    if folder:
        result.csv = write_csv(folder / "results.csv", rows, columns)
        if plot:
            result.plot = plot_sweep(spec, rows, folder / "sweep.png", metric, say)
    say(f"done: {result.computed} computed, {result.skipped} skipped (finished before), "
        f"{result.failed} failed, {result.lost} lost"
        + (f"; wrote {result.csv}" if result.csv else "")
        + (f" and {result.plot}" if result.plot else ""))
    return result
