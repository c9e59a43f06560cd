"""Hardware-aware training: weight modifier, weight clipping and weight remapping parameters.

aihwkit's ``WeightModifierParameter``, ``WeightClipParameter`` and ``WeightRemapParameter``, with
its field names and defaults. A tile built from an ``InferenceRPUConfig`` applies them in
``post_update_step()``, in the order clip, remap, modifier (spec inference.md, sections 10-12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import WeightClipType, WeightModifierType, WeightRemapType

__all__ = ["WeightModifierParameter", "WeightModifierType", "WeightClipParameter",
           "WeightClipType", "WeightRemapParameter", "WeightRemapType"]


@dataclass
class WeightModifierParameter(ConfigBase):
    """Perturbation of the weights used by training forward and backward passes.

    After each optimizer step the tile draws ``W_fb = modify(W)`` from the current weights and
    holds it: every training forward and backward until the next ``post_update_step()`` sees
    the same draw. Test-mode forward passes use ``W`` unless ``enable_during_test``.

    ``amax`` below is ``max |W|`` (without the last column if ``copy_last_column``; 1 if that is
    0) when ``rel_to_actual_wmax``, else ``assumed_wmax``. ``R(v)`` rounds ``v / res`` half
    away from zero (stochastically with ``sto_round``) and multiplies by ``res``.

    Attributes
    ----------
    std_dev : float
        Noise scale of ``MULT_NORMAL`` (``W + W std_dev amax xi``), ``ADD_NORMAL`` and
        ``DISCRETIZE_ADD_NORMAL`` (``+ std_dev amax xi``), ``POLY`` and ``PROG_NOISE`` (the
        polynomial's factor), ``PCM_NOISE`` (scale of programming and read noise).
    per_batch_sample : bool
        A fresh draw for every sample of a training forward (and the matching backward)
        instead of one draw per optimizer step.
    res : float
        Rounding step of ``DISCRETIZE``, ``DISCRETIZE_ADD_NORMAL`` (on ``W / amax``) and
        ``DOREFA``; 0 disables the rounding.
    sto_round : bool
        Stochastic rounding (``round(v / res + u - 0.5)``) instead of nearest.
    dorefa_clip : float
        ``DOREFA``: ``W_fb = R(tanh(W) |dorefa_clip / tanh(amax)|)``.
    pdrop : float
        Drop-connect probability: each element of ``W_fb`` is set to 0 with this probability
        (every type except ``NONE``).
    enable_during_test : bool
        Test-mode forward passes also read the held draw.
    rel_to_actual_wmax : bool
        ``amax`` is the actual ``max |W|`` (True) or ``assumed_wmax`` (False).
    assumed_wmax : float
        ``amax`` when ``rel_to_actual_wmax`` is False.
    copy_last_column : bool
        The last column (a bias held in the tile) is never modified.
    coeffs : list of float
        Polynomial ``sum_k coeffs[k] (|W| / amax)^k`` of ``POLY`` and ``PROG_NOISE``.
    type : WeightModifierType
        Which modification (``NONE``: the weights are used unchanged).
    g_max : float
        ``PROG_NOISE`` and ``PCM_NOISE``: maximal conductance in uS (the polynomial of
        ``PROG_NOISE`` is in uS, divided by ``g_max``).
    pcm_zero_thres : float
        ``PCM_NOISE``: targets below ``pcm_zero_thres * std_dev * 0.26348`` uS are not
        programmed (read as 0).
    pcm_t_inference : float
        ``PCM_NOISE``: seconds after programming at which drift variation and read noise are
        evaluated.
    pcm_prob_at_reset, pcm_prob_at_gmax, pcm_prob_at_random : float
        ``PCM_NOISE``: probabilities of a device stuck at 0, shifted by ``g_max`` and at a
        uniformly random conductance.
    pcm_t0 : float
        ``PCM_NOISE``: seconds from programming to the first read (drift time origin).
    """

    _enum_fields: ClassVar[dict] = {"type": WeightModifierType}

    std_dev: float = 0.0
    per_batch_sample: bool = False
    res: float = 0.0
    sto_round: bool = False
    dorefa_clip: float = 0.6
    pdrop: float = 0.0
    enable_during_test: bool = False
    rel_to_actual_wmax: bool = True
    assumed_wmax: float = 1.0
    copy_last_column: bool = False
    coeffs: list = field(default_factory=lambda: [0.0105392, 0.0768, -0.046925])
    type: WeightModifierType = WeightModifierType.NONE
    g_max: float = 25.0
    pcm_zero_thres: float = 0.0
    pcm_t_inference: float = 0.0
    pcm_prob_at_reset: float = 0.0
    pcm_prob_at_gmax: float = 0.0
    pcm_prob_at_random: float = 0.0
    pcm_t0: float = 20.0

    def validate(self) -> None:
        super().validate()
        for name in ("per_batch_sample", "sto_round", "enable_during_test",
                     "rel_to_actual_wmax", "copy_last_column"):
            self._check_bool(name)
        for name in ("std_dev", "res", "pcm_zero_thres", "pcm_t_inference"):
            self._check_number(name, lo=0.0)
        for name in ("pdrop", "pcm_prob_at_reset", "pcm_prob_at_gmax", "pcm_prob_at_random"):
            self._check_number(name, lo=0.0, hi=1.0)
        self._check_number("dorefa_clip")
        for name in ("assumed_wmax", "g_max", "pcm_t0"):
            self._check_number(name, lo=0.0, lo_open=True)
        self._check_coeffs()

    def _check_coeffs(self) -> None:
        value = self.coeffs
        if isinstance(value, (tuple, np.ndarray)):
            # a plain list keeps the config JSON-safe
            value = value.tolist() if isinstance(value, np.ndarray) else list(value)
            self.coeffs = value
        if not isinstance(value, list):
            raise TypeError(f"WeightModifierParameter.coeffs must be a list of numbers, "
                            f"got {value!r:.80}")
        for v in value:
            if (isinstance(v, (bool, np.bool_))
                    or not isinstance(v, (int, float, np.integer, np.floating))
                    or not math.isfinite(v)):
                raise ValueError(f"WeightModifierParameter.coeffs must hold finite numbers, "
                                 f"got {v!r}")
        self.coeffs = [float(v) for v in value]


@dataclass
class WeightClipParameter(ConfigBase):
    """Clipping of the weights after each optimizer step: ``W <- clip(W, -c, c)`` if ``c > 0``.

    Attributes
    ----------
    fixed_value : float
        ``FIXED_VALUE``: ``c = fixed_value``. For the other types, an upper limit on ``c`` if
        > 0. The default -1 clips nothing.
    sigma : float
        ``LAYER_GAUSSIAN``: ``c = sigma * std(W)`` (sample std over all weights).
    type : WeightClipType
        ``NONE``, ``FIXED_VALUE``, ``LAYER_GAUSSIAN`` or ``AVERAGE_CHANNEL_MAX`` (``c`` is the
        mean over outputs of ``max_j |W_ij|``).
    """

    _enum_fields: ClassVar[dict] = {"type": WeightClipType}

    fixed_value: float = -1.0
    sigma: float = 2.5
    type: WeightClipType = WeightClipType.NONE

    def validate(self) -> None:
        super().validate()
        self._check_number("fixed_value")
        self._check_number("sigma", lo=0.0)


@dataclass
class WeightRemapParameter(ConfigBase):
    """Remapping of the weights into the conductance range after each optimizer step.

    The tile keeps one scale ``s_i`` per output; remapping divides the analog weights by a
    factor and multiplies ``s`` by it, so ``W * s`` (the logical weights) stays the same while
    the analog non-idealities act on the remapped ``W``.

    Attributes
    ----------
    remapped_wmax : float
        The largest analog weight after remapping.
    max_scale_range : float
        ``CHANNELWISE_SYMMETRIC``: if > 0, no scale grows beyond ``max_scale_range`` times the
        smallest one (requires ``remapped_wmax == 1``); 0 means unlimited.
    max_scale_ref : float
        Lower limit of the smallest scale used for ``max_scale_range`` (0: none).
    type : WeightRemapType
        ``NONE``, ``LAYERWISE_SYMMETRIC`` (one factor ``max |W| / remapped_wmax``) or
        ``CHANNELWISE_SYMMETRIC`` (one factor per output row).
    """

    _enum_fields: ClassVar[dict] = {"type": WeightRemapType}

    remapped_wmax: float = 1.0
    max_scale_range: float = 0.0
    max_scale_ref: float = 0.0
    type: WeightRemapType = WeightRemapType.NONE

    def validate(self) -> None:
        super().validate()
        self._check_number("remapped_wmax", lo=0.0, lo_open=True)
        self._check_number("max_scale_range", lo=0.0)
        self._check_number("max_scale_ref", lo=0.0)
        if (self.type == WeightRemapType.CHANNELWISE_SYMMETRIC and self.max_scale_range > 0
                and self.remapped_wmax != 1.0):
            raise ValueError("WeightRemapParameter.remapped_wmax must be 1.0 when "
                             f"max_scale_range > 0, got {self.remapped_wmax!r}")
