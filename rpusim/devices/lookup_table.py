"""LookupTableDevice: a measured device, given as its pulse response curves.

Built through the public device mechanism (:func:`rpusim.devices.register_device`), like any
custom model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
from numba import njit

from rpusim.devices.base import (SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, SLOT_MAX_BOUND, SLOT_MIN_BOUND,
                                 PulsedDevice, cast_like, clip_to_bounds, ctoc_noise,
                                 register_device)

__all__ = ["LookupTableDevice"]

_DERIVED = ("w_max", "w_min", "dw_min")


def _soft_bounds_curve(start: float, stop: float, step: float, n: int) -> list:
    """``n`` weights of a soft-bounds response from ``start`` toward the bound ``stop``."""
    w = [start]
    for _ in range(n - 1):
        w.append(w[-1] + step * (1 - w[-1] / stop))
    return w


@dataclass
class LookupTableDevice(PulsedDevice):
    """A measured device: step size vs weight interpolated from measured pulse responses.

    ``up_curve`` holds the weights after successive up pulses (non-decreasing, from low to
    high), ``down_curve`` the weights after successive down pulses (non-increasing). Each
    curve gives the step size of its direction as a function of the weight: the ``k``-th
    measured step ``|c[k+1] - c[k]|`` belongs to the weight ``c[k]`` it started from. Between
    these nodes the step is interpolated linearly in the weight; below the first and above the
    last node it is the step of the nearest node (the bounds then stop the weight).

    Curves are in weight units: map measured conductances to weights first (for example
    ``w = (G - G_mid) / (G_max - G_min) * 2 * w_range``). With ``enforce_consistency`` (the
    default) the curves' range must contain 0, as every pulsed device's bounds must.

    Derived values (the fields ``w_max``, ``w_min`` and ``dw_min`` are ignored):

    - bounds: ``w_max`` = largest, ``w_min`` = smallest value of both curves;
    - granularity ``dw_min`` = the mean step over both curves,
      ``(|up range| + |down range|) / (len(up_curve) - 1 + len(down_curve) - 1)``.

    Device-to-device spread goes through the common fields: each element's own
    ``[min_bound, max_bound]`` (spread ``w_max_dtod``/``w_min_dtod``) is mapped linearly onto the
    curves' range, and its steps are scaled by ``dwmin_up / dw_min`` and
    ``dwmin_down / dw_min`` (gain spread ``dw_min_dtod``, asymmetry ``up_down`` and
    ``up_down_dtod``). With ``t = (w - min_bound) / (max_bound - min_bound)``::

        up:   w <- w + dwmin_up   * s_up(t)   / dw_min * (1 + dw_min_std * xi)
        down: w <- w - dwmin_down * s_down(t) / dw_min * (1 + dw_min_std * xi)

    then clip to ``[min_bound, max_bound]``; ``s_up``/``s_down`` are the measured steps at the
    weight ``w_min + t (w_max - w_min)``. Without spread and noise an element reproduces the
    measured curves (up to float rounding). Hidden parameters: the common ones.

    Attributes
    ----------
    up_curve : list of float
        Weights after successive up pulses: at least 2 finite values, non-decreasing, not all
        equal.
    down_curve : list of float
        Weights after successive down pulses: at least 2 finite values, non-increasing, not
        all equal.
    """

    derived_fields: ClassVar[tuple[str, ...]] = _DERIVED

    up_curve: list = field(default_factory=lambda: _soft_bounds_curve(-0.6, 0.6, 0.01, 200))
    down_curve: list = field(default_factory=lambda: _soft_bounds_curve(0.6, -0.6, -0.01, 200))

    def validate(self) -> None:
        super().validate()
        for name, sign in (("up_curve", 1.0), ("down_curve", -1.0)):
            value = getattr(self, name)
            if isinstance(value, (tuple, np.ndarray)):
                # kept as a plain list so that the config stays JSON-safe
                value = value.tolist() if isinstance(value, np.ndarray) else list(value)
                setattr(self, name, value)
            if not isinstance(value, list) or len(value) < 2:
                raise ValueError(f"LookupTableDevice.{name} must be a list of at least 2 "
                                 f"weights, got {value!r:.200}")
            for v in value:
                if (isinstance(v, (bool, np.bool_))
                        or not isinstance(v, (int, float, np.integer, np.floating))
                        or not math.isfinite(v)):
                    raise ValueError(f"LookupTableDevice.{name} must hold finite numbers, "
                                     f"got {v!r}")
            steps = np.diff(np.asarray(value, dtype=np.float64)) * sign
            order = "non-decreasing" if sign > 0 else "non-increasing"
            if np.any(steps < 0):
                k = int(np.argmax(steps < 0))
                raise ValueError(f"LookupTableDevice.{name} must be {order} (weights after "
                                 f"successive {name[:-6]} pulses), but value {k + 1} "
                                 f"({value[k + 1]!r}) follows {value[k]!r}")
            if not np.any(steps > 0):
                raise ValueError(f"LookupTableDevice.{name} must change the weight (its "
                                 f"values are all {value[0]!r})")
        lo, hi = self._range()
        if self.enforce_consistency and not lo <= 0.0 <= hi:
            raise ValueError("LookupTableDevice curves must span 0 (weights, not "
                             f"conductances) with enforce_consistency=True, got range "
                             f"[{lo!r}, {hi!r}]")

    def _range(self) -> tuple[float, float]:
        values = list(self.up_curve) + list(self.down_curve)
        return float(min(values)), float(max(values))

    def derived_parameters(self) -> dict[str, float]:
        """The bounds and granularity the curves define: ``w_max``, ``w_min``, ``dw_min``."""
        up = np.asarray(self.up_curve, dtype=np.float64)
        down = np.asarray(self.down_curve, dtype=np.float64)
        lo, hi = self._range()
        mean_step = ((up[-1] - up[0]) + (down[0] - down[-1])) / (len(up) + len(down) - 2)
        return {"w_max": hi, "w_min": lo, "dw_min": float(mean_step)}

    def resolved_device(self) -> "LookupTableDevice":
        return dataclasses.replace(self, **self.derived_parameters())

    def step_params(self, dtype):
        d = self.derived_parameters()
        span = d["w_max"] - d["w_min"]
        tables = []
        for curve in (self.up_curve, self.down_curve):
            c = np.asarray(curve, dtype=np.float64)
            start, step = c[:-1], np.abs(np.diff(c))
            order = np.argsort(start, kind="stable")
            # node positions on [0, 1] over the curves' range; steps relative to dw_min
            tables += [np.ascontiguousarray((start[order] - d["w_min"]) / span),
                       np.ascontiguousarray(step[order] / d["dw_min"])]
        return LookupTableParams(dtype.type(self.dw_min_std), *tables)


class LookupTableParams(NamedTuple):
    dw_min_std: float
    up_t: np.ndarray
    up_rel: np.ndarray
    down_t: np.ndarray
    down_rel: np.ndarray


@njit(cache=True, inline="always")
def _interp(t, nodes, values):
    """Linear interpolation of ``values`` at ``t`` over sorted ``nodes``, constant outside."""
    n = nodes.shape[0]
    if t <= nodes[0]:
        return values[0]
    if t >= nodes[n - 1]:
        return values[n - 1]
    lo = 0
    hi = n - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if nodes[mid] <= t:
            lo = mid
        else:
            hi = mid
    gap = nodes[hi] - nodes[lo]
    if gap <= 0.0:
        return values[hi]
    f = (t - nodes[lo]) / gap
    return values[lo] + f * (values[hi] - values[lo])


@njit(cache=True)
def lookup_table_step(params, P, i, j, w, up, states):
    lo = P[SLOT_MIN_BOUND, i, j]
    hi = P[SLOT_MAX_BOUND, i, j]
    t = (float(w) - float(lo)) / (float(hi) - float(lo)) if hi > lo else 0.0
    if up:
        dw = P[SLOT_DWMIN_UP, i, j] * cast_like(_interp(t, params.up_t, params.up_rel), w)
    else:
        dw = -P[SLOT_DWMIN_DOWN, i, j] * cast_like(_interp(t, params.down_t, params.down_rel), w)
    dw = ctoc_noise(dw, params.dw_min_std, states, i, w)
    return clip_to_bounds(P, i, j, w + dw)


register_device(LookupTableDevice, LookupTableParams, lookup_table_step)
