"""Random deterministic layer scenarios from aihwkit 1.2.0, replayed on rpusim.torch: a fuzzer
for the layer goldens.

``make_golden_layers.py`` records hand-picked networks. This script draws random ones: a linear
or convolution layer (random sizes, kernel, stride, padding, dilation; sometimes two layers) or
a deeper network (a convolution, activations, flatten, linear layers, a log-softmax), sometimes
built digital and converted (``convert_to_analog``); a random tile config (a device model or a
compound of them without device-to-device variation, random deterministic update settings,
random noise-free IO; or a hardware-aware inference config without noise, C++-backed or
torch-based, with remapping; or floating point); random input ranges (initialised from data,
learned, decayed); a random mapping (tiles split over a grid, digital or analog bias, weight
scaling, learned output scales); known initial weights and a few ``AnalogSGD`` steps
(sometimes with momentum, Nesterov, weight decay) or ``AnalogAdam`` steps on random data.
Every output, input gradient and final weight must agree within the layer goldens'
tolerance. Two steps, two environments::

    /tmp/aihwkit-venv/bin/python scripts/fuzz_golden_layers.py record --n 100 --out /tmp/lfuzz
    python scripts/fuzz_golden_layers.py replay /tmp/lfuzz

With ``RPUSIM_FUZZ_TORCH_TILE=1`` in the environment of ``record`` every scenario uses aihwkit's
torch-based tile (``TorchInferenceRPUConfig``, forward IO that tile accepts, a digital bias).
The files have the layer goldens' format (``make_golden_layers.py``).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fuzz_golden  # noqa: E402  (imports numpy only; aihwkit inside record_one)

NO_DTOD = ("dw_min_dtod", "up_down_dtod", "w_max_dtod", "w_min_dtod", "lifetime_dtod",
           "reset_dtod", "gamma_up_dtod", "gamma_down_dtod", "pow_gamma_dtod",
           "pow_up_down_dtod", "slope_up_dtod", "slope_down_dtod", "reference_std")


def _without_spread(device) -> None:
    """Switch off the device-to-device spread of ``device`` and its sub-devices (a layer's
    tiles cannot be given aihwkit's draws)."""
    for sub in getattr(device, "unit_cell_devices", None) or []:
        _without_spread(sub)
    inner = getattr(device, "device", None)
    if inner is not None and not isinstance(inner, str):
        _without_spread(inner)
    for name in NO_DTOD:
        if hasattr(device, name):
            setattr(device, name, 0.0)


def _network(rng: np.random.Generator):
    """``(model spec, input shape, output shape)`` of a random deeper network: a convolution
    (or none), an activation, flatten, one or two linear layers with activations between them,
    and sometimes a log-softmax (the runs that ``AnalogSequential`` chains)."""
    act = lambda: [str(rng.choice(["relu", "tanh", "sigmoid"])), {}]  # noqa: E731
    spec, x_shape, y_shape = _layers(rng, str(rng.choice(["linear", "conv1d", "conv2d"])),
                                     deep=False)
    if spec[0][0] == "linear":
        spec = [["flatten", {}], *spec, act()]
        x_shape = (2, x_shape[0])
        spec[1][1]["in_features"] = 2 * x_shape[1]
        width = spec[1][1]["out_features"]
    else:
        spec += [act(), ["flatten", {}]]
        width = int(np.prod(y_shape))
    n_out = int(rng.integers(1, 7))
    if rng.random() < 0.5:
        hidden = int(rng.integers(1, 9))
        spec += [["linear", {"in_features": width, "out_features": hidden,
                             "bias": bool(rng.random() < 0.7)}], act()]
        width = hidden
    spec.append(["linear", {"in_features": width, "out_features": n_out}])
    if rng.random() < 0.4:
        spec.append(["log_softmax", {}])
    return spec, x_shape, (n_out,)


def _layers(rng: np.random.Generator, kind: str | None = None, deep: bool = True):
    """``(model spec, input shape, output shape)`` of a random small network."""
    if kind is None:
        kind = str(rng.choice(["linear", "linear", "conv1d", "conv2d", "conv2d", "conv3d",
                               "network", "network"]))
    if kind == "network" and deep:
        return _network(rng)
    if kind == "linear":
        n_in, n_hidden, n_out = (int(v) for v in rng.integers(1, 13, 3))
        bias = bool(rng.random() < 0.7)
        if deep and rng.random() < 0.3:
            return ([["linear", {"in_features": n_in, "out_features": n_hidden, "bias": bias}],
                     ["relu", {}],
                     ["linear", {"in_features": n_hidden, "out_features": n_out}]],
                    (n_in,), (n_out,))
        return [["linear", {"in_features": n_in, "out_features": n_out, "bias": bias}]], \
            (n_in,), (n_out,)
    dims = int(kind[4])
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    k = int(rng.integers(1, 4))
    stride = int(rng.choice([1, 1, 2]))
    padding = int(rng.choice([0, 0, 1]))
    dilation = int(rng.choice([1, 1, 2]))
    size = int(rng.integers(dilation * (k - 1) + 1, dilation * (k - 1) + 5 if dims < 3 else
                            dilation * (k - 1) + 3))
    spec = {"in_channels": c_in, "out_channels": c_out, "kernel_size": k, "stride": stride,
            "padding": padding, "dilation": dilation, "bias": bool(rng.random() < 0.7)}
    out = (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    return [[kind, spec]], (c_in, *([size] * dims)), (c_out, *([out] * dims))


def tile_config(rng: np.random.Generator, C, compound: bool):
    """A pulsed tile config: a random compound (or one device model) without device-to-device
    variation, random deterministic update settings and random noise-free IO on both sides."""
    if compound:
        config = fuzz_golden._compound(rng, C)
    else:
        config = C.SingleRPUConfig(device=fuzz_golden._device(rng, C))
    _without_spread(config.device)
    config.update = fuzz_golden._update(rng, C)
    config.forward, config.backward = fuzz_golden._io(rng, C), fuzz_golden._io(rng, C)
    return config


def _mapping(rng: np.random.Generator, C):
    kw = dict(digital_bias=bool(rng.random() < 0.6))
    if rng.random() < 0.4:
        kw["max_input_size"] = int(rng.integers(2, 9))
    if rng.random() < 0.4:
        kw["max_output_size"] = int(rng.integers(1, 5))
    if rng.random() < 0.3:
        kw.update(weight_scaling_omega=float(rng.choice([0.6, 1.0])),
                  weight_scaling_columnwise=bool(rng.random() < 0.5),
                  weight_scaling_lr_compensation=bool(rng.random() < 0.5))
    if rng.random() < 0.3:
        kw.update(learn_out_scaling=True, out_scaling_columnwise=bool(rng.random() < 0.5))
    return C.MappingParameter(**kw)


def _inference(rng: np.random.Generator, C):
    """A hardware-aware training config without noise: aihwkit's C++-backed inference tile or
    its torch-based one (random noise-free forward IO, remapping; the weights are updated by
    the optimizer), or a floating-point tile."""
    kind = rng.choice(["Inference", "TorchInference", "FloatingPoint"])
    if kind == "FloatingPoint":
        return C.FloatingPointRPUConfig()
    cls = C.InferenceRPUConfig if kind == "Inference" else C.TorchInferenceRPUConfig
    config = cls(forward=fuzz_golden._io(rng, C))
    config.drift_compensation = None  # not a dataclass (no JSON); training never reads it
    config.remap.type = rng.choice([C.WeightRemapType.NONE, C.WeightRemapType.LAYERWISE_SYMMETRIC,
                                    C.WeightRemapType.CHANNELWISE_SYMMETRIC])
    if rng.random() < 0.3:
        config.remap.remapped_wmax = 0.8
    elif rng.random() < 0.3:
        # aihwkit's C++ tile needs remapped_wmax 1 for a bounded scale range
        config.remap.max_scale_range, config.remap.max_scale_ref = 2.0, 0.5
    return config


def _torch_tile(rng: np.random.Generator, C):
    """A ``TorchInferenceRPUConfig`` with random noise-free forward IO that aihwkit's torch
    tile accepts (redrawn until it does) and remapping."""
    for _ in range(200):
        io = fuzz_golden._io(rng, C)
        if (io.mv_type == C.AnalogMVType.ONE_PASS
                and io.noise_management not in (C.NoiseManagementType.AVERAGE_ABS_MAX,
                                                C.NoiseManagementType.ABS_MAX_NP_SUM)
                and io.out_nonlinearity == 0 and io.ir_drop == 0 and io.w_noise == 0
                and io.bound_management != C.BoundManagementType.SHIFT
                # rpusim refuses quantising with a bound of 0 (aihwkit's outputs are NaN
                # wherever its quantiser runs)
                and not (io.out_res > 0 and io.out_bound == 0)
                and not (io.inp_res > 0 and io.inp_bound == 0)):
            break
    config = C.TorchInferenceRPUConfig(forward=io)
    config.drift_compensation = None  # not a dataclass (no JSON); training never reads it
    config.remap.type = rng.choice([C.WeightRemapType.NONE, C.WeightRemapType.LAYERWISE_SYMMETRIC,
                                    C.WeightRemapType.CHANNELWISE_SYMMETRIC])
    return config


def _input_range(rng: np.random.Generator, config) -> None:
    """Sometimes a random input range (aihwkit's ``pre_post.input_range``)."""
    if rng.random() >= 0.3:
        return
    params = config.pre_post.input_range
    params.enable = True
    params.init_from_data = int(rng.choice([0, 1, 2]))
    params.init_value = float(rng.choice([0.5, 1.0, 3.0]))
    params.learn_input_range = bool(rng.random() < 0.7)
    params.decay = float(rng.choice([0.0, 0.001, 0.01]))
    params.gradient_relative = bool(rng.random() < 0.5)


def record_one(index: int, seed: int) -> dict:
    import torch
    from aihwkit.simulator import configs as C

    from make_golden_layers import record

    rng = np.random.default_rng([seed, index])
    torch.manual_seed(int(rng.integers(2**31)))
    family = rng.random()
    torch_tile = os.environ.get("RPUSIM_FUZZ_TORCH_TILE") == "1"
    if torch_tile:
        config = _torch_tile(rng, C)
    else:
        config = _inference(rng, C) if family < 0.25 else tile_config(rng, C, family < 0.5)
    config.mapping = _mapping(rng, C)
    if torch_tile:
        config.mapping.digital_bias = True  # the torch tile has no analog bias
    _input_range(rng, config)
    spec, x_shape, y_shape = _layers(rng)
    lr = float(rng.choice([0.01, 0.1, 0.5]))
    if config.mapping.learn_out_scaling:
        # the learned scales of these short random runs can grow a thousandfold per step;
        # such errors overflow aihwkit's mean-count pulse counts (README, "Differences from
        # aihwkit")
        lr = min(lr, 0.1)
        if hasattr(config, "update"):  # not a floating-point config
            config.update.pulse_type = C.PulseType.DETERMINISTIC_IMPLICIT
    optimizer = {}
    if rng.random() < 0.2:
        # Adam on the digital parameters (and on a hardware-aware layer's weights)
        optimizer["class"] = "Adam"
        lr = min(lr, 0.1)
    elif rng.random() < 0.3:
        optimizer["momentum"] = float(rng.choice([0.5, 0.9]))
        optimizer["nesterov"] = bool(rng.random() < 0.3)
    if rng.random() < 0.2:
        optimizer["weight_decay"] = 0.01
    scenario = record(f"fuzz_s{seed}_{index:04d}", config, spec, x_shape, y_shape,
                      convert=bool(rng.random() < 0.2), steps=int(rng.integers(2, 5)), lr=lr,
                      seed=int(rng.integers(2**31)), batch=int(rng.integers(1, 5)),
                      x_scale=float(rng.choice([0.5, 1.0, 2.0])), optimizer=optimizer)
    if not np.isfinite(np.asarray(scenario["expected"]["y"], dtype=np.float64)).all():
        # e.g. the torch tile's quantisation with a bound of 0, which rpusim refuses
        raise ValueError("aihwkit's outputs are not finite")
    return scenario


def _save(scenario: dict, out: pathlib.Path) -> None:
    (out / f"{scenario['name']}.json").write_text(json.dumps(scenario))


def replay(out: pathlib.Path, verbose: bool) -> int:
    sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
    import test_golden_layers

    def describe(path):
        scenario = json.loads(path.read_text())
        return [f"model: {scenario['model']} mapping: {scenario['mapping']}",
                f"config: {scenario['config']}"]

    return fuzz_golden.replay_checks(sorted(out.glob("fuzz_*.json")),
                                     test_golden_layers.test_training_matches_aihwkit,
                                     describe, "layer", verbose)


def main(argv: list[str]) -> int:
    return fuzz_golden.command_line(argv, __doc__.split("\n")[0], record_one, _save, replay)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
