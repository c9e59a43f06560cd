"""The update of a Tiki-taka v1 compound (``TransferCompound``) in one numba call.

Its update is a loop over chunks of samples: SGD pulses on A for the samples up to the next
transfer, then the transfer (a read of one column of A, written into C as a pulsed update),
then the reduction into the tile's weights. A training step of a small layer made about ten
Python calls around kernels of a few microseconds each (a 32x64 layer at batch 10, inside
training: about 51 us an update, of which the kernels took about 20). This loop makes the
same kernel calls with the same arguments and random keys in the same order as
:meth:`TransferModel.update <rpusim.compounds.transfer.TransferModel.update>`, so it gives
the same bits (``tests/test_compounds.py`` checks it against the Python loop);
``TransferModel`` decides when it applies.

Random numbers: the Python loop draws one key from the tile's PCG64 generator per SGD chunk
and two per transfer (the read's, the write's). The caller draws exactly these raw 64-bit
outputs ahead (:func:`keys_needed`) and the loop uses them in the same order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from rpusim.compounds.kernels import weighted_sum2
from rpusim.kernels import io as kio
from rpusim.kernels.entry import renamed
from rpusim.kernels.update import _apply_k, serial_stochastic_update

__all__ = ["transfer_loop", "transfer_loop_noisy", "covered", "keys_needed"]

# the small-update composite of rpusim's own devices under stochastic pulses: what
# pulsed_update runs for the Python loop's calls (the only pulse kernel the loop calls, so that
# it compiles nothing else: the Python path has compiled it)
_COMPOSITE = _apply_k[(True, True)][2]


_NOISY = False  # True in the twins for devices with write noise (see below)


def _pulses(W, P, Wp, X, D, c, flags, key, params, wn_sigma):
    """A device's pulsed update as ``pulsed_update`` runs a small one: the composite, or with
    write noise (``wn_sigma > 0``, in the noisy twin only) the staged serial kernels."""
    if _NOISY and wn_sigma > 0:
        serial_stochastic_update(W, P, Wp, X, D, c, flags, key, key, params, wn_sigma)
    elif not _COMPOSITE(W, P, X, D, c, flags, key, key, params):
        raise ValueError("transfer_loop: bit trains longer than 64 bits")


# the twins of _pulses: a helper reads the globals of its own function object, so each twin
# gets the flag in its globals (the plain one never compiles the write-noise kernels)
_PULSES = njit(cache=True, inline="always")(renamed(_pulses, "_pulses_plain"))
_PULSES_NOISY = njit(cache=True, inline="always")(renamed(_pulses, "_pulses_noisy",
                                                          {**globals(), "_NOISY": True}))


def transfer_loop(X, D, WA, PA, WpA, cA, flags_a, params_a, WC, PC, WpC, cC, flags_c, params_c,
                  wn, rf, rflags, rnl, rnoise, rnm, rc, rwork, periods, period, state, raw, W,
                  gammas):
    """Run ``TransferModel.update`` of two devices for the samples ``X``, ``D`` (tile dtype,
    C-contiguous; columns mode, one read per transfer, no reset, slices in order; the
    devices without write noise with bit trains of at most 64 bits, see :func:`covered`).

    ``WA``, ``PA``, ``WpA``, ``cA``, ``flags_a``, ``params_a``: A's SGD update as
    ``pulsed_update`` builds it; ``WC`` ... ``params_c``: C's write (at the transfer rate);
    ``wn``: the write-noise sigma of A and C (0: none; above 0 only in
    :func:`transfer_loop_noisy`, the twin compiled with the kernels of write noise, which
    this one never compiles). ``rf`` ... ``rwork``:
    the transfer reader's ``kio.managed_mvm`` arguments. ``periods``: the positive transfer
    periods of all devices (they cut the samples into chunks); ``period``: A's (0: A never
    transfers). ``state`` (int64: the update index, the next slice) is read and written back.
    ``raw``: the keys, one per chunk and two per transfer. The loop ends with the reduction
    ``W = gammas[0] WA + gammas[1] WC`` (C-contiguous). Returns how many keys it used.
    """
    if state.shape[0] != 2:
        raise ValueError("transfer_loop: state must hold the update index and the slice")
    m, nx = X.shape
    nd = D.shape[1]
    dt = X.dtype.type
    idx = state[0]
    c = state[1]
    pos = 0
    # (a variable, not the literal False: a literal would compile another managed_mvm)
    transposed = m < 0
    unit = np.zeros((1, nx), X.dtype)
    v = np.empty((1, nd), X.dtype)
    write = np.empty((1, nd), X.dtype)
    start = 0
    while start < m:
        chunk = m - start
        for e in periods:
            chunk = min(chunk, e - idx % e)
        key = raw[pos]
        pos += 1
        # the whole batch (the usual case) as it is, else a copy of the chunk's rows: the
        # same values as the Python loop's views
        Xc = X if chunk == m else np.ascontiguousarray(X[start:start + chunk])
        Dc = D if chunk == m else np.ascontiguousarray(D[start:start + chunk])
        _PULSES(WA, PA, WpA, Xc, Dc, cA, flags_a, key, params_a, wn[0])
        idx += chunk
        start += chunk
        if period <= 0 or idx % period != 0:
            continue
        # the transfer of slice c: read A's column through the transfer IO and write its
        # negative into C (read with output scale -1, written at +lr_t: C += lr_t A)
        unit[0, c] = dt(1)
        kio.managed_mvm(WA, transposed, unit, v, rf, rflags, rnl, rnoise, raw[pos], rnm, rc,
                        rwork)
        pos += 1
        for i in range(nd):
            write[0, i] = -v[0, i]
        _PULSES(WC, PC, WpC, unit, write, cC, flags_c, raw[pos], params_c, wn[1])
        pos += 1
        unit[0, c] = dt(0)
        c = (c + 1) % nx
    state[0] = idx
    state[1] = c
    weighted_sum2(W, gammas[0], WA, gammas[1], WC)
    return pos


def covered(upd, lr: float, g: float) -> bool:
    """Whether a device's pulses (``upd`` at rate ``lr``, granularity ``g``) without write
    noise have bit trains of at most 64 bits: the one-word trains of the small-update
    composite, the only pulse kernel the loop calls for them (the staged kernels of longer
    trains would double its cold compilation). A train has ``desired_bl`` bits, or
    ``ceil(lr / g)`` without a fixed length and bit-length management (a bound here, with
    room for the tile dtype's rounding)."""
    if upd.desired_bl > 64:
        return False
    return bool(upd.fixed_bl or upd.update_bl_management
                or (g > 0 and abs(lr) / g * (1 + 1e-6) + 1 <= 64))


transfer_loop_noisy = njit(cache=True)(renamed(transfer_loop, "transfer_loop_noisy",
                                               {**globals(), "_PULSES": _PULSES_NOISY}))
transfer_loop = njit(cache=True)(transfer_loop)


def _multiples(lo: int, hi: int, periods: list[int]) -> int:
    """How many integers in ``(lo, hi]`` are a multiple of any of ``periods`` (inclusion and
    exclusion over their subsets; a compound has a period per device, at most a few)."""
    total = 0
    n = len(periods)
    for mask in range(1, 1 << n):
        common, bits = 1, 0
        for k in range(n):
            if mask >> k & 1:
                common = math.lcm(common, periods[k])
                bits += 1
        count = hi // common - lo // common
        total += count if bits % 2 else -count
    return total


def keys_needed(idx: int, m: int, periods: list[int], period: int) -> int:
    """The keys :func:`transfer_loop` uses for ``m`` samples from update index ``idx``: one
    per chunk (a chunk ends before every multiple of a period inside the batch) and two per
    transfer (every multiple of ``period`` the batch reaches, ``period`` > 0)."""
    if m <= 0:
        return 0
    if len(periods) == 1:  # the usual schedule: only A transfers
        e = periods[0]
        chunks = 1 + (idx + m - 1) // e - idx // e
    else:
        chunks = 1 + _multiples(idx, idx + m - 1, periods)
    transfers = (idx + m) // period - idx // period if period > 0 else 0
    return chunks + 2 * transfers
