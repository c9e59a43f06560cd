"""Unit-cell presets (aihwkit 1.2.0's values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rpusim.configs import IOParameters, OneSidedUnitCell, UpdateParameters
from rpusim.presets.devices import PCMPresetDevice
from rpusim.presets.utils import PresetIOParameters, PresetUpdateParameters

__all__ = ["PCMPresetUnitCell"]


@dataclass
class PCMPresetUnitCell(OneSidedUnitCell):
    """A pair of one-directional PCM devices of opposite sign, refreshed after every mini-batch.

    Two :class:`~rpusim.presets.PCMPresetDevice` in a
    :class:`~rpusim.configs.OneSidedUnitCell`: the weight is their difference, each is only
    pulsed up, and when one nears saturation the pair is read (through
    :class:`~rpusim.presets.PresetIOParameters`), reset and the difference rewritten
    (through :class:`~rpusim.presets.PresetUpdateParameters`). The refresh check runs once per
    mini-batch (``refresh_every`` 1 with ``units_in_mbatch``).
    """

    unit_cell_devices: list = field(
        default_factory=lambda: [PCMPresetDevice(), PCMPresetDevice()])
    refresh_every: int = 1
    units_in_mbatch: bool = True
    refresh_forward: IOParameters = field(default_factory=PresetIOParameters)
    refresh_update: UpdateParameters = field(
        default_factory=lambda: PresetUpdateParameters(desired_bl=31))
