"""The PyTorch adapter (optional extra; CI installs torch 2.13.0 CPU so this always runs there)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rpusim.configs import (ConstantStepDevice, IdealDevice, IOParameters,  # noqa: E402
                            SingleRPUConfig)
from rpusim.torch import AnalogLinear, AnalogSGD  # noqa: E402


def ideal_config(**io):
    return SingleRPUConfig(device=IdealDevice(), forward=IOParameters(is_perfect=True, **io),
                           backward=IOParameters(is_perfect=True))


def test_forward_with_batch_dims_and_digital_bias():
    layer = AnalogLinear(3, 2, rpu_config=ideal_config(), seed=0)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.randn(4, 5, 3)
    y = layer(x)
    assert y.shape == (4, 5, 2)
    w = torch.from_numpy(layer.analog_tile.get_weights())
    torch.testing.assert_close(y, x @ w.T + layer.bias, rtol=1e-5, atol=1e-6)
    assert layer.analog_tile.in_size == 3


def test_sgd_step_equals_digital_linear_for_ideal_device():
    torch.manual_seed(0)
    layer = AnalogLinear(4, 3, rpu_config=ideal_config(), seed=1)
    ref = torch.nn.Linear(4, 3)
    w0, _ = layer.get_weights()
    with torch.no_grad():
        ref.weight.copy_(w0)
        ref.bias.copy_(layer.bias)
    x, target = torch.randn(6, 4), torch.randn(6, 3)
    for model, opt in ((layer, AnalogSGD(layer.parameters(), lr=0.1)),
                       (ref, torch.optim.SGD(ref.parameters(), lr=0.1))):
        x_in = x.clone().requires_grad_(True)
        loss = torch.nn.functional.mse_loss(model(x_in), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.grad_x = x_in.grad
    w_analog, b_analog = layer.get_weights()
    torch.testing.assert_close(w_analog, ref.weight.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b_analog, ref.bias.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.grad_x, ref.grad_x, rtol=1e-5, atol=1e-6)


def test_lr_zero_skips_update_but_decays():
    dev = ConstantStepDevice(lifetime=10.0, dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    layer = AnalogLinear(3, 2, bias=False, rpu_config=SingleRPUConfig(device=dev), seed=0)
    layer.set_weights(torch.full((2, 3), 0.5))
    opt = AnalogSGD(layer.parameters(), lr=0.0)
    opt.regroup_param_groups(layer)
    for _ in range(2):
        opt.zero_grad()
        layer(torch.ones(2, 3)).sum().backward()
        opt.step()
    w, b = layer.get_weights()
    assert b is None
    torch.testing.assert_close(w, torch.full((2, 3), 0.5 * 0.9 ** 2), rtol=1e-6, atol=0)


def test_analog_bias_column():
    layer = AnalogLinear(3, 2, rpu_config=ideal_config(), digital_bias=False, seed=0)
    assert layer.analog_tile.in_size == 4 and layer.bias is None
    layer.set_weights(torch.ones(2, 3), torch.tensor([0.25, -0.25]))
    w, b = layer.get_weights()
    torch.testing.assert_close(b, torch.tensor([0.25, -0.25]))
    y = layer(torch.ones(1, 3))
    torch.testing.assert_close(y, torch.tensor([[3.25, 2.75]]))


def test_output_bound_gradient_mask():
    """Outputs at |y| >= 0.999 out_bound get no backward gradient; the update uses all of d."""
    io = IOParameters(out_noise=0.0, inp_res=-1, out_res=-1, out_bound=1.0)
    config = SingleRPUConfig(device=IdealDevice(), forward=io,
                             backward=IOParameters(is_perfect=True))
    layer = AnalogLinear(2, 2, bias=False, rpu_config=config, seed=0)
    layer.set_weights(torch.tensor([[3.0, 0.0], [0.1, 0.0]]))
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    y = layer(x)
    y.sum().backward()
    # row 0 saturates (y = 1): only row 1's gradient reaches the backward MVM
    torch.testing.assert_close(x.grad, torch.tensor([[0.1, 0.0]]), rtol=1e-5, atol=1e-6)
    (xs, ds), = layer.analog_module._pending[0]
    np.testing.assert_array_equal(ds, np.ones((1, 2)))


@pytest.mark.parametrize("case, masked", [
    ("perfect", True), ("ideal mv", True), ("perfect, out_scale 2", True),
    ("inference perfect", True), ("perfect, out_bound 0", False),
    ("torch inference perfect", False), ("floating point", False)])
def test_output_bound_mask_without_clipping(case, masked):
    """aihwkit 1.2.0's C++-backed tiles mask the gradient of outputs at |y| >= 0.999
    out_scale out_bound whenever out_bound > 0, also when the forward is perfect or IDEAL
    and clips nothing; its torch-based inference tile and floating-point tile do not. W =
    [[1] * 4, [0.1] * 4], x = 5: y = [20, 2] (out_scale 2: [40, 4]); a masked first output
    leaves grad_x = 0.1 per input (checked on aihwkit: 0.1 for "inference perfect", 1.1 for
    the unmasked cases)."""
    from rpusim.configs import (AnalogMVType, FloatingPointRPUConfig, InferenceRPUConfig,
                                TorchInferenceRPUConfig, WeightModifierType, WeightRemapType)

    perfect = IOParameters(is_perfect=True)
    configs = {
        "perfect": lambda: SingleRPUConfig(device=IdealDevice(), forward=perfect,
                                           backward=perfect),
        "ideal mv": lambda: SingleRPUConfig(
            device=IdealDevice(), forward=IOParameters(mv_type=AnalogMVType.IDEAL),
            backward=perfect),
        "perfect, out_scale 2": lambda: SingleRPUConfig(
            device=IdealDevice(), forward=IOParameters(is_perfect=True, out_scale=2.0),
            backward=perfect),
        "perfect, out_bound 0": lambda: SingleRPUConfig(
            device=IdealDevice(), forward=IOParameters(is_perfect=True, out_bound=0.0),
            backward=perfect),
        "inference perfect": lambda: InferenceRPUConfig(forward=perfect),
        "torch inference perfect": lambda: TorchInferenceRPUConfig(forward=perfect),
        "floating point": lambda: FloatingPointRPUConfig(),
    }
    config = configs[case]()
    if hasattr(config, "modifier"):
        config.modifier.type = WeightModifierType.NONE
        config.remap.type = WeightRemapType.NONE
    layer = AnalogLinear(4, 2, bias=False, rpu_config=config, seed=0)
    layer.set_weights(torch.tensor([[1.0] * 4, [0.1] * 4]))
    x = torch.full((1, 4), 5.0, requires_grad=True)
    layer(x).sum().backward()
    expected = 0.1 if masked else 1.1
    torch.testing.assert_close(x.grad, torch.full((1, 4), expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.2, 0.0])
@pytest.mark.parametrize("reset", [0.0, 0.3, -0.3])
def test_issue_302_through_the_adapter(gamma, reset):
    """aihwkit issue #302 with only the imports changed: set the four hidden weights of a
    TransferCompound of two ReferenceUnitCells, train two steps at lr = 0, and the weight is
    gamma (a' - b') + c' - d' with u' = (u - r) delta_u^2 + r (compounds spec §5.8)."""
    from torch.nn.functional import mse_loss

    from rpusim.configs import (ReferenceUnitCell, SoftBoundsDevice, TransferCompound,
                                UnitCellRPUConfig)

    def sb():
        return SoftBoundsDevice(w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0,
                                lifetime=100.0, lifetime_dtod=0.0, reset=reset, reset_std=0.0)

    config = UnitCellRPUConfig(device=TransferCompound(
        unit_cell_devices=[ReferenceUnitCell([sb(), sb()]), ReferenceUnitCell([sb(), sb()])],
        gamma=gamma))
    model = AnalogLinear(3, 2, bias=True, rpu_config=config, seed=0)
    model.analog_tile.set_weights(np.zeros((2, 3)))
    rng = np.random.default_rng(302)
    names = {"a": "0_0", "b": "1_0", "c": "0_1", "d": "1_1"}
    deltas = {"a": 0.95, "b": 0.28, "c": 0.33, "d": 0.12}
    values = {p: rng.uniform(-0.5, 0.5, (2, 3)).astype(np.float32) for p in names}
    params = {f"hidden_weights_{s}": values[p] for p, s in names.items()}
    params.update({f"decay_scales_{s}": np.full((2, 3), deltas[p], np.float32)
                   for p, s in names.items()})
    model.analog_tile.set_hidden_parameters(params)
    a, b, c, d = (values[p].astype(np.float64) for p in "abcd")
    np.testing.assert_allclose(model.get_weights()[0].numpy(), gamma * (a - b) + c - d,
                               atol=2e-7)

    x = torch.tensor([[0.1, 0.2, 0.4], [0.2, 0.1, 0.3]])
    y = torch.tensor([[1.0, 0.5], [0.7, 0.3]])
    opt = AnalogSGD(model.parameters(), lr=0.0)
    opt.regroup_param_groups(model)
    for _ in range(2):
        opt.zero_grad()
        mse_loss(model(x), y).backward()
        opt.step()
    dec = {p: (values[p].astype(np.float64) - reset) * deltas[p] ** 2 + reset for p in names}
    expected = gamma * (dec["a"] - dec["b"]) + dec["c"] - dec["d"]
    np.testing.assert_allclose(model.get_weights()[0].numpy(), expected, atol=3e-7)
