"""Hardware-aware training state of a tile: held modifier draw, clipping, remapping scales.

A tile built from a config with ``clip``, ``remap`` and ``modifier`` fields (an
``InferenceRPUConfig``) owns one :class:`HardwareAwareState`. Semantics: spec inference.md,
sections 2 and 10-12:

* ``post_update_step()``: clip ``W``, remap ``W`` and the output scales ``s``, then draw
  ``W_fb = modify(W)`` and hold it.
* training forward and backward read ``W_fb`` (``W`` until the first draw); test forward reads
  ``W`` unless ``modifier.enable_during_test``.
* outputs are multiplied by ``s``, backward inputs by ``s``, update errors divided by ``s``: the
  logical weights are ``W * s`` (per output row).
* ``per_batch_sample``: every sample of a training forward gets its own draw from the current
  ``W``; the backward of the same batch reads the same draws.
"""

from __future__ import annotations

import numpy as np

from rpusim.configs.enums import WeightClipType, WeightModifierType, WeightRemapType
from rpusim.kernels import io as kio
from rpusim.kernels import modifiers as kmod

__all__ = ["HardwareAwareState", "is_hardware_aware"]

_MOD_KIND = {t: getattr(kmod, f"MOD_{t.name}") for t in WeightModifierType}
_CLIP_KIND = {t: getattr(kmod, f"CLIP_{t.name}") for t in WeightClipType}
# aihwkit's PCM read time of the PCM_NOISE modifier (s)
_PCM_T_READ = 250e-9


def is_hardware_aware(config) -> bool:
    """Whether ``config`` carries the hardware-aware training fields (clip, remap, modifier)."""
    return all(hasattr(config, name) for name in ("clip", "remap", "modifier"))


class HardwareAwareState:
    """Held modifier draw ``W_fb`` and output scales ``s`` of one tile.

    Parameters
    ----------
    config : InferenceRPUConfig-like
        Reads ``clip``, ``remap`` and ``modifier`` (validated configs).
    out_size, in_size : int
    dtype : numpy.dtype
    rng : rpusim.rng.TileRNG
        The tile's generator: one kernel key per draw.
    """

    def __init__(self, config, out_size: int, in_size: int, dtype, rng):
        self.config = config
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.shape = (out_size, in_size)
        self.fb_weights: np.ndarray | None = None
        # the per-sample draws of the last training forward (per_batch_sample only)
        self.sample_weights: np.ndarray | None = None
        self.scales = (np.ones(out_size, self.dtype)
                       if config.remap.type != WeightRemapType.NONE else None)
        # aihwkit's torch tile (TorchInferenceRPUConfig) draws the modifier at every training
        # forward (its own formulas, see fresh_weights); the C++ tiles hold one draw per update
        self.per_forward = False

    # -- what forward and backward read --------------------------------------------------------
    @property
    def per_sample(self) -> bool:
        mod = self.config.modifier
        return mod.per_batch_sample and self._draws(mod)

    def weights(self, w: np.ndarray, is_test: bool) -> np.ndarray:
        """The weights an MVM reads: the held draw in training (or with enable_during_test)."""
        if self.fb_weights is not None and (
                not is_test or self.config.modifier.enable_during_test):
            return self.fb_weights
        return w

    def uses_samples(self, is_test: bool) -> bool:
        """Whether a forward in this mode draws per sample (``per_batch_sample``)."""
        return self.per_sample and (not is_test or self.config.modifier.enable_during_test)

    def draw_samples(self, w: np.ndarray, batch: int) -> np.ndarray:
        """``batch`` independent draws ``modify(w)``, kept for the backward of this batch."""
        key = self.rng.key()
        out = np.empty((batch, *self.shape), self.dtype)
        for b in range(batch):
            self._modify(w, out[b], key, b)
        self.sample_weights = out
        return out

    def scale_outputs(self, Y: np.ndarray) -> np.ndarray:
        if self.scales is not None:
            Y *= self.scales
        return Y

    def scale_errors(self, D: np.ndarray, backward: bool) -> np.ndarray:
        """``d * s`` for the backward MVM, ``d / s`` for the update (new arrays)."""
        if self.scales is None:
            return D
        return D * self.scales if backward else D / self.scales

    # -- post_update_step ----------------------------------------------------------------------
    def post_update(self, w: np.ndarray) -> None:
        """Clip and remap ``w`` in place, then draw and hold ``W_fb`` (spec sections 10-12)."""
        clip = self.config.clip
        if clip.type != WeightClipType.NONE:
            c = kmod.clip_value(w, _CLIP_KIND[clip.type], float(clip.fixed_value),
                                float(clip.sigma))
            if c > 0:
                kmod.clip_weights(w, c)
        remap = self.config.remap
        if remap.type != WeightRemapType.NONE and self.scales is None:
            self.scales = np.ones(self.shape[0], self.dtype)  # remapping switched on later
        if (remap.type != WeightRemapType.NONE and self.per_forward
                and remap.remapped_wmax == 1.0 and remap.max_scale_range == 0.0
                and remap.max_scale_ref == 0.0):
            # the settings aihwkit's torch tile accepts; others take the C++ tiles' remap
            self._remap_as_torch_tile(w, remap.type == WeightRemapType.LAYERWISE_SYMMETRIC)
        elif remap.type == WeightRemapType.LAYERWISE_SYMMETRIC:
            kmod.remap_layerwise(w, self.scales, float(remap.remapped_wmax))
        elif remap.type == WeightRemapType.CHANNELWISE_SYMMETRIC:
            kmod.remap_channelwise(w, self.scales, float(remap.remapped_wmax),
                                   float(remap.max_scale_range), float(remap.max_scale_ref))
        mod = self.config.modifier
        if self._draws(mod) and not mod.per_batch_sample and not self.per_forward:
            out = np.empty(self.shape, self.dtype)
            self._modify(w, out, self.rng.key(), 0)
            self.fb_weights = out

    def _remap_as_torch_tile(self, w: np.ndarray, layerwise: bool) -> None:
        """aihwkit's torch tile remaps the weights as the layer sees them, ``W s``: the new
        scales are their largest magnitude (of the layer, or of each row), so they are
        positive even where ``s`` was negative (a learned output scale that changed sign).
        (The C++ tiles scale ``W`` alone and keep the sign of ``s``.) aihwkit's torch tile
        refuses ``remapped_wmax != 1`` and a bounded scale range; rpusim remaps such configs
        as the C++ tiles. A layer or row of zeros keeps its weights and scales, where aihwkit
        divides by zero."""
        scaled = w * self.scales[:, None]
        magnitude = np.abs(scaled)
        if layerwise:
            new = np.full(self.shape[0], magnitude.max(), self.dtype)
        else:
            new = magnitude.max(axis=1)
        rows = new > 0
        w[rows] = scaled[rows] / new[rows, None]
        self.scales[rows] = new[rows]

    def fresh_weights(self, w: np.ndarray, batch: int, is_test: bool) -> np.ndarray:
        """The weights a forward of aihwkit's torch tile reads: a new modifier draw at every
        training forward (``(batch, out, in)`` with ``per_batch_sample``: one per sample,
        ``batch`` the number of samples), ``w`` in test mode (unless ``enable_during_test``,
        which aihwkit's torch tile refuses). The draw is held for the backward (as
        :attr:`fb_weights` or :attr:`sample_weights`).

        aihwkit's torch tile has its own formulas for the modifiers it supports:
        MULT_NORMAL ``w (1 + std_dev xi)`` (no ``assumed_wmax``), ADD_NORMAL ``w + std_dev
        wmax xi``, DISCRETIZE ``round(w / step) step`` with ``step = res 2 wmax`` (halves to
        even; stochastic rounding adds a uniform in (-1/2, 1/2)), ``wmax`` the
        ``assumed_wmax`` or, with ``rel_to_actual_wmax``, ``max |w|``. The modifiers it
        refuses take the C++ tiles' formulas here.
        """
        mod = self.config.modifier
        if not self._draws(mod) or (is_test and not mod.enable_during_test):
            return w
        samples = batch if mod.per_batch_sample else 1
        shape = (samples, *self.shape)
        key = self.rng.key()
        t = self.dtype.type
        kind = mod.type
        if kind in (WeightModifierType.MULT_NORMAL, WeightModifierType.ADD_NORMAL,
                    WeightModifierType.DISCRETIZE):
            wmax = t(np.abs(w).max()) if mod.rel_to_actual_wmax else t(mod.assumed_wmax)
            rows = np.arange(samples * self.shape[0], dtype=np.int64)
            if kind == WeightModifierType.DISCRETIZE:
                res = mod.res if mod.res <= 1 else 1.0 / mod.res
                step = t(res * 2.0) * wmax if mod.rel_to_actual_wmax else t(res * 2.0 * wmax)
                q = np.broadcast_to(w / step, shape)
                if mod.sto_round:
                    q = q + (kio.row_draws(key, rows, kio.TAG_INP_UNIFORM, self.shape[1], False,
                                           kio.constants(self.dtype)).reshape(shape) - t(0.5))
                out = (np.rint(q) * step).astype(self.dtype)
            else:
                xi = kio.row_draws(key, rows, kio.TAG_W_NOISE, self.shape[1], True,
                                   kio.constants(self.dtype)).reshape(shape)
                if kind == WeightModifierType.MULT_NORMAL:
                    out = w + w * t(mod.std_dev) * xi
                else:
                    out = w + t(mod.std_dev) * wmax * xi
        else:
            out = np.empty(shape, self.dtype)
            for b in range(samples):
                self._modify(w, out[b], key, b)
        out = np.ascontiguousarray(out, dtype=self.dtype)
        if mod.per_batch_sample:
            self.sample_weights = out
            return out
        self.fb_weights = out[0]
        return out[0]

    @staticmethod
    def _draws(mod) -> bool:
        """aihwkit skips the modifier for NONE, and for COPY without drop connect."""
        return not (mod.type == WeightModifierType.NONE
                    or (mod.type == WeightModifierType.COPY and mod.pdrop <= 0))

    def _modify(self, w: np.ndarray, out: np.ndarray, key, sample: int) -> None:
        mod = self.config.modifier
        t = self.dtype.type
        if mod.rel_to_actual_wmax and mod.type != WeightModifierType.COPY:
            # numba returns a Python float: back to the tile dtype, so that the kernel is
            # compiled once and computes in the dtype as aihwkit does
            amax = t(kmod.modifier_amax(w, mod.copy_last_column))
        else:
            amax = t(mod.assumed_wmax)
        t_read = mod.pcm_t_inference + mod.pcm_t0
        params = dict(vars(mod), pcm_log_sqrt_factor=np.sqrt(
            np.log((t_read + _PCM_T_READ) / (2.0 * _PCM_T_READ))))
        f = np.array([params[name] for name in kmod.MF_FIELDS], np.float64)
        coeffs = np.asarray(mod.coeffs, np.float64)
        kmod.modify_weights(w, out, _MOD_KIND[mod.type], f, bool(mod.sto_round),
                            bool(mod.copy_last_column), coeffs, amax, key, sample)

    # -- persistence ---------------------------------------------------------------------------
    def get_state(self) -> dict:
        state = {"has_fb_weights": np.array(self.fb_weights is not None)}
        state["fb_weights"] = (self.fb_weights.copy() if self.fb_weights is not None
                               else np.zeros(self.shape, self.dtype))
        state["has_sample_weights"] = np.array(self.sample_weights is not None)
        state["sample_weights"] = (self.sample_weights.copy() if self.sample_weights is not None
                                   else np.zeros((0, *self.shape), self.dtype))
        if self.scales is not None:
            state["scales"] = self.scales.copy()
        return state

    def set_state(self, state: dict) -> None:
        fb = np.asarray(state["fb_weights"])
        samples = np.asarray(state["sample_weights"])
        if fb.shape != self.shape or fb.dtype != self.dtype:
            raise ValueError(f"fb_weights must have shape {self.shape} and dtype "
                             f"{self.dtype}, got {fb.shape} {fb.dtype}")
        if samples.ndim != 3 or samples.shape[1:] != self.shape or samples.dtype != self.dtype:
            raise ValueError(f"sample_weights must have shape (batch, {self.shape[0]}, "
                             f"{self.shape[1]}) and dtype {self.dtype}, got {samples.shape} "
                             f"{samples.dtype}")
        self.fb_weights = fb.copy() if bool(state["has_fb_weights"]) else None
        self.sample_weights = samples.copy() if bool(state["has_sample_weights"]) else None
        if self.scales is not None:
            scales = np.asarray(state["scales"])
            if scales.shape != self.scales.shape or scales.dtype != self.dtype:
                raise ValueError(f"scales must have shape {self.scales.shape}, got "
                                 f"{scales.shape} {scales.dtype}")
            self.scales[...] = scales
