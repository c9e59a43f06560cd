"""The pulsed update engine against the NumPy reference, statistics and invariants (issue 2)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive
from rpusim import AnalogTile
from rpusim.configs import (ConstantStepDevice, FloatingPointRPUConfig, IdealDevice, PulseType,
                            SingleRPUConfig, UpdateParameters)


def quiet_constant_step(**kw):
    base = dict(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                up_down_dtod=0.0)
    base.update(kw)
    return ConstantStepDevice(**base)


def det_config(device=None, **upd):
    return SingleRPUConfig(device=device or quiet_constant_step(),
                           update=UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT,
                                                   **upd))


update_settings = st.fixed_dictionaries({
    "desired_bl": st.sampled_from([1, 3, 31, 100]),
    "fixed_bl": st.booleans(),
    "update_management": st.booleans(),
    "update_bl_management": st.booleans(),
    "um_grad_scale": st.sampled_from([1.0, 0.5, 2.0]),
    "x_res_implicit": st.sampled_from([0.0, 1 / 7, 0.1]),
    "d_res_implicit": st.sampled_from([0.0, 1 / 5]),
})


@given(settings=update_settings, lr=st.sampled_from([0.001, 0.01, 0.1, 0.5, 2.0]),
       seed=st.integers(0, 10_000), batch=st.integers(1, 5), up_down=st.sampled_from([0, 0.3]))
def test_deterministic_implicit_matches_reference(settings, lr, seed, batch, up_down):
    rng = np.random.default_rng(seed)
    out_size, in_size = 4, 6
    tile = AnalogTile(out_size, in_size, det_config(quiet_constant_step(up_down=up_down),
                                                    **settings), seed=seed)
    w0 = rng.uniform(-0.5, 0.5, (out_size, in_size)).astype(np.float32)
    tile.set_weights(w0)
    x = rng.uniform(-1, 1, (batch, in_size)).astype(np.float32)
    d = rng.uniform(-1, 1, (batch, out_size)).astype(np.float32)
    hidden = tile.get_hidden_parameters()
    expected = w0
    upd = tile.rpu_config.update
    for r in range(batch):
        counts = naive.det_implicit_counts(x[r], d[r], lr, 0.01, upd)
        expected = naive.apply_constant_step(expected, counts, hidden)
    tile.update(x, d, lr=lr)
    np.testing.assert_array_equal(tile.get_weights(), expected)


def test_deterministic_implicit_float32_rounding_case():
    """Spec update §4: lr 0.1, g 0.01, x_max 1, d_max 0.3 gives k = 3.0000002 in float32, so
    BL = 4 and the element with d = 0.2, x = 0.25 gets 1 pulse (exact arithmetic: 0)."""
    tile = AnalogTile(2, 2, det_config(quiet_constant_step(w_max=1.0, w_min=-1.0)), seed=0)
    tile.set_weights(np.zeros((2, 2)))
    tile.update(np.array([1.0, 0.25]), np.array([0.3, 0.2]), lr=0.1)
    counts = -np.rint(tile.get_weights() / 0.01).astype(int)
    assert counts[1, 1] == 1


@given(settings=update_settings, lr=st.sampled_from([0.01, 0.1, 1.0]), seed=st.integers(0, 999),
       res=st.sampled_from([0.0, 0.1, 1 / 31]))
def test_mean_count_matches_reference(settings, lr, seed, res):
    settings = {k: v for k, v in settings.items() if not k.endswith("implicit")}
    rng = np.random.default_rng(seed)
    config = SingleRPUConfig(device=quiet_constant_step(),
                             update=UpdateParameters(pulse_type=PulseType.MEAN_COUNT, res=res,
                                                     **settings))
    tile = AnalogTile(3, 5, config, seed=seed)
    w0 = rng.uniform(-0.3, 0.3, (3, 5)).astype(np.float32)
    tile.set_weights(w0)
    x = rng.uniform(-1, 1, 5).astype(np.float32)
    d = rng.uniform(-1, 1, 3).astype(np.float32)
    counts = naive.mean_counts(x, d, lr, 0.01, tile.rpu_config.update)
    expected = naive.apply_constant_step(w0, counts, tile.get_hidden_parameters())
    tile.update(x, d, lr=lr)
    np.testing.assert_array_equal(tile.get_weights(), expected)


def test_resolution_above_one_is_a_number_of_steps():
    """Verdict 4 (fix): x_res_implicit = 10 means 1/10, not a bin width that kills all pulses."""
    a = AnalogTile(2, 3, det_config(x_res_implicit=10), seed=0)
    b = AnalogTile(2, 3, det_config(x_res_implicit=0.1), seed=0)
    x, d = np.array([0.3, -0.7, 0.9]), np.array([0.5, -0.2])
    for t in (a, b):
        t.set_weights(np.zeros((2, 3)))
        t.update(x, d, lr=0.1)
    assert np.any(a.get_weights() != 0)
    np.testing.assert_array_equal(a.get_weights(), b.get_weights())


@pytest.mark.parametrize("config", [
    SingleRPUConfig(device=IdealDevice()),
    SingleRPUConfig(update=UpdateParameters(pulse_type=PulseType.NONE)),
    FloatingPointRPUConfig(),
], ids=["ideal", "pulse_none", "floating_point"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floating_point_update_is_exact_gemm(config, dtype):
    rng = np.random.default_rng(3)
    tile = AnalogTile(7, 5, config, seed=1, dtype=dtype)
    w0 = tile.get_weights()
    x, d = rng.normal(size=(4, 5)), rng.normal(size=(4, 7))
    tile.update(x, d, lr=0.3)
    expected = w0 - dtype(0.3) * (d.astype(dtype).T @ x.astype(dtype))
    np.testing.assert_allclose(tile.get_weights(), expected, rtol=1e-6 if dtype == np.float32
                               else 1e-14)
    assert tile.get_hidden_parameter_names() == []


def test_none_ignores_bounds_and_none_with_device_clips_per_sample():
    dev = quiet_constant_step(w_max=0.2, w_min=-0.2)
    x, d = np.ones((3, 2)), -np.ones((3, 2))
    plain = AnalogTile(2, 2, SingleRPUConfig(device=dev, update=UpdateParameters(
        pulse_type=PulseType.NONE)), seed=0)
    clip = AnalogTile(2, 2, SingleRPUConfig(device=dev, update=UpdateParameters(
        pulse_type=PulseType.NONE_WITH_DEVICE)), seed=0)
    for t in (plain, clip):
        t.set_weights(np.zeros((2, 2)))
        t.update(x, d, lr=0.1)
    np.testing.assert_allclose(plain.get_weights(), 0.3, rtol=1e-6)
    np.testing.assert_allclose(clip.get_weights(), 0.2, rtol=1e-6)


def test_lr_zero_does_nothing():
    tile = AnalogTile(3, 3, SingleRPUConfig(device=ConstantStepDevice(count_pulses=True)), seed=2)
    before = tile.get_weights()
    tile.update(np.ones(3), np.ones(3), lr=0.0)
    np.testing.assert_array_equal(tile.get_weights(), before)
    assert tile.get_pulse_counters().sum() == 0


# -- stochastic pulse trains ------------------------------------------------------------------

def _count_trials(pulse_type, x, d, lr, trials, seed=0, **upd):
    """Signed pulse counts of many single-sample updates (noise-free device, +-1 per pulse)."""
    dev = quiet_constant_step(dw_min=1e-4, w_max=10.0, w_min=-10.0)
    config = SingleRPUConfig(device=dev, update=UpdateParameters(pulse_type=pulse_type, **upd))
    tile = AnalogTile(len(d), len(x), config, seed=seed)
    out = np.empty((trials, len(d), len(x)))
    for t in range(trials):
        tile.set_weights(np.zeros((len(d), len(x))))
        tile.update(x, d, lr=lr)
        out[t] = -tile.get_weights() / 1e-4
    return np.rint(out)


@pytest.mark.slow
@pytest.mark.parametrize("pulse_type", [PulseType.STOCHASTIC_COMPRESSED, PulseType.STOCHASTIC])
@pytest.mark.parametrize("um", [True, False])
def test_stochastic_mean_and_variance(pulse_type, um):
    """E[n] = BL p_x p_d and Var[n] = BL p (1 - p) with p = p_x p_d per element (update §5)."""
    x = np.array([0.5, -0.25, 1.0, 0.0])
    d = np.array([0.4, -0.8, 0.1])
    lr, g, bl = 0.002, 1e-4, 31
    counts = _count_trials(pulse_type, x, d, lr, 3000, update_management=um,
                           update_bl_management=False)
    _, a, b = naive.bl_a_b(x, d, lr, g, bl, True, False, um)
    px = np.minimum(1, np.abs(x) * b)
    pd = np.minimum(1, np.abs(d) * a)
    p = np.outer(pd, px)
    mean = bl * p * np.sign(np.outer(d, x))
    var = bl * p * (1 - p)
    se = np.sqrt(var / counts.shape[0]) + 1e-12
    assert np.all(np.abs(counts.mean(0) - mean) <= 5 * se)
    np.testing.assert_allclose(counts.var(0), var, rtol=0.15, atol=1e-9)
    if not um:
        # without UM (and no clipping) the expected change is exactly -lr d x^T
        np.testing.assert_allclose(mean * g, lr * np.outer(d, x), rtol=1e-5)


@pytest.mark.slow
def test_coincidences_share_bit_trains():
    """p_x = p_d = 0.5, BL = 4: counts of elements sharing a row or column correlate with 1/3,
    elements sharing neither are uncorrelated (independent binomials would give 0 for both)."""
    # A = B = sqrt(lr/(g BL)) = 1 with lr = 4 g; |x| = |d| = 0.5 gives p = 0.5
    x = np.array([0.5, 0.5])
    d = np.array([0.5, 0.5])
    counts = _count_trials(PulseType.STOCHASTIC_COMPRESSED, x, d, 4e-4, 6000, seed=5,
                           desired_bl=4, update_management=False, update_bl_management=False)
    c = counts.reshape(len(counts), 4)
    corr = np.corrcoef(c.T)
    se = 1 / np.sqrt(len(counts))
    assert abs(corr[0, 1] - 1 / 3) < 5 * se  # same row
    assert abs(corr[0, 2] - 1 / 3) < 5 * se  # same column
    assert abs(corr[0, 3]) < 5 * se          # neither
    np.testing.assert_allclose(c.mean(0), 4 * 0.25, atol=5 * np.sqrt(4 * 0.25 * 0.75 / len(c)))


@pytest.mark.slow
def test_expected_change_of_default_constant_step_is_minus_lr_dx():
    """Default config (STOCHASTIC_COMPRESSED, UM+UBLM), dw_min_std noise on: E[dW] = -lr d x^T."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, 6)
    d = rng.uniform(-0.05, 0.05, 4)
    dev = ConstantStepDevice(dw_min_dtod=0.0, up_down_dtod=0.0, w_max=10.0, w_min=-10.0)
    tile = AnalogTile(4, 6, SingleRPUConfig(device=dev), seed=1)
    trials = 2000
    acc = np.zeros((4, 6))
    acc2 = np.zeros((4, 6))
    for _ in range(trials):
        tile.set_weights(np.zeros((4, 6)))
        tile.update(x, d, lr=0.5)
        w = tile.get_weights().astype(np.float64)
        acc += w
        acc2 += w * w
    mean = acc / trials
    se = np.sqrt((acc2 / trials - mean**2) / trials) + 1e-9
    assert np.all(np.abs(mean + 0.5 * np.outer(d, x)) <= 5 * se)


# -- invariants -------------------------------------------------------------------------------

arrays = st.integers(0, 2**31 - 1)


@given(seed=arrays, pulse_type=st.sampled_from([PulseType.STOCHASTIC_COMPRESSED,
                                                PulseType.DETERMINISTIC_IMPLICIT,
                                                PulseType.MEAN_COUNT]),
       lr=st.sampled_from([0.01, 0.1, 1.0, 10.0]))
def test_weights_stay_within_bounds(seed, pulse_type, lr):
    rng = np.random.default_rng(seed)
    dev = ConstantStepDevice(dw_min=0.05, w_max=0.3, w_min=-0.2)
    tile = AnalogTile(5, 4, SingleRPUConfig(device=dev, update=UpdateParameters(
        pulse_type=pulse_type)), seed=seed)
    for _ in range(3):
        tile.update(rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), lr=lr)
    h = tile.get_hidden_parameters()
    w = tile.get_weights()
    assert np.all(w <= h["max_bound"]) and np.all(w >= h["min_bound"])


@given(seed=arrays, sign=st.sampled_from([-1.0, 1.0]))
def test_up_pulses_never_lower_without_ctoc_noise(seed, sign):
    rng = np.random.default_rng(seed)
    dev = ConstantStepDevice(dw_min_std=0.0)
    tile = AnalogTile(4, 4, SingleRPUConfig(device=dev), seed=seed)
    before = tile.get_weights()
    x = np.abs(rng.uniform(0.1, 1, (2, 4)))
    d = sign * np.abs(rng.uniform(0.1, 1, (2, 4)))
    tile.update(x, d, lr=0.05)
    delta = tile.get_weights() - before
    # d < 0 and x > 0 give up pulses (weights rise); d > 0 gives down pulses
    assert np.all(delta * -sign >= 0)


@given(seed=arrays)
def test_set_get_weights_round_trip_within_bounds(seed):
    rng = np.random.default_rng(seed)
    tile = AnalogTile(3, 4, seed=seed)
    h = tile.get_hidden_parameters()
    w = rng.uniform(h["min_bound"], h["max_bound"]).astype(np.float32)
    tile.set_weights(w)
    np.testing.assert_array_equal(tile.get_weights(), w)


@given(seed=arrays)
def test_hidden_parameters_round_trip(seed):
    rng = np.random.default_rng(seed)
    tile = AnalogTile(3, 2, seed=seed)
    new = {n: rng.uniform(0.001, 0.5, (3, 2)).astype(np.float32)
           for n in tile.get_hidden_parameter_names()}
    new["min_bound"] = -new["min_bound"]
    tile.set_hidden_parameters(new)
    got = tile.get_hidden_parameters()
    assert list(got) == tile.get_hidden_parameter_names()
    for name, value in new.items():
        np.testing.assert_array_equal(got[name], value)


def test_set_hidden_parameters_changes_the_next_pulse():
    tile = AnalogTile(1, 1, det_config(), seed=0)
    tile.set_weights(np.zeros((1, 1)))
    tile.set_hidden_parameters({"dwmin_up": np.full((1, 1), 0.013)})
    tile.update(np.ones(1), -np.ones(1), lr=0.01)  # one up pulse
    np.testing.assert_allclose(tile.get_weights(), 0.013, rtol=1e-6)


@given(seed=arrays, pulse_type=st.sampled_from([PulseType.STOCHASTIC_COMPRESSED,
                                                PulseType.STOCHASTIC, PulseType.MEAN_COUNT]))
def test_same_seed_same_bits(seed, pulse_type):
    rng = np.random.default_rng(seed)
    x, d = rng.normal(size=(4, 6)), rng.normal(size=(4, 5))
    results = []
    for _ in range(2):
        tile = AnalogTile(5, 6, SingleRPUConfig(update=UpdateParameters(pulse_type=pulse_type)),
                          seed=seed)
        tile.update(x, d, lr=0.05)
        tile.decay_weights()
        results.append(tile.get_weights())
    np.testing.assert_array_equal(results[0], results[1])


def test_different_seeds_differ():
    w = [AnalogTile(5, 6, seed=s).get_weights() for s in (1, 2)]
    assert not np.array_equal(w[0], w[1])


def test_update_plan_follows_config_changes():
    """The engine's derived plan is kept per UpdateParameters object and dropped by any field
    change, so a config edited between updates takes effect."""
    from rpusim.kernels.update import KIND_MEAN_COUNT, _plan

    upd = UpdateParameters()
    first = _plan(upd)
    assert _plan(upd) is first
    upd.desired_bl = 5
    second = _plan(upd)
    assert second is not first and second[1][0] == 5 and second[3][1] == 5
    upd.pulse_type = PulseType.MEAN_COUNT
    upd.res = 4.0
    kind, _, _, floats = _plan(upd)
    assert kind == KIND_MEAN_COUNT and floats[2] == 0.25


def test_small_update_entry_point_only_serves_matching_inputs():
    """The small-update path reuses a compiled entry point per device model; inputs of another
    numba type (read-only, strided) must still give exactly the dispatcher's result."""
    results = []
    for make in (lambda a: a, lambda a: np.asfortranarray(a),
                 lambda a: np.lib.stride_tricks.as_strided(a, writeable=False)):
        tile = AnalogTile(6, 5, SingleRPUConfig(device=ConstantStepDevice()), seed=4)
        rng = np.random.default_rng(1)
        for _ in range(3):
            x = rng.uniform(-1, 1, (4, 5)).astype(np.float32)
            d = rng.uniform(-1, 1, (4, 6)).astype(np.float32)
            tile.update(make(x), make(d), lr=0.1)
        results.append(tile.get_weights())
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


def test_small_update_record_follows_the_learning_rate():
    """The small-update record of a state serves calls at another learning rate (compounds
    with auto-scaling move it every sample) with that rate's constants and sign: the same
    weights as calls that type their arguments afresh."""
    from rpusim.kernels import update as engine

    results = []
    for fresh in (False, True):
        tile = AnalogTile(6, 5, SingleRPUConfig(device=ConstantStepDevice()), seed=4)
        model = tile._model
        rng = np.random.default_rng(1)
        for lr in (0.1, 0.2, -0.15, 0.2, 0.1):
            if fresh:
                engine._SMALL.clear()
            x = rng.uniform(-1, 1, (3, 5)).astype(np.float32)
            d = rng.uniform(-1, 1, (3, 6)).astype(np.float32)
            model.update(x, d, lr, tile.rpu_config.update)
        results.append(tile.get_weights())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype,tiny", [(np.float32, 1.1e-43), (np.float64, 1e-320)])
def test_update_of_denormal_inputs_is_no_pulse(dtype, tiny):
    """lr * x * d underflows to 0: bit-length management gives BL 0, i.e. no pulse (was a
    ZeroDivisionError found by fuzzing)."""
    cfg = SingleRPUConfig(device=ConstantStepDevice(dw_min_std=0.3, count_pulses=True))
    tile = AnalogTile(3, 4, cfg, seed=5, dtype=dtype)
    before = tile.get_weights()
    tile.update(np.full((2, 4), tiny), np.full((2, 3), tiny * 1e7))
    np.testing.assert_array_equal(tile.get_weights(), before)
    assert tile.get_pulse_counters().sum() == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pulse_type", [PulseType.STOCHASTIC_COMPRESSED,
                                        PulseType.DETERMINISTIC_IMPLICIT, PulseType.MEAN_COUNT])
@pytest.mark.parametrize("ubm", [True, False])
def test_update_management_balances_any_representable_xd_ratio(dtype, pulse_type, ubm):
    """Update management scales x by B and d by A with ``A / B = max|x| / max|d|`` (spec
    update §4.2), so scaling x by 2^-s and d by 2^s (exact in floats) gives the same
    probabilities and the same pulses, bit for bit, for ratios far beyond 2^60 (a vanishing
    gradient behind saturated units; rpusim refused ratios above 2^60 before, aihwkit trains
    on)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (5, 6)).astype(dtype)
    d = rng.uniform(-1, 1, (5, 4)).astype(dtype)
    cfg = SingleRPUConfig(device=ConstantStepDevice(), update=UpdateParameters(
        pulse_type=pulse_type, update_bl_management=ubm, update_management=True))
    results = []
    for s in (0, 40, -40, 60):
        tile = AnalogTile(4, 6, cfg, seed=9, dtype=dtype)
        tile.update(x * dtype(2.0 ** -s), d * dtype(2.0 ** s), lr=0.1)
        results.append(tile.get_weights())
    assert not np.array_equal(results[0], AnalogTile(4, 6, cfg, seed=9, dtype=dtype)
                              .get_weights())
    for w in results[1:]:
        np.testing.assert_array_equal(w, results[0])


@pytest.mark.parametrize("pulse_type", [PulseType.STOCHASTIC_COMPRESSED,
                                        PulseType.DETERMINISTIC_IMPLICIT, PulseType.MEAN_COUNT])
def test_xd_ratio_beyond_float_range_is_no_pulse(pulse_type):
    """max|x| / max|d| beyond float32's range makes one scale 0 and the other inf: aihwkit's
    probabilities on one side are then 0 (or below 2^-60), so no pulse; the other samples of
    the batch are updated as usual (the same weights as without the extreme sample)."""
    cfg = SingleRPUConfig(device=ConstantStepDevice(count_pulses=True), update=UpdateParameters(
        pulse_type=pulse_type))
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (3, 6)).astype(np.float32)
    d = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
    for scale_x, scale_d in ((1e-30, 1e30), (1.0, 1e-39), (1e-25, 1e-15)):
        tile = AnalogTile(4, 6, cfg, seed=2)
        before = tile.get_weights()
        tile.update(x[:1] * np.float32(scale_x), d[:1] * np.float32(scale_d), lr=0.1)
        np.testing.assert_array_equal(tile.get_weights(), before)
        assert tile.get_pulse_counters().sum() == 0
    if pulse_type != PulseType.STOCHASTIC_COMPRESSED:  # deterministic: the others unchanged
        alone, mixed = AnalogTile(4, 6, cfg, seed=2), AnalogTile(4, 6, cfg, seed=2)
        alone.update(x[1:], d[1:], lr=0.1)
        x_mixed, d_mixed = x.copy(), d.copy()
        x_mixed[0] *= np.float32(1e-30)
        d_mixed[0] *= np.float32(1e30)
        mixed.update(x_mixed, d_mixed, lr=0.1)
        np.testing.assert_array_equal(mixed.get_weights(), alone.get_weights())


@given(desired_bl=st.sampled_from([1, 2, 31, 64, 100]), ubm=st.booleans(), um=st.booleans(),
       res=st.sampled_from([0.0, 0.1, 1 / 7]), sto=st.booleans(),
       lr=st.sampled_from([0.001, 0.05, 1.0]), seed=st.integers(0, 10_000),
       shape=st.sampled_from([(1, 1, 1), (3, 9, 8), (7, 64, 5), (2, 5, 70)]),
       sparsity=st.sampled_from([0.0, 0.5, 0.9]), parallel=st.booleans())
def test_fused_stochastic_stages_equal_the_separate_kernels(desired_bl, ubm, um, res, sto, lr,
                                                            seed, shape, sparsity, parallel):
    """The one-pass stages of a stochastic update (``_stochastic_lines``, serial and parallel
    twins) give the BLs, probabilities, d trains and compact x lists of the separate kernels
    (``_prepare``, ``_bit_trains``, ``_active_columns``) bit for bit, for dense and sparse
    inputs, one-bit and longer trains; samples whose trains exceed one word are counted and
    left with empty lists."""
    from rpusim.kernels import update as engine

    m, nx, nd = shape
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (m, nx)).astype(np.float32)
    D = rng.uniform(-0.1, 0.1, (m, nd)).astype(np.float32)
    X[rng.random((m, nx)) < sparsity] = 0
    D[rng.random((m, nd)) < sparsity / 2] = 0
    upd = UpdateParameters(pulse_type=PulseType.STOCHASTIC_COMPRESSED, desired_bl=desired_bl,
                           update_bl_management=ubm, update_management=um, res=res,
                           sto_round=sto)
    kind, flags, _, floats = engine._plan(upd)
    c = engine._constants(floats, lr, 0.001, np.float32)
    key = np.uint64(seed)

    def scratch():
        return (np.empty(m, np.int64), np.empty((m, nx), np.float32),
                np.empty((m, nd), np.float32), np.empty((max(m, nd), 2), np.uint64))

    bl, xq, dq, states = scratch()
    engine._prepare_s(X, D, c, flags, key, bl, xq, dq, states)
    nw = max(1, (int(bl.max()) + 63) // 64)
    xbits = np.empty((m, nx, nw), np.uint64)
    dbits = np.empty((m, nd, nw), np.uint64)
    engine._bit_trains_s(xq, bl, key, 2, xbits)
    engine._bit_trains_s(dq, bl, key, 3, dbits)
    cols = np.empty((m, nx), np.uint32)
    ncols = np.empty(m, np.int64)
    xneg = np.empty((m, nx), np.bool_)
    xwords = np.empty((m, nx, nw), np.uint64)
    engine._active_columns_s(xq, xbits, kind, cols, ncols, xwords, xneg)

    bl2, xq2, dq2, states2 = scratch()
    dbits2 = np.empty((m, nd), np.uint64)
    cols2 = np.empty((m, nx), np.uint32)
    ncols2 = np.empty(m, np.int64)
    xneg2 = np.empty((m, nx), np.bool_)
    xwords2 = np.empty((m, nx), np.uint64)
    lines = engine._lines_k[0 if parallel else 1]
    long_trains = lines(X, D, c, flags, key, bl2, xq2, dq2, dbits2, cols2, ncols2, xwords2,
                        xneg2, states2)
    np.testing.assert_array_equal(bl2, bl)
    np.testing.assert_array_equal(xq2.view(np.int32), xq.view(np.int32))
    np.testing.assert_array_equal(dq2.view(np.int32), dq.view(np.int32))
    assert long_trains == int((bl > 64).sum())
    for r in range(m):
        if bl[r] > 64:
            assert ncols2[r] == 0
            continue
        n = ncols[r]
        assert ncols2[r] == n
        np.testing.assert_array_equal(cols2[r, :n], cols[r, :n])
        np.testing.assert_array_equal(xneg2[r, :n], xneg[r, :n])
        np.testing.assert_array_equal(xwords2[r, :n], xwords[r, :n, 0])
        np.testing.assert_array_equal(dbits2[r], dbits[r, :, 0])


@given(desired_bl=st.sampled_from([1, 5, 31, 100]), ubm=st.booleans(),
       lr=st.sampled_from([-0.05, 0.01, 0.5]), seed=st.integers(0, 10_000),
       shape=st.sampled_from([(1, 1, 1), (1, 25, 16), (3, 9, 8), (1, 64, 5)]),
       sparsity=st.sampled_from([0.0, 0.5]))
def test_update_on_kept_scratch_equals_the_small_update_composite(desired_bl, ubm, lr, seed,
                                                                 shape, sparsity):
    """``stochastic_update_into`` (the chopped transfers' per-sample update) on scratch arrays
    kept across calls gives the small-update composite's weights and device state bit for bit,
    and refuses (changing nothing) exactly where the composite does: trains longer than one
    word. The scratch is used twice, for two different batches, so that what the first call
    left in it cannot decide the second."""
    from rpusim.configs import SoftBoundsDevice
    from rpusim.kernels import update as engine

    m, nx, nd = shape
    rng = np.random.default_rng(seed)
    tile = AnalogTile(nd, nx, SingleRPUConfig(device=SoftBoundsDevice(dw_min_std=0.3)),
                      seed=seed)
    model = tile._model
    upd = UpdateParameters(pulse_type=PulseType.STOCHASTIC_COMPRESSED, desired_bl=desired_bl,
                           update_bl_management=ubm)
    _, flags_pos, flags_neg, floats = engine._plan(upd)
    flags = flags_neg if lr < 0 else flags_pos
    c = engine._constants(floats, lr, model.granularity, np.float32)
    composite = engine._apply_k[(True, True)][2]
    scratch = engine.update_scratch(np.empty((m, nx), np.float32),
                                    np.empty((m, nd), np.float32))
    W1, P1 = model.w.copy(), model.P.copy()
    W2, P2 = model.w.copy(), model.P.copy()
    for call in range(2):
        X = rng.uniform(-1, 1, (m, nx)).astype(np.float32)
        D = rng.uniform(-0.5, 0.5, (m, nd)).astype(np.float32)
        X[rng.random((m, nx)) < sparsity] = 0
        key = np.uint64(seed * 7 + call)
        before = W2.copy(), P2.copy()
        done = composite(W1, P1, X, D, c, flags, key, key, model.params)
        assert engine.stochastic_update_into(W2, P2, X, D, c, flags, key, model.params,
                                             scratch) == done
        if not done:
            np.testing.assert_array_equal(W2, before[0])
            np.testing.assert_array_equal(P2, before[1])
            return
        np.testing.assert_array_equal(W2.view(np.int32), W1.view(np.int32))
        np.testing.assert_array_equal(P2.view(np.int32), P1.view(np.int32))


@given(seed=st.integers(0, 10_000), d_scale=st.sampled_from([1e-3, 0.05, 1.0]),
       shape=st.sampled_from([(4, 6), (16, 25), (40, 3)]))
def test_pulse_counters_count_the_pulses_applied(seed, d_scale, shape):
    """The pulse counters (the totals kernel, which also decides the write-noise redraw)
    equal the pulses the update applied, element by element, including the d trains that do
    not fire (small errors leave most of them empty). One sample: every pulse of an element
    has the same sign, so a quiet ConstantStep device's weight moves by exactly the count
    times dw_min (far from its bounds)."""
    nd, nx = shape
    rng = np.random.default_rng(seed)
    dw = 1 / 64  # a power of two: the weight's steps add exactly
    tile = AnalogTile(nd, nx, SingleRPUConfig(device=quiet_constant_step(
        dw_min=dw, w_max=100.0, w_min=-100.0, count_pulses=True)), seed=seed)
    tile.set_weights(np.zeros((nd, nx), np.float32))
    x = rng.uniform(-1, 1, (1, nx)).astype(np.float32)
    d = (rng.uniform(-1, 1, (1, nd)) * d_scale).astype(np.float32)
    tile.update(x, d, lr=0.5)
    moved = np.abs(tile.get_weights()) / np.float32(dw)
    np.testing.assert_array_equal(tile.get_pulse_counters(), np.rint(moved).astype(np.int64))
    assert np.array_equal(moved, np.rint(moved))
    if d_scale == 1.0:
        assert tile.get_pulse_counters().sum() > 0
