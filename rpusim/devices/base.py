"""Common machinery of pulsed devices: the shared config fields, device-to-device sampling,
hidden-parameter layout, whole-matrix operations (decay, diffusion, drift, reset) and the
registry that makes a device model usable by the engine.

A device model is one module that defines
- its config dataclass (a subclass of :class:`PulsedDevice`), with ``extra_hidden_names`` and,
  when it has per-element state of its own, ``sample_extras``;
- a ``NamedTuple`` of scalar parameters returned by the config's ``step_params(dtype)``;
- a numba step function ``step(params, P, i, j, w, up, states) -> new w`` for one pulse;
and calls :func:`register_device` once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
from numba import njit

from rpusim.configs._base import ConfigBase
from rpusim.configs.drift import DriftParameter
from rpusim.kernels.update import register_step

__all__ = ["PulsedDevice", "register_device", "COMMON_HIDDEN_NAMES", "clip_to_bounds",
           "SLOT_MAX_BOUND", "SLOT_MIN_BOUND", "SLOT_DWMIN_UP", "SLOT_DWMIN_DOWN",
           "SLOT_DECAY_SCALES", "SLOT_DIFFUSION_RATES", "SLOT_RESET_BIAS", "SLOT_DRIFT_NU",
           "FIRST_EXTRA_SLOT"]

COMMON_HIDDEN_NAMES = ("max_bound", "min_bound", "dwmin_up", "dwmin_down", "decay_scales",
                       "diffusion_rates", "reset_bias", "drift_nu")
(SLOT_MAX_BOUND, SLOT_MIN_BOUND, SLOT_DWMIN_UP, SLOT_DWMIN_DOWN, SLOT_DECAY_SCALES,
 SLOT_DIFFUSION_RATES, SLOT_RESET_BIAS, SLOT_DRIFT_NU) = range(8)
FIRST_EXTRA_SLOT = 8

_DEVICES: dict[type, tuple[type, object]] = {}


def register_device(config_class: type, params_class: type, step_function) -> None:
    """Make a device model usable everywhere: the engine, the tile, compounds and persistence.

    Parameters
    ----------
    config_class : type
        The device's config dataclass (subclass of :class:`PulsedDevice`).
    params_class : type
        The ``NamedTuple`` class that its ``step_params`` returns.
    step_function : numba dispatcher
        ``step(params, P, i, j, w, up, states) -> new w`` for one pulse, clipped.
    """
    if not issubclass(config_class, PulsedDevice):
        raise TypeError(f"{config_class.__name__} must subclass PulsedDevice")
    _DEVICES[config_class] = (params_class, step_function)
    register_step(params_class, step_function)


def is_registered(config_class: type) -> bool:
    return config_class in _DEVICES


@njit(cache=True, inline="always")
def clip_to_bounds(P, i, j, w):
    """Clip to the element's ``[min_bound, max_bound]`` (both always checked, as aihwkit)."""
    hi = P[SLOT_MAX_BOUND, i, j]
    lo = P[SLOT_MIN_BOUND, i, j]
    if w > hi:
        w = hi
    if w < lo:
        w = lo
    return w


@dataclass
class PulsedDevice(ConfigBase):
    """Fields shared by all pulsed devices (aihwkit's ``PulsedDevice``; Python defaults).

    Attributes
    ----------
    construction_seed : int
        Non-zero: seeds this device's device-to-device draws on its own (independent of the
        tile seed). 0: they come from the tile's generator.
    dw_min, dw_min_dtod, dw_min_dtod_log_normal, dw_min_std : float, float, bool, float
        Mean step, its relative dtod spread (normal, or log-normal), relative ctoc noise.
    w_max, w_max_dtod, w_min, w_min_dtod : float
        Mean bounds and their relative dtod spreads (``w_min <= 0 <= w_max``).
    up_down, up_down_dtod : float
        Systematic up/down asymmetry (> 0 shrinks the down step) and its dtod spread.
    enforce_consistency : bool
        Force positive steps and ``min_bound <= 0 <= max_bound``.
    perfect_bias : bool
        The last column gets ideal steps and 100x bounds.
    corrupt_devices_prob, corrupt_devices_range : float
        Probability that an element is stuck, and the range of stuck values.
    lifetime, lifetime_dtod : float
        Decay lifetime (0: none) and its relative dtod spread.
    diffusion, diffusion_dtod : float
        Diffusion std per step and its relative dtod spread.
    reset, reset_dtod, reset_std : float
        Mean reset value / decay target, its additive dtod spread, ctoc spread of a reset.
    drift : DriftParameter
        Power-law drift (``nu == 0``: off).
    count_pulses : bool
        Count the pulses each element receives (``tile.get_pulse_counters()``).
    """

    extra_hidden_names: ClassVar[tuple[str, ...]] = ()

    construction_seed: int = 0
    corrupt_devices_prob: float = 0.0
    corrupt_devices_range: float = 0.1
    diffusion: float = 0.0
    diffusion_dtod: float = 0.0
    drift: DriftParameter = field(default_factory=DriftParameter)
    dw_min: float = 0.001
    dw_min_dtod: float = 0.3
    dw_min_dtod_log_normal: bool = False
    dw_min_std: float = 0.3
    enforce_consistency: bool = True
    lifetime: float = 0.0
    lifetime_dtod: float = 0.0
    perfect_bias: bool = False
    reset: float = 0.0
    reset_dtod: float = 0.0
    reset_std: float = 0.01
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 0.6
    w_max_dtod: float = 0.3
    w_min: float = -0.6
    w_min_dtod: float = 0.3
    count_pulses: bool = False

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        super().validate()
        self._check_int("construction_seed", lo=0)
        self._check_number("dw_min", lo=0.0, lo_open=True)
        for name in ("dw_min_dtod", "dw_min_std", "w_max_dtod", "w_min_dtod", "up_down_dtod",
                     "lifetime", "lifetime_dtod", "diffusion", "diffusion_dtod", "reset_dtod",
                     "reset_std", "corrupt_devices_range"):
            self._check_number(name, lo=0.0)
        self._check_number("corrupt_devices_prob", lo=0.0, hi=1.0)
        for name in ("up_down", "reset"):
            self._check_number(name)
        self._check_number("w_max", lo=0.0)
        self._check_number("w_min", hi=0.0)
        for name in ("dw_min_dtod_log_normal", "enforce_consistency", "perfect_bias",
                     "count_pulses"):
            self._check_bool(name)
        if not isinstance(self.drift, DriftParameter):
            raise TypeError(f"{type(self).__name__}.drift must be a DriftParameter, "
                            f"got {self.drift!r}")
        if "write_noise_std" in {f.name for f in dataclasses.fields(self)}:
            self._check_number("write_noise_std", lo=0.0)
            self._check_bool("apply_write_noise_on_set")
        if not is_registered(type(self)):
            raise TypeError(f"{type(self).__name__} is not a registered device model "
                            "(call rpusim.devices.register_device)")

    # -- model interface ----------------------------------------------------------------------
    def uses_write_noise(self) -> bool:
        return getattr(self, "write_noise_std", 0.0) > 0

    def granularity(self, dw_min: float) -> float:
        """Weight granularity ``g`` used by the pulse generator (update spec §4)."""
        return dw_min

    def hidden_parameter_names(self) -> list[str]:
        names = list(COMMON_HIDDEN_NAMES)
        if self.uses_write_noise():
            names.append("persistent_weights")
        return names + list(self.extra_hidden_names)

    def sample_extras(self, gen: np.random.Generator, state: dict[str, np.ndarray],
                      shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """Device-specific dtod sampling after the common one; may adjust ``state`` in place.

        Returns the extra hidden parameters in ``extra_hidden_names`` order (float64 arrays).
        """
        return {}

    def step_params(self, dtype) -> NamedTuple:
        """The scalar parameters of the step function, cast to the tile dtype."""
        raise TypeError(f"{type(self).__name__} defines no step_params")

    def params_class(self) -> type:
        return _DEVICES[type(self)][0]


def sample_common(dev: PulsedDevice, gen: np.random.Generator,
                  shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Device-to-device sampling shared by all pulsed devices (devices spec §3), in float64."""
    xi = lambda: gen.standard_normal(shape)  # noqa: E731
    b_max = dev.w_max * (1 + dev.w_max_dtod * xi())
    b_min = dev.w_min * (1 + dev.w_min_dtod * xi())
    z = xi()
    gain = np.exp(dev.dw_min_dtod * z) if dev.dw_min_dtod_log_normal else 1 + dev.dw_min_dtod * z
    r = dev.up_down_dtod * xi()
    up_bias = min(dev.up_down, 0.0)
    down_bias = -max(dev.up_down, 0.0)
    dw_up = (gain + up_bias + r) * dev.dw_min
    dw_down = (gain + down_bias - r) * dev.dw_min
    if dev.enforce_consistency:
        dw_up, dw_down = np.abs(dw_up), np.abs(dw_down)
        swap = b_min > b_max
        b_max, b_min = np.where(swap, b_min, b_max), np.where(swap, b_max, b_min)
        b_max, b_min = np.abs(b_max), -np.abs(b_min)
    else:
        off = b_min > b_max
        mid = (b_min + b_max) / 2
        b_max, b_min = np.where(off, mid, b_max), np.where(off, mid, b_min)
    u = gen.random(shape)
    stuck = dev.corrupt_devices_prob > u
    if stuck.any():
        rng_ = abs(dev.corrupt_devices_range)
        lo = np.maximum(np.minimum(b_max, b_min), -rng_)
        hi = np.minimum(np.maximum(b_max, b_min), rng_)
        v = lo + (hi - lo) * gen.random(shape)
        b_max, b_min = np.where(stuck, v, b_max), np.where(stuck, v, b_min)
        dw_up, dw_down = np.where(stuck, 0.0, dw_up), np.where(stuck, 0.0, dw_down)
    if dev.perfect_bias:
        dw_up[:, -1] = dw_down[:, -1] = dev.dw_min
        b_min[:, -1] = 100 * dev.w_min
        b_max[:, -1] = 100 * dev.w_max
    diffusion = np.abs(dev.diffusion * (1 + dev.diffusion_dtod * xi()))
    reset_bias = dev.reset + dev.reset_dtod * xi()
    if dev.lifetime > 0:
        tau = dev.lifetime * (1 + dev.lifetime_dtod * xi())
        with np.errstate(divide="ignore"):
            decay = np.where(tau > 1, 1 - 1 / np.where(tau > 1, tau, 1.0), 0.0)
    else:
        decay = np.ones(shape)
    if dev.drift.nu != 0:
        nu = dev.drift.nu + dev.drift.nu_dtod * dev.drift.nu * xi()
    else:
        nu = np.zeros(shape)
    return {"max_bound": b_max, "min_bound": b_min, "dwmin_up": dw_up, "dwmin_down": dw_down,
            "decay_scales": decay, "diffusion_rates": diffusion, "reset_bias": reset_bias,
            "drift_nu": nu}
