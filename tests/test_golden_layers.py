"""Layer goldens: networks of aihwkit 1.2.0 layers replayed on rpusim.torch.

``tests/golden/layers/*.json`` is written by ``scripts/make_golden_layers.py`` (format in its
docstring): deterministic tiles, known initial weights, a few ``AnalogSGD`` steps on fixed data.
Every output and input gradient (absolute tolerance 1e-5 plus rtol 1e-4, as the tile goldens'
MVMs) and the final weights (atol 1e-6, rtol 1e-4) must match, so each pulse of every tile,
in aihwkit's sample order, has to be reproduced.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rpusim.configs import config_from_dict  # noqa: E402
from rpusim.torch import (AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear,  # noqa: E402
                          AnalogAdam, AnalogSequential, AnalogSGD, convert_to_analog)

GOLDEN = pathlib.Path(__file__).parent / "golden" / "layers"
TRAINING = sorted(p for p in GOLDEN.glob("*.json") if not p.name.startswith("initial_"))
INITIAL = sorted(GOLDEN.glob("initial_*.json"))
RTOL, ATOL, MVM_ATOL = 1e-4, 1e-6, 1e-5

_ANALOG = {"linear": AnalogLinear, "conv1d": AnalogConv1d, "conv2d": AnalogConv2d,
           "conv3d": AnalogConv3d}
_DIGITAL = {"linear": torch.nn.Linear, "conv1d": torch.nn.Conv1d, "conv2d": torch.nn.Conv2d,
            "conv3d": torch.nn.Conv3d}


def _config(scenario):
    config = config_from_dict(scenario["config"])
    for name, value in scenario["mapping"].items():
        setattr(config.mapping, name, value)
    for name, value in scenario.get("input_range", {}).items():
        setattr(config.pre_post.input_range, name, value)
    return config


# the parameter-free modules a scenario's model may hold (make_golden_layers.STATELESS)
STATELESS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
             "flatten": torch.nn.Flatten, "log_softmax": lambda: torch.nn.LogSoftmax(dim=1)}


def _build(scenario, config):
    layers = []
    for i, (kind, kwargs) in enumerate(scenario["model"]):
        if kind in STATELESS:
            layers.append(STATELESS[kind]())
            continue
        weight, bias = scenario["init"][str(i)]
        if scenario["convert"]:
            layer = _DIGITAL[kind](**kwargs)
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(weight))
                if bias is not None:
                    layer.bias.copy_(torch.tensor(bias))
        else:
            layer = _ANALOG[kind](**kwargs, rpu_config=config, seed=i)
            layer.set_weights(torch.tensor(weight), None if bias is None else torch.tensor(bias))
        layers.append(layer)
    if scenario["convert"]:
        return convert_to_analog(torch.nn.Sequential(*layers), config)
    return AnalogSequential(*layers)


def _close(got, expected, atol, where):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(expected, np.float64),
                               rtol=RTOL, atol=atol, err_msg=where)


@pytest.mark.parametrize("path", TRAINING, ids=lambda p: p.stem)
def test_training_matches_aihwkit(path):
    scenario = json.loads(path.read_text())
    model = _build(scenario, _config(scenario))
    kwargs = dict(scenario.get("optimizer", {}))
    cls = AnalogAdam if kwargs.pop("class", "SGD") == "Adam" else AnalogSGD
    opt = cls(model.parameters(), lr=scenario["lr"], **kwargs)
    opt.regroup_param_groups(model)
    expected = scenario["expected"]
    for k, step in enumerate(scenario["steps"]):
        x = torch.tensor(step["x"], requires_grad=True)
        opt.zero_grad()
        y = model(x)
        (0.5 * ((y - torch.tensor(step["target"])) ** 2).sum()).backward()
        opt.step()
        _close(y.detach(), expected["y"][k], MVM_ATOL, f"y of step {k}")
        _close(x.grad, expected["grad_x"][k], MVM_ATOL, f"grad_x of step {k}")
    for index, (weight, bias) in expected["weights"].items():
        got_w, got_b = model[int(index)].get_weights()
        _close(got_w, weight, ATOL, f"weights of layer {index}")
        assert (got_b is None) == (bias is None)
        if bias is not None:
            _close(got_b, bias, ATOL, f"bias of layer {index}")


@pytest.mark.parametrize("path", INITIAL, ids=lambda p: p.stem)
def test_initial_weights_follow_torch_manual_seed(path):
    """After ``torch.manual_seed`` a layer draws aihwkit's (= torch's) initial weights, and
    leaves torch's generator where aihwkit leaves it."""
    from rpusim.configs import FloatingPointRPUConfig

    scenario = json.loads(path.read_text())
    torch.manual_seed(scenario["seed"])
    layers = [_ANALOG[scenario["kind"]](**scenario["kwargs"], rpu_config=FloatingPointRPUConfig())
              for _ in range(2)]
    np.testing.assert_array_equal(torch.rand(3).numpy(),
                                  np.float32(scenario["torch_rand_after"]))
    for layer, (weight, bias) in zip(layers, scenario["initial"]):
        got_w, got_b = layer.get_weights()
        np.testing.assert_array_equal(got_w.numpy(), np.float32(weight))
        if bias is None:
            assert got_b is None
        else:
            np.testing.assert_array_equal(got_b.numpy(), np.float32(bias))
