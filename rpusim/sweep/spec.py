"""A sweep's description: which experiment, its base parameters, the grid and the seeds.

A SPEC is a TOML file (see :data:`EXAMPLE_SPEC`); :func:`load_spec` reads and validates it, and
:meth:`SweepSpec.points` lists the points it stands for. Parameters are flat: a dotted field path
(``"device.dw_min"``) maps to a value, whether the TOML writes it as a dotted key, a quoted key or
a sub-table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import pathlib
import sys
from typing import NamedTuple

from rpusim.sweep.experiments import Experiment, resolve_experiment


__all__ = ["SpecError", "SpecTypeError", "Point", "SweepSpec", "load_spec", "parse_spec",
           "make_spec", "point_key", "flatten", "EXAMPLE_SPEC"]

#: The SPEC ``python -m rpusim sweep --example`` prints: 16 points of a few seconds each.
EXAMPLE_SPEC = """\
# rpusim sweep SPEC (TOML). Run: python -m rpusim sweep example.toml --out example_sweep
#
# A two-layer analog network (64-32-10, one tile per layer) learns scikit-learn's bundled
# digits with plain analog SGD and with Tiki-taka, on SoftBounds devices whose smallest step
# dw_min ranges from fine to coarse: 4 x 2 grid points x 2 seeds = 16 training runs.

# Built in: "digits" (classifier on sklearn's digits) or "demo" (the demo's teacher regression);
# or "package.module:function" of your own, called as function(params: dict, seed: int) -> dict.
experiment = "digits"
seeds = [0, 1]               # or seeds = 4 for 0, 1, 2, 3
metric = "test_accuracy"     # plotted against the first grid field

[base]                       # every point's parameters; fields not named keep aihwkit's defaults
device.class = "SoftBoundsDevice"
epochs = 100
lr = 0.05
batch_size = 10
hidden = 32

[grid]                       # every combination; the first field is the plot's x axis,
device.dw_min = [0.001, 0.003, 0.01, 0.03]    # the second gives one line per value
algorithm = ["sgd", "tiki-taka"]
"""

_TOP_LEVEL = ("experiment", "seeds", "metric", "base", "grid")


class SpecError(ValueError):
    """A SPEC that cannot run: the message names the field and what was expected."""


class SpecTypeError(SpecError, TypeError):
    """A SPEC value of the wrong type (catchable as ``TypeError`` too)."""


class Point(NamedTuple):
    """One run of the experiment: its parameters and its seed."""

    index: int      #: position of its parameter combination in the grid (seeds share it)
    params: dict    #: flat field paths -> values: the base updated by the grid's values
    seed: int       #: the run's seed
    key: str        #: identity of (experiment, params, seed): names its record file


@dataclasses.dataclass
class SweepSpec:
    """A validated sweep: experiment, base parameters, grid and seeds.

    Attributes
    ----------
    experiment : Experiment
        What runs at each point (built in or the user's function).
    base : dict
        Flat parameters every point starts from.
    grid : dict
        Flat field path -> list of values; every combination is a point.
    seeds : list of int
        Every point runs once per seed.
    metric : str or None
        The metric to plot (default: the experiment's, else the first numeric one).
    """

    experiment: Experiment
    base: dict
    grid: dict
    seeds: list
    metric: str | None = None

    def points(self) -> list[Point]:
        """Every (parameter combination, seed) in order: the grid's first field varies
        slowest, the seed fastest."""
        paths = list(self.grid)
        points = []
        for index, values in enumerate(itertools.product(*(self.grid[p] for p in paths))):
            params = {**self.base, **dict(zip(paths, values))}
            for seed in self.seeds:
                points.append(Point(index, params, seed, point_key(self.experiment.name,
                                                                   params, seed)))
        return points

    def describe(self) -> dict:
        """A JSON-safe description (what a results folder records to recognise its sweep)."""
        return {"experiment": self.experiment.name, "base": self.base, "grid": self.grid,
                "seeds": self.seeds, "metric": self.metric}


def point_key(experiment: str, params: dict, seed: int) -> str:
    """A stable name for a run: a hash of the experiment name, the parameters and the seed."""
    text = json.dumps({"experiment": experiment, "params": params, "seed": seed},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load_spec(path) -> SweepSpec:
    """Read a TOML SPEC file and validate it (see :func:`parse_spec`)."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(f"cannot read SPEC {str(path)!r}: {err}") from None
    return parse_spec(text, source=str(path))


def parse_spec(text: str, source: str = "SPEC") -> SweepSpec:
    """Parse and validate a TOML SPEC; nothing runs.

    Raises
    ------
    SpecError
        Invalid TOML, an unknown top-level key, a missing or empty grid or an empty grid
        field, bad seeds, an unknown experiment, or a point the experiment refuses (unknown
        field path, wrong type, invalid value); the message names the field.
    """
    tomllib = _toml()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        raise SpecError(f"{source}: unknown key(s) {unknown}; a SPEC has {list(_TOP_LEVEL)}")
    if "experiment" not in data:
        raise SpecError(f"{source}: 'experiment' is missing (e.g. experiment = \"digits\")")
    for table in ("base", "grid"):
        if not isinstance(data.get(table, {}), dict):
            raise SpecTypeError(f"{source}: '{table}' must be a table ([{table}]), got "
                                f"{data[table]!r:.80}")
    return make_spec(data["experiment"], data.get("grid"), base=flatten(data.get("base", {})),
                     seeds=data.get("seeds", [0]), metric=data.get("metric"), source=source,
                     grid_is_nested=True)


def _toml():
    """The TOML reader: the standard library's (3.11+) or its backport ``tomli``."""
    if sys.version_info >= (3, 11):
        import tomllib
        return tomllib
    try:
        import tomli
    except ImportError as err:
        raise ImportError('reading a SPEC on Python 3.10 needs tomli: pip install '
                          '"rpusim[sweep]"') from err
    return tomli


def make_spec(experiment, grid, *, base=None, seeds=(0,), metric=None, source="sweep",
              grid_is_nested=False) -> SweepSpec:
    """Validate the pieces of a sweep and check every point with the experiment.

    ``experiment`` is a built-in name, ``"module:function"`` or a callable; ``grid`` maps field
    paths to lists of values (nested dicts are flattened when ``grid_is_nested``).
    """
    try:
        exp = resolve_experiment(experiment)
    except TypeError as err:
        raise SpecTypeError(f"{source}: {err}") from None
    except ValueError as err:
        raise SpecError(f"{source}: {err}") from None
    if metric is not None and not isinstance(metric, str):
        raise SpecTypeError(f"{source}: 'metric' must be a string, got {metric!r:.80}")
    base = {path: _plain(value, path, source) for path, value in (base or {}).items()}
    if not isinstance(grid, dict) or not grid:
        raise SpecError(f"{source}: the grid is empty: give at least one field path with a "
                        f"list of values ([grid] device.dw_min = [0.001, 0.01])")
    grid = flatten(grid) if grid_is_nested else dict(grid)
    for path, values in grid.items():
        if not isinstance(path, str) or not path:
            raise SpecTypeError(f"{source}: grid field paths must be strings, got {path!r}")
        if hasattr(values, "tolist") and not isinstance(values, (list, tuple)):
            values = values.tolist()  # a NumPy array of values (np.logspace(...))
        if not isinstance(values, (list, tuple)):
            raise SpecTypeError(f"{source}: grid field {path!r} must be a list of values, got "
                                f"{values!r:.80} (fixed values belong in the base)")
        if not values:
            raise SpecError(f"{source}: grid field {path!r} is empty: give at least one value")
        grid[path] = [_plain(value, path, source) for value in values]
        texts = [json.dumps(value, sort_keys=True) for value in grid[path]]
        if len(set(texts)) != len(texts):
            raise SpecError(f"{source}: grid field {path!r} repeats a value: {grid[path]!r:.80}")
    spec = SweepSpec(exp, base, grid, _check_seeds(seeds, source), metric)
    if exp.check is not None:
        _check_points(spec, source)
    return spec


def _plain(value, path: str, source: str):
    """A parameter value as plain JSON data (NumPy scalars become Python numbers)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        raise SpecTypeError(f"{source}: field {path!r} must be a number, boolean, string or "
                            f"list of them, got {type(value).__name__} {value!r:.60}") from None
    return value


def flatten(table: dict, prefix: str = "") -> dict:
    """``{"device": {"dw_min": x}}`` -> ``{"device.dw_min": x}`` (lists are values)."""
    flat = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _check_seeds(seeds, source: str) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SpecError(f"{source}: 'seeds' as a count must be >= 1, got {seeds}")
        return list(range(seeds))
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise SpecTypeError(f"{source}: 'seeds' must be a non-empty list of integers or a "
                            f"count, got {seeds!r:.80}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SpecTypeError(f"{source}: 'seeds' must hold integers >= 0, got {seed!r:.80}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{source}: 'seeds' has duplicates: {list(seeds)}")
    return list(seeds)


def _check_points(spec: SweepSpec, source: str) -> None:
    """Let the experiment check every distinct parameter set before any work is sent."""
    paths = list(spec.grid)
    for values in itertools.product(*(spec.grid[p] for p in paths)):
        chosen = dict(zip(paths, values))
        try:
            spec.experiment.check({**spec.base, **chosen})
        except TypeError as err:
            raise SpecTypeError(f"{source}: {err} (at the point {chosen})") from None
        except ValueError as err:
            raise SpecError(f"{source}: {err} (at the point {chosen})") from None
