"""numba's threads start without changing torch's thread count (rpusim/threads.py).

Each scenario runs in a fresh interpreter: the threading layer starts once per process.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a parallel kernel that reports the numba threads it ran on, and torch's count after it
SCENARIO = """
import numpy as np
import numba
{before}
import rpusim
{after}

@numba.njit(parallel=True)
def thread_ids(n):
    out = np.empty(n, np.int64)
    for i in numba.prange(n):
        out[i] = numba.get_thread_id()
    return out

# a torch operation first: torch reapplies its count lazily, so numba's start overwrites it
# only once torch's threads exist
torch.randn(10, 10).log_softmax(1)
used = len(np.unique(thread_ids(10000)))
print(torch.get_num_threads(), numba.get_num_threads(), used)
"""


def _run(before: str, after: str) -> list:
    env = dict(os.environ, NUMBA_NUM_THREADS="2", PYTHONPATH=ROOT)
    code = SCENARIO.format(before=before, after=after)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return [int(v) for v in out.stdout.split()]


@pytest.mark.parametrize("before, after", [
    # the user's setting first, then rpusim: numba's start used to overwrite it with 2
    ("import torch\ntorch.set_num_threads(1)", ""),
    # torch loaded (its default count), set after rpusim
    ("import torch", "torch.set_num_threads(1)"),
    # torch loaded after rpusim
    ("", "import torch\ntorch.set_num_threads(1)"),
])
def test_torch_keeps_its_thread_count(before, after):
    torch_threads, numba_threads, used = _run(before, after)
    assert torch_threads == 1
    # numba's own kernels still get their threads (they name their count per region)
    assert numba_threads == 2
    assert used == 2


def test_start_returns_numba_threads():
    from numba import get_num_threads

    from rpusim.threads import start_numba_threads
    assert start_numba_threads() == get_num_threads()
