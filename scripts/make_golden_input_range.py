"""Write ``tests/golden/input_range.json``: aihwkit 1.2.0's learned input ranges in training.

Run with the aihwkit oracle environment (not with rpusim)::

    /tmp/aihwkit-venv/bin/python scripts/make_golden_input_range.py [output.json]

Each scenario trains an ``AnalogLinear`` with a perfect (or noise-free, clipping) forward and
exact SGD updates (``InferenceRPUConfig``) on fixed inputs, and records per step the outputs, every
tile's input range and its gradient, and the weights after the optimizer step.
``tests/test_input_range.py`` replays the scenarios with rpusim and compares.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

SCENARIOS = {
    # name: (in, out, pre_post.input_range fields, mapping fields, steps, input scale)
    "single_tile": (4, 3, {"init_from_data": 2}, {}, 5, 1.0),
    "no_decay_absolute": (4, 3, {"init_from_data": 1, "decay": 0.0, "gradient_relative": False,
                                  "gradient_scale": 0.5}, {}, 4, 2.0),
    "split_scaled": (5, 4, {"init_from_data": 2, "init_std_alpha": 1.5, "decay": 0.01,
                             "input_min_percentage": 0.5},
                     {"max_input_size": 3, "max_output_size": 2, "weight_scaling_omega": 1.0,
                      "weight_scaling_columnwise": True, "learn_out_scaling": True}, 4, 1.0),
    "fixed_range": (4, 3, {"init_from_data": 0, "learn_input_range": False, "init_value": 0.7},
                    {}, 3, 1.0),
    "analog_bias": (4, 3, {"init_from_data": 2}, {"digital_bias": False}, 3, 1.0),
    "output_clipping": (4, 3, {"init_from_data": 1, "manage_output_clipping": True,
                                "output_min_percentage": 0.9}, {}, 4, 1.0),
    "conv2d": (2, 3, {"init_from_data": 2, "decay": 0.01, "input_min_percentage": 0.5}, {},
               3, 1.0),
}

# Scenarios with an ``AnalogConv2d`` (in and out are channels): its fields and the image size.
CONV = {"conv2d": {"kernel_size": 2, "padding": 1, "image": 4}}

# Forward IO of the scenarios that do not use a perfect forward: deterministic (no noise, no
# quantization, no management) but with an output bound that clips.
FORWARD = {
    "output_clipping": {"is_perfect": False, "out_noise": 0.0, "w_noise": 0.0, "inp_res": -1,
                        "out_res": -1, "out_bound": 0.3, "noise_management": "NONE",
                        "bound_management": "NONE"},
}

LR = 0.1
BATCH = 6


def scenario_data(name: str, seed: int = 7):
    """Initial weights, bias and the inputs of every step of ``name`` (shared with the test)."""
    n_in, n_out, _ir, _mapping, steps, scale = SCENARIOS[name]
    conv = CONV.get(name)
    rng = np.random.default_rng(seed)
    if conv is None:
        w_shape, x_shape = (n_out, n_in), (BATCH, n_in)
    else:
        k, size = conv["kernel_size"], conv["image"]
        w_shape, x_shape = (n_out, n_in, k, k), (2, n_in, size, size)
    weight = rng.uniform(-0.5, 0.5, w_shape)
    bias = rng.uniform(-0.2, 0.2, n_out)
    inputs = [scale * (k + 1) * rng.standard_normal(x_shape) for k in range(steps)]
    return weight, bias, inputs


def make_layer(name: str, config, linear_cls, conv_cls):
    """The scenario's layer: ``linear_cls`` or, for a conv scenario, ``conv_cls``."""
    n_in, n_out = SCENARIOS[name][:2]
    conv = CONV.get(name)
    if conv is None:
        return linear_cls(n_in, n_out, bias=True, rpu_config=config)
    return conv_cls(n_in, n_out, conv["kernel_size"], padding=conv["padding"], bias=True,
                    rpu_config=config)


def run(name: str) -> dict:
    """Train one scenario with aihwkit and record it."""
    # pylint: disable=import-outside-toplevel
    import torch
    from aihwkit.nn import AnalogConv2d, AnalogLinear
    from aihwkit.optim import AnalogSGD
    from aihwkit.simulator.configs import InferenceRPUConfig
    from aihwkit.simulator.parameters import IOParameters, MappingParameter
    from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType

    ir, mapping = SCENARIOS[name][2:4]
    forward = dict(FORWARD.get(name, {"is_perfect": True}))
    for key, enum in (("noise_management", NoiseManagementType),
                      ("bound_management", BoundManagementType)):
        if key in forward:
            forward[key] = enum[forward[key]]
    config = InferenceRPUConfig(forward=IOParameters(**forward),
                                mapping=MappingParameter(**mapping))
    config.pre_post.input_range.enable = True
    for key, value in ir.items():
        setattr(config.pre_post.input_range, key, value)
    weight, bias, inputs = scenario_data(name)
    layer = make_layer(name, config, AnalogLinear, AnalogConv2d)
    layer.set_weights(torch.tensor(weight, dtype=torch.float32),
                      torch.tensor(bias, dtype=torch.float32))
    opt = AnalogSGD(layer.parameters(), lr=LR)
    opt.regroup_param_groups(layer)
    tiles = list(layer.analog_tiles())
    record = {"outputs": [], "ranges": [], "grads": [], "weights": [], "biases": []}
    for x in inputs:
        opt.zero_grad()
        y = layer(torch.tensor(x, dtype=torch.float32))
        (y ** 2).sum().backward()
        record["outputs"].append(y.detach().tolist())
        record["ranges"].append([float(t.input_range.detach()[0]) for t in tiles])
        record["grads"].append([None if t.input_range.grad is None
                                else float(t.input_range.grad[0]) for t in tiles])
        opt.step()
        w, b = layer.get_weights()
        record["weights"].append(w.tolist())
        record["biases"].append(b.tolist())
    layer.eval()
    record["eval_output"] = layer(torch.tensor(inputs[0], dtype=torch.float32)).detach().tolist()
    return record


def main(path: str) -> None:
    """Run every scenario and write the JSON."""
    import aihwkit  # pylint: disable=import-outside-toplevel
    out = {"aihwkit_version": aihwkit.__version__, "lr": LR, "batch": BATCH,
           "scenarios": {name: run(name) for name in SCENARIOS}}
    pathlib.Path(path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden/input_range.json")
