"""The update of Tiki-taka v1 (``TransferCompound`` of two devices) in one numba call.

A v1 update is a few kernel calls: SGD pulses on A for each run of samples between two
transfer events, then per event one column of A read through the transfer IO and written
into C, and at the end the reduction ``W = gamma_0 A + gamma_1 C``. Each call is a microsecond
or a few, but in Python (``TransferModel.update``) the calls around them cost 20-40 us an
update: a tenth of a small network's training step. This loop makes the same kernel calls
with the same arguments and keys, in the same order, so it gives the same bits
(``tests/test_compounds.py`` compares it with the Python loop); ``TransferModel`` decides
when it applies.

Keys: the Python loop draws one raw 64-bit key from the tile's generator per SGD call, per
read and per write. Their number follows from the schedule alone
(:func:`keys_needed`), so the caller draws exactly that many first and hands them over.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from rpusim.compounds.chopped_loop import _update
from rpusim.compounds.kernels import weighted_sum2
from rpusim.kernels import io as kio

__all__ = ["transfer_loop", "keys_needed"]


@njit(cache=True)
def transfer_loop(X, D, WA, PA, WpA, cA, flags_a, params_a, WC, PC, WpC, cC, flags_c,
                  params_c, wn, rf, rflags, rnl, rnoise, rnm, rc, rwork, periods, period,
                  state, keys, W, gammas):
    """Run ``TransferModel.update`` for the samples ``X``, ``D`` (tile dtype, C-contiguous;
    columns mode, one read per transfer).

    ``WA``, ``PA``, ``WpA``, ``cA``, ``flags_a``, ``params_a``: A's pulsed SGD update as
    ``pulsed_update`` builds it; ``WC`` ... ``params_c``: C's write (the transfer learning rate
    in ``cC``); ``wn``: the write-noise sigma of A and C (0: none). ``rf`` ... ``rwork``: the
    reader's ``kio.managed_mvm`` arguments. ``periods``: the positive transfer periods of the
    schedule (they cut the samples into runs); ``period``: the period of the transfers out of
    A (0: none). ``state`` (int64): the update index and the next slice, read and written back.
    The loop ends with the reduction into ``W`` (C-contiguous): ``gammas[0] WA + gammas[1]
    WC``. Returns how many of ``keys`` it used.
    """
    dt = X.dtype.type
    m, nx = X.shape
    nd = D.shape[1]
    idx = state[0]
    c = state[1]
    pos = 0
    # (a bool variable, not the constant: a literal would compile another managed_mvm)
    transposed = m < 0
    unit = np.zeros((1, nx), X.dtype)
    v = np.empty((1, nd), X.dtype)
    start = 0
    while start < m:
        chunk = m - start
        for e in periods:
            chunk = min(chunk, e - idx % e)
        if chunk == m:
            Xs, Ds = X, D
        else:
            # the Python loop's slices are C-contiguous arrays: so are these copies
            Xs = np.empty((chunk, nx), X.dtype)
            Ds = np.empty((chunk, nd), X.dtype)
            Xs[:, :] = X[start:start + chunk]
            Ds[:, :] = D[start:start + chunk]
        _update(WA, PA, WpA, Xs, Ds, cA, flags_a, keys[pos], params_a, wn[0])
        pos += 1
        idx += chunk
        start += chunk
        if period <= 0 or idx % period != 0:
            continue
        # read column c of A through the transfer IO ...
        unit[0, c] = dt(1)
        kio.managed_mvm(WA, transposed, unit, v, rf, rflags, rnl, rnoise, keys[pos], rnm, rc,
                        rwork)
        pos += 1
        # ... and write it into C: x = e_c, d = -read
        for i in range(nd):
            v[0, i] = -v[0, i]
        _update(WC, PC, WpC, unit, v, cC, flags_c, keys[pos], params_c, wn[1])
        pos += 1
        unit[0, c] = dt(0)
        c = (c + 1) % nx
    state[0] = idx
    state[1] = c
    weighted_sum2(W, gammas[0], WA, gammas[1], WC)
    return pos


def keys_needed(idx: int, m: int, periods: list[int], period: int) -> int:
    """The keys :func:`transfer_loop` uses for ``m`` samples from update index ``idx``: one
    per run of samples (the runs end at the multiples of the ``periods``, at most two of
    them) and two per transfer (every multiple of ``period`` that a run ends at)."""
    if m <= 0:
        return 0
    end = idx + m
    inner = 0  # run ends before the last sample: multiples in (idx, end - 1]
    for e in periods:
        inner += (end - 1) // e - idx // e
    if len(periods) == 2:
        both = math.lcm(periods[0], periods[1])
        inner -= (end - 1) // both - idx // both
    elif len(periods) > 2:
        raise ValueError("keys_needed: at most two transfer periods")
    transfers = end // period - idx // period if period > 0 else 0
    return 1 + inner + 2 * transfers
