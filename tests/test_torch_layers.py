"""rpusim.torch layers: mapping, conv references, state round trips, seeds, containers.

The aihwkit goldens are in test_golden_layers.py; here the layers are checked against
independent references (explicit unfolding, one big tile) and invariants.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rpusim import AnalogTile  # noqa: E402
from rpusim.configs import (ConstantStepDevice, FloatingPointRPUConfig, IdealDevice,  # noqa: E402
                            IOParameters, MappingParameter, RPUConfig, SingleRPUConfig,
                            SoftBoundsDevice)
from rpusim.torch import (AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear,  # noqa: E402
                          AnalogSequential, AnalogSGD, AnalogWrapper, convert_to_analog,
                          convert_to_digital, split_sizes)


def perfect(device=None, **mapping):
    return SingleRPUConfig(device=device or IdealDevice(), forward=IOParameters(is_perfect=True),
                           backward=IOParameters(is_perfect=True),
                           mapping=MappingParameter(**mapping))


def train(model, opt, xs, targets):
    outputs = []
    for x, t in zip(xs, targets):
        opt.zero_grad()
        y = model(x)
        ((y - t) ** 2).sum().backward()
        opt.step()
        outputs.append(y.detach().clone())
    return outputs


# -- mapping ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size, largest, expected", [
    (13, 8, [7, 6]), (20, 6, [5, 5, 5, 5]), (18, 8, [6, 6, 6]), (7, 4, [4, 3]), (5, 0, [5]),
    (5, 5, [5])])
def test_split_sizes_are_aihwkits(size, largest, expected):
    assert split_sizes(size, largest) == expected


@settings(deadline=None, max_examples=15)
@given(n_in=st.integers(1, 11), n_out=st.integers(1, 9), max_in=st.integers(1, 6),
       max_out=st.integers(1, 6), analog_bias=st.booleans())
def test_mapped_layer_equals_one_big_tile(n_in, n_out, max_in, max_out, analog_bias):
    """With perfect IO and an ideal device, a layer split over a grid of tiles computes
    forward, backward and update exactly as one unsplit tile."""
    kw = dict(digital_bias=not analog_bias)
    mapped = AnalogLinear(n_in, n_out, rpu_config=perfect(max_input_size=max_in,
                                                          max_output_size=max_out, **kw), seed=0)
    big = AnalogLinear(n_in, n_out, rpu_config=perfect(max_input_size=0, max_output_size=0,
                                                       **kw), seed=1)
    assert len(big.analog_module.tiles) == 1
    tiles = list(mapped.analog_tiles())
    assert len(tiles) == len(split_sizes(n_in, max_in)) * len(split_sizes(n_out, max_out))
    big.set_weights(*mapped.get_weights())
    rng = np.random.default_rng(0)
    xs = [torch.tensor(rng.uniform(-1, 1, (3, n_in)), dtype=torch.float32) for _ in range(2)]
    ts = [torch.tensor(rng.uniform(-1, 1, (3, n_out)), dtype=torch.float32) for _ in range(2)]
    out_m = train(mapped, AnalogSGD(mapped.parameters(), lr=0.1), xs, ts)
    out_b = train(big, AnalogSGD(big.parameters(), lr=0.1), xs, ts)
    for a, b in zip(out_m, out_b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(mapped.get_weights(), big.get_weights()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_weight_scaling_round_trip_and_scaled_tile():
    layer = AnalogLinear(4, 3, rpu_config=perfect(weight_scaling_omega=0.5,
                                                  weight_scaling_columnwise=True), seed=0)
    w = torch.tensor([[0.2, -1.0, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 1.0, -2.0, 0.5]])
    layer.set_weights(w, torch.zeros(3))
    torch.testing.assert_close(layer.get_weights()[0], w)
    stored = layer.analog_tile.get_weights()
    np.testing.assert_allclose(np.abs(stored).max(axis=1), [0.5, 0.0, 0.5], rtol=1e-6)
    x = torch.randn(2, 4)
    torch.testing.assert_close(layer(x), x @ w.T, rtol=1e-5, atol=1e-5)


# -- convolutions -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls, conv, shape, kwargs", [
    (AnalogConv1d, torch.nn.functional.conv1d, (2, 3, 11), dict(stride=2, padding=2,
                                                                dilation=2)),
    (AnalogConv2d, torch.nn.functional.conv2d, (2, 3, 7, 6), dict(stride=(2, 1), padding=1)),
    (AnalogConv2d, torch.nn.functional.conv2d, (2, 3, 7, 6), dict(padding="same",
                                                                  dilation=(1, 2))),
    (AnalogConv3d, torch.nn.functional.conv3d, (1, 3, 5, 4, 6), dict(stride=(1, 2, 2),
                                                                     padding=(1, 0, 1))),
])
def test_conv_forward_and_backward_equal_torch_with_ideal_tiles(cls, conv, shape, kwargs):
    layer = cls(3, 4, 3, rpu_config=perfect(), seed=0, **kwargs)
    x = torch.randn(*shape, requires_grad=True)
    w, b = layer.get_weights()
    weight = w.reshape(4, 3, *layer.kernel_size).clone().requires_grad_(True)
    y = layer(x)
    x_ref = x.detach().clone().requires_grad_(True)
    y_ref = conv(x_ref, weight, b, stride=layer.stride, padding=layer.padding,
                 dilation=layer.dilation)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("input_gradient", [True, False])
def test_conv2d_equals_unfold_and_one_tile_in_aihwkits_sample_order(input_gradient):
    """A noisy, SoftBounds conv layer step equals the explicit reference: F.unfold patches,
    image-major then positions row-major, through a tile with the same seed and weights.
    An input that needs no gradient (a first layer) has no backward pass: the reference
    without ``tile.backward`` (which would move the tile's random stream) is the same."""
    config = SingleRPUConfig(device=SoftBoundsDevice())
    layer = AnalogConv2d(2, 3, 2, stride=1, padding=1, rpu_config=config, seed=5)
    tile = AnalogTile.from_state_dict(layer.analog_tile.state_dict())
    x = torch.randn(2, 2, 3, 4, requires_grad=input_gradient)
    opt = AnalogSGD(layer.parameters(), lr=0.2)
    bias = layer.bias.detach().numpy().copy()
    y = layer(x)
    (y ** 2).sum().backward()
    opt.step()
    patches = torch.nn.functional.unfold(x, 2, padding=1).transpose(1, 2).reshape(-1, 8)
    y_tile = tile.forward(patches.detach().numpy())
    d = 2 * y.detach().reshape(2, 3, -1).transpose(1, 2).reshape(-1, 3).numpy()
    if input_gradient:
        tile.backward(d)
    tile.update(patches.detach().numpy(), d, lr=0.2)
    tile.post_update_step()
    np.testing.assert_array_equal(layer.analog_tile.get_weights(), tile.get_weights())
    np.testing.assert_array_equal(
        y.detach().numpy(),
        (y_tile.reshape(2, -1, 3).transpose(0, 2, 1).reshape(y.shape)
         + bias.reshape(1, 3, 1, 1)).astype(np.float32))


def test_conv_mapped_in_every_dimension():
    """aihwkit 1.2.0 cannot split Conv1d/Conv3d; rpusim can, and the result is the unsplit
    layer's."""
    for cls, shape in ((AnalogConv1d, (2, 4, 9)), (AnalogConv3d, (1, 4, 3, 3, 4))):
        mapped = cls(4, 5, 2, rpu_config=perfect(max_input_size=5, max_output_size=2), seed=0)
        whole = cls(4, 5, 2, rpu_config=perfect(), seed=0)
        assert mapped.analog_tile_count() > 1 and whole.analog_tile_count() == 1
        whole.set_weights(*mapped.get_weights())
        x = torch.randn(*shape)
        torch.testing.assert_close(mapped(x), whole(x), rtol=1e-5, atol=1e-5)


def test_conv_rejects_groups_and_bad_input():
    with pytest.raises(ValueError, match="groups"):
        AnalogConv2d(4, 4, 3, groups=2)
    layer = AnalogConv2d(2, 3, 3)
    with pytest.raises(ValueError, match="expects"):
        layer(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="smaller than"):
        layer(torch.zeros(1, 2, 2, 2))


# -- state, seeds, copies ---------------------------------------------------------------------
def _cnn(seed):
    config = RPUConfig()  # noisy IO, device-to-device and cycle-to-cycle variation
    return AnalogSequential(AnalogConv2d(1, 2, 3, rpu_config=config, seed=seed),
                            torch.nn.ReLU(), torch.nn.Flatten(),
                            AnalogLinear(8, 3, rpu_config=config, seed=seed + 1))


def test_state_dict_round_trip_resumes_bit_identically():
    torch.manual_seed(0)
    xs = [torch.rand(4, 1, 4, 4) for _ in range(6)]
    ts = [torch.rand(4, 3) for _ in range(6)]
    model = _cnn(0)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    train(model, opt, xs[:3], ts[:3])
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)  # weights_only=True: the tile states are plain tensors and str
    restored = _cnn(99)
    restored.load_state_dict(saved["model"])
    opt2 = AnalogSGD(restored.parameters(), lr=0.1)
    opt2.load_state_dict(saved["opt"])
    out_a = train(model, opt, xs[3:], ts[3:])
    out_b = train(restored, opt2, xs[3:], ts[3:])
    for a, b in zip(out_a, out_b):
        assert torch.equal(a, b)
    for ta, tb in zip(model.analog_tiles(), restored.analog_tiles()):
        np.testing.assert_array_equal(ta.get_weights(), tb.get_weights())


def test_deepcopy_and_pickle_continue_identically():
    model = _cnn(3)
    x, t = torch.rand(2, 1, 4, 4), torch.rand(2, 3)
    copies = [copy.deepcopy(model)]
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    copies.append(torch.load(buf, weights_only=False))
    results = [train(m, AnalogSGD(m.parameters(), lr=0.1), [x, x], [t, t])
               for m in (model, *copies)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_seeds():
    torch.manual_seed(1)
    a = AnalogLinear(5, 4, rpu_config=RPUConfig())
    torch.manual_seed(1)
    b = AnalogLinear(5, 4, rpu_config=RPUConfig())
    c = AnalogLinear(5, 4, rpu_config=RPUConfig())
    x = torch.rand(3, 5)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))
    d, e = (AnalogLinear(5, 4, rpu_config=RPUConfig(), seed=7) for _ in range(2))
    assert torch.equal(d(x), e(x))
    bound = 1 / np.sqrt(5)
    w = AnalogLinear(5, 4, rpu_config=FloatingPointRPUConfig(), seed=0).get_weights()[0]
    assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound


# -- optimizer, containers, helpers -----------------------------------------------------------
def test_sgd_updates_each_tile_once_per_step_with_all_pairs_in_backward_order():
    layer = AnalogLinear(3, 2, bias=False, rpu_config=perfect(), seed=0)
    calls = []
    tile = layer.analog_tile
    original = tile._update_rows  # where tile.update and the layers' update path meet
    tile._update_rows = lambda x, d, lr: (calls.append((x.copy(), d.copy(), lr)),
                                          original(x, d, lr))
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    x1, x2 = torch.rand(2, 3), torch.rand(1, 3)
    opt.zero_grad()
    (layer(x1).sum() + 2 * layer(x2).sum()).backward()
    opt.step()
    (x, d, lr), = calls
    assert lr == 0.5 and x.shape == (3, 3)
    # backward reaches the second call first
    np.testing.assert_array_equal(x, np.concatenate([x2.numpy(), x1.numpy()]))
    np.testing.assert_array_equal(d, np.concatenate([np.full((1, 2), 2.0), np.ones((2, 2))]))


def test_convert_to_analog_and_back():
    torch.manual_seed(0)
    digital = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(),
                                  torch.nn.Sequential(torch.nn.Flatten(),
                                                      torch.nn.Linear(8, 3)))
    analog = convert_to_analog(digital, perfect())
    assert isinstance(analog, AnalogSequential)
    assert isinstance(analog[0], AnalogConv2d) and isinstance(analog[2][1], AnalogLinear)
    assert [n for n, _ in analog.named_analog_layers()] == ["0", "2.1"]
    x = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(analog(x), digital(x), rtol=1e-5, atol=1e-5)
    back = convert_to_digital(analog)
    assert type(back[0]) is torch.nn.Conv2d and type(back[2][1]) is torch.nn.Linear
    torch.testing.assert_close(back(x), digital(x), rtol=1e-5, atol=1e-5)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    wrapped = convert_to_analog(Net(), perfect())
    assert isinstance(wrapped, AnalogWrapper) and isinstance(wrapped, Net)
    assert len(list(wrapped.analog_tiles())) == 1
    weights = wrapped.get_weights()
    assert list(weights) == ["fc.analog_module"]
    wrapped.set_weights({"fc.analog_module": (torch.ones(2, 4), torch.zeros(2))})
    torch.testing.assert_close(wrapped(torch.ones(1, 4)), torch.full((1, 2), 4.0))


def test_program_and_drift_need_eval_and_reach_inference_tiles():
    from rpusim.configs import InferenceRPUConfig

    torch.manual_seed(0)
    model = AnalogSequential(AnalogLinear(6, 4, rpu_config=InferenceRPUConfig()),
                             AnalogLinear(4, 2, rpu_config=perfect()))
    opt = AnalogSGD(model.parameters(), lr=0.05)
    train(model, opt, [torch.rand(3, 6)] * 2, [torch.rand(3, 2)] * 2)  # hardware-aware
    inference_tile, training_tile = model.analog_tiles()
    trained = inference_tile.get_weights()
    fixed = training_tile.get_weights()
    with pytest.raises(RuntimeError, match="eval"):
        model.program_analog_weights()
    model.eval()
    model.program_analog_weights()
    programmed = inference_tile.get_weights()
    assert not np.array_equal(programmed, trained)
    np.testing.assert_array_equal(inference_tile.get_target_weights(), trained)
    model.drift_analog_weights(3600.0)
    assert not np.array_equal(inference_tile.get_weights(), programmed)
    np.testing.assert_array_equal(training_tile.get_weights(), fixed)
    x = torch.rand(2, 6)
    with torch.no_grad():
        assert model(x).shape == (2, 2)


def test_learned_out_scaling_is_trained_digitally():
    layer = AnalogLinear(3, 2, bias=False,
                         rpu_config=perfect(learn_out_scaling=True, out_scaling_columnwise=True),
                         seed=0)
    names = [n for n, _ in layer.named_parameters()]
    assert "analog_module.out_scaling_alpha.0" in names
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    train(layer, opt, [torch.ones(1, 3)], [torch.zeros(1, 2)])
    alpha = layer.analog_module.out_scaling_alpha[0].detach()
    assert not torch.equal(alpha, torch.ones(2))


def test_analog_optimizer_wraps_any_torch_optimizer():
    from rpusim.torch import AnalogAdam, AnalogOptimizer

    torch.manual_seed(0)
    layer = AnalogLinear(3, 2, rpu_config=perfect(), seed=0)
    opt = AnalogOptimizer(torch.optim.Adam, layer.parameters(), lr=0.01)
    assert isinstance(opt, torch.optim.Adam) and isinstance(opt, AnalogOptimizer)
    w0, b0 = layer.get_weights()
    x = torch.rand(2, 3)
    layer(x).sum().backward()
    opt.step()
    w1, b1 = layer.get_weights()
    # analog weights: plain SGD at the group's rate; digital bias: one Adam step of size lr
    torch.testing.assert_close(w1, w0 - 0.01 * torch.ones(2, 1) * x.sum(0), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(b1, b0 - 0.01, rtol=1e-5, atol=1e-6)
    assert layer.analog_tile.get_learning_rate() == pytest.approx(0.01)
    assert isinstance(AnalogAdam(layer.parameters()), torch.optim.Adam)


@pytest.mark.parametrize("options", [
    {}, {"momentum": 0.9}, {"momentum": 0.5, "nesterov": True}, {"weight_decay": 0.01},
    {"maximize": True}, {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}])
def test_digital_parameters_step_as_torch_sgd_bit_for_bit(options):
    """The digital parameters of AnalogSGD move exactly as under torch's SGD with the same
    options and gradients, the plain case (done without torch's step) included, over steps
    where some parameters have no gradient."""
    torch.manual_seed(0)
    config = SingleRPUConfig(device=ConstantStepDevice())
    model = AnalogSequential(torch.nn.Linear(5, 4), torch.nn.Tanh(),
                             AnalogLinear(4, 3, rpu_config=config, seed=0))
    reference = [p.detach().clone().requires_grad_(True) for p in model[0].parameters()]
    opt = AnalogSGD(model.parameters(), lr=0.05, **options)
    opt.regroup_param_groups(model)
    ref_opt = torch.optim.SGD(reference, lr=0.05, **options)
    for step in range(4):
        opt.zero_grad()
        ref_opt.zero_grad()
        model(torch.rand(6, 5)).sum().backward()
        for p, r in zip(model[0].parameters(), reference):
            r.grad = None if step == 2 and r.dim() == 1 else p.grad.clone()
            if r.grad is None:
                p.grad = None
        opt.step()
        ref_opt.step()
        for p, r in zip(model[0].parameters(), reference):
            assert torch.equal(p.detach(), r.detach())


def test_optimizer_hooks_run_once_per_step():
    """Step pre- and post-hooks, the optimizer's own and the global ones, run once around the
    whole step (also once a plain torch SGD exists in the process, whose step torch then
    wraps in hooks too); a pre-hook may replace the arguments; a subclass overriding step
    keeps torch's own wrapper, also once."""
    from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)

    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)  # torch hooks SGD.step

    class Custom(AnalogSGD):
        def step(self, closure=None):
            return super().step(closure)

    for cls in (AnalogSGD, Custom):
        layer = AnalogLinear(3, 2, rpu_config=perfect(), seed=0)
        opt = cls(layer.parameters(), lr=0.1)
        calls = []
        handles = [opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
                   opt.register_step_post_hook(lambda o, a, k: calls.append("post")),
                   register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
                   register_optimizer_step_post_hook(
                       lambda o, a, k: calls.append("global post"))]
        try:
            layer(torch.ones(1, 3)).sum().backward()
            opt.step()
            assert calls == ["global pre", "pre", "post", "global post"], cls
        finally:
            for handle in handles:
                handle.remove()
    # a pre-hook that swaps the closure in: the step then returns the closure's loss
    layer = AnalogLinear(3, 2, rpu_config=perfect(), seed=0)
    opt = AnalogSGD(layer.parameters(), lr=0.1)

    def closure():
        opt.zero_grad()
        loss = layer(torch.ones(1, 3)).sum()
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda o, a, k: ((o, closure), {}))
    assert torch.is_tensor(opt.step())


def test_optimizer_profiler_ranges_and_zero_grad():
    """While a profiler records, the step and zero_grad show torch's ranges; zero_grad with
    set_to_none=False keeps zero tensors as torch's does."""
    layer = AnalogLinear(3, 2, rpu_config=perfect(), seed=0)
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    with torch.autograd.profiler.profile() as prof:
        layer(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
    names = {e.name for e in prof.function_events}
    assert "Optimizer.step#AnalogSGD.step" in names
    assert "Optimizer.zero_grad#AnalogSGD.zero_grad" in names
    layer(torch.ones(1, 3)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert torch.equal(layer.bias.grad, torch.zeros(2))
    opt.zero_grad()
    assert layer.bias.grad is None


def test_weights_without_scaling():
    layer = AnalogLinear(2, 2, bias=False, rpu_config=perfect(weight_scaling_omega=0.5), seed=0)
    w = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    layer.set_weights(w)
    torch.testing.assert_close(layer.get_weights(apply_weight_scaling=False)[0], w / 4)
    layer.set_weights(torch.full((2, 2), 0.1), apply_weight_scaling=False)
    torch.testing.assert_close(layer.get_weights()[0], torch.full((2, 2), 0.4))
    layer.remap_analog_weights(1.0)
    torch.testing.assert_close(layer.get_weights()[0], torch.full((2, 2), 0.4))
    torch.testing.assert_close(layer.get_weights(apply_weight_scaling=False)[0],
                               torch.ones(2, 2))


def test_analog_summary_counts_tiles_and_reuse():
    from rpusim.torch import analog_summary

    config = perfect(max_input_size=16, max_output_size=8)
    model = AnalogSequential(AnalogConv2d(1, 4, 3, rpu_config=config), torch.nn.ReLU(),
                             torch.nn.Flatten(), AnalogLinear(144, 10, rpu_config=config))
    info = analog_summary(model, (2, 1, 8, 8), print_summary=False)
    assert info.total_tile_number == 1 + 9 * 2 and info.total_nb_analog == 2
    conv, relu, _, linear = info.layer_summary
    # as aihwkit: only the ...Mapped layers report a physical shape and its utilization
    assert conv.reuse_factor == 2 * 36 and [t.tile_summary_dict() for t in conv.tiles_info] == [
        {"log_shape": "(4, 9)", "phys_shape": "N/A", "utilization": 100.0}]
    assert not relu.isanalog and linear.reuse_factor == 2
    assert "Total number of tiles: 19" in repr(info)


def test_load_state_dict_can_keep_the_current_config():
    """aihwkit's ``load_rpu_config=False``: the saved weights and device state go into tiles
    that keep the configuration the model was built with."""
    source = AnalogLinear(4, 3, rpu_config=SingleRPUConfig(device=ConstantStepDevice()), seed=0)
    config = SingleRPUConfig(device=ConstantStepDevice())
    config.update.desired_bl = 7
    target = AnalogLinear(4, 3, rpu_config=config, seed=1)
    target.load_state_dict(source.state_dict(), load_rpu_config=False)
    assert target.analog_tile.rpu_config.update.desired_bl == 7
    np.testing.assert_array_equal(target.analog_tile.get_weights(),
                                  source.analog_tile.get_weights())
    target.load_state_dict(source.state_dict())
    assert target.analog_tile.rpu_config.update.desired_bl == 31
    other = AnalogLinear(4, 3, rpu_config=FloatingPointRPUConfig(), seed=1)
    with pytest.raises(ValueError, match="strict_rpu_config_check"):
        other.load_state_dict(source.state_dict(), load_rpu_config=False)


@settings(deadline=None, max_examples=20)
@given(kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 1)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       unbatched=st.booleans())
def test_conv2d_matches_torch_conv2d_for_any_geometry(kernel, stride, padding, dilation, mode,
                                                      unbatched):
    layer = AnalogConv2d(2, 3, kernel, stride, padding, dilation, padding_mode=mode,
                         rpu_config=perfect(), seed=0)
    reference = torch.nn.Conv2d(2, 3, kernel, stride, padding, dilation, padding_mode=mode)
    w, b = layer.get_weights()
    with torch.no_grad():
        reference.weight.copy_(w.reshape(reference.weight.shape))
        reference.bias.copy_(b)
    x = torch.randn(*(() if unbatched else (2,)), 2, 6, 5)
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-5)


def test_container_weights_are_keyed_by_tile_as_in_aihwkit():
    split = perfect(max_input_size=3, weight_scaling_omega=0.5)
    model = AnalogSequential(AnalogLinear(3, 2, rpu_config=perfect(), seed=0),
                             AnalogLinear(5, 2, rpu_config=split, seed=1))
    weights = model.get_weights()
    assert {k: (tuple(w.shape), b is None) for k, (w, b) in weights.items()} == {
        "0.analog_module": ((2, 3), False), "1.analog_module.array.0.0": ((2, 3), True),
        "1.analog_module.array.1.0": ((2, 2), True)}
    full = model[1].get_weights()[0]
    torch.testing.assert_close(torch.cat([weights["1.analog_module.array.0.0"][0],
                                          weights["1.analog_module.array.1.0"][0]], 1), full)
    new = {k: (2 * w, b) for k, (w, b) in weights.items()}
    model.set_weights(new)
    torch.testing.assert_close(model[1].get_weights()[0], 2 * full)
    assert model[1].analog_module.get_scales()[1] is not None
    with pytest.raises(ValueError, match="no entry"):
        model.set_weights({"0.analog_module": weights["0.analog_module"]})


def test_tiles_answer_to_aihwkits_tile_attribute():
    """aihwkit scripts print ``next(model.analog_tiles()).tile``."""
    tile = next(AnalogSequential(AnalogLinear(2, 2)).analog_tiles())
    assert isinstance(tile, AnalogTile) and tile.tile is tile


def test_single_tile_accessors_and_split_layers():
    layer = AnalogLinear(3, 2, rpu_config=perfect())
    assert layer.analog_tile is layer.analog_module.tile is next(layer.analog_tiles())
    split = AnalogLinear(9, 2, rpu_config=perfect(max_input_size=4))
    with pytest.raises(ValueError, match="split over 3 tiles"):
        split.analog_tile


def test_analog_only_groups_skip_the_digital_step_and_keep_their_schedule():
    """After ``regroup_param_groups`` each layer has a group of its own, which the digital
    optimizer never sees during ``step``; a scheduler still sets the tiles' rate, digital
    parameters still move, and a model without digital parameters steps too."""
    config = SingleRPUConfig(device=ConstantStepDevice())
    model = AnalogSequential(AnalogLinear(4, 3, rpu_config=config, seed=0),
                             AnalogLinear(3, 2, bias=False, rpu_config=config, seed=1))
    opt = AnalogSGD(model.parameters(), lr=0.1)
    opt.regroup_param_groups(model)
    groups = list(opt.param_groups)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    bias0 = model[0].bias.detach().clone()
    for step in range(3):
        opt.zero_grad()
        model(torch.rand(5, 4)).sum().backward()
        opt.step()
        assert opt.param_groups == groups  # put back after the digital step
        assert model[1].analog_tile.learning_rate == pytest.approx(0.1 * 0.5 ** step)
        scheduler.step()
    assert not torch.equal(model[0].bias.detach(), bias0)
    bare = AnalogLinear(4, 3, bias=False, rpu_config=config, seed=0)
    bare_opt = AnalogSGD(bare.parameters(), lr=0.1)
    bare_opt.regroup_param_groups(bare)
    w0 = bare.get_weights()[0].clone()
    bare(torch.rand(5, 4)).sum().backward()
    bare_opt.step()
    assert not torch.equal(bare.get_weights()[0], w0)
