"""NumPy references of the inference formulas (spec inference.md §3-9), written from the spec.

The kernels draw their normals from per-row counter streams; :func:`row_normals` replays those
streams (with rpusim's stream primitives) so that a reference can be fed the very same draws.
Everything else here is plain, vectorised NumPy in float64.
"""

import numpy as np
from numba import njit

from rpusim.kernels.rng import init_stream, normal, stream_key


@njit(cache=True)
def _fill(key, tag, out):
    states = np.empty((1, 2), np.uint64)
    for i in range(out.shape[0]):
        init_stream(states, 0, stream_key(key, i, tag))
        for j in range(out.shape[1]):
            out[i, j] = normal(states, 0)


def row_normals(key, tag, rows, count):
    """The first ``count`` normals of the streams ``(key, row, tag)`` of ``rows`` rows."""
    out = np.empty((rows, count))
    _fill(np.uint64(key), tag, out)
    return out


def consumed(normals, mask):
    """Normals laid on the elements of ``mask``, each row taking its stream in order (the
    elements outside ``mask`` draw nothing)."""
    out = np.zeros(mask.shape)
    for i in range(mask.shape[0]):
        out[i, mask[i]] = normals[i, :mask[i].sum()]
    return out


def polynomial(values, coeffs):
    return sum(c * values ** k for k, c in enumerate(coeffs))


def program(g, coeffs, g_norm, factor, scale, clamp, xi):
    """``g + scale * factor * poly(g / g_norm) * xi``, clamped at 0 if ``clamp`` (§4, §6-8)."""
    out = g + scale * factor * polynomial(g / g_norm, coeffs) * xi
    return np.maximum(out, 0) if clamp else out


def pcm_nu(g, g_max, drift_scale, xi):
    r = np.maximum(np.abs(g / g_max), 1e-7)
    mu = np.clip(-0.0155 * np.log(r) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(r) - 0.0059, 0.008, 0.045)
    return np.abs(mu + sd * xi) * drift_scale


def table_nu(g, g_lst, mean_lst, std_lst, drift_scale, xi):
    gc = np.clip(g, min(g_lst), max(g_lst))
    return np.abs(np.interp(gc, g_lst, mean_lst) + np.interp(gc, g_lst, std_lst) * xi) \
        * drift_scale


def pcm_drift_read(g, nu, t_inference, t_0, t_read, g_max, read_scale, xi):
    t = t_inference + t_0
    g_d = g * (t / t_0) ** (-nu) if t > t_0 else g
    q = np.minimum(0.2, 0.0088 / np.maximum((np.abs(g) / g_max) ** 0.65, 1e-3))
    sigma = q * np.sqrt(np.log((t + t_read) / (2 * t_read)))
    return np.maximum(g_d + np.abs(g_d) * read_scale * sigma * xi, 0)


def relative_drift_read(g, nu, t_inference, t_0, t_read, g_max, read_scale, xi):
    t = t_inference + t_0
    g_d = g * (t / t_0) ** (-nu) if t > t_0 else g
    sigma = np.abs(g_d / g_max) * np.sqrt(np.log((t + t_read) / (2 * t_read)))
    return np.maximum(g_d + read_scale * sigma * xi, 0)


def cmo_drift(g, t, mean0, std0, std1, drift_scale, k_read, t_read, read_scale, g_min, g_max,
              xi1, xi2):
    g_d = g + mean0 * np.log(t) * drift_scale + (std0 * np.log(t) + std1) * drift_scale * xi1
    sigma = k_read * np.log10(g_d) * np.sqrt(np.log((t + t_read) / (2 * t_read)))
    return np.clip(g_d + sigma * read_scale * xi2, g_min, g_max)


def single_pair(w, g_max, g_min):
    k = (g_max - g_min) / max(np.abs(w).max(), 1e-7)
    return [np.clip(k * w, 0, g_max) + g_min, np.clip(-k * w, 0, g_max) + g_min], k


def n_pair(w, f_lst, g_max, g_min):
    k = sum(f_lst) * (g_max - g_min) / max(np.abs(w).max(), 1e-7)
    v = k * w
    slices, level = [], 0.0
    for f in f_lst:
        for part in (np.maximum(v, 0), np.maximum(-v, 0)):
            slices.append(np.clip((part - level) / f + g_min, g_min, g_max))
        level += f * (g_max - g_min)
    return slices, k


def global_readout(y):
    return max(np.abs(y).mean(), 1e-4)
