"""Device zoo: every pulsed device model against a slow NumPy reference of its step rule, plus
the aihwkit behaviours of the device layer (devices spec §3-§10).

The references below are written from the spec formulas (not from the kernels), in float64
from the tile's own hidden parameters; the tile computes in float32, hence the few-ulp
tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rpusim import AnalogTile
from rpusim.configs import (ConstantStepDevice, ExpStepDevice, LinearStepDevice,
                            PiecewiseStepDevice, PowStepDevice, PowStepReferenceDevice, PulseType,
                            SingleRPUConfig, SoftBoundsDevice, SoftBoundsPmaxDevice,
                            SoftBoundsReferenceDevice, UpdateParameters)

SINGLE = dict(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
              update_management=False, update_bl_management=False)
QUIET = dict(dw_min_dtod=0.0, dw_min_std=0.0, w_max_dtod=0.0, w_min_dtod=0.0, up_down_dtod=0.0)


def make_tile(device, shape=(6, 8), seed=0, dtype=np.float32, **update):
    upd = UpdateParameters(**{**SINGLE, **update})
    return AnalogTile(*shape, SingleRPUConfig(device=device, update=upd), seed=seed,
                      dtype=dtype)


# -- slow references, from the spec -----------------------------------------------------------
def granularity(dev) -> float:
    """Weight granularity of devices spec §6."""
    if isinstance(dev, SoftBoundsPmaxDevice):
        b = (dev.range_max - dev.range_min) / (1 - math.exp(-dev.p_max * dev.alpha))
        return b * dev.alpha
    if isinstance(dev, ExpStepDevice):
        dw = (1 - max(dev.up_down, 0)) * dev.dw_min * max(
            1 - dev.A_down * math.exp(-dev.gamma_down * dev.b), 0)
        return dw if dw > 0 else dev.dw_min
    if isinstance(dev, (PowStepDevice, PowStepReferenceDevice)):
        return dev.dw_min * 0.5 ** dev.pow_gamma
    if isinstance(dev, PiecewiseStepDevice):
        return dev.dw_min * dev.piecewise_up[len(dev.piecewise_up) // 2]
    return dev.dw_min


def _pow(base, gamma):
    """C ``pow``: NaN for a negative base with a fractional exponent."""
    with np.errstate(invalid="ignore"):
        return np.power(base, gamma)


def _clip_nan_to_min(c, lo, hi):
    """aihwkit's ``MAX`` then ``MIN`` macros: a NaN ends at the lower bound."""
    c = np.where(c > lo, c, lo)
    return np.where(c < hi, c, hi)


def naive_step(dev, h: dict, w: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The noise-free deterministic step of one pulse per element (signed change, before clip).

    ``h`` holds the hidden parameters as float64, ``up`` is True for up pulses. For reference
    devices the change is that of the conductance ``w + reference``.
    """
    lo, hi = h["min_bound"], h["max_bound"]
    du, dd = h["dwmin_up"], h["dwmin_down"]
    if isinstance(dev, (LinearStepDevice, SoftBoundsDevice)):
        if isinstance(dev, SoftBoundsDevice) and not dev.reverse_up and not dev.reverse_down:
            # spec §5.3 form, independent of the stored slopes
            return np.where(up, du * (1 - w / hi), -dd * (1 - w / lo))
        return np.where(up, h["slope_up"] * w + du, -(h["slope_down"] * w + dd))
    if isinstance(dev, SoftBoundsReferenceDevice):
        c = w + h["reference"]
        a_up = np.where(hi > 0, c / np.where(hi > 0, hi, 1), 0)
        a_down = np.where(lo < 0, c / np.where(lo < 0, lo, -1), 0)
        return np.where(up, du * (1 - a_up), -dd * (1 - a_down))
    if isinstance(dev, ExpStepDevice):
        z = 2 * dev.a * w / (hi - lo) + dev.b
        y_up = np.maximum(1 - dev.A_up * np.exp(dev.gamma_up * z), 0)
        y_down = np.maximum(1 - dev.A_down * np.exp(-dev.gamma_down * z), 0)
        return np.where(up, y_up * du, -y_down * dd)
    if isinstance(dev, (PowStepDevice, PowStepReferenceDevice)):
        c = w + h.get("reference", 0.0)
        r = hi - lo
        return np.where(up, du * _pow((hi - c) / r, h["gamma_up"]),
                        -dd * _pow((c - lo) / r, h["gamma_down"]))
    if isinstance(dev, PiecewiseStepDevice):
        vu = np.asarray(dev.piecewise_up, float)
        vd = np.asarray(dev.piecewise_down, float)
        n = len(vu) - 1
        if n == 0:
            return np.where(up, vu[0] * du, -vd[0] * dd)
        ts = np.maximum((w - lo) / (hi - lo) * n, 0)
        k = np.minimum(np.floor(ts), n - 1).astype(int)
        t = np.minimum(ts - k, 1)
        return np.where(up, du * ((1 - t) * vu[k] + t * vu[k + 1]),
                        -dd * ((1 - t) * vd[k] + t * vd[k + 1]))
    assert isinstance(dev, ConstantStepDevice)
    return np.where(up, du, -dd)


def naive_pulse(dev, h: dict, w: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Stored weight after one noise-free pulse per element: step, clip (spec §4)."""
    lo, hi = h["min_bound"], h["max_bound"]
    ref = h.get("reference", 0.0)
    c = w + ref + naive_step(dev, h, w, up)
    if isinstance(dev, (ExpStepDevice, PowStepDevice, PowStepReferenceDevice)):
        # pulses on an element without range are ignored entirely
        c = np.where(hi - lo > 0, c, w + ref)
    c = _clip_nan_to_min(c, lo, hi)
    return c - ref


def hidden64(tile) -> dict:
    return {k: v.astype(np.float64) for k, v in tile.get_hidden_parameters().items()}


def one_pulse_each(tile, dev, rng):
    """One pulse on every element, random direction: x, d = +-1 and lr = granularity."""
    x = rng.choice([-1.0, 1.0], tile.in_size)
    d = rng.choice([-1.0, 1.0], tile.out_size)
    tile.update(x, d, lr=granularity(dev))
    return np.outer(d, x) < 0   # sign(x) sign(d) > 0 is a down pulse


# -- the step rule of every model -------------------------------------------------------------
STEP_CASES = {
    "constant": ConstantStepDevice(dw_min_std=0.0),
    "linear": LinearStepDevice(dw_min_std=0.0, gamma_up=0.4, gamma_down=0.7),
    "linear_own_bounds": LinearStepDevice(dw_min_std=0.0, gamma_up=0.4, gamma_down=0.7,
                                          mean_bound_reference=False),
    "linear_additive_updown": LinearStepDevice(dw_min_std=0.0, mult_noise=False, up_down=0.2,
                                               gamma_up=0.3),
    "linear_increasing": LinearStepDevice(dw_min_std=0.0, allow_increasing=True,
                                          gamma_up=-0.3, gamma_down=-0.2),
    "linear_reverse": LinearStepDevice(dw_min_std=0.0, gamma_up=0.5, gamma_down=0.5,
                                       reverse_up=True, reverse_down=True),
    "soft_bounds": SoftBoundsDevice(dw_min_std=0.0, dw_min=0.01),
    "soft_bounds_additive_updown": SoftBoundsDevice(dw_min_std=0.0, mult_noise=False,
                                                    up_down=-0.3),
    "soft_bounds_reverse_up": SoftBoundsDevice(dw_min_std=0.0, reverse_up=True),
    "soft_bounds_pmax": SoftBoundsPmaxDevice(dw_min_std=0.0, p_max=100, alpha=0.01),
    "soft_bounds_reference": SoftBoundsReferenceDevice(dw_min_std=0.0, reference_std=0.05,
                                                       slope_up_dtod=0.1, slope_down_dtod=0.1),
    "soft_bounds_reference_sp": SoftBoundsReferenceDevice(dw_min_std=0.0, up_down=0.3,
                                                          mult_noise=True,
                                                          subtract_symmetry_point=True),
    "exp_step": ExpStepDevice(dw_min_std=0.0),
    "exp_step_shape": ExpStepDevice(dw_min_std=0.0, A_up=0.1, A_down=0.2, gamma_up=3.0,
                                    gamma_down=4.0, a=0.5, b=0.1, up_down=0.2),
    "pow_step": PowStepDevice(dw_min_std=0.0, pow_gamma=2.5, pow_up_down=0.2,
                              pow_up_down_dtod=0.05),
    "pow_step_half": PowStepDevice(dw_min_std=0.0, pow_gamma=0.5),
    "pow_step_reference": PowStepReferenceDevice(dw_min_std=0.0, pow_gamma=1.5,
                                                 reference_std=0.02),
    "pow_step_reference_sp": PowStepReferenceDevice(dw_min_std=0.0, pow_up_down=0.3,
                                                    subtract_symmetry_point=True),
    "piecewise": PiecewiseStepDevice(dw_min_std=0.0, piecewise_up=[1.5, 1.0, 0.6, 0.3, 0.1],
                                     piecewise_down=[0.1, 0.4, 1.0, 1.2, 1.6]),
    "piecewise_single_node": PiecewiseStepDevice(dw_min_std=0.0, piecewise_up=[0.7],
                                                 piecewise_down=[1.3]),
}


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_single_pulses_follow_the_step_rule(case):
    """40 rounds of one pulse per element (dtod on, ctoc off) against the NumPy reference."""
    dev = STEP_CASES[case]
    tile = make_tile(dev, seed=3)
    rng = np.random.default_rng(5)
    tile.set_weights(rng.uniform(-0.5, 0.5, (6, 8)))
    h = hidden64(tile)
    for _ in range(40):
        w = tile.get_weights().astype(np.float64)
        up = one_pulse_each(tile, dev, rng)
        expected = naive_pulse(dev, h, w, up)
        np.testing.assert_allclose(tile.get_weights(), expected, rtol=0, atol=2e-6)


def test_soft_bounds_is_linear_step_with_own_bounds():
    tile = make_tile(SoftBoundsDevice(), seed=1)
    h = tile.get_hidden_parameters()
    np.testing.assert_allclose(h["slope_up"], -h["dwmin_up"] / h["max_bound"], rtol=1e-6)
    np.testing.assert_allclose(h["slope_down"], -h["dwmin_down"] / h["min_bound"], rtol=1e-6)


def test_soft_bounds_pmax_derives_its_soft_bounds():
    """Spec §5.4: defaults give w_max 4.08299, dwmin_up 0.00254149, dwmin_down 0.001 (39%)."""
    tile = make_tile(SoftBoundsPmaxDevice(**QUIET), shape=(2, 3))
    h = tile.get_hidden_parameters()
    np.testing.assert_allclose(h["max_bound"], 4.08299, rtol=1e-5)
    np.testing.assert_allclose(h["min_bound"], -1.0)
    np.testing.assert_allclose(h["dwmin_up"], 0.00254149, rtol=1e-5)
    np.testing.assert_allclose(h["dwmin_down"], 0.00254149 * (1 - 0.606531), rtol=1e-5)
    # the user's values for the derived fields are ignored
    other = make_tile(SoftBoundsPmaxDevice(**QUIET, w_max=0.1, dw_min=0.5), shape=(2, 3))
    np.testing.assert_array_equal(other.get_hidden_parameters()["max_bound"], h["max_bound"])


def test_soft_bounds_pmax_up_response_is_the_soft_bounds_recursion():
    """Noise-free up pulses from range_min: the distance to max_bound shrinks by the factor
    ``1 - dw_min / w_max`` per pulse, with the derived ``dw_min = B alpha`` and
    ``w_max = range_min + B`` (aihwkit's docstring curve holds only for ``range_min = 0``)."""
    dev = SoftBoundsPmaxDevice(**QUIET, p_max=50, alpha=0.02, range_min=-0.5, range_max=0.7)
    tile = make_tile(dev, shape=(1, 1))
    tile.set_weights([[-0.5]])
    for _ in range(50):
        tile.update([1.0], [-1.0], lr=1.0)
    b = (0.7 + 0.5) / (1 - math.exp(-50 * 0.02))
    w_max = -0.5 + b
    expected = w_max - b * (1 - b * 0.02 / w_max) ** 50
    np.testing.assert_allclose(tile.get_weights()[0, 0], expected, rtol=1e-5)
    zero = SoftBoundsPmaxDevice(**QUIET, p_max=50, alpha=0.02, range_min=0.0, range_max=0.7)
    tile = make_tile(zero, shape=(1, 1))
    tile.set_weights([[0.0]])
    for _ in range(50):
        tile.update([1.0], [-1.0], lr=1.0)
    np.testing.assert_allclose(tile.get_weights()[0, 0], 0.7 * (1 - 0.98 ** 50) /
                               (1 - math.exp(-1.0)), rtol=1e-5)


# -- granularity (spec §6) via DETERMINISTIC_IMPLICIT pulse counts ----------------------------
GRANULARITY_CASES = {
    "constant": ConstantStepDevice(**QUIET, count_pulses=True),
    "pow_step": PowStepDevice(**QUIET, pow_gamma=2.0, count_pulses=True),
    "pow_step_reference": PowStepReferenceDevice(**QUIET, pow_gamma=2.0, count_pulses=True),
    "piecewise": PiecewiseStepDevice(**QUIET, piecewise_up=[1, 2, 3, 4],
                                     piecewise_down=[1, 1, 1, 1], count_pulses=True),
    # aihwkit's typo: the down step alone sets g (0.99 dw_min, not (0.5 + 0.99)/2 dw_min)
    "exp_step_typo": ExpStepDevice(**QUIET, A_up=0.5, A_down=0.01, b=0.0, count_pulses=True),
    "exp_step_typo_updown": ExpStepDevice(**QUIET, A_up=0.5, A_down=0.01, b=0.0, up_down=0.4,
                                          count_pulses=True),
}


@pytest.mark.parametrize("case", list(GRANULARITY_CASES))
def test_granularity_sets_the_pulse_count(case):
    dev = GRANULARITY_CASES[case]
    tile = make_tile(dev, shape=(2, 3), desired_bl=10)
    g = {"constant": 0.001, "pow_step": 0.00025, "pow_step_reference": 0.00025,
         "piecewise": 0.003, "exp_step_typo": 0.00099, "exp_step_typo_updown": 0.6 * 0.00099}
    tile.update(np.ones(3), np.ones(2), lr=3 * g[case])
    np.testing.assert_array_equal(tile.get_pulse_counters(), 3)


# -- hidden parameters (spec §8, §9) ----------------------------------------------------------
COMMON = ["max_bound", "min_bound", "dwmin_up", "dwmin_down", "decay_scales",
          "diffusion_rates", "reset_bias", "drift_nu"]
NAMES = [
    (ConstantStepDevice(), []),
    (LinearStepDevice(), ["slope_up", "slope_down"]),
    (LinearStepDevice(write_noise_std=1.0), ["persistent_weights", "slope_up", "slope_down"]),
    (SoftBoundsDevice(), ["slope_up", "slope_down"]),
    (SoftBoundsPmaxDevice(write_noise_std=1.0), ["persistent_weights", "slope_up", "slope_down"]),
    (SoftBoundsReferenceDevice(write_noise_std=1.0), ["persistent_weights", "reference"]),
    (ExpStepDevice(), []),
    (ExpStepDevice(write_noise_std=1.0), ["persistent_weights"]),
    (PowStepDevice(), ["gamma_up", "gamma_down"]),
    (PowStepReferenceDevice(), ["gamma_up", "gamma_down", "reference"]),
    (PiecewiseStepDevice(write_noise_std=1.0), ["persistent_weights"]),
]


@pytest.mark.parametrize("dev,extras", NAMES, ids=[f"{type(d).__name__}-{i}"
                                                   for i, (d, _) in enumerate(NAMES)])
def test_hidden_parameter_names_and_order(dev, extras):
    tile = make_tile(dev, shape=(2, 3))
    assert tile.get_hidden_parameter_names() == COMMON + extras
    assert list(tile.get_hidden_parameters()) == COMMON + extras


@pytest.mark.parametrize("name,value,expected", [
    ("dwmin_up", 0.003, 0.103),      # a bigger step
    ("max_bound", 0.1005, 0.1005),   # a step that now hits the new bound
    ("slope_up", -0.005, 0.1005),    # the step shrinks by slope_up * w
])
def test_set_hidden_parameters_changes_the_next_pulse(name, value, expected):
    dev = LinearStepDevice(**QUIET, gamma_up_dtod=0.0, gamma_down_dtod=0.0)
    tile = make_tile(dev, shape=(2, 3))
    tile.set_weights(np.full((2, 3), 0.1))
    tile.set_hidden_parameters({name: np.full((2, 3), value)})
    tile.update(np.ones(3), -np.ones(2), lr=1.0)    # BL = 1: exactly one up pulse
    np.testing.assert_allclose(tile.get_weights(), expected, rtol=1e-6)


def test_set_hidden_parameters_reclips_to_new_bounds():
    tile = make_tile(PowStepDevice(**QUIET), shape=(2, 3))
    tile.set_weights(np.full((2, 3), 0.5))
    tile.set_hidden_parameters({"max_bound": np.full((2, 3), 0.2)})
    np.testing.assert_array_equal(tile.get_weights(), np.float32(0.2))


@pytest.mark.parametrize("dtod,new_step,reestimated,lr", [
    (0.3, 0.015, False, 0.04), (0.3, 0.02, True, 0.04), (0.0, 0.0100001, True, 0.0450002),
    (0.0, 0.01, False, 0.0450002)])
def test_dw_min_reestimation_on_set(dtod, new_step, reestimated, lr):
    """Spec §9.2: dw_min := mean step when it deviates by more than 2 dw_min_dtod, seen through
    the pulse count rint(lr / g) of DETERMINISTIC_IMPLICIT (4.50002 -> 5, 4.49997 -> 4)."""
    dev = ConstantStepDevice(**{**QUIET, "dw_min_dtod": dtod}, dw_min=0.01, count_pulses=True)
    tile = make_tile(dev, shape=(2, 3), desired_bl=10)
    tile.set_hidden_parameters({"dwmin_up": np.full((2, 3), new_step),
                                "dwmin_down": np.full((2, 3), new_step)})
    tile.update(np.ones(3), np.ones(2), lr=lr)
    g = new_step if reestimated else 0.01
    np.testing.assert_array_equal(tile.get_pulse_counters(), round(lr / g))


def test_pulse_counters_count_every_pulse():
    tile = make_tile(SoftBoundsDevice(count_pulses=True), shape=(2, 3), desired_bl=10)
    g = granularity(SoftBoundsDevice())
    tile.update([1.0, -0.5, 0.0], [1.0, 0.3], lr=4 * g)
    tile.update([1.0, 1.0, 1.0], [1.0, 1.0], lr=2 * g)
    expected = np.rint(4 * np.abs(np.outer([1.0, 0.3], [1.0, -0.5, 0.0]))) + 2
    np.testing.assert_array_equal(tile.get_pulse_counters(), expected)
    with pytest.raises(ValueError, match="count_pulses"):
        make_tile(SoftBoundsDevice(), shape=(2, 3)).get_pulse_counters()


# -- write noise (spec §4.4, §9) --------------------------------------------------------------
def wn_tile(**kw):
    dev = SoftBoundsDevice(**{**QUIET, "dw_min": 0.01, "write_noise_std": 2.0, **kw})
    return make_tile(dev, shape=(100, 100), seed=4)


def test_write_noise_on_set_and_pulses_redraw_only_touched_elements():
    tile = wn_tile()
    tile.set_weights(np.zeros((100, 100)))
    h = tile.get_hidden_parameters()
    np.testing.assert_array_equal(h["persistent_weights"], 0)
    assert abs(tile.get_weights().std() - 0.02) < 0.001   # write_noise_std * dw_min
    before = tile.get_weights()
    x = np.zeros(100)
    x[7] = 1.0
    d = np.zeros(100)
    d[3] = -1.0
    tile.update(x, d, lr=0.01)
    after = tile.get_weights()
    changed = after != before
    assert changed[3, 7] and changed.sum() == 1
    wp = tile.get_hidden_parameters()["persistent_weights"]
    np.testing.assert_allclose(wp[3, 7], 0.01, rtol=1e-6)   # the soft-bounds step at 0
    assert np.count_nonzero(wp) == 1


def test_whole_matrix_operations_redraw_all_apparent_weights_unclipped():
    tile = wn_tile(lifetime=1000.0)
    tile.set_weights(np.full((100, 100), 0.6))    # at the bound
    assert (tile.get_weights() > 0.6).mean() > 0.4       # apparent weights are not clipped
    before = tile.get_weights()
    tile.decay_weights()
    assert (tile.get_weights() != before).all()
    wp = tile.get_hidden_parameters()["persistent_weights"]
    np.testing.assert_allclose(wp, 0.6 * 0.999, rtol=1e-6)


def test_write_noise_not_on_set_when_disabled():
    tile = wn_tile(apply_write_noise_on_set=False)
    w = np.linspace(-0.5, 0.5, 10000).reshape(100, 100)
    tile.set_weights(w)
    np.testing.assert_allclose(tile.get_weights(), w, atol=1e-7)


def test_persistent_weights_set_through_hidden_parameters_are_honoured():
    """Verdict 11 (fix): the given persistent weights are kept, no noise accumulates."""
    tile = wn_tile()
    target = np.full((100, 100), 0.25)
    for _ in range(5):
        tile.set_hidden_parameters({"persistent_weights": target})
    np.testing.assert_allclose(tile.get_hidden_parameters()["persistent_weights"], 0.25)
    assert abs((tile.get_weights() - 0.25).std() - 0.02) < 0.001


# -- reference devices (spec §5.5, §5.8; verdict 13: replicate) -------------------------------
def test_soft_bounds_reference_clips_stored_weight_on_set_and_conductance_on_pulse():
    tile = make_tile(SoftBoundsReferenceDevice(**QUIET, reference_mean=0.3), shape=(1, 1))
    tile.set_weights([[0.5]])
    np.testing.assert_allclose(tile.get_weights(), 0.5)      # conductance 0.8 > 0.6 is kept
    tile.update([1.0], [-1.0], lr=0.001)
    np.testing.assert_allclose(tile.get_weights(), 0.3, rtol=1e-6)   # clipped to 0.6 - 0.3


def test_soft_bounds_reference_symmetry_point_decays_to_twice_shifted_conductance():
    dev = SoftBoundsReferenceDevice(**QUIET, up_down=0.3, subtract_symmetry_point=True,
                                    lifetime=2.0)
    tile = make_tile(dev, shape=(1, 1))
    h = tile.get_hidden_parameters()
    sp = (0.001 - 0.0007) / (0.001 / 0.6 + 0.0007 / 0.6)
    np.testing.assert_allclose(h["reference"], sp, rtol=1e-5)
    np.testing.assert_allclose(h["reset_bias"], sp, rtol=1e-5)
    np.testing.assert_allclose(sp, 0.10588, rtol=1e-4)
    for _ in range(60):
        tile.decay_weights()
    np.testing.assert_allclose(tile.get_weights() + h["reference"], 2 * sp, rtol=1e-5)


@pytest.mark.parametrize("gamma,expected", [(1.5, -0.9), (0.5, -0.9), (1.0, 0.3), (2.0, 0.3)])
def test_pow_step_reference_negative_base_jumps_to_min_bound(gamma, expected):
    """aihwkit 1.2.0 (verified by execution): reference 0.3, stored 0.5, one up pulse."""
    dev = PowStepReferenceDevice(**QUIET, pow_gamma_dtod=0.0, pow_gamma=gamma,
                                 reference_mean=0.3)
    tile = make_tile(dev, shape=(1, 1))
    tile.set_weights([[0.5]])
    tile.update([1.0], [-1.0], lr=granularity(dev))
    np.testing.assert_allclose(tile.get_weights(), expected, rtol=1e-6)


def test_pow_step_reference_symmetry_point_equalises_steps():
    dev = PowStepReferenceDevice(**QUIET, dw_min=0.01, pow_gamma_dtod=0.0, pow_up_down=0.3,
                                 subtract_symmetry_point=True)
    tile = make_tile(dev, shape=(1, 1))
    h = hidden64(tile)
    sp = h["reference"][0, 0]
    assert h["reset_bias"][0, 0] == pytest.approx(sp)
    up = naive_step(dev, h, np.zeros((1, 1)), np.array([[True]]))[0, 0]
    down = naive_step(dev, h, np.zeros((1, 1)), np.array([[False]]))[0, 0]
    # at stored 0 the conductance is sp: up and down steps agree to O(dw_min^2 / range)
    assert abs(up + down) < 0.01 * up


def test_pow_step_reference_estimation_steps():
    dev = PowStepReferenceDevice(**QUIET, dw_min=0.01, pow_gamma_dtod=0.0, pow_up_down=0.3,
                                 subtract_symmetry_point=True, n_estimation_steps=1)
    h = hidden64(make_tile(dev, shape=(1, 1)))
    # one iteration from 0: -dd * 0.5^gd + du * 0.5^gu with gd = 0.7, gu = 1
    np.testing.assert_allclose(h["reference"], -0.01 * 0.5 ** 0.7 + 0.01 * 0.5, rtol=1e-5)


# -- noise-path specifics ---------------------------------------------------------------------
def test_exp_step_complex_noise_uses_add_and_slope_terms():
    """With dw_min_std_add only and a zero step (A_up huge) the noise std is std * add."""
    dev = ExpStepDevice(**{**QUIET, "dw_min_std": 0.5}, A_up=1e6, dw_min_std_add=0.002)
    tile = make_tile(dev, shape=(100, 100), seed=2)
    tile.set_weights(np.zeros((100, 100)))
    tile.update(np.ones(100), -np.ones(100), lr=granularity(dev))
    change = tile.get_weights().astype(np.float64)
    assert abs(change.mean()) < 5 * 0.001 / 100
    assert abs(change.std() - 0.5 * 0.002) < 5 * 0.001 / math.sqrt(2 * 10000)


def test_stuck_device_ignores_exp_and_pow_pulses():
    for dev in (ExpStepDevice(**QUIET), PowStepDevice(**QUIET)):
        tile = make_tile(dev, shape=(1, 2))
        tile.set_hidden_parameters({"max_bound": np.full((1, 2), 0.05),
                                    "min_bound": np.full((1, 2), 0.05)})
        tile.update([1.0, -1.0], [1.0], lr=granularity(dev))
        np.testing.assert_array_equal(tile.get_weights(), np.float32(0.05))


@pytest.mark.parametrize("case", ["soft_bounds_reference", "exp_step_shape", "piecewise"])
def test_float64_tiles(case):
    """Models with typed constants in their kernels, compiled for float64 (each costs a
    compilation of the engine, so not every model)."""
    dev = STEP_CASES[case]
    tile = make_tile(dev, shape=(2, 3), dtype=np.float64)
    rng = np.random.default_rng(0)
    h = hidden64(tile)
    for _ in range(5):
        w = tile.get_weights()
        up = one_pulse_each(tile, dev, rng)
        np.testing.assert_allclose(tile.get_weights(), naive_pulse(dev, h, w, up), atol=1e-12)


# -- configuration errors -----------------------------------------------------------------------
@pytest.mark.parametrize("dev,exc,match", [
    (LinearStepDevice(reverse_up=True, mult_noise=False), ValueError, "mult_noise"),
    (SoftBoundsDevice(reverse_down=True, mult_noise=False), ValueError, "mult_noise"),
    (LinearStepDevice(gamma_up_dtod=-0.1), ValueError, "gamma_up_dtod"),
    (PiecewiseStepDevice(piecewise_up=[1, 2], piecewise_down=[1]), ValueError, "same length"),
    (PiecewiseStepDevice(piecewise_up=[], piecewise_down=[]), ValueError, "non-empty"),
    (PiecewiseStepDevice(piecewise_up=[1, "a"], piecewise_down=[1, 2]), ValueError, "finite"),
    (SoftBoundsPmaxDevice(range_min=0.5, range_max=1.0), ValueError, "range_min"),
    (SoftBoundsPmaxDevice(range_max=-2.0), ValueError, "range_max"),
    (SoftBoundsPmaxDevice(alpha=0.0), ValueError, "alpha"),
    (PowStepDevice(pow_gamma_dtod=-1.0), ValueError, "pow_gamma_dtod"),
    (PowStepReferenceDevice(n_estimation_steps=2.5), TypeError, "n_estimation_steps"),
    (SoftBoundsReferenceDevice(reference_std=-0.1), ValueError, "reference_std"),
    (ExpStepDevice(A_up="x"), TypeError, "A_up"),
])
def test_invalid_device_configs_raise(dev, exc, match):
    with pytest.raises(exc, match=match):
        make_tile(dev, shape=(2, 2))


def test_write_noise_is_not_a_field_where_aihwkit_has_none():
    for cls in (ConstantStepDevice, PowStepReferenceDevice):
        with pytest.raises(TypeError):
            cls(write_noise_std=1.0)


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_configs_round_trip_through_dicts(case):
    from rpusim.configs import config_from_dict
    dev = STEP_CASES[case]
    assert config_from_dict(dev.to_dict()) == dev


def test_piecewise_nodes_given_as_array_are_stored_as_a_list():
    dev = PiecewiseStepDevice(piecewise_up=np.array([1.0, 2.0]), piecewise_down=(1, 1))
    tile = make_tile(dev, shape=(2, 2))
    assert tile.rpu_config.device.piecewise_up == [1.0, 2.0]
    assert tile.rpu_config.device.piecewise_down == [1, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_decay_kernel_is_the_numpy_expression_bit_for_bit(dtype, seed):
    """The device models' decay kernel against the NumPy expression it replaced, ``w = (w -
    b) * (1 + alpha * (s - 1)) + b`` then ``np.minimum`` / ``np.maximum`` with the bounds:
    the same bits, signed zeros and NaN weights included, bounds and biases at 0."""
    from rpusim.kernels.update import decay_and_clip
    g = np.random.default_rng(seed)
    n, m = g.integers(1, 40, 2)
    w = g.uniform(-1.5, 1.5, (n, m)).astype(dtype)
    w[g.random(w.shape) < 0.1] = 0.0
    w[g.random(w.shape) < 0.1] *= -0.0
    w[g.random(w.shape) < 0.03] = np.nan
    s = g.choice([1.0, 0.999, 0.9, 0.95721], (n, m)).astype(dtype)
    b = g.choice([0.0, -0.0, 0.1, -0.2], (n, m)).astype(dtype)
    hi = g.choice([1.0, 0.0, 0.5], (n, m)).astype(dtype)
    lo = g.choice([-1.0, 0.0, -0.0], (n, m)).astype(dtype)
    w[g.random(w.shape) < 0.1] = 0.5  # at a bound
    alpha = dtype(g.choice([1.0, 0.5, 3.0]))
    want = w.copy()
    want[...] = (want - b) * (1 + alpha * (s - 1)) + b
    np.minimum(want, hi, out=want)
    np.maximum(want, lo, out=want)
    got = w.copy()
    decay_and_clip(got, s, b, hi, lo, alpha)
    bits = f"u{np.dtype(dtype).itemsize}"
    np.testing.assert_array_equal(got.view(bits), want.view(bits))
