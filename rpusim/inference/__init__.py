"""Analog inference: noise models of programmed conductances, conductance converters and drift
compensation, under aihwkit's names (``aihwkit.inference``).

A tile built from an :class:`~rpusim.configs.InferenceRPUConfig` asks its ``noise_model`` for
programmed and drifted weights (``tile.program_weights()``, ``tile.drift_weights(t)``) and its
``drift_compensation`` for the output scale alpha. The base classes in :mod:`rpusim.inference.base`
document what a model written in Python must provide to work like the built-ins.
"""

from rpusim.inference.base import (BaseConductanceConverter, BaseDriftCompensation,
                                   BaseNoiseModel, kernel_key)
from rpusim.inference.compensation import GlobalDriftCompensation, PerColumnDriftCompensation
from rpusim.inference.converter import (CustomPairConductanceConverter,
                                        DualPairConductanceConverter,
                                        NPairConductanceConverter,
                                        SingleDeviceConductanceConverter,
                                        SinglePairConductanceConverter)
from rpusim.inference.custom import StateIndependentNoiseModel
from rpusim.inference.pcm import CustomDriftPCMLikeNoiseModel, PCMLikeNoiseModel
from rpusim.inference.reram import ReRamCMONoiseModel, ReRamWan2022NoiseModel

__all__ = [
    "BaseConductanceConverter", "BaseDriftCompensation", "BaseNoiseModel", "kernel_key",
    "GlobalDriftCompensation", "PerColumnDriftCompensation",
    "SinglePairConductanceConverter", "DualPairConductanceConverter",
    "NPairConductanceConverter", "CustomPairConductanceConverter",
    "SingleDeviceConductanceConverter",
    "PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel", "StateIndependentNoiseModel",
    "ReRamWan2022NoiseModel", "ReRamCMONoiseModel",
]
