"""ConstantStepDevice: a fixed step per pulse, with multiplicative cycle-to-cycle noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from numba import njit

from rpusim.devices.base import (SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, PulsedDevice, ctoc_noise,
                                 clip_to_bounds, register_device)

__all__ = ["ConstantStepDevice"]


@dataclass
class ConstantStepDevice(PulsedDevice):
    """Constant step ``dwmin_up``/``dwmin_down`` per pulse, noise ``(1 + dw_min_std * xi)``.

    Up: ``w += dwmin_up * (1 + dw_min_std * xi)``; down: ``w -= dwmin_down * (1 + ...)``;
    then clip to ``[min_bound, max_bound]``. Granularity ``dw_min``. No write noise.
    """

    def step_params(self, dtype):
        return ConstantStepParams(dtype.type(self.dw_min_std))


class ConstantStepParams(NamedTuple):
    dw_min_std: float


@njit(cache=True)
def constant_step(params, P, i, j, w, up, states):
    dw = P[SLOT_DWMIN_UP, i, j] if up else -P[SLOT_DWMIN_DOWN, i, j]
    dw = ctoc_noise(dw, params.dw_min_std, states, i, w)
    return clip_to_bounds(P, i, j, w + dw)


register_device(ConstantStepDevice, ConstantStepParams, constant_step)
