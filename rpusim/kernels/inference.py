"""Per-element kernels of the inference noise models: programming, drift coefficients, drift and
read noise (spec inference.md sections 4-8).

Every kernel takes conductances ``g`` (a 2-D array in uS), writes ``out`` (same shape and dtype)
and draws its normals from the counter streams ``(key, row, tag)``: one stream per row, so the
results depend only on the key, never on the thread count. The kernels of the PCM models
(programming, drift exponents, drift and read noise) run their rows in parallel; the others are
serial (they compile faster, and ``numpy.interp`` is written out for the same reason). The
arithmetic runs in float64 and is rounded once into ``out``, except the
logarithms and exponentials of the drift, which run in the conductances' dtype (float32 as
aihwkit; half the cost of float64); powers are written as ``exp(y log x)`` with the logarithms of
constants taken once per call (a generic ``pow`` per element was half the time of a drift).
"""

import math

import numpy as np
from numba import njit, prange

from rpusim.kernels.numeric import cast_like
from rpusim.kernels.rng import init_stream, normal, stream_key

__all__ = ["program_poly", "pcm_drift_nu", "interp_drift_nu", "drift_read", "cmo_drift",
           "READ_PCM", "READ_RELATIVE"]

# read-noise laws of ``drift_read``
READ_PCM = 0       # PCM: std q(g) |g_d| sqrt(ln((t + t_read) / (2 t_read)))
READ_RELATIVE = 1  # state independent: std |g_d| / g_max sqrt(ln((t + t_read) / (2 t_read)))


@njit(cache=True, inline="always")
def _exp(x, like):
    """``exp(x)`` in the precision of ``like`` (the conductances' dtype, float32 as aihwkit
    computes: twice as fast as float64 there)."""
    return math.exp(cast_like(x, like))


@njit(cache=True, inline="always")
def _log(x, like):
    """``log(x)`` in the precision of ``like``."""
    return math.log(cast_like(x, like))


_TAG_PROG = 1
_TAG_NU = 2
_TAG_READ = 3
_TAG_RELAX = 4

# PCM read noise: q = min(0.2, 0.0088 / max(a^0.65, 1e-3)), a = |g| / g_max, is 0.2 for every
# a below this (where 0.0088 / a^0.65 >= 0.2), which spares the power for small conductances
_Q_SATURATED_BELOW = (0.0088 / 0.2) ** (1 / 0.65)
# PCM drift exponents: mu and sd are both at their lower clips for r at or above the first
# bound, both at their upper clips at or below the second (both bounds lie within
# [1e-7, 1], so clipping r to them also applies aihwkit's r >= 1e-7)
_NU_LOW_ABOVE = math.exp(max((0.0244 - 0.049) / 0.0155, (-0.0059 - 0.008) / 0.0125))
_NU_HIGH_BELOW = math.exp(min((0.0244 - 0.1) / 0.0155, (-0.0059 - 0.045) / 0.0125))


@njit(cache=True, parallel=True)
def program_poly(g, coeffs, g_norm, factor, scale, clamp, key, out):
    """``out = g + scale * factor * sum_i coeffs[i] (g / g_norm)^i * xi``, then ``max(0, .)``
    if ``clamp``.

    The PCM programming noise (``g_norm = g_max``, ``factor = g_max / g_ref``), the ReRAM
    polynomials and the CMO line (``g_norm = 1``, no clamp) are all this one formula.
    """
    states = np.empty((g.shape[0], 2), np.uint64)
    for i in prange(g.shape[0]):
        init_stream(states, i, stream_key(key, i, _TAG_PROG))
        for j in range(g.shape[1]):
            gij = float(g[i, j])
            a = gij / g_norm
            sigma = 0.0
            power = 1.0
            for c in coeffs:
                sigma += c * power
                power *= a
            value = gij + scale * factor * sigma * normal(states, i)
            out[i, j] = max(value, 0.0) if clamp else value


@njit(cache=True, parallel=True)
def pcm_drift_nu(g, g_max, drift_scale, key, out):
    """PCM drift exponents from the target: ``|mu(r) + sd(r) xi| * drift_scale``,
    ``r = max(|g / g_max|, 1e-7)`` with aihwkit's clipped log-linear mu and sd."""
    states = np.empty((g.shape[0], 2), np.uint64)
    for i in prange(g.shape[0]):
        init_stream(states, i, stream_key(key, i, _TAG_NU))
        for j in range(g.shape[1]):
            # r clipped to where mu or sd still vary: the same clipped values, no branches
            # (zero and nonzero targets alternate at random, which defeats branch prediction)
            r = min(max(abs(float(g[i, j]) / g_max), _NU_HIGH_BELOW), _NU_LOW_ABOVE)
            log_r = _log(r, g[i, j])
            mu = min(max(-0.0155 * log_r + 0.0244, 0.049), 0.1)
            sd = min(max(-0.0125 * log_r - 0.0059, 0.008), 0.045)
            out[i, j] = abs(mu + sd * normal(states, i)) * drift_scale


@njit(cache=True, inline="always")
def _interp(x, xs, ys):
    """Piecewise-linear ``ys(x)`` over ascending ``xs``, ``x`` within ``[xs[0], xs[-1]]``
    (``numpy.interp``, written out: it compiles in a fraction of the time)."""
    k = 1
    while k < xs.shape[0] - 1 and xs[k] < x:
        k += 1
    x0, x1 = xs[k - 1], xs[k]
    return ys[k - 1] + (ys[k] - ys[k - 1]) * ((x - x0) / (x1 - x0))


@njit(cache=True)
def interp_drift_nu(g, g_lst, mean_lst, std_lst, drift_scale, key, out):
    """Drift exponents ``|interp(g, mean) + interp(g, std) xi| * drift_scale`` from tables over
    ascending ``g_lst`` (``g`` clipped to the table's range)."""
    states = np.empty((g.shape[0], 2), np.uint64)
    for i in range(g.shape[0]):
        init_stream(states, i, stream_key(key, i, _TAG_NU))
        for j in range(g.shape[1]):
            gc = min(max(float(g[i, j]), g_lst[0]), g_lst[-1])
            mu = _interp(gc, g_lst, mean_lst)
            sd = _interp(gc, g_lst, std_lst)
            out[i, j] = abs(mu + sd * normal(states, i)) * drift_scale


@njit(cache=True, parallel=True)
def drift_read(g, nu, t_inference, t_0, t_read, g_max, read_scale, law, key, out):
    """Power-law drift from the programmed ``g`` and read noise at ``t = t_inference + t_0``:
    ``g_d = g (t / t_0)^-nu`` (if ``t > t_0``), ``out = max(0, g_d + sigma * read_scale * xi)``
    with ``sigma`` from ``law`` (``READ_PCM`` or ``READ_RELATIVE``)."""
    t = t_inference + t_0
    log_ratio = math.log(t / t_0) if t > t_0 else 0.0
    time_factor = math.sqrt(math.log((t + t_read) / (2.0 * t_read)))
    states = np.empty((g.shape[0], 2), np.uint64)
    for i in prange(g.shape[0]):
        init_stream(states, i, stream_key(key, i, _TAG_READ))
        for j in range(g.shape[1]):
            gp = float(g[i, j])
            if gp == 0.0:  # nothing to drift, no read noise: spare the powers and the draw
                out[i, j] = 0.0
                continue
            gd = gp * _exp(-float(nu[i, j]) * log_ratio, g[i, j]) if log_ratio > 0 else gp
            if law == READ_PCM:
                a = abs(gp) / g_max
                q = 0.2
                if a >= _Q_SATURATED_BELOW:
                    q = min(0.2, 0.0088 / max(_exp(0.65 * _log(a, g[i, j]), g[i, j]), 1e-3))
                sigma = abs(gd) * q * time_factor
            else:
                sigma = abs(gd) / g_max * time_factor
            out[i, j] = max(gd + sigma * read_scale * normal(states, i), 0.0)


@njit(cache=True)
def cmo_drift(g, t, mean0, std0, std1, drift_scale, k_read, t_read, read_scale, g_min, g_max,
              key, out):
    """ReRAM CMO relaxation and read noise at ``t`` seconds (``t > 0``): a log-time shift and
    spread of the programmed ``g``, then read noise ``k_read log10(g) sqrt(...)``, clipped to
    ``[g_min, g_max]`` (no read noise where the relaxed ``g <= 0``)."""
    log_t = math.log(t)
    shift = mean0 * log_t * drift_scale
    spread = (std0 * log_t + std1) * drift_scale
    time_factor = math.sqrt(math.log((t + t_read) / (2.0 * t_read)))
    states = np.empty((g.shape[0], 2), np.uint64)
    for i in range(g.shape[0]):
        init_stream(states, i, stream_key(key, i, _TAG_RELAX))
        for j in range(g.shape[1]):
            gd = float(g[i, j]) + shift + spread * normal(states, i)
            # log10 is undefined at g <= 0, where aihwkit returns NaN: no read noise there
            sigma = k_read * math.log10(gd) * time_factor if gd > 0 else 0.0
            value = gd + sigma * normal(states, i) * read_scale
            out[i, j] = min(max(value, g_min), g_max)
