"""Numba kernels of hardware-aware training: weight modifiers, clipping, remapping.

Formulas of spec inference.md sections 10-12 (aihwkit's ``weight_modifier.cpp``,
``weight_clipper.cpp``, ``weight_remapper.cpp``; ``PCM_NOISE`` as aihwkit's CUDA kernel, which
its CPU tile lacks). All arithmetic stays in the dtype of the weights (float32 as aihwkit).

Random numbers come from counter-based streams keyed by (call key, row, tag): one stream per
weight row and purpose (rounding, noise, drop connect), so a modifier's draws never depend on
the thread count, and the drop-connect pattern does not depend on the modifier type. With
``per_batch_sample`` each sample of a batch gets its own tags (``sample * N_TAGS + purpose``).
"""

import math

import numpy as np
from numba import njit

from rpusim.kernels.numeric import cast_like
from rpusim.kernels.rng import init_stream, normal, stream_key, uniform

__all__ = ["MOD_NONE", "MOD_DISCRETIZE", "MOD_MULT_NORMAL", "MOD_ADD_NORMAL",
           "MOD_DISCRETIZE_ADD_NORMAL", "MOD_DOREFA", "MOD_POLY", "MOD_PCM_NOISE",
           "MOD_PROG_NOISE", "MOD_DROP_CONNECT", "MOD_COPY", "MF_FIELDS", "round_half_away",
           "modifier_amax", "modify_weights", "clip_value", "clip_weights",
           "remap_layerwise", "remap_channelwise", "CLIP_NONE", "CLIP_FIXED_VALUE",
           "CLIP_LAYER_GAUSSIAN", "CLIP_AVERAGE_CHANNEL_MAX"]

MOD_NONE = 0
MOD_DISCRETIZE = 1
MOD_MULT_NORMAL = 2
MOD_ADD_NORMAL = 3
MOD_DISCRETIZE_ADD_NORMAL = 4
MOD_DOREFA = 5
MOD_POLY = 6
MOD_PCM_NOISE = 7
MOD_PROG_NOISE = 8
MOD_DROP_CONNECT = 9
MOD_COPY = 10

CLIP_NONE = 0
CLIP_FIXED_VALUE = 1
CLIP_LAYER_GAUSSIAN = 2
CLIP_AVERAGE_CHANNEL_MAX = 3

# purposes of the random streams of one row
_TAG_ROUND = 0
_TAG_NOISE = 1
_TAG_DROP = 2
N_TAGS = 3

# Layout of the float parameters of ``modify_weights`` (names index the array).
MF_FIELDS = ("std_dev", "res", "dorefa_clip", "pdrop", "g_max", "pcm_zero_thres",
             "pcm_t_inference", "pcm_prob_at_reset", "pcm_prob_at_gmax", "pcm_prob_at_random",
             "pcm_t0", "pcm_log_sqrt_factor")
(_F_STD, _F_RES, _F_DOREFA, _F_PDROP, _F_GMAX, _F_ZERO_THRES, _F_T_INF, _F_P_RESET,
 _F_P_GMAX, _F_P_RANDOM, _F_T0, _F_LOG_SQRT) = range(len(MF_FIELDS))

# aihwkit's PCM programming-noise polynomial (uS, in |g| / g_max) of the PCM_NOISE modifier
_PCM_P0, _PCM_P1, _PCM_P2 = 0.26348, 1.9650, -1.1731


@njit(cache=True, inline="always")
def round_half_away(v):
    """Round to the nearest integer, halves away from zero (C's ``roundf``), exactly."""
    a = abs(v)
    t = math.floor(a)
    if a - t >= 0.5:
        t += 1.0
    t = cast_like(t, v)
    return t if v >= 0 else -t


@njit(cache=True, inline="always")
def _discretize(v, res, sto_round, states):
    """``R(v, res)``: round ``v / res`` (stochastically with ``sto_round``) times ``res``."""
    if res <= 0:
        return v
    if sto_round:
        u = cast_like(uniform(states, 0), v)
        return round_half_away(v / res + (u - cast_like(0.5, v))) * res
    return round_half_away(v / res) * res


@njit(cache=True)
def modifier_amax(W, copy_last_column):
    """``max |W|`` without the last column if ``copy_last_column``; 1 if that is 0."""
    amax = cast_like(0.0, W[0, 0])
    n_cols = W.shape[1] - 1 if copy_last_column else W.shape[1]
    for i in range(W.shape[0]):
        for j in range(n_cols):
            a = abs(W[i, j])
            if a > amax:
                amax = a
    return amax if amax > 0 else cast_like(1.0, amax)


@njit(cache=True, inline="always")
def _poly_sigma(aw, coeffs):
    sig = cast_like(coeffs[0], aw)
    paw = cast_like(1.0, aw)
    for k in range(1, coeffs.shape[0]):
        paw *= aw
        sig += cast_like(coeffs[k], aw) * paw
    return sig


@njit(cache=True, inline="always")
def _pcm_noise(w, amax, f, states):
    """One element of the PCM_NOISE modifier (aihwkit's CUDA kernel): target ``g`` in uS
    clipped to +-g_max, stuck-at faults, programming noise, drift variation, read noise, back
    to weight units with the sign of the target."""
    zero = cast_like(0.0, w)
    noise_scale = cast_like(f[_F_STD], w)
    gmax = cast_like(f[_F_GMAX], w)
    t0 = cast_like(f[_F_T0], w)
    t = cast_like(f[_F_T_INF], w) + t0
    g = max(min(w, amax), -amax) * gmax / amax
    if abs(g) <= cast_like(f[_F_ZERO_THRES], w) * noise_scale * cast_like(_PCM_P0, w):
        g = zero
    negative = g < zero
    if f[_F_P_RESET] > 0:
        if cast_like(uniform(states, 0), w) < cast_like(f[_F_P_RESET], w):
            g = zero
    if f[_F_P_GMAX] > 0:
        u1 = cast_like(uniform(states, 0), w)
        u2 = cast_like(uniform(states, 0), w)
        if u1 < cast_like(f[_F_P_GMAX], w):
            g = g - gmax if u2 > cast_like(0.5, w) else g + gmax
    if f[_F_P_RANDOM] > 0:
        u1 = cast_like(uniform(states, 0), w)
        u2 = cast_like(uniform(states, 0), w) * gmax
        if u1 < cast_like(f[_F_P_RANDOM], w):
            g = u2 if g > zero else -u2
    g = min(max(g, -gmax), gmax)
    if g == zero:
        return zero
    ag = abs(g / gmax)
    sig_prog = cast_like(_PCM_P0, w) + ag * cast_like(_PCM_P1, w) + ag * ag * cast_like(_PCM_P2, w)
    g_prog = g + noise_scale * sig_prog * cast_like(normal(states, 0), w)
    ag_prog = abs(g_prog / gmax)
    g_drift = g_prog
    if t > t0:
        ag_drift = max(ag_prog, cast_like(1e-6, w))
        sig_nu = min(max(cast_like(-0.0125, w) * cast_like(math.log(ag_drift), w)
                         - cast_like(0.0059, w), cast_like(0.008, w)), cast_like(0.045, w))
        nu = abs(cast_like(normal(states, 0), w) * sig_nu)
        g_drift = g_prog * cast_like((t / t0) ** (-nu), w)
    q = min(cast_like(0.0088, w) / max(cast_like(ag_prog ** cast_like(0.65, w), w),
                                        cast_like(1e-3, w)), cast_like(0.2, w))
    sig_read = q * cast_like(f[_F_LOG_SQRT], w)
    g_final = g_drift + noise_scale * abs(g_drift) * sig_read * cast_like(normal(states, 0), w)
    w_final = g_final / gmax * amax
    return -abs(w_final) if negative else abs(w_final)


@njit(cache=True, inline="always")
def _modify_one(kind, w, amax, f, sto_round, coeffs, rnd, noise):
    """The modified value of one weight (before drop connect)."""
    if kind == MOD_DISCRETIZE:
        if f[_F_RES] > 0:
            return amax * _discretize(w / amax, cast_like(f[_F_RES], w), sto_round, rnd)
        return w
    if kind == MOD_MULT_NORMAL:
        if f[_F_STD] > 0:
            std = cast_like(f[_F_STD], w) * amax
            return w + w * std * cast_like(normal(noise, 0), w)
        return w
    if kind == MOD_ADD_NORMAL:
        if f[_F_STD] > 0:
            std = cast_like(f[_F_STD], w) * amax
            return w + std * cast_like(normal(noise, 0), w)
        return w
    if kind == MOD_DISCRETIZE_ADD_NORMAL:
        if f[_F_RES] > 0 or f[_F_STD] > 0:
            std = cast_like(f[_F_STD], w) * amax
            v = amax * _discretize(w / amax, cast_like(f[_F_RES], w), sto_round, rnd)
            return v + std * cast_like(normal(noise, 0), w)
        return w
    if kind == MOD_DOREFA:
        if f[_F_RES] > 0:
            scale = abs(cast_like(f[_F_DOREFA], w) / cast_like(math.tanh(amax), w))
            v = cast_like(math.tanh(w), w) * scale
            return _discretize(v, cast_like(f[_F_RES], w), sto_round, rnd)
        return w
    if kind == MOD_POLY:
        if f[_F_STD] > 0 and coeffs.shape[0] > 0:
            sig = _poly_sigma(abs(w) / amax, coeffs) * cast_like(f[_F_STD], w)
            return w + amax * sig * cast_like(normal(noise, 0), w)
        return w
    if kind == MOD_PROG_NOISE:
        if f[_F_STD] > 0 and coeffs.shape[0] > 0:
            std = cast_like(f[_F_STD], w) / cast_like(f[_F_GMAX], w)
            sig = _poly_sigma(abs(w) / amax, coeffs) * std
            v = abs(w + amax * sig * cast_like(normal(noise, 0), w))
            return -v if w < 0 else v
        return w
    if kind == MOD_PCM_NOISE:
        return _pcm_noise(w, amax, f, noise)
    return w  # DROP_CONNECT, COPY: only the drop connect below


@njit(cache=True)
def modify_weights(W, out, kind, f, sto_round, copy_last_column, coeffs, amax, key, sample):
    """``out <- modify(W)`` (spec inference.md section 10), then drop connect, then the last
    column restored from ``W`` if ``copy_last_column``.

    ``f`` holds the float parameters in the order of ``MF_FIELDS``; ``amax`` is the reference
    scale (:func:`modifier_amax` or ``assumed_wmax``), in the dtype of ``W``.
    """
    rows, cols = W.shape
    rnd = np.empty((1, 2), np.uint64)
    noise = np.empty((1, 2), np.uint64)
    drop = np.empty((1, 2), np.uint64)
    pdrop = f[_F_PDROP]
    base = sample * N_TAGS
    for i in range(rows):
        init_stream(rnd, 0, stream_key(key, i, base + _TAG_ROUND))
        init_stream(noise, 0, stream_key(key, i, base + _TAG_NOISE))
        init_stream(drop, 0, stream_key(key, i, base + _TAG_DROP))
        for j in range(cols):
            v = _modify_one(kind, W[i, j], amax, f, sto_round, coeffs, rnd, noise)
            if pdrop > 0 and uniform(drop, 0) < pdrop:
                v = cast_like(0.0, v)
            out[i, j] = v
        if copy_last_column:
            out[i, cols - 1] = W[i, cols - 1]


@njit(cache=True)
def clip_value(W, kind, fixed_value, sigma):
    """The clipping value ``c`` of spec inference.md section 11 (``<= 0``: no clipping),
    accumulated in the dtype of ``W`` in aihwkit's order."""
    zero = cast_like(0.0, W[0, 0])
    rows, cols = W.shape
    fixed = cast_like(fixed_value, zero)
    if kind == CLIP_FIXED_VALUE:
        return fixed
    if kind == CLIP_AVERAGE_CHANNEL_MAX:
        total = zero
        for i in range(rows):
            m = zero
            for j in range(cols):
                a = abs(W[i, j])
                if a > m:
                    m = a
            total += m
        c = abs(total / cast_like(rows, zero))
        return min(c, fixed) if fixed > 0 else c
    if kind == CLIP_LAYER_GAUSSIAN:
        n = rows * cols
        if n < 2:
            # the spread of a single weight is 0 / 0: aihwkit's NaN loses to a positive fixed
            # value in its MIN, and no clipping follows otherwise
            return fixed if fixed > 0 else -cast_like(1.0, zero)
        mean = zero
        for i in range(rows):
            for j in range(cols):
                mean += W[i, j]
        mean /= cast_like(n, zero)
        s = cast_like(n - 1, zero)
        var = zero
        for i in range(rows):
            for j in range(cols):
                m = W[i, j] - mean
                var += m * m / s
        c = cast_like(math.sqrt(var), zero) * cast_like(sigma, zero)
        return min(c, fixed) if fixed > 0 else c
    return -cast_like(1.0, zero)


@njit(cache=True)
def clip_weights(W, c):
    """``W <- clip(W, -c, c)`` in place."""
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            W[i, j] = min(max(W[i, j], -c), c)


@njit(cache=True)
def remap_layerwise(W, scales, remapped_wmax):
    """LAYERWISE_SYMMETRIC: ``a = max |W| / remapped_wmax``; if ``a > 0``: ``s *= a``,
    ``W /= a`` (in place)."""
    a = cast_like(0.0, W[0, 0])
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            v = abs(W[i, j])
            if v > a:
                a = v
    a /= cast_like(remapped_wmax, a)
    if a > 0:
        for i in range(W.shape[0]):
            scales[i] *= a
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                W[i, j] /= a


@njit(cache=True)
def remap_channelwise(W, scales, remapped_wmax, max_scale_range, max_scale_ref):
    """CHANNELWISE_SYMMETRIC (in place): one factor ``a_i = max_j |W_ij| / remapped_wmax`` per
    row; with ``max_scale_range > 0`` the new scales are capped at ``max_scale_range`` times the
    smallest old one (at least ``max_scale_ref``)."""
    rows, cols = W.shape
    zero = cast_like(0.0, W[0, 0])
    one = cast_like(1.0, zero)
    amax = np.zeros(rows, W.dtype)
    for i in range(rows):
        for j in range(cols):
            v = abs(W[i, j])
            if v > amax[i]:
                amax[i] = v
    if max_scale_range <= 0:
        if remapped_wmax != 1.0:
            for i in range(rows):
                amax[i] /= cast_like(remapped_wmax, zero)
        for i in range(rows):
            a = amax[i] if amax[i] > 0 else one
            scales[i] *= a
            for j in range(cols):
                W[i, j] /= a
        return
    old = scales.copy()
    m = old[0]
    for i in range(1, rows):
        if old[i] < m:
            m = old[i]
    m = max(m, zero)
    if m > 0 and max_scale_ref != 0:
        m = max(m, cast_like(max_scale_ref, zero))
    rng = cast_like(max_scale_range, zero)
    for i in range(rows):
        s = amax[i] * old[i] if amax[i] > 0 else old[i]
        if m > 0 and s / m > rng:
            s = m * rng
        scales[i] = s
    for i in range(rows):
        for j in range(cols):
            W[i, j] = W[i, j] * old[i] / scales[i]
