"""PiecewiseStepDevice: step sizes interpolated from measured node values over the range."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit

from rpusim.devices.base import (SLOT_DWMIN_DOWN, SLOT_DWMIN_UP, SLOT_MAX_BOUND, SLOT_MIN_BOUND,
                                 PulsedDevice, ctoc_noise, register_device)

__all__ = ["PiecewiseStepDevice"]


@dataclass
class PiecewiseStepDevice(PulsedDevice):
    """Step size interpolated linearly between node values (aihwkit's PiecewiseStepDevice).

    The ``N + 1`` nodes of ``piecewise_up``/``piecewise_down`` sit at equal spacing from the
    element's ``min_bound`` (first node) to its ``max_bound`` (last node), in units of the
    element's ``dwmin_up``/``dwmin_down``. With ``t_s = max((w - min_bound) /
    (max_bound - min_bound) * N, 0)``, ``k = min(floor(t_s), N - 1)`` and
    ``t = min(t_s - k, 1)``::

        up:   w <- w + dwmin_up   * ((1 - t) * up[k]   + t * up[k + 1])   * (1 + dw_min_std * xi)
        down: w <- w - dwmin_down * ((1 - t) * down[k] + t * down[k + 1]) * (1 + dw_min_std * xi)

    then clip to ``[min_bound, max_bound]``. With a single node, or an element whose bounds
    coincide, the step is ``node[0] * dwmin``.

    Hidden parameters: the common ones, and ``persistent_weights`` with write noise.
    Granularity: ``dw_min * piecewise_up[len(piecewise_up) // 2]``.

    Attributes
    ----------
    piecewise_up : list of float
        Relative up-step sizes at the nodes (non-empty, same length as ``piecewise_down``).
    piecewise_down : list of float
        Relative down-step sizes at the nodes.
    write_noise_std : float
        Write noise in units of ``dw_min``: pulses act on a hidden persistent weight and the
        apparent weight of every touched element is redrawn as
        ``persistent + write_noise_std * dw_min * xi``.
    apply_write_noise_on_set : bool
        ``set_weights`` draws write noise on the apparent weights too.
    """

    piecewise_up: list = field(default_factory=lambda: [1])
    piecewise_down: list = field(default_factory=lambda: [1])
    write_noise_std: float = 0.0
    apply_write_noise_on_set: bool = True

    def validate(self) -> None:
        super().validate()
        for name in ("piecewise_up", "piecewise_down"):
            value = getattr(self, name)
            if isinstance(value, (tuple, np.ndarray)):
                # kept as a plain list so that the config stays JSON-safe
                value = value.tolist() if isinstance(value, np.ndarray) else list(value)
                setattr(self, name, value)
            if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
                raise ValueError(f"PiecewiseStepDevice.{name} must be a non-empty list of "
                                 f"numbers, got {value!r}")
            for v in value:
                if (isinstance(v, (bool, np.bool_))
                        or not isinstance(v, (int, float, np.integer, np.floating))
                        or not math.isfinite(v)):
                    raise ValueError(f"PiecewiseStepDevice.{name} must hold finite numbers, "
                                     f"got {v!r}")
        if len(self.piecewise_up) != len(self.piecewise_down):
            raise ValueError("PiecewiseStepDevice.piecewise_up and piecewise_down must have the "
                             f"same length, got {len(self.piecewise_up)} and "
                             f"{len(self.piecewise_down)}")

    def granularity(self, dw_min: float, dtype=np.float64) -> float:
        t = np.dtype(dtype).type
        return float(t(dw_min) * t(self.piecewise_up[len(self.piecewise_up) // 2]))

    def step_params(self, dtype):
        dt = dtype.type
        up = np.asarray(self.piecewise_up, dtype=dtype)
        down = np.asarray(self.piecewise_down, dtype=dtype)
        n = len(up) - 1
        return PiecewiseStepParams(dt(self.dw_min_std), up, down, n, dt(n), dt(0), dt(1))


class PiecewiseStepParams(NamedTuple):
    dw_min_std: float
    up: np.ndarray
    down: np.ndarray
    n_sections: int
    n_sections_f: float
    zero: float
    one: float


@njit(cache=True)
def piecewise_step(params, P, i, j, w, up, states):
    lo = P[SLOT_MIN_BOUND, i, j]
    hi = P[SLOT_MAX_BOUND, i, j]
    if up:
        nodes = params.up
        scale = P[SLOT_DWMIN_UP, i, j]
    else:
        nodes = params.down
        scale = -P[SLOT_DWMIN_DOWN, i, j]
    if params.n_sections <= 0 or hi <= lo:
        dw = nodes[0] * scale
    else:
        ts = max((w - lo) / (hi - lo) * params.n_sections_f, params.zero)
        kf = min(np.floor(ts), params.n_sections_f - params.one)
        t = min(ts - kf, params.one)
        k = int(kf)
        dw = scale * ((params.one - t) * nodes[k] + t * nodes[k + 1])
    dw = ctoc_noise(dw, params.dw_min_std, states, i, w)
    w = w + dw
    w = w if w > lo else lo
    return w if w < hi else hi


register_device(PiecewiseStepDevice, PiecewiseStepParams, piecewise_step)
