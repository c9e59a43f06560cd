"""Runtime device models: the per-element state of one device array and what acts on it.

:class:`PulsedDeviceModel` serves every registered pulsed device; :class:`FloatDeviceModel`
serves ``IdealDevice``, ``FloatingPointDevice`` and any device under ``PulseType.NONE``.
Both keep the apparent weight in ``self.w`` (what the forward pass sees).
"""

from __future__ import annotations

import numpy as np

from rpusim.configs.enums import PulseType
from rpusim.configs.update import UpdateParameters
from rpusim.devices.base import (COMMON_HIDDEN_NAMES, FIRST_EXTRA_SLOT, SLOT_DECAY_SCALES,
                                 SLOT_DIFFUSION_RATES, SLOT_DRIFT_NU, SLOT_DWMIN_DOWN,
                                 SLOT_DWMIN_UP, SLOT_MAX_BOUND, SLOT_MIN_BOUND, SLOT_RESET_BIAS,
                                 PulsedDevice, sample_common)
from rpusim.kernels import update as engine
from rpusim.rng import TileRNG

__all__ = ["PulsedDeviceModel", "FloatDeviceModel", "make_device_model",
           "register_model_builder"]

# enum member read once: a member lookup on the class costs ~0.2 us, too much per update
_NONE = PulseType.NONE
_NONE_WITH_DEVICE = PulseType.NONE_WITH_DEVICE


def _columns(start: int, num: int, size: int) -> np.ndarray:
    """Columns ``start ... start+num-1`` modulo ``size``; ``num < 0`` means all."""
    if num < 0 or num >= size:
        return np.arange(size)
    return (start + np.arange(num)) % size


class _DriftState:
    """State of power-law drift, created at the first ``drift_weights`` call (devices §7)."""

    def __init__(self, w: np.ndarray):
        self.t = 0.0
        self.t_ij = np.zeros(w.shape)
        self.w0 = w.astype(np.float64)
        self.w_prev = w.astype(np.float64)

    def as_dict(self) -> dict:
        return {"t": np.array(self.t), "t_ij": self.t_ij, "w0": self.w0, "w_prev": self.w_prev}

    @classmethod
    def from_dict(cls, d: dict) -> "_DriftState":
        s = cls.__new__(cls)
        s.t = float(d["t"])
        s.t_ij, s.w0, s.w_prev = (np.array(d[k], dtype=np.float64) for k in ("t_ij", "w0",
                                                                              "w_prev"))
        return s


def _drift_step(state: _DriftState, w: np.ndarray, nu: np.ndarray, drift, delta_t: float,
                gen: np.random.Generator) -> np.ndarray:
    """One drift call on the weights ``w`` (float64 result, before bounds)."""
    state.t += delta_t / drift.t_0
    changed = np.abs(state.w_prev - w) > drift.reset_tol
    state.t_ij = np.where(changed, state.t, state.t_ij)
    state.w0 = np.where(changed, w, state.w0)
    nu_eff = np.asarray(nu, dtype=np.float64)
    if getattr(drift, "nu_std", 0.0) > 0:
        nu_eff = nu_eff * (1 + drift.nu_std * gen.standard_normal(w.shape))
    nu_k = getattr(drift, "nu_k", 0.0)
    if nu_k != 0:
        g = (w - drift.w_offset) / drift.wg_ratio + drift.g_offset
        with np.errstate(divide="ignore", invalid="ignore"):
            nu_eff = nu_eff - nu_k * np.log(g) + nu_k * drift.log_g0
    f = np.maximum(state.t - state.t_ij, 1.0) ** (-nu_eff)
    a = getattr(drift, "g_offset", 0.0) * getattr(drift, "wg_ratio", 1.0) + getattr(
        drift, "w_offset", 0.0)
    if abs(a) < drift.reset_tol:
        a = 0.0
    out = np.where(changed, w, state.w0 * f + a * (f - 1))
    w_noise = getattr(drift, "w_noise_std", 0.0)
    if w_noise > 0:
        out = out + w_noise * gen.standard_normal(w.shape)
    return out


class PulsedDeviceModel:
    """One array of a pulsed device model: apparent/persistent weights and per-element state.

    ``P[k]`` holds the hidden parameter of slot ``k`` (common names, then extras);
    ``persistent_weights`` lives in ``wp`` when write noise is on.
    """

    def __init__(self, device: PulsedDevice, out_size: int, in_size: int, dtype,
                 rng: TileRNG):
        self.device = device
        self.dtype = np.dtype(dtype)
        self.rng = rng
        shape = (out_size, in_size)
        # a re-parameterised config (SoftBoundsPmaxDevice) samples and steps as the device
        # it stands for; ``self.device`` stays the user's config
        physics = device.resolved_device()
        gen = (np.random.Generator(np.random.PCG64(device.construction_seed))
               if device.construction_seed else rng.generator)
        state = sample_common(physics, gen, shape, self.dtype)
        extras = physics.sample_extras(gen, state, shape)
        slots = [state[n] for n in COMMON_HIDDEN_NAMES] + [extras[n] for n in
                                                           physics.extra_hidden_names]
        self.P = np.ascontiguousarray(np.stack(slots).astype(self.dtype))
        self.w = np.zeros(shape, self.dtype)
        # fixed at construction like the layout of ``wp``, and read once per update
        self._write_noise = device.uses_write_noise()
        self.wp = np.zeros(shape if self._write_noise else (1, 1), self.dtype)
        self.dw_min = float(physics.dw_min)
        self.params = physics.step_params(self.dtype)
        self.counters = np.zeros(shape, np.int64) if device.count_pulses else None
        self.drift_state: _DriftState | None = None

    # -- layout -------------------------------------------------------------------------------
    @property
    def write_noise(self) -> bool:
        return self._write_noise

    @property
    def wn_sigma(self) -> float:
        return float(self.device.write_noise_std) * self.dw_min if self._write_noise else 0.0

    # (dw_min, granularity) of the last computation: every update reads it, and the built-in
    # formulas round in the tile dtype (C's powf for some), a microsecond a call
    _granularity_memo = None

    @property
    def granularity(self) -> float:
        memo = self._granularity_memo
        if memo is None or memo[0] != self.dw_min:
            memo = self._granularity_memo = (self.dw_min,
                                             self.device.granularity(self.dw_min, self.dtype))
        return memo[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.w.shape

    def _stored(self) -> np.ndarray:
        """The array pulses and whole-matrix operations act on."""
        return self.wp if self.write_noise else self.w

    def _redraw(self) -> None:
        """Apparent weights from the persistent ones, fresh write noise everywhere."""
        if self.write_noise:
            noise = self.rng.normal(self.shape, np.float64)
            self.w[...] = self.wp + self.wn_sigma * noise

    def _clip(self, w: np.ndarray) -> None:
        np.minimum(w, self.P[SLOT_MAX_BOUND], out=w)
        np.maximum(w, self.P[SLOT_MIN_BOUND], out=w)

    # -- weights and hidden parameters --------------------------------------------------------
    def set_weights(self, w: np.ndarray) -> None:
        target = self._stored()
        target[...] = w
        self._clip(target)
        if self.write_noise:
            self.w[...] = self.wp
            if self.device.apply_write_noise_on_set:
                self._redraw()

    def hidden_parameter_names(self) -> list[str]:
        return self.device.hidden_parameter_names()

    def get_hidden_parameters(self) -> dict[str, np.ndarray]:
        out = {}
        common = COMMON_HIDDEN_NAMES
        for k, name in enumerate(common):
            out[name] = self.P[k].copy()
        if self.write_noise:
            out["persistent_weights"] = self.wp.copy()
        for k, name in enumerate(self.device.extra_hidden_names):
            out[name] = self.P[FIRST_EXTRA_SLOT + k].copy()
        return {n: out[n] for n in self.hidden_parameter_names()}

    def set_hidden_parameters(self, params: dict[str, np.ndarray]) -> None:
        """Write (already validated) hidden parameters, then re-apply the weights (devices §9.2).

        ``persistent_weights`` given here are honoured (aihwkit overwrites them with the
        apparent weight); without them the persistent weights are kept as they are.
        """
        slots = {n: k for k, n in enumerate(COMMON_HIDDEN_NAMES)}
        slots.update({n: FIRST_EXTRA_SLOT + k
                      for k, n in enumerate(self.device.extra_hidden_names)})
        for name, value in params.items():
            if name == "persistent_weights":
                self.wp[...] = value
            else:
                self.P[slots[name]] = value
        self._clip(self._stored())
        if self.write_noise and self.device.apply_write_noise_on_set:
            self._redraw()
        elif self.write_noise:
            self.w[...] = self.wp
        self._reestimate_dw_min()

    def _reestimate_dw_min(self) -> None:
        """aihwkit re-estimates ``dw_min`` when the set steps deviate from it (devices §9.2)."""
        # computed as aihwkit does, in the tile dtype with a running sum, because with
        # dw_min_dtod = 0 any rounding difference decides whether dw_min changes
        dt = self.dtype.type
        per_element = (np.abs(self.P[SLOT_DWMIN_UP]) + np.abs(self.P[SLOT_DWMIN_DOWN])) / dt(2)
        m = np.cumsum(per_element.ravel(), dtype=self.dtype)[-1] / dt(per_element.size)
        dw_min = dt(self.dw_min)
        if abs(m - dw_min) / dw_min > dt(2) * dt(self.device.dw_min_dtod) and m > 0:
            self.dw_min = float(m)

    # -- update -------------------------------------------------------------------------------
    def update(self, X: np.ndarray, D: np.ndarray, lr: float, upd: UpdateParameters,
               granularity: float | None = None, key=None) -> None:
        """Pulsed update of a batch. A compound passes its own ``granularity`` (it sets the
        pulse counts, compounds §1.4) and, to give several devices the same coincidences, the
        same ``key``."""
        if upd.pulse_type is _NONE_WITH_DEVICE or upd.pulse_type is _NONE:
            # only a compound's sub-device update gets here with NONE (a tile under NONE is
            # floating point): aihwkit then updates exactly and leaves the bounds alone
            self._update_fp(X, D, lr, clip=upd.pulse_type is _NONE_WITH_DEVICE)
            return
        engine.pulsed_update(
            self.w, self.P, self.wp, X, D, lr,
            self.granularity if granularity is None else granularity, upd,
            self.rng.raw_key() if key is None else key, self.params,
            self.wn_sigma if self._write_noise else 0.0, self.counters,
            # devices that share coincidences (a given key) still draw independent noise
            noise_key=None if key is None else self.rng.key())

    def _update_fp(self, X, D, lr, clip: bool) -> None:
        """``NONE_WITH_DEVICE``: exact per-sample update of the stored weight, then clip;
        ``NONE``: the same without the clip.

        With write noise aihwkit loses the update (it clips the untouched persistent weight);
        rpusim updates the persistent weight and redraws the apparent one.
        """
        target = self._stored()
        lr = self.dtype.type(lr)
        for x, d in zip(X, D):
            target -= lr * np.outer(d, x)
            if clip:
                self._clip(target)
        self._redraw()

    # -- whole-matrix operations --------------------------------------------------------------
    def decay(self, alpha: float = 1.0) -> None:
        # w = (w - b) (1 + alpha (decay scale - 1)) + b, clipped: one kernel pass (the
        # NumPy expression's bits; it made five temporaries, per device after every update)
        P = self.P
        engine.decay_and_clip(self._stored(), P[SLOT_DECAY_SCALES], P[SLOT_RESET_BIAS],
                              P[SLOT_MAX_BOUND], P[SLOT_MIN_BOUND], self.dtype.type(alpha))
        self._redraw()

    def diffuse(self) -> None:
        w = self._stored()
        w += self.P[SLOT_DIFFUSION_RATES] * self.rng.normal(self.shape, self.dtype)
        self._clip(w)
        self._redraw()

    def reset_columns(self, start: int, num: int, prob: float) -> None:
        w = self._stored()
        cols = _columns(start, num, self.shape[1])
        sel = np.zeros(self.shape, bool)
        sel[:, cols] = True
        if prob < 1:
            sel &= self.rng.uniform(self.shape) < prob
        new = self.P[SLOT_RESET_BIAS].copy()
        if self.device.reset_std > 0:
            new += self.dtype.type(self.device.reset_std) * self.rng.normal(self.shape,
                                                                          self.dtype)
        new = np.minimum(np.maximum(new, self.P[SLOT_MIN_BOUND]), self.P[SLOT_MAX_BOUND])
        w[sel] = new[sel]
        self._redraw()

    def drift(self, delta_t: float) -> None:
        if self.device.drift.nu == 0:
            return
        w = self._stored()
        if self.drift_state is None:
            self.drift_state = _DriftState(w)
        out = _drift_step(self.drift_state, w.astype(np.float64), self.P[SLOT_DRIFT_NU],
                          self.device.drift, delta_t, self.rng.generator)
        lost = np.isnan(out)
        if lost.any():
            # nu_k's logarithm of a negative conductance: aihwkit's drift gives NaN, which its
            # saturation MIN(MAX(b_min, w), b_max) turns into the upper bound (replicated)
            out[lost] = self.P[SLOT_MAX_BOUND][lost]
        w[...] = out
        self._clip(w)
        self.drift_state.w_prev = w.astype(np.float64)
        self._redraw()

    def requires_decay(self) -> bool:
        return self.device.lifetime > 0

    def requires_diffusion(self) -> bool:
        return self.device.diffusion > 0

    # -- state not covered by hidden parameters -----------------------------------------------
    def extra_state(self) -> dict[str, np.ndarray]:
        out = {"dw_min": np.array(self.dw_min)}
        if self.counters is not None:
            out["pulse_counters"] = self.counters.copy()
        if self.drift_state is not None:
            out.update({f"drift_{k}": v for k, v in self.drift_state.as_dict().items()})
        return out

    def load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.dw_min = float(state["dw_min"])
        if self.counters is not None and "pulse_counters" in state:
            self.counters[...] = state["pulse_counters"]
        if "drift_t" in state:
            self.drift_state = _DriftState.from_dict(
                {k[len("drift_"):]: v for k, v in state.items() if k.startswith("drift_")})
        else:
            self.drift_state = None


class FloatDeviceModel:
    """Exact floating-point weights: ``IdealDevice``, ``FloatingPointDevice``, ``PulseType.NONE``.

    The update is one GEMM ``W -= lr * D.T @ X``; decay multiplies by ``1 - alpha/lifetime``
    when ``lifetime > 1``; there are no bounds and no hidden parameters.
    """

    def __init__(self, device, out_size: int, in_size: int, dtype, rng: TileRNG):
        self.device = device
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.w = np.zeros((out_size, in_size), self.dtype)
        self.counters = None
        self.drift_state: _DriftState | None = None
        self.granularity = 0.0

    @property
    def shape(self):
        return self.w.shape

    def set_weights(self, w: np.ndarray) -> None:
        self.w[...] = w

    def hidden_parameter_names(self) -> list[str]:
        return []

    def get_hidden_parameters(self) -> dict:
        return {}

    def set_hidden_parameters(self, params: dict) -> None:
        pass

    def update(self, X, D, lr, upd) -> None:
        self.w -= self.dtype.type(lr) * (D.T @ X)

    def decay(self, alpha: float = 1.0) -> None:
        lifetime = getattr(self.device, "lifetime", 0.0)
        if lifetime > 1:
            factor = 1 - alpha / lifetime
            if 0 < factor < 1:
                self.w *= self.dtype.type(factor)

    def diffuse(self) -> None:
        d = getattr(self.device, "diffusion", 0.0)
        if d > 0:
            self.w += self.dtype.type(d) * self.rng.normal(self.shape, self.dtype)

    def reset_columns(self, start: int, num: int, prob: float) -> None:
        cols = _columns(start, num, self.shape[1])
        sel = np.zeros(self.shape, bool)
        sel[:, cols] = True
        if prob < 1:
            sel &= self.rng.uniform(self.shape) < prob
        std = getattr(self.device, "reset_std", 0.0)
        new = (self.dtype.type(std) * self.rng.normal(self.shape, self.dtype) if std > 0
               else np.zeros(self.shape, self.dtype))
        self.w[sel] = new[sel]

    def drift(self, delta_t: float) -> None:
        drift = getattr(self.device, "drift", None)
        if drift is None or drift.nu == 0:
            return
        if self.drift_state is None:
            self.drift_state = _DriftState(self.w)
        out = _drift_step(self.drift_state, self.w.astype(np.float64),
                          np.full(self.shape, drift.nu), drift, delta_t, self.rng.generator)
        self.w[...] = out
        self.drift_state.w_prev = self.w.astype(np.float64)

    def requires_decay(self) -> bool:
        return getattr(self.device, "lifetime", 0.0) > 0

    def requires_diffusion(self) -> bool:
        return getattr(self.device, "diffusion", 0.0) > 0

    def extra_state(self) -> dict:
        if self.drift_state is None:
            return {}
        return {f"drift_{k}": v for k, v in self.drift_state.as_dict().items()}

    def load_extra_state(self, state: dict) -> None:
        if "drift_t" in state:
            self.drift_state = _DriftState.from_dict(
                {k[len("drift_"):]: v for k, v in state.items() if k.startswith("drift_")})
        else:
            self.drift_state = None


_BUILDERS: dict[type, object] = {}


def register_model_builder(config_class: type, builder) -> None:
    """Let ``make_device_model`` build ``config_class`` (e.g. a compound) with
    ``builder(device, out_size, in_size, dtype, rng, pulse_type)``."""
    _BUILDERS[config_class] = builder


def make_device_model(device, out_size: int, in_size: int, dtype, rng: TileRNG,
                      pulse_type: PulseType):
    """Build the runtime model of a device config (``PulseType.NONE``: floating point)."""
    if isinstance(device, PulsedDevice) and pulse_type != PulseType.NONE:
        return PulsedDeviceModel(device, out_size, in_size, dtype, rng)
    # a subclass that only changes defaults (a preset) is built as its registered base
    builder = next((_BUILDERS[cls] for cls in type(device).__mro__ if cls in _BUILDERS),
                   None)
    if builder is not None and pulse_type != PulseType.NONE:
        return builder(device, out_size, in_size, dtype, rng, pulse_type)
    if hasattr(device, "make_model"):
        return device.make_model(out_size, in_size, dtype, rng, pulse_type)
    return FloatDeviceModel(device, out_size, in_size, dtype, rng)
