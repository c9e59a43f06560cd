"""Custom device models (issue 9): ``define_device``, the example's SigmoidDevice and the
built-in LookupTableDevice.

The shared invariants (bounds, monotonicity, hidden-parameter round trip, save/load, decay)
run over these models in ``test_devices_invariants.py``; this module tests what is specific to
them: a custom twin of a built-in behaves bit-identically, custom hidden parameters drive the
physics, persistence, compounds, and a lookup table reproduces the device it was measured on.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rpusim import AnalogTile
from rpusim.configs import (ConstantStepDevice, LookupTableDevice, PulseType, SingleRPUConfig,
                            SoftBoundsDevice, TransferCompound, UnitCellRPUConfig,
                            UpdateParameters, config_from_dict)
from rpusim.devices import PulsedDevice, define_device
from rpusim.devices.base import SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, cast_like, clip_to_bounds
from rpusim.kernels.rng import normal

ROOT = Path(__file__).resolve().parents[1]
SINGLE = UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
                          update_management=False, update_bl_management=False)
NO_SPREAD = dict(dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, up_down_dtod=0.0,
                 dw_min_std=0.0)


def load_example():
    """The module of ``examples/custom_device.py`` (its SigmoidDevice), loaded once."""
    name = "rpusim_example_custom_device"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" /
                                                      "custom_device.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# A custom model that is the exact twin of ConstantStepDevice: same fields, same step body.
@dataclass
class TwinConstantStepDevice(PulsedDevice):
    """ConstantStepDevice, redefined through the public custom-device mechanism."""


def twin_constant_step(params, P, i, j, w, up, states):
    dw = P[SLOT_DWMIN_UP, i, j] if up else -P[SLOT_DWMIN_DOWN, i, j]
    if params.dw_min_std > 0:
        dw = dw * cast_like(1.0 + params.dw_min_std * normal(states, i), w)
    return clip_to_bounds(P, i, j, w + dw)


define_device(TwinConstantStepDevice, twin_constant_step)


def pulse_trace(device, n_up, n_down, n_elements=4, seed=3, start=None):
    """Weights of one column after every single pulse: ``n_up`` up then ``n_down`` down."""
    tile = AnalogTile(n_elements, 1, SingleRPUConfig(device=device, update=SINGLE), seed=seed)
    tile.set_weights(np.full((n_elements, 1), -10.0 if start is None else start))
    trace = [tile.get_weights()[:, 0].copy()]
    for sign, n in ((-1.0, n_up), (1.0, n_down)):
        for _ in range(n):
            tile.update(np.ones(1), np.full(n_elements, sign), lr=1.0)
            trace.append(tile.get_weights()[:, 0].copy())
    return np.array(trace)


# -- define_device --------------------------------------------------------------------------
def test_custom_twin_is_bit_identical_to_the_builtin():
    """Same seed, same pulses, same noise: the custom twin of ConstantStep gives the same bits
    (stochastic pulses, ctoc noise and dtod spread on)."""
    rng = np.random.default_rng(0)
    x, d = rng.uniform(-1, 1, (20, 12)), rng.uniform(-0.5, 0.5, (20, 9))
    tiles = [AnalogTile(9, 12, SingleRPUConfig(device=cls(dw_min=0.01)), seed=5)
             for cls in (ConstantStepDevice, TwinConstantStepDevice)]
    for t in tiles:
        t.set_weights(np.zeros((9, 12)))
        t.update(x, d, lr=0.1)
    np.testing.assert_array_equal(tiles[0].get_weights(), tiles[1].get_weights())
    assert np.abs(tiles[0].get_weights()).max() > 0.01


def test_define_device_builds_params_and_cache_free_module():
    params = TwinConstantStepDevice().step_params(np.dtype(np.float32))
    assert params._fields == ("dw_min_std",)
    assert isinstance(params.dw_min_std, np.float32)
    # not an rpusim module: the engine compiles it without the on-disk cache
    assert not type(params).__module__.startswith("rpusim.")


def test_custom_hidden_parameter_is_named_sampled_and_drives_the_physics():
    ex = load_example()
    dev = ex.SigmoidDevice(width=20.0, width_dtod=0.2, **NO_SPREAD)
    tile = AnalogTile(6, 1, SingleRPUConfig(device=dev, update=SINGLE), seed=1)
    h = tile.get_hidden_parameters()
    assert list(h)[-1] == "width"
    assert 0.05 < np.std(h["width"]) / 20.0 < 0.5
    tile.set_weights(np.zeros((6, 1)))
    tile.update(np.ones(1), -np.ones(6), lr=1.0)
    step_before = tile.get_weights()[:, 0].copy()
    h["width"] = h["width"] * np.float32(4.0)  # four times wider: smaller steps
    tile.set_hidden_parameters(h)
    tile.set_weights(np.zeros((6, 1)))
    tile.update(np.ones(1), -np.ones(6), lr=1.0)
    # at the centre (u = 1/2) one pulse gives sigmoid(1/width) - 1/2 ~ 1 / (4 width)
    np.testing.assert_allclose(tile.get_weights()[:, 0], step_before / 4, rtol=2e-3)


def test_sigmoid_step_follows_the_formula():
    """One noise-free up pulse from u: u' = sigmoid(logit(u) + 1/width), in weight units."""
    ex = load_example()
    dev = ex.SigmoidDevice(width=10.0, width_dtod=0.0, **NO_SPREAD)
    w0 = np.array([-0.3, 0.0, 0.2, 0.5])[:, None]
    tile = AnalogTile(4, 1, SingleRPUConfig(device=dev, update=SINGLE), seed=0)
    tile.set_weights(w0)
    tile.update(np.ones(1), -np.ones(4), lr=1.0)
    u = (w0 + 0.6) / 1.2
    expected = -0.6 + 1.2 / (1 + np.exp(-(np.log(u / (1 - u)) + 0.1)))
    np.testing.assert_allclose(tile.get_weights(), expected, atol=2e-6)


def test_custom_device_config_round_trips_through_its_dict():
    ex = load_example()
    dev = ex.SigmoidDevice(width=12.5, edge=0.02)
    again = config_from_dict(dev.to_dict())
    assert type(again) is ex.SigmoidDevice and again == dev


def test_save_load_with_a_custom_device_continues_bit_identically(tmp_path):
    ex = load_example()
    config = SingleRPUConfig(device=ex.SigmoidDevice(dw_min_std=0.2))
    tile = AnalogTile(5, 7, config, seed=11)
    rng = np.random.default_rng(2)
    tile.update(rng.normal(size=(4, 7)), rng.normal(size=(4, 5)), lr=0.3)
    tile.save(tmp_path / "tile.npz")
    copy = AnalogTile.load(tmp_path / "tile.npz")
    assert type(copy.rpu_config.device) is ex.SigmoidDevice
    x, d = rng.normal(size=(6, 7)), rng.normal(size=(6, 5))
    for t in (tile, copy):
        t.update(x, d, lr=0.3)
    np.testing.assert_array_equal(copy.get_weights(), tile.get_weights())
    for name, value in tile.get_hidden_parameters().items():
        np.testing.assert_array_equal(copy.get_hidden_parameters()[name], value, err_msg=name)


def test_custom_devices_train_inside_a_transfer_compound():
    """Tiki-taka made of two custom SigmoidDevices learns a linear map."""
    ex = load_example()
    config = UnitCellRPUConfig(device=TransferCompound(
        unit_cell_devices=[ex.SigmoidDevice(), ex.SigmoidDevice()], gamma=0.0,
        transfer_every=1, units_in_mbatch=True, transfer_lr=0.1, scale_transfer_lr=False))
    errors = ex.train(config, epochs=3)
    assert errors[-1] < 0.25 * errors[0]
    names = list(AnalogTile(2, 2, config, seed=0).get_hidden_parameters())
    assert "width_0" in names and "width_1" in names


def test_custom_device_is_found_by_the_response_command_helpers():
    """``python -m rpusim response NAME`` builds devices through ``rpusim.demo.make_device``,
    which also knows custom models defined in the running process."""
    from rpusim.demo import make_device
    dev = make_device("TwinConstantStepDevice", {"dw_min": "0.02"})
    assert isinstance(dev, TwinConstantStepDevice) and dev.dw_min == 0.02


def test_define_device_rejects_bad_definitions():
    @dataclass
    class NoSampler(PulsedDevice):
        pass

    with pytest.raises(ValueError, match="sample"):
        define_device(NoSampler, twin_constant_step, hidden=("extra",))
    with pytest.raises(ValueError, match="no field"):
        define_device(NoSampler, twin_constant_step, params=("nope",))
    with pytest.raises(TypeError, match="PulsedDevice"):
        define_device(int, twin_constant_step)
    with pytest.raises(TypeError, match="function"):
        define_device(NoSampler, 3)


def test_custom_parameter_validation_names_the_field():
    ex = load_example()
    with pytest.raises(TypeError, match="SigmoidDevice.width"):
        SingleRPUConfig(device=ex.SigmoidDevice(width="wide")).validate()
    with pytest.raises(ValueError, match="SigmoidDevice.edge"):
        SingleRPUConfig(device=ex.SigmoidDevice(edge=0.7)).validate()


# -- LookupTableDevice ---------------------------------------------------------------------------
def soft_bounds_curve(start, bound, step, n):
    """``n`` weights after successive pulses of a noise-free soft-bounds device (float64)."""
    w = [start]
    for _ in range(n - 1):
        w.append(w[-1] + step * (1 - w[-1] / bound))
    return w


def test_lookup_table_of_a_constant_step_curve_reproduces_constant_step():
    dw = 0.01
    up = list(-0.6 + dw * np.arange(121))
    down = list(0.6 - dw * np.arange(121))
    n = 150  # beyond the range: both stop at the bound
    ref = pulse_trace(ConstantStepDevice(dw_min=dw, **NO_SPREAD), n, n)
    lut = pulse_trace(LookupTableDevice(up_curve=up, down_curve=down, **NO_SPREAD), n, n)
    np.testing.assert_allclose(lut, ref, atol=2e-6)
    np.testing.assert_allclose(ref[120, 0], 0.6, atol=1e-5)


def test_lookup_table_of_a_soft_bounds_curve_reproduces_soft_bounds():
    dw, n = 0.02, 100
    # measured beyond where the pulses below go (outside, the end steps are kept)
    up = soft_bounds_curve(-0.6, 0.6, dw, 2 * n)
    down = soft_bounds_curve(0.6, -0.6, -dw, 2 * n)
    ref_dev = SoftBoundsDevice(dw_min=dw, **NO_SPREAD)
    lut_dev = LookupTableDevice(up_curve=up, down_curve=down, **NO_SPREAD)
    # the table's mean step is its granularity; soft bounds' is dw_min: same single pulses
    ref = pulse_trace(ref_dev, n, n)
    lut = pulse_trace(lut_dev, n, n)
    np.testing.assert_allclose(lut, ref, atol=1e-5)
    np.testing.assert_allclose(lut[: n + 1, 0], up[: n + 1], atol=1e-5)  # and the measured curve
    # starting in the middle: interpolation between nodes of a linear dG(G)
    mid = [pulse_trace(d, 30, 30, start=0.123) for d in (ref_dev, lut_dev)]
    np.testing.assert_allclose(mid[1], mid[0], atol=1e-5)


def test_lookup_table_derived_bounds_granularity_and_spread():
    up = [-0.5, -0.2, 0.1, 0.3, 0.4]      # steps 0.3, 0.3, 0.2, 0.1
    down = [0.4, 0.0, -0.3, -0.5]         # steps 0.4, 0.3, 0.2
    dev = LookupTableDevice(up_curve=up, down_curve=down, **NO_SPREAD)
    dev.validate()
    d = dev.derived_parameters()
    assert d["w_max"] == 0.4 and d["w_min"] == -0.5
    assert d["dw_min"] == pytest.approx((0.9 + 0.9) / 7)
    tile = AnalogTile(3, 2, SingleRPUConfig(device=dev), seed=0)
    h = tile.get_hidden_parameters()
    np.testing.assert_array_equal(h["max_bound"], np.float32(0.4))
    np.testing.assert_array_equal(h["min_bound"], np.float32(-0.5))
    np.testing.assert_allclose(h["dwmin_up"], (0.9 + 0.9) / 7, rtol=1e-6)
    # the up step at a weight between nodes: linear interpolation of the measured steps
    tile = AnalogTile(1, 1, SingleRPUConfig(device=dev, update=SINGLE), seed=0)
    tile.set_weights(np.array([[-0.05]]))  # halfway between nodes -0.2 (0.3) and 0.1 (0.2)
    tile.update(np.ones(1), -np.ones(1), lr=1.0)
    np.testing.assert_allclose(tile.get_weights()[0, 0], -0.05 + 0.25, atol=1e-6)
    # a gain spread and a bound spread reach the elements
    spread = LookupTableDevice(up_curve=up, down_curve=down, dw_min_dtod=0.2, w_max_dtod=0.1)
    h = AnalogTile(40, 40, SingleRPUConfig(device=spread), seed=0).get_hidden_parameters()
    assert 0.15 < np.std(h["dwmin_up"] / d["dw_min"]) < 0.25
    assert 0.03 < np.std(h["max_bound"]) < 0.05


@pytest.mark.parametrize("fields, message", [
    ({"up_curve": [0.1]}, "at least 2"),
    ({"up_curve": [-0.1, float("nan"), 0.2]}, "finite"),
    ({"up_curve": [-0.1, 0.3, 0.2]}, "non-decreasing"),
    ({"down_curve": [0.3, -0.1, 0.0]}, "non-increasing"),
    ({"up_curve": [0.2, 0.2, 0.2]}, "change the weight"),
    ({"up_curve": [0.1, 0.5], "down_curve": [0.5, 0.2]}, "span 0"),
    ({"up_curve": "0.1,0.2"}, "list"),
])
def test_lookup_table_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        LookupTableDevice(**fields).validate()


def test_lookup_table_accepts_arrays_and_stays_json_safe():
    dev = LookupTableDevice(up_curve=np.linspace(-0.5, 0.5, 11),
                            down_curve=np.linspace(0.5, -0.5, 11))
    dev.validate()
    assert isinstance(dev.up_curve, list)
    assert config_from_dict(dev.to_dict()) == dev


def test_a_device_typed_at_the_prompt_works():
    """A model without a source file (interactive prompt, ``exec``) still compiles: numba's
    disk cache, which the engine uses for step bodies, gets a per-process stand-in file."""
    source = '''
from dataclasses import dataclass
from rpusim.devices import PulsedDevice, define_device
from rpusim.devices.base import SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, clip_to_bounds

@dataclass
class PromptDoubleStepDevice(PulsedDevice):
    pass

def step(params, P, i, j, w, up, states):
    dw = P[SLOT_DWMIN_UP, i, j] if up else -P[SLOT_DWMIN_DOWN, i, j]
    return clip_to_bounds(P, i, j, w + dw + dw)

define_device(PromptDoubleStepDevice, step)
'''
    namespace = {"__name__": "prompt_session"}
    exec(compile(source, "<stdin>", "exec"), namespace)
    dev = namespace["PromptDoubleStepDevice"](dw_min=0.01, **NO_SPREAD)
    trace = pulse_trace(dev, 3, 0, start=0.0)
    np.testing.assert_allclose(trace[:, 0], [0.0, 0.02, 0.04, 0.06], atol=1e-6)
