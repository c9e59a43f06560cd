"""Learned input ranges of the torch layers (``pre_post.input_range``) against aihwkit 1.2.0.

The fixture ``tests/golden/input_range.json`` comes from ``scripts/make_golden_input_range.py``
run with aihwkit: per training step the outputs, every tile's input range and its gradient,
and the weights after the step.
"""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from rpusim.configs import InferenceRPUConfig, IOParameters, MappingParameter  # noqa: E402
from rpusim.torch import AnalogConv2d, AnalogLinear  # noqa: E402
from rpusim.torch.optim import AnalogSGD  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
_GOLDEN = json.loads((ROOT / "tests" / "golden" / "input_range.json").read_text())
_spec = importlib.util.spec_from_file_location(
    "make_golden_input_range", ROOT / "scripts" / "make_golden_input_range.py")
_maker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_maker)

TOL = dict(rtol=2e-5, atol=2e-6)   # both sides compute in float32


def _layer(name: str) -> AnalogLinear:
    ir, mapping = _maker.SCENARIOS[name][2:4]
    forward = IOParameters(**_maker.FORWARD.get(name, {"is_perfect": True}))
    config = InferenceRPUConfig(forward=forward, mapping=MappingParameter(**mapping))
    config.pre_post.input_range.enable = True
    for key, value in ir.items():
        setattr(config.pre_post.input_range, key, value)
    return _maker.make_layer(name, config, AnalogLinear, AnalogConv2d)


def _replay(name: str) -> dict:
    """Train scenario ``name`` with rpusim and record what the fixture records."""
    weight, bias, inputs = _maker.scenario_data(name)
    layer = _layer(name)
    layer.set_weights(torch.tensor(weight, dtype=torch.float32),
                      torch.tensor(bias, dtype=torch.float32))
    opt = AnalogSGD(layer.parameters(), lr=_GOLDEN["lr"])
    opt.regroup_param_groups(layer)
    ranges = layer.analog_module.input_range
    record = {"outputs": [], "ranges": [], "grads": [], "weights": [], "biases": []}
    for x in inputs:
        opt.zero_grad()
        y = layer(torch.tensor(x, dtype=torch.float32))
        (y ** 2).sum().backward()
        record["outputs"].append(y.detach().numpy())
        record["ranges"].append([float(r.detach()[0]) for r in ranges])
        record["grads"].append([None if r.grad is None else float(r.grad[0]) for r in ranges])
        opt.step()
        w, b = layer.get_weights()
        record["weights"].append(w.numpy())
        record["biases"].append(b.numpy())
    layer.eval()
    record["eval_output"] = layer(torch.tensor(inputs[0], dtype=torch.float32)).detach().numpy()
    return record


def test_fixture_is_from_aihwkit_1_2_0():
    assert _GOLDEN["aihwkit_version"] == "1.2.0"
    assert set(_GOLDEN["scenarios"]) == set(_maker.SCENARIOS)


@pytest.mark.parametrize("name", sorted(_maker.SCENARIOS))
def test_training_matches_aihwkit(name):
    expected = _GOLDEN["scenarios"][name]
    got = _replay(name)
    learned = _maker.SCENARIOS[name][2].get("learn_input_range", True)
    for step in range(len(expected["ranges"])):
        np.testing.assert_allclose(got["ranges"][step], expected["ranges"][step], **TOL,
                                   err_msg=f"input ranges, step {step}")
        if learned:
            np.testing.assert_allclose(got["grads"][step], expected["grads"][step],
                                       rtol=1e-4, atol=1e-5, err_msg=f"range grads, step {step}")
        else:
            assert got["grads"][step] == [None] * len(got["grads"][step])
        for key in ("outputs", "weights", "biases"):
            np.testing.assert_allclose(got[key][step], expected[key][step], rtol=1e-4,
                                       atol=1e-5, err_msg=f"{key}, step {step}")
    np.testing.assert_allclose(got["eval_output"], expected["eval_output"], rtol=1e-4, atol=1e-5)


def test_inputs_are_clipped_to_the_range():
    layer = _layer("fixed_range")
    layer.set_weights(torch.eye(3, 4), torch.zeros(3))
    y = layer(torch.tensor([[2.0, -0.5, -3.0, 9.0]]))
    np.testing.assert_allclose(y.detach().numpy(), [[0.7, -0.5, -0.7]], rtol=1e-6)


def test_first_batches_initialise_the_range():
    layer = _layer("single_tile")               # init_from_data = 2, init_std_alpha = 3
    x1, x2 = torch.randn(8, 4), 3.0 * torch.randn(8, 4)
    layer(x1)
    layer(x2)
    layer(10.0 * torch.randn(8, 4))              # past init_from_data: no change
    expected = 3.0 * (x1.std() + x2.std()) / 2
    got = layer.analog_module.input_range[0].detach()[0]
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-5)
    assert int(layer.analog_module.input_range_update_idx[0]) == 2


def test_eval_does_not_initialise():
    layer = _layer("single_tile").eval()
    layer(torch.randn(8, 4))
    assert float(layer.analog_module.input_range[0].detach()[0]) == 3.0


def test_disabled_has_no_range():
    layer = AnalogLinear(4, 3, rpu_config=InferenceRPUConfig())
    assert layer.analog_module.input_range is None


def test_manage_output_clipping_needs_unmanaged_io():
    config = InferenceRPUConfig()
    config.pre_post.input_range.enable = True
    config.pre_post.input_range.manage_output_clipping = True
    with pytest.raises(ValueError, match="manage_output_clipping"):
        AnalogLinear(4, 3, rpu_config=config)


def test_state_dict_keeps_ranges_and_counters(tmp_path):
    layer = _layer("single_tile")
    layer(torch.randn(8, 4))
    path = tmp_path / "layer.pt"
    torch.save(layer.state_dict(), path)
    other = _layer("single_tile")
    other.load_state_dict(torch.load(path, weights_only=True))
    grid, back = layer.analog_module, other.analog_module
    assert float(back.input_range[0].detach()[0]) == float(grid.input_range[0].detach()[0])
    assert int(back.input_range_update_idx[0]) == 1
    assert float(back.input_range[0].detach()[0]) != 3.0


def test_set_input_range():
    layer = _layer("split_scaled")                       # 2 x 2 tiles
    grid = layer.analog_module
    grid.set_input_range(torch.tensor([-1.5]))
    assert [float(r.detach()[0]) for r in grid.input_range] == [1.5] * 4
    grid.set_input_range(0.25, tile=2)
    assert [float(r.detach()[0]) for r in grid.input_range] == [1.5, 1.5, 0.25, 1.5]
    with pytest.raises(ValueError, match="not enabled"):
        AnalogLinear(4, 3, rpu_config=InferenceRPUConfig()).analog_module.set_input_range(1.0)


def test_range_from_data_rounds_as_aihwkit():
    """The running mean of the data's std is computed with torch's float32 operations, as
    aihwkit does: aihwkit 1.2.0 gives exactly these ranges for this input (a float64
    running mean gave the first one ulp apart, which moved inputs across DAC rounding ties
    in differential tests)."""
    config = InferenceRPUConfig(forward=IOParameters(is_perfect=True))
    config.pre_post.input_range.enable = True
    config.pre_post.input_range.init_from_data = 10
    layer = AnalogLinear(3, 2, bias=False, rpu_config=config)
    rng = np.random.default_rng(5)
    ranges = []
    for i in range(4):
        layer(torch.tensor(rng.normal(0, 1 + i, (3, 3)).astype(np.float32)))
        ranges.append(float(layer.analog_module.input_range[0].detach()))
    assert ranges == [2.4263594150543213, 4.873762607574463, 5.5612406730651855,
                      5.6151933670043945]


def test_a_replaced_range_parameter_is_the_one_used_and_trained():
    """The ranged path reads the ranges from the list's parameter dict (``_entries``): a
    parameter put in the list's place is read in the forward (its value clips the inputs),
    and gets the gradient; the others keep theirs. ``_entries`` equals iterating the list."""
    from rpusim.torch.mapping import _entries

    layer = _layer("split_scaled")                       # 2 x 2 tiles
    twin = _layer("split_scaled")
    twin.load_state_dict(layer.state_dict())
    grid = layer.analog_module
    old = list(grid.input_range)
    new = torch.nn.Parameter(torch.full((1,), 0.5))
    grid.input_range[2] = new
    assert _entries(grid.input_range) == tuple(grid.input_range)
    assert _entries(grid.input_range)[2] is new and old[2] is not new
    # the forward reads the new value: as the twin with that value set in place
    twin.analog_module.set_input_range(0.5, tile=2)
    x = torch.randn(5, layer.in_features)
    np.testing.assert_array_equal(layer.eval()(x).detach().numpy(),
                                  twin.eval()(x).detach().numpy())
    layer.train()(x).sum().backward()
    assert new.grad is not None and old[2].grad is None
    assert all(r.grad is not None for k, r in enumerate(old) if k != 2)


# -- the range gradient's kernel against the NumPy expressions it replaced ----------------------
def _numpy_terms(x, z, r):
    return (np.minimum(np.where(x >= r, z, 0.0), 0.0).sum(dtype=np.float64),
            np.maximum(np.where(x <= -r, z, 0.0), 0.0).sum(dtype=np.float64),
            int(np.count_nonzero(np.abs(x) < r)))


@pytest.mark.parametrize("n", [1, 5, 7, 8, 9, 16, 127, 128, 129, 130, 255, 1000, 8191, 8192,
                               8193, 16384, 20001])
def test_pairwise_sum_is_numpys(n):
    from rpusim.kernels.input_range import pairwise_sum

    rng = np.random.default_rng(n)
    for _ in range(3):
        # magnitudes over 16 decades: every order of the additions rounds differently
        a = (rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n)).astype(np.float32)
        assert pairwise_sum(a.astype(np.float64)) == a.sum(dtype=np.float64)


_SPECIAL = [np.nan, 0.0, -0.0, 1.5, -1.5, np.inf, -np.inf]


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       r=st.sampled_from([1.5, 0.25, 3.0, -1.5]), x64=st.booleans(), view=st.booleans())
def test_range_gradient_terms_are_numpys(rows, cols, seed, r, x64, view):
    """Values at the range, NaN, signed zeros and infinities among inputs and gradients;
    strided views (a split layer's column range, an analog bias column cut off); float64
    inputs with float32 gradients (a layer's input dtype against its tile's)."""
    from rpusim.torch.mapping import _range_terms

    rng = np.random.default_rng(seed)
    shape = (rows, cols + 3 if view else cols)
    x = (rng.standard_normal(shape) * 2).astype(np.float64 if x64 else np.float32)
    z = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6, shape)).astype(np.float32)
    for a in (x, z):
        hit = rng.random(shape) < 0.1
        a[hit] = rng.choice(_SPECIAL, hit.sum())
    x[rng.random(shape) < 0.1] = r
    x[rng.random(shape) < 0.1] = -r
    if view:
        x, z = x[:, 2:2 + cols], z[:, :cols]
    got = _range_terms(x, z, r)
    assert got is not None
    expected = _numpy_terms(x, z, r)
    for g, e in zip(got, expected):
        assert (g == e) or (np.isnan(g) and np.isnan(e)), (got, expected)


def test_range_terms_leave_other_layouts_to_numpy():
    from rpusim.torch.mapping import _range_terms

    x = np.ones((4, 6), np.float32)
    assert _range_terms(x.T, x.T, 1.0) is None               # column-major
    assert _range_terms(x[:, ::2], x[:, ::2], 1.0) is None   # strided columns
    assert _range_terms(x[:0], x[:0], 1.0) is None           # empty
    assert _range_terms(x, x[:, :5], 1.0) is None            # shapes differ
    assert _range_terms(x.astype(np.float16), x, 1.0) is None
    image = np.ones((2, 3, 4, 4), np.float32)                # a convolution's image
    got = _range_terms(image, -image, 0.5)
    assert got == _numpy_terms(image, -image, 0.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "float64"])
def test_ranged_backward_refuses_non_finite_gradients(bad, layout):
    """The grid's backward tests the output gradient before any tile's pass (the finiteness
    kernel for contiguous float arrays, NumPy for others): a ValueError, no stored update
    pair, no range gradient."""
    layer = _layer("split_scaled")
    grid = layer.analog_module
    x = torch.randn(6, layer.in_features, dtype=torch.float64 if layout == "float64"
                    else torch.float32)
    if layout == "float64":
        layer = layer.double()
        grid = layer.analog_module
    y = layer(x)
    g = torch.ones(y.shape[1], y.shape[0], dtype=y.dtype).T   # a transposed view
    if layout != "transposed":
        g = g.contiguous()
    g[2, 1] = bad
    with pytest.raises(ValueError, match="d must be finite"):
        y.backward(g)
    assert not grid.has_pending()
    assert all(r.grad is None for r in grid.input_range)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["x", "d"])
def test_update_gradient_refuses_non_finite_pairs(dtype, where):
    from rpusim.tile import AnalogTile

    tile = AnalogTile(3, 4, InferenceRPUConfig(), dtype=dtype)
    x, d = np.ones((5, 4), dtype), np.ones((5, 3), dtype)
    {"x": x, "d": d}[where][4, 2] = np.nan
    for a, b in ((x, d), (x[4], d[4])):   # a batch (the kernel) and one sample (NumPy)
        with pytest.raises(ValueError, match=f"{where} must be finite"):
            tile.update_gradient(a, b)


@settings(max_examples=150, deadline=None)
@given(r=st.floats(-1e3, 1e3, allow_nan=False, width=32), idx=st.integers(0, 98),
       seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 30.0]),
       alpha=st.sampled_from([3.0, 2.7, 1 / 3, 0.1]), f64=st.booleans())
def test_range_initialisation_is_torchs_running_mean(r, idx, seed, scale, alpha, f64):
    """One initialisation step of a range (``_init_range_from_data``) against torch's own
    expression, as aihwkit computes it: ``|(r * count + alpha * std(x)) / (count + 1)|`` on
    tensors of the range's dtype; the counter moves by one."""
    config = InferenceRPUConfig(forward=IOParameters(is_perfect=True))
    config.pre_post.input_range.enable = True
    config.pre_post.input_range.init_from_data = 100
    config.pre_post.input_range.init_std_alpha = alpha
    layer = AnalogLinear(6, 3, rpu_config=config)
    if f64:
        layer = layer.double()
    grid = layer.analog_module
    dtype = torch.float64 if f64 else torch.float32
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((7, 6)) * scale).to(dtype)
    with torch.no_grad():
        grid.input_range[0].fill_(r)
        grid.input_range_update_idx[0] = idx
        start = grid.input_range[0].detach().clone()
        count = torch.tensor(float(idx), dtype=dtype)
        expected = ((start * count + alpha * x.std()) / (count + 1)).abs()
    grid._init_range_from_data(0, x.numpy(), idx)
    torch.testing.assert_close(grid.input_range[0].detach(), expected, rtol=0, atol=0)
    assert int(grid.input_range_update_idx[0]) == idx + 1
