"""Enumerations of the configuration, with aihwkit's member names and string values."""

from enum import Enum

__all__ = [
    "AnalogMVType",
    "BoundManagementType",
    "NoiseManagementType",
    "PulseType",
    "VectorUnitCellUpdatePolicy",
    "WeightNoiseType",
]


class BoundManagementType(Enum):
    """Bound management of the forward pass (retry with reduced inputs when outputs saturate)."""

    NONE = "None"
    ITERATIVE = "Iterative"
    ITERATIVE_WORST_CASE = "IterativeWorstCase"
    SHIFT = "Shift"


class NoiseManagementType(Enum):
    """How the input scale of an analog MVM is chosen."""

    NONE = "None"
    ABS_MAX = "AbsMax"
    ABS_MAX_NP_SUM = "AbsMaxNPSum"
    MAX = "Max"
    CONSTANT = "Constant"
    AVERAGE_ABS_MAX = "AverageAbsMax"


class WeightNoiseType(Enum):
    """Output-referred weight (read) noise of an analog MVM."""

    NONE = "None"
    ADDITIVE_CONSTANT = "AdditiveConstant"
    PCM_READ = "PCMRead"


class PulseType(Enum):
    """How an update is turned into device pulses."""

    NONE = "None"
    STOCHASTIC_COMPRESSED = "StochasticCompressed"
    STOCHASTIC = "Stochastic"
    NONE_WITH_DEVICE = "NoneWithDevice"
    MEAN_COUNT = "MeanCount"
    DETERMINISTIC_IMPLICIT = "DeterministicImplicit"


class VectorUnitCellUpdatePolicy(Enum):
    """Which device(s) of a vector unit cell receive the update pulses."""

    ALL = "All"
    SINGLE_FIXED = "SingleFixed"
    SINGLE_SEQUENTIAL = "SingleSequential"
    SINGLE_RANDOM = "SingleRandom"


class AnalogMVType(Enum):
    """How the analog matrix-vector product is carried out."""

    IDEAL = "Ideal"
    ONE_PASS = "OnePass"
    POS_NEG_SEPARATE = "PosNegSeparate"
    POS_NEG_SEPARATE_DIGITAL_SUM = "PosNegSeparateDigitalSum"
    SPLIT_MODE = "SplitMode"
    BIT_WISE = "BitWise"
