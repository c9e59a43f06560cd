"""Numba kernels: pure functions on arrays and scalars, no Python objects."""
