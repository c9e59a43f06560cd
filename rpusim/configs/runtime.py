"""Simulation runtime options of an RPU configuration, and the base class of all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import RPUDataType

__all__ = ["RuntimeParameter", "RPUConfigBase"]


@dataclass
class RuntimeParameter(ConfigBase):
    """How the simulation runs, not what it simulates (aihwkit's ``RuntimeParameter``).

    Attributes
    ----------
    data_type : RPUDataType
        Precision of tiles built from the configuration without an explicit ``dtype``:
        ``FLOAT`` (float32, default) or ``DOUBLE`` (float64).
    on_the_fly_bindings, offload_input, offload_gradient : bool
        aihwkit's memory and binding options for its C++/CUDA tiles. rpusim has no bindings and
        keeps nothing on a GPU, so these change nothing; they exist so that configs carry over.
    """

    data_type: RPUDataType = RPUDataType.FLOAT
    on_the_fly_bindings: bool = False
    offload_input: bool = False
    offload_gradient: bool = False

    _enum_fields: ClassVar[dict[str, type]] = {"data_type": RPUDataType}

    def validate(self) -> None:
        super().validate()
        for name in ("on_the_fly_bindings", "offload_input", "offload_gradient"):
            self._check_bool(name)
        self.data_type.as_numpy()


class RPUConfigBase:
    """Base class of every RPU configuration (aihwkit's ``RPUConfigBase``).

    ``tile_class`` is the tile module class (:mod:`rpusim.tiles`) that ``create_tile`` and
    aihwkit-style scripts (``rpu_config.tile_class(out, in, rpu_config)``) build from the
    configuration; :mod:`rpusim.tiles` sets the default of each configuration class. Assigning
    ``rpu_config.tile_class`` on an instance picks another one for that configuration.
    """

    tile_class: ClassVar[Any] = None

    def compatible_with(self, tile_class_name: str) -> bool:
        """Whether a tile module class of this name is the one this configuration builds."""
        return self.tile_class is not None and tile_class_name == self.tile_class.__name__

    def get_default_tile_module_class(self, out_size: int = 0, in_size: int = 0) -> Any:
        """The tile module class this configuration builds (sizes do not matter in rpusim)."""
        del out_size, in_size
        return self.tile_class

    def get_data_type(self) -> RPUDataType:
        """The runtime data type (``runtime.data_type``)."""
        return self.runtime.data_type

    def create_tile(self, *args: Any, **kwargs: Any) -> Any:
        """Build ``self.tile_class(*args, rpu_config=self, **kwargs)``."""
        return self.tile_class(*args, rpu_config=self, **kwargs)
