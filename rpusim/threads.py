"""Start numba's worker threads without changing anybody else's OpenMP thread count.

numba's OpenMP threading layer calls ``omp_set_num_threads(NUMBA_NUM_THREADS)`` when it
starts. When another library has already put an OpenMP runtime into the process's global
symbol scope (torch does, with its own libgomp), that call lands in the other library's
runtime and overwrites its setting for the calling thread: a user's
``torch.set_num_threads(1)`` silently became 2 threads again, and every small torch operation
then woke a sleeping OpenMP worker (``OMP_WAIT_POLICY=PASSIVE``). Measured on 2 cores: a
10x10 ``log_softmax`` took 40-60 us instead of 3.5 us, an MLP epoch on digits 0.093 s instead
of 0.057 s. numba's own kernels do not need that setting (each parallel region names its
thread count), so :func:`start_numba_threads` puts the value back.
"""

from __future__ import annotations

import ctypes

import numba

__all__ = ["start_numba_threads"]


def _global_openmp():
    """``(omp_get_max_threads, omp_set_num_threads)`` of the OpenMP runtime in the process's
    global symbol scope, or ``None`` when there is none (then numba's call cannot reach
    another library's setting)."""
    try:
        scope = ctypes.CDLL(None)
        return scope.omp_get_max_threads, scope.omp_set_num_threads
    except (OSError, TypeError, AttributeError):  # no such scope (Windows) or no OpenMP in it
        return None


def start_numba_threads() -> int:
    """Start numba's threading layer (once per process) and keep the global OpenMP
    runtime's thread count of the calling thread as it was.

    Returns
    -------
    int
        numba's thread count.
    """
    openmp = _global_openmp()
    before = openmp[0]() if openmp else None
    threads = numba.get_num_threads()  # starts the threading layer on first use
    if before is not None and openmp[0]() != before:
        openmp[1](before)
    return threads
