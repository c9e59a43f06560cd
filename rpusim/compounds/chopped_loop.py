"""The sample loop of the chopped and dynamic transfers (Tiki-taka v3 and v4, AGAD) in one
numba call.

These compounds read one column of A and write it into C after every sample by default
(``transfer_every=1``, ``units_in_mbatch=False``): a conv layer's update of 8 images of 28x28
is 4608 samples, each a chopped SGD pulse on A, a read, a buffer step and maybe a write.
Done in Python (``ChoppedTransferModel.update``), each sample cost about 40 us of calls around
kernels of 1-2 us. This loop makes the same kernel calls, with the same arguments and random
keys, in the same order, so it gives the same bits (``tests/test_compounds.py`` checks it
against the Python loop). ``ChoppedTransferModel`` decides when it applies.

Random numbers: the Python loop takes every key and uniform from the tile's PCG64 generator as
it goes (a device update's key, the read's key, a chopper's coin). The loop gets a block of
the generator's raw 64-bit outputs drawn ahead and uses them in the same order (a NumPy
``random()`` is ``(raw >> 11) * 2**-53``); the caller puts the generator back by the ones it
did not use.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from rpusim.compounds.kernels import chopped_sum2, chopped_transfer_into, dynamic_transfer_into
from rpusim.kernels import io as kio
from rpusim.kernels.update import (_apply_k, serial_stochastic_update,
                                   stochastic_update_into, update_scratch)

__all__ = ["chopped_loop", "F_FIELDS", "I_FIELDS", "S_FIELDS"]

# the pulse composite of rpusim's own devices under stochastic pulses (pulsed_update's small
# path for them): both A's SGD and C's write take it, and the staged kernels where it leaves
# trains longer than one word (aihwkit's TTv2 presets: desired_bl 100), as pulsed_update does
_COMPOSITE = _apply_k[(True, True)][2]

# float parameters (float64, as the Python loop computes them) ...
F_FIELDS = ("lr", "lr_pc", "fast_lr_bl_g", "tau", "in_chop_prob", "out_chop_prob")
(_F_LR, _F_LR_PC, _F_FAST, _F_TAU, _F_IN_P, _F_OUT_P) = range(len(F_FIELDS))
# ... integer and boolean parameters ...
I_FIELDS = ("period", "dynamic", "auto_scale", "lr_per_sample", "scale_fast_lr",
            "in_chop_random", "chop_period", "forget", "no_buffer", "n_samples",
            "correct_accumulation", "correct_magnitudes", "transfers")
(_I_PERIOD, _I_DYNAMIC, _I_AUTO, _I_LR_SAMPLE, _I_SCALE_FAST, _I_IN_RANDOM, _I_CHOP_PERIOD,
 _I_FORGET, _I_NO_BUFFER, _I_N_SAMPLES, _I_CORRECT_ACC, _I_CORRECT_MAG,
 _I_TRANSFERS) = range(len(I_FIELDS))
# ... and the state the loop carries on (float64): in and out
S_FIELDS = ("m_x", "m_d", "last_lr_pc", "update_idx", "transfer_counter", "slice")
(_S_MX, _S_MD, _S_LAST, _S_IDX, _S_COUNTER, _S_SLICE) = range(len(S_FIELDS))

_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53: NumPy's next_double of a raw 64-bit output


@njit(cache=True, inline="always")
def _uniform(raw, pos):
    return float(raw[pos] >> np.uint64(11)) * _TO_UNIT


@njit(cache=True, inline="always")
def _update(W, P, Wp, X, D, c, flags, key, params, wn_sigma):
    """A device's pulsed update as ``pulsed_update`` runs a small one (no pulse counters)."""
    if wn_sigma > 0 or not _COMPOSITE(W, P, X, D, c, flags, key, key, params):
        serial_stochastic_update(W, P, Wp, X, D, c, flags, key, key, params, wn_sigma)


@njit(cache=True, inline="always")
def _update_one(W, P, Wp, X, D, c, flags, key, params, wn_sigma, scratch):
    """:func:`_update` of one sample on kept scratch arrays (``update_scratch`` of X, D)."""
    if wn_sigma > 0 or not stochastic_update_into(W, P, X, D, c, flags, key, params, scratch):
        serial_stochastic_update(W, P, Wp, X, D, c, flags, key, key, params, wn_sigma)


@njit(cache=True)
def chopped_loop(X, D, WA, PA, WpA, cA, flags_pos, flags_neg, params_a, WC, PC, WpC, cC,
                 flags_c, params_c, wn, rf, rflags, rnl, rnoise, rnm, rc, rwork, in_chop,
                 out_chop, switched, H, M, Pm, t_const, fp, ip, periods, state, raw, W, gammas):
    """Run ``ChoppedTransferModel.update`` (or the dynamic model's, ``ip[dynamic]``) for the
    samples ``X``, ``D`` (tile dtype, C-contiguous, columns mode, one read per transfer).

    ``WA``, ``PA``, ``WpA``, ``cA`` (its learning-rate entry set here), ``flags_pos``/
    ``flags_neg``, ``params_a``: A's pulsed update as ``pulsed_update`` builds it; ``WC``,
    ``PC``, ``WpC``, ``cC``, ``flags_c``, ``params_c``: C's write; ``wn``: the write-noise
    sigma of A and C (0: none). ``rf`` ... ``rwork``: the reader's
    ``kio.managed_mvm`` arguments. ``t_const`` (tile dtype): ``lam`` (the buffer scale),
    ``nmax``, ``keep``, ``momentum``, ``cap``, ``beta``, ``1 / g_A``, ``|lr_t|``, ``bg``.
    ``fp``, ``ip``: the parameters named by ``F_FIELDS``, ``I_FIELDS`` (``lr_pc``: the
    rate of A's pulses when it does not move per sample, already in ``cA``); ``periods``: the
    positive transfer periods of the schedule (they cut the samples into chunks); ``state``
    (float64, ``S_FIELDS``) is read and written back. The loop ends with the compound's
    reduction into ``W`` (C-contiguous): ``gammas[0] (WA times the chopper signs) + gammas[1]
    WC`` (``reduce``'s operations). Returns how many of ``raw`` it used.
    """
    if (fp.shape[0] != len(F_FIELDS) or ip.shape[0] != len(I_FIELDS)
            or state.shape[0] != len(S_FIELDS) or t_const.shape[0] != 9):
        raise ValueError("chopped_loop: a parameter array of the wrong length")
    dt = X.dtype.type
    m, nx = X.shape
    nd = D.shape[1]
    zero = dt(0)
    one = dt(1)
    lam0, nmax, keep, momentum, cap, beta, inv_ga, lr_t_abs, bg = (
        t_const[0], t_const[1], t_const[2], t_const[3], t_const[4], t_const[5], t_const[6],
        t_const[7], t_const[8])
    lr = fp[_F_LR]
    period = ip[_I_PERIOD]
    dynamic = ip[_I_DYNAMIC] != 0
    n_samples = ip[_I_N_SAMPLES]
    m_x = state[_S_MX]
    m_d = state[_S_MD]
    last = state[_S_LAST]
    idx = np.int64(state[_S_IDX])
    counter = np.int64(state[_S_COUNTER])
    c = np.int64(state[_S_SLICE])
    pos = 0
    s_x = np.empty(nx, X.dtype)
    for j in range(nx):
        s_x[j] = -one if in_chop[j] else one
    s_d = np.empty(nd, X.dtype)
    for i in range(nd):
        s_d[i] = -one if out_chop[i] else one
    transposed = m < 0
    unit = np.zeros((1, nx), X.dtype)
    v = np.empty((1, nd), X.dtype)
    write = np.empty((1, nd), X.dtype)
    chi = np.empty(nd, X.dtype)
    counts = np.empty(nd, X.dtype)
    # one sample's arrays, kept for the loop: with a transfer after every sample (the
    # default) each sample's SGD and write would otherwise allocate a dozen small arrays
    x_one = np.empty((1, nx), X.dtype)
    d_one = np.empty((1, nd), X.dtype)
    scratch = update_scratch(x_one, d_one)
    start = 0
    while start < m:
        chunk = m - start
        for e in periods:
            chunk = min(chunk, e - idx % e)
        # chopped SGD on A: per sample with auto scaling, else the chunk in one call
        per = 1 if ip[_I_AUTO] != 0 else chunk
        for r0 in range(start, start + chunk, per):
            Xs = x_one if per == 1 else np.empty((per, nx), X.dtype)
            Ds = d_one if per == 1 else np.empty((per, nd), X.dtype)
            for r in range(per):
                for j in range(nx):
                    Xs[r, j] = X[r0 + r, j] * s_x[j]
                for i in range(nd):
                    Ds[r, i] = D[r0 + r, i] * s_d[i]
            lr_pc = fp[_F_LR_PC]
            if ip[_I_AUTO] != 0:
                tau = fp[_F_TAU]
                new_x = float(np.max(np.abs(X[r0])))
                new_d = float(np.max(np.abs(D[r0])))
                if m_x <= 0:
                    m_x = new_x
                elif new_x > 0:
                    m_x = (1 - tau) * m_x + tau * new_x
                if m_d <= 0:
                    m_d = new_d
                elif new_d > 0:
                    m_d = (1 - tau) * m_d + tau * new_d
            if ip[_I_LR_SAMPLE] != 0:
                lr_pc = fp[_F_FAST]
                if m_x > 0 and m_d > 0:
                    lr_pc /= m_x * m_d
                if ip[_I_SCALE_FAST] != 0:
                    lr_pc = lr_pc * lr
                cA[0] = abs(lr_pc)
            last = lr_pc
            key = raw[pos]
            pos += 1
            flags_a = flags_neg if lr_pc < 0 else flags_pos
            if per == 1:
                _update_one(WA, PA, WpA, Xs, Ds, cA, flags_a, key, params_a, wn[0], scratch)
            else:
                _update(WA, PA, WpA, Xs, Ds, cA, flags_a, key, params_a, wn[0])
        idx += chunk
        start += chunk
        if period <= 0 or idx % period != 0 or ip[_I_TRANSFERS] == 0:
            continue
        # the transfer of slice c: read A's column through the transfer IO ...
        unit[0, c] = one
        # (a bool variable, not the constant: a literal would compile another managed_mvm)
        kio.managed_mvm(WA, transposed, unit, v, rf, rflags, rnl, rnoise, raw[pos], rnm, rc,
                        rwork)
        pos += 1
        s_in = -one if in_chop[c] else one
        for i in range(nd):
            chi[i] = -s_in if out_chop[i] else s_in
        lam = lam0
        if ip[_I_CORRECT_MAG] != 0:
            lam = lr_t_abs / dt(last) / bg if last != 0 else zero
        if dynamic:
            current = counter % n_samples + 1
            prev = switched[c]
            switched[c] = False
            if ip[_I_CORRECT_ACC] != 0:
                lam = lam / min(dt(current), inv_ga)
            dynamic_transfer_into(H, M, Pm, c, v[0], chi, lam, nmax, keep, momentum,
                                  ip[_I_FORGET] != 0, cap, beta, prev, counts)
            due = counter > n_samples
        else:
            chopped_transfer_into(H, c, v[0], chi, lam, nmax, keep, momentum,
                                  ip[_I_FORGET] != 0, ip[_I_NO_BUFFER] != 0, counts)
            due = True
        # ... write it into C when any count is not zero ...
        nonzero = False
        for i in range(nd):
            nonzero = nonzero or counts[i] != zero
            write[0, i] = -counts[i]
        if nonzero and due:
            key = raw[pos]
            pos += 1
            _update_one(WC, PC, WpC, unit, write, cC, flags_c, key, params_c, wn[1], scratch)
        unit[0, c] = zero
        # ... and flip the choppers
        if dynamic:
            switch = current == n_samples
            if ip[_I_IN_RANDOM] != 0:
                u = _uniform(raw, pos)
                pos += 1
                if u < fp[_F_IN_P]:
                    switch = True
            if switch:
                in_chop[c] = not in_chop[c]
                switched[c] = True
                s_x[c] = -s_x[c]
        elif fp[_F_IN_P] > 0:
            if ip[_I_IN_RANDOM] != 0:
                u = _uniform(raw, pos)
                pos += 1
                if u < fp[_F_IN_P]:
                    in_chop[c] = not in_chop[c]
                    s_x[c] = -s_x[c]
            elif counter % ip[_I_CHOP_PERIOD] + 1 == ip[_I_CHOP_PERIOD]:
                in_chop[c] = not in_chop[c]
                s_x[c] = -s_x[c]
        if c == nx - 1 and fp[_F_OUT_P] > 0:
            for i in range(nd):
                if _uniform(raw, pos) < fp[_F_OUT_P]:
                    out_chop[i] = not out_chop[i]
                    s_d[i] = -s_d[i]
                pos += 1
        if c == nx - 1:
            counter += 1
        c = (c + 1) % nx
    state[_S_MX] = m_x
    state[_S_MD] = m_d
    state[_S_LAST] = last
    state[_S_IDX] = idx
    state[_S_COUNTER] = counter
    state[_S_SLICE] = c
    # the compound's reduction, with the chopper signs the loop ends with
    chopped_sum2(W, gammas[0], WA, s_d, s_x, gammas[1], WC)
    return pos


def raw_needed(m: int, nx: int, nd: int, out_chop: bool) -> int:
    """An upper bound of the raw outputs :func:`chopped_loop` uses for ``m`` samples: an SGD
    key, a read key, a write key and a chopper coin per sample, and ``nd`` coins per pass over
    the slices when the output choppers flip."""
    return 4 * m + ((m // nx + 2) * nd if out_chop else 0)


def chop_period(p: float) -> int:
    """The period of the regular (not random) input chopper flips: ``max(ceil(1/p), 2)``."""
    return max(math.ceil(1 / p), 2)
