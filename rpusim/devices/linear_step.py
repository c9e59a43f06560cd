"""LinearStepDevice: a step that changes linearly with the weight (soft bounds are a preset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
from numba import njit

from rpusim.devices.base import (FIRST_EXTRA_SLOT, SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, PulsedDevice,
                                 cast_like, clip_to_bounds, gauss, register_device)
from rpusim.kernels.rng import normal

__all__ = ["LinearStepDevice", "LinearStepParams", "linear_step", "linear_slopes"]

SLOT_SLOPE_UP = FIRST_EXTRA_SLOT
SLOT_SLOPE_DOWN = FIRST_EXTRA_SLOT + 1


@dataclass
class LinearStepDevice(PulsedDevice):
    """A pulsed device whose step size depends linearly on the weight (aihwkit's LinearStep).

    Per element the step is ``dwmin_up + slope_up * w`` up and ``dwmin_down + slope_down * w``
    down. With ``mult_noise`` the whole step is multiplied by ``(1 + dw_min_std * xi)``::

        up:   w <- w + (slope_up * w + dwmin_up) * (1 + dw_min_std * xi)
        down: w <- w - (slope_down * w + dwmin_down) * (1 + dw_min_std * xi)

    otherwise only the constant part carries the noise
    (``w <- w + slope_up * w + dwmin_up * (1 + dw_min_std * xi)``). Every pulse is clipped to
    ``[min_bound, max_bound]``.

    The slopes are drawn per element at construction::

        slope_up   = -|gamma_up   + gamma_up_dtod   * xi| * dwmin_up   / ref_up
        slope_down = -|gamma_down + gamma_down_dtod * xi| * dwmin_down / ref_down

    so that the up step has shrunk by the fraction ``gamma_up`` at ``w = ref_up``. The
    references are ``w_max``/``w_min`` (``mean_bound_reference``) or the element's own bounds;
    ``reverse_up``/``reverse_down`` move them to the opposite bound (plus ``reverse_offset``)
    so that the step grows instead. A zero reference gives a zero slope. Note that the default
    slopes are not zero: ``gamma_up_dtod = 0.05`` gives ``|N(0, 0.05)|`` (as aihwkit).

    Hidden parameters: the common ones, ``persistent_weights`` with write noise, then
    ``slope_up``, ``slope_down``. Granularity: ``dw_min``.

    Attributes
    ----------
    gamma_up : float
        Relative reduction of the up step at the reference weight ``ref_up``.
    gamma_down : float
        Relative reduction of the down step at the reference weight ``ref_down``.
    gamma_up_dtod : float
        Absolute device-to-device spread of ``gamma_up``.
    gamma_down_dtod : float
        Absolute device-to-device spread of ``gamma_down``.
    allow_increasing : bool
        Keep the sign of the sampled gammas (a negative gamma makes the step grow toward the
        bound); ``False`` takes their absolute value.
    mean_bound_reference : bool
        Reference the slopes to the mean bounds ``w_max``/``w_min`` (True) or to each
        element's own sampled bounds (False).
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
        The up step grows with the weight instead of shrinking (reference
        ``w_min - reverse_offset``). Needs ``mult_noise``.
    reverse_down : bool
        The down step grows as the weight decreases (reference ``w_max + reverse_offset``).
        Needs ``mult_noise``.
    reverse_offset : float
        Offset of the reversed reference, so that the reversed step is not zero at the bound.
    """

    extra_hidden_names: ClassVar[tuple[str, ...]] = ("slope_up", "slope_down")

    gamma_up: float = 0.0
    gamma_down: float = 0.0
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    allow_increasing: bool = False
    mean_bound_reference: bool = True
    mult_noise: bool = True
    write_noise_std: float = 0.0
    apply_write_noise_on_set: bool = True
    reverse_up: bool = False
    reverse_down: bool = False
    reverse_offset: float = 0.01

    def validate(self) -> None:
        super().validate()
        for name in ("gamma_up", "gamma_down", "reverse_offset"):
            self._check_number(name)
        for name in ("gamma_up_dtod", "gamma_down_dtod"):
            self._check_number(name, lo=0.0)
        for name in ("allow_increasing", "mean_bound_reference"):
            self._check_bool(name)
        check_reverse(self)

    def sample_extras(self, gen, state, shape):
        dt = state["max_bound"].dtype.type
        gamma_up = dt(self.gamma_up) + dt(self.gamma_up_dtod) * gauss(gen, shape, dt)
        gamma_down = dt(self.gamma_down) + dt(self.gamma_down_dtod) * gauss(gen, shape, dt)
        if not self.allow_increasing:
            gamma_up, gamma_down = np.abs(gamma_up), np.abs(gamma_down)
        return linear_slopes(self, state, gamma_up, gamma_down, self.mean_bound_reference)

    def step_params(self, dtype):
        return LinearStepParams(dtype.type(self.dw_min_std), bool(self.mult_noise))


def check_reverse(dev) -> None:
    """Shared validation of the reverse options of LinearStep and SoftBounds."""
    for name in ("mult_noise", "reverse_up", "reverse_down"):
        dev._check_bool(name)
    if (dev.reverse_up or dev.reverse_down) and not dev.mult_noise:
        raise ValueError(f"{type(dev).__name__}: reverse_up/reverse_down need mult_noise=True, "
                         f"got mult_noise={dev.mult_noise!r}")


def linear_slopes(dev, state: dict, gamma_up, gamma_down, mean_bound_reference: bool) -> dict:
    """Slopes ``-gamma * dwmin / reference`` of LinearStep and SoftBounds, in the state dtype."""
    dt = state["max_bound"].dtype.type
    if mean_bound_reference:
        b_max, b_min = dt(dev.w_max), dt(dev.w_min)
    else:
        b_max, b_min = state["max_bound"], state["min_bound"]
    offset = dt(dev.reverse_offset)
    ref_up = np.broadcast_to(b_min - offset if dev.reverse_up else b_max, gamma_up.shape)
    ref_down = np.broadcast_to(b_max + offset if dev.reverse_down else b_min, gamma_down.shape)
    safe_up = np.where(ref_up != 0, ref_up, dt(1))
    safe_down = np.where(ref_down != 0, ref_down, dt(1))
    slope_up = np.where(ref_up != 0, -gamma_up * state["dwmin_up"] / safe_up, dt(0))
    slope_down = np.where(ref_down != 0, -gamma_down * state["dwmin_down"] / safe_down, dt(0))
    return {"slope_up": slope_up, "slope_down": slope_down}


class LinearStepParams(NamedTuple):
    dw_min_std: float
    mult_noise: bool


@njit(cache=True)
def linear_step(params, P, i, j, w, up, states):
    """One LinearStep pulse; a down pulse is the negated up rule (negation is exact)."""
    if up:
        slope = P[SLOT_SLOPE_UP, i, j]
        scale = P[SLOT_DWMIN_UP, i, j]
    else:
        slope = -P[SLOT_SLOPE_DOWN, i, j]
        scale = -P[SLOT_DWMIN_DOWN, i, j]
    dw = slope * w + scale
    if params.dw_min_std > 0:
        noise = cast_like(1.0 + params.dw_min_std * normal(states, i), w)
        if params.mult_noise:
            dw = dw * noise
        else:
            dw = slope * w + scale * noise
    return clip_to_bounds(P, i, j, w + dw)


register_device(LinearStepDevice, LinearStepParams, linear_step)
