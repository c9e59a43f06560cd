"""Instructions per ``tile.update`` call, counted by valgrind's callgrind (independent of load).

    python scripts/count_instructions.py [--reps 2] [--threads 1] [CASE ...]

CASE is one of ``cs`` (ConstantStep 512x512, batch 100), ``sb`` (SoftBounds 512x512, batch 100),
``sbbig`` (SoftBounds 256x256, batch 1000), ``cssmall`` (ConstantStep 64x64, batch 1), or
``step64``: a whole training step of ``scripts/bench.py``'s SoftBounds 64x64 batch-1 workload
(forward, backward, update, ``post_update_step``: mostly Python, the interpreter's instructions
included); inputs as in ``scripts/bench.py``. Needs valgrind, its ``valgrind/callgrind.h`` and a C compiler: a small
helper library switches callgrind's counting on just around the timed calls (client requests),
so Python's start-up, imports and the first (compiling) call are not counted. Run the script
once without valgrind first (it does that itself) so that numba's cache is warm: compiling
under valgrind takes many minutes.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CASES = {"cs": ("ConstantStepDevice", 512, 512, 100), "sb": ("SoftBoundsDevice", 512, 512, 100),
         "sbbig": ("SoftBoundsDevice", 256, 256, 1000),
         "cssmall": ("ConstantStepDevice", 64, 64, 1), "step64": ("SoftBoundsDevice", 64, 64, 1)}
HELPER = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION;
                      CALLGRIND_TOGGLE_COLLECT; }
void cg_stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT("updates");
                     CALLGRIND_STOP_INSTRUMENTATION; }
"""


def run_case(case: str, reps: int, helper: str | None) -> None:
    """The measured process: one warm-up update, then ``reps`` counted ones."""
    sys.path.insert(0, ROOT)
    import numpy as np

    import rpusim
    from rpusim import configs as rc
    device, n_out, n_in, batch = CASES[case]
    tile = rpusim.AnalogTile(n_out, n_in, rc.SingleRPUConfig(device=getattr(rc, device)()),
                             seed=0)
    tile.set_learning_rate(0.01)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (batch, n_in)).astype(np.float32)
    d = rng.uniform(-0.05, 0.05, (batch, n_out)).astype(np.float32)
    if case == "step64":
        def call():
            tile.forward(x)
            tile.backward(d)
            tile.update(x, d)
            tile.post_update_step()
    else:
        def call():
            tile.update(x, d)
    call()
    lib = ctypes.CDLL(helper) if helper else None
    if lib:
        lib.cg_start()
    for _ in range(reps):
        call()
    if lib:
        lib.cg_stop()


def count(case: str, reps: int, threads: int, helper: str, work: str) -> int:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    me = os.path.abspath(__file__)
    subprocess.run([sys.executable, me, "--run", case, "--reps", "1"], check=True, env=env)
    out = os.path.join(work, f"cg.{case}.%p")
    subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                    f"--callgrind-out-file={out}", sys.executable, me, "--run", case, "--reps",
                    str(reps), "--helper", helper], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dumps = [f for f in os.listdir(work) if f.startswith(f"cg.{case}.") and f.endswith(".1")]
    with open(os.path.join(work, dumps[0])) as fh:
        total = int(re.search(r"^(?:totals|summary): (\d+)", fh.read(), re.M).group(1))
    return total // reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=list(CASES),
                        help=f"cases among {', '.join(CASES)} (default: all)")
    parser.add_argument("--reps", type=int, default=2, help="counted updates per case")
    parser.add_argument("--threads", type=int, default=1, help="numba threads")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_case(args.run, args.reps, args.helper)
        return
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    with tempfile.TemporaryDirectory(prefix="rpusim-cg-") as work:
        helper = os.path.join(work, "libcg.so")
        with open(os.path.join(work, "cg.c"), "w") as fh:
            fh.write(HELPER)
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", helper,
                        os.path.join(work, "cg.c")], check=True)
        for case in args.cases:
            reps = args.reps * (100 if case in ("cssmall", "step64") else 1)
            n = count(case, reps, args.threads, helper, work)
            what = "step" if case == "step64" else "update"
            print(f"{case:8s} {n:>14,d} instructions per {what} ({reps} counted)", flush=True)


if __name__ == "__main__":
    main()
