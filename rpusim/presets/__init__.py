"""Presets: aihwkit 1.2.0's calibrated devices and ready-made training configurations.

Every preset of ``aihwkit.simulator.presets`` under its name, as a dataclass subclass of the
matching rpusim config with aihwkit's values (``tests/test_presets.py`` checks every field
against aihwkit). They are ordinary configs: build a tile from one, or change a field::

    from rpusim import AnalogTile
    from rpusim.presets import TikiTakaReRamSBPreset

    config = TikiTakaReRamSBPreset()
    config.device.unit_cell_devices[0].dw_min_std = 0.0
    tile = AnalogTile(64, 32, config, seed=0)

- devices fitted to measured hardware: ``ReRamESPresetDevice``, ``ReRamSBPresetDevice``,
  ``ReRamArrayOMPresetDevice``, ``ReRamArrayHfO2PresetDevice``, ``CapacitorPresetDevice``,
  ``EcRamPresetDevice``, ``EcRamMOPresetDevice``, ``IdealizedPresetDevice``,
  ``GokmenVlasovPresetDevice``, ``PCMPresetDevice``, and the PCM pair ``PCMPresetUnitCell``;
- periphery and update: ``PresetIOParameters``, ``StandardIOParameters``,
  ``PresetUpdateParameters``;
- RPU configs, one per device and algorithm: ``<Device>Preset`` (analog SGD), ``<Device>2Preset``
  and ``<Device>4Preset`` (vector unit cells), ``TikiTaka<Device>Preset``,
  ``TTv2<Device>Preset``, ``ChoppedTTv2<Device>Preset``, ``AGAD<Device>Preset``,
  ``MixedPrecision<Device>Preset``;
- inference: ``StandardHWATrainingPreset`` (the hardware-aware training baseline of Rasch et
  al. 2023) and ``FloatingPointPreset`` (no noise). :mod:`rpusim.presets.web` holds the
  defaults of aihwkit's inference composer.
"""

from rpusim.presets import web  # noqa: F401  (its class names resolve when a tile is loaded)
from rpusim.presets.compounds import PCMPresetUnitCell
from rpusim.presets.configs import *  # noqa: F401,F403
from rpusim.presets.configs import __all__ as _config_names
from rpusim.presets.devices import *  # noqa: F401,F403
from rpusim.presets.devices import __all__ as _device_names
from rpusim.presets.inference import FloatingPointPreset, StandardHWATrainingPreset
from rpusim.presets.utils import PresetIOParameters, PresetUpdateParameters, StandardIOParameters

__all__ = [*_config_names, *_device_names, "PCMPresetUnitCell", "PresetIOParameters",
           "PresetUpdateParameters", "StandardIOParameters", "StandardHWATrainingPreset",
           "FloatingPointPreset"]
