"""Defaults of aihwkit's inference composer (its web interface), aihwkit 1.2.0's values.

Not exported by :mod:`rpusim.presets` (nor by aihwkit's package): import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rpusim.configs import (BoundManagementType, InferenceRPUConfig, IOParameters,
                            MappingParameter, NoiseManagementType, WeightClipParameter,
                            WeightClipType, WeightModifierParameter, WeightModifierType,
                            WeightNoiseType)

__all__ = ["WebComposerIOParameters", "WebComposerWeightModifierParameter",
           "WebComposerWeightClipParameter", "WebComposerMappingParameter",
           "WebComposerInferenceRPUConfig", "OldWebComposerMappingParameter",
           "OldWebComposerInferenceRPUConfig"]


@dataclass
class WebComposerIOParameters(IOParameters):
    """The composer's periphery: 7-bit DAC, 9-bit ADC over ``[-20, 20]``, output noise 0.1."""

    bound_management: BoundManagementType = BoundManagementType.ITERATIVE
    noise_management: NoiseManagementType = NoiseManagementType.ABS_MAX
    inp_res: float = 1.0 / (2**7 - 2)
    inp_sto_round: bool = False
    out_bound: float = 20.0
    out_noise: float = 0.1
    out_res: float = 1.0 / (2**9 - 2)
    w_noise: float = 0.0
    w_noise_type: WeightNoiseType = WeightNoiseType.NONE


@dataclass
class WebComposerWeightModifierParameter(WeightModifierParameter):
    """Additive Gaussian weight noise (std 0.1 of the maximal weight) in training."""

    type: WeightModifierType = WeightModifierType.ADD_NORMAL
    std_dev: float = 0.1


@dataclass
class WebComposerWeightClipParameter(WeightClipParameter):
    """Weights clipped to ``[-1, 1]`` after each step."""

    fixed_value: float = 1.0
    type: WeightClipType = WeightClipType.FIXED_VALUE


@dataclass
class WebComposerMappingParameter(MappingParameter):
    """Tiles of at most 512 x 512, digital bias, column-wise weight scaling, learned scales."""

    digital_bias: bool = True
    weight_scaling_omega: float = 1.0
    weight_scaling_columnwise: bool = True
    learn_out_scaling: bool = True
    out_scaling_columnwise: bool = False
    max_input_size: int = 512
    max_output_size: int = 512


@dataclass
class WebComposerInferenceRPUConfig(InferenceRPUConfig):
    """The composer's inference configuration: the parameters above, PCM noise, drift
    compensation."""

    forward: IOParameters = field(default_factory=WebComposerIOParameters)
    clip: WeightClipParameter = field(default_factory=WebComposerWeightClipParameter)
    modifier: WeightModifierParameter = field(default_factory=WebComposerWeightModifierParameter)
    mapping: MappingParameter = field(default_factory=WebComposerMappingParameter)


@dataclass
class OldWebComposerMappingParameter(WebComposerMappingParameter):
    """The earlier composer mapping: no tile size limit, bias in the tile, no learned scales."""

    digital_bias: bool = False
    weight_scaling_omega: float = 1.0
    weight_scaling_columnwise: bool = True
    learn_out_scaling: bool = False
    out_scaling_columnwise: bool = False
    max_input_size: int = 0
    max_output_size: int = 0


@dataclass
class OldWebComposerInferenceRPUConfig(WebComposerInferenceRPUConfig):
    """The earlier composer configuration (:class:`OldWebComposerMappingParameter`)."""

    mapping: MappingParameter = field(default_factory=OldWebComposerMappingParameter)
