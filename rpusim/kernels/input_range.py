"""The terms of a learned input range's gradient (aihwkit's periphery, ``post_backward``) in
one pass over a tile's inputs and their gradients.

The layers computed them with NumPy: two masked, clipped copies of the gradients summed in
float64, and the fraction of inputs inside the range, about ten array passes per tile and
step. This kernel gives the same numbers bit for bit: NumPy sums a float32 array in float64
through cast buffers of 8192 elements, each summed pairwise (blocks of up to 128 with eight
accumulators, halves split at multiples of 8), the buffers' sums added in order to 0.0;
:func:`pairwise_sum` follows that order (checked against ``ndarray.sum`` in
``tests/test_input_range.py``).
"""

import numpy as np
from numba import njit

from rpusim.kernels.update import clip_as_numpy

__all__ = ["pairwise_sum", "range_gradient_terms"]

_BUFFER = 8192  # NumPy's cast buffer (elements) in a float32 -> float64 reduction
_BLOCK = 128    # NumPy's pairwise block


@njit(cache=True)
def _pairwise(a, lo, n):
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= _BLOCK:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = lo + 8
        stop = lo + n - n % 8
        while i < stop:
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < lo + n:
            res += a[i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise(a, lo, half) + _pairwise(a, lo + half, n - half)


@njit(cache=True)
def pairwise_sum(a):
    """``a.sum()`` of a 1-d float64 ``a`` as NumPy sums a float32 array cast to float64
    (``ndarray.sum(dtype=np.float64)`` of a contiguous array): the same additions in the
    same order."""
    total = 0.0
    for start in range(0, a.shape[0], _BUFFER):
        total += _pairwise(a, start, min(_BUFFER, a.shape[0] - start))
    return total


@njit(cache=True)
def range_gradient_terms(x, z, r):
    """For inputs ``x`` and their gradients ``z`` (2-d, same shape and float dtype, read
    row by row) and the range ``r`` (in their dtype):

    - ``np.minimum(np.where(x >= r, z, 0), 0).sum(dtype=np.float64)``,
    - ``np.maximum(np.where(x <= -r, z, 0), 0).sum(dtype=np.float64)``,
    - ``np.count_nonzero(np.abs(x) < r)``,

    with NumPy's values (NaN gradients propagate, zeros are +0) and sums
    (:func:`pairwise_sum`)."""
    rows, cols = x.shape
    inf = np.inf
    below = np.empty(rows * cols)
    above = np.empty(rows * cols)
    neg = -r
    inside = 0
    k = 0
    for i in range(rows):
        for j in range(cols):
            v = x[i, j]
            g = z[i, j]
            lo = g if v >= r else 0.0
            hi = g if v <= neg else 0.0
            # np.minimum(lo, 0) and np.maximum(hi, 0): NaN stays, a zero of either sign is +0
            below[k] = clip_as_numpy(lo, -inf, 0.0)
            above[k] = clip_as_numpy(hi, 0.0, inf)
            inside += abs(v) < r
            k += 1
    return pairwise_sum(below), pairwise_sum(above), inside
