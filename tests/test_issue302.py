"""aihwkit issue #302 as its user wrote it, and the intermediate-hidden-weight rule (api.md).

The user's flow: ``params = get_hidden_parameters()``, edit the leaves ``hidden_weights_i_k``
(and decay scales), ``set_hidden_parameters(params)`` with the stale intermediates
``hidden_weights_k`` still in the dict. A given intermediate is accepted when it equals the
current value or the value the new leaves give; anything else raises and changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rpusim.configs as C
from rpusim import AnalogTile

# The script of aihwkit issue #302 (last comment), with only its imports changed; the two
# numbers it prints are returned for the assertion.
SCRIPT_302 = '''
from torch import ones, Tensor
from torch.nn.functional import mse_loss

from rpusim.torch import AnalogLinear
from rpusim.configs import UnitCellRPUConfig
from rpusim.configs import (
    TransferCompound,
    ReferenceUnitCell,
    SoftBoundsDevice)
from rpusim.torch import AnalogSGD

# The Tiki-taka learning rule can be implemented using the transfer device.
def SBdevice():
    """Custom device """
    return SoftBoundsDevice(w_max_dtod=0.0, w_min_dtod=0.0, w_max=1.0, w_min=-1.0,
                            lifetime=100., lifetime_dtod=0.0)

# arbitrary
gamma = 0.2

rpu_config = UnitCellRPUConfig(
    device=TransferCompound(

        # Devices that compose the Tiki-taka compound.
        unit_cell_devices=[
            ReferenceUnitCell([SBdevice(), SBdevice()]),  # fast "A" matrix
            ReferenceUnitCell([SBdevice(), SBdevice()])   # slow "C" matrix
        ],
        gamma=gamma,
    )
)

# print the config
print(rpu_config)

# construct the model
in_features = 2
out_features = 1
model = AnalogLinear(in_features, out_features, bias=True, rpu_config=rpu_config)

params = model.analog_tile.get_hidden_parameters()
shape = params['hidden_weights_0_0'].shape

# just dummy settings
a, b, c, d = 0.47, 0.21, 0.64, 0.12
params['hidden_weights_0_0'] = a*ones(*shape)  # A+
params['hidden_weights_1_0'] = b*ones(*shape)  # A-
params['hidden_weights_0_1'] = c*ones(*shape)  # C+
params['hidden_weights_1_1'] = d*ones(*shape)  # C-

# explicitly set the decay scales (which is 1-1/lifetime)
a_dcy, b_dcy, c_dcy, d_dcy = 0.95, 0.78, 0.93, 0.92
params['decay_scales_0_0'] = a_dcy*ones(*shape)  # A+
params['decay_scales_1_0'] = b_dcy*ones(*shape)  # A-
params['decay_scales_0_1'] = c_dcy*ones(*shape)  # C+
params['decay_scales_1_1'] = d_dcy*ones(*shape)  # C-

model.analog_tile.set_hidden_parameters(params)

# LR set to zero. Only lifetime will be applied
opt = AnalogSGD(model.parameters(), lr=0.0)
opt.regroup_param_groups(model)

x_b = Tensor([[0.1, 0.2], [0.2, 0.4]])
y_b = Tensor([[0.3], [0.6]])

epochs = 2
for _ in range(epochs):
    opt.zero_grad()
    pred = model(x_b)
    loss = mse_loss(pred, y_b)
    loss.backward()
    opt.step()

print(model.get_weights()[0])
weight = gamma*(a*a_dcy**epochs - b*b_dcy**epochs) + c*c_dcy**epochs - d*d_dcy**epochs
print(weight)
'''


def test_issue_302_script_verbatim_through_torch_layers():
    pytest.importorskip("torch")
    scope: dict = {}
    exec(compile(SCRIPT_302, "issue302_script", "exec"), scope)
    got = scope["model"].get_weights()[0].numpy()
    assert got.dtype == np.float32 and got.shape == (1, 2)
    # reset = 0, so each device decays as u * delta**2 over the two steps
    np.testing.assert_allclose(got, np.full((1, 2), scope["weight"]), rtol=0, atol=1e-6)


def _sb302():
    return C.SoftBoundsDevice(w_max_dtod=0.0, w_min_dtod=0.0, w_max=1.0, w_min=-1.0,
                              lifetime=100.0, lifetime_dtod=0.0)


@pytest.mark.parametrize("gamma", [0.2, 0.0])
def test_issue_302_flow_on_the_plain_tile_float64(gamma):
    cell = lambda: C.ReferenceUnitCell([_sb302(), _sb302()])  # noqa: E731
    config = C.UnitCellRPUConfig(device=C.TransferCompound([cell(), cell()], gamma=gamma))
    tile = AnalogTile(1, 2, config, seed=5, dtype=np.float64)
    params = tile.get_hidden_parameters()
    shape = params["hidden_weights_0_0"].shape
    a, b, c, d = 0.47, 0.21, 0.64, 0.12
    scales = {"0_0": 0.95, "1_0": 0.78, "0_1": 0.93, "1_1": 0.92}
    for suffix, value in zip(scales, (a, b, c, d)):
        params[f"hidden_weights_{suffix}"] = value * np.ones(shape)
        params[f"decay_scales_{suffix}"] = scales[suffix] * np.ones(shape)
    tile.set_hidden_parameters(params)   # stale hidden_weights_0 / _1 still in the dict
    for _ in range(2):                   # AnalogSGD(lr=0).step(): no update, then decay
        tile.update(np.array([[0.1, 0.2], [0.2, 0.4]]), np.ones((2, 1)), lr=0.0)
        tile.post_update_step()
    expected = (gamma * (a * 0.95 ** 2 - b * 0.78 ** 2) + c * 0.93 ** 2 - d * 0.92 ** 2)
    np.testing.assert_allclose(tile.get_weights(), np.full((1, 2), expected), rtol=0, atol=1e-12)
    h = tile.get_hidden_parameters()
    np.testing.assert_allclose(h["hidden_weights_0"], a * 0.95 ** 2 - b * 0.78 ** 2, atol=1e-12)


# -- the rule, for every compound that can hold a compound ----------------------------------------
def _cs(dw_min=0.01):
    return C.ConstantStepDevice(dw_min=dw_min, dw_min_dtod=0.0, dw_min_std=0.0, w_max_dtod=0.0,
                                w_min_dtod=0.0, up_down_dtod=0.0)


# each inner cell and the suffixes of its single devices' weights (hidden_weights_<s>_<k>)
INNER = {
    "reference": (lambda: C.ReferenceUnitCell([_cs(), _cs()]), ["0", "1"]),
    "vector": (lambda: C.VectorUnitCell([_cs(), _cs(0.02)], gamma_vec=[0.6, 0.4]), ["0", "1"]),
    "one_sided": (lambda: C.OneSidedUnitCell([_cs()]), ["0", "1"]),
    "vector_of_reference": (lambda: C.VectorUnitCell(
        [C.ReferenceUnitCell([_cs(), _cs()]), _cs()]), ["0_0", "1_0", "1"]),
}
OUTER = {
    "transfer": lambda devs: C.TransferCompound(devs, gamma=0.3),
    "buffered": lambda devs: C.BufferedTransferCompound(devs, gamma=0.3),
    "chopped": lambda devs: C.ChoppedTransferCompound(devs),
    "dynamic": lambda devs: C.DynamicTransferCompound(devs),
    "vector": lambda devs: C.VectorUnitCell(devs),
}


def _nested_tile(outer, inner, seed=0):
    make = INNER[inner][0]
    device = OUTER[outer]([make(), make()])
    return AnalogTile(3, 4, C.UnitCellRPUConfig(device=device), seed=seed, dtype=np.float64)


def _leaves(inner, k):
    return [f"hidden_weights_{s}_{k}" for s in INNER[inner][1]]


@settings(max_examples=25, deadline=None)
@given(outer=st.sampled_from(sorted(OUTER)), inner=st.sampled_from(sorted(INNER)),
       seed=st.integers(0, 2**16), stale=st.booleans())
def test_intermediate_accepted_when_stale_or_consistent(outer, inner, seed, stale):
    tile = _nested_tile(outer, inner, seed)
    params = tile.get_hidden_parameters()
    rng = np.random.default_rng(seed)
    for k in (0, 1):
        for name in _leaves(inner, k):
            params[name] = rng.uniform(-0.3, 0.3, (3, 4))
    if not stale:
        # the intermediates the new leaves define, computed by a second tile from the leaves
        twin = _nested_tile(outer, inner, seed)
        twin.set_hidden_parameters({n: v for n, v in params.items()
                                    if n not in ("hidden_weights_0", "hidden_weights_1")})
        fresh = twin.get_hidden_parameters()
        params["hidden_weights_0"] = fresh["hidden_weights_0"]
        params["hidden_weights_1"] = fresh["hidden_weights_1"]
    tile.set_hidden_parameters(params)
    got = tile.get_hidden_parameters()
    for k in (0, 1):
        for name in _leaves(inner, k):
            np.testing.assert_allclose(got[name], np.clip(params[name], -1, 1), atol=1e-12)


@pytest.mark.parametrize("outer", sorted(OUTER))
@pytest.mark.parametrize("inner", sorted(INNER))
def test_intermediate_of_another_value_raises_naming_the_leaves(outer, inner):
    tile = _nested_tile(outer, inner)
    before = tile.state_dict()
    params = tile.get_hidden_parameters()
    leaves = _leaves(inner, 1)
    params[leaves[0]] = np.full((3, 4), 0.25)
    params["hidden_weights_1"] = params["hidden_weights_1"] + 0.1   # neither stale nor derived
    with pytest.raises(ValueError) as err:
        tile.set_hidden_parameters(params)
    message = str(err.value)
    assert "hidden_weights_1" in message and all(name in message for name in leaves)
    after = tile.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(np.asarray(after[key]), np.asarray(before[key]), err_msg=key)


def test_setting_leaves_alone_still_works_three_levels_deep():
    device = C.TransferCompound([C.VectorUnitCell([C.ReferenceUnitCell([_cs(), _cs()]), _cs()]),
                                 _cs()], gamma=0.5)
    tile = AnalogTile(2, 3, C.UnitCellRPUConfig(device=device), seed=1, dtype=np.float64)
    names = tile.get_hidden_parameter_names()
    assert "hidden_weights_0_0_0" in names and "hidden_weights_0_0" in names
    tile.set_hidden_parameters({"hidden_weights_0_0_0": np.full((2, 3), 0.4),
                                "hidden_weights_1_0_0": np.full((2, 3), 0.1),
                                "hidden_weights_1_0": np.full((2, 3), 0.2),
                                "hidden_weights_1": np.full((2, 3), -0.3)})
    h = tile.get_hidden_parameters()
    # vector cell of (reference 0.4 - 0.1, device 0.2); an empty gamma_vec averages
    np.testing.assert_allclose(h["hidden_weights_0_0"], 0.3, atol=1e-12)
    np.testing.assert_allclose(h["hidden_weights_0"], 0.25, atol=1e-12)
    np.testing.assert_allclose(tile.get_weights(), 0.5 * 0.25 - 0.3, atol=1e-12)
    # a stale copy of the deepest intermediate is accepted; a wrong one names its leaves
    params = tile.get_hidden_parameters()
    params["hidden_weights_0_0_0"] = np.full((2, 3), 0.6)
    tile.set_hidden_parameters(params)
    params = tile.get_hidden_parameters()
    params["hidden_weights_0_0"] = params["hidden_weights_0_0"] + 1.0
    with pytest.raises(ValueError, match="hidden_weights_0_0_0.*hidden_weights_1_0_0"):
        tile.set_hidden_parameters(params)


# -- reset_columns start index (issue 13, item 4) -------------------------------------------------
@pytest.mark.parametrize("start", [-1, 4, 10])
def test_reset_columns_start_outside_the_tile_raises(start):
    tile = AnalogTile(3, 4, C.SingleRPUConfig(device=_cs()), seed=0)
    before = tile.get_weights()
    with pytest.raises(ValueError, match=r"start_column_idx must be in \[0, 4\)"):
        tile.reset_columns(start, 1)
    np.testing.assert_array_equal(tile.get_weights(), before)


def test_reset_columns_num_past_the_end_wraps():
    dev = C.ConstantStepDevice(dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, reset=0.05,
                               reset_std=0.0, reset_dtod=0.0)
    tile = AnalogTile(2, 5, C.SingleRPUConfig(device=dev), seed=0, dtype=np.float64)
    tile.set_weights(np.full((2, 5), 0.3))
    tile.reset_columns(3, 3)          # columns 3, 4, 0
    np.testing.assert_allclose(tile.get_weights(),
                               np.array([[0.05, 0.3, 0.3, 0.05, 0.05]] * 2), atol=1e-12)
