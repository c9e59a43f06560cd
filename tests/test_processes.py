"""Decay, diffusion, reset, drift and post_update_step (update spec §8, devices spec §7, §10).

Expected values are computed by hand from the spec formulas.
"""

import numpy as np
import pytest

from rpusim import AnalogTile
from rpusim.configs import (ConstantStepDevice, DriftParameter, FloatingPointDevice,
                            FloatingPointRPUConfig, IdealDevice, SimpleDriftParameter,
                            SingleRPUConfig)

QUIET = dict(dw_min_dtod=0.0, dw_min_std=0.0, w_max_dtod=0.0, w_min_dtod=0.0, up_down_dtod=0.0)


def tile_with(shape=(3, 4), **kw):
    return AnalogTile(*shape, SingleRPUConfig(device=ConstantStepDevice(**{**QUIET, **kw})),
                      seed=0)


def test_decay_goes_toward_negative_reset_bias():
    """aihwkit 1.2.0: reset = -0.3, lifetime 10: one decay takes 0.5 to (0.5+0.3)*0.9-0.3."""
    tile = tile_with(reset=-0.3, lifetime=10.0)
    tile.set_weights(np.full((3, 4), 0.5))
    tile.decay_weights()
    np.testing.assert_allclose(tile.get_weights(), 0.42, rtol=1e-6)
    np.testing.assert_allclose(tile.get_hidden_parameters()["decay_scales"], 0.9, rtol=1e-7)
    np.testing.assert_allclose(tile.get_hidden_parameters()["reset_bias"], -0.3, rtol=1e-7)


def test_decay_alpha_and_per_element_parameters():
    tile = tile_with(lifetime=10.0)
    w = np.linspace(-0.5, 0.5, 12).reshape(3, 4)
    delta = np.linspace(0.5, 0.95, 12).reshape(3, 4)
    bias = np.linspace(-0.2, 0.2, 12).reshape(3, 4)
    tile.set_hidden_parameters({"decay_scales": delta, "reset_bias": bias})
    tile.set_weights(w)
    tile.decay_weights(alpha=0.5)
    expected = (w - bias) * (1 + 0.5 * (delta - 1)) + bias
    np.testing.assert_allclose(tile.get_weights(), expected, rtol=1e-5, atol=1e-7)


def test_decay_converges_to_reset_bias_and_clips():
    tile = tile_with(lifetime=3.0, reset=0.8, w_max=0.6)
    tile.set_weights(np.full((3, 4), -0.4))
    for _ in range(60):
        tile.decay_weights()
    # the reset bias lies beyond the bound: decay goes toward it and is clipped at the bound
    np.testing.assert_allclose(tile.get_weights(), 0.6, rtol=1e-6)


def test_lifetime_at_most_one_snaps_to_reset_bias():
    tile = tile_with(lifetime=0.9, reset=0.1)
    assert np.all(tile.get_hidden_parameters()["decay_scales"] == 0)
    tile.set_weights(np.full((3, 4), -0.3))
    tile.decay_weights()
    np.testing.assert_allclose(tile.get_weights(), 0.1, rtol=1e-6)


def test_no_lifetime_means_no_decay_and_no_post_update_change():
    tile = tile_with()
    w = tile.get_weights()
    assert np.all(tile.get_hidden_parameters()["decay_scales"] == 1)
    tile.post_update_step()
    np.testing.assert_array_equal(tile.get_weights(), w)


@pytest.mark.slow
def test_post_update_step_is_diffusion_then_decay():
    """diffusion 0.01 then decay with scale 0.5 leaves a spread of 0.005 (decay first: 0.01)."""
    tile = AnalogTile(200, 200, SingleRPUConfig(device=ConstantStepDevice(
        **QUIET, diffusion=0.01, lifetime=2.0)), seed=1)
    tile.set_weights(np.zeros((200, 200)))
    tile.post_update_step()
    n = 200 * 200
    std = tile.get_weights().std()
    assert abs(std - 0.005) < 5 * 0.005 / np.sqrt(2 * n)


@pytest.mark.slow
def test_diffusion_spread_and_clipping():
    tile = AnalogTile(200, 100, SingleRPUConfig(device=ConstantStepDevice(
        **QUIET, diffusion=0.02)), seed=2)
    tile.set_weights(np.zeros((200, 100)))
    tile.diffuse_weights()
    w = tile.get_weights()
    assert abs(w.std() - 0.02) < 5 * 0.02 / np.sqrt(2 * w.size)
    tile.set_weights(np.full((200, 100), 0.6))
    tile.diffuse_weights()
    assert tile.get_weights().max() <= 0.6
    assert abs(np.mean(tile.get_weights() < 0.6) - 0.5) < 0.02


def test_reset_columns_wrap_around_to_reset_bias():
    tile = tile_with(shape=(2, 5), reset=0.05, reset_std=0.0)
    tile.set_weights(np.full((2, 5), 0.3))
    tile.reset_columns(start_column_idx=3, num_columns=3)
    expected = np.full((2, 5), 0.3)
    expected[:, [3, 4, 0]] = 0.05
    np.testing.assert_allclose(tile.get_weights(), expected, rtol=1e-6)
    tile.reset_columns(num_columns=-1)
    np.testing.assert_allclose(tile.get_weights(), 0.05, rtol=1e-6)


@pytest.mark.slow
def test_reset_probability_and_noise():
    tile = AnalogTile(100, 100, SingleRPUConfig(device=ConstantStepDevice(
        **QUIET, reset_std=0.01)), seed=3)
    tile.set_weights(np.full((100, 100), 0.3))
    tile.reset_columns(0, -1, reset_prob=0.25)
    w = tile.get_weights()
    reset = w != np.float32(0.3)
    n = w.size
    assert abs(reset.mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)
    assert abs(w[reset].std() - 0.01) < 5 * 0.01 / np.sqrt(2 * reset.sum())


def test_ideal_device_decay_and_reset():
    tile = AnalogTile(2, 3, SingleRPUConfig(device=IdealDevice(lifetime=10.0, reset_std=0.0)),
                      seed=0)
    tile.set_weights(np.full((2, 3), 0.5))
    tile.post_update_step()
    np.testing.assert_allclose(tile.get_weights(), 0.45, rtol=1e-6)
    short = AnalogTile(2, 3, SingleRPUConfig(device=IdealDevice(lifetime=0.8)), seed=0)
    short.set_weights(np.full((2, 3), 0.5))
    short.decay_weights()
    np.testing.assert_allclose(short.get_weights(), 0.5)
    tile.reset_columns(1, 1)
    assert np.all(tile.get_weights()[:, 1] == 0)


def test_drift_power_law():
    """W0 * t^-nu after calls with delta_t 5, 5, 90 (t = 5, 10, 100; the first call drifts)."""
    tile = tile_with(drift=DriftParameter(nu=0.1))
    w0 = np.linspace(-0.4, 0.4, 12).reshape(3, 4).astype(np.float32)
    tile.set_weights(w0)
    for dt, t in ((5, 5), (5, 10), (90, 100)):
        tile.drift_weights(dt)
        np.testing.assert_allclose(tile.get_weights(), w0 * t ** -0.1, rtol=1e-5, atol=1e-7)


def test_drift_restarts_for_changed_elements():
    tile = tile_with(drift=DriftParameter(nu=0.1), dw_min=0.01)
    w0 = np.full((3, 4), 0.2, np.float32)
    tile.set_weights(w0)
    tile.drift_weights(10)  # t = 10
    w1 = w0 * np.float32(10 ** -0.1)
    changed = w1.copy()
    changed[0, 0] = 0.3
    tile.set_weights(changed)
    tile.drift_weights(10)  # t = 20: element (0,0) restarts (unchanged now), others drift
    w = tile.get_weights()
    assert w[0, 0] == np.float32(0.3)
    np.testing.assert_allclose(w[1:, :], 0.2 * 20 ** -0.1, rtol=1e-5)
    tile.drift_weights(30)  # t = 50: element (0,0) drifted for 30
    np.testing.assert_allclose(tile.get_weights()[0, 0], 0.3 * 30 ** -0.1, rtol=1e-5)


def test_floating_point_drift_and_t0():
    tile = AnalogTile(2, 2, FloatingPointRPUConfig(device=FloatingPointDevice(
        drift=SimpleDriftParameter(nu=0.1, t_0=10.0))), seed=0)
    tile.set_weights(np.full((2, 2), 0.5))
    tile.drift_weights(5)   # max(0.5, 1) = 1: no change
    np.testing.assert_allclose(tile.get_weights(), 0.5)
    tile.drift_weights(95)  # t = 10 time units
    np.testing.assert_allclose(tile.get_weights(), 0.5 * 10 ** -0.1, rtol=1e-6)
