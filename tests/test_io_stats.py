"""Statistics of every noise source of the IO model (spec io.md §2.6, §4, §5, §6.3).

Each test compares a sample variance (or mean, or fraction) with its expected value; the bound
is five standard errors of the estimate, and the seeds are fixed, so the tests are
deterministic while still detecting any error larger than a few per cent.
"""

import math

import numpy as np
import pytest

from rpusim.configs import IOParameters
from rpusim.io import AnalogMVM
from rpusim.rng import TileRNG

Z = 5.0


def _params(**kw):
    base = dict(out_noise=0.0, inp_res=0.0, out_res=0.0, out_bound=0.0,
                noise_management="NONE", bound_management="NONE")
    base.update(kw)
    p = IOParameters(**base)
    p.validate()
    return p


def _check_var(samples, var, axis=None):
    """Sample variance vs ``var`` within Z standard errors (normal samples: var*sqrt(2/(n-1)))."""
    samples = np.asarray(samples, float)
    n = samples.size if axis is None else samples.shape[axis]
    s2 = samples.var(axis=axis, ddof=1)
    se = np.asarray(var) * math.sqrt(2.0 / (n - 1))
    assert np.all(np.abs(s2 - var) <= Z * se), (s2, var)


def _check_mean(samples, mean, std, axis=None):
    samples = np.asarray(samples, float)
    n = samples.size if axis is None else samples.shape[axis]
    assert np.all(np.abs(samples.mean(axis=axis) - mean) <= Z * np.asarray(std) / math.sqrt(n))


def _repeat(p, M, x, n, seed=0, dtype=np.float32, backward=False):
    """``n`` reads of the single input vector ``x``: shape (n, n_out)."""
    mvm = AnalogMVM(p, M.shape[0], M.shape[1], dtype, TileRNG(seed), backward=backward)
    U = np.repeat(np.asarray(x, dtype)[None, :], n, axis=0)
    return mvm.mvm(M.astype(dtype), U).astype(float), mvm


@pytest.mark.slow
@pytest.mark.parametrize("mv_type, factor", [("ONE_PASS", 1.0), ("POS_NEG_SEPARATE", 1.0),
                                             ("POS_NEG_SEPARATE_DIGITAL_SUM", 2.0)])
def test_output_noise_variance(mv_type, factor):
    """Output noise: variance out_noise**2 (two ADC draws for the digital sum)."""
    g = np.random.default_rng(0)
    M = g.uniform(-0.5, 0.5, (8, 10))
    x = g.uniform(-1, 1, 10)
    sigma = 0.1
    Y, _ = _repeat(_params(out_noise=sigma, mv_type=mv_type), M, x, 6000)
    err = Y - (M.astype(np.float32) @ x.astype(np.float32))
    _check_mean(err, 0.0, sigma * math.sqrt(factor))
    _check_var(err, factor * sigma**2)


@pytest.mark.slow
def test_output_noise_in_input_units_with_noise_management():
    g = np.random.default_rng(1)
    M = g.uniform(-0.5, 0.5, (6, 10))
    x = g.uniform(-3, 3, 10)
    alpha = np.abs(x.astype(np.float32)).max()
    Y, _ = _repeat(_params(out_noise=0.05, noise_management="ABS_MAX"), M, x, 8000,
                   dtype=np.float64)
    _check_var(Y - Y.mean(axis=0), (0.05 * alpha) ** 2)


@pytest.mark.slow
def test_output_noise_per_line_values():
    p = _params(out_noise=0.1, out_noise_std=0.5)
    M = np.zeros((6, 3))
    Y, mvm = _repeat(p, M, [0.3, -0.2, 0.1], 8000)
    sig = mvm.get_state()["out_noise_values"].astype(float)
    assert sig.shape == (6,) and len(set(sig)) == 6
    for i in range(6):
        _check_var(Y[:, i], sig[i] ** 2)
    # the draws themselves: |0.1 * (1 + 0.05 xi)| over many lines
    big = AnalogMVM(_params(out_noise=0.1, out_noise_std=0.05), 20000, 1, np.float64, TileRNG(2))
    vals = big.get_state()["out_noise_values"]
    _check_mean(vals, 0.1, 0.005)
    _check_var(vals, 0.005**2)


@pytest.mark.slow
@pytest.mark.parametrize("mv_type", ["ONE_PASS", "POS_NEG_SEPARATE",
                                     "POS_NEG_SEPARATE_DIGITAL_SUM"])
def test_input_noise_variance(mv_type):
    """Input noise is added once, after the DAC: output std inp_noise * ||w_i||."""
    g = np.random.default_rng(3)
    M = g.uniform(-1, 1, (5, 12))
    Y, _ = _repeat(_params(inp_noise=0.1, mv_type=mv_type), M, np.zeros(12), 8000,
                   dtype=np.float64)
    _check_mean(Y, 0.0, 0.1 * np.linalg.norm(M, axis=1), axis=0)
    _check_var(Y, 0.01 * (M**2).sum(axis=1), axis=0)


def test_input_noise_is_not_clipped_and_not_quantised():
    p = _params(inp_noise=0.3, inp_res=0.25, inp_bound=1.0)
    Y, _ = _repeat(p, np.ones((1, 1)), [1.0], 2000)
    assert Y.max() > 1.3 and len(np.unique(Y)) > 1000


@pytest.mark.slow
@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("mv_type", ["ONE_PASS", "POS_NEG_SEPARATE_DIGITAL_SUM"])
def test_weight_noise_additive_constant(backward, mv_type):
    g = np.random.default_rng(4)
    M = g.uniform(-1, 1, (4, 9))
    x = g.uniform(-2.7, 2.7, 9)
    p = _params(w_noise=0.1, w_noise_type="ADDITIVE_CONSTANT", noise_management="ABS_MAX",
                mv_type=mv_type)
    Y, _ = _repeat(p, M, x, 8000, dtype=np.float64, backward=backward)
    _check_mean(Y, M @ x, 0.1 * np.linalg.norm(x), axis=0)
    _check_var(Y, np.full(4, (0.1 * np.linalg.norm(x)) ** 2), axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("mv_type", ["ONE_PASS", "POS_NEG_SEPARATE"])
def test_weight_noise_pcm_read(backward, mv_type):
    g = np.random.default_rng(5)
    M = g.uniform(-1, 1, (4, 9))
    x = g.uniform(-2, 2, 9)
    p = _params(w_noise=0.1, w_noise_type="PCM_READ", noise_management="ABS_MAX",
                mv_type=mv_type)
    Y, _ = _repeat(p, M, x, 8000, dtype=np.float64, backward=backward)
    var = 0.01 * (np.abs(M) * x**2).sum(axis=1)
    _check_var(Y, var, axis=0)


def test_weight_noise_type_none_adds_nothing():
    p = _params(w_noise=0.5, w_noise_type="NONE")
    M = np.random.default_rng(6).uniform(-1, 1, (3, 4))
    Y, _ = _repeat(p, M, [0.1, 0.2, -0.3, 0.4], 5, dtype=np.float64)
    np.testing.assert_allclose(Y, np.tile(M @ [0.1, 0.2, -0.3, 0.4], (5, 1)), rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["inp", "out"])
def test_stochastic_rounding_is_unbiased(which):
    """E[sto-rounded value] is the value: the mean output equals the exact product."""
    x = np.array([0.3, -0.55, 0.71])
    M = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]])
    if which == "inp":
        p = _params(inp_res=0.1, inp_bound=1.0, inp_sto_round=True)
        step = 0.2 * np.abs(M).sum(axis=1)
    else:
        p = _params(out_res=0.1, out_bound=1.0, out_sto_round=True)
        step = np.full(4, 0.2)
    Y, _ = _repeat(p, M, x, 20000, dtype=np.float64)
    _check_mean(Y, M @ x, step / 2, axis=0)
    deterministic = _params(inp_res=0.1 if which == "inp" else 0.0, inp_bound=1.0,
                            out_res=0.1 if which == "out" else 0.0, out_bound=1.0)
    Yd, _ = _repeat(deterministic, M, x, 1, dtype=np.float64)
    assert not np.allclose(Yd[0], M @ x, atol=1e-3)


@pytest.mark.slow
def test_voltage_offset_draws_are_rectified_normal():
    """Project verdict 14: v_i = max(0, v_offset_std * xi)."""
    n = 20000
    mvm = AnalogMVM(_params(v_offset_std=0.2), n, 1, np.float64, TileRNG(7))
    v = mvm.get_state()["v_offset"]
    assert np.all(v >= 0)
    frac_zero = np.mean(v == 0)
    assert abs(frac_zero - 0.5) <= Z * math.sqrt(0.25 / n)
    pos = v[v > 0]
    half_normal_mean = 0.2 * math.sqrt(2 / math.pi)
    _check_mean(pos, half_normal_mean, 0.2 * math.sqrt(1 - 2 / math.pi))


@pytest.mark.slow
def test_read_asymmetry_and_nonlinearity_draws():
    p = _params(w_read_asymmetry_dtod=0.3, out_nonlinearity=0.5, out_nonlinearity_std=0.1,
                out_bound=12.0, mv_type="POS_NEG_SEPARATE")
    mvm = AnalogMVM(p, 200, 100, np.float64, TileRNG(8))
    st = mvm.get_state()
    a = st["w_asymmetry"]
    assert a.shape == (200, 100)
    _check_mean(a, 1.0, 0.3)
    _check_var(a, 0.09)
    nl = st["out_nonlinearity"]
    _check_mean(nl, 0.5 / 12, 0.5 / 12 * 0.1)
    _check_var(nl, (0.5 / 12 * 0.1) ** 2)


def test_read_asymmetry_used_by_two_pass_types_only():
    g = np.random.default_rng(9)
    M = g.uniform(-1, 1, (3, 5))
    x = np.array([[0.5, -0.4, 0.3, -0.9, 0.2]])
    for mv_type in ("ONE_PASS", "POS_NEG_SEPARATE", "POS_NEG_SEPARATE_DIGITAL_SUM"):
        p = _params(w_read_asymmetry_dtod=0.3, mv_type=mv_type)
        mvm = AnalogMVM(p, 3, 5, np.float64, TileRNG(10))
        a = mvm.get_state()["w_asymmetry"]
        y = mvm.mvm(M, x)[0]
        if mv_type == "ONE_PASS":
            np.testing.assert_allclose(y, M @ x[0], rtol=1e-12)
        else:
            want = (M * a) @ np.minimum(x[0], 0) + M @ np.maximum(x[0], 0)
            np.testing.assert_allclose(y, want, rtol=1e-12)


def test_noise_redrawn_every_call_and_reproducible_with_seed():
    p = _params(out_noise=0.1, inp_noise=0.05, w_noise=0.02, w_noise_type="PCM_READ")
    M = np.random.default_rng(11).uniform(-1, 1, (4, 6)).astype(np.float32)
    U = np.ones((3, 6), np.float32)
    a = AnalogMVM(p, 4, 6, np.float32, TileRNG(12))
    b = AnalogMVM(p, 4, 6, np.float32, TileRNG(12))
    y1, y2 = a.mvm(M, U), a.mvm(M, U)
    assert not np.array_equal(y1, y2)
    np.testing.assert_array_equal(b.mvm(M, U), y1)
    np.testing.assert_array_equal(b.mvm(M, U), y2)
