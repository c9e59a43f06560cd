"""PowStepDevice: the step scales with a power of the distance to the bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
from numba import njit

from rpusim.devices.base import (FIRST_EXTRA_SLOT, SLOT_DWMIN_DOWN, SLOT_DWMIN_UP,
                                 SLOT_MAX_BOUND, SLOT_MIN_BOUND, PulsedDevice, ctoc_noise, gauss,
                                 register_device)
from rpusim.devices.cmath import powf

__all__ = ["PowStepDevice"]

SLOT_GAMMA_UP = FIRST_EXTRA_SLOT
SLOT_GAMMA_DOWN = FIRST_EXTRA_SLOT + 1


@dataclass
class PowStepDevice(PulsedDevice):
    """Power-law step (Fusi & Abbott synapse; aihwkit's PowStepDevice).

    With ``R = max_bound - min_bound`` (the element's own bounds)::

        up:   w <- w + dwmin_up   * ((max_bound - w) / R) ** gamma_up   * (1 + dw_min_std * xi)
        down: w <- w - dwmin_down * ((w - min_bound) / R) ** gamma_down * (1 + dw_min_std * xi)

    then clip to ``[min_bound, max_bound]``; an element with ``R == 0`` ignores pulses. Note
    that ``dwmin_up`` is the step at the *lower* bound, so the step at mid-range is
    ``dwmin_up * 0.5 ** gamma_up``.

    The exponents are drawn per element at construction::

        gain = 1 + pow_gamma_dtod * xi,  r = pow_up_down_dtod * xi
        gamma_up   = (min(pow_up_down, 0) + gain + r) * pow_gamma
        gamma_down = (-max(pow_up_down, 0) + gain - r) * pow_gamma

    and made positive with ``enforce_consistency``. Hidden parameters: the common ones,
    ``persistent_weights`` with write noise, then ``gamma_up``, ``gamma_down``.
    Granularity: ``dw_min * 0.5 ** pow_gamma``.

    Attributes
    ----------
    pow_gamma : float
        Mean exponent (1: soft bounds measured from the opposite bound).
    pow_gamma_dtod : float
        Relative device-to-device spread of the exponent (shared by up and down).
    pow_up_down : float
        Up/down asymmetry of the exponent: > 0 lowers ``gamma_down``, < 0 lowers
        ``gamma_up`` (relative to ``pow_gamma``).
    pow_up_down_dtod : float
        Device-to-device spread of the asymmetry (relative to ``pow_gamma``).
    write_noise_std : float
        Write noise in units of ``dw_min``: pulses act on a hidden persistent weight and the
        apparent weight of every touched element is redrawn as
        ``persistent + write_noise_std * dw_min * xi``.
    apply_write_noise_on_set : bool
        ``set_weights`` draws write noise on the apparent weights too.
    """

    extra_hidden_names: ClassVar[tuple[str, ...]] = ("gamma_up", "gamma_down")

    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.1
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0
    write_noise_std: float = 0.0
    apply_write_noise_on_set: bool = True

    def validate(self) -> None:
        super().validate()
        check_pow_fields(self)

    def granularity(self, dw_min: float, dtype=np.float64) -> float:
        return pow_granularity(dw_min, self.pow_gamma, dtype)

    def sample_extras(self, gen, state, shape):
        return sample_gammas(self, gen, shape, state["max_bound"].dtype)

    def step_params(self, dtype):
        return PowStepParams(dtype.type(self.dw_min_std))


def pow_granularity(dw_min: float, pow_gamma: float, dtype) -> float:
    """aihwkit's granularity of the power-step devices: ``dw_min * (T)powf(0.5, gamma)`` in
    the tile dtype ``T``, with C's single-precision ``powf`` in either dtype."""
    t = np.dtype(dtype).type
    return float(t(dw_min) * t(powf(0.5, pow_gamma)))


def check_pow_fields(dev) -> None:
    """Validation shared by PowStep and PowStepReference."""
    for name in ("pow_gamma", "pow_up_down"):
        dev._check_number(name)
    for name in ("pow_gamma_dtod", "pow_up_down_dtod"):
        dev._check_number(name, lo=0.0)


def sample_gammas(dev, gen, shape, dtype) -> dict:
    """Per-element exponents ``gamma_up``/``gamma_down`` of PowStep(Reference), in ``dtype``."""
    dt = np.dtype(dtype).type
    gain = dt(1) + dt(dev.pow_gamma_dtod) * gauss(gen, shape, dt)
    r = dt(dev.pow_up_down_dtod) * gauss(gen, shape, dt)
    up_bias = dt(min(dev.pow_up_down, 0.0))
    down_bias = dt(-max(dev.pow_up_down, 0.0))
    gamma_up = (up_bias + gain + r) * dt(dev.pow_gamma)
    gamma_down = (down_bias + gain - r) * dt(dev.pow_gamma)
    if dev.enforce_consistency:
        gamma_up, gamma_down = np.abs(gamma_up), np.abs(gamma_down)
    return {"gamma_up": gamma_up, "gamma_down": gamma_down}


class PowStepParams(NamedTuple):
    dw_min_std: float


@njit(cache=True)
def pow_step(params, P, i, j, w, up, states):
    lo = P[SLOT_MIN_BOUND, i, j]
    hi = P[SLOT_MAX_BOUND, i, j]
    span = hi - lo
    if span == 0:
        return w
    if up:
        dw = P[SLOT_DWMIN_UP, i, j] * ((hi - w) / span) ** P[SLOT_GAMMA_UP, i, j]
    else:
        dw = -P[SLOT_DWMIN_DOWN, i, j] * ((w - lo) / span) ** P[SLOT_GAMMA_DOWN, i, j]
    dw = ctoc_noise(dw, params.dw_min_std, states, i, w)
    w = w + dw
    # aihwkit's MAX/MIN macros: a NaN (negative base, fractional exponent) ends at min_bound
    w = w if w > lo else lo
    return w if w < hi else hi


register_device(PowStepDevice, PowStepParams, pow_step)
