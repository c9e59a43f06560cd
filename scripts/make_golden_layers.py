"""Generate the layer golden fixtures from aihwkit 1.2.0 (the oracle).

Run with the aihwkit oracle environment; rpusim is not needed::

    /tmp/aihwkit-venv/bin/python scripts/make_golden_layers.py [--out tests/golden/layers]

Each scenario builds a small network of aihwkit layers (linear, conv 1d/2d/3d, mapped over a
grid of tiles, weight scaling, learned output scales, analog bias, conversion of a torch model,
aihwkit's torch-based inference tiles with quantised and clipped IO) with deterministic tiles (no device-to-device variation, no cycle-to-cycle noise, noise-free
IO, deterministic pulse trains), writes known initial weights, trains a few steps with
``AnalogSGD`` on fixed data and records every output, input gradient and the final weights.
Each scenario becomes ``<out>/<name>.json``, replayed by ``tests/test_golden_layers.py``:

``config``    rpusim-format config dict (``ConfigBase.to_dict``, non-default fields only)
``mapping``   the ``MappingParameter`` fields that differ from the default
``model``     the layers, ``[kind, kwargs]`` each (``linear``, ``conv1d`` ... and the
              parameter-free ``STATELESS`` ones: ``relu``, ``tanh``, ``sigmoid``, ``flatten``,
              ``log_softmax``); ``convert`` true: built as torch layers and converted
``init``      ``{layer index: [weight in torch's layout, bias or null]}``
``lr``, ``steps``  learning rate and the ``x``/``target`` of each step (loss ``0.5 sum (y - t)^2``)
``optimizer``  further ``AnalogSGD`` arguments (momentum, weight decay, ...), if any; with
              ``"class": "Adam"`` the optimizer is ``AnalogAdam`` and the others are its
``input_range``  the ``pre_post.input_range`` fields that differ from the default, if any
``expected``  ``y`` and ``grad_x`` of every step, and ``weights`` ``{index: [w, b]}`` after the
              last step as ``get_weights()`` returns them; ``initial`` for the seed scenarios:
              the weights a layer draws after ``torch.manual_seed``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np
import torch
from aihwkit.nn import (AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear,
                        AnalogSequential)
from aihwkit.nn.conversion import convert_to_analog
from aihwkit.optim import AnalogAdam, AnalogSGD
from aihwkit.simulator import configs as C
from aihwkit.simulator.configs import (BoundManagementType, IOParameters, MappingParameter,
                                       NoiseManagementType, PulseType, UpdateParameters)

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from make_golden import sparse_dict  # noqa: E402

_ANALOG = {"linear": AnalogLinear, "conv1d": AnalogConv1d, "conv2d": AnalogConv2d,
           "conv3d": AnalogConv3d}
_DIGITAL = {"linear": torch.nn.Linear, "conv1d": torch.nn.Conv1d, "conv2d": torch.nn.Conv2d,
            "conv3d": torch.nn.Conv3d}


def _quiet(**extra):
    return dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                w_min_dtod=0.0, **extra)


def _io():
    return IOParameters(is_perfect=True)


def _update():
    return UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT)


def constant_step(**mapping):
    return C.SingleRPUConfig(device=C.ConstantStepDevice(**_quiet(dw_min=0.01)),
                             forward=_io(), backward=_io(), update=_update(),
                             mapping=MappingParameter(**mapping))


def soft_bounds(**mapping):
    return C.SingleRPUConfig(device=C.SoftBoundsDevice(**_quiet(dw_min=0.01)),
                             forward=_io(), backward=_io(), update=_update(),
                             mapping=MappingParameter(**mapping))


def bounded(**mapping):
    """Noise-free but bounded forward IO: outputs at the bound get no gradient."""
    forward = IOParameters(out_noise=0.0, w_noise=0.0, inp_noise=0.0, inp_res=-1, out_res=-1,
                           out_bound=1.0, bound_management=BoundManagementType.NONE,
                           noise_management=NoiseManagementType.NONE)
    return C.SingleRPUConfig(device=C.ConstantStepDevice(**_quiet(dw_min=0.01)),
                             forward=forward, backward=_io(), update=_update(),
                             mapping=MappingParameter(**mapping))


def floating_point(**mapping):
    return C.FloatingPointRPUConfig(mapping=MappingParameter(**mapping))


def hardware_aware(remap="CHANNELWISE_SYMMETRIC", input_range=False, **mapping):
    """An inference config without noise: perfect IO, no weight modifier; remapping and
    learned scales act, and aihwkit updates the weights with torch's optimizer."""
    config = C.InferenceRPUConfig(forward=_io(), mapping=MappingParameter(**mapping))
    config.drift_compensation = None  # not a dataclass (no JSON); training never reads it
    config.remap.type = getattr(C.WeightRemapType, remap)
    if input_range:
        config.pre_post.input_range.enable = True
        config.pre_post.input_range.init_from_data = 2
        config.pre_post.input_range.learn_input_range = True
    return config


def torch_inference(io=None, modifier=None, remap="NONE", input_range=False, **mapping):
    """aihwkit's torch-based inference tile (``TorchInferenceRPUConfig``) with quantised,
    clipped, managed but noise-free IO: its gradients are torch's autograd through that
    forward, its bound management acts on the whole batch."""
    forward = IOParameters(out_noise=0.0, inp_noise=0.0, w_noise=0.0, **(io or {}))
    config = C.TorchInferenceRPUConfig(forward=forward, mapping=MappingParameter(**mapping))
    config.drift_compensation = None
    config.remap.type = getattr(C.WeightRemapType, remap)
    if input_range:
        config.pre_post.input_range.enable = True
        config.pre_post.input_range.init_from_data = 2
        config.pre_post.input_range.learn_input_range = True
    for key, value in (modifier or {}).items():
        setattr(config.modifier, key,
                getattr(C.WeightModifierType, value) if key == "type" else value)
    return config


def torch_irdrop(**io):
    """aihwkit's torch tile with time-sliced reads (``TorchInferenceRPUConfigIRDropT``),
    noise-free: training reads without IR drop (it acts in test mode), in one or several
    passes, each through the ADC."""
    forward = C.IOParametersIRDropT(out_noise=0.0, inp_noise=0.0, w_noise=0.0, **io)
    config = C.TorchInferenceRPUConfigIRDropT(forward=forward)
    config.drift_compensation = None
    return config


def tiki_taka(**mapping):
    dev = C.ConstantStepDevice(**_quiet(dw_min=0.01))
    return C.UnitCellRPUConfig(
        device=C.TransferCompound(unit_cell_devices=[dev, dev], transfer_every=2,
                                  units_in_mbatch=False, n_reads_per_transfer=1,
                                  gamma=0.0, scale_transfer_lr=True, transfer_lr=1.0,
                                  transfer_forward=_io(), transfer_update=_update()),
        forward=_io(), backward=_io(), update=_update(), mapping=MappingParameter(**mapping))


def _mapping_dict(mapping: MappingParameter) -> dict:
    default = MappingParameter()
    fields = ("digital_bias", "weight_scaling_omega", "weight_scaling_columnwise",
              "weight_scaling_lr_compensation", "learn_out_scaling", "out_scaling_columnwise",
              "max_input_size", "max_output_size")
    return {f: getattr(mapping, f) for f in fields if getattr(mapping, f) != getattr(default, f)}


def _input_range_dict(config) -> dict:
    pre_post = getattr(config, "pre_post", None)
    if pre_post is None:
        return {}
    default = type(pre_post.input_range)()
    fields = [f.name for f in dataclasses.fields(default)]
    return {f: getattr(pre_post.input_range, f) for f in fields
            if getattr(pre_post.input_range, f) != getattr(default, f)}


# the parameter-free modules a scenario's model may hold, by name
STATELESS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
             "flatten": torch.nn.Flatten, "log_softmax": lambda: torch.nn.LogSoftmax(dim=1)}


def _build(model_spec, config, convert: bool):
    layers = []
    for kind, kwargs in model_spec:
        if kind in STATELESS:
            layers.append(STATELESS[kind]())
        elif convert:
            layers.append(_DIGITAL[kind](**kwargs))
        else:
            layers.append(_ANALOG[kind](**kwargs, rpu_config=config))
    if convert:
        return torch.nn.Sequential(*layers)
    return AnalogSequential(*layers)


def _list(t):
    return None if t is None else np.asarray(t.detach().cpu(), dtype=np.float64).tolist()


def record(name, config, model_spec, x_shape, y_shape, *, steps=3, lr=0.1, convert=False,
           seed=0, batch=2, x_scale=1.0, optimizer=None):
    rng = np.random.default_rng(seed)
    model = _build(model_spec, config, convert)
    init = {}
    for i, layer in enumerate(model):
        if isinstance(layer, tuple(_ANALOG.values()) + tuple(_DIGITAL.values())):
            if isinstance(layer, tuple(_ANALOG.values())):
                shape = (layer.out_features if isinstance(layer, AnalogLinear)
                         else layer.out_channels,
                         *((layer.in_features,) if isinstance(layer, AnalogLinear)
                           else (layer.in_channels, *layer.kernel_size)))
                has_bias = layer.analog_module.get_weights()[1] is not None or bool(layer.bias)
            else:
                shape = tuple(layer.weight.shape)
                has_bias = layer.bias is not None
            w = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
            b = rng.uniform(-0.3, 0.3, shape[0]).astype(np.float32) if has_bias else None
            if convert:
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(w))
                    if b is not None:
                        layer.bias.copy_(torch.from_numpy(b))
            else:
                layer.set_weights(torch.from_numpy(w), None if b is None else torch.from_numpy(b))
            init[str(i)] = [w.tolist(), None if b is None else b.tolist()]
    if convert:
        model = convert_to_analog(model, config)
    kwargs = dict(optimizer or {})
    cls = AnalogAdam if kwargs.pop("class", "SGD") == "Adam" else AnalogSGD
    opt = cls(model.parameters(), lr=lr, **kwargs)
    opt.regroup_param_groups(model)
    data, ys, grads = [], [], []
    for _ in range(steps):
        x = (x_scale * rng.uniform(-1, 1, (batch, *x_shape))).astype(np.float32)
        t = rng.uniform(-1, 1, (batch, *y_shape)).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        opt.zero_grad()
        y = model(xt)
        (0.5 * ((y - torch.from_numpy(t)) ** 2).sum()).backward()
        opt.step()
        data.append({"x": x.tolist(), "target": t.tolist()})
        ys.append(_list(y))
        grads.append(_list(xt.grad))
    weights = {}
    for i, layer in enumerate(model):
        if isinstance(layer, tuple(_ANALOG.values())):
            w, b = layer.get_weights()
            weights[str(i)] = [_list(w), _list(b)]
    return {"name": name, "config": sparse_dict(config), "mapping": _mapping_dict(config.mapping),
            "model": model_spec, "convert": convert, "init": init, "lr": lr,
            "optimizer": optimizer or {}, "input_range": _input_range_dict(config),
            "steps": data,
            "expected": {"y": ys, "grad_x": grads, "weights": weights}}


def initial_weights(name, kind, kwargs, seed):
    """The weights a layer draws after ``torch.manual_seed(seed)`` (floating point tiles)."""
    torch.manual_seed(seed)
    layers = [_ANALOG[kind](**kwargs, rpu_config=floating_point()) for _ in range(2)]
    after = torch.rand(3)
    return {"name": name, "kind": kind, "kwargs": kwargs, "seed": seed,
            "initial": [[_list(w), _list(b)] for w, b in (l.get_weights() for l in layers)],
            "torch_rand_after": _list(after)}


def scenarios():
    lin = ["linear", {"in_features": 6, "out_features": 4}]
    yield record("linear_digital_bias", constant_step(), [lin], (6,), (4,))
    yield record("linear_analog_bias", constant_step(digital_bias=False), [lin], (6,), (4,))
    yield record("linear_no_bias", soft_bounds(),
                 [["linear", {"in_features": 5, "out_features": 3, "bias": False}]], (5,), (3,))
    yield record("linear_mapped", constant_step(max_input_size=4, max_output_size=3),
                 [["linear", {"in_features": 9, "out_features": 5}]], (9,), (5,), batch=3)
    yield record("linear_mapped_softbounds",
                 soft_bounds(max_input_size=5, max_output_size=4, digital_bias=False),
                 [["linear", {"in_features": 13, "out_features": 7}]], (13,), (7,), batch=3)
    yield record("linear_weight_scaling_columnwise",
                 constant_step(digital_bias=False, weight_scaling_omega=0.8,
                               weight_scaling_columnwise=True,
                               weight_scaling_lr_compensation=True), [lin], (6,), (4,))
    yield record("linear_weight_scaling_mapped",
                 constant_step(weight_scaling_omega=0.6, max_input_size=4, max_output_size=3),
                 [["linear", {"in_features": 7, "out_features": 5}]], (7,), (5,))
    yield record("linear_learn_out_scaling_columnwise",
                 constant_step(learn_out_scaling=True, out_scaling_columnwise=True,
                               weight_scaling_omega=0.7), [lin], (6,), (4,))
    yield record("linear_learn_out_scaling_mapped",
                 constant_step(learn_out_scaling=True, max_input_size=4),
                 [["linear", {"in_features": 7, "out_features": 3}]], (7,), (3,))
    yield record("linear_floating_point", floating_point(), [lin], (6,), (4,))
    yield record("linear_output_bound", bounded(),
                 [["linear", {"in_features": 6, "out_features": 4, "bias": False}]], (6,), (4,),
                 x_scale=3.0)
    yield record("linear_tiki_taka", tiki_taka(), [lin], (6,), (4,), steps=5)
    yield record("conv1d_analog_bias", constant_step(digital_bias=False),
                 [["conv1d", {"in_channels": 2, "out_channels": 3, "kernel_size": 3,
                              "padding": 1}]], (2, 7), (3, 7))
    yield record("conv2d_stride_padding", soft_bounds(),
                 [["conv2d", {"in_channels": 2, "out_channels": 3, "kernel_size": 3,
                              "stride": 2, "padding": 1}]], (2, 6, 5), (3, 3, 3))
    yield record("conv2d_dilation", constant_step(),
                 [["conv2d", {"in_channels": 1, "out_channels": 2, "kernel_size": (2, 3),
                              "dilation": 2}]], (1, 6, 7), (2, 4, 3))
    yield record("conv2d_mapped", constant_step(max_input_size=10, max_output_size=3),
                 [["conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3,
                              "padding": 1}]], (3, 4, 4), (4, 4, 4))
    yield record("conv3d", constant_step(),
                 [["conv3d", {"in_channels": 2, "out_channels": 2, "kernel_size": 2,
                              "stride": (1, 2, 1)}]], (2, 3, 4, 3), (2, 2, 2, 2))
    yield record("conv2d_tiki_taka", tiki_taka(),
                 [["conv2d", {"in_channels": 1, "out_channels": 2, "kernel_size": 2}]],
                 (1, 3, 3), (2, 2, 2), steps=4)
    cnn = [["conv2d", {"in_channels": 1, "out_channels": 3, "kernel_size": 3}], ["relu", {}],
           ["conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 2, "stride": 2}],
           ["flatten", {}], ["linear", {"in_features": 16, "out_features": 3}]]
    yield record("sequential_cnn_softbounds", soft_bounds(), cnn, (1, 6, 6), (3,), steps=4)
    yield record("converted_cnn", constant_step(digital_bias=False), cnn, (1, 6, 6), (3,),
                 steps=3, convert=True)
    # hardware-aware layers: torch's optimizer on the analog weights, scales folded at remaps
    yield record("hwa_linear_momentum_remap_learned_scales",
                 hardware_aware(weight_scaling_omega=1.0, weight_scaling_columnwise=True,
                                learn_out_scaling=True, out_scaling_columnwise=True),
                 [lin], (6,), (4,), steps=4, optimizer={"momentum": 0.9, "weight_decay": 0.01})
    yield record("hwa_linear_lr_compensation",
                 hardware_aware(remap="LAYERWISE_SYMMETRIC", weight_scaling_omega=0.8,
                                weight_scaling_lr_compensation=True, learn_out_scaling=True),
                 [lin], (6,), (4,), steps=4)
    yield record("hwa_linear_mapped_nesterov",
                 hardware_aware(max_input_size=4, max_output_size=3, learn_out_scaling=True),
                 [["linear", {"in_features": 9, "out_features": 5}]], (9,), (5,), steps=4,
                 optimizer={"momentum": 0.5, "nesterov": True})
    yield record("hwa_conv2d_input_range",
                 hardware_aware(input_range=True, weight_scaling_omega=1.0,
                                weight_scaling_columnwise=True),
                 [["conv2d", {"in_channels": 2, "out_channels": 3, "kernel_size": 2}]],
                 (2, 4, 4), (3, 3, 3), steps=4, optimizer={"momentum": 0.5})
    # aihwkit's torch-based inference tile: autograd gradients, batch-level bound management
    yield record("torch_linear_bound_management",
                 torch_inference(io={"out_bound": 1.0}),
                 [lin], (6,), (4,), steps=3, batch=4, x_scale=2.0)
    yield record("torch_linear_input_clipping",
                 torch_inference(io={"noise_management": NoiseManagementType.NONE,
                                     "bound_management": BoundManagementType.NONE,
                                     "inp_res": 1 / 30, "out_res": 1 / 510, "out_bound": 3.0}),
                 [lin], (6,), (4,), steps=3, batch=3, x_scale=1.8, optimizer={"momentum": 0.9})
    yield record("torch_linear_asymmetry_max_nm",
                 torch_inference(io={"noise_management": NoiseManagementType.MAX,
                                     "nm_thres": 1.5, "inp_asymmetry": 0.1,
                                     "out_asymmetry": 0.2, "out_scale": 2.0, "out_bound": 6.0}),
                 [["linear", {"in_features": 5, "out_features": 3}]], (5,), (3,), steps=3,
                 batch=4, x_scale=2.5)
    yield record("torch_linear_remap_constant_nm",
                 torch_inference(io={"noise_management": NoiseManagementType.CONSTANT,
                                     "nm_thres": 2.0, "out_bound": 2.0},
                                 remap="CHANNELWISE_SYMMETRIC", weight_scaling_omega=1.0,
                                 learn_out_scaling=True),
                 [lin], (6,), (4,), steps=3, batch=3, x_scale=2.0)
    yield record("torch_linear_discretize_mapped",
                 torch_inference(io={"out_res": -1.0, "out_bound": 2.5},
                                 modifier={"type": "DISCRETIZE", "res": 1 / 16,
                                           "rel_to_actual_wmax": True},
                                 max_input_size=4, max_output_size=3),
                 [["linear", {"in_features": 9, "out_features": 5}]], (9,), (5,), steps=3,
                 batch=3, x_scale=1.5)
    yield record("torch_linear_perfect_out_scale",
                 torch_inference(io={"is_perfect": True, "out_scale": 2.0}),
                 [lin], (6,), (4,), steps=2)
    yield record("torch_conv2d_bound_management",
                 torch_inference(io={"out_bound": 1.5}, max_input_size=10),
                 [["conv2d", {"in_channels": 2, "out_channels": 3, "kernel_size": 3,
                              "padding": 1}]], (2, 4, 4), (3, 4, 4), steps=2, x_scale=2.0)
    yield record("torch_linear_input_range",
                 torch_inference(io={"noise_management": NoiseManagementType.MAX,
                                     "out_bound": 1.5, "inp_res": 1 / 30},
                                 input_range=True, max_input_size=4),
                 [["linear", {"in_features": 7, "out_features": 3}]], (7,), (3,), steps=4,
                 batch=3, x_scale=2.0)
    yield record("torch_irdrop_split_mode",
                 torch_irdrop(mv_type=C.AnalogMVType.SPLIT_MODE, out_bound=2.0,
                              out_res=1 / 254),
                 [lin], (6,), (4,), steps=3, batch=3, x_scale=2.0)
    yield record("torch_irdrop_bit_wise",
                 torch_irdrop(mv_type=C.AnalogMVType.BIT_WISE, inp_res=1 / 30,
                              noise_management=NoiseManagementType.NONE, out_bound=3.0),
                 [lin], (6,), (4,), steps=3, batch=3, x_scale=1.5, optimizer={"momentum": 0.5})
    yield initial_weights("initial_linear", "linear",
                          {"in_features": 5, "out_features": 3}, 7)
    yield initial_weights("initial_conv2d", "conv2d",
                          {"in_channels": 2, "out_channels": 3, "kernel_size": 3}, 11)
    yield initial_weights("initial_conv1d_no_bias", "conv1d",
                          {"in_channels": 2, "out_channels": 2, "kernel_size": 4,
                           "bias": False}, 5)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "tests" / "golden" / "layers"))
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios():
        (out / f"{scenario['name']}.json").write_text(json.dumps(scenario))
        print("wrote", scenario["name"])


if __name__ == "__main__":
    main()
