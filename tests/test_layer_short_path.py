"""The layers' short path (one plain tile: ``TileGrid.is_plain``) against their general path.

A forward hook on the tile grid sends a layer down the general path (unfold, grid autograd
function, torch's bias add and layout ops), so the same layer, seed and data run both ways:
outputs, the (x, d) pairs stored for the update, the weights after an optimizer step and the
bias gradient must agree bit for bit; the input gradient up to the summation order of the
fold of overlapping patches.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rpusim.configs import (ConstantStepDevice, IOParameters, MappingParameter,  # noqa: E402
                            NoiseManagementType, SingleRPUConfig, SoftBoundsDevice,
                            TorchInferenceRPUConfig)
from rpusim.torch import (AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear,  # noqa: E402
                          AnalogSGD)
from rpusim.torch.mapping import TileGrid  # noqa: E402

CONVS = {1: AnalogConv1d, 2: AnalogConv2d, 3: AnalogConv3d}


def run(make, x, general: bool, steps: int = 2, input_gradient: bool = True):
    """Train ``steps`` steps of a fresh layer on ``x`` (loss ``sum(y * g)``, fixed ``g``);
    returns per step the output, input gradient (None without ``input_gradient``), bias
    gradient and stored pairs, and the final weights."""
    layer = make()
    if general:
        layer.analog_module.register_forward_hook(lambda *args: None)
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    records = []
    for step in range(steps):
        xs = x.clone().requires_grad_(input_gradient)
        opt.zero_grad()
        y = layer(xs)
        g = torch.rand(y.shape, generator=torch.Generator().manual_seed(step), dtype=y.dtype)
        (y * g).sum().backward()
        pairs = [(a.copy(), b.copy()) for a, b in layer.analog_module._pending[0]]
        bias_grad = None if layer.bias is None else layer.bias.grad.clone()
        records.append((y.detach().clone(), None if xs.grad is None else xs.grad.clone(),
                        bias_grad, pairs))
        opt.step()
    return records, layer.get_weights()


def assert_same(short, general, grad_rtol: float = 0.0):
    (rec_s, (w_s, b_s)), (rec_g, (w_g, b_g)) = short, general
    for (y1, gx1, gb1, p1), (y2, gx2, gb2, p2) in zip(rec_s, rec_g):
        torch.testing.assert_close(y1, y2, rtol=0, atol=0)
        assert (gx1 is None) == (gx2 is None)
        if gx1 is not None:
            # the two paths sum an input's patch contributions in different orders: float32
            # rounding of sums whose terms reach the gradient's largest magnitude
            torch.testing.assert_close(gx1, gx2, rtol=grad_rtol,
                                       atol=grad_rtol * float(gx2.abs().max()))
        if gb1 is not None:
            torch.testing.assert_close(gb1, gb2, rtol=1e-6, atol=1e-7)
        for (xa, da), (xb, db) in zip(p1, p2):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(da, db)
    torch.testing.assert_close(w_s, w_g, rtol=1e-6, atol=1e-7)
    if b_s is not None:
        torch.testing.assert_close(b_s, b_g, rtol=1e-6, atol=1e-7)


def assert_same_steps(with_pass, without):
    """Runs with and without the input's gradient: the same outputs, stored pairs and final
    weights, bit for bit."""
    for (y1, _, _, p1), (y2, _, _, p2) in zip(with_pass[0], without[0]):
        torch.testing.assert_close(y1, y2, rtol=0, atol=0)
        for (xa, da), (xb, db) in zip(p1, p2):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(da, db)
    torch.testing.assert_close(with_pass[1][0], without[1][0], rtol=0, atol=0)


@pytest.mark.parametrize("bias", ["digital", "analog", None])
@pytest.mark.parametrize("device", [ConstantStepDevice(), SoftBoundsDevice()])
@pytest.mark.parametrize("out_bound", [12.0, 0.25])
def test_linear_short_path_equals_general_path(bias, device, out_bound):
    """Also where outputs saturate (out_bound 0.25: some of them), whose gradients the mask of
    the tile's output before the digital bias stops (the short path tests the bound and adds
    the bias in one kernel call)."""
    config = SingleRPUConfig(device=device, mapping=MappingParameter(
        digital_bias=bias != "analog"), forward=IOParameters(out_bound=out_bound))
    x = torch.rand(6, 9, generator=torch.Generator().manual_seed(0)) - 0.5
    make = lambda: AnalogLinear(9, 5, bias=bias is not None, rpu_config=config, seed=3)  # noqa: E731
    short = run(make, x, False)
    assert_same(short, run(make, x, True))
    if out_bound < 1:
        y = torch.stack([record[0] for record in short[0]])
        layer = make()
        b = 0.0 if layer.bias is None else layer.bias.detach()
        at_bound = ((y[0] - b).abs() >= 0.999 * out_bound)
        assert 0 < int(at_bound.sum()) < at_bound.numel()


@settings(deadline=None, max_examples=25)
@given(ndim=st.integers(1, 3), kernel=st.integers(1, 3), stride=st.integers(1, 2),
       dilation=st.integers(1, 2), padding=st.integers(0, 1), bias=st.booleans(),
       channels=st.integers(1, 3), batch=st.integers(1, 2), unbatched=st.booleans())
def test_conv_short_path_equals_general_path(ndim, kernel, stride, dilation, padding, bias,
                                             channels, batch, unbatched):
    config = SingleRPUConfig(device=ConstantStepDevice())
    size = 6 if ndim < 3 else 5
    shape = (channels, *([size] * ndim)) if unbatched else (batch, channels, *([size] * ndim))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) - 0.5
    make = lambda: CONVS[ndim](channels, 4, kernel, stride=stride, dilation=dilation,  # noqa
                               padding=padding, bias=bias, rpu_config=config, seed=7)
    assert_same(run(make, x, False), run(make, x, True), grad_rtol=1e-5)


@pytest.mark.parametrize("kind", ["linear", "conv", "analog bias"])
def test_a_first_layer_leaves_its_backward_pass_out(kind):
    """An input that needs no gradient: both paths skip the tile's backward MVM (one call
    key fewer per step) and agree; everything but the random stream is as with the pass
    (noise-free IO: the same weights and pairs as an input that needs its gradient)."""
    def make_config(io=None):
        return SingleRPUConfig(device=ConstantStepDevice(), mapping=MappingParameter(
            digital_bias=kind != "analog bias"), **({} if io is None else
                                                     dict(forward=io, backward=io)))
    x = torch.rand(4, 2, 5, 5, generator=torch.Generator().manual_seed(3)) - 0.5

    def maker(config):
        if kind == "linear":
            return lambda: AnalogLinear(50, 3, rpu_config=config, seed=2)
        return lambda: AnalogConv2d(2, 3, 2, rpu_config=config, seed=2)
    xin = x.reshape(4, 50) if kind == "linear" else x
    steps = 3
    short = run(maker(make_config()), xin, False, steps, input_gradient=False)
    assert_same(short, run(maker(make_config()), xin, True, steps, input_gradient=False))
    assert all(record[1] is None for record in short[0])
    keys = []
    for needs in (True, False):
        layer = maker(make_config())()
        opt = AnalogSGD(layer.parameters(), lr=0.1)
        for _ in range(steps):
            opt.zero_grad()
            layer(xin.clone().requires_grad_(needs)).sum().backward()
            opt.step()
        keys.append(layer.analog_tile._rng.keys_drawn)
    assert keys[0] - keys[1] == steps
    perfect = IOParameters(is_perfect=True)
    assert_same_steps(run(maker(make_config(perfect)), xin, False, steps, input_gradient=True),
                      run(maker(make_config(perfect)), xin, False, steps, input_gradient=False))


def test_average_abs_max_keeps_the_backward_pass_of_a_first_layer():
    """AverageAbsMax noise management in the backward IO: its running value, which the
    forward shares, moves with every backward, so the pass stays (as in aihwkit, which
    always runs it): the same steps as with an input that needs its gradient."""
    io = IOParameters(noise_management=NoiseManagementType.AVERAGE_ABS_MAX)
    config = SingleRPUConfig(device=SoftBoundsDevice(), forward=io, backward=io)
    x = torch.rand(6, 9, generator=torch.Generator().manual_seed(5)) - 0.5
    make = lambda: AnalogLinear(9, 4, rpu_config=config, seed=1)  # noqa: E731
    assert_same_steps(run(make, x, False, 3, input_gradient=True),
                      run(make, x, False, 3, input_gradient=False))


@pytest.mark.parametrize("general", [False, True])
@pytest.mark.parametrize("input_gradient", [False, True])
@pytest.mark.parametrize("config", [SingleRPUConfig(), TorchInferenceRPUConfig()])
def test_non_finite_errors_raise_and_store_nothing(general, input_gradient, config):
    """With or without the backward pass, on either path: a non-finite error raises and
    leaves no pair for the update and the random stream as it was."""
    layer = AnalogLinear(5, 3, rpu_config=config, seed=0)
    if general:
        layer.analog_module.register_forward_hook(lambda *args: None)
    y = layer(torch.rand(2, 5, requires_grad=input_gradient))
    keys = layer.analog_tile._rng.keys_drawn
    with pytest.raises(ValueError, match="finite"):
        (y * float("nan")).sum().backward()
    assert not layer.analog_module.has_pending()
    assert layer.analog_tile._rng.keys_drawn == keys


def test_conv_analog_bias_and_padding_modes_take_the_short_path_correctly():
    config = SingleRPUConfig(device=ConstantStepDevice(),
                             mapping=MappingParameter(digital_bias=False))
    x = torch.rand(2, 2, 7, 6, generator=torch.Generator().manual_seed(2)) - 0.5
    for mode in ("zeros", "reflect", "replicate", "circular"):
        make = lambda: AnalogConv2d(2, 3, (3, 2), padding=(1, 1), padding_mode=mode,  # noqa
                                    rpu_config=config, seed=4)
        assert make().analog_module.analog_bias
        assert_same(run(make, x, False), run(make, x, True), grad_rtol=1e-5)


def test_short_path_is_taken_only_when_plain():
    layer = AnalogLinear(4, 3, rpu_config=SingleRPUConfig(), seed=0)
    grid = layer.analog_module
    x = torch.rand(2, 4)
    assert grid.is_plain(x, layer.bias)
    assert not grid.is_plain(x.double(), layer.bias)  # other dtype: torch's casts decide
    split = AnalogLinear(4, 3, rpu_config=SingleRPUConfig(
        mapping=MappingParameter(max_input_size=2)), seed=0)
    assert not split.analog_module.is_plain(x, split.bias)
    scaled = AnalogLinear(4, 3, rpu_config=SingleRPUConfig(
        mapping=MappingParameter(weight_scaling_omega=1.0)), seed=0)
    assert not scaled.analog_module.is_plain(x, scaled.bias)
    handle = grid.register_forward_pre_hook(lambda *args: None)
    assert not grid.is_plain(x, layer.bias)
    handle.remove()
    assert grid.is_plain(x, layer.bias)
    assert isinstance(grid, TileGrid)


def test_float64_input_to_float32_layer_gives_float64_output_and_gradients():
    layer = AnalogLinear(4, 3, rpu_config=SingleRPUConfig(), seed=0)
    x = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.dtype == torch.float64 and x.grad.dtype == torch.float64


def test_function_apply_fallback_gives_the_same_results(monkeypatch):
    """Where torch lays out its C entry point otherwise, ``apply_function`` uses ``apply``."""
    import rpusim.torch.mapping as mapping
    config = SingleRPUConfig(device=ConstantStepDevice())
    x = torch.rand(4, 5, generator=torch.Generator().manual_seed(0))
    make = lambda: AnalogLinear(5, 3, rpu_config=config, seed=2)  # noqa: E731
    direct = run(make, x, False)
    monkeypatch.setattr(mapping, "_C_APPLY", None)
    assert_same(run(make, x, False), direct)


@pytest.mark.parametrize("general", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_on_an_empty_batch_gives_empty_results_and_changes_nothing(general, bias):
    """A batch of 0 images has torch's shapes on both paths (the short path's reshapes once
    failed on it), no bias gradient but zeros, and the weights stay as they are."""
    layer = AnalogConv2d(2, 3, 3, bias=bias, rpu_config=SingleRPUConfig(
        device=ConstantStepDevice()), seed=4)
    if general:
        layer.analog_module.register_forward_hook(lambda *args: None)
    before = layer.get_weights()[0].clone()
    x = torch.zeros(0, 2, 5, 5, requires_grad=True)
    y = layer(x)
    reference = torch.nn.Conv2d(2, 3, 3, bias=bias)(torch.zeros(0, 2, 5, 5))
    assert y.shape == reference.shape == (0, 3, 3, 3)
    y.sum().backward()
    assert x.grad.shape == x.shape
    if bias:
        assert torch.equal(layer.bias.grad, torch.zeros(3))
    AnalogSGD(layer.parameters(), lr=0.1).step()
    assert torch.equal(layer.get_weights()[0], before)


def _grid_configs():
    from rpusim.configs import InferenceRPUConfig
    ranged = InferenceRPUConfig()
    ranged.pre_post.input_range.enable = True
    ranged.mapping.learn_out_scaling = True
    ranged.mapping.weight_scaling_omega = 0.8
    split = SingleRPUConfig(device=SoftBoundsDevice(), mapping=MappingParameter(
        max_input_size=4, max_output_size=3, weight_scaling_omega=1.0))
    torch_tile = TorchInferenceRPUConfig()
    torch_tile.pre_post.input_range.enable = True
    return {"ranged": ranged, "split": split, "torch tile": torch_tile}


@pytest.mark.parametrize("name", ["ranged", "split", "torch tile"])
def test_grid_layer_adds_its_digital_bias_as_torch_would(name):
    """A layer that is not plain adds its digital bias inside the grid's autograd function
    (TileGrid.run); a forward hook on the grid takes the module call and torch's add
    instead. Outputs, input, bias and range gradients and the weights after each step agree
    bit for bit."""
    config = _grid_configs()[name]
    x = torch.rand(6, 9, generator=torch.Generator().manual_seed(2)) - 0.5
    results = []
    for general in (False, True):
        layer = AnalogLinear(9, 5, rpu_config=config, seed=4)
        grid = layer.analog_module
        if general:
            grid.register_forward_hook(lambda *args: None)
        opt = AnalogSGD(layer.parameters(), lr=0.1)
        record = []
        for step in range(3):
            xs = x.clone().requires_grad_(True)
            opt.zero_grad()
            y = layer(xs)
            assert (y.grad_fn.name() == "AddBackward0") == general
            g = torch.rand(y.shape, generator=torch.Generator().manual_seed(step))
            (y * g).sum().backward()
            ranges = [] if grid.input_range is None else [r.grad for r in grid.input_range]
            record.append((y.detach(), xs.grad, layer.bias.grad.clone(), ranges))
            opt.step()
            record.append(layer.get_weights())
        results.append(record)
    for a, b in zip(*results):
        for u, v in zip(a, b):
            if isinstance(u, list):
                assert len(u) == len(v)
                for p, q in zip(u, v):
                    torch.testing.assert_close(p, q, rtol=0, atol=0)
            else:
                torch.testing.assert_close(u, v, rtol=0, atol=0)
