"""Inference presets: hardware-aware training and analog inference settings (aihwkit 1.2.0).

Both presets set ``pre_post`` as aihwkit does: ``StandardHWATrainingPreset`` enables the learned
input range (initial value 3, initialised from the first 100 batches), ``FloatingPointPreset``
disables it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rpusim.configs import (BoundManagementType, InferenceRPUConfig, IOParameters,
                            InputRangeParameter, MappingParameter, NoiseManagementType,
                            PrePostProcessingParameter, TorchInferenceRPUConfig,
                            WeightClipParameter, WeightClipType, WeightNoiseType,
                            WeightRemapParameter, WeightRemapType)
from rpusim.presets.utils import PresetIOParameters

__all__ = ["StandardHWATrainingPreset", "FloatingPointPreset"]


def _standard_forward() -> PresetIOParameters:
    return PresetIOParameters(
        inp_res=254.0, out_res=254.0, bound_management=BoundManagementType.NONE,
        noise_management=NoiseManagementType.CONSTANT, nm_thres=1.0, w_noise=0.0175,
        w_noise_type=WeightNoiseType.PCM_READ, ir_drop=1.0, out_noise=0.04, out_bound=10.0)


def _learned_input_range() -> PrePostProcessingParameter:
    return PrePostProcessingParameter(input_range=InputRangeParameter(
        enable=True, init_value=3.0, init_from_data=100, init_std_alpha=3.0, decay=0.001,
        input_min_percentage=0.95, output_min_percentage=0.95, manage_output_clipping=False,
        gradient_scale=1.0, gradient_relative=True))


def _no_input_range() -> PrePostProcessingParameter:
    return PrePostProcessingParameter(input_range=InputRangeParameter(enable=False))


@dataclass
class StandardHWATrainingPreset(InferenceRPUConfig):
    """The standard analog in-memory computing setting of Rasch et al., Nat. Commun. 2023.

    A baseline for comparing hardware-aware training methods and the noise robustness of
    networks: 8-bit DAC and ADC (254 steps), output range ``[-10, 10]`` with noise 0.04, a
    constant input scale (``noise_management`` ``CONSTANT``, ``nm_thres`` 1, no bound
    management), PCM read noise (``w_noise`` 0.0175) and IR drop; weights clipped to
    ``[-1, 1]`` and remapped channel-wise after each step; one tile per 512 inputs, digital
    bias, learned column-wise output scales, a learned input range per tile. Inference:
    ``PCMLikeNoiseModel`` with global drift compensation.
    """

    mapping: MappingParameter = field(default_factory=lambda: MappingParameter(
        weight_scaling_omega=1.0, weight_scaling_columnwise=True, max_input_size=512,
        max_output_size=0, digital_bias=True, learn_out_scaling=True,
        out_scaling_columnwise=True))
    forward: IOParameters = field(default_factory=_standard_forward)
    remap: WeightRemapParameter = field(default_factory=lambda: WeightRemapParameter(
        remapped_wmax=1.0, type=WeightRemapType.CHANNELWISE_SYMMETRIC))
    clip: WeightClipParameter = field(default_factory=lambda: WeightClipParameter(
        type=WeightClipType.FIXED_VALUE, fixed_value=1.0))
    pre_post: PrePostProcessingParameter = field(default_factory=_learned_input_range)


@dataclass
class FloatingPointPreset(TorchInferenceRPUConfig):
    """An inference configuration without any noise: the floating-point reference.

    Perfect forward MVM, no tile size limit; training and inference equal the digital model
    (the programming and drift of the default noise model still apply when asked for with
    ``program_weights``/``drift_weights``, as in aihwkit).
    """

    mapping: MappingParameter = field(
        default_factory=lambda: MappingParameter(max_input_size=0, max_output_size=0))
    forward: IOParameters = field(default_factory=lambda: IOParameters(is_perfect=True))
    pre_post: PrePostProcessingParameter = field(default_factory=_no_input_range)
