"""Statistics of the device models: device-to-device sampling (devices spec §3, §5) and
cycle-to-cycle noise of single pulses (§4.2, §5), against the spec formulas.

Bounds are ``K`` standard errors: ``sigma / sqrt(n)`` for a mean and ``sigma / sqrt(2 n)`` for a
standard deviation (normal samples), with n the number of elements of a large tile.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_devices import hidden64, make_tile, naive_step

from rpusim.configs import (ConstantStepDevice, DriftParameter, ExpStepDevice, LinearStepDevice,
                            PiecewiseStepDevice, PowStepDevice, PowStepReferenceDevice,
                            SoftBoundsDevice, SoftBoundsPmaxDevice, SoftBoundsReferenceDevice)

pytestmark = pytest.mark.slow

SHAPE = (150, 150)
N = SHAPE[0] * SHAPE[1]
K = 5.0


def assert_mean_std(values, mean, std, what=""):
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    assert abs(values.mean() - mean) <= K * std / math.sqrt(n) + 1e-12, (
        f"{what}: mean {values.mean()!r}, expected {mean!r}")
    assert abs(values.std() - std) <= K * std / math.sqrt(2 * n) + 1e-12, (
        f"{what}: std {values.std()!r}, expected {std!r}")


def hidden(dev, seed=0):
    return hidden64(make_tile(dev, shape=SHAPE, seed=seed))


# -- common dtod sampling (§3) ----------------------------------------------------------------
def test_bounds_and_steps():
    dev = ConstantStepDevice(w_max=0.8, w_max_dtod=0.2, w_min=-0.5, w_min_dtod=0.1,
                             dw_min=0.002, dw_min_dtod=0.25, up_down=0.1, up_down_dtod=0.05)
    h = hidden(dev)
    assert_mean_std(h["max_bound"], 0.8, 0.16, "max_bound")
    assert_mean_std(h["min_bound"], -0.5, 0.05, "min_bound")
    # up_down = 0.1 shrinks the down step; the gain is shared, the asymmetry antisymmetric
    assert_mean_std(h["dwmin_up"], 0.002, 0.002 * math.hypot(0.25, 0.05), "dwmin_up")
    assert_mean_std(h["dwmin_down"], 0.0018, 0.002 * math.hypot(0.25, 0.05), "dwmin_down")
    assert_mean_std(h["dwmin_up"] + h["dwmin_down"], 0.0038, 2 * 0.002 * 0.25, "sum")
    assert_mean_std(h["dwmin_up"] - h["dwmin_down"], 0.0002, 2 * 0.002 * 0.05, "difference")


def test_negative_up_down_shrinks_the_up_step():
    h = hidden(ConstantStepDevice(up_down=-0.2, dw_min_dtod=0.1, up_down_dtod=0.0))
    assert_mean_std(h["dwmin_up"], 0.0008, 0.0001, "dwmin_up")
    assert_mean_std(h["dwmin_down"], 0.001, 0.0001, "dwmin_down")


def test_log_normal_gain_has_no_mean_correction():
    s = 0.4
    h = hidden(ConstantStepDevice(dw_min_dtod=s, dw_min_dtod_log_normal=True, up_down_dtod=0.0))
    assert_mean_std(np.log(h["dwmin_up"] / 0.001), 0.0, s, "log gain")
    mean = math.exp(s * s / 2)
    std = math.sqrt((math.exp(s * s) - 1) * math.exp(s * s))
    assert abs(h["dwmin_up"].mean() / 0.001 - mean) <= K * std / math.sqrt(N)


def test_enforce_consistency():
    on = hidden(ConstantStepDevice(dw_min_dtod=1.0, w_max_dtod=1.5, w_min_dtod=1.5))
    assert (on["dwmin_up"] >= 0).all() and (on["dwmin_down"] >= 0).all()
    assert (on["min_bound"] <= 0).all() and (on["max_bound"] >= 0).all()
    off = hidden(ConstantStepDevice(dw_min_dtod=1.0, w_max_dtod=1.5, w_min_dtod=1.5,
                                    enforce_consistency=False))
    assert (off["dwmin_up"] < 0).mean() > 0.1
    # max < min is "turned off" at the midpoint: the predicted fraction has equal bounds
    # (b_min > b_max  <=>  0.6 (1 + 1.5 a) < -0.6 (1 + 1.5 b)  <=>  a + b < -4/3)
    p = 0.5 * math.erfc((4 / 3) / math.sqrt(2) / math.sqrt(2))
    frac = (off["min_bound"] == off["max_bound"]).mean()
    assert abs(frac - p) <= K * math.sqrt(p * (1 - p) / N)
    assert (off["min_bound"] <= off["max_bound"]).all()


def test_corrupt_devices_and_perfect_bias():
    h = hidden(ConstantStepDevice(corrupt_devices_prob=0.2, corrupt_devices_range=0.05,
                                  perfect_bias=True))
    body = {k: v[:, :-1] for k, v in h.items()}
    stuck = body["dwmin_up"] == 0
    n = stuck.size
    assert abs(stuck.mean() - 0.2) <= K * math.sqrt(0.16 / n)
    assert (body["dwmin_down"][stuck] == 0).all()
    assert (body["max_bound"][stuck] == body["min_bound"][stuck]).all()
    assert (np.abs(body["max_bound"][stuck]) <= 0.05 + 1e-7).all()
    # values are uniform over the clipped range [-0.05, 0.05] (bounds always straddle it here)
    assert_mean_std(body["max_bound"][stuck], 0.0, 0.1 / math.sqrt(12), "stuck value")
    np.testing.assert_allclose(h["dwmin_up"][:, -1], 0.001)
    np.testing.assert_allclose(h["dwmin_down"][:, -1], 0.001)
    np.testing.assert_allclose(h["max_bound"][:, -1], 60.0, rtol=1e-6)
    np.testing.assert_allclose(h["min_bound"][:, -1], -60.0, rtol=1e-6)


def test_diffusion_reset_lifetime_and_drift_spreads():
    dev = ConstantStepDevice(diffusion=0.01, diffusion_dtod=0.2, reset=-0.1, reset_dtod=0.03,
                             lifetime=100.0, lifetime_dtod=0.1,
                             drift=DriftParameter(nu=0.1, nu_dtod=0.3))
    h = hidden(dev)
    assert_mean_std(h["diffusion_rates"], 0.01, 0.002, "diffusion_rates")
    assert_mean_std(h["reset_bias"], -0.1, 0.03, "reset_bias (additive)")
    assert_mean_std(1 / (1 - h["decay_scales"]), 100.0, 10.0, "lifetime")
    assert_mean_std(h["drift_nu"], 0.1, 0.03, "drift_nu")


def test_sampled_lifetime_below_one_gives_zero_decay_scale():
    h = hidden(ConstantStepDevice(lifetime=2.0, lifetime_dtod=0.6))
    # P(2 (1 + 0.6 xi) <= 1) = P(xi <= -5/6)
    p = 0.5 * math.erfc((5 / 6) / math.sqrt(2))
    frac = (h["decay_scales"] == 0).mean()
    assert abs(frac - p) <= K * math.sqrt(p * (1 - p) / N)


def test_construction_seed_fixes_the_device_draws():
    dev = ConstantStepDevice(construction_seed=7)
    a = make_tile(dev, shape=(4, 5), seed=1).get_hidden_parameters()
    b = make_tile(dev, shape=(4, 5), seed=2).get_hidden_parameters()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# -- device-specific dtod (§5) ----------------------------------------------------------------
def test_linear_step_gammas():
    dev = LinearStepDevice(gamma_up=0.5, gamma_down=0.3, gamma_up_dtod=0.1,
                           gamma_down_dtod=0.05, allow_increasing=True)
    h = hidden(dev)
    # mean_bound_reference: slope = -gamma * dwmin / w_max (resp. w_min)
    assert_mean_std(-h["slope_up"] * 0.6 / h["dwmin_up"], 0.5, 0.1, "gamma_up")
    assert_mean_std(h["slope_down"] * 0.6 / h["dwmin_down"], 0.3, 0.05, "gamma_down")


def test_linear_step_default_slopes_are_half_normal():
    h = hidden(LinearStepDevice())
    gamma = -h["slope_up"] * 0.6 / h["dwmin_up"]
    assert (gamma >= 0).all()
    mean = 0.05 * math.sqrt(2 / math.pi)
    std = 0.05 * math.sqrt(1 - 2 / math.pi)
    assert_mean_std(gamma, mean, std, "|N(0, 0.05)|")


def test_linear_step_own_bound_reference():
    h = hidden(LinearStepDevice(gamma_up=0.4, gamma_up_dtod=0.0, mean_bound_reference=False))
    np.testing.assert_allclose(h["slope_up"], -0.4 * h["dwmin_up"] / h["max_bound"], rtol=1e-5)


def test_pow_step_gammas():
    h = hidden(PowStepDevice(pow_gamma=2.0, pow_gamma_dtod=0.1, pow_up_down=0.2,
                             pow_up_down_dtod=0.05))
    std = 2.0 * math.hypot(0.1, 0.05)
    assert_mean_std(h["gamma_up"], 2.0, std, "gamma_up")
    assert_mean_std(h["gamma_down"], 1.6, std, "gamma_down")
    assert_mean_std(h["gamma_up"] - h["gamma_down"], 0.4, 2 * 2.0 * 0.05, "gamma difference")


def test_pow_step_reference_reference():
    h = hidden(PowStepReferenceDevice(reference_mean=0.1, reference_std=0.05))
    assert_mean_std(h["reference"], 0.1, 0.05, "reference")


def test_soft_bounds_reference_slope_spread_and_reference():
    dev = SoftBoundsReferenceDevice(w_max_dtod=0.0, w_min_dtod=0.0, slope_up_dtod=0.1,
                                    slope_down_dtod=0.2, reference_mean=-0.05,
                                    reference_std=0.02)
    h = hidden(dev)
    assert_mean_std(0.6 / h["max_bound"], 1.0, 0.1, "up slope factor")
    assert_mean_std(-0.6 / h["min_bound"], 1.0, 0.2, "down slope factor")
    assert_mean_std(h["reference"], -0.05, 0.02, "reference")


def test_soft_bounds_pmax_spreads_are_relative_to_derived_values():
    h = hidden(SoftBoundsPmaxDevice(up_down_dtod=0.0, dw_min_dtod=0.2))
    dw_min = 0.0025414940825367986
    assert_mean_std(h["dwmin_up"], dw_min, 0.2 * dw_min, "dwmin_up")
    assert_mean_std(h["max_bound"], 4.082988165, 0.3 * 4.082988165, "max_bound")


# -- cycle-to-cycle noise of single pulses (§4.2, §5) -----------------------------------------
def noise_std(dev, h, w, up, det):
    """Expected std of one pulse's change, from the spec (det: the noise-free change)."""
    s = dev.dw_min_std
    if isinstance(dev, (LinearStepDevice, SoftBoundsDevice)) and not dev.mult_noise:
        return s * np.where(up, h["dwmin_up"], h["dwmin_down"])
    if isinstance(dev, SoftBoundsReferenceDevice) and not dev.mult_noise:
        return s * np.where(up, h["dwmin_up"], h["dwmin_down"])
    if isinstance(dev, ExpStepDevice) and (dev.dw_min_std_add or dev.dw_min_std_slope):
        return s * (np.abs(det) + dev.dw_min_std_add + dev.dw_min_std_slope * np.abs(w))
    return s * np.abs(det)


NOISE_CASES = {
    "constant": ConstantStepDevice(dw_min_std=0.3),
    "linear_mult": LinearStepDevice(dw_min_std=0.3, gamma_up=0.5, gamma_down=0.5),
    "linear_add": LinearStepDevice(dw_min_std=0.3, gamma_up=0.5, gamma_down=0.5,
                                   mult_noise=False),
    "soft_bounds": SoftBoundsDevice(dw_min_std=0.5),
    "soft_bounds_add": SoftBoundsDevice(dw_min_std=0.5, mult_noise=False),
    "soft_bounds_pmax": SoftBoundsPmaxDevice(dw_min_std=0.2),
    "soft_bounds_reference": SoftBoundsReferenceDevice(dw_min_std=0.3),
    "soft_bounds_reference_mult": SoftBoundsReferenceDevice(dw_min_std=0.3, mult_noise=True),
    "exp_step": ExpStepDevice(dw_min_std=0.3),
    "exp_step_complex": ExpStepDevice(dw_min_std=0.3, dw_min_std_add=0.0005,
                                      dw_min_std_slope=0.002),
    "pow_step": PowStepDevice(dw_min_std=0.3, pow_gamma=1.5),
    "pow_step_reference": PowStepReferenceDevice(dw_min_std=0.3, reference_std=0.05),
    "piecewise": PiecewiseStepDevice(dw_min_std=0.3, piecewise_up=[1.5, 1.0, 0.5],
                                     piecewise_down=[0.5, 1.0, 1.5]),
}


@pytest.mark.parametrize("case", list(NOISE_CASES))
def test_ctoc_noise_of_single_pulses(case):
    """z = (change - noise-free change) / expected std is standard normal over the tile."""
    dev = NOISE_CASES[case]
    tile = make_tile(dev, shape=(100, 100), seed=11)
    rng = np.random.default_rng(3)
    # mid-range weights; elements whose pulse could be clipped are left out below
    w = rng.uniform(-0.2, 0.2, (100, 100))
    tile.set_weights(w)
    w = tile.get_weights().astype(np.float64)
    h = hidden64(tile)
    x = rng.choice([-1.0, 1.0], 100)
    d = rng.choice([-1.0, 1.0], 100)
    tile.update(x, d, lr=1.0)
    up = np.outer(d, x) < 0
    det = naive_step(dev, h, w, up)
    std = noise_std(dev, h, w, up, det)
    c = w + h.get("reference", 0.0) + det
    inside = (std > 0) & (c + 6 * std < h["max_bound"]) & (c - 6 * std > h["min_bound"])
    assert inside.mean() > 0.9
    z = ((tile.get_weights() - w - det) / np.where(inside, std, 1.0))[inside]
    n = z.size
    assert abs(z.mean()) <= K / math.sqrt(n)
    assert abs(z.std() - 1) <= K / math.sqrt(2 * n) + 0.003   # + float32 rounding of steps
