"""RPU-config presets: a preset device paired with a training algorithm (aihwkit 1.2.0's values).

Every preset uses :class:`~rpusim.presets.PresetIOParameters` for the forward and backward
MVMs and :class:`~rpusim.presets.PresetUpdateParameters` (or a variant with another maximal
pulse-train length) for the update. The transfer compounds read the fast device through the
same periphery with noise and bound management off; TTv2, c-TTv2 and AGAD write the transfer
one pulse per buffered step (no update or bit-length management).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from rpusim.configs import (BoundManagementType, ChoppedTransferCompound,
                            DigitalRankUpdateRPUConfig, DynamicTransferCompound, IOParameters,
                            MixedPrecisionCompound, NoiseManagementType, SingleRPUConfig,
                            TransferCompound, UnitCellRPUConfig, UpdateParameters,
                            VectorUnitCell, VectorUnitCellUpdatePolicy)
from rpusim.presets.compounds import PCMPresetUnitCell
from rpusim.presets.devices import (CapacitorPresetDevice, EcRamMOPresetDevice,
                                    EcRamPresetDevice, GokmenVlasovPresetDevice,
                                    IdealizedPresetDevice, ReRamESPresetDevice,
                                    ReRamSBPresetDevice)
from rpusim.presets.utils import PresetIOParameters, PresetUpdateParameters

__all__ = [
    "ReRamESPreset", "ReRamSBPreset", "CapacitorPreset", "EcRamPreset", "EcRamMOPreset",
    "IdealizedPreset", "GokmenVlasovPreset", "PCMPreset",
    "ReRamES2Preset", "ReRamSB2Preset", "Capacitor2Preset", "EcRam2Preset", "EcRamMO2Preset",
    "Idealized2Preset",
    "ReRamES4Preset", "ReRamSB4Preset", "Capacitor4Preset", "EcRam4Preset", "EcRamMO4Preset",
    "Idealized4Preset",
    "TikiTakaReRamESPreset", "TikiTakaReRamSBPreset", "TikiTakaCapacitorPreset",
    "TikiTakaEcRamPreset", "TikiTakaEcRamMOPreset", "TikiTakaIdealizedPreset",
    "TTv2ReRamESPreset", "TTv2ReRamSBPreset", "TTv2CapacitorPreset", "TTv2EcRamPreset",
    "TTv2EcRamMOPreset", "TTv2IdealizedPreset",
    "ChoppedTTv2ReRamESPreset", "ChoppedTTv2ReRamSBPreset", "ChoppedTTv2CapacitorPreset",
    "ChoppedTTv2EcRamPreset", "ChoppedTTv2EcRamMOPreset", "ChoppedTTv2IdealizedPreset",
    "AGADReRamESPreset", "AGADReRamSBPreset", "AGADCapacitorPreset", "AGADEcRamPreset",
    "AGADEcRamMOPreset", "AGADIdealizedPreset",
    "MixedPrecisionReRamESPreset", "MixedPrecisionReRamSBPreset",
    "MixedPrecisionCapacitorPreset", "MixedPrecisionEcRamPreset", "MixedPrecisionEcRamMOPreset",
    "MixedPrecisionIdealizedPreset", "MixedPrecisionGokmenVlasovPreset",
    "MixedPrecisionPCMPreset",
]

Factory = Callable[[], Any]


def _reram_sb_symmetric() -> ReRamSBPresetDevice:
    """The ReRAM soft-bounds device with its symmetry point subtracted (transfer presets)."""
    return ReRamSBPresetDevice(subtract_symmetry_point=True)


def _transfer_read() -> PresetIOParameters:
    return PresetIOParameters(noise_management=NoiseManagementType.NONE,
                              bound_management=BoundManagementType.NONE)


def _pulse_per_step() -> PresetUpdateParameters:
    return PresetUpdateParameters(desired_bl=1, update_bl_management=False,
                                  update_management=False)


def _max_pulses(desired_bl: int) -> Factory:
    """The preset update with another maximal pulse-train length."""
    return lambda: PresetUpdateParameters(desired_bl=desired_bl)


def _vector(device: Factory, n: int) -> Factory:
    return lambda: VectorUnitCell(unit_cell_devices=[device() for _ in range(n)],
                                  update_policy=VectorUnitCellUpdatePolicy.SINGLE_RANDOM)


def _tiki_taka(device: Factory, **fields) -> Factory:
    return lambda: TransferCompound(
        unit_cell_devices=[device(), device()], transfer_forward=_transfer_read(),
        transfer_update=PresetUpdateParameters(), units_in_mbatch=True, **fields)


def _chopped(device: Factory, **fields) -> Factory:
    return lambda: ChoppedTransferCompound(
        unit_cell_devices=[device(), device()], transfer_forward=_transfer_read(),
        transfer_update=_pulse_per_step(), units_in_mbatch=False, auto_scale=True, **fields)


def _agad(device: Factory, **fields) -> Factory:
    return lambda: DynamicTransferCompound(
        unit_cell_devices=[device(), device()], transfer_forward=_transfer_read(),
        transfer_update=_pulse_per_step(), auto_scale=True, **fields)


def _mixed_precision(device: Factory) -> Factory:
    return lambda: MixedPrecisionCompound(device=device())


@dataclass
class ReRamESPreset(SingleRPUConfig):
    """Analog SGD with one ``ReRamESPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=ReRamESPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class ReRamSBPreset(SingleRPUConfig):
    """Analog SGD with one ``ReRamSBPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=ReRamSBPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class CapacitorPreset(SingleRPUConfig):
    """Analog SGD with one ``CapacitorPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=CapacitorPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class EcRamPreset(SingleRPUConfig):
    """Analog SGD with one ``EcRamPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=EcRamPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class EcRamMOPreset(SingleRPUConfig):
    """Analog SGD with one ``EcRamMOPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=EcRamMOPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class IdealizedPreset(SingleRPUConfig):
    """Analog SGD with one ``IdealizedPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=IdealizedPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class GokmenVlasovPreset(SingleRPUConfig):
    """Analog SGD with one ``GokmenVlasovPresetDevice`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=GokmenVlasovPresetDevice)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class PCMPreset(UnitCellRPUConfig):
    """Analog SGD with one ``PCMPresetUnitCell`` per weight.

    Parallel update with stochastic pulse trains; preset periphery and update.
    """

    device: Any = field(default_factory=PCMPresetUnitCell)
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class ReRamES2Preset(UnitCellRPUConfig):
    """Two ``ReRamESPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(ReRamESPresetDevice, 2))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class ReRamSB2Preset(UnitCellRPUConfig):
    """Two ``ReRamSBPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(ReRamSBPresetDevice, 2))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class Capacitor2Preset(UnitCellRPUConfig):
    """Two ``CapacitorPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(CapacitorPresetDevice, 2))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class EcRam2Preset(UnitCellRPUConfig):
    """Two ``EcRamPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(EcRamPresetDevice, 2))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class EcRamMO2Preset(UnitCellRPUConfig):
    """Two ``EcRamMOPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(EcRamMOPresetDevice, 2))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class Idealized2Preset(UnitCellRPUConfig):
    """Two ``IdealizedPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(IdealizedPresetDevice, 2))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class ReRamES4Preset(UnitCellRPUConfig):
    """Four ``ReRamESPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(ReRamESPresetDevice, 4))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class ReRamSB4Preset(UnitCellRPUConfig):
    """Four ``ReRamSBPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(ReRamSBPresetDevice, 4))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class Capacitor4Preset(UnitCellRPUConfig):
    """Four ``CapacitorPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(CapacitorPresetDevice, 4))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class EcRam4Preset(UnitCellRPUConfig):
    """Four ``EcRamPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(EcRamPresetDevice, 4))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class EcRamMO4Preset(UnitCellRPUConfig):
    """Four ``EcRamMOPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(EcRamMOPresetDevice, 4))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class Idealized4Preset(UnitCellRPUConfig):
    """Four ``IdealizedPresetDevice`` per weight, one pulsed per sample.

    A :class:`~rpusim.configs.VectorUnitCell` (weight: the devices' mean) that pulses one
    randomly chosen device per sample (``SINGLE_RANDOM``); preset periphery and update.
    """

    device: Any = field(default_factory=_vector(IdealizedPresetDevice, 4))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TikiTakaReRamESPreset(UnitCellRPUConfig):
    """Tiki-taka on two ``ReRamESPresetDevice``.

    A :class:`~rpusim.configs.TransferCompound`: gradient pulses on device A, transfers of A's
    columns into C once per mini-batch (reads with noise and bound management off).
    """

    device: Any = field(default_factory=_tiki_taka(ReRamESPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TikiTakaReRamSBPreset(UnitCellRPUConfig):
    """Tiki-taka on two ``ReRamSBPresetDevice`` (symmetry point subtracted).

    A :class:`~rpusim.configs.TransferCompound`: gradient pulses on device A, transfers of A's
    columns into C once per mini-batch (reads with noise and bound management off).
    """

    device: Any = field(default_factory=_tiki_taka(_reram_sb_symmetric, transfer_every=1.0))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TikiTakaCapacitorPreset(UnitCellRPUConfig):
    """Tiki-taka on two ``CapacitorPresetDevice``.

    A :class:`~rpusim.configs.TransferCompound`: gradient pulses on device A, transfers of A's
    columns into C once per mini-batch (reads with noise and bound management off).
    """

    device: Any = field(default_factory=_tiki_taka(CapacitorPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TikiTakaEcRamPreset(UnitCellRPUConfig):
    """Tiki-taka on two ``EcRamPresetDevice``.

    A :class:`~rpusim.configs.TransferCompound`: gradient pulses on device A, transfers of A's
    columns into C once per mini-batch (reads with noise and bound management off).
    """

    device: Any = field(default_factory=_tiki_taka(EcRamPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TikiTakaEcRamMOPreset(UnitCellRPUConfig):
    """Tiki-taka on two ``EcRamMOPresetDevice``.

    A :class:`~rpusim.configs.TransferCompound`: gradient pulses on device A, transfers of A's
    columns into C once per mini-batch (reads with noise and bound management off).
    """

    device: Any = field(default_factory=_tiki_taka(EcRamMOPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TikiTakaIdealizedPreset(UnitCellRPUConfig):
    """Tiki-taka on two ``IdealizedPresetDevice``.

    A :class:`~rpusim.configs.TransferCompound`: gradient pulses on device A, transfers of A's
    columns into C once per mini-batch (reads with noise and bound management off).
    """

    device: Any = field(default_factory=_tiki_taka(IdealizedPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class TTv2ReRamESPreset(UnitCellRPUConfig):
    """Tiki-taka v2 on two ``ReRamESPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound` without choppers (``in_chop_prob``
    0): the transfer reads of A accumulate in a digital buffer, written to C one pulse at a time.
    """

    device: Any = field(default_factory=_chopped(
        ReRamESPresetDevice, in_chop_prob=0.0, fast_lr=0.5, auto_granularity=1000))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class TTv2ReRamSBPreset(UnitCellRPUConfig):
    """Tiki-taka v2 on two ``ReRamSBPresetDevice`` (symmetry point subtracted).

    A :class:`~rpusim.configs.ChoppedTransferCompound` without choppers (``in_chop_prob``
    0): the transfer reads of A accumulate in a digital buffer, written to C one pulse at a time.
    """

    device: Any = field(default_factory=_chopped(
        _reram_sb_symmetric, in_chop_prob=0.0, fast_lr=0.5, auto_granularity=1000))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class TTv2CapacitorPreset(UnitCellRPUConfig):
    """Tiki-taka v2 on two ``CapacitorPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound` without choppers (``in_chop_prob``
    0): the transfer reads of A accumulate in a digital buffer, written to C one pulse at a time.
    """

    device: Any = field(default_factory=_chopped(
        CapacitorPresetDevice, in_chop_prob=0.0, fast_lr=0.1, auto_granularity=1000))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class TTv2EcRamPreset(UnitCellRPUConfig):
    """Tiki-taka v2 on two ``EcRamPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound` without choppers (``in_chop_prob``
    0): the transfer reads of A accumulate in a digital buffer, written to C one pulse at a time.
    """

    device: Any = field(default_factory=_chopped(
        EcRamPresetDevice, in_chop_prob=0.0, fast_lr=0.1, auto_granularity=500))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class TTv2EcRamMOPreset(UnitCellRPUConfig):
    """Tiki-taka v2 on two ``EcRamMOPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound` without choppers (``in_chop_prob``
    0): the transfer reads of A accumulate in a digital buffer, written to C one pulse at a time.
    """

    device: Any = field(default_factory=_chopped(
        EcRamMOPresetDevice, in_chop_prob=0.0, fast_lr=0.1, auto_granularity=500))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class TTv2IdealizedPreset(UnitCellRPUConfig):
    """Tiki-taka v2 on two ``IdealizedPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound` without choppers (``in_chop_prob``
    0): the transfer reads of A accumulate in a digital buffer, written to C one pulse at a time.
    """

    device: Any = field(default_factory=_chopped(
        IdealizedPresetDevice, in_chop_prob=0.0, fast_lr=0.1, auto_granularity=500))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class ChoppedTTv2ReRamESPreset(UnitCellRPUConfig):
    """Chopped Tiki-taka v2 (c-TTv2) on two ``ReRamESPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound`: as TTv2, with the gradient on A
    sign-flipped by input choppers (flip probability ``in_chop_prob``) to cancel A's drift.
    """

    device: Any = field(default_factory=_chopped(
        ReRamESPresetDevice, in_chop_prob=0.01, fast_lr=0.5, auto_granularity=1000))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class ChoppedTTv2ReRamSBPreset(UnitCellRPUConfig):
    """Chopped Tiki-taka v2 (c-TTv2) on two ``ReRamSBPresetDevice`` (symmetry point subtracted).

    A :class:`~rpusim.configs.ChoppedTransferCompound`: as TTv2, with the gradient on A
    sign-flipped by input choppers (flip probability ``in_chop_prob``) to cancel A's drift.
    """

    device: Any = field(default_factory=_chopped(
        _reram_sb_symmetric, in_chop_prob=0.01, fast_lr=0.5, auto_granularity=1000))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class ChoppedTTv2CapacitorPreset(UnitCellRPUConfig):
    """Chopped Tiki-taka v2 (c-TTv2) on two ``CapacitorPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound`: as TTv2, with the gradient on A
    sign-flipped by input choppers (flip probability ``in_chop_prob``) to cancel A's drift.
    """

    device: Any = field(default_factory=_chopped(
        CapacitorPresetDevice, in_chop_prob=0.01, fast_lr=0.1, auto_granularity=1000))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class ChoppedTTv2EcRamPreset(UnitCellRPUConfig):
    """Chopped Tiki-taka v2 (c-TTv2) on two ``EcRamPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound`: as TTv2, with the gradient on A
    sign-flipped by input choppers (flip probability ``in_chop_prob``) to cancel A's drift.
    """

    device: Any = field(default_factory=_chopped(
        EcRamPresetDevice, in_chop_prob=0.01, auto_granularity=500))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class ChoppedTTv2EcRamMOPreset(UnitCellRPUConfig):
    """Chopped Tiki-taka v2 (c-TTv2) on two ``EcRamMOPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound`: as TTv2, with the gradient on A
    sign-flipped by input choppers (flip probability ``in_chop_prob``) to cancel A's drift.
    """

    device: Any = field(default_factory=_chopped(
        EcRamMOPresetDevice, in_chop_prob=0.001, fast_lr=0.1, auto_granularity=500))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class ChoppedTTv2IdealizedPreset(UnitCellRPUConfig):
    """Chopped Tiki-taka v2 (c-TTv2) on two ``IdealizedPresetDevice``.

    A :class:`~rpusim.configs.ChoppedTransferCompound`: as TTv2, with the gradient on A
    sign-flipped by input choppers (flip probability ``in_chop_prob``) to cancel A's drift.
    """

    device: Any = field(default_factory=_chopped(
        IdealizedPresetDevice, in_chop_prob=0.001, fast_lr=0.1, auto_granularity=500))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class AGADReRamESPreset(UnitCellRPUConfig):
    """AGAD on two ``ReRamESPresetDevice``.

    A :class:`~rpusim.configs.DynamicTransferCompound`: chopped TTv2 whose reference for A is
    estimated on the fly from A's readings (weight of recent readings: ``tail_weightening``).
    """

    device: Any = field(default_factory=_agad(
        ReRamESPresetDevice, fast_lr=0.5, auto_granularity=1000, tail_weightening=5.0,
        in_chop_prob=0.02))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class AGADReRamSBPreset(UnitCellRPUConfig):
    """AGAD on two ``ReRamSBPresetDevice`` (symmetry point subtracted).

    A :class:`~rpusim.configs.DynamicTransferCompound`: chopped TTv2 whose reference for A is
    estimated on the fly from A's readings (weight of recent readings: ``tail_weightening``).
    """

    device: Any = field(default_factory=_agad(
        _reram_sb_symmetric, fast_lr=0.5, auto_granularity=1000, tail_weightening=5.0,
        in_chop_prob=0.02))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class AGADCapacitorPreset(UnitCellRPUConfig):
    """AGAD on two ``CapacitorPresetDevice``.

    A :class:`~rpusim.configs.DynamicTransferCompound`: chopped TTv2 whose reference for A is
    estimated on the fly from A's readings (weight of recent readings: ``tail_weightening``).
    """

    device: Any = field(default_factory=_agad(
        CapacitorPresetDevice, units_in_mbatch=False, fast_lr=0.1, auto_granularity=1000,
        tail_weightening=20.0, in_chop_prob=0.01))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class AGADEcRamPreset(UnitCellRPUConfig):
    """AGAD on two ``EcRamPresetDevice``.

    A :class:`~rpusim.configs.DynamicTransferCompound`: chopped TTv2 whose reference for A is
    estimated on the fly from A's readings (weight of recent readings: ``tail_weightening``).
    """

    device: Any = field(default_factory=_agad(
        EcRamPresetDevice, fast_lr=0.1, auto_granularity=750, tail_weightening=50.0,
        in_chop_prob=0.005, units_in_mbatch=False))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(31))


@dataclass
class AGADEcRamMOPreset(UnitCellRPUConfig):
    """AGAD on two ``EcRamMOPresetDevice``.

    A :class:`~rpusim.configs.DynamicTransferCompound`: chopped TTv2 whose reference for A is
    estimated on the fly from A's readings (weight of recent readings: ``tail_weightening``).
    """

    device: Any = field(default_factory=_agad(
        EcRamMOPresetDevice, fast_lr=0.1, auto_granularity=500, tail_weightening=50.0,
        in_chop_prob=0.005, units_in_mbatch=False))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class AGADIdealizedPreset(UnitCellRPUConfig):
    """AGAD on two ``IdealizedPresetDevice``.

    A :class:`~rpusim.configs.DynamicTransferCompound`: chopped TTv2 whose reference for A is
    estimated on the fly from A's readings (weight of recent readings: ``tail_weightening``).
    """

    device: Any = field(default_factory=_agad(
        IdealizedPresetDevice, fast_lr=0.1, auto_granularity=500, tail_weightening=50.0,
        in_chop_prob=0.005, units_in_mbatch=False))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=_max_pulses(100))


@dataclass
class MixedPrecisionReRamESPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``ReRamESPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(ReRamESPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionReRamSBPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``ReRamSBPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(ReRamSBPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionCapacitorPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``CapacitorPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(CapacitorPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionEcRamPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``EcRamPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(EcRamPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionEcRamMOPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``EcRamMOPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(EcRamMOPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionIdealizedPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``IdealizedPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(IdealizedPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionGokmenVlasovPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``GokmenVlasovPresetDevice``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(GokmenVlasovPresetDevice))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)


@dataclass
class MixedPrecisionPCMPreset(DigitalRankUpdateRPUConfig):
    """Mixed precision on ``PCMPresetUnitCell``.

    A :class:`~rpusim.configs.MixedPrecisionCompound`: the gradient accumulates in a digital
    matrix chi, whose rows are written to the analog device in pulses once they exceed the
    device's step.
    """

    device: Any = field(default_factory=_mixed_precision(PCMPresetUnitCell))
    forward: IOParameters = field(default_factory=PresetIOParameters)
    backward: IOParameters = field(default_factory=PresetIOParameters)
    update: UpdateParameters = field(default_factory=PresetUpdateParameters)
