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
from rpusim.kernels.numeric import cast_like
from rpusim.kernels.rng import normal
from rpusim.kernels.update import register_step

__all__ = ["PulsedDevice", "register_device", "sample_common", "COMMON_HIDDEN_NAMES",
           "clip_to_bounds", "cast_like", "ctoc_noise", "gauss", "SLOT_MAX_BOUND", "SLOT_MIN_BOUND",
           "SLOT_DWMIN_UP", "SLOT_DWMIN_DOWN", "SLOT_DECAY_SCALES", "SLOT_DIFFUSION_RATES",
           "SLOT_RESET_BIAS", "SLOT_DRIFT_NU", "FIRST_EXTRA_SLOT"]

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


def _registration(config_class: type) -> tuple[type, object] | None:
    """The ``(params class, step)`` of a device model, or ``None``.

    A subclass of a registered device that adds no field (it only changes defaults, as the
    presets do) is the same model as its registered ancestor; one that adds fields needs its
    own registration, else its new fields would be silently ignored.
    """
    entry = _DEVICES.get(config_class)
    if entry is not None:
        return entry
    base = next((cls for cls in config_class.__mro__[1:] if cls in _DEVICES), None)
    if base is None or _field_names(config_class) != _field_names(base):
        return None
    return _DEVICES[base]


def _field_names(config_class: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


def is_registered(config_class: type) -> bool:
    return _registration(config_class) is not None


@njit(cache=True, inline="always")
def ctoc_noise(dw, std, states, i, w):
    """``dw (1 + std xi)``: aihwkit's multiplicative cycle-to-cycle noise of one pulse, in the
    dtype of ``w`` (``std <= 0``: ``dw``, and no draw)."""
    if std > 0:
        return dw * cast_like(1.0 + std * normal(states, i), w)
    return dw


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

    Device-to-device (dtod) values are drawn once per element when the tile is built; their
    results are the hidden parameters (``max_bound``, ``dwmin_up``, ...). ``xi`` is a standard
    normal draw.

    Attributes
    ----------
    construction_seed : int
        Non-zero: seeds this device's dtod draws on its own (independent of the tile seed).
        0: they come from the tile's generator.
    corrupt_devices_prob : float
        Probability that an element is stuck: both bounds set to one value drawn uniformly in
        its bound range limited to ``+-corrupt_devices_range``, both steps 0.
    corrupt_devices_range : float
        Range around 0 of the stuck values.
    diffusion : float
        Std of the diffusion step ``w += diffusion_rate * xi`` (``post_update_step``).
    diffusion_dtod : float
        Relative dtod spread: ``diffusion_rate = |diffusion * (1 + diffusion_dtod * xi)|``.
    drift : DriftParameter
        Power-law drift applied by ``drift_weights`` (``nu == 0``: off).
    dw_min : float
        Mean step size per pulse.
    dw_min_dtod : float
        Relative dtod spread of the step gain ``1 + dw_min_dtod * xi`` shared by up and down.
    dw_min_dtod_log_normal : bool
        Draw the gain as ``exp(dw_min_dtod * xi)`` (no mean correction, as aihwkit).
    dw_min_std : float
        Cycle-to-cycle noise of every pulse, relative to the element's step.
    enforce_consistency : bool
        Make steps positive and bounds satisfy ``min_bound <= 0 <= max_bound``; otherwise an
        element with ``min_bound > max_bound`` gets both at their midpoint (turned off).
    lifetime : float
        Decay lifetime in optimizer steps (0: no decay); ``decay_scales = 1 - 1/tau``, and 0 if
        the sampled ``tau <= 1`` (the weight snaps to the reset bias).
    lifetime_dtod : float
        Relative dtod spread of the lifetime.
    perfect_bias : bool
        The last column gets ``dwmin_up = dwmin_down = dw_min`` and 100x bounds.
    reset : float
        Mean reset value and decay target (``reset_bias``); may be negative (aihwkit 1.2.0).
    reset_dtod : float
        **Additive** dtod std of ``reset_bias`` (aihwkit's docstring says relative; its code,
        which rpusim follows, adds it).
    reset_std : float
        Cycle-to-cycle std of the value a reset writes.
    up_down : float
        Systematic up/down asymmetry in units of ``dw_min``: > 0 shrinks the down step
        (``dwmin_down = (1 - up_down) dw_min``), < 0 shrinks the up step.
    up_down_dtod : float
        Dtod spread of the asymmetry (added to the up step and subtracted from the down step).
    w_max : float
        Mean upper bound (>= 0).
    w_max_dtod : float
        Relative dtod spread of the upper bound.
    w_min : float
        Mean lower bound (<= 0).
    w_min_dtod : float
        Relative dtod spread of the lower bound.
    count_pulses : bool
        Count the pulses each element receives (``tile.get_pulse_counters()``).
    """

    extra_hidden_names: ClassVar[tuple[str, ...]] = ()
    # Fields a re-parameterised device derives from its own (SoftBoundsPmaxDevice): their
    # user values are ignored, so they are not validated either.
    derived_fields: ClassVar[tuple[str, ...]] = ()

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
        skip = set(self.derived_fields)
        checks = [("dw_min", {"lo": 0.0, "lo_open": True}), ("up_down", {}), ("reset", {}),
                  ("w_max", {"lo": 0.0}), ("w_min", {"hi": 0.0}),
                  ("corrupt_devices_prob", {"lo": 0.0, "hi": 1.0})]
        checks += [(name, {"lo": 0.0}) for name in (
            "dw_min_dtod", "dw_min_std", "w_max_dtod", "w_min_dtod", "up_down_dtod", "lifetime",
            "lifetime_dtod", "diffusion", "diffusion_dtod", "reset_dtod", "reset_std",
            "corrupt_devices_range")]
        self._check_int("construction_seed", lo=0)
        for name, bounds in checks:
            if name not in skip:
                self._check_number(name, **bounds)
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
    def resolved_device(self) -> "PulsedDevice":
        """The device whose fields drive the physics (itself, unless re-parameterised)."""
        return self

    def uses_write_noise(self) -> bool:
        """Whether pulses act on a hidden persistent weight (``write_noise_std > 0``)."""
        return getattr(self, "write_noise_std", 0.0) > 0

    def granularity(self, dw_min: float, dtype=np.float64) -> float:
        """Weight granularity ``g`` used by the pulse generator (update spec §4), computed as
        aihwkit does in the tile dtype ``dtype`` (its ``calcWeightGranularity``): a value one
        ulp off moves deterministic pulse counts across rounding ties."""
        return float(np.dtype(dtype).type(dw_min))

    def hidden_parameter_names(self) -> list[str]:
        """Hidden parameter names in aihwkit's order: common ones, ``persistent_weights`` with
        write noise, then the model's extras."""
        names = list(COMMON_HIDDEN_NAMES)
        if self.uses_write_noise():
            names.append("persistent_weights")
        return names + list(self.extra_hidden_names)

    def sample_extras(self, gen: np.random.Generator, state: dict[str, np.ndarray],
                      shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """Device-specific dtod sampling after the common one; may adjust ``state`` in place.

        ``state`` holds the common hidden parameters in the tile dtype. Returns the extra
        hidden parameters (arrays of ``shape``; cast to the tile dtype afterwards).
        """
        return {}

    def step_params(self, dtype) -> NamedTuple:
        """The scalar parameters of the step function, cast to the tile dtype."""
        raise TypeError(f"{type(self).__name__} defines no step_params")

    def params_class(self) -> type:
        """The parameter ``NamedTuple`` class registered for this device model."""
        return _registration(type(self))[0]


def gauss(gen: np.random.Generator, shape, dtype) -> np.ndarray:
    """Standard normal draws in ``dtype`` (aihwkit draws its dtod samples in float32)."""
    return gen.standard_normal(shape).astype(dtype)


def sample_common(dev: PulsedDevice, gen: np.random.Generator, shape: tuple[int, int],
                  dtype=np.float64) -> dict[str, np.ndarray]:
    """Device-to-device sampling shared by all pulsed devices (devices spec §3).

    Computed in ``dtype`` with aihwkit's order of operations, so that a float32 tile without
    dtod spread gets exactly aihwkit's float32 hidden parameters.
    """
    dt = np.dtype(dtype).type

    def xi():
        return gauss(gen, shape, dt)

    one = dt(1)
    dw_min = dt(dev.dw_min)
    b_max = dt(dev.w_max) * (one + dt(dev.w_max_dtod) * xi())
    b_min = dt(dev.w_min) * (one + dt(dev.w_min_dtod) * xi())
    z = dt(dev.dw_min_dtod) * xi()
    gain = np.exp(z) if dev.dw_min_dtod_log_normal else one + z
    r = dt(dev.up_down_dtod) * xi()
    up_bias = dt(min(dev.up_down, 0.0))
    down_bias = dt(-max(dev.up_down, 0.0))
    dw_up = (up_bias + gain + r) * dw_min
    dw_down = (down_bias + gain - r) * dw_min
    if dev.enforce_consistency:
        dw_up, dw_down = np.abs(dw_up), np.abs(dw_down)
        swap = b_min > b_max
        b_max, b_min = np.where(swap, b_min, b_max), np.where(swap, b_max, b_min)
        b_max, b_min = np.abs(b_max), -np.abs(b_min)
    else:
        off = b_min > b_max
        mid = b_max + (b_min - b_max) / dt(2)
        b_max, b_min = np.where(off, mid, b_max), np.where(off, mid, b_min)
    u = gen.random(shape)
    stuck = dev.corrupt_devices_prob > u
    if stuck.any():
        span = dt(abs(dev.corrupt_devices_range))
        lo = np.maximum(np.minimum(b_max, b_min), -span)
        hi = np.minimum(np.maximum(b_max, b_min), span)
        v = lo + (hi - lo) * gen.random(shape).astype(dt)
        b_max, b_min = np.where(stuck, v, b_max), np.where(stuck, v, b_min)
        dw_up, dw_down = np.where(stuck, dt(0), dw_up), np.where(stuck, dt(0), dw_down)
    if dev.perfect_bias:
        dw_up[:, -1] = dw_down[:, -1] = dw_min
        b_min[:, -1] = dt(100) * dt(dev.w_min)
        b_max[:, -1] = dt(100) * dt(dev.w_max)
    diffusion = np.abs(dt(dev.diffusion) * (one + dt(dev.diffusion_dtod) * xi()))
    reset_bias = dt(dev.reset) + dt(dev.reset_dtod) * xi()
    if dev.lifetime > 0:
        tau = dt(dev.lifetime) * (one + dt(dev.lifetime_dtod) * xi())
        safe = np.where(tau > one, tau, one)
        decay = np.where(tau > one, one - one / safe, dt(0))
    else:
        decay = np.ones(shape, dt)
    if dev.drift.nu != 0:
        nu = dt(dev.drift.nu) + dt(dev.drift.nu_dtod) * dt(dev.drift.nu) * xi()
    else:
        nu = np.zeros(shape, dt)
    return {"max_bound": b_max, "min_bound": b_min, "dwmin_up": dw_up, "dwmin_down": dw_down,
            "decay_scales": decay, "diffusion_rates": diffusion, "reset_bias": reset_bias,
            "drift_nu": nu}
