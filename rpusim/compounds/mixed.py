"""Runtime model of MixedPrecisionCompound (spec compounds §9): a digital accumulator ``chi``
of the gradient, whose integer multiples of ``eps`` are written row by row into the analog
device with pulses."""

from __future__ import annotations

import dataclasses

import numpy as np

from rpusim.compounds import kernels
from rpusim.compounds.base import (CompoundModel, build_submodel, construction_generator,
                                   is_leaf, sub_update)

__all__ = ["MixedPrecisionModel", "build_mixed"]


class MixedPrecisionModel:
    """The analog device plus ``chi``; the tile weight is the analog device's weight."""

    def __init__(self, config, device, out_size, in_size, dtype, rng):
        self.config = config
        self.device = device
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.w = device.w
        self.chi = np.zeros((out_size, in_size), self.dtype)
        self.row_ptr = 0
        self.current_update_idx = 0
        self.counters = None
        # the transfer step is the device's granularity at construction, as in aihwkit: hidden
        # parameters set later may re-estimate the device's dw_min (and its granularity), not
        # this step
        self.construction_granularity = device.granularity

    @property
    def shape(self):
        return self.w.shape

    @property
    def granularity(self) -> float:
        return self.device.granularity

    # -- update -------------------------------------------------------------------------------
    def _quantise(self, V: np.ndarray, n_bins: int, stochastic: bool) -> np.ndarray:
        """Per-vector dynamic quantisation to ``2*floor(n_bins/2) + 1`` levels."""
        if n_bins <= 0:
            return V
        dt = self.dtype.type
        h = dt(n_bins // 2)
        if h == 0:
            return np.zeros_like(V)
        amax = np.max(np.abs(V), axis=1, keepdims=True)
        width = np.where(amax > 0, amax / h, dt(1)).astype(self.dtype)
        scaled = V / width
        if stochastic:
            scaled = scaled + (self.rng.uniform(V.shape) - 0.5).astype(self.dtype)
        return (np.clip(np.rint(scaled), -h, h) * width).astype(self.dtype)

    def update(self, X, D, lr, upd, granularity=None, key=None, m_batch=None) -> None:
        cfg = self.config
        m = X.shape[0]
        m_batch = m if m_batch is None else m_batch
        Xq = np.ascontiguousarray(self._quantise(X, cfg.n_x_bins, cfg.stoc_round_x))
        Dq = np.ascontiguousarray(self._quantise(D, cfg.n_d_bins, cfg.stoc_round_d))
        every = cfg.transfer_every * m_batch
        lr_t = self.dtype.type(lr)
        start = 0
        while start < m:
            # the counter is checked after the sample's accumulation and before its increment
            end = m
            if every > 0:
                c = self.current_update_idx
                for s in range(start, m):
                    if c + s - start > 0 and (c + s - start) % every == 0:
                        end = s + 1
                        break
            kernels.accumulate_chi(self.chi, Xq[start:end], Dq[start:end], lr_t)
            self.current_update_idx += end - start
            if every > 0:
                last = self.current_update_idx - 1
                if last > 0 and last % every == 0:
                    self.transfer(upd)
            start = end

    def transfer(self, upd) -> None:
        cfg = self.config
        d = self.chi.shape[0]
        eps = cfg.granularity if cfg.granularity > 0 else self.construction_granularity
        n = d if cfg.n_rows_per_transfer < 0 else min(cfg.n_rows_per_transfer, d)
        if cfg.random_row and n < d:
            r0 = int(self.rng.generator.integers(0, d))  # uniform (aihwkit: edge rows favoured)
        else:
            r0 = self.row_ptr
        # rows r0, r0 + 1, ... (wrapping): their whole multiples of eps, taken out of chi,
        # and the rows' one-hot inputs, in one kernel pass
        K = np.empty((n, self.chi.shape[1]), self.dtype)
        onehot = np.empty((n, d), self.dtype)
        if kernels.mixed_transfer(self.chi, r0, self.dtype.type(eps), K, onehot):
            # kept on upd until a field of it changes: a new copy per transfer was a new
            # object to the pulse engine, which then typed its call again (about 50 us)
            managed = upd.__dict__.get("_managed")
            if managed is None:
                managed = dataclasses.replace(upd, update_management=True,
                                              update_bl_management=True)
                object.__setattr__(upd, "_managed", managed)
            sub_update(self.device, K, onehot, eps * cfg.transfer_lr, managed, None, None, n)
        self.row_ptr = int((r0 + n) % d)

    # -- weights and hidden parameters --------------------------------------------------------
    def set_weights(self, w: np.ndarray) -> None:
        self.chi[...] = 0
        self.current_update_idx = 0
        self.row_ptr = 0
        self.device.set_weights(w)

    def hidden_parameter_names(self) -> list[str]:
        return self.device.hidden_parameter_names() + ["hidden_weights_chi"]

    def get_hidden_parameters(self) -> dict[str, np.ndarray]:
        out = self.device.get_hidden_parameters()
        out["hidden_weights_chi"] = self.chi.copy()
        return out

    def check_hidden_parameters(self, params: dict, suffix: str = "") -> None:
        if isinstance(self.device, CompoundModel):
            self.device.check_hidden_parameters(params, suffix)

    def set_hidden_parameters(self, params: dict) -> None:
        """Forward to the device; ``hidden_weights_chi`` sets ``chi`` (aihwkit ignores it)."""
        self.check_hidden_parameters(params)
        sub = {k: v for k, v in params.items() if k != "hidden_weights_chi"}
        if sub:
            self.device.set_hidden_parameters(sub)
        if "hidden_weights_chi" in params:
            self.chi[...] = params["hidden_weights_chi"]

    def get_hidden_update_index(self) -> int:
        getter = getattr(self.device, "get_hidden_update_index", None)
        return getter() if getter else 0

    def set_hidden_update_index(self, index: int) -> None:
        setter = getattr(self.device, "set_hidden_update_index", None)
        if setter is not None:
            setter(index)
        elif index != 0:
            raise ValueError(f"a single device has only update index 0, got {index!r}")

    # -- whole-matrix operations (forwarded) ---------------------------------------------------
    def decay(self, alpha: float = 1.0) -> None:
        self.device.decay(alpha)

    def diffuse(self) -> None:
        self.device.diffuse()

    def drift(self, delta_t: float) -> None:
        self.device.drift(delta_t)

    def reset_columns(self, start: int, num: int, prob: float) -> None:
        self.device.reset_columns(start, num, prob)

    def requires_decay(self) -> bool:
        return self.device.requires_decay()

    def requires_diffusion(self) -> bool:
        return self.device.requires_diffusion()

    def pulse_counters(self) -> np.ndarray:
        if is_leaf(self.device):
            if self.device.counters is None:
                raise ValueError("pulse counting is off: set count_pulses=True on the device")
            return self.device.counters.copy()
        return self.device.pulse_counters()

    def extra_state(self) -> dict[str, np.ndarray]:
        out = {"compound/current_update_idx": np.array(self.current_update_idx),
               "compound/row_ptr": np.array(self.row_ptr)}
        out.update({f"dev/{k}": v for k, v in self.device.extra_state().items()})
        return out

    def load_extra_state(self, state: dict) -> None:
        self.current_update_idx = int(state["compound/current_update_idx"])
        self.row_ptr = int(state["compound/row_ptr"])
        self.device.load_extra_state({k[4:]: v for k, v in state.items()
                                      if k.startswith("dev/")})


def build_mixed(config, out_size, in_size, dtype, rng, pulse_type, gen=None):
    gen = construction_generator(config, rng, gen)
    device = build_submodel(config.device, out_size, in_size, dtype, rng, pulse_type, gen)
    return MixedPrecisionModel(config, device, out_size, in_size, dtype, rng)
