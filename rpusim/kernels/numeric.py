"""Scalar and line helpers shared by the kernels and the device step functions."""

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import overload

__all__ = ["abs_max", "cast_like"]


def cast_like(x, like):
    """``x`` converted to the float type of ``like`` (usable inside numba kernels).

    Kernels draw float64 random numbers; casting them to the weight's dtype keeps the
    arithmetic in that dtype, as aihwkit computes in float32. (A cast through a 1-element
    array would do the same but, inlined, costs reference counting per call.)
    """
    return type(like)(x)


@overload(cast_like, jit_options={"cache": True})
def _cast_like_overload(x, like):
    if not isinstance(like, types.Float):
        return None
    target = np.float32 if like.bitwidth == 32 else np.float64

    def impl(x, like):
        return target(x)

    return impl


@njit(cache=True)
def abs_max(u):
    """``max |u_j|`` of a non-empty 1-d ``u``, in its dtype; NaNs after ``u[0]`` are skipped,
    a NaN ``u[0]`` gives NaN. Four running maxima: one chain of compare-and-select per element
    was latency bound (the maximum of finite values does not depend on the order)."""
    n = u.shape[0]
    m0 = abs(u[0])
    m1 = m0
    m2 = m0
    m3 = m0
    j = 1
    while j + 4 <= n:
        a0 = abs(u[j])
        a1 = abs(u[j + 1])
        a2 = abs(u[j + 2])
        a3 = abs(u[j + 3])
        if a0 > m0:
            m0 = a0
        if a1 > m1:
            m1 = a1
        if a2 > m2:
            m2 = a2
        if a3 > m3:
            m3 = a3
        j += 4
    while j < n:
        a = abs(u[j])
        if a > m0:
            m0 = a
        j += 1
    if m1 > m0:
        m0 = m1
    if m2 > m0:
        m0 = m2
    if m3 > m0:
        m0 = m3
    return m0
