"""SoftBoundsDevice: the step shrinks linearly to zero at each element's own bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rpusim.devices.base import PulsedDevice, register_device
from rpusim.devices.linear_step import (LinearStepParams, check_reverse, linear_slopes,
                                        linear_step)

__all__ = ["SoftBoundsDevice"]


@dataclass
class SoftBoundsDevice(PulsedDevice):
    """Soft bounds: the step vanishes at the element's bounds (aihwkit's SoftBoundsDevice).

    A :class:`~rpusim.devices.linear_step.LinearStepDevice` with ``gamma_up = gamma_down = 1``,
    no gamma spread and the element's own bounds as references, as aihwkit builds it::

        up:   w <- w + dwmin_up   * (1 - w / max_bound) * (1 + dw_min_std * xi)
        down: w <- w - dwmin_down * (1 - w / min_bound) * (1 + dw_min_std * xi)

    then clip to ``[min_bound, max_bound]``. The step is evaluated in LinearStep form,
    ``slope_up * w + dwmin_up`` with ``slope_up = -dwmin_up / max_bound`` and
    ``slope_down = -dwmin_down / min_bound``, so the arithmetic is aihwkit's.
    With additive noise (``mult_noise=False``) only ``dwmin_up``/``dwmin_down`` carry the
    noise. Hidden parameters: the common ones, ``persistent_weights`` with write noise, then
    ``slope_up``, ``slope_down``. Granularity: ``dw_min``.

    Attributes
    ----------
    mult_noise : bool
        Multiplicative cycle-to-cycle noise on the whole step (True) or additive noise on the
        constant part only (False).
    write_noise_std : float
        Write noise in units of ``dw_min``: pulses act on a hidden persistent weight and the
        apparent weight of every touched element is redrawn as
        ``persistent + write_noise_std * dw_min * xi``.
    apply_write_noise_on_set : bool
        ``set_weights`` draws write noise on the apparent weights too.
    reverse_up : bool
        The up step grows with the weight instead of shrinking: its reference becomes
        ``min_bound - reverse_offset``. Needs ``mult_noise``.
    reverse_down : bool
        The down step grows as the weight decreases: reference ``max_bound + reverse_offset``.
        Needs ``mult_noise``.
    reverse_offset : float
        Offset of the reversed reference, so that the reversed step is not zero at the bound.
    """

    extra_hidden_names: ClassVar[tuple[str, ...]] = ("slope_up", "slope_down")

    mult_noise: bool = True
    write_noise_std: float = 0.0
    apply_write_noise_on_set: bool = True
    reverse_up: bool = False
    reverse_down: bool = False
    reverse_offset: float = 0.01

    def validate(self) -> None:
        super().validate()
        self._check_number("reverse_offset")
        check_reverse(self)

    def sample_extras(self, gen, state, shape):
        ones = np.ones(shape, state["max_bound"].dtype)
        return linear_slopes(self, state, ones, ones, mean_bound_reference=False)

    def step_params(self, dtype):
        return LinearStepParams(dtype.type(self.dw_min_std), bool(self.mult_noise))


register_device(SoftBoundsDevice, LinearStepParams, linear_step)
