"""ExpStepDevice: an exponentially saturating step (CMOS-like response), optional complex noise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from rpusim.devices.base import (SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, SLOT_MAX_BOUND, SLOT_MIN_BOUND,
                                 PulsedDevice, cast_like, register_device)
from rpusim.devices.cmath import expf
from rpusim.kernels.rng import normal

__all__ = ["ExpStepDevice"]


@dataclass
class ExpStepDevice(PulsedDevice):
    """Step that saturates exponentially toward the bounds (aihwkit's ExpStepDevice).

    With ``z = 2 * a * w / (max_bound - min_bound) + b`` (the element's own bounds)::

        y_up   = max(1 - A_up   * exp( gamma_up   * z), 0)
        y_down = max(1 - A_down * exp(-gamma_down * z), 0)
        up:   w <- w + y_up   * (1 + dw_min_std * xi) * dwmin_up
        down: w <- w - y_down * (1 + dw_min_std * xi) * dwmin_down

    then clip to ``[min_bound, max_bound]``. An element with ``max_bound <= min_bound``
    (a stuck device) ignores pulses. ``A_*``, ``gamma_*``, ``a`` and ``b`` are the same for
    every element; the dtod spread comes from the common bounds and steps.

    Complex noise, active when ``dw_min_std > 0`` and ``dw_min_std_add`` or
    ``dw_min_std_slope`` is non-zero, replaces the multiplicative noise: with the noise-free
    step ``dw`` (signed), ``w <- w + dw + dw_min_std * (|dw| + dw_min_std_add +
    dw_min_std_slope * |w|) * xi``.

    Granularity (used by the pulse generator): aihwkit evaluates the mean down step at
    ``w = 0``, ``dw_down = (1 - max(up_down, 0)) * dw_min * max(1 - A_down * exp(-gamma_down
    * b), 0)``, and returns ``(dw_down + dw_down) / 2``, evidently meant as the mean of the up
    and down steps. rpusim replicates this (it only scales the pulse counts; at the defaults
    the two differ by 7e-6 relative); ``dw_min`` if that value is not positive.

    Hidden parameters: the common ones, and ``persistent_weights`` with write noise.

    Attributes
    ----------
    A_up : float
        Prefactor of the exponential of the up step.
    A_down : float
        Prefactor of the exponential of the down step.
    gamma_up : float
        Exponent (rate in ``z``) of the up step.
    gamma_down : float
        Exponent (rate in ``z``) of the down step.
    a : float
        Scale of the normalised weight ``z``.
    b : float
        Offset of the normalised weight ``z``.
    dw_min_std_add : float
        Additive part of the complex noise, in weight units (times ``dw_min_std``).
    dw_min_std_slope : float
        Part of the complex noise proportional to ``|w|`` (times ``dw_min_std``).
    write_noise_std : float
        Write noise in units of ``dw_min``: pulses act on a hidden persistent weight and the
        apparent weight of every touched element is redrawn as
        ``persistent + write_noise_std * dw_min * xi``.
    apply_write_noise_on_set : bool
        ``set_weights`` draws write noise on the apparent weights too.
    """

    A_up: float = 0.00081
    A_down: float = 0.36833
    gamma_up: float = 12.44625
    gamma_down: float = 12.78785
    a: float = 0.244
    b: float = 0.2425
    dw_min_std_add: float = 0.0
    dw_min_std_slope: float = 0.0
    write_noise_std: float = 0.0
    apply_write_noise_on_set: bool = True

    def validate(self) -> None:
        super().validate()
        for name in ("A_up", "A_down", "gamma_up", "gamma_down", "a", "b", "dw_min_std_add",
                     "dw_min_std_slope"):
            self._check_number(name)

    def granularity(self, dw_min: float, dtype=np.float64) -> float:
        # aihwkit's formula in the tile dtype T, with C's expf: the down step at w = 0, where
        # z = 2 w / (w_max - w_min) a + b = b
        t = np.dtype(dtype).type
        zero, one = t(0), t(1)
        down_bias = -t(self.up_down) if self.up_down > 0 else zero
        scale_down = t(down_bias + one) * t(dw_min)
        z = t(self.b)
        dw_down = scale_down * max(one - t(self.A_down) * t(expf(t(self.gamma_down) * -z)), zero)
        g = max((dw_down + dw_down) / t(2), zero)
        return float(g) if g > 0 else float(t(dw_min))

    def step_params(self, dtype):
        dt = dtype.type
        complex_noise = self.dw_min_std > 0 and (self.dw_min_std_add != 0
                                                 or self.dw_min_std_slope != 0)
        return ExpStepParams(dt(self.dw_min_std), bool(complex_noise), dt(self.dw_min_std_add),
                             dt(self.dw_min_std_slope), dt(self.A_up), dt(self.A_down),
                             dt(self.gamma_up), dt(self.gamma_down), dt(self.a), dt(self.b),
                             dt(0), dt(1), dt(2))


class ExpStepParams(NamedTuple):
    dw_min_std: float
    complex_noise: bool
    dw_min_std_add: float
    dw_min_std_slope: float
    A_up: float
    A_down: float
    gamma_up: float
    gamma_down: float
    a: float
    b: float
    zero: float
    one: float
    two: float


@njit(cache=True)
def exp_step(params, P, i, j, w, up, states):
    lo = P[SLOT_MIN_BOUND, i, j]
    hi = P[SLOT_MAX_BOUND, i, j]
    b_diff = hi - lo
    if not b_diff > 0:
        return w
    z = params.two * w / b_diff * params.a + params.b
    if up:
        y = max(params.one - params.A_up * math.exp(params.gamma_up * z), params.zero)
        scale = P[SLOT_DWMIN_UP, i, j]
    else:
        y = max(params.one - params.A_down * math.exp(params.gamma_down * (-z)), params.zero)
        scale = -P[SLOT_DWMIN_DOWN, i, j]
    if params.complex_noise:
        dw = y * scale
        std = params.dw_min_std * (abs(dw) + params.dw_min_std_add
                                   + params.dw_min_std_slope * abs(w))
        w = w + (dw + std * cast_like(normal(states, i), w))
    elif params.dw_min_std > 0:
        w = w + y * cast_like(1.0 + params.dw_min_std * normal(states, i), w) * scale
    else:
        w = w + y * scale
    w = min(w, hi)
    return max(w, lo)


register_device(ExpStepDevice, ExpStepParams, exp_step)
