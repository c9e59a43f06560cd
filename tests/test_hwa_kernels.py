"""Weight modifier, clip and remap kernels against the NumPy references of tests/naive.py.

Each modifier kernel is replayed exactly: the test reads the kernel's own random streams
(``row_draws`` with the same key and tags) and feeds them to the reference. The stochastic
modifiers are also compared in distribution with the reference on NumPy's draws.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive
from rpusim.configs import (WeightClipParameter, WeightClipType, WeightModifierParameter,
                            WeightModifierType, WeightRemapParameter, WeightRemapType)
from rpusim.hwa import _CLIP_KIND
from rpusim.kernels import modifiers as kmod
from rpusim.kernels.io import row_draws

KEY = np.uint64(0x1234_5678_9ABC_DEF1)


def run_kernel(W, mod, key=KEY, sample=0):
    """The kernel's W_fb, as the tile's HardwareAwareState calls it."""
    from rpusim.hwa import HardwareAwareState

    class Cfg:
        clip, remap, modifier = WeightClipParameter(), WeightRemapParameter(), mod

    mod.validate()
    state = HardwareAwareState(Cfg, *W.shape, W.dtype, rng=None)
    out = np.empty_like(W)
    state._modify(W, out, key, sample)
    return out


def stream_draws(W, key=KEY, sample=0):
    """The kernel's normals, rounding uniforms and drop uniforms (one per element each)."""
    rows = np.arange(W.shape[0], dtype=np.int64)
    base = sample * kmod.N_TAGS
    n = W.shape[1]
    xi = row_draws(key, rows, base + 1, n, True, np.zeros(3, np.float32))
    u_round = row_draws(key, rows, base + 0, n, False, np.zeros(3, np.float64))
    u_drop = row_draws(key, rows, base + 2, n, False, np.zeros(3, np.float64))
    return xi, u_round, u_drop


def weights(shape=(7, 9), seed=0, scale=0.8):
    return np.random.default_rng(seed).uniform(-scale, scale, shape).astype(np.float32)


CASES = [
    dict(type="DISCRETIZE", res=0.1),
    dict(type="DISCRETIZE", res=1 / 7, sto_round=True),
    dict(type="DISCRETIZE", res=0.0),
    dict(type="DISCRETIZE", res=0.25, rel_to_actual_wmax=False, assumed_wmax=0.5),
    dict(type="MULT_NORMAL", std_dev=0.1),
    dict(type="ADD_NORMAL", std_dev=0.05, pdrop=0.2),
    dict(type="ADD_NORMAL", std_dev=0.05, copy_last_column=True),
    dict(type="DISCRETIZE_ADD_NORMAL", res=0.2, std_dev=0.03, sto_round=True),
    dict(type="DISCRETIZE_ADD_NORMAL", res=0.0, std_dev=0.03),
    dict(type="DOREFA", res=0.125, dorefa_clip=0.6),
    dict(type="DOREFA", res=0.1, sto_round=True, dorefa_clip=-0.8),
    dict(type="POLY", std_dev=0.5),
    dict(type="POLY", std_dev=0.5, coeffs=[0.1, 0.0, 0.3, -0.1], rel_to_actual_wmax=False,
         assumed_wmax=2.0),
    dict(type="PROG_NOISE", std_dev=2.0, coeffs=[0.26348, 1.9650, -1.1731]),
    dict(type="DROP_CONNECT", pdrop=0.3),
    dict(type="COPY", pdrop=0.5, copy_last_column=True),
    dict(type="MULT_NORMAL", std_dev=0.0, pdrop=0.1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_modifier_kernel_replays_reference(case):
    W = weights()
    mod = WeightModifierParameter(**case)
    got = run_kernel(W, mod)
    expected = naive.modify(W, mod, *stream_draws(W))
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7)


def test_deterministic_modifiers_exact_values():
    """Hand-computed: DISCRETIZE rounds half away from zero on W / amax."""
    W = np.array([[0.5, -0.25, 0.125, -0.0625]], np.float32)
    mod = WeightModifierParameter(type="DISCRETIZE", res=0.25)
    # W / amax = [1, -0.5, 0.25, -0.125] -> [1, -0.5, 0.25, -0.25] -> * 0.5
    np.testing.assert_array_equal(run_kernel(W, mod), [[0.5, -0.25, 0.125, -0.125]])
    mod = WeightModifierParameter(type="DOREFA", res=0.5, dorefa_clip=0.6)
    # tanh(W) * 0.6 / tanh(0.5) -> round to halves
    v = np.tanh(W.astype(np.float64)) * 0.6 / np.tanh(0.5)
    np.testing.assert_array_equal(run_kernel(W, mod), (np.sign(v) * np.floor(np.abs(v) / 0.5
                                                                            + 0.5) * 0.5))


def test_round_half_away_matches_c_roundf():
    v = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, -0.49999997, 3.0, 0.0], np.float32)
    got = np.array([kmod.round_half_away(x) for x in v])
    np.testing.assert_array_equal(got, [1, 2, 3, -1, -3, 0, 0, 3, 0])


def test_per_sample_draws_are_independent_and_keyed():
    W = weights()
    mod = WeightModifierParameter(type="ADD_NORMAL", std_dev=0.1)
    a, b = run_kernel(W, mod, sample=0), run_kernel(W, mod, sample=1)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, run_kernel(W, mod, sample=0))
    expected = naive.modify(W, mod, *stream_draws(W, sample=1))
    np.testing.assert_allclose(b, expected, rtol=2e-6, atol=1e-7)


def test_amax_ignores_last_column_with_copy_last_column():
    W = np.array([[0.1, 5.0], [-0.2, 0.0]], np.float32)
    assert kmod.modifier_amax(W, True) == np.float32(0.2)
    assert kmod.modifier_amax(W, False) == np.float32(5.0)
    assert kmod.modifier_amax(np.zeros((2, 2), np.float32), False) == 1.0


# -- distributions ---------------------------------------------------------------------------
STOCHASTIC = [
    dict(type="MULT_NORMAL", std_dev=0.2),
    dict(type="ADD_NORMAL", std_dev=0.1),
    dict(type="DISCRETIZE_ADD_NORMAL", res=0.25, std_dev=0.05, sto_round=True),
    dict(type="DISCRETIZE", res=0.2, sto_round=True),
    dict(type="DOREFA", res=0.2, sto_round=True),
    dict(type="POLY", std_dev=0.5),
    dict(type="PROG_NOISE", std_dev=5.0, coeffs=[0.26348, 1.9650, -1.1731]),
    dict(type="DROP_CONNECT", pdrop=0.3),
    dict(type="PCM_NOISE", std_dev=1.0),
    dict(type="PCM_NOISE", std_dev=2.0, pcm_t_inference=3600.0, pcm_zero_thres=1.0),
    dict(type="PCM_NOISE", std_dev=1.0, pcm_prob_at_reset=0.1, pcm_prob_at_gmax=0.1,
         pcm_prob_at_random=0.1, pcm_t_inference=100.0),
]


def _column_moments(samples):
    """Per-column mean and variance over rows, with their standard errors."""
    n = samples.shape[0]
    mean, var = samples.mean(axis=0), samples.var(axis=0, ddof=1)
    m4 = ((samples - mean) ** 4).mean(axis=0)
    return mean, var, np.sqrt(var / n), np.sqrt(np.maximum(m4 - var ** 2 * (n - 3) / (n - 1),
                                                           1e-30) / n)


@pytest.mark.slow
@pytest.mark.parametrize("case", STOCHASTIC, ids=lambda c: "-".join(f"{k}={v}"
                                                                     for k, v in c.items()))
def test_stochastic_modifiers_in_distribution(case):
    """Kernel draws vs the reference on NumPy's draws: per-column mean and variance within
    5 standard errors of the difference (each column holds one weight value)."""
    rows = 20000
    levels = np.array([-0.9, -0.41, -0.05, 0.0, 0.13, 0.5, 1.0], np.float32)
    W = np.tile(levels, (rows, 1))
    mod = WeightModifierParameter(**case)
    got = run_kernel(W, mod).astype(np.float64)
    gen = np.random.default_rng(7)
    if mod.type == WeightModifierType.PCM_NOISE:
        ref = naive.pcm_noise_modifier(W, mod, gen)
    else:
        xi = gen.standard_normal(W.shape).astype(np.float32)
        ref = naive.modify(W, mod, xi, gen.random(W.shape), gen.random(W.shape))
    m1, v1, se_m1, se_v1 = _column_moments(got)
    m2, v2, se_m2, se_v2 = _column_moments(np.asarray(ref, np.float64))
    tol_m = 5 * np.hypot(se_m1, se_m2) + 1e-6
    tol_v = 5 * np.hypot(se_v1, se_v2) + 1e-9
    assert np.all(np.abs(m1 - m2) <= tol_m), (m1, m2, tol_m)
    assert np.all(np.abs(v1 - v2) <= tol_v), (v1, v2, tol_v)


@pytest.mark.slow
def test_add_normal_moments_from_formula():
    """ADD_NORMAL: W_fb - W ~ N(0, (std_dev amax)^2), amax = max|W| (formula of section 10)."""
    W = weights((400, 300), seed=3, scale=0.5)
    mod = WeightModifierParameter(type="ADD_NORMAL", std_dev=0.1)
    z = (run_kernel(W, mod) - W).astype(np.float64) / (0.1 * np.abs(W).max())
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)


# -- clipping and remapping ------------------------------------------------------------------
@pytest.mark.parametrize("clip", [
    WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=0.3),
    WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=-1.0),
    WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=1.5),
    WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=2.5, fixed_value=0.2),
    WeightClipParameter(type=WeightClipType.AVERAGE_CHANNEL_MAX),
    WeightClipParameter(type=WeightClipType.AVERAGE_CHANNEL_MAX, fixed_value=0.1),
])
def test_clip_value_matches_reference(clip):
    W = weights((6, 11), seed=4)
    c = kmod.clip_value(W, _CLIP_KIND[clip.type], clip.fixed_value, clip.sigma)
    expected = naive.clip_value(W, clip)
    assert c == pytest.approx(expected, rel=1e-5)
    if c > 0:
        kmod.clip_weights(W, c)
        assert np.abs(W).max() <= c


@pytest.mark.parametrize("fixed_value, expected", [(0.3, 0.3), (-1.0, -1.0)])
def test_layer_gaussian_clip_of_a_single_weight_as_aihwkit(fixed_value, expected):
    """One weight has no spread (0 / 0): aihwkit's NaN loses to a positive fixed value in its
    MIN, so the weight is clipped to it (checked in aihwkit 1.2.0 with a 1x1 layer and the
    corner tile of a split layer); without a fixed value nothing is clipped."""
    W = np.array([[0.5]], np.float32)
    clip = WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=2.0,
                               fixed_value=fixed_value)
    c = kmod.clip_value(W, _CLIP_KIND[clip.type], clip.fixed_value, clip.sigma)
    assert c == pytest.approx(expected) and naive.clip_value(W, clip) == pytest.approx(expected)


@pytest.mark.parametrize("remap", [
    WeightRemapParameter(type=WeightRemapType.LAYERWISE_SYMMETRIC),
    WeightRemapParameter(type=WeightRemapType.LAYERWISE_SYMMETRIC, remapped_wmax=0.5),
    WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC),
    WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC, remapped_wmax=2.0),
    WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC, max_scale_range=1.5),
    WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC, max_scale_range=1.2,
                         max_scale_ref=0.9),
])
def test_remap_matches_reference(remap):
    W = weights((5, 8), seed=5)
    W[2] = 0.0  # a zero row keeps its scale
    s = np.random.default_rng(1).uniform(0.5, 2.0, 5).astype(np.float32)
    W_ref, s_ref = naive.remap(W, s, remap)
    if remap.type == WeightRemapType.LAYERWISE_SYMMETRIC:
        kmod.remap_layerwise(W, s, remap.remapped_wmax)
    else:
        kmod.remap_channelwise(W, s, remap.remapped_wmax, remap.max_scale_range,
                               remap.max_scale_ref)
    np.testing.assert_allclose(W, W_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s, s_ref, rtol=1e-5)


def test_remap_exact_small_case():
    """By hand: rows with max 0.5 and 0.25, remapped_wmax 1 -> scales 0.5 and 0.25."""
    W = np.array([[0.5, -0.25], [0.125, -0.25]], np.float32)
    s = np.ones(2, np.float32)
    kmod.remap_channelwise(W, s, 1.0, 0.0, 0.0)
    np.testing.assert_array_equal(W, [[1.0, -0.5], [0.5, -1.0]])
    np.testing.assert_array_equal(s, [0.5, 0.25])


finite = st.floats(-3, 3, allow_nan=False, width=32)


@given(st.integers(1, 6), st.integers(1, 6), st.data(),
       st.sampled_from(list(WeightClipType)[1:]), st.floats(0.1, 3),
       st.floats(-1, 2).filter(lambda v: abs(v) > 1e-6))
def test_clip_bounds_hold(rows, cols, data, kind, sigma, fixed):
    W = np.array(data.draw(st.lists(finite, min_size=rows * cols, max_size=rows * cols)),
                 np.float32).reshape(rows, cols)
    c = kmod.clip_value(W, _CLIP_KIND[kind], fixed, sigma)
    before = W.copy()
    if c > 0:
        kmod.clip_weights(W, c)
        assert np.all(np.abs(W) <= c)
        np.testing.assert_array_equal(W[np.abs(before) <= c], before[np.abs(before) <= c])
    if kind != WeightClipType.FIXED_VALUE and fixed > 0:
        assert c <= np.float32(fixed)


# The bound below holds for normal floats. A largest weight that is subnormal makes the
# scale subnormal too, with few significant bits, and W / scale lands up to a few parts in
# 1e4 above remapped_wmax (1.44e-42 / 0.75 -> 0.75018): aihwkit's float32 division does the
# same, so only the test's weights are kept normal.
normal = st.floats(-3, 3, allow_nan=False, width=32, allow_subnormal=False)


@given(st.integers(1, 6), st.integers(1, 6), st.data(),
       st.sampled_from([WeightRemapType.LAYERWISE_SYMMETRIC,
                        WeightRemapType.CHANNELWISE_SYMMETRIC]), st.floats(0.25, 4))
def test_remap_keeps_logical_weights(rows, cols, data, kind, wmax):
    W = np.array(data.draw(st.lists(normal, min_size=rows * cols, max_size=rows * cols)),
                 np.float32).reshape(rows, cols)
    s = np.ones(rows, np.float32)
    logical = W.astype(np.float64)
    if kind == WeightRemapType.LAYERWISE_SYMMETRIC:
        kmod.remap_layerwise(W, s, wmax)
    else:
        kmod.remap_channelwise(W, s, wmax, 0.0, 0.0)
    np.testing.assert_allclose(W * s[:, None].astype(np.float64), logical, rtol=1e-5, atol=1e-6)
    assert np.abs(W).max() <= np.float32(wmax) * (1 + 1e-6)
