"""The pulsed update engine: per-sample bit lengths, coincidences and pulse application.

The engine knows nothing about device physics. A device model registers a parameter
``NamedTuple`` class together with a numba step function
``step(params, P, i, j, w, up, states) -> new w`` (one pulse on element ``(i, j)``, clipped);
``device_step`` dispatches on the type of ``params`` at compile time, so the engine is compiled
once per device model and cached.

Pulse sign convention (aihwkit): ``s = sign(x) sign(d) sign(lr)``; ``s > 0`` is a down pulse.
"""

import numpy as np
from numba import njit, prange
from numba.extending import overload

from rpusim.configs.enums import PulseType
from rpusim.configs.update import effective_resolution
from rpusim.kernels.entry import entry_point, renamed as _renamed
from rpusim.kernels.numeric import abs_max, cast_like
from rpusim.kernels.rng import GAMMA, init_stream, normal, stream_key, uniform, uniform_of

__all__ = ["register_step", "pulsed_update", "device_step", "KIND_STOCHASTIC",
           "KIND_DETERMINISTIC_IMPLICIT", "KIND_MEAN_COUNT"]

KIND_STOCHASTIC = 0
KIND_DETERMINISTIC_IMPLICIT = 1
KIND_MEAN_COUNT = 2

# Rows per work unit of the pulse kernels: the rows of a block share one pass over the
# samples' bit trains, which otherwise are streamed from memory once per row.
_ROW_BLOCK = 32

_STEP_FUNCTIONS: dict = {}


def register_step(params_class: type, step_function) -> None:
    """Bind a device parameter tuple class to its numba pulse-step function."""
    _STEP_FUNCTIONS[params_class] = step_function


def device_step(params, P, i, j, w, up, states):
    """One pulse on element ``(i, j)``; resolved per ``params`` type inside jitted code."""
    return _STEP_FUNCTIONS[type(params)](params, P, i, j, w, up, states)


@overload(device_step, jit_options={"cache": True}, inline="always")
def _device_step_overload(params, P, i, j, w, up, states):
    fn = _STEP_FUNCTIONS.get(getattr(params, "instance_class", None))
    if fn is None:
        return None
    # the step's Python body itself is the implementation, inlined into the engine's loop:
    # a call per pulse would cost more than the pulse (argument passing, array refcounts)
    return getattr(fn, "py_func", fn)


@njit(cache=True, inline="always")
def _popcount(v):
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((v * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, inline="always")
def _disc(v, res, sto, states, s):
    """aihwkit's discretisation: ``rint(v/res [+ U - 0.5]) * res``; ``res <= 0`` is off.

    The uniform is cast to the dtype of ``v`` so that the sum rounds in that dtype.
    """
    if res <= 0:
        return v
    if sto:
        return np.rint(v / res + cast_like(uniform(states, s) - 0.5, v)) * res
    return np.rint(v / res) * res


# Bit trains of up to 64 bits (the usual case: aihwkit's default BL is 31) are passed to the
# pulse kernels as 2-d arrays (m, lines) of one word, longer ones as 3-d (m, lines, words).
# The helpers below are specialised on that: the one-word pulse loop has no word loops,
# whose code alone made it 1.5x longer in instructions (register pressure), and the kernels
# for longer trains are only compiled when such trains occur.
def _first_word(bits, r, j):
    """Word 0 of the train of line ``j`` of sample ``r``."""
    return bits[r, j] if bits.ndim == 2 else bits[r, j, 0]


def _fired(bits, r, j):
    """Whether the train of line ``j`` of sample ``r`` has any bit set."""
    return bool(np.any(bits[r, j]))


def _fired_after_first(bits, r, j):
    """Whether a word after the first of that train has a bit set."""
    return bits.ndim == 3 and bool(np.any(bits[r, j, 1:]))


def _coincidences_after_first(dbits, xwords, r, i, jj):
    """Coincidences of the words after the first of d train ``(r, i)`` and x train
    ``(r, jj)``."""
    if dbits.ndim == 2:
        return 0
    return sum(_popcount(dbits[r, i, k] & xwords[r, jj, k]) for k in range(1, dbits.shape[2]))


def _copy_train(src, r, j, dst, n):
    """``dst[r, n] = src[r, j]`` for a 3-d ``src`` and a 2-d or 3-d ``dst``."""
    if dst.ndim == 2:
        dst[r, n] = src[r, j, 0]
    else:
        dst[r, n] = src[r, j]


@overload(_first_word, jit_options={"cache": True})
def _first_word_overload(bits, r, j):
    if bits.ndim == 2:
        return lambda bits, r, j: bits[r, j]
    return lambda bits, r, j: bits[r, j, 0]


@overload(_fired, jit_options={"cache": True})
def _fired_overload(bits, r, j):
    if bits.ndim == 2:
        return lambda bits, r, j: bits[r, j] != 0

    def impl(bits, r, j):
        for k in range(bits.shape[2]):
            if bits[r, j, k] != 0:
                return True
        return False
    return impl


@overload(_fired_after_first, jit_options={"cache": True})
def _fired_after_first_overload(bits, r, j):
    if bits.ndim == 2:
        return lambda bits, r, j: False

    def impl(bits, r, j):
        for k in range(1, bits.shape[2]):
            if bits[r, j, k] != 0:
                return True
        return False
    return impl


@overload(_coincidences_after_first, jit_options={"cache": True})
def _coincidences_after_first_overload(dbits, xwords, r, i, jj):
    if dbits.ndim == 2:
        return lambda dbits, xwords, r, i, jj: 0

    def impl(dbits, xwords, r, i, jj):
        n = 0
        for k in range(1, dbits.shape[2]):
            n += _popcount(dbits[r, i, k] & xwords[r, jj, k])
        return n
    return impl


@overload(_copy_train, jit_options={"cache": True})
def _copy_train_overload(src, r, j, dst, n):
    if dst.ndim == 2:
        def impl(src, r, j, dst, n):
            dst[r, n] = src[r, j, 0]
        return impl

    def impl(src, r, j, dst, n):
        for k in range(src.shape[2]):
            dst[r, n, k] = src[r, j, k]
    return impl


# Layout of the engine's packed arguments: ``c`` in the tile dtype, ``flags`` int64.
_C_LR, _C_G, _C_UM_SCALE, _C_ZERO, _C_ONE, _C_BL, _C_RES, _C_X_RES, _C_D_RES = range(9)
_F_BL, _F_FIXED_BL, _F_UBM, _F_UM, _F_KIND, _F_STO, _F_NEGATIVE_LR = range(7)


@njit(cache=True)
def _bl_a_b(x, d, c, flags):
    """Bit length and the d-/x-scales A, B of one sample (update spec §4), in the tile dtype.

    ``c`` holds the float constants (``_C_*``) in the tile dtype so that every operation
    rounds as aihwkit's float32 code does (a Python literal would promote to float64).
    """
    lr = c[_C_LR]
    g = c[_C_G]
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    if lr == zero:
        return 0, one, one
    dbl = c[_C_BL]
    desired_bl = flags[_F_BL]
    ubm = flags[_F_UBM] != 0
    if flags[_F_FIXED_BL] != 0 or ubm or not (g * dbl < lr):
        bl = desired_bl
        a = np.sqrt(lr / (g * dbl))
        b = a
    else:
        bl = max(int(np.ceil(lr / g)), 1)
        a = one
        b = one
    if flags[_F_UM] != 0 or ubm:
        # the inputs are finite (the tile tests them first): the same maxima in any order
        x_max = abs_max(x)
        d_max = abs_max(d)
        if x_max == zero or d_max == zero:
            return 0, one, one
        x_val = x_max
        d_val = c[_C_UM_SCALE] * d_max
        k = ((lr * x_val) * d_val) / g
        if ubm:
            # compared before the int conversion, which a huge k would overflow
            bl = desired_bl if k >= dbl else int(np.ceil(k))
            if bl == 0:
                # lr * x * d underflowed to 0 (denormal inputs): no pulse, as a zero update
                return 0, one, one
            a = np.sqrt(lr / (g * cast_like(bl, lr)))
            b = a
        if k > dbl:
            d_val = d_val * (dbl / k)
        a = a * np.sqrt(x_val / d_val)
        b = b * np.sqrt(d_val / x_val)
        if a == zero or b == zero or a - a != zero or b - b != zero:
            # max|x| / max|d| beyond the dtype's range (e.g. a vanishing gradient): aihwkit's
            # arithmetic then gives one side probabilities 0 or below 2^-60 (the other inf or
            # NaN), so no coincidence in distribution: this sample gets no pulse
            return 0, one, one
    return bl, a, b


# The kernels below allocate nothing (their outputs and stream states come in), so that their
# serial twins can be compiled without reference counting (see ``_twins``).
_ONE_BIT = False  # True in the twin of _apply_stochastic for one-bit trains (_apply_one_bit)


@njit(cache=True, inline="always")
def _row_scales(X, D, c, flags, r, bl, xq, dq):
    """BL of sample ``r`` into ``bl[r]`` and its scales ``(bl, A, B)`` (:func:`_bl_a_b`);
    a sample without pulses (BL 0) gets zero ``xq[r]``, ``dq[r]``."""
    n, a, b = _bl_a_b(X[r], D[r], c, flags)
    bl[r] = n
    if n == 0:
        zero = c[_C_ZERO]
        for j in range(X.shape[1]):
            xq[r, j] = zero
        for i in range(D.shape[1]):
            dq[r, i] = zero
    return n, a, b


@njit(cache=True, inline="always")
def _stochastic_row(X, D, c, key, r, a, b, sto, xq, dq, states):
    """Probabilities ``xq[r]``, ``dq[r]`` of stochastic pulses (signed) of a sample with
    pulses, scales ``a``, ``b`` (see :func:`_prepare`)."""
    res = c[_C_RES]
    if res <= 0:
        # no discretisation (aihwkit's default res = 0): loops without the draw's branch,
        # which vectorise (the same values as _disc returns); no stream either
        for j in range(X.shape[1]):
            v = X[r, j]
            p = abs(v) * b
            xq[r, j] = p if v >= 0 else -p
        for i in range(D.shape[1]):
            v = D[r, i]
            p = abs(v) * a
            dq[r, i] = p if v >= 0 else -p
        return
    init_stream(states, r, stream_key(key, r, 1))
    for j in range(X.shape[1]):
        p = _disc(abs(X[r, j]) * b, res, sto, states, r)
        xq[r, j] = p if X[r, j] >= 0 else -p
    for i in range(D.shape[1]):
        p = _disc(abs(D[r, i]) * a, res, sto, states, r)
        dq[r, i] = p if D[r, i] >= 0 else -p


@njit(cache=True, inline="always")
def _counts_row(X, D, c, key, r, n, a, b, kind, sto, xq, dq, states):
    """Quantised ``xq[r]``, ``dq[r]`` of the deterministic pulse kinds for a sample with
    pulses (BL ``n``, scales ``a``, ``b``; see :func:`_prepare`)."""
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    fbl = cast_like(n, zero)
    init_stream(states, r, stream_key(key, r, 1))
    if kind == KIND_DETERMINISTIC_IMPLICIT:
        x_res = c[_C_X_RES]
        d_res = c[_C_D_RES]
        for j in range(X.shape[1]):
            q = min(max(_disc(abs(X[r, j]) * b, x_res, sto, states, r), zero), one)
            xq[r, j] = q if X[r, j] >= 0 else -q
        for i in range(D.shape[1]):
            q = min(max(_disc(abs(D[r, i]) * a, d_res, sto, states, r), zero), one)
            dq[r, i] = (q if D[r, i] >= 0 else -q) * fbl
    else:
        res = c[_C_RES]
        for j in range(X.shape[1]):
            q = min(max(np.rint(fbl * _disc(abs(X[r, j]) * b, res, sto, states, r)),
                        zero), fbl)
            xq[r, j] = q if X[r, j] >= 0 else -q
        for i in range(D.shape[1]):
            q = min(max(np.rint(fbl * _disc(abs(D[r, i]) * a, res, sto, states, r)),
                        zero), fbl)
            dq[r, i] = (q if D[r, i] >= 0 else -q) / fbl


def _prepare(X, D, c, flags, key, bl, xq, dq, states):
    """Per-sample BL and the per-sample x/d quantities of the chosen pulse kind, into
    ``bl[m]`` and ``xq[m, nx]``, ``dq[m, nd]`` (signed, zeroed here): probabilities
    (stochastic), quantised values with ``dq`` pre-multiplied by BL (deterministic implicit),
    or counts with ``dq`` divided by BL (mean count). ``states`` is (m, 2) scratch.
    """
    kind = flags[_F_KIND]
    sto = flags[_F_STO] != 0
    for r in prange(X.shape[0]):
        n, a, b = _row_scales(X, D, c, flags, r, bl, xq, dq)
        if n > 0:
            if kind == KIND_STOCHASTIC:
                _stochastic_row(X, D, c, key, r, a, b, sto, xq, dq, states)
            else:
                _counts_row(X, D, c, key, r, n, a, b, kind, sto, xq, dq, states)


@njit(cache=True, inline="always")
def _dense(q):
    """Whether no element of the 1-d ``q`` is 0 (a count, which vectorises)."""
    nonzero = 0
    for j in range(q.shape[0]):
        nonzero += q[j] != 0
    return nonzero == q.shape[0]


@njit(cache=True, inline="always")
def _train_word(p, nbits, z):
    """The one-word bit train of probability ``p`` and length ``nbits`` <= 64 (none for
    ``nbits <= 0``) from the stream whose next hashed word is ``z``, and the stream's next
    ``z``; the stream advances only for ``p != 0``. A one-bit train is drawn without a
    branch (a coin flip for the branch predictor on a conv layer's sparse inputs)."""
    word = np.uint64(0)
    if nbits == 1:
        word = np.uint64(p > uniform_of(z))
        z += np.uint64(p != 0) * GAMMA
    elif p != 0:
        for k in range(nbits):
            if p > uniform_of(z):
                word |= np.uint64(1) << np.uint64(k)
            z += GAMMA
    return word, z


def _stochastic_lines(X, D, c, flags, key, bl, xq, dq, dbits, cols, ncols, xwords, xneg,
                      states):
    """Everything of a stochastic update before its pulses, per sample in one pass, for trains
    of one word: :func:`_prepare`, the bit trains of :func:`_bit_trains` into ``dbits``
    (m, nd) and, for x, straight into the compact lists of :func:`_active_columns`
    (``cols``, ``ncols``, ``xwords``, ``xneg``): each column is written at the list's end,
    which advances when its train fires (no branch on a coin flip, no second pass over the
    sample and no (m, nx) array of x trains).

    Returns the number of samples whose trains are longer than one word (their lists are
    left empty; the caller then makes all trains with :func:`_bit_trains`, from the ``xq``,
    ``dq``, ``bl`` computed here for every sample)."""
    m = X.shape[0]
    nx = X.shape[1]
    nd = D.shape[1]
    sto = flags[_F_STO] != 0
    long_trains = 0
    for r in prange(m):
        nbits, a, b = _row_scales(X, D, c, flags, r, bl, xq, dq)
        if nbits > 0:
            _stochastic_row(X, D, c, key, r, a, b, sto, xq, dq, states)
        n = 0
        if nbits > 64:
            long_trains += 1
        else:
            z = stream_key(key, r, 2)
            if nbits == 1 and _dense(xq[r]):
                # the trains first, in a loop that vectorises (see _bit_trains), then the
                # list in place (entry n <= j is written after train j is read)
                for j in range(nx):
                    xwords[r, j] = np.uint64(abs(xq[r, j]) > uniform_of(z + np.uint64(j) * GAMMA))
                for j in range(nx):
                    word = xwords[r, j]
                    cols[r, n] = j
                    xneg[r, n] = xq[r, j] < 0
                    xwords[r, n] = word
                    n += np.int64(word != 0)
            else:
                for j in range(nx):
                    q = xq[r, j]
                    word, z = _train_word(abs(q), nbits, z)
                    cols[r, n] = j
                    xneg[r, n] = q < 0
                    xwords[r, n] = word
                    n += np.int64(word != 0)
            z = stream_key(key, r, 3)
            if nbits == 1 and _dense(dq[r]):
                for i in range(nd):
                    dbits[r, i] = np.uint64(abs(dq[r, i]) > uniform_of(z + np.uint64(i) * GAMMA))
            else:
                for i in range(nd):
                    word, z = _train_word(abs(dq[r, i]), nbits, z)
                    dbits[r, i] = word
        ncols[r] = n
    return long_trains


def _bit_trains(q, bl, key, which, out):
    """Stochastic bit trains into ``out`` (m, n, words): bit k of ``out[r, j]`` fires with
    probability ``|q[r, j]|``; word by word as :func:`_train_word` draws one (the stream's
    counter in a register, each word built in one). One train per x column (or d row) and
    sample, shared by all elements of that line. The update takes it for trains longer than
    one word; :func:`_stochastic_lines` makes the one-word trains."""
    m, n = q.shape
    nw = out.shape[2]
    for r in prange(m):
        z = stream_key(key, r, which)
        nbits = bl[r]
        for j in range(n):
            p = abs(q[r, j])
            for w in range(nw):
                out[r, j, w], z = _train_word(p, min(nbits - w * 64, 64), z)


def _active_columns(xq, xbits, kind, cols, ncols, xwords, xneg):
    """Per sample, the columns that can receive pulses, as compact lists (so that the cost of
    an update grows with the lines that actually fire, as aihwkit's sparse scheme): their
    indices ``cols[r, :ncols[r]]`` (unsigned, so that indexing with them needs no wraparound),
    signs ``xneg`` and, for stochastic pulses, bit trains ``xwords`` (copied next to each
    other, so that the pulse loop reads one sample's trains in order)."""
    m, nx = xq.shape
    for r in prange(m):
        n = 0
        for j in range(nx):
            if xq[r, j] == 0:
                continue
            if kind == KIND_STOCHASTIC:
                if not _fired(xbits, r, j):
                    continue
                _copy_train(xbits, r, j, xwords, n)
            cols[r, n] = j
            xneg[r, n] = xq[r, j] < 0
            n += 1
        ncols[r] = n


def _apply_stochastic(target, P, xq, dq, dbits, cols, ncols, xwords, xneg, negative_lr, key,
                      params, states):
    """Apply the coincidences of shared bit trains; row ``i`` owns a stream and sees the samples
    in order, columns in order within a sample, so the result does not depend on how rows are
    grouped or threaded.

    One parallel region per update, over blocks of rows: with one row per block each row
    streams the whole batch's column lists from memory, and a 256x256 batch-1000 update took
    1.2-1.5x as long as with blocks of 32 (same instructions). ``states``
    (out, 2) uint64 is scratch for the row streams: the kernel allocates nothing, so that its
    serial twin can run without reference counting (see ``_twins``)."""
    m = dq.shape[0]
    nd = dq.shape[1]
    for b in prange((nd + _ROW_BLOCK - 1) // _ROW_BLOCK):
        i0 = b * _ROW_BLOCK
        i1 = min(nd, i0 + _ROW_BLOCK)
        for i in range(i0, i1):
            init_stream(states, i, stream_key(key, i, 7))
        # samples outside, rows of a block inside: a sample's column lists are read from
        # memory once per block
        for r in range(m):
            for i in range(i0, i1):
                dm = _first_word(dbits, r, i)
                if dm == 0 and not _fired_after_first(dbits, r, i):
                    continue
                d_up = (dq[r, i] < 0) != negative_lr
                for jj in range(ncols[r]):
                    if _ONE_BIT:
                        # every train is one bit: a listed column meets a firing row once
                        n = 1
                    else:
                        n = _popcount(dm & _first_word(xwords, r, jj))
                        n += _coincidences_after_first(dbits, xwords, r, i, jj)
                        if n == 0:
                            continue
                    # zero-extended: the compiler knows j >= 0 and drops the wraparound code
                    j = np.int64(cols[r, jj])
                    up = d_up != xneg[r, jj]
                    for _ in range(n):
                        # stored after every pulse so that each pulse rounds to the tile dtype
                        target[i, j] = device_step(params, P, i, j, target[i, j], up, states)


def _apply_counts(target, P, xq, dq, dbits, cols, ncols, xwords, xneg, negative_lr, key, params,
                  states):
    """Apply deterministic counts ``rint(dq * xq)`` (DETERMINISTIC_IMPLICIT, MEAN_COUNT),
    row by row; the arguments are those of :func:`_apply_stochastic` (the trains and signs
    are unused)."""
    m = xq.shape[0]
    nd = dq.shape[1]
    for i in prange(nd):
        init_stream(states, i, stream_key(key, i, 7))
        for r in range(m):
            if dq[r, i] == 0:
                continue
            for jj in range(ncols[r]):
                j = np.int64(cols[r, jj])
                c = np.rint(dq[r, i] * xq[r, j])
                up = (c < 0) != negative_lr
                for _ in range(int(abs(c))):
                    target[i, j] = device_step(params, P, i, j, target[i, j], up, states)


def _pulse_totals(xq, dq, dbits, cols, ncols, xwords, kind, totals):
    """Add every element's pulses of this batch to ``totals`` (counters, write noise)."""
    m = xq.shape[0]
    nd = dq.shape[1]
    for i in prange(nd):
        for r in range(m):
            if dq[r, i] == 0:
                continue
            if kind == KIND_STOCHASTIC:
                # a d train that did not fire meets no column (as the pulse kernels skip it):
                # small errors leave most trains empty
                dm = _first_word(dbits, r, i)
                if dm == 0 and not _fired_after_first(dbits, r, i):
                    continue
                for jj in range(ncols[r]):
                    n = _popcount(dm & _first_word(xwords, r, jj))
                    n += _coincidences_after_first(dbits, xwords, r, i, jj)
                    totals[i, np.int64(cols[r, jj])] += n
            else:
                for jj in range(ncols[r]):
                    j = np.int64(cols[r, jj])
                    totals[i, j] += int(abs(np.rint(dq[r, i] * xq[r, j])))


def _redraw_touched(W, Wp, totals, sigma, key, states):
    """Apparent weight of every pulsed element: persistent weight plus fresh write noise.

    Pulses act on ``Wp`` only, so one draw after the batch has the distribution of aihwkit's
    redraw after every pulse (only the last draw survives). ``states``: (out, 2) scratch."""
    for i in prange(W.shape[0]):
        init_stream(states, i, stream_key(key, i, 9))
        for j in range(W.shape[1]):
            if totals[i, j] > 0:
                W[i, j] = Wp[i, j] + sigma * normal(states, i)


# the pulse kernel and the prepare kernel a composite calls, and whether the pulses are
# stochastic; each composite binds its own (_composite)
_APPLY = _PREPARE = None
_STOCHASTIC = True


@njit(cache=True, inline="always")
def _scratch(X, D):
    """The per-sample arrays of an update of ``X``, ``D`` (bit lengths, x/d quantities, stream
    states, compact column lists), for the kernels that allocate their own."""
    m, nx = X.shape
    nd = D.shape[1]
    return (np.empty(m, np.int64), np.empty((m, nx), X.dtype), np.empty((m, nd), X.dtype),
            np.empty((max(m, nd), 2), np.uint64), np.empty((m, nx), np.uint32),
            np.empty(m, np.int64), np.empty((m, nx), np.bool_))


def _serial_update(W, P, X, D, c, flags, key, noise_key, params):
    """A whole small update in one call: the serial kernels in the order of ``pulsed_update``.

    For small tiles the cost of an update is its Python dispatches (one per kernel, each
    boxing its results); this composite makes it one. ``_APPLY`` and ``_PREPARE`` are bound
    per device origin and pulse kind by :func:`_composite` (``_STOCHASTIC``: the kind, which
    decides the stages before the pulses). Returns False, having changed nothing, for bit
    trains longer than one word (the staged path runs those: compiling this composite for
    them too would double its cold start). Pulse counters and write noise also take the
    staged path, so that their kernels compile only when a tile uses them (about 0.6 s of
    this composite's cold compilation).
    """
    bl, xq, dq, states, cols, ncols, xneg = _scratch(X, D)
    if _STOCHASTIC:
        xwords = np.empty(xq.shape, np.uint64)
        dbits = np.empty(dq.shape, np.uint64)
        if _PREPARE(X, D, c, flags, key, bl, xq, dq, dbits, cols, ncols, xwords, xneg,
                    states) > 0:
            return False
    else:
        _PREPARE(X, D, c, flags, key, bl, xq, dq, states)
        xwords = dbits = np.zeros((1, 1), np.uint64)
        _active_columns_s(xq, np.zeros((1, 1, 1), np.uint64), flags[_F_KIND], cols, ncols,
                          xwords, xneg)
    _APPLY(W, P, xq, dq, dbits, cols, ncols, xwords, xneg, flags[_F_NEGATIVE_LR] != 0,
           noise_key, params, states)
    return True


def _composite(apply, prepare, stochastic, name, cache):
    """``_serial_update`` calling ``apply`` and ``prepare`` (for stochastic pulses the serial
    :func:`_stochastic_lines`), under a name (and cache files) of its own."""
    return njit(cache=cache)(_renamed(_serial_update, name,
                                      {**globals(), "_APPLY": apply, "_PREPARE": prepare,
                                       "_STOCHASTIC": stochastic}))


def _twins(fn, cache=True):
    """``(parallel, serial)`` dispatchers of one allocation-free kernel body (``prange`` is
    ``range`` when serial). Small updates run serially: a parallel region costs more than
    their work.

    The serial twin is compiled without numba's reference counting: numba increfs and
    decrefs the array arguments of every inlined helper (a device step, a random draw), two
    atomic operations per call that made the serial pulse loop 3-4x slower than the parallel
    one (whose outlined body has no reference counts)."""
    return (njit(cache=cache, parallel=True)(fn),
            njit(cache=cache, _nrt=False)(_renamed(fn, fn.__qualname__ + "_serial")))


_PARALLEL_WORK = 1 << 18  # batch x out x in above which the parallel kernels pay off
# batch x max(out, in) above which the per-sample stages (prepare, bit trains, active
# columns) run in parallel too. Each parallel region wakes the sleeping workers (rpusim sets
# OMP_WAIT_POLICY=PASSIVE), 15-25 us on a 2-core VM: the serial twins were faster for a
# 256x256 batch-100 update (prepare 60 vs 71-88 us, each bit-train call 50 vs 67-76, active
# columns 34 vs 53-55), even at 512x512 batch 100, slower at 64x64 batch 1000.
_STAGE_PARALLEL_WORK = 1 << 15
_prepare_k = _twins(_prepare)
_lines_k = _twins(_stochastic_lines)
_bit_trains_k = _twins(_bit_trains)
_active_columns_k = _twins(_active_columns)
_pulse_totals_k = _twins(_pulse_totals)
_redraw_touched_k = _twins(_redraw_touched)
_prepare_s, _lines_s, _bit_trains_s, _active_columns_s, _pulse_totals_s, _redraw_touched_s = (
    k[1] for k in (_prepare_k, _lines_k, _bit_trains_k, _active_columns_k, _pulse_totals_k,
                   _redraw_touched_k))
# Devices outside rpusim (custom models, maybe defined in a user's script) must not enter the
# on-disk cache: its index would reference their classes, and a later process that cannot
# import them would fail to read the index. They get uncached kernels, compiled per process.
# The fourth kernel: the parallel pulse kernel for batches whose trains are all one bit long
# (the usual case under aihwkit's default update management), None for counts.
_apply_k = {}  # [builtin, kind is stochastic] -> (parallel, serial, serial whole update,
#                                                  parallel for one-bit trains)
for _builtin in (True, False):
    for _stochastic in (True, False):
        _body = _apply_stochastic if _stochastic else _apply_counts
        _par, _ser = _twins(_body, cache=_builtin)
        _name = f"_serial_update_{'builtin' if _builtin else 'custom'}_{_body.__name__[7:]}"
        _one_bit = (njit(cache=_builtin, parallel=True)(_renamed(
            _body, "_apply_one_bit", {**globals(), "_ONE_BIT": True})) if _stochastic else None)
        _apply_k[(_builtin, _stochastic)] = (
            _par, _ser, _composite(_ser, _lines_s if _stochastic else _prepare_s, _stochastic,
                                   _name, _builtin), _one_bit)


_apply_builtin_stochastic_s = _apply_k[(True, True)][1]


@njit(cache=True)
def serial_stochastic_update(W, P, Wp, X, D, c, flags, key, noise, params, wn_sigma):
    """The staged update of rpusim's own devices under stochastic pulses with the serial
    kernels and no pulse counters: what :func:`_staged_update` runs for a small batch, here
    callable from other kernels (the chopped transfers' loop takes it for write noise,
    ``wn_sigma > 0`` on the persistent weights ``Wp``, and for trains longer than one word,
    both of which the small-update composite leaves)."""
    m, nx = X.shape
    nd = D.shape[1]
    bl, xq, dq, states, cols, ncols, xneg = _scratch(X, D)
    xwords = np.empty((m, nx), np.uint64)
    dbits = np.empty((m, nd), np.uint64)
    negative = flags[_F_NEGATIVE_LR] != 0
    target = Wp if wn_sigma > 0 else W
    if _lines_s(X, D, c, flags, key, bl, xq, dq, dbits, cols, ncols, xwords, xneg,
                states) == 0:
        _apply_builtin_stochastic_s(target, P, xq, dq, dbits, cols, ncols, xwords, xneg,
                                    negative, noise, params, states)
        if wn_sigma > 0:
            _write_noise_s(W, Wp, xq, dq, dbits, cols, ncols, xwords, wn_sigma, noise, states)
        return
    nw = (bl.max() + 63) // 64
    xbits = np.empty((m, nx, nw), np.uint64)
    dlong = np.empty((m, nd, nw), np.uint64)
    _bit_trains_s(xq, bl, key, 2, xbits)
    _bit_trains_s(dq, bl, key, 3, dlong)
    xlong = np.empty((m, nx, nw), np.uint64)
    _active_columns_s(xq, xbits, KIND_STOCHASTIC, cols, ncols, xlong, xneg)
    _apply_builtin_stochastic_s(target, P, xq, dq, dlong, cols, ncols, xlong, xneg, negative,
                                noise, params, states)
    if wn_sigma > 0:
        _write_noise_s(W, Wp, xq, dq, dlong, cols, ncols, xlong, wn_sigma, noise, states)


@njit(cache=True)
def stochastic_update_into(W, P, X, D, c, flags, key, params, scratch):
    """The small-update composite of rpusim's own devices under stochastic pulses (what
    ``pulsed_update`` runs for a small batch, with ``key`` for the noise too) on the scratch
    arrays ``scratch`` of :func:`update_scratch` for ``X``'s and ``D``'s shapes, which it
    does not allocate: for kernels that update sample by sample (the chopped transfers' loop),
    where the composite's nine allocations were a good part of a small tile's sample. Returns
    False, having changed nothing, for bit trains longer than one word."""
    bl, xq, dq, states, cols, ncols, xneg, xwords, dbits = scratch
    if _lines_s(X, D, c, flags, key, bl, xq, dq, dbits, cols, ncols, xwords, xneg,
                states) > 0:
        return False
    _apply_builtin_stochastic_s(W, P, xq, dq, dbits, cols, ncols, xwords, xneg,
                                flags[_F_NEGATIVE_LR] != 0, key, params, states)
    return True


@njit(cache=True, inline="always")
def update_scratch(X, D):
    """The scratch arrays of :func:`stochastic_update_into` for batches shaped as ``X``, ``D``
    (the composite's own, as it allocates them)."""
    bl, xq, dq, states, cols, ncols, xneg = _scratch(X, D)
    return (bl, xq, dq, states, cols, ncols, xneg, np.empty(xq.shape, np.uint64),
            np.empty(dq.shape, np.uint64))


@njit(cache=True, inline="always")
def _write_noise_s(W, Wp, xq, dq, dbits, cols, ncols, xwords, wn_sigma, noise, states):
    """The apparent weights of every element the pulses touched, redrawn around ``Wp``."""
    totals = np.zeros(W.shape, np.int64)
    _pulse_totals_s(xq, dq, dbits, cols, ncols, xwords, KIND_STOCHASTIC, totals)
    _redraw_touched_s(W, Wp, totals, W.dtype.type(wn_sigma), noise, states)


# -- whole-matrix operations of the device models -------------------------------------------------
@njit(cache=True, inline="always")
def clip_as_numpy(v, lo, hi):
    """``np.maximum(np.minimum(v, hi), lo)`` of one value: a NaN value stays NaN, a NaN
    bound is taken, equal values give the bound."""
    v = v if v < hi or v != v else hi
    return v if v > lo or v != v else lo


@njit(cache=True)
def decay_and_clip(w, scales, bias, w_max, w_min, alpha):
    """The device models' decay in one pass: ``w = (w - bias) (1 + alpha (scales - 1)) +
    bias``, then ``minimum(w, w_max)`` and ``maximum(w, w_min)`` as NumPy's (a NaN weight
    stays NaN; equal values give the bound), each element in ``w``'s dtype (``alpha`` in it
    too), the operations of the NumPy expressions in their order: the same bits, without
    their five temporary arrays."""
    one = cast_like(1.0, alpha)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            s = one + alpha * (scales[i, j] - one)
            b = bias[i, j]
            w[i, j] = clip_as_numpy((w[i, j] - b) * s + b, w_min[i, j], w_max[i, j])


_SMALL: dict = {}


def _small_call(params, W, P, upd, lr_pc, granularity, Wp=None, wn_sigma=0.0):
    """The small-update composite's entry point and arguments ``(entry, c, flags)`` recorded by
    an earlier call of :func:`pulsed_update` on the same state, or None.

    numba types every argument of a call in Python (a NamedTuple alone takes about 1.5 us,
    a tenth of a small update), and deriving the constants and picking the kernel costs as
    much again. An entry point is only valid for the argument types it was compiled for, so
    a record is reused only for the same ``params`` and state arrays ``W``, ``P`` (the model's
    own objects, checked by identity), the same update parameters (``upd`` unchanged since:
    its ``_derived`` plan is dropped when a field changes) and granularity; the caller checks
    that the inputs are C-contiguous, aligned and writeable in ``W``'s dtype like those of the
    recorded call (a read-only or strided input is another numba type). Another learning rate
    gets its own ``c`` and flags, and the record follows it: compounds that scale the rate per
    sample (chopped and dynamic transfers with ``auto_scale``) call with a new one every
    sample, and typing the call again cost them 100 us a sample.

    With write noise (``wn_sigma > 0``, persistent weights ``Wp``) the record is that of
    :func:`serial_stochastic_update`, kept apart, for the same ``Wp`` and ``wn_sigma``; the
    call then gets ``(entry, c, flags, wn_sigma)``.
    """
    noisy = wn_sigma > 0
    hit = _SMALL.get((id(params), noisy))
    if (hit is None or hit[0] is not params or hit[1] is not W or hit[2] is not P
            or hit[3] is not upd or hit[4] is not upd._derived or hit[6] != granularity
            or (noisy and (hit[8] is not Wp or hit[7][3] != wn_sigma))):
        return None
    if hit[5] == lr_pc:
        return hit[7]
    entry, c = hit[7][:2]
    # a new array: the recorded one may be shared through _CONSTANTS; the assignment rounds
    # to the tile dtype as _constants' np.array does
    c = c.copy()
    c[_C_LR] = abs(lr_pc)
    plan = upd._derived
    call = (entry, c, plan[2] if lr_pc < 0 else plan[1]) + hit[7][3:]
    _SMALL[(id(params), noisy)] = hit[:5] + (lr_pc,) + hit[6:7] + (call,) + hit[8:]
    return call


def _record_small(kernel, args, upd, lr_pc, granularity) -> None:
    """Keep what :func:`_small_call` returns for the state of ``kernel(*args)`` (just run):
    the small-update composite's arguments, or :func:`serial_stochastic_update`'s."""
    noisy = kernel is serial_stochastic_update
    if noisy:
        W, P, Wp, X, D, c, flags = args[:7]
        params, wn_sigma = args[-2:]
        arrays = (W, P, Wp, X, D)
    else:
        W, P, X, D, c, flags = args[:6]
        params = args[-1]
        arrays = (W, P, X, D)
    entry = entry_point(kernel, args)
    if (entry is not None and all(a.flags.carray for a in arrays)
            and X.dtype is W.dtype and D.dtype is W.dtype):
        if len(_SMALL) > 1024:  # tiles come and go; keep the table small
            _SMALL.clear()
        record = (params, W, P, upd, upd._derived, lr_pc, granularity)
        _SMALL[(id(params), noisy)] = (record + ((entry, c, flags, wn_sigma), Wp) if noisy
                                       else record + ((entry, c, flags),))


_BUILTIN: dict = {}


def _is_builtin(params) -> bool:
    kind = type(params)
    builtin = _BUILTIN.get(kind)
    if builtin is None:
        builtin = _BUILTIN[kind] = kind.__module__.startswith("rpusim.")
    return builtin


def _plan(upd):
    """What an update derives from its ``UpdateParameters``: pulse kind, packed flags (for
    either sign of the learning rate) and the float parameters of ``c``. Kept on ``upd``
    until a field of it changes (``UpdateParameters.__setattr__`` drops it)."""
    plan = getattr(upd, "_derived", None)
    if plan is None:
        kind = _PULSE_KINDS[upd.pulse_type]
        flags = [upd.desired_bl, upd.fixed_bl, upd.update_bl_management,
                 upd.update_management, kind, upd.sto_round]
        plan = (kind, np.array(flags + [False], np.int64), np.array(flags + [True], np.int64),
                (upd.um_grad_scale, upd.desired_bl, effective_resolution(upd.res),
                 effective_resolution(upd.x_res_implicit),
                 effective_resolution(upd.d_res_implicit)))
        object.__setattr__(upd, "_derived", plan)
    return plan


_CONSTANTS: dict = {}


def _constants(floats, lr_pc, granularity, dtype) -> np.ndarray:
    """The engine's ``c`` array (``_C_*``) in the tile dtype. Kept per value (the kernels only
    read it): training calls again and again with the same learning rate, and building the
    array was a twentieth of a small update."""
    k = (floats, lr_pc, granularity, dtype)
    c = _CONSTANTS.get(k)
    if c is None:
        if len(_CONSTANTS) > 256:
            _CONSTANTS.clear()
        um_scale, desired_bl, res, x_res, d_res = floats
        c = _CONSTANTS[k] = np.array([abs(lr_pc), granularity, um_scale, 0, 1, desired_bl,
                                      res, x_res, d_res], dtype=dtype)
    return c


_PULSE_KINDS = {PulseType.STOCHASTIC: KIND_STOCHASTIC,
                PulseType.STOCHASTIC_COMPRESSED: KIND_STOCHASTIC,
                PulseType.DETERMINISTIC_IMPLICIT: KIND_DETERMINISTIC_IMPLICIT,
                PulseType.MEAN_COUNT: KIND_MEAN_COUNT}


def pulsed_update(W, P, Wp, X, D, lr_pc, granularity, upd, key, params, wn_sigma, counters,
                  noise_key=None):
    """Run a pulsed update of a whole batch, sample by sample, in place on ``W`` (and ``Wp``).

    Parameters
    ----------
    W : ndarray (out, in)
        Apparent weights (the stored weights without write noise).
    P : ndarray (n_slots, out, in)
        Per-element device state (hidden parameters), read by the device step function.
    Wp : ndarray (out, in)
        Persistent weights; used only when ``wn_sigma > 0``.
    X, D : ndarray (m, in), (m, out)
        Inputs and errors, in the tile dtype, C-contiguous.
    lr_pc : float
        Pulse-count learning rate; its sign flips every pulse.
    granularity : float
        Weight granularity ``g`` of the device.
    upd : UpdateParameters
        Pulse type (one of the pulsed ones), bit lengths, management, resolutions.
    key : np.uint64 or int
        Call key from the tile's generator; it fixes the bit trains (coincidences). A Python
        int (``TileRNG.raw_key``) goes to a compiled entry point as it is, to the dispatchers
        as ``np.uint64``.
    params : NamedTuple
        The device's registered parameter tuple.
    wn_sigma : float
        Write-noise std in weight units (0: off).
    counters : ndarray (out, in) int64 or None
        Pulse counters to increment.
    noise_key : np.uint64, optional
        Key of the cycle-to-cycle and write noise (default ``key``). Devices of a compound that
        share coincidences (one ``key``) pass their own ``noise_key`` so that their noise is
        independent, as in aihwkit.
    """
    noise = key if noise_key is None else noise_key
    m, nx = X.shape
    nd = D.shape[1]
    small = m * nx * nd < _PARALLEL_WORK and counters is None and wn_sigma <= 0
    plain = (X.flags.carray and D.flags.carray and X.dtype is W.dtype
             and D.dtype is W.dtype)
    # small work with write noise in C-ordered inputs: what _staged_update gives
    # serial_stochastic_update (for stochastic pulses), run through a recorded entry point
    small_noisy = (plain and counters is None and wn_sigma > 0 and m * nx * nd < _PARALLEL_WORK
                   and m * max(nx, nd) < _STAGE_PARALLEL_WORK)
    if small and plain:
        known = _small_call(params, W, P, upd, lr_pc, granularity)
        # False: trains longer than one word, left to the staged path (nothing changed)
        if known is not None and known[0](W, P, X, D, known[1], known[2], key, noise, params):
            return
    elif small_noisy:
        known = _small_call(params, W, P, upd, lr_pc, granularity, Wp, wn_sigma)
        if known is not None:
            known[0](W, P, Wp, X, D, known[1], known[2], key, noise, params, known[3])
            return
    # the dispatchers type a Python int by its value (int64 or uint64): one type for keys
    key, noise = np.uint64(key), np.uint64(noise)
    kind, flags_pos, flags_neg, floats = _plan(upd)
    c = _constants(floats, lr_pc, granularity, W.dtype)
    flags = flags_neg if lr_pc < 0 else flags_pos
    kernels = _apply_k[(_is_builtin(params), kind == KIND_STOCHASTIC)]
    if small:
        args = (W, P, X, D, c, flags, key, noise, params)
        if kernels[2](*args):
            _record_small(kernels[2], args, upd, lr_pc, granularity)
            return
    if small_noisy and kind == KIND_STOCHASTIC and kernels is _apply_k[(True, True)]:
        args = (W, P, Wp, X, D, c, flags, key, noise, params, float(wn_sigma))
        serial_stochastic_update(*args)
        _record_small(serial_stochastic_update, args, upd, lr_pc, granularity)
        return
    # small work the composite does not cover (counters, write noise, trains longer than 64
    # bits) runs the serial kernels; large work the parallel ones whatever the thread count:
    # numba's outlined parallel loop is also faster on one thread than a plain loop with
    # reference counts
    _staged_update(W, P, Wp, X, D, c, flags, kind, key, noise, params, wn_sigma, counters,
                   kernels, 1 if m * nx * nd < _PARALLEL_WORK else 0)


def _staged_update(W, P, Wp, X, D, c, flags, kind, key, noise, params, wn_sigma, counters,
                   kernels, twin):
    """``pulsed_update`` kernel by kernel (``twin`` 0: the parallel kernels, 1: the serial);
    ``kernels`` is the entry of ``_apply_k``."""
    apply = kernels[twin]
    m, nx = X.shape
    nd = D.shape[1]
    # the stages before the pulses (per sample) run serially below _STAGE_PARALLEL_WORK,
    # also when the pulses run in parallel (see there)
    stage = 1 if m * max(nx, nd) < _STAGE_PARALLEL_WORK else twin
    if (twin == 1 and stage == 1 and kind == KIND_STOCHASTIC and counters is None
            and kernels is _apply_k[(True, True)]):
        serial_stochastic_update(W, P, Wp, X, D, c, flags, key, noise, params, float(wn_sigma))
        return
    bl = np.empty(m, np.int64)
    xq = np.empty((m, nx), W.dtype)
    dq = np.empty((m, nd), W.dtype)
    states = np.empty((max(m, nd), 2), np.uint64)
    cols = np.empty((m, nx), np.uint32)
    ncols = np.empty(m, np.int64)
    xneg = np.empty((m, nx), np.bool_)
    if kind == KIND_STOCHASTIC:
        # trains of one word (the usual case): all stages in one pass per sample
        xwords = np.empty((m, nx), np.uint64)
        dbits = np.empty((m, nd), np.uint64)
        if _lines_k[stage](X, D, c, flags, key, bl, xq, dq, dbits, cols, ncols, xwords, xneg,
                           states) > 0:
            # longer trains, from what that pass prepared: (m, lines, words) arrays
            nw = (int(bl.max()) + 63) // 64
            xbits = np.empty((m, nx, nw), np.uint64)
            dbits = np.empty((m, nd, nw), np.uint64)
            _bit_trains_k[stage](xq, bl, key, 2, xbits)
            _bit_trains_k[stage](dq, bl, key, 3, dbits)
            xwords = np.empty((m, nx, nw), np.uint64)
            _active_columns_k[stage](xq, xbits, kind, cols, ncols, xwords, xneg)
        elif twin == 0 and int(bl.max()) == 1:
            apply = kernels[3]
    else:
        _prepare_k[stage](X, D, c, flags, key, bl, xq, dq, states)
        xwords = dbits = np.zeros((1, 1), np.uint64)
        _active_columns_k[stage](xq, np.zeros((1, 1, 1), np.uint64), kind, cols, ncols,
                                 xwords, xneg)
    apply(Wp if wn_sigma > 0 else W, P, xq, dq, dbits, cols, ncols, xwords, xneg,
          flags[_F_NEGATIVE_LR] != 0, noise, params, states)
    if counters is not None or wn_sigma > 0:
        totals = np.zeros(W.shape, np.int64)
        _pulse_totals_k[twin](xq, dq, dbits, cols, ncols, xwords, kind, totals)
        if counters is not None:
            counters += totals
        if wn_sigma > 0:
            _redraw_touched_k[twin](W, Wp, totals, W.dtype.type(wn_sigma), noise, states)
