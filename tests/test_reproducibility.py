"""Same seed, same bits, whatever the number of numba threads; different seeds, different noise.

The scenario runs in subprocesses with ``NUMBA_NUM_THREADS=1`` and ``=2``. They share the test
session's ``NUMBA_CACHE_DIR`` (set by conftest), and the scenario runs once in this process
first, so the subprocesses load compiled kernels from the disk cache instead of compiling.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

import numpy as np

import rpusim.configs as C
from rpusim import AnalogTile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def scenario_digest(seed: int) -> str:
    """Stochastic compressed updates with device noise, noisy forward/backward, decay and
    diffusion on a tile big enough to be split across threads, a torch-based inference tile's
    forward and gradients, then a chopped transfer compound (random choppers, transfers); the
    digest of every output and hidden state."""
    config = C.SingleRPUConfig(
        device=C.ConstantStepDevice(dw_min_std=0.3, lifetime=100.0, diffusion=0.001),
        update=C.UpdateParameters(pulse_type=C.PulseType.STOCHASTIC_COMPRESSED),
        forward=C.IOParameters(out_noise=0.06, inp_noise=0.01),
        backward=C.IOParameters(out_noise=0.06))
    tile = AnalogTile(24, 20, config, seed=seed)
    gen = np.random.default_rng(1234)
    digest = hashlib.sha256()
    for _ in range(3):
        x = gen.uniform(-1, 1, (16, 20))
        d = gen.uniform(-1, 1, (16, 24))
        digest.update(tile.forward(x).tobytes())
        digest.update(tile.backward(d).tobytes())
        tile.update(x, d, lr=0.05)
        tile.post_update_step()
    tile.diffuse_weights()
    digest.update(tile.get_weights().tobytes())
    # aihwkit's torch-based tile: modifier drawn per forward, noisy IO, its gradients
    torch_config = C.TorchInferenceRPUConfig(forward=C.IOParameters(out_noise=0.06,
                                                                    inp_noise=0.01))
    torch_config.modifier.type = C.WeightModifierType.ADD_NORMAL
    torch_config.modifier.std_dev = 0.05
    torch_tile = AnalogTile(24, 20, torch_config, seed=seed)
    for _ in range(2):
        x = gen.uniform(-1, 1, (16, 20)).astype(np.float32)
        d = gen.uniform(-1, 1, (16, 24)).astype(np.float32)
        y, saved = torch_tile.forward_saving(x, False)
        digest.update(y.tobytes())
        digest.update(torch_tile.input_gradient(d, saved).tobytes())
        v, h = torch_tile.weight_gradient_pair(d, saved)
        digest.update(torch_tile.update_gradient(v, h).tobytes())
    if hasattr(C, "ChoppedTransferCompound"):
        compound = AnalogTile(24, 20, C.UnitCellRPUConfig(device=C.ChoppedTransferCompound(
            unit_cell_devices=[C.ConstantStepDevice(), C.ConstantStepDevice()],
            transfer_every=2, in_chop_prob=0.5)), seed=seed)
        for _ in range(3):
            compound.update(gen.uniform(-1, 1, (16, 20)), gen.uniform(-1, 1, (16, 24)))
        digest.update(compound.get_weights().tobytes())
        for value in compound.get_hidden_parameters().values():
            digest.update(value.tobytes())
    return digest.hexdigest()


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
sys.path.insert(0, {root!r})
import numba
from test_reproducibility import scenario_digest
print(numba.get_num_threads(), scenario_digest({seed}))
"""


def _run_child(threads: int, seed: int) -> tuple[int, str]:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    code = _CHILD.format(tests=str(ROOT / "tests"), root=str(ROOT), seed=seed)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600, check=True).stdout.split()
    return int(out[-2]), out[-1]


def test_thread_count_does_not_change_bits(capsys):
    here = scenario_digest(7)
    one = _run_child(1, 7)
    two = _run_child(2, 7)
    other_seed = _run_child(2, 8)
    with capsys.disabled():
        print(f"\n[reproducibility] seed 7: in-process {here[:16]}, 1 thread {one[1][:16]} "
              f"(threads={one[0]}), 2 threads {two[1][:16]} (threads={two[0]}); "
              f"seed 8: {other_seed[1][:16]}")
    assert (one[0], two[0]) == (1, 2)
    assert one[1] == two[1] == here
    assert other_seed[1] != here


def test_same_seed_same_bits_different_seed_different_noise():
    assert scenario_digest(3) == scenario_digest(3)
    assert scenario_digest(3) != scenario_digest(4)
    a = AnalogTile(3, 3, seed=1)
    b = AnalogTile(3, 3, seed=2)
    assert not np.array_equal(a.get_weights(), b.get_weights())
