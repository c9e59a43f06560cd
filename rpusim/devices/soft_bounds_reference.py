"""SoftBoundsReferenceDevice: soft bounds read differentially against a fixed reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
from numba import njit

from rpusim.devices.base import (FIRST_EXTRA_SLOT, SLOT_DWMIN_DOWN, SLOT_DWMIN_UP,
                                 SLOT_MAX_BOUND, SLOT_MIN_BOUND, PulsedDevice, cast_like, gauss,
                                 register_device)
from rpusim.kernels.rng import normal

__all__ = ["SoftBoundsReferenceDevice"]

SLOT_REFERENCE = FIRST_EXTRA_SLOT


@dataclass
class SoftBoundsReferenceDevice(PulsedDevice):
    """Soft-bounds conductance ``c`` read as ``w = c - reference`` (aihwkit's
    SoftBoundsReferenceDevice).

    Each pulse acts on the conductance ``c = w + reference``::

        up:   c <- c + dwmin_up   * (1 - c / max_bound) * (1 + dw_min_std * xi)   (mult_noise)
              c <- c + dwmin_up   * (1 - c / max_bound + dw_min_std * xi)         (additive)
        down: c <- c - dwmin_down * (1 - c / min_bound) * (1 + dw_min_std * xi)   (same forms)

    (the ``c / bound`` term is dropped when ``max_bound <= 0``, resp. ``min_bound >= 0``),
    then ``c`` is clipped to ``[min_bound, max_bound]`` and ``w = c - reference`` is stored.

    Construction, after the common sampling: where ``max_bound > 0 > min_bound`` the bounds
    are divided by ``|1 + slope_up_dtod * xi|`` and ``|1 + slope_down_dtod * xi|`` (a spread
    of the soft-bounds slopes); ``reference = reference_mean + reference_std * xi``; with
    ``subtract_symmetry_point`` the symmetry point
    ``sp = (dwmin_up - dwmin_down) / (dwmin_up / max_bound - dwmin_down / min_bound)``
    is added to the reference **and** to ``reset_bias``.

    aihwkit behaviour kept on purpose (replicated, see the spec's verdict table):
    ``set_weights``, decay, diffusion, drift, reset and clipping act on the stored ``w`` with
    the conductance bounds, i.e. they clip ``w`` (not ``w + reference``) to
    ``[min_bound, max_bound]`` and decay ``w`` toward ``reset_bias``. A stored weight can thus
    correspond to a conductance outside the bounds until the next pulse clips it; with
    ``subtract_symmetry_point`` decay drives the conductance to ``reset + 2 * sp``.

    Hidden parameters: the common ones, ``persistent_weights`` with write noise, then
    ``reference``. Granularity: ``dw_min``.

    Attributes
    ----------
    mult_noise : bool
        Multiplicative cycle-to-cycle noise (True) or additive noise in units of the step
        (False, the default here).
    write_noise_std : float
        Write noise in units of ``dw_min``: pulses act on a hidden persistent weight and the
        apparent weight of every touched element is redrawn as
        ``persistent + write_noise_std * dw_min * xi``.
    apply_write_noise_on_set : bool
        ``set_weights`` draws write noise on the apparent weights too.
    slope_up_dtod : float
        Relative device-to-device spread of the up slope ``dwmin_up / max_bound`` (applied by
        rescaling ``max_bound``); adds to the spread that ``w_max_dtod`` already gives.
    slope_down_dtod : float
        Relative device-to-device spread of the down slope (rescales ``min_bound``).
    reference_mean : float
        Mean of the reference conductance subtracted on read.
    reference_std : float
        Device-to-device std of the reference.
    subtract_symmetry_point : bool
        Add each element's symmetry point (where up and down steps are equal) to its
        reference, so that the symmetry point reads as ``w = 0``.
    """

    extra_hidden_names: ClassVar[tuple[str, ...]] = ("reference",)

    mult_noise: bool = False
    write_noise_std: float = 0.0
    apply_write_noise_on_set: bool = True
    slope_up_dtod: float = 0.0
    slope_down_dtod: float = 0.0
    reference_mean: float = 0.0
    reference_std: float = 0.0
    subtract_symmetry_point: bool = False

    def validate(self) -> None:
        super().validate()
        for name in ("mult_noise", "subtract_symmetry_point"):
            self._check_bool(name)
        for name in ("slope_up_dtod", "slope_down_dtod", "reference_std"):
            self._check_number(name, lo=0.0)
        self._check_number("reference_mean")

    def sample_extras(self, gen, state, shape):
        dt = state["max_bound"].dtype.type
        b_max, b_min = state["max_bound"], state["min_bound"]
        up, down = state["dwmin_up"], state["dwmin_down"]
        factor_down = np.abs(dt(1) + dt(self.slope_down_dtod) * gauss(gen, shape, dt))
        factor_up = np.abs(dt(1) + dt(self.slope_up_dtod) * gauss(gen, shape, dt))
        inside = (b_max > 0) & (b_min < 0)
        # aihwkit's order: scale the slope dwmin / bound, then divide back (exact in its dtype)
        steps = inside & (up != 0) & (down != 0)
        one = dt(1)
        slope_down = -down / np.where(steps, b_min, -one) * factor_down
        slope_up = up / np.where(steps, b_max, one) * factor_up
        b_min = np.where(steps, -down / np.where(steps, slope_down, one), b_min / factor_down)
        b_max = np.where(steps, up / np.where(steps, slope_up, one), b_max / factor_up)
        b_min = np.where(inside, b_min, state["min_bound"])
        b_max = np.where(inside, b_max, state["max_bound"])
        state["max_bound"], state["min_bound"] = b_max, b_min
        reference = dt(self.reference_mean) + dt(self.reference_std) * gauss(gen, shape, dt)
        if self.subtract_symmetry_point:
            inside = (b_max > 0) & (b_min < 0)
            safe_max = np.where(inside, b_max, one)
            safe_min = np.where(inside, b_min, -one)
            denom = up / safe_max - down / safe_min
            sp = np.where(inside & (denom != 0),
                          (up - down) / np.where(denom != 0, denom, one), dt(0))
            reference = reference + sp
            state["reset_bias"] = state["reset_bias"] + sp
        return {"reference": reference}

    def step_params(self, dtype):
        dt = dtype.type
        return SoftBoundsReferenceParams(dt(self.dw_min_std), bool(self.mult_noise), dt(0),
                                         dt(1))


class SoftBoundsReferenceParams(NamedTuple):
    dw_min_std: float
    mult_noise: bool
    zero: float
    one: float


@njit(cache=True)
def soft_bounds_reference_step(params, P, i, j, w, up, states):
    ref = P[SLOT_REFERENCE, i, j]
    lo = P[SLOT_MIN_BOUND, i, j]
    hi = P[SLOT_MAX_BOUND, i, j]
    c = w + ref
    if up:
        scale = P[SLOT_DWMIN_UP, i, j]
        a = c / hi if hi > 0 else params.zero
    else:
        scale = -P[SLOT_DWMIN_DOWN, i, j]
        a = c / lo if lo < 0 else params.zero
    dc = scale * (params.one - a)
    if params.dw_min_std > 0:
        xi = cast_like(params.dw_min_std * normal(states, i), w)
        if params.mult_noise:
            dc = dc * (params.one + xi)
        else:
            dc = scale * (params.one - a + xi)
    c = c + dc
    c = c if c > lo else lo
    c = c if c < hi else hi
    return c - ref


register_device(SoftBoundsReferenceDevice, SoftBoundsReferenceParams,
                soft_bounds_reference_step)
