"""The counter-based kernel random streams: distribution and stream independence."""

import math

import numpy as np
from numba import njit

from rpusim.kernels.rng import _NORMAL_TABLE, init_stream, normal, stream_key, uniform


@njit(cache=True)
def _draw(n, key, which):
    st = np.zeros((1, 2), np.uint64)
    init_stream(st, 0, stream_key(key, 0, which))
    out = np.empty(n)
    for k in range(n):
        out[k] = normal(st, 0) if which == 0 else uniform(st, 0)
    return out


def _ks_statistic(sample, cdf):
    s = np.sort(sample)
    n = len(s)
    c = cdf(s)
    return max(np.max(np.arange(1, n + 1) / n - c), np.max(c - np.arange(n) / n))


def test_normal_distribution():
    z = _draw(400_000, np.uint64(11), 0)
    n = len(z)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    phi = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))
    # Kolmogorov-Smirnov at the 0.1% level: 1.95 / sqrt(n)
    assert _ks_statistic(z[:100_000], phi) < 1.95 / math.sqrt(100_000)
    # the tails beyond 3 sigma carry the normal's mass
    p_tail = math.erfc(3 / math.sqrt(2))
    frac = np.mean(np.abs(z) > 3)
    assert abs(frac - p_tail) < 5 * math.sqrt(p_tail / n)


def test_normal_table_is_the_midpoint_quantiles():
    """The discretised normal: 2**15 symmetric levels, each as likely, CDF within 2**-16."""
    table = _NORMAL_TABLE
    n = table.size
    assert n == 2 ** 15
    assert np.all(np.diff(table) > 0)
    np.testing.assert_array_equal(table, -table[::-1])
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in table])
    np.testing.assert_allclose(cdf, (np.arange(n) + 0.5) / n, rtol=0, atol=1e-12)
    # every level is hit about equally often: the top 15 bits of the hash are uniform
    z = _draw(2 ** 20, np.uint64(3), 0)
    counts = np.bincount(np.searchsorted(table, z), minlength=n)
    assert counts.sum() == 2 ** 20 and np.all(np.isin(z, table))
    chi2 = ((counts - 32.0) ** 2 / 32.0).sum()
    assert abs(chi2 - (n - 1)) < 5 * math.sqrt(2 * (n - 1))


def test_uniform_open_interval_and_moments():
    u = _draw(200_000, np.uint64(5), 1)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / len(u))
    assert _ks_statistic(u, lambda v: v) < 1.95 / math.sqrt(len(u))


def test_streams_are_distinct_and_reproducible():
    a = _draw(1000, np.uint64(1), 0)
    b = _draw(1000, np.uint64(2), 0)
    np.testing.assert_array_equal(a, _draw(1000, np.uint64(1), 0))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15


def test_unkey_restores_the_generator_exactly():
    """A failed call undoes its kernel keys; the 32-bit buffer of PCG64 survives, and the
    state compares equal, also with a used-up buffer's stale value."""
    from rpusim.rng import TileRNG

    for buffered in (0, 1, 2):
        rng = TileRNG(17)
        for _ in range(buffered):
            # one draw leaves half a 64-bit draw buffered; two use it up and leave its
            # value in the state (not used again, but part of the state that is saved)
            rng.generator.random(dtype=np.float32)
        before = rng.get_state()
        keys = [rng.key() for _ in range(3)]
        rng.unkey(3)
        assert rng.get_state() == before
        assert [rng.key() for _ in range(3)] == keys


def test_raw_keys_are_the_keys_one_by_one_and_go_back():
    """``raw_keys(n)`` draws what ``n`` calls of ``raw_key`` would, counts them as drawn, and
    ``unkey`` puts the generator back before them."""
    from rpusim.rng import TileRNG

    one, block = TileRNG(23), TileRNG(23)
    expected = [one.raw_key() for _ in range(5)]
    before = block.get_state()
    keys = block.raw_keys(5)
    assert keys.dtype == np.uint64 and keys.tolist() == expected
    assert block.keys_drawn == 5 and block.get_state() == one.get_state()
    block.unkey(5)
    assert block.get_state() == before and block.keys_drawn == 0


def test_failed_forward_leaves_the_generator_and_noise_state_unchanged():
    from rpusim import AnalogTile
    from rpusim.configs import IOParameters, SingleRPUConfig

    io = IOParameters(noise_management="AVERAGE_ABS_MAX", out_bound=0.0, out_res=0.0,
                      out_scale=1e38)
    tile = AnalogTile(3, 4, SingleRPUConfig(forward=io), seed=2)
    tile.set_weights(np.full((3, 4), 0.5))
    tile.backward(np.full(3, 0.01))  # the generator has moved on from its seed
    before = tile.state_dict()
    try:
        tile.forward(np.full(4, 3.0))
    except ValueError as err:
        assert "overflows" in str(err)
    else:
        raise AssertionError("an overflowing forward must raise")
    after = tile.state_dict()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
