"""A hardware-aware training config for the tests: ``InferenceRPUConfig`` once it exists in
``rpusim.configs``, else a minimal stand-in with the same training fields and defaults."""

from dataclasses import dataclass, field

import rpusim.configs as C
from rpusim.configs import (IdealDevice, IOParameters, PulseType, RPUConfig, UpdateParameters,
                            WeightClipParameter, WeightModifierParameter, WeightRemapParameter)


@dataclass
class _StandInInferenceRPUConfig(RPUConfig):
    device: object = field(default_factory=IdealDevice)
    backward: IOParameters = field(default_factory=lambda: IOParameters(is_perfect=True))
    update: UpdateParameters = field(
        default_factory=lambda: UpdateParameters(pulse_type=PulseType.NONE))
    clip: WeightClipParameter = field(default_factory=WeightClipParameter)
    remap: WeightRemapParameter = field(default_factory=WeightRemapParameter)
    modifier: WeightModifierParameter = field(default_factory=WeightModifierParameter)


def hwa_config(**fields):
    """An inference config with ``fields`` set and drift compensation off (if it has one)."""
    cls = getattr(C, "InferenceRPUConfig", _StandInInferenceRPUConfig)
    config = cls()
    if hasattr(config, "drift_compensation"):
        config.drift_compensation = None
    for name, value in fields.items():
        setattr(config, name, value)
    return config
