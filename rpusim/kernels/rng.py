"""Counter-based random streams for numba kernels.

A stream is a ``uint64[2]`` row ``(key, counter)``; every draw hashes ``key + counter * GAMMA``
with the splitmix64 finaliser and increments the counter. Streams are keyed by (call key, sample,
row) so each parallel chunk owns its stream and results never depend on the thread count.
"""

import math

import numpy as np
from numba import njit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
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
    states[s, 1] = np.uint64(0)


@njit(cache=True, inline="always")
def next_u64(states, s):
    c = states[s, 1]
    states[s, 1] = c + _ONE
    return mix64(states[s, 0] + c * _GAMMA)


@njit(cache=True, inline="always")
def uniform(states, s):
    """Uniform double in the open interval (0, 1)."""
    return (np.float64(next_u64(states, s) >> _S11) + 0.5) * _INV53


def _ziggurat_tables(layers=128, r=3.442619855899, v=9.91256303526217e-3):
    """Layer edges ``x`` and ratios ``x[i+1]/x[i]`` of the normal ziggurat (Marsaglia-Tsang)."""
    x = np.zeros(layers + 1)
    f = math.exp(-0.5 * r * r)
    x[0] = v / f
    x[1] = r
    for i in range(2, layers):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1]


_ZIG_X, _ZIG_R = _ziggurat_tables()
_ZIG_TAIL = 3.442619855899
_S7F = np.uint64(0x7F)


@njit(cache=True)
def _normal_tail(states, s, negative):
    while True:
        x = math.log(uniform(states, s)) / _ZIG_TAIL
        y = math.log(uniform(states, s))
        if -2.0 * y >= x * x:
            return x - _ZIG_TAIL if negative else _ZIG_TAIL - x


@njit(cache=True, inline="always")
def normal(states, s):
    """Standard normal by the ziggurat method: one 64-bit draw on the fast path (~99%)."""
    while True:
        z = next_u64(states, s)
        i = z & _S7F
        u = 2.0 * ((np.float64(z >> _S11) + 0.5) * _INV53) - 1.0
        if abs(u) < _ZIG_R[i]:
            return u * _ZIG_X[i]
        if i == 0:
            return _normal_tail(states, s, u < 0)
        x = u * _ZIG_X[i]
        f0 = math.exp(-0.5 * (_ZIG_X[i] * _ZIG_X[i] - x * x))
        f1 = math.exp(-0.5 * (_ZIG_X[i + 1] * _ZIG_X[i + 1] - x * x))
        if f1 + uniform(states, s) * (f0 - f1) < 1.0:
            return x
