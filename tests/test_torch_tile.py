"""aihwkit's torch-based inference tile (``TorchInferenceRPUConfig``, :mod:`rpusim.io_torch`).

The forward and its gradients are checked against a reference written here in torch, whose
autograd differentiates the forward as aihwkit's torch tile does (straight-through
quantisation, clamps, asymmetries, noise management and the batch-level bound management);
the numbers of the worked examples come from aihwkit 1.2.0.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from rpusim import AnalogTile  # noqa: E402
from rpusim.configs import IOParameters, InferenceRPUConfig, TorchInferenceRPUConfig  # noqa: E402
from rpusim.configs.enums import (BoundManagementType, NoiseManagementType,  # noqa: E402
                                  WeightModifierType)
from rpusim.io_torch import TorchTileMVM, torch_tile_supports  # noqa: E402
from rpusim.rng import TileRNG  # noqa: E402


class _STE(torch.autograd.Function):
    """round(x / step) * step with the identity as its gradient."""

    @staticmethod
    def forward(ctx, x, step):
        return torch.round(x / step) * step

    @staticmethod
    def backward(ctx, g):
        return g, None


def _step(res, bound):
    return (1.0 / res if res > 1 else res) * 2.0 * bound


def _reference(W, X, p: IOParameters):
    """The forward in torch (float64), differentiated by autograd: ``(y, x, w)`` with
    gradients to take."""
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    if p.is_perfect:
        return x @ w.T, x, w
    nm = None
    if p.noise_management == NoiseManagementType.ABS_MAX:
        nm = x.abs().max(dim=1, keepdim=True)[0]
    elif p.noise_management == NoiseManagementType.MAX:
        nm = x.max(dim=1, keepdim=True)[0]
    if nm is not None:
        if p.nm_thres > 0:
            nm = torch.clamp(nm, max=p.nm_thres)
        nm = torch.where(nm <= 0, torch.ones_like(nm), nm)
    number = 1.0
    if p.noise_management == NoiseManagementType.CONSTANT and p.nm_thres > 0:
        number = p.nm_thres
    bm = p.bound_management != BoundManagementType.NONE
    inp_step = _step(p.inp_res, p.inp_bound) if p.inp_res > 0 else 0.0
    reduction = 1.0
    while True:
        scale = (1.0 / nm if nm is not None else torch.tensor(1.0 / number,
                                                              dtype=torch.float64)) / reduction
        u = x * scale
        if p.inp_res > 0:
            u = _STE.apply(u, _step(p.inp_res, p.inp_bound))
        u = torch.clamp(u, -p.inp_bound, p.inp_bound)
        if p.inp_asymmetry != 0:
            u = torch.where(u < 0, u * (1 - p.inp_asymmetry), u)
        z = u @ w.T
        if p.out_asymmetry != 0:
            z = torch.where(z < 0, z * (1 - p.out_asymmetry), z)
        if p.out_res > 0:
            z = _STE.apply(z, _step(p.out_res, p.out_bound))
        clipped = bool((z.abs() > p.out_bound).any())
        z = torch.clamp(z, -p.out_bound, p.out_bound)
        if not bm or not clipped or reduction > p.max_bm_factor or (
                inp_step > 0 and reduction > p.max_bm_res / inp_step):
            break
        reduction *= 2.0
    return z * p.out_scale / scale, x, w


_IO = st.fixed_dictionaries({
    "inp_res": st.sampled_from([-1.0, 1 / 254, 1 / 14, 30.0]),
    "inp_bound": st.sampled_from([1.0, 0.6, 2.0]),
    "out_res": st.sampled_from([-1.0, 1 / 254, 1 / 30]),
    "out_bound": st.sampled_from([12.0, 2.0, 0.7]),
    "out_scale": st.sampled_from([1.0, 0.5, 2.0]),
    "inp_asymmetry": st.sampled_from([0.0, 0.2]),
    "out_asymmetry": st.sampled_from([0.0, -0.3, 0.1]),
    "nm_thres": st.sampled_from([0.0, 0.8]),
    "max_bm_factor": st.sampled_from([1000, 4]),
    "noise_management": st.sampled_from(["ABS_MAX", "MAX", "NONE", "CONSTANT"]),
    "bound_management": st.sampled_from(["ITERATIVE", "NONE", "ITERATIVE_WORST_CASE"]),
})


@settings(max_examples=60)
@given(io=_IO, seed=st.integers(0, 2**31 - 1), shape=st.tuples(
    st.integers(1, 5), st.integers(1, 7), st.integers(1, 6)))
def test_forward_and_gradients_equal_torch_autograd(io, seed, shape):
    """y, dL/dx and dL/dW of the torch tile's MVM against torch's autograd of the same
    forward (float64, noise-free; random weights, inputs and upstream gradients)."""
    batch, n_in, n_out = shape
    p = IOParameters(out_noise=0.0, inp_noise=0.0, **io)
    TorchInferenceRPUConfig(forward=p).validate()  # any inp_bound with noise management
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (n_out, n_in))
    X = rng.normal(0, 1.5, (batch, n_in))
    G = rng.normal(0, 1, (batch, n_out))
    mvm = TorchTileMVM(p, n_out, n_in, np.float64, TileRNG(0))
    Y, saved = mvm.run(W, X)
    y_ref, x_ref, w_ref = _reference(W, X, p)
    np.testing.assert_allclose(Y, y_ref.detach().numpy(), rtol=1e-9, atol=1e-12)
    (y_ref * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(mvm.input_gradient(saved, G), x_ref.grad.numpy(),
                               rtol=1e-7, atol=1e-10)
    V, H = mvm.weight_gradient_pair(saved, G)
    np.testing.assert_allclose(H.T @ V, w_ref.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_bound_management_acts_on_the_whole_batch():
    """One saturating row makes every row read again at half the scale. Numbers from
    aihwkit 1.2.0 (W = 0.5, out_bound 1, out_res 1/510, default 1/126 DAC, no noise
    management): its torch tile reads row 2 at the second scale, 0.2039216; its C++ tile
    reads row 2 once, 0.2000000."""
    p = IOParameters(out_noise=0.0, inp_noise=0.0, noise_management="NONE", out_bound=1.0,
                     out_res=1 / 510)
    p.validate()
    W = np.full((1, 4), 0.5, np.float32)
    X = np.array([[1, 1, 1, 1], [0.1, 0.1, 0.1, 0.1125]], np.float32)
    Y, _ = TorchTileMVM(p, 1, 4, np.float32, TileRNG(0)).run(W, X, save=False)
    np.testing.assert_allclose(Y[:, 0], [1.9686275720596313, 0.2039215862751007], rtol=1e-6)
    tile = AnalogTile(1, 4, InferenceRPUConfig(forward=p))
    tile.set_weights(W)
    np.testing.assert_allclose(tile.forward(X)[:, 0], [1.9686275720596313, 0.20000001788139343],
                               rtol=1e-6)
    tile = AnalogTile(1, 4, TorchInferenceRPUConfig(forward=p))
    tile.set_weights(W)
    np.testing.assert_allclose(tile.forward(X)[:, 0], [1.9686275720596313, 0.2039215862751007],
                               rtol=1e-6)


def test_weight_gradient_reads_the_quantised_inputs():
    """inp_res 1/14 (step 1/7), noise and bound management off: the input 0.3 is read as 2/7,
    the weight gradient is 2/7 g (not 0.3 g), the input gradient W g (by hand; aihwkit 1.2.0
    gives y = 0.142857, dL/dW = 0.571429, dL/dx = 1 for g = 2)."""
    p = IOParameters(out_noise=0.0, inp_noise=0.0, noise_management="NONE",
                     bound_management="NONE", inp_res=1 / 14, out_res=-1.0)
    p.validate()
    mvm = TorchTileMVM(p, 1, 1, np.float64, TileRNG(0))
    Y, saved = mvm.run(np.array([[0.5]]), np.array([[0.3]]))
    np.testing.assert_allclose(Y, [[0.5 * 2 / 7]])
    V, H = mvm.weight_gradient_pair(saved, np.array([[2.0]]))
    np.testing.assert_allclose(H.T @ V, [[4 / 7]])
    np.testing.assert_allclose(mvm.input_gradient(saved, np.array([[2.0]])), [[1.0]])


def test_clipped_inputs_get_no_gradient_and_abs_max_passes_one():
    """Inputs beyond inp_bound (no noise management) get no gradient; with ABS_MAX the
    row's largest input takes out_scale sum(g o) - sum(dL/du u) / nm (by hand here)."""
    p = IOParameters(out_noise=0.0, inp_noise=0.0, noise_management="NONE",
                     bound_management="NONE", inp_res=-1.0, out_res=-1.0)
    p.validate()
    mvm = TorchTileMVM(p, 1, 2, np.float64, TileRNG(0))
    _, saved = mvm.run(np.array([[1.0, 1.0]]), np.array([[2.0, 0.5]]))
    np.testing.assert_allclose(mvm.input_gradient(saved, np.array([[1.0]])), [[0.0, 1.0]])
    # ABS_MAX, out_res 4 (step 0.5), x = (2, -0.5), W = (0.3, 0.2): nm = 2, u = (1, -0.25),
    # z = 0.25 -> o = 0 (ties to even), y = nm o = 0. dy/dx_j = W_j, plus on x_0 (the
    # largest) dy/dnm = o + nm W.(-x / nm^2) = 0 - (0.6 - 0.1) / 2 = -0.25 (aihwkit 1.2.0's
    # autograd gives dL/dx = (0.05, 0.2) and dL/dW = (2, -0.5) as well)
    p = IOParameters(out_noise=0.0, inp_noise=0.0, bound_management="NONE", inp_res=-1.0,
                     out_res=4.0, out_bound=1.0)
    p.validate()
    mvm = TorchTileMVM(p, 1, 2, np.float64, TileRNG(0))
    Y, saved = mvm.run(np.array([[0.3, 0.2]]), np.array([[2.0, -0.5]]))
    assert Y[0, 0] == 0.0
    np.testing.assert_allclose(mvm.input_gradient(saved, np.array([[1.0]])), [[0.05, 0.2]])
    V, H = mvm.weight_gradient_pair(saved, np.array([[1.0]]))
    np.testing.assert_allclose(H.T @ V, [[2.0, -0.5]])


def test_all_zero_inputs_give_zeros_and_no_gradient():
    p = IOParameters(out_noise=0.0, inp_noise=0.0)
    mvm = TorchTileMVM(p, 3, 2, np.float32, TileRNG(0))
    Y, saved = mvm.run(np.ones((3, 2), np.float32), np.zeros((2, 2), np.float32))
    assert not Y.any()
    # not zero gradients but none, for the inputs and the weights (see the layer tests below)
    assert mvm.input_gradient(saved, np.ones((2, 3), np.float32)) is None
    assert mvm.weight_gradient_pair(saved, np.ones((2, 3), np.float32)) is None


def test_supported_forward_configs():
    assert torch_tile_supports(IOParameters())
    assert torch_tile_supports(IOParameters(is_perfect=True, w_noise=0.1))
    for kw in (dict(w_noise=0.1, w_noise_type="ADDITIVE_CONSTANT"), dict(ir_drop=0.5),
               dict(out_nonlinearity=0.1), dict(r_series=0.1), dict(mv_type="POS_NEG_SEPARATE"),
               dict(noise_management="AVERAGE_ABS_MAX")):
        p = IOParameters(**kw)
        p.validate()
        assert not torch_tile_supports(p), kw
    with pytest.raises(ValueError, match="torch tile"):
        TorchTileMVM(IOParameters(ir_drop=0.5), 2, 2, np.float32, TileRNG(0))
    # any input bound with noise management (aihwkit's torch tile); the C++ tiles refuse it
    assert AnalogTile(2, 2, TorchInferenceRPUConfig(
        forward=IOParameters(inp_bound=0.5))).torch_autograd
    for config in (InferenceRPUConfig(forward=IOParameters(inp_bound=0.5)),
                   TorchInferenceRPUConfig(forward=IOParameters(inp_bound=0.5, ir_drop=0.1)),
                   TorchInferenceRPUConfig(backward=IOParameters(inp_bound=0.5))):
        with pytest.raises(ValueError, match="inp_bound"):
            config.validate()
    # a config aihwkit's torch tile refuses takes the C++ tile's MVM
    assert not AnalogTile(2, 2, TorchInferenceRPUConfig(
        forward=IOParameters(ir_drop=0.5))).torch_autograd
    assert AnalogTile(2, 2, TorchInferenceRPUConfig()).torch_autograd
    assert not AnalogTile(2, 2, InferenceRPUConfig()).torch_autograd


@pytest.mark.parametrize("side", ["inp", "out"])
def test_quantisation_without_a_bound_is_refused(side):
    """The torch tile quantises in steps of ``res * 2 * bound``: aihwkit's outputs are NaN
    for a bound of 0, so rpusim refuses it; the C++ tiles (bound 0: unbounded) accept it."""
    io = {f"{side}_bound": 0.0, "noise_management": NoiseManagementType.NONE}
    with pytest.raises(ValueError, match=f"{side}_res > 0 needs a nonzero {side}_bound"):
        AnalogTile(2, 3, TorchInferenceRPUConfig(forward=IOParameters(**io)))
    AnalogTile(2, 3, InferenceRPUConfig(forward=IOParameters(**io)))
    AnalogTile(2, 3, TorchInferenceRPUConfig(forward=IOParameters(**io, **{f"{side}_res": 0})))


def test_negative_input_bound_quantises_without_clipping():
    """A negative bound (aihwkit: no clipping) quantises in steps of ``|res * 2 * bound|``:
    with ``inp_res = 0.25``, ``inp_bound = -1`` the inputs go to multiples of 0.5, halves to
    even, and 1.6 stays above the bound's magnitude."""
    config = TorchInferenceRPUConfig(forward=IOParameters(
        is_perfect=False, inp_res=0.25, inp_bound=-1.0, out_res=0.0, out_bound=0.0,
        out_noise=0.0, noise_management=NoiseManagementType.NONE,
        bound_management=BoundManagementType.NONE))
    tile = AnalogTile(1, 4, config, seed=0)
    tile.set_weights(np.ones((1, 4)))
    # 0.3 -> 0.5, 0.75 -> 1.0 (1.5 halves to 2), -0.2 -> 0.0, 1.6 -> 1.5
    got = tile.forward(np.array([[0.3, 0.75, -0.2, 1.6]]))
    np.testing.assert_allclose(got, [[0.5 + 1.0 + 0.0 + 1.5]], rtol=1e-6)


@pytest.mark.parametrize("remap_type", ["LAYERWISE_SYMMETRIC", "CHANNELWISE_SYMMETRIC"])
def test_remap_as_aihwkit_torch_tile(remap_type):
    """aihwkit's torch tile remaps the logical weights ``W s``: scales ``s = -2`` (a learned
    output scale that turned negative, folded in) become ``2 max|W|`` (per tile or per row),
    positive, and ``W`` becomes ``W s / (2 max|W|)``: its sign flips. The C++ tiles, and the
    torch tile's configs aihwkit refuses (``remapped_wmax = 0.8``), divide ``W`` alone and
    keep the sign: ``s = -2 max|W| / 0.8``, ``W / (max|W| / 0.8)``."""
    w = np.array([[0.2, -0.5, 0.1], [0.4, 0.3, -0.1]], np.float32)
    amax = (np.full((2, 1), 0.5, np.float32) if remap_type == "LAYERWISE_SYMMETRIC"
            else np.array([[0.5], [0.4]], np.float32))
    for config, wmax in ((TorchInferenceRPUConfig(), None), (InferenceRPUConfig(), 1.0),
                         (TorchInferenceRPUConfig(), 0.8)):
        config.remap.type = remap_type
        config.forward = IOParameters(is_perfect=True)
        if wmax is not None:
            config.remap.remapped_wmax = wmax
        tile = AnalogTile(2, 3, config, seed=0)
        tile.set_weights(w)
        tile._set_remap_scales(-2.0)
        tile.post_update_step()
        got_w, got_s = tile._model.w, tile._output_scales(False)  # analog weights, scales
        np.testing.assert_allclose(tile.get_weights(), -2 * w, rtol=1e-6)  # the layer's view
        if wmax is None:
            np.testing.assert_allclose(got_s, 2 * amax.ravel(), rtol=1e-6)
            np.testing.assert_allclose(got_w, -2 * w / (2 * amax), rtol=1e-6)
        else:
            np.testing.assert_allclose(got_s, -2 * amax.ravel() / wmax, rtol=1e-6)
            np.testing.assert_allclose(got_w, w / (amax / wmax), rtol=1e-6)


def _tile(**modifier):
    config = TorchInferenceRPUConfig(forward=IOParameters(out_noise=0.0, inp_noise=0.0,
                                                          is_perfect=True))
    for key, value in modifier.items():
        setattr(config.modifier, key, value)
    config.validate()
    tile = AnalogTile(3, 4, config, seed=5)
    tile.set_weights(np.linspace(-0.6, 0.6, 12).reshape(3, 4))
    return tile


def test_modifier_drawn_at_every_training_forward():
    """aihwkit's torch tile draws the modifier at each training forward (the C++ tiles hold
    one draw per optimizer step); the backward reads that forward's draw; test mode reads
    the weights."""
    tile = _tile(type=WeightModifierType.ADD_NORMAL, std_dev=0.1)
    X = np.eye(4, dtype=np.float32)
    y1, s1 = tile.forward_saving(X, False)
    y2, s2 = tile.forward_saving(X, False)
    assert not np.allclose(y1, y2)
    np.testing.assert_array_equal(y1, s1.weights.T)
    np.testing.assert_allclose(tile.forward(X, is_test=True), tile.get_weights().T)
    G = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(tile.input_gradient(G, s2), G @ s2.weights, rtol=1e-6)
    # the same seed gives the same draws
    again = _tile(type=WeightModifierType.ADD_NORMAL, std_dev=0.1)
    np.testing.assert_array_equal(again.forward_saving(X, False)[0], y1)


def test_per_batch_sample_draws_per_row():
    tile = _tile(type=WeightModifierType.MULT_NORMAL, std_dev=0.2, per_batch_sample=True)
    X = np.tile(np.eye(4, dtype=np.float32)[:1], (3, 1))
    Y, saved = tile.forward_saving(X, False)
    assert saved.weights.shape == (3, 3, 4)
    np.testing.assert_allclose(Y, saved.weights[:, :, 0], rtol=1e-6)
    assert np.ptp(Y[:, 0]) > 0
    G = np.ones((3, 3), np.float32)
    np.testing.assert_allclose(tile.input_gradient(G, saved),
                               np.einsum("bo,boi->bi", G, saved.weights), rtol=1e-6)


def test_torch_discretize_formula():
    """aihwkit's torch DISCRETIZE: step res * 2 * wmax, halves to even (by hand: res 1/4,
    assumed_wmax 0.5 -> step 0.25; 0.6 -> 0.5, 0.375 -> 0.5 (1.5 -> 2), 0.125 -> 0)."""
    tile = _tile(type=WeightModifierType.DISCRETIZE, res=0.25, assumed_wmax=0.5,
                 rel_to_actual_wmax=False)
    tile.set_weights(np.array([[0.6, 0.375, 0.125, -0.3]] * 3))
    Y, _ = tile.forward_saving(np.eye(4, dtype=np.float32), False)
    np.testing.assert_allclose(Y[:, 0], [0.5, 0.5, 0.0, -0.25])
    # relative to the actual max |w| = 0.6: step 0.3
    tile = _tile(type=WeightModifierType.DISCRETIZE, res=0.25, rel_to_actual_wmax=True)
    tile.set_weights(np.array([[0.6, 0.375, 0.125, -0.3]] * 3))
    Y, _ = tile.forward_saving(np.eye(4, dtype=np.float32), False)
    np.testing.assert_allclose(Y[:, 0], [0.6, 0.3, 0.0, -0.3], rtol=1e-6)


def test_bad_input_changes_nothing():
    tile = _tile(type=WeightModifierType.ADD_NORMAL, std_dev=0.1)
    state = tile._rng.get_state()
    with pytest.raises(ValueError, match="finite"):
        tile.forward_saving(np.array([[np.nan, 0, 0, 0]], np.float32), False)
    assert tile._rng.get_state() == state
    _, saved = tile.forward_saving(np.ones((2, 4), np.float32), False)
    with pytest.raises(ValueError, match="shape"):
        tile.input_gradient(np.ones((3, 3), np.float32), saved)
    with pytest.raises(ValueError, match="finite"):
        tile.input_gradient(np.full((2, 3), np.inf, np.float32), saved)
    with pytest.raises(ValueError, match="TorchInferenceRPUConfig"):
        AnalogTile(2, 2).forward_saving(np.ones((1, 2), np.float32), False)


def test_conv_per_batch_sample_draws_once_per_image():
    """aihwkit's torch tile reads a convolution's patches of one image as one sample: with
    ``per_batch_sample`` the positions of an image share a draw, images differ."""
    import rpusim.torch as rn
    config = TorchInferenceRPUConfig(forward=IOParameters(is_perfect=True))
    config.modifier.type = WeightModifierType.ADD_NORMAL
    config.modifier.std_dev = 0.3
    config.modifier.per_batch_sample = True
    layer = rn.AnalogConv2d(1, 2, kernel_size=1, bias=False, rpu_config=config, seed=3)
    x = torch.ones(2, 1, 2, 2)
    y = layer(x).detach().numpy()
    for image in y:  # the four positions have equal patches and one draw
        np.testing.assert_allclose(image, image[:, :1, :1] * np.ones_like(image), rtol=1e-6)
    assert not np.allclose(y[0], y[1])
    # the backward reads the draws of its forward
    x.requires_grad_(True)
    out = layer(x)
    out.sum().backward()
    saved_weights = layer.analog_module.tile._hwa.sample_weights
    assert saved_weights.shape == (2, 2, 1)
    np.testing.assert_allclose(x.grad.numpy()[:, 0, 0, 0], saved_weights.sum(axis=1)[:, 0],
                               rtol=1e-6)


def test_training_resumes_bit_identically_after_save_and_load():
    """A torch-tile training run (modifier drawn per forward, input noise, momentum) saved
    with torch.save and loaded into a new model continues with the same bits."""
    import io
    import rpusim.torch as rn
    config = TorchInferenceRPUConfig()
    config.modifier.type = WeightModifierType.ADD_NORMAL
    config.modifier.std_dev = 0.05
    config.forward.inp_noise = 0.01

    def build():
        torch.manual_seed(0)
        model = rn.AnalogSequential(rn.AnalogLinear(6, 5, rpu_config=config), torch.nn.Tanh(),
                                    rn.AnalogLinear(5, 3, rpu_config=config))
        opt = rn.AnalogSGD(model.parameters(), lr=0.1, momentum=0.5)
        opt.regroup_param_groups(model)
        return model, opt

    def step(model, opt, x):
        opt.zero_grad()
        y = model(x)
        y.sum().backward()
        opt.step()
        return y.detach()

    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    model, opt = build()
    for _ in range(2):
        step(model, opt, x)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    resumed, resumed_opt = build()
    state = torch.load(buffer, weights_only=False)
    resumed.load_state_dict(state["model"])
    resumed_opt.load_state_dict(state["opt"])
    for _ in range(3):
        assert torch.equal(step(model, opt, x), step(resumed, resumed_opt, x))


def test_per_line_output_noise_as_aihwkit_torch_tile():
    """aihwkit's torch tile draws the per-line output noise as |out_noise (1 + xi)| whatever
    the value of out_noise_std (> 0 switches it on): a folded normal N(1, 1) times out_noise,
    mean 0.11666 and std 0.07995 for out_noise 0.1 (by hand: E|X| = sqrt(2/pi) e^(-1/2) +
    1 - 2 Phi(-1), E X^2 = 2). The C++ tiles spread it by out_noise_std."""
    p = IOParameters(out_noise=0.1, out_noise_std=0.01)
    TorchInferenceRPUConfig(forward=p).validate()
    values = TorchTileMVM(p, 4000, 2, np.float64, TileRNG(0)).out_noise_values
    assert abs(values.mean() - 0.11666) < 0.004 and abs(values.std() - 0.07995) < 0.004
    cpp = AnalogTile(4000, 2, InferenceRPUConfig(forward=p))._forward_mvm.out_noise_values
    assert abs(cpp.std() - 0.001) < 0.0002


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_tile_whose_inputs_are_all_zero_gets_no_weight_gradient(momentum):
    """aihwkit's torch tile returns new zeros for inputs whose noise management values are
    all 0 (and no input noise): the tile's weight is then not in the graph, its gradient
    stays None, and torch's SGD skips it, weight decay and momentum included (aihwkit 1.2.0:
    fuzz_s9_0136 among the layer goldens). By hand, lr 0.1, weight decay 0.5, loss
    ``sum(y)``: the tile of inputs 2-3 moves by ``-0.1 * (x + 0.5 W)``, the other not at all."""
    from rpusim.configs import MappingParameter
    from rpusim.torch import AnalogLinear, AnalogSGD

    config = TorchInferenceRPUConfig(forward=IOParameters(out_noise=0.0, inp_res=0.0,
                                                          out_res=0.0, out_bound=0.0))
    config.mapping = MappingParameter(max_input_size=2)
    layer = AnalogLinear(4, 1, bias=False, rpu_config=config)
    w = torch.tensor([[0.2, -0.4, 0.6, 0.8]])
    layer.set_weights(w)
    opt = AnalogSGD(layer.parameters(), lr=0.1, weight_decay=0.5, momentum=momentum)
    opt.regroup_param_groups(layer)
    x = torch.tensor([[0.0, 0.0, 0.5, -1.0]])
    opt.zero_grad()
    layer(x).sum().backward()
    grads = [p.grad for p in layer.analog_module.shared_weights]
    assert grads[0] is None
    torch.testing.assert_close(grads[1], torch.tensor([[0.5, -1.0]]))
    opt.step()
    expected = torch.tensor([[0.2, -0.4, 0.6 - 0.1 * (0.5 + 0.3), 0.8 - 0.1 * (-1.0 + 0.4)]])
    torch.testing.assert_close(layer.get_weights()[0], expected)


@pytest.mark.parametrize("chained", [True, False])
def test_a_tile_whose_inputs_are_all_zero_passes_no_input_gradient(chained):
    """The same shortcut cuts the graph for the inputs too: nothing before such a tile gets a
    gradient (None, not zeros), so a first layer's weight is skipped by torch's SGD, weight
    decay included (aihwkit 1.2.0, the layer golden ``fuzz_s31_0091``: a conv layer whose
    ReLU outputs were all 0 left the input's gradient None). By hand: the first layer's
    outputs are -1 and -2, the ReLU gives zeros, the second layer's output is its bias."""
    from torch import nn

    from rpusim.torch import AnalogLinear, AnalogSequential, AnalogSGD

    config = TorchInferenceRPUConfig(forward=IOParameters(out_noise=0.0, inp_res=0.0,
                                                          out_res=0.0, out_bound=0.0))
    first = AnalogLinear(2, 2, bias=False, rpu_config=config)
    second = AnalogLinear(2, 1, rpu_config=config)
    first.set_weights(torch.tensor([[-1.0, 0.0], [0.0, -2.0]]))
    second.set_weights(torch.tensor([[0.5, 0.5]]), torch.tensor([0.25]))
    layers = [first, nn.ReLU(), second]
    model = AnalogSequential(*layers) if chained else None
    opt = AnalogSGD([*first.parameters(), *second.parameters()], lr=0.1, weight_decay=0.5)
    x = torch.tensor([[1.0, 1.0]], requires_grad=True)
    y = model(x) if chained else second(torch.relu(first(x)))
    torch.testing.assert_close(y, torch.tensor([[0.25]]))
    y.sum().backward()
    assert x.grad is None
    assert first.analog_module.shared_weights[0].grad is None
    assert second.analog_module.shared_weights[0].grad is None
    torch.testing.assert_close(second.bias.grad, torch.tensor([1.0]))
    opt.step()
    torch.testing.assert_close(first.get_weights()[0], torch.tensor([[-1.0, 0.0], [0.0, -2.0]]))
    torch.testing.assert_close(second.get_weights()[1], torch.tensor([0.25 - 0.1 * (1.0 + 0.125)]))
