"""Runtime models of the unit cells: VectorUnitCell, ReferenceUnitCell (spec compounds §2-§3)."""

from __future__ import annotations

import numpy as np

from rpusim.compounds import kernels
from rpusim.compounds.base import (CompoundModel, build_submodel, construction_generator,
                                   sub_update)
from rpusim.configs.enums import VectorUnitCellUpdatePolicy as Policy

__all__ = ["VectorModel", "build_vector"]

_NO_DRAWS = np.zeros(0)  # SINGLE_SEQUENTIAL routes without random numbers


class VectorModel(CompoundModel):
    """Several devices per cross-point, pulses routed by the update policy (per sample).

    With ``ALL`` every device gets the same coincidences (one engine key for the bit trains)
    and its own cycle-to-cycle noise (a noise key per device), as in aihwkit.
    """

    def __init__(self, config, devices, out_size, in_size, dtype, rng):
        super().__init__(config, devices, config.gammas(), out_size, in_size, dtype, rng)
        self.policy = config.update_policy
        self.current_device_idx = config.first_update_idx

    def update(self, X, D, lr, upd, granularity=None, key=None, m_batch=None) -> None:
        g = self.granularity if granularity is None else granularity
        m = X.shape[0]
        m_batch = m if m_batch is None else m_batch
        n = len(self.devices)
        if self.policy == Policy.ALL:
            # the same coincidences for every device: one key for all of them
            key = self.rng.key() if key is None else key
            for dev in self.devices:
                sub_update(dev, X, D, lr, upd, g, key, m_batch)
        elif self.policy == Policy.SINGLE_FIXED:
            sub_update(self.devices[self.current_device_idx], X, D, lr, upd, g, key, m_batch)
        elif m:
            u = (self.rng.uniform(m) if self.policy != Policy.SINGLE_SEQUENTIAL
                 else _NO_DRAWS)
            # devices are independent, so each one can take its samples in one call: the
            # batch grouped by device once (each device's samples in order), each device's
            # group a block of rows
            Xs, Ds = np.empty_like(X, order="C"), np.empty_like(D, order="C")
            counts = np.empty(n, np.int64)
            last = kernels.group_by_device(u, self.current_device_idx, n, X, D, Xs, Ds,
                                           counts)
            start = 0
            for k, count in enumerate(counts.tolist()):
                if count:
                    sub_update(self.devices[k], Xs[start:start + count],
                               Ds[start:start + count], lr, upd, g, key, m_batch)
                start += count
            self.current_device_idx = int(last)
        self.current_update_idx += m
        self.reduce()

    def set_weights(self, w: np.ndarray) -> None:
        """Every device gets ``w`` (``SINGLE_FIXED``: only the current device), then reduce."""
        self.current_update_idx = 0
        if self.policy == Policy.SINGLE_FIXED:
            self.devices[self.current_device_idx].set_weights(w)
        else:
            self.current_device_idx = self.config.first_update_idx
            for dev in self.devices:
                dev.set_weights(w)
        self.reduce()

    def get_hidden_update_index(self) -> int:
        return self.current_device_idx

    def set_hidden_update_index(self, index: int) -> None:
        n = len(self.devices)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"update index must be an int, got {index!r}")
        if not 0 <= index < n:
            raise ValueError(f"update index must be in [0, {n - 1}], got {index}")
        self.current_device_idx = int(index)

    def own_state(self) -> dict:
        out = super().own_state()
        out["current_device_idx"] = np.array(self.current_device_idx)
        return out

    def load_own_state(self, state: dict) -> None:
        super().load_own_state(state)
        self.current_device_idx = int(state["current_device_idx"])


def build_vector(config, out_size, in_size, dtype, rng, pulse_type, gen=None):
    gen = construction_generator(config, rng, gen)
    devices = [build_submodel(spec, out_size, in_size, dtype, rng, pulse_type, gen)
               for spec in config.device_specs()]
    return VectorModel(config, devices, out_size, in_size, dtype, rng)
