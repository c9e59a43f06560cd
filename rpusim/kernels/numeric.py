"""Scalar helpers shared by the kernels and the device step functions."""

import numpy as np
from numba.core import types
from numba.extending import overload

__all__ = ["cast_like"]


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
