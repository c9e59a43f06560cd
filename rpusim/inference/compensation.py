"""Drift compensation (spec inference.md §9): a digital rescaling of the test-mode outputs by
``alpha = baseline / current``, both read out through the tile's own forward IO model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rpusim.inference.base import BaseDriftCompensation

__all__ = ["GlobalDriftCompensation", "PerColumnDriftCompensation"]

# smallest readout: an all-zero tile must not divide by zero
_MIN_READOUT = 1e-4


@dataclass
class GlobalDriftCompensation(BaseDriftCompensation):
    """One scalar alpha per tile: ``readout(Y) = max(mean |Y|, 1e-4)`` over all entries of
    ``Y = IO_fwd(W, I)``, the identity (one one-hot input per column of W) through the forward
    IO model in test mode, with its noise and quantisation."""

    def get_readout_tensor(self, in_size: int, dtype) -> np.ndarray:
        return np.eye(in_size, dtype=dtype)

    def readout(self, out_tensor: np.ndarray):
        return max(float(np.abs(out_tensor).mean()), _MIN_READOUT)


@dataclass
class PerColumnDriftCompensation(BaseDriftCompensation):
    """One alpha per output: ``readout(Y) = max(mean_k |Y[k, i]|, 1e-4)`` for each output ``i``
    over the identity's one-hot inputs ``k``."""

    def get_readout_tensor(self, in_size: int, dtype) -> np.ndarray:
        return np.eye(in_size, dtype=dtype)

    def readout(self, out_tensor: np.ndarray):
        return np.maximum(np.abs(out_tensor).mean(axis=0), _MIN_READOUT).astype(np.float64)
