"""Numba kernels of the analog MVM's per-element IO stages (spec io.md §3, §4.1, §4.3).

The matrix products themselves run in NumPy (BLAS) between these kernels. The kernels are
deterministic: their random numbers (standard normals, uniforms) come in as arrays drawn from
the tile's NumPy generator (its float32 ziggurat was faster than Box-Muller on counter-based
streams inside the kernel), so the results do not depend on any thread count.

All arithmetic stays in the dtype of the arrays (float32 as aihwkit, or float64): scalars are
passed as NumPy scalars of that dtype, and constants come in the small array ``c`` (see
:func:`constants`) because a Python literal would promote float32 to float64.
"""

import numpy as np
from numba import njit

__all__ = ["NM_NONE", "NM_ABS_MAX", "NM_MAX", "NM_CONSTANT", "NM_AVERAGE_ABS_MAX",
           "NM_ABS_MAX_NP_SUM", "constants", "noise_management", "prepare_input",
           "finalize_output"]

NM_NONE = 0
NM_ABS_MAX = 1
NM_MAX = 2
NM_CONSTANT = 3
NM_AVERAGE_ABS_MAX = 4
NM_ABS_MAX_NP_SUM = 5

_C_ZERO, _C_ONE, _C_HALF = 0, 1, 2


def constants(dtype) -> np.ndarray:
    """The constants ``[0, 1, 0.5]`` in ``dtype`` for the kernels' ``c`` argument."""
    return np.array([0.0, 1.0, 0.5], dtype=dtype)


@njit(cache=True)
def _abs_max(u):
    m = abs(u[0])
    for j in range(1, u.shape[0]):
        a = abs(u[j])
        if a > m:
            m = a
    return m


@njit(cache=True)
def _np_sum_scale(u, thres, wmax, bound, inp_res, max_bm_res, c):
    zero = c[_C_ZERO]
    amax = _abs_max(u)
    psum = zero
    nsum = zero
    for j in range(u.shape[0]):
        x = u[j]
        if x > zero:
            psum += x
        elif x < zero:
            nsum += x
    total = max(psum, -nsum)
    if thres > zero:
        amax = min(amax, thres)
    scale = total * wmax / bound
    if inp_res > zero:
        scale = min(amax / inp_res * max_bm_res, scale)
    return max(amax, scale)


@njit(cache=True)
def noise_management(U, rows, kind, thres, wmax, bound, inp_res, max_bm_res, decay, aux, c):
    """Noise-management scale ``alpha`` of each row ``U[rows[r]]`` (spec §3).

    ``aux`` (1 element) is the AverageAbsMax running value, negative before the first use;
    it is updated row after row, in order, as aihwkit does per vector. ``bound`` is the
    output bound used by ABS_MAX_NP_SUM (1 if unbounded), ``inp_res`` the effective DAC step.
    """
    k = rows.shape[0]
    out = np.empty(k, U.dtype)
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    for r in range(k):
        u = U[rows[r]]
        if kind == NM_ABS_MAX:
            a = _abs_max(u)
            out[r] = min(a, thres) if thres > zero else a
        elif kind == NM_MAX:
            a = u[0]
            for j in range(1, u.shape[0]):
                if u[j] > a:
                    a = u[j]
            out[r] = min(a, thres) if thres > zero else a
        elif kind == NM_CONSTANT:
            out[r] = thres if thres > zero else one
        elif kind == NM_AVERAGE_ABS_MAX:
            a = _abs_max(u)
            if aux[0] < zero:
                aux[0] = a
            else:
                aux[0] = aux[0] * (one - decay) + decay * a
            out[r] = aux[0]
        elif kind == NM_ABS_MAX_NP_SUM:
            out[r] = _np_sum_scale(u, thres, wmax, bound, inp_res, max_bm_res, c)
        else:
            out[r] = one
    return out


@njit(cache=True)
def prepare_input(U, rows, scale, res, bound, noise, xi, asym_scale, with_asym, sto, uni, c):
    """DAC stage (spec §4.1) of rows ``U[rows]``: scale, quantise, clip, input noise, asymmetry.

    ``xi`` (standard normals) and ``uni`` (uniforms in [0, 1)) have shape ``(len(rows), n_in)``
    when input noise resp. stochastic rounding is on (else any shape). ``bound`` may be inf.
    Returns the prepared inputs, shape ``(len(rows), n_in)``.
    """
    k = rows.shape[0]
    n = U.shape[1]
    V = np.empty((k, n), U.dtype)
    zero = c[_C_ZERO]
    half = c[_C_HALF]
    with_noise = noise > zero
    quantise = res > zero
    for r in range(k):
        u = U[rows[r]]
        sc = scale[r]
        for j in range(n):
            v = u[j] * sc
            if quantise:
                if sto:
                    v = np.rint(v / res + (uni[r, j] - half)) * res
                else:
                    v = np.rint(v / res) * res
            if v > bound:
                v = bound
            if v < -bound:
                v = -bound
            if with_noise:
                v = v + noise * xi[r, j]
            if with_asym and v < zero:
                v = v * asym_scale
            V[r, j] = v
    return V


@njit(cache=True)
def finalize_output(Y, nl, nlf, asym_scale, with_asym, noise_values, noise, xi, res, bound, sto,
                    uni, with_bm, test_negative, c):
    """ADC stage (spec §4.3) in place: nonlinearity, asymmetry, noise, quantisation, clip.

    ``nl`` holds the per-line nonlinearity (empty: off), ``noise_values`` the per-line output
    noise std (empty: the scalar ``noise`` for all lines); ``xi`` / ``uni`` are the standard
    normals / uniforms of the output noise / stochastic rounding, shaped like ``Y`` when used.
    Returns the bound test per row. With ``with_bm`` a negative saturation *sets* the row's
    result to ``not test_negative`` (overriding an earlier positive failure), as aihwkit does.
    """
    k, n = Y.shape
    passed = np.ones(k, np.bool_)
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    half = c[_C_HALF]
    with_nl = nl.shape[0] > 0
    per_line = noise_values.shape[0] > 0
    with_noise = per_line or noise > zero
    quantise = res > zero
    for r in range(k):
        ok = True
        for i in range(n):
            v = Y[r, i]
            if with_nl:
                v = nlf * v / (one + abs(nl[i] * v))
            if with_asym and v < zero:
                v = v * asym_scale
            if with_noise:
                v = v + (noise_values[i] if per_line else noise) * xi[r, i]
            if quantise:
                if sto:
                    v = np.rint(v / res + (uni[r, i] - half)) * res
                else:
                    v = np.rint(v / res) * res
            if v > bound:
                v = bound
                if with_bm:
                    ok = False
            elif v < -bound:
                v = -bound
                if with_bm:
                    ok = not test_negative
            Y[r, i] = v
        passed[r] = ok
    return passed
