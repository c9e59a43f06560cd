"""Numba kernels of the analog MVM's IO stages (spec io.md §3, §4.1, §4.3).

Three ways through the same per-vector formulas (:func:`_dac_line`, :func:`_adc_line`,
:func:`nm_scale`): :func:`managed_mvm`, the whole managed MVM with its own matrix-vector loops
in one call, for small work (where NumPy dispatches cost more than the arithmetic); the row
kernels :func:`dac_rows` and :func:`adc_rows`, one call each per bound-management round around
one BLAS product of all its rows, for larger work; and the staged kernels
(:func:`noise_management`, :func:`prepare_input`, :func:`finalize_output`) between which
``rpusim.io`` applies the analog non-idealities that the other two do not cover.

Random numbers come from counter-based streams (:mod:`rpusim.kernels.rng`) keyed by the call
key, the batch row and a tag (:func:`tag`: bound-management round and purpose), so all three
draw the same numbers for the same row and the results never depend on the thread count.

All arithmetic stays in the dtype of the arrays (float32 as aihwkit, or float64): scalars are
passed as NumPy scalars of that dtype, and constants come in the small array ``c`` (see
:func:`constants`) because a Python literal would promote float32 to float64.
"""

import math

import numpy as np
from numba import njit

from rpusim.kernels.entry import renamed
from rpusim.kernels.numeric import abs_max, cast_like
from rpusim.kernels.rng import (_GAMMA, _INV53, _NORMAL_SHIFT, _NORMAL_TABLE, _S11, mix64,
                                stream_key)

__all__ = ["NM_NONE", "NM_ABS_MAX", "NM_MAX", "NM_CONSTANT", "NM_AVERAGE_ABS_MAX",
           "NM_ABS_MAX_NP_SUM", "BM_NONE", "BM_ITERATIVE", "BM_ITERATIVE_WORST_CASE",
           "MV_ONE_PASS", "MV_POS_NEG", "MV_POS_NEG_DIGITAL", "TAG_INP_NOISE", "TAG_INP_UNIFORM",
           "TAG_OUT_NOISE", "TAG_OUT_UNIFORM", "TAG_NEG_OUT_NOISE", "TAG_NEG_OUT_UNIFORM",
           "TAG_W_NOISE", "TAG_NEG_W_NOISE", "F_FIELDS", "I_FIELDS", "constants", "tag",
           "row_draws", "nm_scale", "dac", "adc", "noise_management",
           "prepare_input", "finalize_output", "dac_rows", "adc_rows", "managed_mvm",
           "managed_mvm_nonideal", "one_hot_product", "W_NOISE_NONE", "W_NOISE_ADDITIVE",
           "W_NOISE_PCM", "WORK_ROWS", "WORK_ROWS_NONIDEAL", "WORK_IR_FACTOR"]

NM_NONE = 0
NM_ABS_MAX = 1
NM_MAX = 2
NM_CONSTANT = 3
NM_AVERAGE_ABS_MAX = 4
NM_ABS_MAX_NP_SUM = 5

BM_NONE = 0
BM_ITERATIVE = 1
BM_ITERATIVE_WORST_CASE = 2

MV_ONE_PASS = 0
MV_POS_NEG = 1
MV_POS_NEG_DIGITAL = 2

# purposes of the random streams of one bound-management round (see ``tag``)
TAG_INP_NOISE = 0
TAG_INP_UNIFORM = 1
TAG_OUT_NOISE = 2
TAG_OUT_UNIFORM = 3
TAG_NEG_OUT_NOISE = 4
TAG_NEG_OUT_UNIFORM = 5
TAG_W_NOISE = 6
TAG_NEG_W_NOISE = 7
_TAGS_PER_ROUND = 8

_C_ZERO, _C_ONE, _C_HALF = 0, 1, 2

# Layout of the parameter arrays of ``managed_mvm`` (names index the arrays).
F_FIELDS = ("inp_res", "inp_bound", "inp_noise", "inp_asym_scale", "out_res", "out_bound",
            "out_noise", "out_asym_scale", "nl_factor", "nm_thres", "nm_wmax", "np_bound",
            "max_bm_res", "nm_decay", "out_scale", "bm_limit", "ir_drop", "ir_a_scale",
            "w_noise")
I_FIELDS = ("nm_kind", "bm_kind", "backward", "inp_sto", "out_sto", "inp_asym", "out_asym",
            "mv_kind", "max_bm_factor", "bm_test_negative", "out_noisy", "with_nl", "w_noise_kind")
(_F_INP_RES, _F_INP_BOUND, _F_INP_NOISE, _F_INP_ASYM, _F_OUT_RES, _F_OUT_BOUND, _F_OUT_NOISE,
 _F_OUT_ASYM, _F_NLF, _F_NM_THRES, _F_NM_WMAX, _F_NP_BOUND, _F_MAX_BM_RES, _F_NM_DECAY,
 _F_OUT_SCALE, _F_BM_LIMIT, _F_IR_DROP, _F_IR_A_SCALE, _F_W_NOISE) = range(len(F_FIELDS))
(_I_NM, _I_BM, _I_BACKWARD, _I_INP_STO, _I_OUT_STO, _I_INP_ASYM, _I_OUT_ASYM, _I_MV,
 _I_MAX_BM_FACTOR, _I_BM_TEST_NEG, _I_OUT_NOISY, _I_WITH_NL, _I_W_NOISE) = range(len(I_FIELDS))

# the weight read noise kinds of ``managed_mvm`` (``w_noise_kind``; spec io.md §6)
W_NOISE_NONE = 0
W_NOISE_ADDITIVE = 1
W_NOISE_PCM = 2
# the scratch rows ``managed_mvm`` needs: nine, and seven more with IR drop or weight noise,
# the last of which holds the IR drop's factors of the inputs (the caller's, see AnalogMVM)
WORK_ROWS = 9
WORK_ROWS_NONIDEAL = 16
WORK_IR_FACTOR = 15
# whether managed_mvm's body has the IR drop and weight noise code (its twin's global; see
# managed_mvm_nonideal)
_NONIDEAL = False


def constants(dtype) -> np.ndarray:
    """The constants ``[0, 1, 0.5]`` in ``dtype`` for the kernels' ``c`` argument."""
    return np.array([0.0, 1.0, 0.5], dtype=dtype)


@njit(cache=True, inline="always")
def tag(bm_round, purpose):
    """Stream tag of one purpose (``TAG_*``) in one bound-management round (0, 1, ...)."""
    return bm_round * _TAGS_PER_ROUND + purpose


# -- random numbers ------------------------------------------------------------------------------
@njit(cache=True)
def _fill(buf, key, row, stream_tag, gaussian):
    """``buf[:]`` from stream ``(key, row, stream_tag)``: normals or uniforms, in order.

    The numbers of ``normal`` / ``uniform`` on a stream started by ``init_stream`` (draw ``j``
    hashes ``stream key + j * GAMMA``), with the counter in a register instead of a state
    array that the stores to ``buf`` might alias: half the time per draw. Not inlined: a
    kernel calls it up to six times, and each inlined copy added to its compile time."""
    z = stream_key(key, row, stream_tag)
    for j in range(buf.shape[0]):
        h = mix64(z)
        if gaussian:
            buf[j] = _NORMAL_TABLE[np.int64(h >> _NORMAL_SHIFT)]
        else:
            buf[j] = (np.float64(h >> _S11) + 0.5) * _INV53
        z += _GAMMA


@njit(cache=True)
def row_draws(key, rows, stream_tag, n, gaussian, c):
    """Standard normals (``gaussian``) or uniforms in (0, 1): ``out[r, :]`` from stream
    ``(key, rows[r], stream_tag)``, in the dtype of ``c``."""
    out = np.empty((rows.shape[0], n), c.dtype)
    for r in range(rows.shape[0]):
        _fill(out[r], key, rows[r], stream_tag, gaussian)
    return out


# -- per-element formulas ------------------------------------------------------------------------
@njit(cache=True)
def _np_sum_scale(u, thres, wmax, bound, inp_res, max_bm_res, c):
    zero = c[_C_ZERO]
    amax = abs_max(u)
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
def nm_scale(u, kind, thres, wmax, bound, inp_res, max_bm_res, decay, aux, c):
    """Noise-management scale ``alpha`` of one input vector ``u`` (spec §3).

    ``aux`` (1 element) is the AverageAbsMax running value, negative before the first use;
    it is updated here. ``bound`` is the output bound used by ABS_MAX_NP_SUM (1 if
    unbounded), ``inp_res`` the effective DAC step.
    """
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    if kind == NM_ABS_MAX:
        a = abs_max(u)
        return min(a, thres) if thres > zero else a
    if kind == NM_MAX:
        a = u[0]
        for j in range(1, u.shape[0]):
            if u[j] > a:
                a = u[j]
        return min(a, thres) if thres > zero else a
    if kind == NM_CONSTANT:
        return thres if thres > zero else one
    if kind == NM_AVERAGE_ABS_MAX:
        a = abs_max(u)
        if aux[0] < zero:
            aux[0] = a
        else:
            aux[0] = aux[0] * (one - decay) + decay * a
        return aux[0]
    if kind == NM_ABS_MAX_NP_SUM:
        return _np_sum_scale(u, thres, wmax, bound, inp_res, max_bm_res, c)
    return one


@njit(cache=True, inline="always")
def dac(u, scale, res, bound, noise, xi, asym_scale, with_asym, sto, uni, zero, half):
    """DAC of one input (spec §4.1): scale, quantise, clip, input noise, asymmetry.

    ``res <= 0``: no quantisation; ``noise <= 0``: no noise (``xi`` unused); ``sto``:
    stochastic rounding with the uniform ``uni``. ``bound`` may be inf. ``zero`` and ``half``
    are the constants in the tile dtype (scalars: an array argument of an inlined function
    costs two atomic reference-count updates per call).
    """
    v = u * scale
    if res > zero:
        if sto:
            v = np.rint(v / res + (uni - half)) * res
        else:
            v = np.rint(v / res) * res
    if v > bound:
        v = bound
    if v < -bound:
        v = -bound
    if noise > zero:
        v = v + noise * xi
    if with_asym and v < zero:
        v = v * asym_scale
    return v


@njit(cache=True, inline="always")
def adc(v, with_nl, nl, nlf, asym_scale, with_asym, noise, xi, res, sto, uni, zero, one, half):
    """ADC of one output before clipping (spec §4.3): nonlinearity ``nl`` with the slope
    calibration factor ``nlf`` (both apply when ``with_nl``, even for ``nl = 0``), asymmetry,
    noise (``noise <= 0``: none), quantisation. Constants as in :func:`dac`."""
    if with_nl:
        v = nlf * v / (one + abs(nl * v))
    if with_asym and v < zero:
        v = v * asym_scale
    if noise > zero:
        v = v + noise * xi
    if res > zero:
        if sto:
            v = np.rint(v / res + (uni - half)) * res
        else:
            v = np.rint(v / res) * res
    return v


# -- one input or output vector -----------------------------------------------------------------
@njit(cache=True)
def _dac_line(u, v, s, res, bound, noise, xi, asym_scale, with_asym, sto, uni, c):
    """:func:`dac` of the input vector ``u`` scaled by ``s`` into ``v``. ``xi`` and ``uni``
    are as long as ``u`` (read only where used), so the loop has no conditional loads and
    vectorises."""
    zero = c[_C_ZERO]
    half = c[_C_HALF]
    if with_asym or sto:
        for j in range(u.shape[0]):
            v[j] = dac(u[j], s, res, bound, noise, xi[j], asym_scale, with_asym, sto, uni[j],
                       zero, half)
    else:
        # the default configuration's loop with those branches folded (see _adc_line)
        for j in range(u.shape[0]):
            v[j] = dac(u[j], s, res, bound, noise, xi[j], asym_scale, False, False, zero, zero,
                       half)


@njit(cache=True)
def _one_hot(V):
    """Whether every row of ``V`` has at most one nonzero (stops at the first that has two:
    a dense batch costs a few loads; a count inside the DAC loop stopped its vectorisation)."""
    for r in range(V.shape[0]):
        seen = False
        for j in range(V.shape[1]):
            if V[r, j] != 0:
                if seen:
                    return False
                seen = True
    return True


@njit(cache=True, nogil=True)
def one_hot_product(M, V, Y):
    """``Y = V @ M.T`` for rows of ``V`` with at most one nonzero (a drift compensation's
    identity readout): each output is its row's one product ``M[i, j] * V[r, j]`` (an
    all-zero row multiplies column 0 by its zero, as a full product's signs would), read as a
    gather of columns of ``M``. In tiles of 16 rows by 16 outputs: a row-by-row gather
    misses the cache on every load, tiles of whole rows of ``M`` on every store."""
    k = V.shape[0]
    n_in = V.shape[1]
    cols = np.empty(k, np.int64)
    vals = np.empty(k, V.dtype)
    for r in range(k):
        col = 0
        if r < n_in and V[r, r] != 0:
            col = r  # an identity's; the row's only nonzero
        else:
            for j in range(n_in):
                if V[r, j] != 0:
                    col = j
                    break
        cols[r] = col
        vals[r] = V[r, col]
    n_out = M.shape[0]
    for r0 in range(0, k, 16):
        r1 = min(r0 + 16, k)
        for i0 in range(0, n_out, 16):
            i1 = min(i0 + 16, n_out)
            for r in range(r0, r1):
                col = cols[r]
                v = vals[r]
                for i in range(i0, i1):
                    Y[r, i] = M[i, col] * v


@njit(cache=True)
def _adc_line(y, out, nl, with_nl, nlf, asym_scale, with_asym, noise_line, xi, res, sto, uni,
              bound, with_bm, test_negative, scratch, c):
    """:func:`adc` and clipping to ``[-bound, bound]`` of one output vector ``y`` into ``out``
    (may be ``y``); returns the bound test: with bound management (``with_bm``) a positive
    saturation fails the vector and a negative one *sets* the result to ``not test_negative``
    (as aihwkit, element by element in order).

    ``nl`` (nonlinearity, used when ``with_nl``), ``noise_line`` (output noise std per line),
    ``xi``, ``uni`` and ``scratch`` are at least as long as ``y``: no conditional loads, so the
    loop vectorises. Saturations are counted in it; their order (the last one decides) is
    looked up afterwards in ``scratch``, the values before clipping, only when both signs
    occur.
    """
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    half = c[_C_HALF]
    n = y.shape[0]
    if with_nl or with_asym or sto:
        for i in range(n):
            scratch[i] = adc(y[i], with_nl, nl[i], nlf, asym_scale, with_asym, noise_line[i],
                             xi[i], res, sto, uni[i], zero, one, half)
    else:
        # the default configuration's loop with those branches folded away: runtime flags
        # inside the loop stopped its vectorisation (20x slower)
        for i in range(n):
            scratch[i] = adc(y[i], False, zero, nlf, asym_scale, False, noise_line[i], xi[i],
                             res, False, zero, zero, one, half)
    n_pos = 0
    n_neg = 0
    for i in range(n):
        v = scratch[i]
        n_pos += v > bound
        n_neg += v < -bound
        if v > bound:
            v = bound
        if v < -bound:
            v = -bound
        out[i] = v
    if not with_bm or (n_pos == 0 and n_neg == 0):
        return True
    if n_neg == 0 or test_negative:
        return False
    if n_pos == 0:
        return True
    for i in range(n - 1, -1, -1):
        if scratch[i] > bound:
            return False
        if scratch[i] < -bound:
            return True
    return True


@njit(cache=True, inline="always")
def _input_scale(alpha, red, nm_on, bm_on, zero, one):
    """The DAC's input scale: ``1 / alpha`` (noise management, ``alpha > 0``), divided by the
    bound-management reduction ``red`` (in the tile dtype)."""
    s = one
    if nm_on and alpha > zero:
        s = s / alpha
    if bm_on:
        s = s / red
    return s


@njit(cache=True, inline="always")
def _output_factor(s, alpha, out_scale, backward, nm_on, zero, one):
    """Factor of a finished output vector: forward ``out_scale / s``; backward (aihwkit)
    ``out_scale * alpha`` (``alpha > 0``, noise management on) or ``out_scale``."""
    if not backward:
        return out_scale / s
    if nm_on:
        return out_scale * (alpha if alpha > zero else one)
    return out_scale


# -- staged kernels (products in BLAS; IR drop, offsets, weight noise, read asymmetry) ------------
@njit(cache=True)
def noise_management(U, rows, kind, thres, wmax, bound, inp_res, max_bm_res, decay, aux, c):
    """:func:`nm_scale` of each row ``U[rows[r]]``, in order (AverageAbsMax runs row by row,
    as aihwkit does per vector)."""
    out = np.empty(rows.shape[0], U.dtype)
    for r in range(rows.shape[0]):
        out[r] = nm_scale(U[rows[r]], kind, thres, wmax, bound, inp_res, max_bm_res, decay,
                          aux, c)
    return out


@njit(cache=True)
def prepare_input(U, rows, scale, res, bound, noise, xi, asym_scale, with_asym, sto, uni, c):
    """:func:`dac` of rows ``U[rows]`` scaled by ``scale[r]``; returns ``(len(rows), n_in)``.

    ``xi`` (standard normals) and ``uni`` (uniforms) have that shape when input noise resp.
    stochastic rounding is on (else any shape).
    """
    k = rows.shape[0]
    n = U.shape[1]
    V = np.empty((k, n), U.dtype)
    unused = np.zeros(n, U.dtype)
    with_noise = noise > c[_C_ZERO]
    with_uni = sto and res > c[_C_ZERO]
    for r in range(k):
        _dac_line(U[rows[r]], V[r], scale[r], res, bound, noise,
                  xi[r] if with_noise else unused, asym_scale, with_asym, sto,
                  uni[r] if with_uni else unused, c)
    return V


@njit(cache=True)
def finalize_output(Y, nl, nlf, asym_scale, with_asym, noise_values, noise, xi, res, bound, sto,
                    uni, with_bm, test_negative, c):
    """:func:`adc` and clipping of ``Y`` in place; returns the bound test per row.

    ``nl`` holds the per-line nonlinearity (empty: off), ``noise_values`` the per-line output
    noise std (empty: the scalar ``noise`` for all lines); ``xi`` / ``uni`` are the standard
    normals / uniforms of the output noise / stochastic rounding, shaped like ``Y`` when used.
    """
    k, n = Y.shape
    passed = np.ones(k, np.bool_)
    with_nl = nl.shape[0] > 0
    per_line = noise_values.shape[0] > 0
    with_noise = per_line or noise > c[_C_ZERO]
    with_uni = sto and res > c[_C_ZERO]
    unused = np.zeros(n, Y.dtype)
    scratch = np.empty(n, Y.dtype)
    nl_line = nl if with_nl else unused
    noise_line = noise_values if per_line else np.full(n, noise, Y.dtype)
    for r in range(k):
        passed[r] = _adc_line(Y[r], Y[r], nl_line, with_nl, nlf, asym_scale, with_asym,
                              noise_line, xi[r] if with_noise else unused, res, sto,
                              uni[r] if with_uni else unused, bound, with_bm, test_negative,
                              scratch, c)
    return passed


@njit(cache=True, inline="always")
def _adc_with_draws(y, y2, out, digital, noisy, with_uni, key, row, bm_round, buf_n, buf_u, nl,
                    with_nl, nlf, asym, with_asym, noise_line, res, sto, bound, with_bm,
                    test_negative, scratch, c):
    """ADC of one row's product ``y`` into ``out`` with the draws of stream ``row`` in round
    ``bm_round``; with ``digital`` (MV_POS_NEG_DIGITAL) first the negative inputs' part ``y2``,
    converted in place with its own draws and added to ``out`` after. Returns the bound test.
    Shared by :func:`adc_rows` and :func:`managed_mvm`."""
    ok = True
    if digital:
        if noisy:
            _fill(buf_n, key, row, tag(bm_round, TAG_NEG_OUT_NOISE), True)
        if with_uni:
            _fill(buf_u, key, row, tag(bm_round, TAG_NEG_OUT_UNIFORM), False)
        ok = _adc_line(y2, y2, nl, with_nl, nlf, asym, with_asym, noise_line, buf_n, res, sto,
                       buf_u, bound, with_bm, test_negative, scratch, c)
    if noisy:
        _fill(buf_n, key, row, tag(bm_round, TAG_OUT_NOISE), True)
    if with_uni:
        _fill(buf_u, key, row, tag(bm_round, TAG_OUT_UNIFORM), False)
    ok_pos = _adc_line(y, out, nl, with_nl, nlf, asym, with_asym, noise_line, buf_n, res, sto,
                       buf_u, bound, with_bm, test_negative, scratch, c)
    if digital:
        for i in range(out.shape[0]):
            out[i] += y2[i]
    return ok_pos and ok


@njit(cache=True, inline="always")
def _scale_line(o, factor, zero):
    """``o *= factor``; returns whether all of ``o`` is finite (counted in the same loop: a
    separate pass over the outputs cost as much as the ADC)."""
    n_finite = 0
    for i in range(o.shape[0]):
        x = o[i] * factor
        o[i] = x
        n_finite += x - x == zero
    return n_finite == o.shape[0]


@njit(cache=True, inline="always")
def _dac_settings(f, flags, zero):
    """The DAC's fields of ``f``/``flags`` as its line kernel takes them: input resolution,
    bound, noise, asymmetry scale, whether asymmetric, whether stochastic rounding, whether
    that rounding draws uniforms, and whether an all-zero input is skipped (one place for
    the kernels that run a DAC)."""
    res = f[_F_INP_RES]
    noise = f[_F_INP_NOISE]
    sto = flags[_I_INP_STO] != 0
    return (res, f[_F_INP_BOUND], noise, f[_F_INP_ASYM], flags[_I_INP_ASYM] != 0, sto,
            sto and res > zero, flags[_I_BACKWARD] != 0 or noise <= zero)


@njit(cache=True, inline="always")
def _adc_settings(f, flags, zero):
    """The ADC's fields of ``f``/``flags`` as :func:`_adc_with_draws` takes them: whether
    POS_NEG_DIGITAL, whether noisy, whether stochastic rounding draws uniforms, whether
    nonlinear, the nonlinearity factor, asymmetry scale, whether asymmetric, resolution,
    whether stochastic rounding, bound, and the negative bound test (one place for the
    kernels that run an ADC)."""
    res = f[_F_OUT_RES]
    sto = flags[_I_OUT_STO] != 0
    return (flags[_I_MV] == MV_POS_NEG_DIGITAL, flags[_I_OUT_NOISY] != 0, sto and res > zero,
            flags[_I_WITH_NL] != 0, f[_F_NLF], f[_F_OUT_ASYM], flags[_I_OUT_ASYM] != 0, res,
            sto, f[_F_OUT_BOUND], flags[_I_BM_TEST_NEG] != 0)


# -- row kernels around one BLAS product per round ------------------------------------------------
@njit(cache=True, _nrt=False)
def dac_rows(U, rows, V, alpha, scale, f, flags, bm_round, red, key, aux, c, work):
    """Noise management and DAC of one bound-management round (``bm_round``, reduction
    ``red``) for the batch rows ``rows``: ``V[r]`` from ``U[rows[r]]``.

    Round 0 computes ``alpha`` (in row order: AverageAbsMax updates ``aux``), round 1 of
    ITERATIVE_WORST_CASE its ABS_MAX_NP_SUM scale; both are kept in ``alpha[row]``, the input
    scale in ``scale[row]``, which is 0 for a row whose input is skipped (its output is
    exactly zero; ``V[r]`` is zeroed). Returns whether every row of ``V`` has at most one
    nonzero (such a batch is read as a gather). Parameters as :func:`managed_mvm`; ``work``
    (2, >= n_in) in the tile dtype is scratch.

    Like :func:`managed_mvm` it allocates nothing and is compiled without reference counts:
    numba's counts on the array views and arguments of every row's helper calls cost more
    than a small row's arithmetic (a conv layer's 9-input rows: 165 -> 100 ns a row).
    """
    n_in = U.shape[1]
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    nm_kind = flags[_I_NM]
    nm_on = nm_kind != NM_NONE
    bm_kind = flags[_I_BM]
    bm_on = bm_kind != BM_NONE
    worst_case = (bm_round == 1 and bm_kind == BM_ITERATIVE_WORST_CASE
                  and nm_kind != NM_ABS_MAX_NP_SUM)
    (inp_res, inp_bound, inp_noise, inp_asym, with_asym, inp_sto, with_uni,
     skip_zero) = _dac_settings(f, flags, zero)
    red_t = cast_like(red, one)
    noise_tag = tag(bm_round, TAG_INP_NOISE)
    uni_tag = tag(bm_round, TAG_INP_UNIFORM)
    xi = work[0, :n_in]
    uni = work[1, :n_in]
    xi[:] = zero
    uni[:] = zero
    for r in range(rows.shape[0]):
        row = rows[r]
        u = U[row]
        if bm_round == 0:
            alpha[row] = nm_scale(u, nm_kind, f[_F_NM_THRES], f[_F_NM_WMAX], f[_F_NP_BOUND],
                                  inp_res, f[_F_MAX_BM_RES], f[_F_NM_DECAY], aux, c)
            if nm_on and alpha[row] <= zero and skip_zero:
                scale[row] = zero
                V[r, :] = zero
                continue
        elif worst_case:
            alpha[row] = _np_sum_scale(u, f[_F_NM_THRES], f[_F_NM_WMAX], f[_F_NP_BOUND],
                                       inp_res, f[_F_MAX_BM_RES], c)
        s = _input_scale(alpha[row], red_t, nm_on, bm_on, zero, one)
        scale[row] = s
        if inp_noise > zero:
            _fill(xi, key, row, noise_tag, True)
        if with_uni:
            _fill(uni, key, row, uni_tag, False)
        _dac_line(u, V[r], s, inp_res, inp_bound, inp_noise, xi, inp_asym, with_asym, inp_sto,
                  uni, c)
    return _one_hot(V)


@njit(cache=True, nogil=True, _nrt=False)
def adc_rows(Y, Y2, rows, out, alpha, scale, f, flags, nl, noise_line, key, bm_round, final,
             passed, c, work):
    """ADC, clipping and bound test of one round for the products ``Y[r]`` of the batch rows
    ``rows[r]`` into ``out[rows[r]]`` (``Y`` may be ``out``); ``Y2`` holds the negative parts
    of MV_POS_NEG_DIGITAL (else unused). ``passed[r]`` is the bound test; rows that pass, or
    all when ``final``, get their output factor. Rows whose ``scale`` is 0 (skipped inputs)
    give zeros. ``nl`` and ``noise_line`` as in :func:`managed_mvm`. Returns whether every
    output that got its factor is finite (tested in the factor's loop: a separate pass over
    the outputs cost as much as the ADC). Releases the GIL: ``rpusim.io`` runs two halves of
    the rows side by side. ``work`` (3, >= n_out) in the tile dtype is scratch (one per
    concurrent call); no allocation, no reference counts (see :func:`dac_rows`).
    """
    n_out = out.shape[1]
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    nm_on = flags[_I_NM] != NM_NONE
    with_bm = flags[_I_BM] != BM_NONE
    backward = flags[_I_BACKWARD] != 0
    (digital, noisy, with_uni, with_nl, nlf, asym, with_asym, res, sto, bound,
     test_negative) = _adc_settings(f, flags, zero)
    out_scale = f[_F_OUT_SCALE]
    buf_n = work[0, :n_out]
    buf_u = work[1, :n_out]
    buf_n[:] = zero
    buf_u[:] = zero
    scratch = work[2, :n_out]
    no_line = work[2, :0]
    finite = True
    for r in range(rows.shape[0]):
        row = rows[r]
        o = out[row]
        s = scale[row]
        if s == zero:
            o[:] = zero
            passed[r] = True
            continue
        ok = _adc_with_draws(Y[r], Y2[r] if digital else no_line, o, digital, noisy, with_uni,
                             key, row, bm_round, buf_n, buf_u, nl, with_nl, nlf, asym,
                             with_asym, noise_line, res, sto, bound, with_bm, test_negative,
                             scratch, c)
        passed[r] = ok
        if ok or final:
            factor = _output_factor(s, alpha[row], out_scale, backward, nm_on, zero, one)
            finite = _scale_line(o, factor, zero) and finite
    return finite



# -- the whole managed MVM in one call (small batches) -------------------------------------------
@njit(cache=True, inline="always")
def _as_is(w):
    return w


@njit(cache=True, inline="always")
def _magnitude(w):
    return abs(w)


def _dot_body(W, i, v):
    """``sum_j M[i, j] v[j]`` of row ``i`` of ``M = W`` (:func:`_dot_abs`: of ``|W|``).

    Compiled with reassociation allowed for its sum only (and not inlined by numba, which
    would compile the body under its caller's flags), so that LLVM vectorises it: the sum
    of one output over the inputs in the order of the vector lanes, 1.5-4.6x faster than
    in input order for the digits networks' layers. The order is fixed by the compiled code (the
    same bits on every call and thread count; another CPU's vector width may sum in another
    order, as the BLAS product of the larger calls does)."""
    # -0.0 + p is p for every p (-0.0 included): the sum of the products alone; a start at
    # the first product kept LLVM from vectorising the rest as well
    a = -W.dtype.type(0)
    for j in range(v.shape[0]):
        a += _weight(W[i, j]) * v[j]
    return a


def _axpy_body(W, v, y):
    """``y = W.T v`` (:func:`_axpy_abs`: ``|W|.T v``) as axpys over the outputs, four
    inputs (rows of ``W``) at a time: each pass adds the four products of an output summed
    in pairs, so that the outputs are loaded and stored once per four inputs (an axpy per
    input stored them after every input: 1.2-1.9x slower). Reassociation is allowed, as in
    :func:`_dot_body`."""
    n_in = W.shape[0]
    n = y.shape[0]
    for i in range(n):
        y[i] = 0
    j = 0
    while j + 4 <= n_in:
        v0, v1, v2, v3 = v[j], v[j + 1], v[j + 2], v[j + 3]
        for i in range(n):
            y[i] += ((_weight(W[j, i]) * v0 + _weight(W[j + 1, i]) * v1)
                     + (_weight(W[j + 2, i]) * v2 + _weight(W[j + 3, i]) * v3))
        j += 4
    while j < n_in:
        vj = v[j]
        for i in range(n):
            y[i] += _weight(W[j, i]) * vj
        j += 1


def _matvec_body(W, transposed, v, y):
    """``y = M v`` with ``M = W`` or ``W.T``. (:func:`_matvec_abs`: ``y = |M| v``, the same
    body with ``_weight`` taking magnitudes.)

    Forward (``M = W``): a vectorised dot product per output (:func:`_dot_body`); the
    transposed product: axpys over the outputs (:func:`_axpy_body`)."""
    if transposed:
        _AXPY(W, v, y)
        return
    for i in range(W.shape[0]):
        y[i] = _DOT(W, i, v)


_weight = _as_is
_dot = njit(cache=True, fastmath={"reassoc"})(_dot_body)
_dot_abs = njit(cache=True, fastmath={"reassoc"})(renamed(
    _dot_body, "_dot_abs", {**globals(), "_weight": _magnitude}))
_axpy = njit(cache=True, fastmath={"reassoc"})(_axpy_body)
_axpy_abs = njit(cache=True, fastmath={"reassoc"})(renamed(
    _axpy_body, "_axpy_abs", {**globals(), "_weight": _magnitude}))
_DOT, _AXPY = _dot, _axpy
_matvec = njit(cache=True)(_matvec_body)
# IR drop and PCM read noise sum over |M|: the same loops
_matvec_abs = njit(cache=True)(renamed(
    _matvec_body, "_matvec_abs",
    {**globals(), "_weight": _magnitude, "_DOT": _dot_abs, "_AXPY": _axpy_abs}))


@njit(cache=True)
def _nonideal_line(W, transposed, v, y, ir_drop, ir_a_scale, w_noise, w_noise_kind, key, row,
                   noise_tag, work, c):
    """IR drop and weight read noise of one row's product ``y = M v`` (``M = W``, or ``W.T``
    when ``transposed``), in place and in this order, as the staged path's
    ``AnalogMVM._nonidealities`` (spec io.md §6), up to the summation order of the sums over
    the inputs: ``a_i = n_in / g_ratio sum_j |M_ij| |v_j|``, ``y_i -= a_i (a_i (a_i / 20 -
    1/5) + 1/2) ir_drop sum_j M_ij v_j f_j`` with the factors ``f_j`` in row
    ``WORK_IR_FACTOR`` of ``work``; then ``y_i += w_noise sqrt(sum_j v_j^2 [|M_ij|]) xi_i``
    (additive: without ``|M_ij|``), ``xi`` the normals of stream ``(key, row, noise_tag)``.
    ``work`` rows 9-14 are scratch."""
    n_in = v.shape[0]
    n_out = y.shape[0]
    zero = c[_C_ZERO]
    if ir_drop > zero:
        av = work[9, :n_in]
        vf = work[10, :n_in]
        factor = work[WORK_IR_FACTOR, :n_in]
        for j in range(n_in):
            av[j] = abs(v[j])
            vf[j] = v[j] * factor[j]
        a_sum = work[12, :n_out]
        d_sum = work[13, :n_out]
        _matvec_abs(W, transposed, av, a_sum)
        _matvec(W, transposed, vf, d_sum)
        c1 = cast_like(0.05, zero)
        c2 = cast_like(0.2, zero)
        for i in range(n_out):
            a = ir_a_scale * a_sum[i]
            y[i] -= a * (a * (c1 * a - c2) + c[_C_HALF]) * (ir_drop * d_sum[i])
    if w_noise_kind != W_NOISE_NONE:
        xi = work[14, :n_out]
        _fill(xi, key, row, noise_tag, True)
        if w_noise_kind == W_NOISE_ADDITIVE:
            total = zero
            for j in range(n_in):
                total += v[j] * v[j]
            std = w_noise * math.sqrt(total)
            for i in range(n_out):
                y[i] += std * xi[i]
        else:
            v2 = work[11, :n_in]
            for j in range(n_in):
                v2[j] = v[j] * v[j]
            q_sum = work[12, :n_out]
            _matvec_abs(W, transposed, v2, q_sum)
            for i in range(n_out):
                y[i] += w_noise * math.sqrt(q_sum[i]) * xi[i]


@njit(cache=True, _nrt=False)
def managed_mvm(W, transposed, U, Y, f, flags, nl, noise_line, key, aux, c, work):
    """The IO-managed ``Y = U @ M.T`` (``M = W``, or ``W.T`` when ``transposed``), all rows,
    all bound-management rounds, in one call (spec io.md §3-§5).

    Covers the configurations without IR drop, voltage offsets / series resistance, weight
    read noise and read asymmetry; its twin :func:`managed_mvm_nonideal` those with IR drop
    or weight read noise too (:func:`_nonideal_line`; ``work`` of ``WORK_ROWS_NONIDEAL``
    rows). The others take the staged path. ``f`` and ``flags`` hold the scalar parameters
    as named by ``F_FIELDS`` / ``I_FIELDS``; ``aux`` is the AverageAbsMax
    running value (updated); ``nl`` and ``noise_line`` are the nonlinearity and output noise
    std of each output line (length ``n_out``; ``nl`` read when ``flags`` say so). Random
    numbers as ``row_draws`` with the same tags, so this equals the row kernels
    (:func:`dac_rows`, :func:`adc_rows`) and the staged path up to the summation order of the
    products. ``work`` (9, >= max(n_in, n_out)) in the tile dtype is scratch, and ``Y`` (m,
    n_out) is written: nothing is allocated (which would cost more than the arithmetic of a
    small tile). Returns whether every input and every output is finite: the inputs are
    counted here, one pass over a row that is read anyway, so that callers need not test
    them first (a row with a non-finite input is skipped and its outputs left 0). A call that
    returns False puts ``aux`` back as it was (the caller refuses such a call).
    """
    m = U.shape[0]
    n_in = U.shape[1]
    n_out = Y.shape[1]
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    nm_kind = flags[_I_NM]
    nm_on = nm_kind != NM_NONE
    bm_kind = flags[_I_BM]
    bm_on = bm_kind != BM_NONE
    backward = flags[_I_BACKWARD] != 0
    mv_kind = flags[_I_MV]
    (inp_res, inp_bound, inp_noise, inp_asym, inp_with_asym, inp_sto, inp_with_uni,
     skip_zero) = _dac_settings(f, flags, zero)
    (digital, noisy, with_uni, with_nl, nlf, asym, with_asym, res, sto, bound,
     test_negative) = _adc_settings(f, flags, zero)
    v = work[0, :n_in]
    v2 = work[1, :n_in]
    xi = work[2, :n_in]
    uni = work[3, :n_in]
    y = work[4, :n_out]
    y2 = work[5, :n_out]
    buf_n = work[6, :n_out]
    buf_u = work[7, :n_out]
    scratch = work[8, :n_out]
    ir_drop = f[_F_IR_DROP]
    ir_a_scale = f[_F_IR_A_SCALE]
    w_noise = f[_F_W_NOISE]
    wn_kind = flags[_I_W_NOISE]
    finite = True
    aux_before = aux[0]
    for r in range(m):
        for i in range(n_out):
            Y[r, i] = zero
        u = U[r]
        out = Y[r]
        n_finite = 0
        for j in range(n_in):
            n_finite += u[j] - u[j] == zero
        if n_finite != n_in:
            # the call is refused (nothing of it is kept): no arithmetic on such a row, where
            # an infinite input would divide by a zero scale
            finite = False
            continue
        alpha = nm_scale(u, nm_kind, f[_F_NM_THRES], f[_F_NM_WMAX], f[_F_NP_BOUND], inp_res,
                         f[_F_MAX_BM_RES], f[_F_NM_DECAY], aux, c)
        if nm_on and alpha <= zero and skip_zero:
            continue
        red = 0.5
        bm_round = 0
        s = one
        while True:
            red *= 2.0
            if (bm_round == 1 and bm_kind == BM_ITERATIVE_WORST_CASE
                    and nm_kind != NM_ABS_MAX_NP_SUM):
                alpha = _np_sum_scale(u, f[_F_NM_THRES], f[_F_NM_WMAX], f[_F_NP_BOUND], inp_res,
                                      f[_F_MAX_BM_RES], c)
                red = 1.0
            red_t = cast_like(red, one)
            s = _input_scale(alpha, red_t, nm_on, bm_on, zero, one)
            # DAC
            if inp_noise > zero:
                _fill(xi, key, r, tag(bm_round, TAG_INP_NOISE), True)
            if inp_with_uni:
                _fill(uni, key, r, tag(bm_round, TAG_INP_UNIFORM), False)
            _dac_line(u, v, s, inp_res, inp_bound, inp_noise, xi, inp_asym, inp_with_asym,
                      inp_sto, uni, c)
            # analog product: y (and the negative inputs' part y2 of the POS_NEG kinds)
            if mv_kind == MV_ONE_PASS:
                _matvec(W, transposed, v, y)
                if _NONIDEAL:  # a compile-time constant: the other twin has no such code
                    _nonideal_line(W, transposed, v, y, ir_drop, ir_a_scale, w_noise, wn_kind,
                                   key, r, tag(bm_round, TAG_W_NOISE), work, c)
            else:
                for j in range(n_in):
                    v2[j] = min(v[j], zero)
                _matvec(W, transposed, v2, y2)
                if _NONIDEAL:
                    _nonideal_line(W, transposed, v2, y2, ir_drop, ir_a_scale, w_noise, wn_kind,
                                   key, r, tag(bm_round, TAG_NEG_W_NOISE), work, c)
                for j in range(n_in):
                    v2[j] = max(v[j], zero)
                _matvec(W, transposed, v2, y)
                if _NONIDEAL:
                    _nonideal_line(W, transposed, v2, y, ir_drop, ir_a_scale, w_noise, wn_kind,
                                   key, r, tag(bm_round, TAG_W_NOISE), work, c)
                if mv_kind == MV_POS_NEG:
                    for i in range(n_out):
                        y[i] += y2[i]
            ok = _adc_with_draws(y, y2, out, digital, noisy, with_uni, key, r, bm_round,
                                 buf_n, buf_u, nl, with_nl, nlf, asym, with_asym, noise_line,
                                 res, sto, bound, bm_on, test_negative, scratch, c)
            bm_round += 1
            # aihwkit's stop criteria: reduction beyond max_bm_factor, or beyond max_bm_res
            # DAC steps (red = 16 with the defaults)
            if (not bm_on or ok or int(red) > flags[_I_MAX_BM_FACTOR]
                    or red_t > f[_F_BM_LIMIT]):
                break
        factor = _output_factor(s, alpha, f[_F_OUT_SCALE], backward, nm_on, zero, one)
        finite = _scale_line(out, factor, zero) and finite
    if not finite:
        aux[0] = aux_before
    return finite


# managed_mvm with IR drop and weight read noise: the same body with _NONIDEAL set, so that
# the plain kernel (every default configuration) compiles without that code: it added a
# second to a cold start's compile of the MVM kernel (3.8 -> 4.8-5.3 s here)
managed_mvm_nonideal = njit(cache=True, _nrt=False)(renamed(
    managed_mvm.py_func, "managed_mvm_nonideal", {**globals(), "_NONIDEAL": True}))
