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
        m0 = _larger(m0, abs(u[j]))
        m1 = _larger(m1, abs(u[j + 1]))
        m2 = _larger(m2, abs(u[j + 2]))
        m3 = _larger(m3, abs(u[j + 3]))
        j += 4
    while j < n:
        m0 = _larger(m0, abs(u[j]))
        j += 1
    return _larger(_larger(_larger(m0, m1), m2), m3)


@njit(cache=True, inline="always")
def _larger(m, a):
    """``a`` if it exceeds ``m``, else ``m`` (a NaN ``a`` never replaces ``m``)."""
    return a if a > m else m
