"""Compiled entry points of numba kernels, for calls whose argument types are known.

A numba dispatcher types every argument in Python on each call (about 0.05 us an array, more
for tuples), which is a tenth of a small tile's call. The compiled entry point behind it
skips that, but it trusts its arguments blindly: it is only valid for exactly the numba types
it was compiled for (dtype, dimensions, layout, alignment and writeability of every array).
Callers keep one per kernel and reuse it only when they know the types are the same, e.g.
their own state arrays and inputs checked to be C-contiguous, aligned and writeable
(``flags.carray``) in the expected dtype.
"""

from __future__ import annotations

import types

from numba import typeof

__all__ = ["entry_point", "renamed"]


def entry_point(kernel, args: tuple):
    """The compiled entry point of ``kernel`` for the numba types of ``args``, or ``None``.

    ``None`` when ``kernel`` has no compiled version for those types yet (call it once through
    the dispatcher first) or is a plain function (``NUMBA_DISABLE_JIT``).
    """
    overloads = getattr(kernel, "overloads", None)
    if overloads is None:
        return None
    compiled = overloads.get(tuple(typeof(a) for a in args))
    return None if compiled is None else compiled.entry_point


def renamed(fn, name: str, scope: dict | None = None):
    """The same function body under another name, and optionally other globals. numba keys
    its cache files by name, and ignores both the ``parallel`` flag and the globals a body
    sees: twins of one body need names of their own."""
    twin = types.FunctionType(fn.__code__, fn.__globals__ if scope is None else scope, name,
                              fn.__defaults__, fn.__closure__)
    twin.__qualname__ = name
    return twin
