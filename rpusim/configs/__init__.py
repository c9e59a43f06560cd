"""Configuration dataclasses, with aihwkit's class names, field names and Python defaults.

Every device and compound config is re-exported here, so users import all configs from one place.
"""

from rpusim.configs._base import config_from_dict
from rpusim.configs.drift import DriftParameter, SimpleDriftParameter
from rpusim.configs.enums import (AnalogMVType, BoundManagementType, NoiseManagementType,
                                  PulseType, RPUDataType, VectorUnitCellUpdatePolicy,
                                  WeightNoiseType)
from rpusim.configs.io import IOParameters
from rpusim.configs.mapping import MappingParameter
from rpusim.configs.pre_post import InputRangeParameter, PrePostProcessingParameter
from rpusim.configs.rpu import (DigitalRankUpdateRPUConfig, FloatingPointRPUConfig, RPUConfig,
                                SingleRPUConfig, UnitCellRPUConfig)
from rpusim.configs.runtime import RPUConfigBase, RuntimeParameter
from rpusim.configs.update import UpdateParameters
from rpusim.configs.inference import InferenceRPUConfig, TorchInferenceRPUConfig
from rpusim.configs.irdrop import IOParametersIRDropT, TorchInferenceRPUConfigIRDropT
from rpusim.configs.weight_modifiers import (WeightClipParameter, WeightClipType,
                                             WeightModifierParameter, WeightModifierType,
                                             WeightRemapParameter, WeightRemapType)
from rpusim.devices import *  # noqa: F401,F403
from rpusim.devices import __all__ as _device_names
from rpusim.compounds import *  # noqa: F401,F403
from rpusim.compounds import __all__ as _compound_names
from rpusim.configs.helpers import build_config

__all__ = [
    "config_from_dict", "DriftParameter", "SimpleDriftParameter", "AnalogMVType",
    "BoundManagementType", "NoiseManagementType", "PulseType", "VectorUnitCellUpdatePolicy",
    "WeightNoiseType", "IOParameters", "MappingParameter", "InputRangeParameter",
    "PrePostProcessingParameter", "RPUConfig", "SingleRPUConfig", "UnitCellRPUConfig",
    "FloatingPointRPUConfig", "DigitalRankUpdateRPUConfig", "UpdateParameters",
    "InferenceRPUConfig", "TorchInferenceRPUConfig",
    "WeightModifierParameter", "WeightModifierType", "WeightClipParameter", "WeightClipType",
    "WeightRemapParameter", "WeightRemapType",
    "RPUDataType", "RuntimeParameter", "RPUConfigBase", "build_config",
    "IOParametersIRDropT", "TorchInferenceRPUConfigIRDropT",
    *_device_names, *_compound_names,
]
