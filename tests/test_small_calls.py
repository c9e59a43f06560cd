"""The short ways of small calls: compiled entry points reused per state, keys through a box,
transfers' kept unit row, compounds reducing in place.

An entry point skips numba's typing of its arguments and trusts them blindly, so every input
layout that is not the one it was made for (read-only, strided, Fortran-ordered, another
dtype) must go through the dispatcher instead and give the same numbers as on a fresh tile.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rpusim
from rpusim import configs as rc
from rpusim.kernels import update as ku
from rpusim.rng import TileRNG


def _tile(config=None, out=6, inp=5, seed=3):
    tile = rpusim.AnalogTile(out, inp, config or rc.SingleRPUConfig(
        device=rc.SoftBoundsDevice()), seed=seed)
    tile.set_learning_rate(0.05)
    return tile


def _layouts(a: np.ndarray) -> dict:
    """The same values as arrays of other numba types than a plain C-contiguous one."""
    readonly = a.copy()
    readonly.flags.writeable = False
    strided = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    strided[:, ::2] = a
    return {"plain": a.copy(), "read-only": readonly, "strided": strided[:, ::2],
            "fortran": np.asfortranarray(a), "float64": a.astype(np.float64)}


def _batch(rng, batch, n, scale):
    return rng.uniform(-scale, scale, (batch, n)).astype(np.float32)


@pytest.mark.parametrize("layout", ["plain", "read-only", "strided", "fortran", "float64"])
def test_forward_backward_after_the_entry_exists_equal_a_fresh_tile(layout):
    """A tile whose MVM entry points exist (made by earlier plain calls) gives, for an input of
    any layout, what a fresh tile with the same history gives."""
    rng = np.random.default_rng(0)
    warm = [(_batch(rng, 3, 5, 1.0), _batch(rng, 3, 6, 0.1)) for _ in range(2)]
    x, d = _batch(rng, 4, 5, 1.0), _batch(rng, 4, 6, 0.1)
    results = []
    for reuse in (True, False):
        tile = _tile()
        for wx, wd in warm:
            tile.forward(wx)
            tile.backward(wd)
        if not reuse:  # as if no entry point had been made: every call through numba's typing
            tile._forward_mvm._entry = tile._backward_mvm._entry = None
        xin, din = _layouts(x)[layout], _layouts(d)[layout]
        results.append((tile.forward(xin), tile.backward(din)))
    (y1, z1), (y2, z2) = results
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(z1, z2)
    assert y1.dtype == np.float32 and z1.dtype == np.float32


@pytest.mark.parametrize("layout", ["plain", "read-only", "strided", "fortran", "float64"])
def test_small_update_after_the_entry_exists_equals_the_full_path(layout):
    """After a recorded small update, an update with inputs of any layout changes the weights
    and hidden parameters exactly as the full path (no record) does."""
    rng = np.random.default_rng(1)
    warm = (_batch(rng, 3, 5, 1.0), _batch(rng, 3, 6, 0.1))
    x, d = _batch(rng, 4, 5, 1.0), _batch(rng, 4, 6, 0.1)
    states = []
    for reuse in (True, False):
        tile = _tile()
        tile.update(*warm)
        if not reuse:
            ku._SMALL.clear()
        tile.update(_layouts(x)[layout], _layouts(d)[layout])
        states.append((tile.get_weights(), tile.get_hidden_parameters()))
    np.testing.assert_array_equal(states[0][0], states[1][0])
    for name in states[0][1]:
        np.testing.assert_array_equal(states[0][1][name], states[1][1][name])


@settings(max_examples=20, deadline=None)
@given(lr=st.sampled_from([0.01, 0.05, 0.2]), bl=st.sampled_from([1, 5, 31, 100]),
       change=st.sampled_from(["none", "desired_bl", "lr", "new config"]))
def test_recorded_small_updates_follow_config_and_rate_changes(lr, bl, change):
    """A record is reused only while the update parameters, learning rate and granularity are
    those it was made with: after a change the update equals that of a tile that never had a
    record (compared bit for bit over two updates)."""
    rng = np.random.default_rng(2)
    x1, d1 = _batch(rng, 2, 5, 1.0), _batch(rng, 2, 6, 0.1)
    x2, d2 = _batch(rng, 2, 5, 1.0), _batch(rng, 2, 6, 0.1)
    weights = []
    for clear in (False, True):
        tile = _tile()
        tile.rpu_config.update.desired_bl = bl
        tile.update(x1, d1, lr=lr)
        if change == "desired_bl":
            tile.rpu_config.update.desired_bl = bl + 3
        elif change == "new config":
            tile.rpu_config.update = copy.deepcopy(tile.rpu_config.update)
            tile.rpu_config.update.update_bl_management = False
        if clear:
            ku._SMALL.clear()
        tile.update(x2, d2, lr=1.7 * lr if change == "lr" else lr)
        weights.append(tile.get_weights())
    np.testing.assert_array_equal(weights[0], weights[1])


def _write_noise_tile(bl: int = 31):
    config = rc.SingleRPUConfig(device=rc.SoftBoundsDevice(write_noise_std=2.0))
    config.update.desired_bl = bl
    return _tile(config)


@settings(max_examples=20, deadline=None)
@given(layout=st.sampled_from(["plain", "read-only", "strided", "fortran", "float64"]),
       bl=st.sampled_from([1, 31, 100]),
       change=st.sampled_from(["none", "lr", "desired_bl", "new config", "write noise",
                               "weights"]))
def test_recorded_write_noise_updates_equal_the_full_path(layout, bl, change):
    """Small updates of a device with write noise run the serial kernel through a recorded
    entry point: with any input layout, and after a change of learning rate, update
    parameters, write noise or weights, two updates leave weights and hidden parameters
    (persistent weights included) exactly as on a tile that never had a record."""
    rng = np.random.default_rng(7)
    x1, d1 = _batch(rng, 3, 5, 1.0), _batch(rng, 3, 6, 0.1)
    x2, d2 = _batch(rng, 4, 5, 1.0), _batch(rng, 4, 6, 0.1)
    states = []
    for clear in (False, True):
        tile = _write_noise_tile(bl)
        ku._SMALL.clear()
        tile.update(x1, d1)
        assert [noisy for _, noisy in ku._SMALL] == [True]  # the write-noise record
        lr = 0.05
        if change == "lr":
            lr = 0.11
        elif change == "desired_bl":
            tile.rpu_config.update.desired_bl = bl + 3
        elif change == "new config":
            tile.rpu_config.update = copy.deepcopy(tile.rpu_config.update)
            tile.rpu_config.update.update_bl_management = False
        elif change == "write noise":
            tile._model.device.write_noise_std *= 3
        elif change == "weights":
            tile.set_weights(np.full((6, 5), 0.2, np.float32))
        if clear:
            ku._SMALL.clear()
        tile.update(_layouts(x2)[layout], _layouts(d2)[layout], lr=lr)
        tile.update(x1, d1, lr=lr)
        states.append((tile.get_weights(), tile.get_hidden_parameters()))
    np.testing.assert_array_equal(states[0][0], states[1][0])
    for name in states[0][1]:
        np.testing.assert_array_equal(states[0][1][name], states[1][1][name])


def test_keys_are_the_raw_draws_of_the_generator_and_pickles_without_the_box_load():
    rng = TileRNG(5)
    reference = np.random.Generator(np.random.PCG64(5)).bit_generator.random_raw(4)
    keys = [rng.key() for _ in range(4)]
    assert all(type(k) is np.uint64 for k in keys)
    np.testing.assert_array_equal(np.array(keys, np.uint64), reference)
    # a key is a value: the box it came through is reused, the key is not changed by that
    assert keys[0] == reference[0]
    # raw_key: the same stream as a Python int (for entry points), counted for unkey
    raw = TileRNG(5)
    drawn = [raw.raw_key(), raw.key(), raw.raw_key()]
    assert type(drawn[0]) is int and raw.keys_drawn == 3
    np.testing.assert_array_equal(np.array(drawn, np.uint64), reference[:3])
    raw.unkey(2)
    assert raw.raw_key() == int(reference[1])
    # an object pickled before the box existed still draws the same keys
    state = dict(rng.__dict__)
    del state["_key"]
    old = TileRNG.__new__(TileRNG)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    twin = copy.deepcopy(rng)
    np.testing.assert_array_equal([old.key(), old.key()], [twin.key(), twin.key()])


@pytest.mark.parametrize("n_reads", [1, 3])
def test_transfer_unit_rows_equal_one_hot_and_leave_no_stale_bit(n_reads):
    """The kept unit row of single-slice transfers: after transfers from every column it still
    has exactly one bit, and a transfer compound trains bit-identically to one whose unit rows
    are built fresh each time (the Python loop's transfers: the numba loop, which keeps a
    unit row of its own, is switched off)."""
    import rpusim.compounds.transfer as transfer
    from rpusim.compounds.base import one_hot

    def config():
        return rc.UnitCellRPUConfig(device=rc.TransferCompound(
            unit_cell_devices=[rc.SoftBoundsDevice(), rc.SoftBoundsDevice()],
            transfer_every=1, n_reads_per_transfer=n_reads))

    rng = np.random.default_rng(4)
    batches = [(_batch(rng, 2, 5, 1.0), _batch(rng, 2, 6, 0.1)) for _ in range(7)]
    weights = []
    transfer.FUSED_LOOP = False
    try:
        for fresh in (False, True):
            tile = _tile(config())
            model = tile._model
            if fresh:
                model.unit_rows = lambda slices: one_hot(slices, model.t_in, model.dtype)
            for x, d in batches:
                tile.update(x, d)
            weights.append((tile.get_weights(), tile.get_hidden_parameters()))
            if not fresh and n_reads == 1:
                row = model._unit_row
                assert row.shape == (1, 5) and row.sum() == 1 and row[0, model._unit_at] == 1
    finally:
        transfer.FUSED_LOOP = True
    np.testing.assert_array_equal(weights[0][0], weights[1][0])
    for name in weights[0][1]:
        np.testing.assert_array_equal(weights[0][1][name], weights[1][1][name])


@pytest.mark.parametrize("gammas", [[1.0, 0.5], [0.3, 1.0, 2.0]])
def test_compound_reduce_in_place_equals_the_weighted_sum(gammas):
    """``reduce`` writes ``sum_k gamma_k W_k`` into ``w`` (same array object), in slot order, as
    ``reduce_arrays`` computes it."""
    devices = [rc.ConstantStepDevice() for _ in gammas]
    tile = _tile(rc.UnitCellRPUConfig(device=rc.VectorUnitCell(
        unit_cell_devices=devices, gamma_vec=gammas)))
    model = tile._model
    rng = np.random.default_rng(5)
    for dev in model.devices:
        dev.w[...] = rng.uniform(-0.5, 0.5, dev.w.shape).astype(np.float32)
    w_object = model.w
    model.reduce()
    expected = model.reduce_arrays([dev.w for dev in model.devices])
    assert model.w is w_object
    np.testing.assert_array_equal(model.w, expected)
    by_hand = sum(np.float32(g) * dev.w.astype(np.float64) for g, dev in
                  zip(gammas, model.devices))
    np.testing.assert_allclose(model.w, by_hand, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dynamic", [False, True])
def test_chopped_reduce_kernel_equals_the_numpy_reduction(dtype, dynamic):
    """A chopped transfer's ``reduce`` (one kernel pass, also at the end of the numba loop)
    gives the bits of ``reduce_arrays`` (chopper matrix times A, then the weighted sum), for
    every chopper pattern, NaN and signed zeros included, into the same ``w`` object."""
    cell = rc.DynamicTransferCompound if dynamic else rc.ChoppedTransferCompound
    tile = rpusim.AnalogTile(6, 7, rc.UnitCellRPUConfig(device=cell(
        unit_cell_devices=[rc.SoftBoundsDevice(), rc.SoftBoundsDevice()], gamma=0.3)),
        seed=1, dtype=dtype)
    model = tile._model
    rng = np.random.default_rng(7)
    for dev in model.devices:
        dev.w[...] = rng.uniform(-0.5, 0.5, dev.w.shape)
    a = model.devices[0].w
    a[0, 0], a[1, 1], a[2, 2] = np.nan, -0.0, 0.0
    w_object = model.w
    for _ in range(4):
        model.set_choppers(rng.random(7) < 0.5, rng.random(6) < 0.5)  # reduces
        expected = model.reduce_arrays([dev.w for dev in model.devices])
        assert model.w is w_object
        np.testing.assert_array_equal(model.w, expected)
        assert np.array_equal(np.signbit(model.w), np.signbit(expected))


def test_unpickled_inputs_take_the_short_paths_with_the_same_results():
    """An unpickled array's dtype object is equal to NumPy's but not the same object (data
    sent to a sweep worker); the tile views it with the canonical one, so the entry points are
    made and used, and the numbers are those of the original arrays."""
    rng = np.random.default_rng(6)
    x, d = _batch(rng, 3, 5, 1.0), _batch(rng, 3, 6, 0.1)
    xp, dp = pickle.loads(pickle.dumps(x)), pickle.loads(pickle.dumps(d))
    assert xp.dtype == x.dtype and xp.dtype is not x.dtype  # what this test is about
    results = []
    for xin, din in ((x, d), (xp, dp)):
        tile = _tile()
        ku._SMALL.clear()
        outputs = [tile.forward(xin), tile.backward(din)]
        tile.update(xin, din)
        tile.update(xin, din)
        assert tile._forward_mvm._entry is not None and len(ku._SMALL) == 1
        outputs.append(tile.get_weights())
        results.append(outputs)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", ["entry", "first call", "rows", "perfect", "modifier"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_raise_on_every_path_and_change_nothing(path, direction, bad):
    """The one-call MVM counts its inputs' finiteness as it reads them (no test before it);
    every path refuses a non-finite input with the same message and leaves the tile as it
    was: the next calls give what a tile that never saw it gives."""
    from rpusim.persistence import tile_state_dict
    rng = np.random.default_rng(1)
    out, inp, batch = (200, 200, 40) if path == "rows" else (6, 5, 3)
    config = rc.SingleRPUConfig(device=rc.SoftBoundsDevice())
    if path == "perfect":
        config.forward.is_perfect = config.backward.is_perfect = True
    if path == "modifier":
        config = rc.InferenceRPUConfig()
        config.modifier.type = rc.WeightModifierType.ADD_NORMAL
        config.modifier.std_dev = 0.1
    n = inp if direction == "forward" else out
    scale = 1.0 if direction == "forward" else 0.1
    good = _batch(rng, batch, n, scale)
    bad_input = good.copy()
    bad_input[batch - 1, n // 2] = bad  # in the last row: the earlier rows are computed first
    tiles = []
    for seen_bad in (True, False):
        tile = _tile(config, out, inp)
        call = getattr(tile, direction)
        if path != "first call":
            call(good)  # makes the entry point
        if seen_bad:
            before = tile_state_dict(tile)
            with pytest.raises(ValueError, match=("x" if direction == "forward" else "d")
                               + " must be finite"):
                call(bad_input)
            after = tile_state_dict(tile)
            assert before.keys() == after.keys()
            for k in before:
                np.testing.assert_array_equal(before[k], after[k], err_msg=k)
        tiles.append(call(good))
    np.testing.assert_array_equal(tiles[0], tiles[1])


def test_update_range_limits_follow_config_and_rate_changes():
    """The update's range limits are kept on the UpdateParameters; a field change or another
    learning rate must give the limits of the new settings, not the kept ones."""
    tile = _tile(rc.SingleRPUConfig(device=rc.ConstantStepDevice()))
    tiny = np.full((1, 5), 1e-6, np.float32), np.full((1, 6), 1e-6, np.float32)
    tile.update(*tiny, lr=2e4)  # lr / dw_min = 2e7 pulses per sample: fine with a fixed BL
    assert tile.rpu_config.update.__dict__["_range"] is not None
    upd = tile.rpu_config.update
    upd.fixed_bl = False
    upd.update_bl_management = False
    with pytest.raises(ValueError, match="fixed_bl=False"):
        tile.update(*tiny, lr=2e4)
    upd.fixed_bl = True
    tile.update(*tiny, lr=2e4)
    ones = np.ones((1, 5), np.float32), np.ones((1, 6), np.float32)
    tile.update(*ones, lr=0.05)
    with pytest.raises(ValueError, match="update too large"):
        tile.update(*ones, lr=2e9)  # lr * max|x| * max|d| / dw_min = 2e12 > 2^40
    # the tile is unchanged by the refused calls: the same as a tile that never saw them
    fresh = _tile(rc.SingleRPUConfig(device=rc.ConstantStepDevice()))
    fresh.update(*tiny, lr=2e4)
    fresh.update(*tiny, lr=2e4)
    fresh.update(*ones, lr=0.05)
    np.testing.assert_array_equal(tile.get_weights(), fresh.get_weights())


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_tiles_with_entry_points_pickle_and_copy_and_go_on_alike(copier):
    """Entry points (compiled closures) do not pickle: a tile that has made them pickles
    without them, and the copy goes on with the same numbers as the original."""
    rng = np.random.default_rng(2)
    tile = _tile()
    for _ in range(2):
        x, d = _batch(rng, 2, 5, 1.0), _batch(rng, 2, 6, 0.1)
        tile.forward(x)
        tile.backward(d)
        tile.update(x, d)
    assert tile._forward_mvm._entry is not None
    copy_ = (pickle.loads(pickle.dumps(tile)) if copier == "pickle" else copy.deepcopy(tile))
    outs = []
    for t in (tile, copy_):
        r = np.random.default_rng(3)
        x, d = _batch(r, 2, 5, 1.0), _batch(r, 2, 6, 0.1)
        outs.append((t.forward(x), t.backward(d)))
        t.update(x, d)
        outs.append((t.get_weights(), t.forward(x)))
    n = len(outs) // 2
    for a, b in zip(outs[:n], outs[n:]):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
