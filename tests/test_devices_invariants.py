"""Physical invariants of every device model, as one hypothesis suite.

``DEVICE_MODELS`` lists the models the shared invariants run over; a new model (built-in or
custom, issue 9) joins the suite by adding a :class:`ModelCase`. The model-specific properties
(soft-bounds linearity, symmetry points, piecewise interpolation) follow the shared ones.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpusim import AnalogTile
from rpusim.kernels import update as engine
from rpusim.configs import (ConstantStepDevice, ExpStepDevice, LinearStepDevice,
                            LookupTableDevice, PiecewiseStepDevice, PowStepDevice,
                            PowStepReferenceDevice, PulseType, SingleRPUConfig,
                            SoftBoundsDevice, SoftBoundsPmaxDevice, SoftBoundsReferenceDevice,
                            UpdateParameters)

# custom models (issue 9): the example's SigmoidDevice and a twin of ConstantStep, both defined
# outside rpusim through rpusim.devices.define_device
from test_custom_devices import TwinConstantStepDevice, load_example

SINGLE = UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
                          update_management=False, update_bl_management=False)
SHAPE = (4, 5)


@dataclass(frozen=True)
class ModelCase:
    """One device model in the invariant suite.

    Attributes
    ----------
    name : str
        Test id.
    make : callable
        ``make(**fields)`` returns a device config; ``fields`` override its defaults.
    reference : bool
        The stored weight is a conductance minus a per-element ``reference`` hidden parameter.
    """

    name: str
    make: Callable
    reference: bool = False


def with_defaults(cls, **defaults) -> Callable:
    """A factory of ``cls`` configs with other defaults (overridable by the caller)."""
    return lambda **fields: cls(**{**defaults, **fields})


DEVICE_MODELS = [
    ModelCase("constant_step", ConstantStepDevice),
    ModelCase("linear_step", with_defaults(LinearStepDevice, gamma_up=0.3, gamma_down=0.2)),
    ModelCase("soft_bounds", SoftBoundsDevice),
    ModelCase("soft_bounds_pmax", with_defaults(SoftBoundsPmaxDevice, p_max=300, alpha=0.005)),
    ModelCase("soft_bounds_reference", with_defaults(SoftBoundsReferenceDevice,
                                                     slope_up_dtod=0.1), reference=True),
    ModelCase("exp_step", ExpStepDevice),
    ModelCase("pow_step", with_defaults(PowStepDevice, pow_gamma=1.5, pow_up_down=0.1)),
    ModelCase("pow_step_reference", PowStepReferenceDevice, reference=True),
    ModelCase("piecewise_step", with_defaults(PiecewiseStepDevice, piecewise_up=[1.4, 1.0, 0.5],
                                              piecewise_down=[0.5, 1.0, 1.4])),
    ModelCase("lookup_table", LookupTableDevice),
    ModelCase("lookup_table_asymmetric", with_defaults(
        LookupTableDevice, up_curve=[-0.5, -0.45, -0.3, 0.0, 0.3, 0.45, 0.5],
        down_curve=[0.5, 0.2, -0.1, -0.3, -0.4, -0.45])),
    ModelCase("custom_sigmoid", load_example().SigmoidDevice),
    ModelCase("custom_constant_step_twin", TwinConstantStepDevice),
]
IDS = [case.name for case in DEVICE_MODELS]


def tile_of(case: ModelCase, seed: int, update: UpdateParameters | None = None, **fields):
    config = SingleRPUConfig(device=case.make(**fields), update=update or UpdateParameters())
    return AnalogTile(*SHAPE, config, seed=seed)


def stored(tile, case: ModelCase) -> np.ndarray:
    """The device state the bounds apply to: conductance, persistent weight or weight."""
    h = tile.get_hidden_parameters()
    w = h.get("persistent_weights", tile.get_weights()).astype(np.float64)
    return w + h["reference"] if case.reference else w


def writes_noise(case: ModelCase) -> bool:
    return any(f.name == "write_noise_std" for f in dataclasses.fields(case.make()))


seeds = st.integers(0, 2**31 - 1)
signs = st.lists(st.sampled_from([-1.0, 1.0]), min_size=SHAPE[1], max_size=SHAPE[1])


@pytest.mark.parametrize("case", DEVICE_MODELS, ids=IDS)
@given(seed=seeds, lrs=st.lists(st.floats(0.001, 0.5), min_size=1, max_size=4),
       wn=st.booleans())
def test_bounds_never_exceeded(case, seed, lrs, wn):
    """Stochastic updates of any size, with ctoc noise and write noise: the device state stays
    inside each element's ``[min_bound, max_bound]``."""
    extra = {"write_noise_std": 3.0} if wn and writes_noise(case) else {}
    tile = tile_of(case, seed, **extra)
    rng = np.random.default_rng(seed)
    tile.set_weights(rng.uniform(-1, 1, SHAPE))
    for lr in lrs:
        tile.update(rng.normal(size=(3, SHAPE[1])), rng.normal(size=(3, SHAPE[0])), lr=lr)
        h = tile.get_hidden_parameters()
        w = stored(tile, case)
        assert np.all(w <= h["max_bound"] + 1e-6) and np.all(w >= h["min_bound"] - 1e-6)


_KIND_CASES = [(case, PulseType.STOCHASTIC_COMPRESSED) for case in DEVICE_MODELS] + [
    (case, kind) for case in DEVICE_MODELS[:3]
    for kind in (PulseType.STOCHASTIC, PulseType.DETERMINISTIC_IMPLICIT, PulseType.MEAN_COUNT)]


@pytest.mark.parametrize("case,kind", _KIND_CASES,
                         ids=[f"{c.name}-{k.name}" for c, k in _KIND_CASES])
@settings(max_examples=8)
@given(seed=seeds, wn=st.booleans(), count=st.booleans(), batch=st.integers(1, 6),
       lr=st.floats(0.01, 0.5))
def test_serial_and_parallel_kernels_agree(case, kind, seed, wn, count, batch, lr):
    """The small-update path (one serial composite kernel, no reference counting) and the
    parallel kernels of large updates give the same bits: same streams, same pulse order."""
    extra = {"write_noise_std": 2.0} if wn and writes_noise(case) else {}
    update = UpdateParameters(pulse_type=kind, desired_bl=int(seed % 90) + 1)
    results = []
    for parallel_from in (1 << 62, 0):  # all serial, then all parallel
        tile = tile_of(case, seed, update, count_pulses=count, **extra)
        rng = np.random.default_rng(seed)
        with mock.patch.object(engine, "_PARALLEL_WORK", parallel_from):
            for _ in range(3):
                tile.update(rng.normal(size=(batch, SHAPE[1])),
                            rng.normal(size=(batch, SHAPE[0])), lr=lr)
        results.append(tile.state_dict())
    serial, parallel = results
    for name, value in serial.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            np.testing.assert_array_equal(parallel[name], value, err_msg=name)


@pytest.mark.parametrize("case", DEVICE_MODELS, ids=IDS)
@given(seed=seeds, rounds=st.lists(signs, min_size=1, max_size=6))
def test_up_pulses_never_lower_and_down_pulses_never_raise(case, seed, rounds):
    """Without ctoc noise (which can flip a step's sign), each pulse moves the right way."""
    tile = tile_of(case, seed, SINGLE, dw_min_std=0.0)
    rng = np.random.default_rng(seed)
    tile.set_weights(rng.uniform(-0.5, 0.5, SHAPE))
    for x in rounds:
        d = rng.choice([-1.0, 1.0], SHAPE[0])
        before = tile.get_weights().astype(np.float64)
        tile.update(np.array(x), d, lr=1.0)
        change = tile.get_weights() - before
        up = np.outer(d, x) < 0
        assert np.all(change[up] >= 0) and np.all(change[~up] <= 0)


@pytest.mark.parametrize("case", DEVICE_MODELS, ids=IDS)
@given(seed=seeds, scale=st.floats(0.5, 2.0), wn=st.booleans())
def test_hidden_parameters_round_trip(case, seed, scale, wn):
    """get -> set -> get returns what was set; every parameter is settable."""
    extra = {"write_noise_std": 1.0} if wn and writes_noise(case) else {}
    tile = tile_of(case, seed, **extra)
    h = tile.get_hidden_parameters()
    new = {k: (v * np.float32(scale) if k in ("max_bound", "dwmin_up", "dwmin_down") else v)
           for k, v in h.items()}
    tile.set_hidden_parameters(new)
    got = tile.get_hidden_parameters()
    assert list(got) == list(h)
    for name, value in new.items():
        if name == "persistent_weights":
            # re-clipped to the (possibly lower) new bounds
            value = np.clip(value, new["min_bound"], new["max_bound"])
        np.testing.assert_array_equal(got[name], value.astype(np.float32), err_msg=name)


@pytest.mark.parametrize("case", DEVICE_MODELS, ids=IDS)
@given(seed=seeds)
def test_state_dict_round_trip_continues_identically(case, seed):
    tile = tile_of(case, seed)
    x = np.random.default_rng(seed).normal(size=(2, SHAPE[1]))
    d = np.random.default_rng(seed + 1).normal(size=(2, SHAPE[0]))
    copy = AnalogTile.from_state_dict(tile.state_dict())
    for t in (tile, copy):
        t.update(x, d, lr=0.2)
    np.testing.assert_array_equal(copy.get_weights(), tile.get_weights())
    for name, value in tile.get_hidden_parameters().items():
        np.testing.assert_array_equal(copy.get_hidden_parameters()[name], value)


@pytest.mark.parametrize("case", DEVICE_MODELS, ids=IDS)
@given(seed=seeds, reset=st.floats(-0.5, 0.5), reset_dtod=st.floats(0.0, 0.1),
       lifetime=st.floats(1.5, 10.0))
def test_decay_converges_to_the_reset_bias(case, seed, reset, reset_dtod, lifetime):
    """Decay goes to each element's reset bias (clipped to its bounds), also when negative."""
    tile = tile_of(case, seed, reset=reset, reset_dtod=reset_dtod, lifetime=lifetime)
    tile.set_weights(np.random.default_rng(seed).uniform(-0.6, 0.6, SHAPE))
    h = tile.get_hidden_parameters()
    n = int(math.ceil(math.log(1e-7) / math.log(1 - 1 / lifetime))) + 5
    for _ in range(n):
        tile.decay_weights()
    expected = np.clip(h["reset_bias"], h["min_bound"], h["max_bound"])
    # stored coordinates, also for reference devices (aihwkit decays the stored weight)
    np.testing.assert_allclose(tile.get_weights(), expected, atol=1e-6)


# -- model-specific properties ----------------------------------------------------------------
def step_at(tile, w, up: bool) -> np.ndarray:
    """The change of one noise-free pulse on every element from weights ``w``."""
    tile.set_weights(w)
    before = tile.get_weights().astype(np.float64)
    tile.update(np.ones(SHAPE[1]), np.full(SHAPE[0], -1.0 if up else 1.0), lr=1.0)
    return tile.get_weights() - before


@pytest.mark.parametrize("make", [SoftBoundsDevice, SoftBoundsPmaxDevice],
                         ids=["soft_bounds", "soft_bounds_pmax"])
@given(seed=seeds, w0=st.floats(-0.4, 0.0), gaps=st.tuples(st.floats(0.1, 0.2),
                                                           st.floats(0.1, 0.2)))
def test_soft_bounds_step_shrinks_linearly_to_zero_at_the_bound(make, seed, w0, gaps):
    dev = make(dw_min_std=0.0, w_max_dtod=0.1, w_min_dtod=0.1)
    tile = AnalogTile(*SHAPE, SingleRPUConfig(device=dev, update=SINGLE), seed=seed)
    h = {k: v.astype(np.float64) for k, v in tile.get_hidden_parameters().items()}
    ws = [w0, w0 + gaps[0], w0 + gaps[0] + gaps[1]]
    inside = (ws[0] > h["min_bound"] + 0.01) & (ws[2] < h["max_bound"] - 0.01)
    for up, bound in ((True, h["max_bound"]), (False, h["min_bound"])):
        steps = [step_at(tile, np.full(SHAPE, w), up) for w in ws]
        slope = (steps[1] - steps[0]) / (ws[1] - ws[0])
        # steps are differences of float32 weights near 0.5: each carries up to ~6e-8 of
        # rounding, which the extrapolation can double
        np.testing.assert_allclose((steps[0] + slope * (ws[2] - ws[0]))[inside],
                                   steps[2][inside], rtol=1e-3, atol=2e-7)
        # extrapolated to the element's bound the step vanishes
        at_bound = steps[0] + slope * (bound - ws[0])
        np.testing.assert_allclose(at_bound[inside], 0.0, atol=1e-2 * np.abs(steps[0]).max())


# (model, largest |up_down|, dw_min): the steps at the discrete fixed point of up/down pairs
# differ by about (step slope) x (step), so the steps are kept small where the slope is not
SYMMETRIC = {
    "soft_bounds": (SoftBoundsDevice, 0.3, 0.003),
    "pow_step": (lambda **kw: PowStepDevice(pow_gamma=1.5, **kw), 0.3, 0.003),
    # the exponential steps cross near a bound for a larger asymmetry
    "exp_step": (ExpStepDevice, 0.1, 0.01),
}


@pytest.mark.parametrize("name", list(SYMMETRIC))
@given(seed=seeds, asym=st.floats(-1.0, 1.0))
def test_symmetry_point_is_where_up_and_down_steps_are_equal(name, seed, asym):
    """Alternating up/down pulses converge to the symmetry point; there the two steps agree."""
    make, max_up_down, dw_min = SYMMETRIC[name]
    # moderate spreads: an element with a tiny step would need many more pairs to converge
    dev = make(dw_min=dw_min, dw_min_std=0.0, dw_min_dtod=0.1, w_max_dtod=0.1, w_min_dtod=0.1,
               up_down=asym * max_up_down)
    tile = AnalogTile(*SHAPE, SingleRPUConfig(device=dev, update=SINGLE), seed=seed)
    tile.set_weights(np.random.default_rng(seed).uniform(-0.5, 0.5, SHAPE))
    pairs = 3000
    d = np.tile([[-1.0], [1.0]], (pairs, SHAPE[0]))
    tile.update(np.ones((2 * pairs, SHAPE[1])), d, lr=1.0)
    w_star = tile.get_weights()
    up = step_at(tile, w_star, True)
    down = step_at(tile, w_star, False)
    np.testing.assert_allclose(up, -down, rtol=0.03)
    if name == "soft_bounds":
        h = {k: v.astype(np.float64) for k, v in tile.get_hidden_parameters().items()}
        du, dd = h["dwmin_up"], h["dwmin_down"]
        sp = (du - dd) / (du / h["max_bound"] - dd / h["min_bound"])
        np.testing.assert_allclose(w_star, sp, atol=0.02)


@given(seed=seeds, nodes=st.lists(st.tuples(st.floats(0.1, 2.0), st.floats(0.1, 2.0)),
                                  min_size=2, max_size=8))
def test_noise_free_piecewise_step_interpolates_its_table(seed, nodes):
    up_nodes = [u for u, _ in nodes]
    down_nodes = [d for _, d in nodes]
    dev = PiecewiseStepDevice(dw_min_std=0.0, piecewise_up=up_nodes, piecewise_down=down_nodes)
    tile = AnalogTile(*SHAPE, SingleRPUConfig(device=dev, update=SINGLE), seed=seed)
    h = {k: v.astype(np.float64) for k, v in tile.get_hidden_parameters().items()}
    n = len(nodes) - 1
    span = h["max_bound"] - h["min_bound"]
    # a point a quarter into section k, away from the bounds so that no step is clipped
    k = np.random.default_rng(seed).integers(0, n, SHAPE)
    t = 0.25 if n > 1 else 0.5
    w = h["min_bound"] + (k + t) / n * span
    for up, values, dwmin in ((True, up_nodes, h["dwmin_up"]),
                              (False, down_nodes, h["dwmin_down"])):
        v = np.asarray(values)
        expected = dwmin * ((1 - t) * v[k] + t * v[k + 1]) * (1 if up else -1)
        np.testing.assert_allclose(step_at(tile, w, up), expected, rtol=2e-3, atol=1e-8)
