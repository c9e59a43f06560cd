"""Counter-based random streams for numba kernels.

A stream is a ``uint64[2]`` row ``(key, key + counter * GAMMA)``; every draw hashes the second
word with the splitmix64 finaliser and advances it by ``GAMMA`` (one add per draw instead of a
multiply-add from the counter; the same numbers). Streams are keyed by (call key, sample,
row) so each parallel chunk owns its stream and results never depend on the thread count.
"""

import statistics

import numpy as np
from numba import njit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
GAMMA = _GAMMA  # the counter increment of a stream, for kernels that keep it (uniform_of)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def mix64(z):
    """splitmix64 finaliser: a bijective avalanche hash of a uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def stream_key(key, a, b):
    """Key of the stream number ``(a, b)`` under a call key (e.g. a = sample, b = row)."""
    return mix64(mix64(key ^ (np.uint64(a) * _GAMMA + _ONE)) ^ (np.uint64(b) * _M1 + _GAMMA))


@njit(cache=True, inline="always")
def init_stream(states, s, key):
    states[s, 0] = key
    states[s, 1] = key


@njit(cache=True, inline="always")
def next_u64(states, s):
    z = states[s, 1]
    states[s, 1] = z + _GAMMA
    return mix64(z)


@njit(cache=True, inline="always")
def uniform(states, s):
    """Uniform double in the open interval (0, 1)."""
    return _unit(next_u64(states, s))


@njit(cache=True, inline="always")
def _unit(h):
    """The uniform of one hashed word ``h``."""
    return (np.float64(h >> _S11) + 0.5) * _INV53


@njit(cache=True, inline="always")
def uniform_of(z):
    """The uniform of a stream whose next hashed word is ``z``: for a kernel that keeps a
    stream's counter in a local variable (``z = stream_key(...)``, then ``z += GAMMA`` after
    each draw) instead of in a state array, whose loads and stores it would otherwise pay
    per draw."""
    return _unit(mix64(z))


def _normal_quantiles(bits: int) -> np.ndarray:
    """The ``2**bits`` midpoint quantiles ``Phi^-1((k + 1/2) / 2**bits)`` of the standard normal."""
    n = 1 << bits
    # NormalDist.inv_cdf's own kernel, without its per-call wrapper (the table is built at
    # import: 2**15 calls); the same function and arguments, so the same values
    inv_cdf = getattr(statistics, "_normal_dist_inv_cdf", None)
    if inv_cdf is None:  # pragma: no cover - Pythons without it
        return np.array([statistics.NormalDist().inv_cdf((k + 0.5) / n) for k in range(n)])
    return np.array([inv_cdf((k + 0.5) / n, 0.0, 1.0) for k in range(n)])


# aihwkit draws its per-pulse Gaussians from a list of 2**15 normal samples picked by rand();
# rpusim picks from the 2**15 midpoint quantiles instead, so the table is symmetric (mean 0)
# and its CDF is within 2**-16 of the normal's everywhere (largest |value| 4.17). One hash
# and one load per draw: 3x cheaper than an exact ziggurat, which made up about half of the
# pulse loop.
_NORMAL_BITS = 15
_NORMAL_TABLE = _normal_quantiles(_NORMAL_BITS)
_NORMAL_SHIFT = np.uint64(64 - _NORMAL_BITS)


@njit(cache=True, inline="always")
def normal(states, s):
    """Standard normal, discretised to the 2**15 midpoint quantiles (see ``_NORMAL_TABLE``)."""
    return _NORMAL_TABLE[np.int64(next_u64(states, s) >> _NORMAL_SHIFT)]
