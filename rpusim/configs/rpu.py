"""Top-level RPU configurations: a device plus forward, backward and update parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rpusim.configs._base import ConfigBase
from rpusim.configs.io import IOParameters
from rpusim.configs.mapping import MappingParameter
from rpusim.configs.pre_post import PrePostProcessingParameter
from rpusim.configs.runtime import RPUConfigBase, RuntimeParameter
from rpusim.configs.update import UpdateParameters
from rpusim.devices import ConstantStepDevice, FloatingPointDevice

__all__ = ["RPUConfig", "SingleRPUConfig", "UnitCellRPUConfig", "FloatingPointRPUConfig",
           "DigitalRankUpdateRPUConfig"]


@dataclass
class RPUConfig(ConfigBase, RPUConfigBase):
    """Configuration of an analog tile.

    Attributes
    ----------
    device : device config
        A single device, a compound, or a floating-point device.
    forward, backward : IOParameters
        The IO model of the forward and backward MVMs.
    update : UpdateParameters
        How updates become pulses.
    mapping : MappingParameter
        How a network layer maps onto tiles (read by the layers, not by the tile).
    pre_post : PrePostProcessingParameter
        Digital processing around the tile, such as the learned input range (read by the
        layers, not by the tile).
    runtime : RuntimeParameter
        Simulation options (the tile precision ``data_type``); not compared by ``==``.
    """

    device: Any = field(default_factory=ConstantStepDevice)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    mapping: MappingParameter = field(default_factory=MappingParameter)
    pre_post: PrePostProcessingParameter = field(default_factory=PrePostProcessingParameter)
    runtime: RuntimeParameter = field(default_factory=RuntimeParameter, compare=False)

    # simulated as aihwkit's torch tile (TorchInferenceRPUConfig)
    _torch_tile: ClassVar[bool] = False

    def validate(self) -> None:
        if not isinstance(self.device, ConfigBase):
            raise TypeError(f"{type(self).__name__}.device must be a device config, "
                            f"got {self.device!r}")
        for name, cls in (("forward", IOParameters), ("backward", IOParameters),
                          ("update", UpdateParameters), ("mapping", MappingParameter),
                          ("pre_post", PrePostProcessingParameter),
                          ("runtime", RuntimeParameter)):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"{type(self).__name__}.{name} must be {cls.__name__}, "
                                f"got {getattr(self, name)!r}")
        # the forward of aihwkit's torch tile takes IO the C++ tiles refuse (IOParameters)
        self.backward._torch_tile_forward = False
        self.forward._torch_tile_forward = (self._torch_tile
                                            and self.forward is not self.backward)
        super().validate()


@dataclass
class SingleRPUConfig(RPUConfig):
    """An RPU configuration with a single device per cross-point (aihwkit's name)."""


@dataclass
class UnitCellRPUConfig(RPUConfig):
    """An RPU configuration whose device is a unit cell or compound (aihwkit's name)."""


@dataclass
class FloatingPointRPUConfig(RPUConfig):
    """Floating-point tile: exact forward/backward and update (aihwkit's name).

    The IO parameters are ignored: the MVMs are exact.
    """

    device: Any = field(default_factory=FloatingPointDevice)


@dataclass
class DigitalRankUpdateRPUConfig(RPUConfig):
    """An RPU configuration for digital rank-update compounds (MixedPrecisionCompound)."""
