"""Hardware-aware training on the tile (spec inference.md section 2): held modifier draw,
clip -> remap -> modifier in post_update_step, output scales, per-sample draws, persistence."""

import io

import numpy as np
import pytest

import naive
from hwa_config import hwa_config
from rpusim import AnalogTile
from rpusim.configs import (IOParameters, WeightClipParameter, WeightModifierParameter,
                            WeightRemapParameter, WeightRemapType)

PERFECT = IOParameters(is_perfect=True)


def make_tile(seed=0, shape=(4, 6), forward=PERFECT, **fields):
    tile = AnalogTile(*shape, hwa_config(forward=forward, **fields), seed=seed)
    tile.set_weights(np.random.default_rng(1).uniform(-0.5, 0.5, shape))
    return tile


def read(tile, is_test=False):
    """The weights a forward reads (perfect IO: forward of the identity, transposed)."""
    return tile.forward(np.eye(tile.in_size), is_test=is_test).T


def test_training_forward_reads_the_held_draw():
    tile = make_tile(modifier=WeightModifierParameter(type="ADD_NORMAL", std_dev=0.1))
    w = tile.get_weights()
    np.testing.assert_array_equal(read(tile), w)  # no draw before the first post_update_step
    tile.post_update_step()
    fb = read(tile)
    assert not np.allclose(fb, w)
    np.testing.assert_array_equal(read(tile), fb)  # held: same draw on every training forward
    np.testing.assert_array_equal(tile.backward(np.eye(4)), fb)  # backward reads it too
    np.testing.assert_array_equal(read(tile, is_test=True), w)  # test forward reads W
    np.testing.assert_array_equal(tile.get_weights(), w)  # the modifier never changes W
    tile.post_update_step()
    assert not np.array_equal(read(tile), fb)  # a fresh draw per optimizer step


def test_enable_during_test_reads_the_draw_in_test_mode():
    tile = make_tile(modifier=WeightModifierParameter(type="ADD_NORMAL", std_dev=0.1,
                                                      enable_during_test=True))
    tile.post_update_step()
    np.testing.assert_array_equal(read(tile, is_test=True), read(tile))


def test_update_and_set_weights_do_not_refresh_the_draw():
    tile = make_tile(modifier=WeightModifierParameter(type="DISCRETIZE", res=0.25))
    tile.post_update_step()
    fb = read(tile)
    tile.update(np.ones(6), np.ones(4), lr=0.01)
    np.testing.assert_array_equal(read(tile), fb)
    tile.set_weights(np.zeros((4, 6)))
    np.testing.assert_array_equal(read(tile), fb)


@pytest.mark.parametrize("modifier", [WeightModifierParameter(),
                                      WeightModifierParameter(type="COPY"),
                                      WeightModifierParameter(pdrop=0.5)])
def test_no_draw_for_none_and_copy_without_drop(modifier):
    tile = make_tile(modifier=modifier)
    keys = tile._rng.keys_drawn
    tile.post_update_step()
    assert tile._hwa.fb_weights is None and tile._rng.keys_drawn == keys
    np.testing.assert_array_equal(read(tile), tile.get_weights())


def test_post_update_step_clips_then_remaps_then_modifies():
    clip = WeightClipParameter(type="FIXED_VALUE", fixed_value=0.3)
    remap = WeightRemapParameter(type="CHANNELWISE_SYMMETRIC")
    mod = WeightModifierParameter(type="DISCRETIZE", res=0.5)
    remap.validate()
    tile = make_tile(clip=clip, remap=remap, modifier=mod)
    w = tile.get_weights().astype(np.float64)
    tile.post_update_step()
    clipped = np.clip(w, -0.3, 0.3)
    W_ref, s_ref = naive.remap(clipped, np.ones(4), remap)
    np.testing.assert_allclose(tile.get_weights(), clipped, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tile._hwa.scales, s_ref, rtol=1e-6)
    fb = np.sign(W_ref) * np.floor(np.abs(W_ref) / 0.5 + 0.5) * 0.5  # amax is 1 after remap
    np.testing.assert_allclose(read(tile), fb * s_ref[:, None], rtol=1e-6, atol=1e-7)


def test_scales_act_on_outputs_backward_and_update():
    remap = WeightRemapParameter(type="LAYERWISE_SYMMETRIC", remapped_wmax=0.25)
    tile = make_tile(remap=remap)
    tile.post_update_step()
    s = tile._hwa.scales.astype(np.float64)
    W = tile._model.w.astype(np.float64)
    logical = W * s[:, None]
    x = np.random.default_rng(2).uniform(-1, 1, (3, 6))
    d = np.random.default_rng(3).uniform(-1, 1, (3, 4))
    np.testing.assert_allclose(tile.forward(x), x @ logical.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tile.backward(d), d @ logical, rtol=1e-5, atol=1e-6)
    tile.update(x, d, lr=0.05)
    # logical SGD: W s <- W s - lr d^T x, i.e. analog W <- W - lr (d / s)^T x
    np.testing.assert_allclose(tile.get_weights(), logical - 0.05 * d.T @ x, rtol=1e-5,
                               atol=1e-6)


def test_remap_puts_analog_weights_in_range_and_output_bound_acts_on_them():
    """Outputs are IO_fwd(W, x) * s: the ADC bound applies to the remapped analog weights."""
    io_par = IOParameters(is_perfect=False, out_noise=0.0, inp_res=0, out_res=0, out_bound=0.5,
                          bound_management="NONE", noise_management="NONE", inp_bound=0)
    tile = make_tile(forward=io_par, shape=(2, 3),
                     remap=WeightRemapParameter(type="LAYERWISE_SYMMETRIC"))
    tile.set_weights(np.array([[2.0, 0.0, 0.0], [0.1, 0.0, 0.0]]))
    tile.post_update_step()  # W = [[1, 0, 0], [0.05, 0, 0]], s = [2, 2]
    y = tile.forward(np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(y, [0.5 * 2, 0.05 * 2], rtol=1e-6)


def test_per_batch_sample_draws_one_matrix_per_sample():
    mod = WeightModifierParameter(type="ADD_NORMAL", std_dev=0.2, per_batch_sample=True)
    tile = make_tile(modifier=mod)
    tile.post_update_step()
    assert tile._hwa.fb_weights is None
    x = np.tile(np.eye(6)[0], (5, 1))  # five copies of the same input
    y = tile.forward(x)
    assert len({tuple(row) for row in y}) == 5  # each sample saw its own draw
    W_s = tile._hwa.sample_weights
    np.testing.assert_allclose(y, W_s[:, :, 0], rtol=1e-6)
    d = np.random.default_rng(0).uniform(-1, 1, (5, 4))
    z = tile.backward(d)
    np.testing.assert_allclose(z, np.einsum("bo,boi->bi", d, W_s), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="per_batch_sample"):
        tile.backward(d[:2])
    np.testing.assert_array_equal(tile.forward(x, is_test=True),
                                  np.tile(tile.get_weights()[:, 0], (5, 1)))


def test_same_seed_same_bits_and_thread_count_independent():
    from numba import get_num_threads, set_num_threads

    mod = WeightModifierParameter(type="DISCRETIZE_ADD_NORMAL", res=0.1, std_dev=0.05,
                                  sto_round=True, pdrop=0.1)
    runs = []
    threads = get_num_threads()
    for n in (1, threads):
        set_num_threads(n)
        tile = make_tile(seed=5, modifier=mod)
        tile.post_update_step()
        runs.append(read(tile))
    set_num_threads(threads)
    np.testing.assert_array_equal(runs[0], runs[1])
    other = make_tile(seed=6, modifier=mod)
    other.post_update_step()
    assert not np.array_equal(read(other), runs[0])


@pytest.mark.parametrize("per_batch_sample", [False, True])
def test_save_load_keeps_draw_and_scales_and_continues_bit_identically(per_batch_sample):
    mod = WeightModifierParameter(type="MULT_NORMAL", std_dev=0.1,
                                  per_batch_sample=per_batch_sample)
    remap = WeightRemapParameter(type="CHANNELWISE_SYMMETRIC")
    tile = make_tile(modifier=mod, remap=remap, forward=IOParameters())
    tile.post_update_step()
    x = np.random.default_rng(4).uniform(-1, 1, (3, 6))
    tile.forward(x)
    buf = io.BytesIO()
    tile.save(buf)
    buf.seek(0)
    loaded = AnalogTile.load(buf)
    np.testing.assert_array_equal(loaded._hwa.scales, tile._hwa.scales)
    d = np.ones((3, 4))
    np.testing.assert_array_equal(loaded.backward(d), tile.backward(d))
    for t in (tile, loaded):
        t.update(x, d, lr=0.01)
        t.post_update_step()
    np.testing.assert_array_equal(loaded.forward(x), tile.forward(x))
    np.testing.assert_array_equal(loaded.get_weights(), tile.get_weights())


def test_failed_forward_leaves_no_trace():
    tile = make_tile(modifier=WeightModifierParameter(type="ADD_NORMAL", std_dev=0.1))
    tile.post_update_step()
    before = tile.state_dict()
    with pytest.raises(ValueError):
        tile.forward(np.full(6, np.nan))
    from rpusim.persistence import state_differences
    assert state_differences(before, tile.state_dict()) == []


def test_failed_per_sample_forward_and_backward_leave_no_trace():
    from rpusim.persistence import state_differences
    mod = WeightModifierParameter(type="ADD_NORMAL", std_dev=0.1, per_batch_sample=True)
    tile = make_tile(modifier=mod)
    tile.set_weights(np.full((4, 6), 0.5))  # every sum of huge inputs overflows
    tile.forward(np.ones((2, 6)))
    before = tile.state_dict()
    huge = np.full((2, 6), np.finfo(np.float32).max)
    with pytest.raises(ValueError, match="overflows"):
        tile.forward(huge)
    assert state_differences(before, tile.state_dict()) == []
    with pytest.raises(ValueError, match="overflows"):
        tile.backward(np.full((2, 4), np.finfo(np.float32).max))
    assert state_differences(before, tile.state_dict()) == []


def test_remap_switched_on_after_construction_starts_from_unit_scales():
    tile = make_tile()
    w = tile.get_weights()
    tile.rpu_config.remap.type = WeightRemapType.LAYERWISE_SYMMETRIC
    tile.post_update_step()
    np.testing.assert_allclose(tile._hwa.scales, np.abs(w).max(), rtol=1e-6)
    np.testing.assert_allclose(tile.get_weights(), w, rtol=1e-6, atol=1e-7)
    restored = AnalogTile.from_state_dict(tile.state_dict())
    np.testing.assert_array_equal(restored.get_weights(), tile.get_weights())
