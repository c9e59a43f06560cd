"""Standard rpusim workloads, timed side by side with aihwkit 1.2.0 when it imports.

Run from the aihwkit side venv (with rpusim and numba installed there) to get ratios:

    /tmp/aihwkit-venv/bin/python -m pip install -e . numba
    /tmp/aihwkit-venv/bin/python scripts/bench.py --json bench.json

or, leaving that venv as it is, with numba taken from another environment of the same Python
and NumPy (its site-packages is appended to the path, after the venv's own):

    RPUSIM_BENCH_SITE=$(python -c "import numba, os; print(os.path.dirname(os.path.dirname(
        numba.__file__)))") /tmp/aihwkit-venv/bin/python scripts/bench.py

Without aihwkit only rpusim's times are reported. Timings alternate A B A B ... after a warm-up
round each;
the table gives the median time of each, the median of the pairwise ratios rpusim/aihwkit and
their range over the rounds (min-max), and for updates the time per pulse and per thread
(time x threads / pulses; pulses counted by rpusim, whose count has aihwkit's mean).
Inputs: seeded, x uniform in [-0.5, 0.5), d uniform in [-0.05, 0.05), float32, lr 0.01, default
configs except where named. aihwkit runs with torch.set_num_threads(1) (its fastest setting on
2 cores); rpusim with numba's default thread count. OpenBLAS (NumPy's BLAS, for rpusim's large
products) gets one thread unless OPENBLAS_NUM_THREADS is set: on 2 cores its spinning worker
took a core from numba's pulse kernels (Transfer step 10.9 ms with 2 BLAS threads, 5.3 ms with
1, in a process with torch loaded); the setting applies to the whole process, aihwkit included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# read by OpenBLAS when NumPy loads it, hence before the import (see the module docstring)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
if os.environ.get("RPUSIM_BENCH_SITE"):  # numba from another environment (see the docstring)
    sys.path.append(os.environ["RPUSIM_BENCH_SITE"])

import rpusim  # noqa: E402
from rpusim import configs as rc  # noqa: E402

try:
    import torch
    from aihwkit.simulator import configs as ac
    from aihwkit.simulator.tiles import AnalogTile as AihwkitTile
    from aihwkit.simulator.tiles.inference import InferenceTile as AihwkitInferenceTile
    torch.set_num_threads(1)
    HAVE_AIHWKIT = True
except Exception:  # aihwkit is optional: any import failure means "not available"
    HAVE_AIHWKIT = False

LR = 0.01
# seconds after programming of the inference workload's drift
T_INFERENCE = 3600.0


def inputs(batch, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (batch, n_in)).astype(np.float32)
    d = rng.uniform(-0.05, 0.05, (batch, n_out)).astype(np.float32)
    return x, d


def call_for(tile, x, d, what):
    """The timed call: one forward, backward or update, a whole training step, or (inference)
    programming, a drift with compensation and one test-mode forward."""
    if what == "inference":
        if isinstance(tile, rpusim.AnalogTile):
            def test_forward():
                return tile.forward(x, is_test=True)
        else:
            tile.eval()

            def test_forward():
                with torch.no_grad():
                    return tile.forward(x)

        def inference():
            tile.program_weights()
            tile.drift_weights(T_INFERENCE)
            return test_forward()
        return inference
    if what == "forward":
        return lambda: tile.forward(x)
    if what == "backward":
        return lambda: tile.backward(d)
    if what == "update":
        return lambda: tile.update(x, d)

    def step():
        tile.forward(x)
        tile.backward(d)
        tile.update(x, d)
        tile.post_update_step()
    return step


def rpusim_case(config, n_out, n_in, batch, what):
    # An ideal-device tile draws its initial weights first from PCG64(seed), the generator of
    # the inputs: with seed 0 some weight rows would be copies of input rows (outputs near the
    # ADC bound, a second bound-management round that aihwkit's independent weights never need)
    seed = 1 if what == "inference" else 0
    tile = rpusim.AnalogTile(n_out, n_in, config, seed=seed)
    tile.set_learning_rate(LR)
    return call_for(tile, *inputs(batch, n_in, n_out), what)


def aihwkit_case(config, n_out, n_in, batch, what):
    tile = (AihwkitInferenceTile if what == "inference" else AihwkitTile)(n_out, n_in, config)
    tile.set_learning_rate(LR)
    x, d = (torch.from_numpy(a) for a in inputs(batch, n_in, n_out))
    return call_for(tile, x, d, what)


def workloads():
    """(name, rpusim config factory, aihwkit config factory, n_out, n_in, batch, what)."""
    w = [
        ("forward 512x512 b100", lambda: rc.SingleRPUConfig(),
         lambda: ac.SingleRPUConfig(), 512, 512, 100, "forward"),
        ("backward 512x512 b100", lambda: rc.SingleRPUConfig(),
         lambda: ac.SingleRPUConfig(), 512, 512, 100, "backward"),
        ("update ConstantStep 512x512 b100",
         lambda: rc.SingleRPUConfig(device=rc.ConstantStepDevice()),
         lambda: ac.SingleRPUConfig(device=ac.ConstantStepDevice()), 512, 512, 100, "update"),
    ]
    if hasattr(rc, "InferenceRPUConfig"):
        w.append(("program + drift + test forward 512x512 b100",
                  lambda: rc.InferenceRPUConfig(), lambda: ac.InferenceRPUConfig(),
                  512, 512, 100, "inference"))
    if hasattr(rc, "SoftBoundsDevice"):
        w.append(("update SoftBounds 512x512 b100",
                  lambda: rc.SingleRPUConfig(device=rc.SoftBoundsDevice()),
                  lambda: ac.SingleRPUConfig(device=ac.SoftBoundsDevice()), 512, 512, 100,
                  "update"))
        # the batch of a conv layer (images x positions): many samples, a smaller tile
        w.append(("update SoftBounds 256x256 b1000",
                  lambda: rc.SingleRPUConfig(device=rc.SoftBoundsDevice()),
                  lambda: ac.SingleRPUConfig(device=ac.SoftBoundsDevice()), 256, 256, 1000,
                  "update"))
    if hasattr(rc, "TransferCompound") and hasattr(rc, "SoftBoundsDevice"):
        w.append(("step Transfer(2xSoftBounds) 256x256 b100",
                  lambda: rc.UnitCellRPUConfig(device=rc.TransferCompound(
                      unit_cell_devices=[rc.SoftBoundsDevice(), rc.SoftBoundsDevice()],
                      transfer_every=1)),
                  lambda: ac.UnitCellRPUConfig(device=ac.TransferCompound(
                      unit_cell_devices=[ac.SoftBoundsDevice(), ac.SoftBoundsDevice()],
                      transfer_every=1)), 256, 256, 100, "step"))
        small_dev = "SoftBoundsDevice"
    else:
        small_dev = "ConstantStepDevice"
    w.append((f"step {small_dev} 64x64 b1",
              lambda: rc.SingleRPUConfig(device=getattr(rc, small_dev)()),
              lambda: ac.SingleRPUConfig(device=getattr(ac, small_dev)()), 64, 64, 1, "step"))
    return w


# -- extra workload (issue 9): a custom device model vs the built-in it copies --------------------
def custom_device_ratio(rounds: int, min_time: float) -> dict:
    """Update of a 512x512 batch-100 tile: a custom twin of ConstantStepDevice, defined here
    through ``rpusim.devices.define_device`` (outside rpusim, so compiled without the on-disk
    cache), against the built-in; same seed and pulses. Returns medians and their ratio."""
    from dataclasses import dataclass

    from rpusim.devices import PulsedDevice, define_device
    from rpusim.devices.base import SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, clip_to_bounds, ctoc_noise

    @dataclass
    class BenchConstantStepTwin(PulsedDevice):
        pass

    def step(params, P, i, j, w, up, states):  # ConstantStepDevice's step, copied
        dw = P[SLOT_DWMIN_UP, i, j] if up else -P[SLOT_DWMIN_DOWN, i, j]
        dw = ctoc_noise(dw, params.dw_min_std, states, i, w)
        return clip_to_bounds(P, i, j, w + dw)

    define_device(BenchConstantStepTwin, step)
    fa = rpusim_case(rc.SingleRPUConfig(device=BenchConstantStepTwin()), 512, 512, 100, "update")
    fb = rpusim_case(rc.SingleRPUConfig(device=rc.ConstantStepDevice()), 512, 512, 100, "update")
    fa()
    fb()
    reps = max(1, int(min_time / max(timed(fb, 1), 1e-6)))
    ta, tb, ratios = [], [], []
    for _ in range(rounds):
        ta.append(timed(fa, reps))
        tb.append(timed(fb, reps))
        ratios.append(ta[-1] / tb[-1])
    return {"workload": "update custom ConstantStep twin / built-in 512x512 b100",
            "custom_ms": 1e3 * statistics.median(ta), "builtin_ms": 1e3 * statistics.median(tb),
            "ratio": statistics.median(ratios)}


def pulses_per_update(config, n_out, n_in, batch) -> int:
    """Pulses of one update of the workload (rpusim's count; aihwkit's has the same mean)."""
    config.device.count_pulses = True
    tile = rpusim.AnalogTile(n_out, n_in, config, seed=0)
    tile.set_learning_rate(LR)
    tile.update(*inputs(batch, n_in, n_out))
    return int(tile.get_pulse_counters().sum())


def timed(fn, reps):
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def _fresh_env(cold: bool) -> dict:
    """The environment of a new process: the same numba (see RPUSIM_BENCH_SITE), and with
    ``cold`` an empty numba cache."""
    env = dict(os.environ)
    if env.get("RPUSIM_BENCH_SITE"):
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH"), env["RPUSIM_BENCH_SITE"]) if p)
    if cold:
        import tempfile
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="rpusim-cold-")
    return env


_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def startup_time(cold: bool) -> float:
    """Seconds from process start to the first update result of a 64x64 tile."""
    code = ("import numpy as np, rpusim; t = rpusim.AnalogTile(64, 64, seed=0); "
            "t.update(np.ones((2, 64)) * 0.1, np.ones((2, 64)) * 0.01); t.forward(np.ones(64))")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_fresh_env(cold), cwd=_ROOT)
    return time.perf_counter() - start


def demo_first_result_time(cold: bool) -> float:
    """Seconds from ``python -m rpusim demo`` starting to its first result (the first epoch
    line: every kernel of the demo compiled or loaded, one epoch trained); then it is
    stopped."""
    import tempfile
    start = time.perf_counter()
    with subprocess.Popen([sys.executable, "-m", "rpusim", "demo", "--out",
                           tempfile.mkdtemp(prefix="rpusim-demo-")], stdout=subprocess.PIPE,
                          text=True, env=_fresh_env(cold), cwd=_ROOT) as proc:
        for line in proc.stdout:
            if "] epoch " in line:  # a progress line, not the header
                elapsed = time.perf_counter() - start
                break
        else:
            raise RuntimeError("the demo printed no epoch line")
        proc.terminate()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="A/B rounds per workload")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds per timing sample (repetitions are chosen to fill it)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--only", default=None, help="run workloads whose name contains this")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip the start-up times")
    parser.add_argument("--epochs", action="store_true",
                        help="also time one training epoch on digits (scripts/bench_epoch.py)")
    args = parser.parse_args()

    from numba import get_num_threads
    threads = get_num_threads()
    settings = (f"rpusim {rpusim.__version__}, numba threads {threads}, "
                f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
                f"aihwkit {'1.2.0 (torch threads 1)' if HAVE_AIHWKIT else 'not available'}")
    print(settings)
    rows = []
    for name, rcfg, acfg, n_out, n_in, batch, what in workloads():
        if args.only and args.only not in name:
            continue
        fa = rpusim_case(rcfg(), n_out, n_in, batch, what)
        fb = aihwkit_case(acfg(), n_out, n_in, batch, what) if HAVE_AIHWKIT else None
        fa()
        reps_a = max(1, int(args.min_time / max(timed(fa, 1), 1e-6)))
        if fb:
            fb()
            reps_b = max(1, int(args.min_time / max(timed(fb, 1), 1e-6)))
        # one untimed round each: the first calls of a process (allocator, caches, threads
        # starting) moved the first workload's rpusim time by up to 30 % between runs
        timed(fa, reps_a)
        if fb:
            timed(fb, reps_b)
        ta, tb, ratios = [], [], []
        for _ in range(args.rounds):
            a = timed(fa, reps_a)
            ta.append(a)
            if fb:
                b = timed(fb, reps_b)
                tb.append(b)
                ratios.append(a / b)
        row = {"workload": name, "rpusim_ms": 1e3 * statistics.median(ta),
               "aihwkit_ms": 1e3 * statistics.median(tb) if tb else None,
               "ratio": statistics.median(ratios) if ratios else None,
               "ratio_min": min(ratios) if ratios else None,
               "ratio_max": max(ratios) if ratios else None}
        line = f"{name:34s} rpusim {row['rpusim_ms']:8.3f} ms"
        if tb:
            line += (f"  aihwkit {row['aihwkit_ms']:8.3f} ms  ratio {row['ratio']:.3f} "
                     f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f})")
        if what == "update":
            # per pulse and per thread: each library's time times the threads it ran on
            pulses = pulses_per_update(rcfg(), n_out, n_in, batch)
            row["pulses"] = pulses
            row["rpusim_ns_per_pulse_thread"] = 1e6 * row["rpusim_ms"] * threads / pulses
            line += f"  ns/pulse/thread {row['rpusim_ns_per_pulse_thread']:.1f}"
            if tb:
                row["aihwkit_ns_per_pulse_thread"] = 1e6 * row["aihwkit_ms"] / pulses
                line += f" vs {row['aihwkit_ns_per_pulse_thread']:.1f}"
        rows.append(row)
        print(line, flush=True)
    if not args.only or args.only in "custom device":
        row = custom_device_ratio(args.rounds, args.min_time)
        rows.append(row)
        print(f"{'custom device twin vs built-in (update)':42s} custom {row['custom_ms']:9.3f} ms"
              f"   built-in {row['builtin_ms']:9.3f} ms   ratio {row['ratio']:.3f}", flush=True)
    if not args.no_startup and not args.only:
        for what, fn in (("first update", startup_time),
                         ("demo's first result", demo_first_result_time)):
            warm = statistics.median(fn(False) for _ in range(3))
            cold = fn(True)
            rows.append({"workload": f"start to {what} (warm cache)", "rpusim_s": warm})
            rows.append({"workload": f"start to {what} (cold cache)", "rpusim_s": cold})
            print(f"{'start to ' + what + ', warm / cold numba cache':42s} {warm:.2f} s / "
                  f"{cold:.2f} s", flush=True)
    if args.epochs:
        import bench_epoch
        rows += bench_epoch.run(args.rounds, args.only)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"aihwkit": HAVE_AIHWKIT, "settings": settings, "rows": rows}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
