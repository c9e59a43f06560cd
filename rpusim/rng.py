"""The tile's seeded random generator."""

from __future__ import annotations

import numpy as np

__all__ = ["TileRNG"]


class TileRNG:
    """One seeded source for every random draw of a tile.

    NumPy draws (device-to-device sampling, initial weights, whole-matrix noise) come from
    ``generator``; numba kernels get a fresh 64-bit ``key`` per call from the same generator and
    derive their per-row streams from it, so the sequence of calls alone fixes all bits.
    """

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
        self.generator = np.random.Generator(np.random.PCG64(seed))
        self._raw = self.generator.bit_generator.random_raw
        self._key = np.zeros(1, np.uint64)  # see key()
        # keys drawn so far in this process (not state: it only lets a caller undo its keys)
        self.keys_drawn = 0

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "_key" not in state:  # pickled before the key box existed
            self._key = np.zeros(1, np.uint64)

    def key(self) -> np.uint64:
        """A fresh 64-bit key for one kernel call: the generator's next raw 64-bit output
        (cheaper than ``integers``, which matters for small tiles)."""
        self.keys_drawn += 1
        # through a uint64 array: np.uint64() of a Python int above 2**63 takes a slow path
        box = self._key
        box[0] = self._raw()
        return box[0]

    def raw_key(self) -> int:
        """:meth:`key` as a Python int, for a kernel's compiled entry point (which unboxes it as
        the uint64 it was compiled for; a dispatcher would type a large int otherwise)."""
        self.keys_drawn += 1
        return self._raw()

    def raw_keys(self, n: int) -> np.ndarray:
        """The next ``n`` keys (uint64): the generator's raw 64-bit outputs drawn ahead, for a
        kernel that takes its keys one by one as it goes (the same values as ``n`` calls of
        :meth:`raw_key`; those it does not use go back with :meth:`unkey`)."""
        self.keys_drawn += n
        return self._raw(n)

    def unkey(self, n: int) -> None:
        """Undo the last ``n`` keys, exactly, when nothing else was drawn since.

        Cheaper than saving the state before every call that might fail: PCG64 steps back
        by advancing ``2**128 - n``; a raw draw leaves the 32-bit buffer alone, and the
        advance clears it, so it is put back from the state after the keys.
        """
        if n <= 0:
            return
        bg = self.generator.bit_generator
        after = bg.state
        bg.advance(2**128 - n)
        # the advance leaves an empty buffer (both fields 0): put back only what differs
        if after["has_uint32"] or after["uinteger"]:
            state = bg.state
            state["has_uint32"] = after["has_uint32"]
            state["uinteger"] = after["uinteger"]
            bg.state = state
        self.keys_drawn -= n

    def normal(self, shape, dtype) -> np.ndarray:
        return self.generator.standard_normal(shape).astype(dtype, copy=False)

    def uniform(self, shape) -> np.ndarray:
        return self.generator.random(shape)

    def get_state(self) -> dict:
        return self.generator.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.generator.bit_generator.state = state
