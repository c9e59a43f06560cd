"""Enumerations of the configuration, with aihwkit's member names and string values."""

from enum import Enum

__all__ = [
    "AnalogMVType",
    "BoundManagementType",
    "NoiseManagementType",
    "PulseType",
    "VectorUnitCellUpdatePolicy",
    "WeightClipType",
    "WeightModifierType",
    "WeightNoiseType",
    "WeightRemapType",
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


class WeightModifierType(Enum):
    """Perturbation of the weights seen by training forward and backward (hardware-aware training)."""

    NONE = "None"
    DISCRETIZE = "Discretize"
    MULT_NORMAL = "MultNormal"
    ADD_NORMAL = "AddNormal"
    DISCRETIZE_ADD_NORMAL = "DiscretizeAddNormal"
    DOREFA = "DoReFa"
    POLY = "Poly"
    PCM_NOISE = "PCMNoise"
    PROG_NOISE = "ProgNoise"
    DROP_CONNECT = "DropConnect"
    COPY = "Copy"


class WeightClipType(Enum):
    """How the clipping value of the weights is chosen after each optimizer step."""

    NONE = "None"
    FIXED_VALUE = "FixedValue"
    LAYER_GAUSSIAN = "LayerGaussian"
    AVERAGE_CHANNEL_MAX = "AverageChannelMax"


class WeightRemapType(Enum):
    """How the weights are rescaled into the conductance range, the scale moving to the outputs."""

    NONE = "None"
    LAYERWISE_SYMMETRIC = "LayerwiseSymmetric"
    CHANNELWISE_SYMMETRIC = "ChannelwiseSymmetric"
