"""Parameter sweeps on Dask: one experiment over a grid of config fields and seeds.

Two ways to run a sweep, with the same results folder and table:

- ``python -m rpusim sweep SPEC.toml [--scheduler ADDRESS] [--out DIR] [--workers N]``, with
  ``python -m rpusim sweep --example`` printing a runnable SPEC (:data:`EXAMPLE_SPEC`);
- from Python, :func:`sweep`: an experiment and a grid in, a table out.

By default the runs go to a ``distributed.LocalCluster`` of worker processes on this machine
(one per core, one numba thread each); ``scheduler`` names any running Dask scheduler instead.
Each finished run is written at once, atomically, as one record file in the results folder, so
a rerun skips what is finished; see :mod:`rpusim.sweep.records`. Needs the ``sweep`` extra
(``pip install "rpusim[sweep]"``: dask[distributed]); the core never imports it.
"""

from __future__ import annotations

from rpusim.sweep.driver import SweepResult, run_point, run_sweep
from rpusim.sweep.experiments import (ALGORITHMS, BUILTIN, Experiment, build_rpu_config,
                                      declare_experiment, set_config_field)
from rpusim.sweep.records import SweepMismatch
from rpusim.sweep.spec import (EXAMPLE_SPEC, Point, SpecError, SpecTypeError, SweepSpec,
                               load_spec, make_spec, parse_spec)

__all__ = ["sweep", "run_spec", "load_spec", "parse_spec", "make_spec", "run_sweep",
           "run_point", "SweepSpec", "SweepResult", "Point", "Experiment", "SpecError",
           "SpecTypeError", "SweepMismatch", "EXAMPLE_SPEC", "BUILTIN", "ALGORITHMS",
           "build_rpu_config", "set_config_field", "declare_experiment"]


def sweep(experiment, grid: dict, *, base: dict | None = None, seeds=(0,), out=None,
          scheduler: str | None = None, workers: int | None = None, client=None,
          metric: str | None = None, retry_failed: bool = False, plot: bool = True,
          stream=None) -> SweepResult:
    """Run ``experiment`` at every combination of the grid's values, once per seed.

    Parameters
    ----------
    experiment : str or callable
        ``"demo"`` or ``"digits"`` (built in, see :mod:`rpusim.sweep.experiments`),
        ``"package.module:function"``, or a function ``function(params: dict, seed: int) ->
        dict`` of metric name -> number (module level, so Dask workers can import it; its
        result must depend on ``params`` and ``seed`` only).
    grid : dict
        Field path -> list of values, e.g. ``{"device.dw_min": [0.001, 0.01],
        "algorithm": ["sgd", "tiki-taka"]}``.
    base : dict, optional
        Parameters of every point (the grid's values override them). A user's function
        decorated with :func:`declare_experiment` has its field paths and kinds checked.
    seeds : sequence of int or int
        Every point runs once per seed (an int ``n`` means ``0 .. n-1``).
    out : str or path-like, optional
        Results folder: one record per finished run, ``results.csv`` and ``sweep.png``; a
        rerun with the same sweep skips finished runs. ``None`` keeps everything in memory.
    scheduler : str, optional
        Address of a running Dask scheduler; default: a new local cluster.
    workers : int, optional
        Worker processes of the local cluster (default: one per core); ``0`` runs in this
        process, one run after another, without Dask (for debugging and baselines).
    client : distributed.Client, optional
        Use this client (its cluster) instead.
    metric : str, optional
        The metric to plot (default: the experiment's).
    retry_failed : bool
        Recompute runs recorded with an error.
    plot : bool
        Write ``sweep.png`` (needs matplotlib).
    stream : file, optional
        Where progress lines go (default ``sys.stdout``).

    Returns
    -------
    SweepResult
        ``result.rows``: the table, one dict per run.

    Raises
    ------
    SpecError
        Before any work: an empty grid, bad seeds, an unknown experiment or field path, a value
        of the wrong kind or an invalid config (the message names the field).
    SweepMismatch
        ``out`` holds the results of a different sweep.
    """
    spec = make_spec(experiment, grid, base=base, seeds=seeds, metric=metric, source="sweep")
    return run_sweep(spec, out=out, scheduler=scheduler, workers=workers, client=client,
                     retry_failed=retry_failed, plot=plot, stream=stream)


def run_spec(path, *, out=None, scheduler: str | None = None, workers: int | None = None,
             retry_failed: bool = False, stream=None) -> SweepResult:
    """Load a TOML SPEC file and run it (what ``python -m rpusim sweep SPEC`` does).

    ``out`` defaults to ``sweep_<SPEC file name without suffix>`` in the current folder.
    """
    import pathlib
    spec = load_spec(path)
    folder = out if out is not None else f"sweep_{pathlib.Path(path).stem}"
    return run_sweep(spec, out=folder, scheduler=scheduler, workers=workers,
                     retry_failed=retry_failed, stream=stream)
