"""The sweep's table (``results.csv``, written with the standard ``csv`` module) and its plot.

The plot shows one metric against the grid's first field, one line per value of the second
field, mean and spread (standard deviation) over the seeds; one panel per combination of the
further fields (at most 16).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import pathlib
from typing import Callable

import numpy as np

from rpusim.sweep.records import write_atomic

__all__ = ["table", "write_csv", "plot_sweep"]

_TAIL = ("wall_s", "worker", "error")
_MAX_PANELS = 16


def table(spec, points, finished: dict) -> tuple[list[dict], list[str]]:
    """Rows (one per run, in grid order) and columns from the records by run key.

    A run without a record (lost) has status ``"not run"``.
    """
    param_columns = list(dict.fromkeys([*spec.base, *spec.grid]))
    metric_columns: dict[str, None] = {}
    for point in points:
        record = finished.get(point.key)
        if record is not None:
            metric_columns.update(dict.fromkeys(record["metrics"]))
    columns = ["point", *param_columns, "seed", "status", *metric_columns, *_TAIL]
    rows = []
    for point in points:
        record = finished.get(point.key, {})
        row = {"point": point.index, **{c: point.params.get(c) for c in param_columns},
               "seed": point.seed, "status": record.get("status", "not run")}
        row.update({m: record.get("metrics", {}).get(m) for m in metric_columns})
        row.update({c: record.get(c) for c in _TAIL})
        rows.append(row)
    return rows, columns


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)  # floats: repr, so the file round-trips every bit


def write_csv(path, rows: list[dict], columns: list[str]) -> pathlib.Path:
    """Write the table as CSV (atomically) and return its path."""
    path = pathlib.Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_atomic(path, buffer.getvalue())
    return path


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _label(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _series(rows, metric, x_path, xs, match) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over seeds of ``metric`` at each x (NaN where none)."""
    means, spreads = [], []
    for x in xs:
        values = [r[metric] for r in rows if r["status"] == "ok" and r[x_path] == x
                  and match(r) and isinstance(r.get(metric), (int, float))]
        values = np.asarray(values, dtype=float)
        means.append(values.mean() if values.size else np.nan)
        spreads.append(values.std(ddof=1) if values.size > 1 else 0.0)
    return np.array(means), np.array(spreads)


def plot_sweep(spec, rows: list[dict], path, metric: str | None,
               say: Callable[[str], None]) -> pathlib.Path | None:
    """Plot ``metric`` against the first grid field (see the module docstring); return the
    PNG's path, or ``None`` (with a message) without matplotlib or without a numeric metric."""
    from rpusim.plotting import MatplotlibMissing, require_matplotlib
    if metric is None:  # the first numeric metric of the table
        metric = next((c for r in rows if r["status"] == "ok" for c in r
                       if c not in ("point", "seed", *spec.base, *spec.grid, *_TAIL)
                       and isinstance(r[c], (int, float)) and not isinstance(r[c], bool)), None)
    if metric is None or not any(isinstance(r.get(metric), (int, float)) for r in rows):
        say(f"no plot: no numeric metric {metric or ''} in the results")
        return None
    try:
        plt = require_matplotlib()
    except MatplotlibMissing as err:
        say(f"no plot: {err}")
        return None
    paths = list(spec.grid)
    x_path, line_path, panel_paths = paths[0], (paths[1:2] or [None])[0], paths[2:]
    xs = spec.grid[x_path]
    numeric = _numeric(xs)
    positions = np.asarray(xs, dtype=float) if numeric else np.arange(len(xs))
    panels = list(itertools.product(*(spec.grid[p] for p in panel_paths)))
    if len(panels) > _MAX_PANELS:
        say(f"the plot shows the first {_MAX_PANELS} of {len(panels)} panels "
            f"({', '.join(panel_paths)}); results.csv has every run")
        panels = panels[:_MAX_PANELS]
    columns = min(4, len(panels))
    rows_of_panels = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(5.5 * columns,
                                                               4.2 * rows_of_panels),
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        fixed = dict(zip(panel_paths, panel))
        for line in (spec.grid[line_path] if line_path else [None]):
            def match(row, line=line):
                return ((line_path is None or row[line_path] == line)
                        and all(row[p] == v for p, v in fixed.items()))
            mean, spread = _series(rows, metric, x_path, xs, match)
            label = f"{line_path} = {_label(line)}" if line_path else metric
            ax.errorbar(positions, mean, yerr=spread, marker="o", capsize=3, label=label)
            ax.fill_between(positions, mean - spread, mean + spread, alpha=0.15)
        if numeric and positions.min() > 0 and positions.max() >= 10 * positions.min():
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(positions, [_label(x) for x in xs])
        ax.set_xlabel(x_path)
        ax.set_ylabel(f"{metric} (mean +- std over {len(spec.seeds)} seeds)")
        ax.set_title(", ".join(f"{p} = {_label(v)}" for p, v in fixed.items()), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"sweep of {spec.experiment.name}: {metric}", fontsize=11)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
