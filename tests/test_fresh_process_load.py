"""A saved tile or layer loads in a fresh process that has imported nothing but what the load
needs: config classes defined above the configs package (noise models, drift compensations,
presets) are found by name.

Each load runs in its own interpreter: in the test process these packages are imported by
other tests already, which hid the failure ("unknown config class 'PCMLikeNoiseModel'").
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import rpusim
from rpusim.configs import InferenceRPUConfig
from rpusim.presets import StandardHWATrainingPreset, TikiTakaReRamSBPreset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fresh(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.parametrize("config", [InferenceRPUConfig, StandardHWATrainingPreset,
                                    TikiTakaReRamSBPreset])
def test_tile_state_loads_in_a_fresh_process(config, tmp_path):
    tile = rpusim.AnalogTile(4, 3, config(), seed=0)
    path = tmp_path / "tile.npz"
    np.savez(path, **tile.state_dict())
    expected = tile.get_weights()
    got = _fresh(f"""
import numpy as np
from rpusim.tile import AnalogTile
tile = AnalogTile.from_state_dict(dict(np.load({str(path)!r})))
print(type(tile.rpu_config).__name__, tile.get_weights().tobytes().hex())
""")
    name, weights = got.split()
    assert name == config.__name__
    assert bytes.fromhex(weights) == expected.tobytes()


def test_layer_state_dict_loads_in_a_fresh_process(tmp_path):
    torch = pytest.importorskip("torch")
    from rpusim.torch import AnalogLinear
    layer = AnalogLinear(3, 2, rpu_config=InferenceRPUConfig(), seed=1)
    path = tmp_path / "layer.pt"
    torch.save(layer.state_dict(), path)
    got = _fresh(f"""
import torch
from rpusim.configs import SingleRPUConfig
from rpusim.torch import AnalogLinear
layer = AnalogLinear(3, 2, rpu_config=SingleRPUConfig())
layer.load_state_dict(torch.load({str(path)!r}, weights_only=True))
print(type(layer.analog_module.tile.rpu_config).__name__,
      layer.get_weights()[0].numpy().tobytes().hex())
""")
    name, weights = got.split()
    assert name == "InferenceRPUConfig"
    assert bytes.fromhex(weights) == layer.get_weights()[0].numpy().tobytes()
