"""``InferenceRPUConfig``: hardware-aware training and analog inference (aihwkit's fields and
defaults; semantics in spec inference.md).

The noise model and the drift compensation are objects of :mod:`rpusim.inference`; this module
imports that package only when a default is built or a config is validated, because
``rpusim.inference`` itself builds on :mod:`rpusim.configs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rpusim.configs.enums import PulseType
from rpusim.configs.io import IOParameters
from rpusim.configs.rpu import RPUConfig
from rpusim.configs.update import UpdateParameters
from rpusim.configs.weight_modifiers import (WeightClipParameter, WeightModifierParameter,
                                             WeightRemapParameter)
from rpusim.devices import IdealDevice

__all__ = ["InferenceRPUConfig", "TorchInferenceRPUConfig"]


def _default_noise_model():
    from rpusim.inference import PCMLikeNoiseModel
    return PCMLikeNoiseModel()


def _default_compensation():
    from rpusim.inference import GlobalDriftCompensation
    return GlobalDriftCompensation()


@dataclass
class InferenceRPUConfig(RPUConfig):
    """Configuration of a tile for hardware-aware training and inference (aihwkit's name).

    Training is ideal floating-point SGD (``IdealDevice``, ``PulseType.NONE``, perfect
    backward) through the noisy forward IO model, on weights perturbed by ``modifier`` and
    kept in range by ``clip`` and ``remap`` (all three in ``post_update_step()``). For
    inference, ``tile.program_weights()`` applies the programming noise of ``noise_model``,
    ``tile.drift_weights(t_inference)`` its drift and read noise, and ``drift_compensation``
    rescales the test-mode outputs.

    Attributes
    ----------
    device : IdealDevice
        The training device (ideal).
    forward : IOParameters
        The forward IO model, used in training and in test mode (default: aihwkit's noisy IO).
    backward : IOParameters
        ``IOParameters(is_perfect=True)``.
    update : UpdateParameters
        ``UpdateParameters(pulse_type=PulseType.NONE)``: exact float updates.
    mapping : MappingParameter
        Read by the layers.
    pre_post : PrePostProcessingParameter
        The learned input range; read by the layers.
    noise_model : BaseNoiseModel
        Programming noise, drift and read noise; ``PCMLikeNoiseModel()``.
    drift_compensation : BaseDriftCompensation or None
        ``GlobalDriftCompensation()``; ``None`` switches compensation off (alpha stays 1).
    clip : WeightClipParameter
        Weight clipping after each optimizer step (off by default).
    remap : WeightRemapParameter
        Weight remapping after each optimizer step (off by default).
    modifier : WeightModifierParameter
        Weight perturbation of the training passes (off by default).
    """

    device: Any = field(default_factory=IdealDevice)
    backward: IOParameters = field(default_factory=lambda: IOParameters(is_perfect=True))
    update: UpdateParameters = field(
        default_factory=lambda: UpdateParameters(pulse_type=PulseType.NONE))
    noise_model: Any = field(default_factory=_default_noise_model)
    drift_compensation: Any = field(default_factory=_default_compensation)
    clip: WeightClipParameter = field(default_factory=WeightClipParameter)
    remap: WeightRemapParameter = field(default_factory=WeightRemapParameter)
    modifier: WeightModifierParameter = field(default_factory=WeightModifierParameter)

    def validate(self) -> None:
        from rpusim.inference import BaseDriftCompensation, BaseNoiseModel

        name = type(self).__name__
        if not isinstance(self.noise_model, BaseNoiseModel):
            raise TypeError(f"{name}.noise_model must be a noise model (a BaseNoiseModel "
                            f"subclass of rpusim.inference), got {self.noise_model!r:.100}")
        if self.drift_compensation is not None and not isinstance(
                self.drift_compensation, BaseDriftCompensation):
            raise TypeError(f"{name}.drift_compensation must be None or a "
                            f"BaseDriftCompensation subclass, got "
                            f"{self.drift_compensation!r:.100}")
        for key, cls in (("clip", WeightClipParameter), ("remap", WeightRemapParameter),
                         ("modifier", WeightModifierParameter)):
            if not isinstance(getattr(self, key), cls):
                raise TypeError(f"{name}.{key} must be {cls.__name__}, got "
                                f"{getattr(self, key)!r:.100}")
        super().validate()


@dataclass
class TorchInferenceRPUConfig(InferenceRPUConfig):
    """An ``InferenceRPUConfig`` simulated as aihwkit 1.2.0's torch-based tile.

    aihwkit pairs this config with a tile written in plain torch, whose gradients are torch's
    autograd through its forward. rpusim's tiles built from it follow that tile wherever it
    accepts the forward IO (:func:`~rpusim.configs.io.torch_tile_supports`): bound
    management over the whole batch, the gradients of the forward's arithmetic in the
    layers, a new weight-modifier draw at every training forward, any ``inp_bound`` with
    noise management (:mod:`rpusim.io_torch`). A forward aihwkit's torch tile refuses is
    simulated with the C++ tiles' MVM and gradients. Presets (``FloatingPointPreset``) and
    scripts use it under this name.
    """

    _torch_tile: ClassVar[bool] = True
