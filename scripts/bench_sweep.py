"""Time the example sweep on the default local Dask cluster against the same runs one after
another in one process, and check that both give the same table.

    python scripts/bench_sweep.py [--rounds N] [--spec FILE.toml] [--keep DIR]

Each measurement is a whole command line from a fresh process, as a user runs it:
``python -m rpusim sweep SPEC --workers 0`` (in-process, no Dask) and ``python -m rpusim sweep
SPEC`` (a LocalCluster: one single-threaded worker process per core), so interpreter start,
imports, loading numba's cached kernels and the cluster's start-up all count. A warm-up run
first fills numba's on-disk cache, so neither side compiles; the script then reports whether
the workers wrote anything to that cache (they should only read it). The rounds alternate the
two commands (the machine's speed drifts); the tables must be equal except for wall time and
worker. Default SPEC: ``python -m rpusim sweep --example`` (16 runs).
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's rpusim, as the sweeps run from ROOT use

WARM_UP = """\
experiment = "digits"
[base]
epochs = 1
hidden = 4
[grid]
algorithm = ["sgd", "tiki-taka"]
"""


def _numba_cache_files() -> dict[str, float]:
    """Numba's cache files of the rpusim sources (or under NUMBA_CACHE_DIR), with mtimes."""
    where = pathlib.Path(os.environ.get("NUMBA_CACHE_DIR") or ROOT / "rpusim")
    return {str(p): p.stat().st_mtime for p in where.rglob("*") if p.suffix in (".nbi", ".nbc")}


def _sweep(spec: pathlib.Path, out: pathlib.Path, *extra: str) -> float:
    """Run ``python -m rpusim sweep`` to completion; return its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rpusim", "sweep", str(spec), "--out", str(out),
                           *extra], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"sweep {' '.join(extra)} failed ({done.returncode}):\n{done.stdout}"
                 f"{done.stderr}")
    return seconds


def _table(out: pathlib.Path) -> list[dict]:
    with open(out / "results.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k not in ("wall_s", "worker")}
                for row in csv.DictReader(file)]


def _point_seconds(out: pathlib.Path) -> float:
    with open(out / "results.csv", newline="") as file:
        return sum(float(row["wall_s"]) for row in csv.DictReader(file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="A/B rounds (default 1)")
    parser.add_argument("--spec", type=pathlib.Path, help="SPEC (default: the example)")
    parser.add_argument("--keep", type=pathlib.Path, help="keep the results folders here")
    args = parser.parse_args()
    work = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="bench_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    spec = args.spec
    if spec is None:
        from rpusim.sweep import EXAMPLE_SPEC
        spec = work / "example.toml"
        spec.write_text(EXAMPLE_SPEC)
    warm = work / "warm_up.toml"
    warm.write_text(WARM_UP)
    seconds = _sweep(warm, work / "warm", "--workers", "0")
    print(f"warm-up (fills numba's cache if cold): {seconds:.1f} s")

    from rpusim.sweep import load_spec
    from rpusim.sweep.driver import available_cores, local_cluster_size
    runs = len(load_spec(spec).points())
    workers, threads = local_cluster_size()
    print(f"{spec.name}: {runs} runs; {available_cores()} cores; cluster: {workers} worker "
          f"processes x 1 numba thread; in-process: numba's default threads")
    ratios = []
    for k in range(args.rounds):
        alone_dir, dask_dir = work / f"alone_{k}", work / f"dask_{k}"
        alone = _sweep(spec, alone_dir, "--workers", "0")
        before = _numba_cache_files()
        on_dask = _sweep(spec, dask_dir)
        written = {p for p, t in _numba_cache_files().items() if before.get(p) != t}
        same = _table(alone_dir) == _table(dask_dir)
        ratios.append(on_dask / alone)
        print(f"round {k}: one process {alone:.1f} s (runs {_point_seconds(alone_dir):.1f} s), "
              f"local cluster {on_dask:.1f} s (runs {_point_seconds(dask_dir):.1f} s): "
              f"ratio {on_dask / alone:.2f}; tables identical: {same}; numba cache files "
              f"written by the cluster run: {len(written)}")
        if not same:
            sys.exit("the tables differ")
    print(f"ratio (cluster / one process), best of {len(ratios)}: {min(ratios):.2f} "
          f"(target <= 0.6); all: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"results in {work}")


if __name__ == "__main__":
    main()
