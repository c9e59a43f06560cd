"""C's single-precision ``powf`` and ``expf``, which aihwkit's C++ calls in the weight
granularities of its devices (``dw_min * powf(0.5, gamma)`` and friends).

numpy's float32 power is not C's ``powf`` (``0.5 ** 1.434401``: 0.37000042 against 0.3700004),
and a granularity one ulp off moves a deterministic pulse count across a rounding tie. The C
library's functions are used where the process has one (every Linux and macOS Python);
elsewhere numpy's float32 functions stand in.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

__all__ = ["powf", "expf"]

_FUNCTIONS: dict = {}


def _c_function(name: str, n_args: int):
    """``name`` from the C math library as a float32 function, or None."""
    if name not in _FUNCTIONS:
        function = None
        for lib in ("libm.so.6", ctypes.util.find_library("m"), None):
            try:
                function = getattr(ctypes.CDLL(lib), name)
                break
            except (OSError, AttributeError, TypeError):
                continue
        if function is not None:
            function.restype = ctypes.c_float
            function.argtypes = [ctypes.c_float] * n_args
        _FUNCTIONS[name] = function
    return _FUNCTIONS[name]


def powf(x: float, y: float) -> float:
    """C's ``powf((float)x, (float)y)``."""
    function = _c_function("powf", 2)
    if function is None:
        return float(np.float32(x) ** np.float32(y))
    return function(float(np.float32(x)), float(np.float32(y)))


def expf(x: float) -> float:
    """C's ``expf((float)x)``."""
    function = _c_function("expf", 1)
    if function is None:
        return float(np.exp(np.float32(x)))
    return function(float(np.float32(x)))
