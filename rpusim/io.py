"""The analog matrix-vector product of a tile direction (forward or backward)."""

from __future__ import annotations

import numpy as np

from rpusim.configs.enums import AnalogMVType
from rpusim.configs.io import IOParameters
from rpusim.rng import TileRNG

__all__ = ["AnalogMVM"]


class AnalogMVM:
    """One direction's MVM ``Y = U @ M.T`` through the IO model of ``params``.

    Parameters
    ----------
    params : IOParameters
    n_out, n_in : int
        Output and input lengths of this direction.
    dtype : numpy dtype
    rng : TileRNG
    exact : bool
        No IO model at all (floating-point tiles).
    """

    def __init__(self, params: IOParameters, n_out: int, n_in: int, dtype, rng: TileRNG,
                 exact: bool = False):
        self.params = params
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.exact = exact
        self.perfect = exact or params.is_perfect or params.mv_type == AnalogMVType.IDEAL

    def __call__(self, M: np.ndarray, U: np.ndarray, is_test: bool = False) -> np.ndarray:
        Y = U @ M.T
        if not self.exact and self.params.out_scale != 1.0:
            Y *= self.dtype.type(self.params.out_scale)
        return Y

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        pass
