"""Hardware-aware training and inference through the torch layers (issue 15, item 4).

An ``InferenceRPUConfig`` layer trains on floating-point SGD while every training forward and
backward sees the weight-noise draw held since the last optimizer step; in eval mode the model is
programmed and drifted through ``program_analog_weights`` / ``drift_analog_weights``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rpusim.configs as C  # noqa: E402
from rpusim.inference import PCMLikeNoiseModel  # noqa: E402
from rpusim.torch import AnalogLinear, AnalogSequential, AnalogSGD  # noqa: E402


def hwa_config(std_dev=0.1, **noise):
    return C.InferenceRPUConfig(
        forward=C.IOParameters(is_perfect=True),
        modifier=C.WeightModifierParameter(type=C.WeightModifierType.ADD_NORMAL, std_dev=std_dev),
        noise_model=PCMLikeNoiseModel(**noise))


def model(config, seed=0):
    return AnalogSequential(AnalogLinear(6, 5, rpu_config=config, seed=seed), torch.nn.Tanh(),
                            AnalogLinear(5, 3, rpu_config=config, seed=seed + 1))


def train(net, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    opt = AnalogSGD(net.parameters(), lr=0.1)
    opt.regroup_param_groups(net)
    for _ in range(steps):
        x, y = torch.rand(4, 6, generator=gen), torch.rand(4, 3, generator=gen)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()


def test_without_weight_noise_a_layer_trains_as_torch_linear():
    """Modifier NONE and perfect IO: the analog layer is torch's Linear under SGD."""
    config = C.InferenceRPUConfig(forward=C.IOParameters(is_perfect=True))
    layer = AnalogLinear(6, 3, rpu_config=config, seed=3)
    ref = torch.nn.Linear(6, 3)
    w, b = layer.get_weights()
    with torch.no_grad():
        ref.weight.copy_(w)
        ref.bias.copy_(b)
    opt_a, opt_r = AnalogSGD(layer.parameters(), lr=0.1), torch.optim.SGD(ref.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y = torch.rand(4, 6, generator=gen), torch.rand(4, 3, generator=gen)
        for net, opt in ((layer, opt_a), (ref, opt_r)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    w, b = layer.get_weights()
    torch.testing.assert_close(w, ref.weight.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b, ref.bias.detach(), rtol=1e-5, atol=1e-6)


def test_training_forward_sees_the_draw_held_between_steps():
    net = model(hwa_config())
    train(net, 2)
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(9))
    net.train()
    first, second = net(x).detach(), net(x).detach()
    torch.testing.assert_close(first, second, rtol=0, atol=0)   # held draw: same noise
    net.eval()
    clean = net(x).detach()
    assert (first - clean).abs().max() > 1e-3                   # eval reads W without noise
    net.train()
    train(net, 1, seed=5)                                        # post_update_step redraws
    net.train()
    assert not torch.equal(net(x).detach(), first)


def test_program_and_drift_through_the_model():
    net = model(hwa_config(), seed=4)
    train(net, 3)
    x = torch.rand(8, 6, generator=torch.Generator().manual_seed(1))
    with pytest.raises(RuntimeError):
        net.program_analog_weights()          # aihwkit requires eval() first
    net.eval()
    targets = [tile.get_target_weights() for tile in net.analog_tiles()]
    net.program_analog_weights()
    net.drift_analog_weights(3600.0)
    for tile, target in zip(net.analog_tiles(), targets):
        drifted = tile.get_weights()
        assert drifted.shape == target.shape and not np.allclose(drifted, target, atol=1e-4)
        np.testing.assert_array_equal(tile.get_target_weights(), target)
        assert 0.5 < tile.get_drift_compensation_alpha() < 2.0
    y = net(x)
    assert torch.isfinite(y).all() and y.shape == (8, 3)


def test_hardware_aware_run_is_reproducible():
    outs = []
    for _ in range(2):
        net = model(hwa_config(), seed=7)
        train(net, 3, seed=2)
        net.eval()
        net.program_analog_weights()
        net.drift_analog_weights(86400.0)
        outs.append(net(torch.ones(2, 6)).detach())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["linear", "conv2d"])
@pytest.mark.parametrize("x_value, saturated", [(0.8, True), (0.3, False)])
def test_saturation_mask_tests_the_raw_output_before_the_remap_scale(kind, x_value, saturated):
    """aihwkit masks the gradient of outputs whose raw tile output is at the ADC bound, before
    the remapping scale. Weights [0.5, 0.5], out_bound 1: the remap gives analog weights
    [1, 1] and s = 0.5. x = 0.8: raw 1.6, clipped to 1, y = 0.5 and no gradient; x = 0.3: raw
    0.6, y = 0.3 and the gradient s * [1, 1] = [0.5, 0.5] (checked against aihwkit 1.2.0)."""
    from rpusim.torch import AnalogConv2d
    cfg = C.InferenceRPUConfig()
    cfg.forward = C.IOParameters(inp_noise=0.0, out_noise=0.0, w_noise=0.0, inp_res=-1,
                                 out_res=-1, out_bound=1.0,
                                 noise_management=C.NoiseManagementType.NONE,
                                 bound_management=C.BoundManagementType.NONE)
    cfg.remap.type = C.WeightRemapType.LAYERWISE_SYMMETRIC
    if kind == "linear":
        layer = AnalogLinear(2, 1, bias=False, rpu_config=cfg)
        layer.set_weights(torch.tensor([[0.5, 0.5]]))
        x = torch.full((1, 2), x_value)
    else:
        layer = AnalogConv2d(2, 1, kernel_size=1, bias=False, rpu_config=cfg)
        layer.set_weights(torch.full((1, 2, 1, 1), 0.5))
        x = torch.full((1, 2, 1, 1), x_value)
    opt = AnalogSGD(layer.parameters(), lr=0.0)
    opt.regroup_param_groups(layer)
    layer(x).sum().backward()
    opt.step()  # lr 0: no update; post_update_step remaps
    x.requires_grad_(True)
    y = layer(x)
    y.sum().backward()
    expected_y = 0.5 if saturated else x_value
    np.testing.assert_allclose(y.detach().numpy().ravel(), [expected_y], rtol=1e-6)
    expected_grad = [0.0, 0.0] if saturated else [0.5, 0.5]
    np.testing.assert_allclose(x.grad.numpy().ravel(), expected_grad, rtol=1e-6)


def _copy_to_torch(layer, ref):
    w, b = layer.get_weights()
    with torch.no_grad():
        ref.weight.copy_(w.reshape(ref.weight.shape))
        if b is not None:
            ref.bias.copy_(b)


_OPTIMIZERS = {
    "momentum": (lambda p: AnalogSGD(p, lr=0.1, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov+wd": (lambda p: AnalogSGD(p, lr=0.1, momentum=0.5, nesterov=True,
                                        weight_decay=0.05),
                    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, nesterov=True,
                                              weight_decay=0.05)),
    "adam": (lambda p: __import__("rpusim.torch", fromlist=["AnalogAdam"]).AnalogAdam(p, lr=0.01),
             lambda p: torch.optim.Adam(p, lr=0.01)),
}


@pytest.mark.parametrize("optimizer", sorted(_OPTIMIZERS))
@pytest.mark.parametrize("kind", ["linear", "linear-analog-bias", "linear-split", "conv2d",
                                  "torch-config"])
def test_hardware_aware_weights_follow_the_torch_optimizer(optimizer, kind):
    """aihwkit 1.2.0 updates its inference tiles' weights with torch's optimizer (their
    ``shared_weights``): momentum, weight decay and Adam act on the analog weights. Without
    weight scaling, remapping or noise, the layer then trains exactly as torch's own layer
    under the same optimizer (checked against aihwkit 1.2.0 for SGD with momentum, weight
    decay, Nesterov and Adam)."""
    from rpusim.torch import AnalogConv2d
    cls = C.TorchInferenceRPUConfig if kind == "torch-config" else C.InferenceRPUConfig
    config = cls(forward=C.IOParameters(is_perfect=True))
    if kind == "linear-analog-bias":
        config.mapping.digital_bias = False
    if kind == "linear-split":
        config.mapping.max_input_size = 4
        config.mapping.max_output_size = 2
    if kind == "conv2d":
        layer, ref = AnalogConv2d(2, 3, 2, rpu_config=config, seed=3), torch.nn.Conv2d(2, 3, 2)
        shape_x = (2, 2, 4, 4)
    else:
        layer, ref = AnalogLinear(6, 3, rpu_config=config, seed=3), torch.nn.Linear(6, 3)
        shape_x = (4, 6)
    _copy_to_torch(layer, ref)
    make_a, make_r = _OPTIMIZERS[optimizer]
    opt_a, opt_r = make_a(layer.parameters()), make_r(ref.parameters())
    opt_a.regroup_param_groups(layer)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        x = torch.rand(*shape_x, generator=gen)
        for net, opt in ((layer, opt_a), (ref, opt_r)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    w, b = layer.get_weights()
    torch.testing.assert_close(w.reshape(ref.weight.shape), ref.weight.detach(), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(b, ref.bias.detach(), rtol=1e-5, atol=1e-6)


def test_learning_rate_compensation_of_inference_tiles_divides_the_gradient_only():
    """aihwkit 1.2.0's inference tile divides the update's errors by ``alpha / mean(alpha)``
    (weight scale and learning-rate compensation) while torch's optimizer keeps its own
    learning rate: the logical step is ``lr * mean(alpha) * d^T x``. By hand: W = [[0.4, -0.2],
    [0.1, 0.3]], omega 0.8 gives alpha = 0.5; x = [1, 0.5], d = [1, 1] (the sum of the
    outputs), lr 0.1: W - 0.05 * d^T x = [[0.35, -0.225], [0.05, 0.275]] (aihwkit's numbers).
    The torch tile (TorchInferenceRPUConfig) is not compensated: W - 0.1 * d^T x."""
    expected = {C.InferenceRPUConfig: [[0.35, -0.225], [0.05, 0.275]],
                C.TorchInferenceRPUConfig: [[0.3, -0.25], [0.0, 0.25]]}
    for cls, want in expected.items():
        config = cls(forward=C.IOParameters(is_perfect=True))
        config.mapping.weight_scaling_omega = 0.8
        config.mapping.weight_scaling_lr_compensation = True
        layer = AnalogLinear(2, 2, bias=False, rpu_config=config)
        layer.set_weights(torch.tensor([[0.4, -0.2], [0.1, 0.3]]))
        opt = AnalogSGD(layer.parameters(), lr=0.1)
        opt.regroup_param_groups(layer)
        layer(torch.tensor([[1.0, 0.5]])).sum().backward()
        opt.step()
        np.testing.assert_allclose(layer.get_weights()[0].numpy(), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("how", ["state_dict", "torch.save", "deepcopy"])
def test_hardware_aware_training_resumes_bit_identically_with_the_optimizer_state(how, tmp_path):
    """The weight parameters share the tiles' arrays; after a load, a copy or unpickling they
    are bound to the new arrays, and the optimizer's momentum (kept per parameter) goes on."""
    import copy
    config = C.InferenceRPUConfig(
        modifier=C.WeightModifierParameter(type=C.WeightModifierType.ADD_NORMAL, std_dev=0.05))
    config.remap.type = C.WeightRemapType.CHANNELWISE_SYMMETRIC

    def make():
        net = model(config, seed=5)
        opt = AnalogSGD(net.parameters(), lr=0.1, momentum=0.9)
        opt.regroup_param_groups(net)
        return net, opt

    def steps(net, opt, n, seed):
        gen = torch.Generator().manual_seed(seed)
        for _ in range(n):
            x, y = torch.rand(4, 6, generator=gen), torch.rand(4, 3, generator=gen)
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()

    net, opt = make()
    steps(net, opt, 2, 0)
    assert not any("shared_weights" in k for k in net.state_dict())
    if how == "state_dict":
        net2, opt2 = make()
        net2.load_state_dict(net.state_dict())
        # a copy: a live optimizer's state dict shares its momentum tensors
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    elif how == "torch.save":
        torch.save({"net": net, "opt": opt.state_dict()}, tmp_path / "run.pt")
        saved = torch.load(tmp_path / "run.pt", weights_only=False)
        net2 = saved["net"]
        opt2 = AnalogSGD(net2.parameters(), lr=0.1, momentum=0.9)
        opt2.regroup_param_groups(net2)
        opt2.load_state_dict(saved["opt"])
    else:
        net2 = copy.deepcopy(net)
        opt2 = AnalogSGD(net2.parameters(), lr=0.1, momentum=0.9)
        opt2.regroup_param_groups(net2)
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    steps(net, opt, 3, 1)
    steps(net2, opt2, 3, 1)
    for (w1, b1), (w2, b2) in zip((m.get_weights() for m in net if hasattr(m, "get_weights")),
                                  (m.get_weights() for m in net2 if hasattr(m, "get_weights"))):
        assert torch.equal(w1, w2) and torch.equal(b1, b2)


@pytest.mark.parametrize("remap", ["LAYERWISE_SYMMETRIC", "CHANNELWISE_SYMMETRIC"])
def test_remapping_folds_the_learned_output_scale_as_aihwkit(remap):
    """aihwkit remaps with all of a tile's output scales (weight scale times learned scale),
    keeps the result and sets the learned scale back to 1 after every step: from the second
    step on the update divides by the folded scale. Two steps of sum(y) at lr 0.1 from
    W = [[0.4, -0.2], [0.1, 0.3]]; the weights are aihwkit 1.2.0's (the same for both remaps,
    each run in aihwkit)."""
    config = C.InferenceRPUConfig(forward=C.IOParameters(is_perfect=True))
    config.remap.type = getattr(C.WeightRemapType, remap)
    config.mapping.learn_out_scaling = True
    layer = AnalogLinear(2, 2, bias=False, rpu_config=config)
    layer.set_weights(torch.tensor([[0.4, -0.2], [0.1, 0.3]]))
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    opt.regroup_param_groups(layer)
    for x in ([[1.0, 0.5]], [[-0.5, 1.0]]):
        opt.zero_grad()
        layer(torch.tensor(x)).sum().backward()
        opt.step()
        assert float(layer.analog_module.out_scaling_alpha[0].detach()) == 1.0
    np.testing.assert_allclose(layer.get_weights()[0].numpy(),
                               [[0.338227, -0.341016], [0.050709, 0.138181]], rtol=2e-5)


def test_remapping_refuses_output_scales_beyond_the_float_range():
    """A diverged run whose learned output scale times the remapping scale overflows float32:
    aihwkit carries on with NaN weights; rpusim says so and leaves the scales alone."""
    config = C.InferenceRPUConfig(forward=C.IOParameters(is_perfect=True))
    config.remap.type = C.WeightRemapType.CHANNELWISE_SYMMETRIC
    config.mapping.learn_out_scaling = True
    layer = AnalogLinear(2, 2, bias=False, rpu_config=config)
    layer.set_weights(torch.tensor([[0.4, -0.2], [0.1, 0.3]]))
    tile = layer.analog_module.tiles[0][0]
    tile._set_remap_scales(np.array([3e30, 1.0]))
    with torch.no_grad():
        layer.analog_module.out_scaling_alpha[0].fill_(1e20)
    scales = tile._output_scales(False).copy()
    with pytest.raises(ValueError, match="diverged"):
        layer.analog_module.post_update_step()
    np.testing.assert_array_equal(tile._output_scales(False), scales)
    assert float(layer.analog_module.out_scaling_alpha[0].detach()) == np.float32(1e20)


def test_frozen_weight_parameter_gets_no_update():
    """The backward's pairs of a torch-updated layer are its weight gradient's, needed or not:
    with the weight parameter frozen (requires_grad False) nothing updates the weights."""
    config = C.InferenceRPUConfig(forward=C.IOParameters(is_perfect=True))
    layer = AnalogLinear(3, 2, bias=False, rpu_config=config, seed=0)
    before = layer.get_weights()[0].clone()
    layer.analog_module.shared_weights[0].requires_grad_(False)
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    opt.regroup_param_groups(layer)
    layer(torch.ones(2, 3)).sum().backward()
    opt.step()
    assert torch.equal(layer.get_weights()[0], before)
