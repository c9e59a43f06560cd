"""rpusim.sweep on Dask: a LocalCluster, and a scheduler with two workers started through the
``dask`` command line on 127.0.0.1, one of them killed with SIGKILL mid-sweep. Every process
started here is stopped in the fixtures' teardown; every wait is bounded."""

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

from rpusim.sweep import sweep  # noqa: E402
from rpusim.sweep.driver import (available_cores, scheduler_workers,  # noqa: E402
                                 start_local_cluster)
from rpusim.sweep.records import RECORDS  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TASK = "sweep_tasks:noisy_quadratic"
GRID = {"x": [0.0, 1.0, 2.0], "scale": [0.1, 1.0]}


def _without_timing(rows):
    return [{k: v for k, v in row.items() if k not in ("wall_s", "worker")} for row in rows]


def _env(**extra):
    """The test environment (NUMBA_CACHE_DIR included) with this checkout and tests/ first
    on the path, so the processes import this rpusim and the test experiments."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                         env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def local_client():
    sys.path.insert(0, str(ROOT / "tests"))  # spawned workers start from this path
    with start_local_cluster(2) as cluster, distributed.Client(cluster) as client:
        yield client


def test_local_cluster_is_sized_to_the_cores(local_client):
    def threads():
        import numba
        return os.environ["NUMBA_NUM_THREADS"], os.environ["OPENBLAS_NUM_THREADS"], \
            numba.config.NUMBA_NUM_THREADS
    cores = available_cores()
    seen = local_client.run(threads)
    assert len(seen) == 2
    for numba_env, blas, numba_threads in seen.values():
        assert int(numba_env) == numba_threads == max(1, cores // 2) and blas == "1"
    info = scheduler_workers(local_client).values()
    assert all(w["nthreads"] == 1 for w in info)


def test_local_cluster_gives_the_in_process_table(local_client, tmp_path):
    """Determinism: the toy experiment and the demo's training give the same table on two
    worker processes (one numba thread each) as one after another in this process."""
    alone = sweep(TASK, GRID, seeds=2, workers=0, plot=False)
    on_dask = sweep(TASK, GRID, seeds=2, client=local_client, out=tmp_path / "a", plot=False)
    assert _without_timing(on_dask.rows) == _without_timing(alone.rows)
    assert all(row["worker"].startswith("tcp://127.0.0.1:") for row in on_dask.rows)
    assert len(list((tmp_path / "a" / RECORDS).glob("*.json"))) == 12

    demo = {"algorithm": ["sgd", "tiki-taka"]}
    base = {"epochs": 1, "hidden": 8, "n_samples": 64}
    alone = sweep("demo", demo, base=base, seeds=2, workers=0, plot=False)
    on_dask = sweep("demo", demo, base=base, seeds=2, client=local_client, plot=False)
    assert on_dask.failed == 0
    assert _without_timing(on_dask.rows) == _without_timing(alone.rows)


def test_failing_run_on_a_worker_is_recorded(local_client):
    result = sweep(TASK, GRID, base={"fail_at": 1.0}, client=local_client, plot=False)
    assert result.failed == 2 and result.lost == 0
    assert {r["x"] for r in result.rows if r["status"] == "error"} == {1.0}


# -- a cluster from the command line, one worker killed ------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def cli_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (no nanny: a killed worker stays
    dead, so its runs must finish elsewhere). Worker ``w0`` stalls on every run, so it is
    busy whenever it is killed and every record comes from ``w1``."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = []

    def start(name, *args, env=None):
        log = open(logs / f"{name}.log", "w")
        processes.append(subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                          stderr=subprocess.STDOUT, env=env or _env(),
                                          cwd=ROOT))
        log.close()

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port),
              "--no-dashboard")
        for k in range(2):
            start(f"worker{k}", "worker", address, "--nthreads", "1", "--no-nanny",
                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{k}",
                  env=_env(RPUSIM_TEST_STALL="1") if k == 0 else None)
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            yield address, client, processes
    finally:
        for process in reversed(processes):
            _stop(process)


def _sweep_cli(spec, out, address):
    return subprocess.Popen([sys.executable, "-m", "rpusim", "sweep", str(spec), "--out",
                             str(out), "--scheduler", address], env=_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_worker_killed_mid_sweep_its_runs_finish_elsewhere(cli_cluster, tmp_path):
    address, client, processes = cli_cluster
    workers = scheduler_workers(client)
    by_name = {info["name"]: worker for worker, info in workers.items()}
    victim, survivor = by_name["w0"], by_name["w1"]
    spec = tmp_path / "spec.toml"
    spec.write_text(f'experiment = "{TASK}"\nseeds = 2\n[base]\nsleep = 0.1\n'
                    f'[grid]\nx = [0.0, 1.0, 2.0]\nscale = [0.1, 1.0]\n')
    out = tmp_path / "out"
    run = _sweep_cli(spec, out, address)
    try:
        deadline = time.monotonic() + 60
        interrupted = []
        while not interrupted and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
            if list((out / RECORDS).glob("*.json")):  # mid-run: some runs are finished
                interrupted = client.processing([victim])[victim]
        assert interrupted, "the stalling worker never got a run"
        os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
        output, _ = run.communicate(timeout=90)
    finally:
        _stop(run)
    assert run.returncode == 0, output
    assert "done: 12 computed, 0 skipped" in output and "0 lost" in output
    assert list(scheduler_workers(client)) == [survivor]

    records = [json.loads(p.read_text()) for p in (out / RECORDS).glob("*.json")]
    assert len(records) == 12 and all(r["status"] == "ok" for r in records)
    assert {r["worker"] for r in records} == {survivor}
    for key in interrupted:  # what the killed worker was running was computed elsewhere
        assert (out / RECORDS / f"{key.removeprefix('rpusim-sweep-')}.json").exists()
    alone = sweep(TASK, {"x": [0.0, 1.0, 2.0], "scale": [0.1, 1.0]}, base={"sleep": 0.0},
                  seeds=2, workers=0, plot=False)
    table = (out / "results.csv").read_text().splitlines()
    assert len(table) == 1 + 12
    header = table[0].split(",")
    losses = [float(line.split(",")[header.index("loss")]) for line in table[1:]]
    assert losses == [row["loss"] for row in alone.rows]

    again = _sweep_cli(spec, out, address)  # a rerun skips every run
    try:
        output, _ = again.communicate(timeout=60)
    finally:
        _stop(again)
    assert again.returncode == 0, output
    assert "skipping 12 finished runs" in output and "0 computed, 12 skipped" in output
