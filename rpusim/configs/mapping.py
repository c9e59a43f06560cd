"""How a network layer is mapped onto tiles: tile sizes, digital bias, weight and output scaling.

The tile itself ignores these fields: they are read by the layers on top (``rpusim.torch``), as
aihwkit's ``MappingParameter`` is read by its torch modules.
"""

from __future__ import annotations

from dataclasses import dataclass

from rpusim.configs._base import ConfigBase

__all__ = ["MappingParameter"]


@dataclass
class MappingParameter(ConfigBase):
    """Mapping of a layer's weights onto one tile or a grid of tiles (aihwkit's fields and defaults).

    Attributes
    ----------
    digital_bias : bool
        The bias is a digital parameter of the layer (True) or an extra tile column whose input
        is always 1 (False). A layer split over several tiles always has a digital bias.
    weight_scaling_omega : float
        If > 0, ``set_weights`` stores ``W / alpha`` with ``alpha = max|W| / omega`` and the
        outputs are multiplied by ``alpha`` (0 disables the scaling).
    weight_scaling_columnwise : bool
        One ``alpha`` per output (row of the weight matrix) instead of one per tile.
    weight_scaling_lr_compensation : bool
        Scale the tile learning rate by ``1 / mean(alpha)`` so that scaled and unscaled weights
        learn at the same rate.
    learn_out_scaling : bool
        A learned (digital) output scale per tile, or per output with ``out_scaling_columnwise``.
    out_scaling_columnwise : bool
        One learned scale per output instead of one per tile.
    max_input_size, max_output_size : int
        Largest tile; a layer with more inputs or outputs is split over a grid of tiles
        (balanced pieces). 0 means no limit.
    """

    digital_bias: bool = True
    weight_scaling_omega: float = 0.0
    weight_scaling_columnwise: bool = False
    weight_scaling_lr_compensation: bool = False
    learn_out_scaling: bool = False
    out_scaling_columnwise: bool = False
    max_input_size: int = 512
    max_output_size: int = 512

    def validate(self) -> None:
        super().validate()
        for name in ("digital_bias", "weight_scaling_columnwise",
                     "weight_scaling_lr_compensation", "learn_out_scaling",
                     "out_scaling_columnwise"):
            self._check_bool(name)
        self._check_number("weight_scaling_omega", lo=0.0)
        self._check_int("max_input_size", lo=0)
        self._check_int("max_output_size", lo=0)
