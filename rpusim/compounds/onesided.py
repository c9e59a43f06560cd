"""Runtime model of OneSidedUnitCell / DifferenceUnitCell (spec compounds §4).

Both devices only ever receive up pulses: a coincidence that should lower the weight is an up
pulse on ``g-`` (device 0), one that should raise it an up pulse on ``g+`` (device 1). The
coincidences are generated once by the update engine and split by sign, so both devices see the
same bit trains.
"""

from __future__ import annotations

import numpy as np

from rpusim.compounds.base import (CompoundModel, build_submodel, chunk_key,
                                   construction_generator, physics_of)
from rpusim.configs.enums import PulseType
from rpusim.compounds import kernels
from rpusim.devices.base import (FIRST_EXTRA_SLOT, SLOT_DWMIN_DOWN, SLOT_DWMIN_UP,
                                 SLOT_MAX_BOUND, SLOT_MIN_BOUND, SLOT_RESET_BIAS)
from rpusim.devices.constant_step import ConstantStepDevice
from rpusim.devices.model import PulsedDeviceModel
from rpusim.io import AnalogMVM

__all__ = ["OneSidedModel", "build_onesided", "mirror_parameters"]


def mirror_parameters(P0: np.ndarray, extra_names) -> np.ndarray:
    """Device 0's per-element parameters mirrored for ``g+`` (``copy_inverted``): up and down
    steps swapped, bounds ``[-b_max, -b_min]``, reset bias negated, slopes swapped with sign,
    PowStep exponents swapped, references negated; everything else copied."""
    P1 = P0.copy()
    P1[SLOT_MAX_BOUND] = -P0[SLOT_MIN_BOUND]
    P1[SLOT_MIN_BOUND] = -P0[SLOT_MAX_BOUND]
    P1[SLOT_DWMIN_UP] = P0[SLOT_DWMIN_DOWN]
    P1[SLOT_DWMIN_DOWN] = P0[SLOT_DWMIN_UP]
    P1[SLOT_RESET_BIAS] = -P0[SLOT_RESET_BIAS]
    slot = {n: FIRST_EXTRA_SLOT + k for k, n in enumerate(extra_names)}
    if "slope_up" in slot and "slope_down" in slot:
        P1[slot["slope_up"]] = -P0[slot["slope_down"]]
        P1[slot["slope_down"]] = -P0[slot["slope_up"]]
    if "gamma_up" in slot and "gamma_down" in slot:
        P1[slot["gamma_up"]] = P0[slot["gamma_down"]]
        P1[slot["gamma_down"]] = P0[slot["gamma_up"]]
    if "reference" in slot:
        P1[slot["reference"]] = -P0[slot["reference"]]
    return P1


# counts coincidences: every pulse moves it by exactly +-1, nothing clips
_COUNTING_DEVICE = ConstantStepDevice(dw_min=1.0, dw_min_dtod=0.0, dw_min_std=0.0,
                                      w_max=1e9, w_max_dtod=0.0, w_min=-1e9, w_min_dtod=0.0,
                                      up_down_dtod=0.0, reset_std=0.0, count_pulses=True)


class OneSidedModel(CompoundModel):
    """``W = W_1 - W_0``; only up pulses; optional refresh of saturated pairs."""

    def __init__(self, config, devices, out_size, in_size, dtype, rng):
        super().__init__(config, devices, [-1.0, 1.0], out_size, in_size, dtype, rng)
        self.refresh_counter = 0
        self._counter = PulsedDeviceModel(_COUNTING_DEVICE, out_size, in_size, dtype, rng)
        self._reader = AnalogMVM(config.refresh_forward, out_size, in_size, dtype, rng)
        self._read = getattr(self._reader, "mvm", self._reader)

    # -- update -------------------------------------------------------------------------------
    def update(self, X, D, lr, upd, granularity=None, key=None, m_batch=None) -> None:
        g = self.granularity if granularity is None else granularity
        m = X.shape[0]
        m_batch = m if m_batch is None else m_batch
        every = self.config.refresh_every * (m_batch if self.config.units_in_mbatch else 1)
        start = 0
        n_chunk = 0
        while start < m:
            chunk = m - start
            if every > 0:
                chunk = min(chunk, every - self.current_update_idx % every)
            self._pulse(X[start:start + chunk], D[start:start + chunk], lr, upd, g,
                        chunk_key(key, n_chunk))
            n_chunk += 1
            self.current_update_idx += chunk
            start += chunk
            if every > 0 and self.current_update_idx % every == 0:
                self.refresh()
        self.reduce()

    def _pulse(self, X, D, lr, upd, g, key) -> None:
        """Coincidences from the engine (on a +-1 counting device), split by sign."""
        if upd.pulse_type == PulseType.NONE_WITH_DEVICE:
            self._fp_update(X, D, lr)
            return
        counter = self._counter
        counter.w[...] = 0
        counter.counters[...] = 0
        counter.update(X, D, lr, upd, granularity=g, key=key)
        # a down pulse (weight should fall) is an up pulse on g-, an up pulse one on g+
        down, up = np.empty((2,) + counter.w.shape, np.int64)
        some = kernels.split_counts(counter.w, counter.counters, down, up)
        for dev, counts, any_ in zip(self.devices, (down, up), some):
            if any_:
                kernels.apply_up_pulses(dev.w, dev.P, dev.wp, counts, self.rng.key(),
                                        dev.params, dev.wn_sigma, dev.counters)

    def _fp_update(self, X, D, lr) -> None:
        """``NONE_WITH_DEVICE``: exact per-sample update split into the two devices, clipped."""
        dev0, dev1 = self.devices
        lr = self.dtype.type(lr)
        for x, d in zip(X, D):
            delta = -lr * np.outer(d, x)
            for dev, part in ((dev1, np.maximum(delta, 0)), (dev0, np.maximum(-delta, 0))):
                target = dev._stored()
                target += part
                dev._clip(target)
        for dev in self.devices:
            dev._redraw()

    # -- refresh ------------------------------------------------------------------------------
    def _reset_elements(self, dev, sel: np.ndarray) -> None:
        """``b_reset + reset_std * xi``, clipped, at the elements of flat (C-order) indices
        ``sel`` only (one draw each, in that order, as aihwkit's ``resetAtIndices``)."""
        std = physics_of(dev).reset_std
        noise = (self.rng.normal(sel.shape, self.dtype) if std > 0
                 else np.zeros(0, self.dtype))
        P = dev.P
        kernels.reset_at(dev._stored(), P[SLOT_RESET_BIAS], P[SLOT_MAX_BOUND],
                         P[SLOT_MIN_BOUND], sel, noise, self.dtype.type(std))
        dev._redraw()

    def refresh(self) -> None:
        """Reset both devices where a pair nears saturation and rewrite the difference."""
        cfg = self.config
        dev0, dev1 = self.devices
        n_out, n_in = self.out_size, self.in_size
        eye = self.__dict__.get("_eye")
        if eye is None:  # the kernels only read it
            eye = self._eye = np.eye(n_in, dtype=self.dtype)
        p = np.asarray(self._read(dev1.w, eye, False)).T
        q = np.asarray(self._read(dev0.w, eye, False)).T
        # the reads' dtype for every operand, as NumPy's float32 arithmetic with Python floats
        t = p.dtype.type
        flat = np.empty(n_out * n_in, np.int64)
        x1, x0 = np.empty((2, n_in, n_in), self.dtype)
        d1, d0 = np.empty((2, n_in, n_out), self.dtype)
        # the criterion and both rewrites in one pass (a dozen NumPy passes before)
        count, n1, n0 = kernels.refresh_plan(
            p, q, t(abs(physics_of(dev1).w_max)), t(abs(physics_of(dev0).w_max)),
            t(cfg.refresh_upper_thres), t(cfg.refresh_lower_thres),
            np.empty(p.shape, np.bool_), flat, x1, d1, x0, d0)
        if not count:
            return
        self.refresh_counter += int(count)
        flat = flat[:count]
        for dev in self.devices:
            self._reset_elements(dev, flat)
        # a write of +target through an ordinary update: d = -target, lr = 1 (correct sign for
        # every pulse type; aihwkit's dense pulse types write the opposite sign); one sample
        # e_j per column with something to write (a zero sample writes nothing)
        for dev, x, d, n in ((dev1, x1, d1, n1), (dev0, x0, d0, n0)):
            if n:
                dev.update(x[:n], d[:n], 1.0, cfg.refresh_update)
        self.reduce()

    # -- weights ------------------------------------------------------------------------------
    def set_weights(self, w: np.ndarray) -> None:
        self.current_update_idx = 0
        self.devices[1].set_weights(np.maximum(w, 0))
        self.devices[0].set_weights(np.maximum(-w, 0))
        self.reduce()

    def own_state(self) -> dict:
        out = super().own_state()
        out["refresh_counter"] = np.array(self.refresh_counter)
        return out

    def load_own_state(self, state: dict) -> None:
        super().load_own_state(state)
        self.refresh_counter = int(state["refresh_counter"])


def build_onesided(config, out_size, in_size, dtype, rng, pulse_type, gen=None):
    gen = construction_generator(config, rng, gen)
    spec = config.unit_cell_devices[0]
    dev0 = build_submodel(spec, out_size, in_size, dtype, rng, pulse_type, gen)
    dev1 = build_submodel(spec, out_size, in_size, dtype, rng, pulse_type, gen)
    if config.copy_inverted:
        dev1.P[...] = mirror_parameters(dev0.P, physics_of(dev0).extra_hidden_names)
    return OneSidedModel(config, [dev0, dev1], out_size, in_size, dtype, rng)
