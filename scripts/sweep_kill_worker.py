"""Run a sweep against a Dask cluster started from the command line, kill one worker with
SIGKILL mid-run, and check that the sweep still finishes with the expected table.

    python scripts/sweep_kill_worker.py [--spec FILE.toml] [--compare DIR] [--out DIR]

Starts ``dask scheduler`` and two ``dask worker`` processes (no nanny, so the killed worker
stays dead) on 127.0.0.1, runs ``python -m rpusim sweep SPEC --scheduler ...``, kills the
worker that is busy once a few runs are recorded, waits for the sweep, compares its
``results.csv`` with ``--compare DIR/results.csv`` (e.g. a run on the default cluster; wall
time and worker aside), reruns the same command (every run must be skipped), and stops every
process it started. Default SPEC: the example (``python -m rpusim sweep --example``).
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _table(folder: pathlib.Path) -> list[dict]:
    with open(folder / "results.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k not in ("wall_s", "worker")}
                for row in csv.DictReader(file)]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _sweep(spec, out, address) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rpusim", "sweep", str(spec), "--out",
                             str(out), "--scheduler", address], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=pathlib.Path)
    parser.add_argument("--compare", type=pathlib.Path, help="a results folder to compare with")
    parser.add_argument("--out", type=pathlib.Path, help="results folder (default: a new one)")
    parser.add_argument("--kill-after", type=int, default=3,
                        help="records written before the kill (default 3)")
    args = parser.parse_args()
    import distributed

    from rpusim.sweep import EXAMPLE_SPEC
    from rpusim.sweep.driver import scheduler_workers
    from rpusim.sweep.records import RECORDS
    work = pathlib.Path(tempfile.mkdtemp(prefix="sweep_kill_"))
    spec = args.spec or work / "example.toml"
    if args.spec is None:
        spec.write_text(EXAMPLE_SPEC)
    out = args.out or work / "out"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    cluster = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host",
                                 "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)]
    cluster += [subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads",
                                  "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
                                 env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(2)]
    run = None
    try:
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            print(f"scheduler {address} with 2 workers (dask command line)")
            start = time.perf_counter()
            run = _sweep(spec, out, address)
            victim = None
            while victim is None and run.poll() is None:
                time.sleep(0.1)
                if len(list((out / RECORDS).glob("*.json"))) >= args.kill_after:
                    busy = [w for w, keys in client.processing().items() if keys]
                    victim = busy[0] if busy else None
            if victim is None:
                print("the sweep ended before a worker could be killed")
                return 1
            pid = client.run(os.getpid)[victim]
            os.kill(pid, signal.SIGKILL)
            print(f"killed worker {victim} (pid {pid}) with SIGKILL after "
                  f"{len(list((out / RECORDS).glob('*.json')))} records")
            output, _ = run.communicate(timeout=1800)
            print(output.rstrip().splitlines()[-1])
            print(f"sweep: exit {run.returncode}, {time.perf_counter() - start:.1f} s; workers "
                  f"left: {len(scheduler_workers(client))}")
            if args.compare:
                same = _table(out) == _table(args.compare)
                print(f"table equal to {args.compare / 'results.csv'} (wall time and worker "
                      f"aside): {same}")
            again = _sweep(spec, out, address)
            output, _ = again.communicate(timeout=300)
            print("rerun: " + " | ".join(line for line in output.splitlines()
                                         if "skipping" in line or line.startswith("done")))
    finally:
        if run is not None:
            _stop(run)
        for process in reversed(cluster):
            _stop(process)
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
