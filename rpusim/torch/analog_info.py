"""``analog_summary``: a per-layer table of a model's analog execution (aihwkit's
``aihwkit.utils.analog_info``).

One forward pass of zeros of the given input size records each layer's input and output shape;
for analog layers the table adds the number of tiles, each tile's logical shape (the part of
the weight matrix it holds), its physical shape (the mapping's maximum tile size, for the
``...Mapped`` layers) and utilisation, and the reuse factor (how many MVMs a forward makes).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rpusim.torch.base import AnalogLayerBase
from rpusim.torch.conv import _AnalogConvNd, AnalogConv1dMapped, AnalogConv2dMapped, \
    AnalogConv3dMapped
from rpusim.torch.linear import AnalogLinear, AnalogLinearMapped
from rpusim.torch.mapping import TileGrid

__all__ = ["analog_summary", "AnalogInfo", "LayerInfo", "TileInfo"]

_LAYER_COLUMNS = ("Layer Name", "Is Analog", "In Shape", "Out Shape", "Kernel Shape",
                  "# of Tiles", "Reuse Factor")
_TILE_COLUMNS = ("Log. tile shape", "Phys. tile shape", "utilization (%)")
_WIDTH = 20
_RULE = "=" * 200 + "\n"
_MAPPED = (AnalogLinearMapped, AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped)


def _cells(values) -> str:
    return "".join(f"{str(v):<{_WIDTH}}" for v in values)


class TileInfo:
    """One tile of a layer: logical and physical shape, utilisation.

    Parameters
    ----------
    out_size, in_size : int
        The part of the layer's weight matrix the tile holds.
    rpu_config : RPUConfig
        Its ``mapping`` gives the physical tile size.
    is_mapped : bool
        Whether the layer maps onto physical tiles of the maximum size (``...Mapped`` layers);
        otherwise the physical shape is not applicable and utilisation is 100 %.
    """

    def __init__(self, out_size: int, in_size: int, rpu_config, is_mapped: bool):
        self.log_out_size, self.log_in_size = int(out_size), int(in_size)
        self.phy_out_size = rpu_config.mapping.max_output_size
        self.phy_in_size = rpu_config.mapping.max_input_size
        self.is_mapped = bool(is_mapped)
        used = self.log_out_size * self.log_in_size
        self.utilization = (100.0 * used / (self.phy_out_size * self.phy_in_size)
                            if is_mapped else 100.0)

    def tile_summary_dict(self) -> dict:
        """``log_shape``, ``phys_shape`` (``"N/A"`` when not mapped) and ``utilization``."""
        phys = (self.phy_out_size, self.phy_in_size) if self.is_mapped else "N/A"
        return {"log_shape": str((self.log_out_size, self.log_in_size)),
                "phys_shape": str(phys), "utilization": self.utilization}

    def __repr__(self) -> str:
        return _cells(self.tile_summary_dict().values()) + "\n"


class LayerInfo:
    """One layer of the summary: shapes, kernel, tiles and reuse factor.

    Parameters
    ----------
    module : torch.nn.Module
    input_size, output_size : list of int
        The shapes seen in the forward pass.
    """

    def __init__(self, module: nn.Module, input_size=None, output_size=None):
        self.module = module
        self.name = type(module).__name__
        self.isanalog = isinstance(module, AnalogLayerBase)
        self.input_size, self.output_size = input_size, output_size
        self.kernel_size = getattr(module, "kernel_size", None)
        self.tiles_info = self._tiles_info()
        self.num_tiles = len(self.tiles_info)
        self.reuse_factor = self._reuse_factor()

    def _tiles_info(self) -> list[TileInfo]:
        if not self.isanalog:
            return []
        mapped = isinstance(self.module, _MAPPED)
        infos = []
        for grid in (m for m in self.module.modules() if isinstance(m, TileGrid)):
            config = grid.tiles[0][0].rpu_config
            infos += [TileInfo(o, i, config, mapped) for i in grid.in_sizes
                      for o in grid.out_sizes]
        return infos

    def _reuse_factor(self) -> int:
        """MVMs per forward: the input's batch elements for a linear layer, the output
        positions for a convolution."""
        if isinstance(self.module, AnalogLinear) and self.input_size:
            return math.prod(self.input_size) // int(self.input_size[-1])
        if isinstance(self.module, _AnalogConvNd) and self.output_size:
            return math.prod(self.output_size) // int(self.output_size[1])
        return 0

    def layer_summary_dict(self) -> dict:
        """The layer's columns of the table (the tile columns are ``-``)."""
        return {"name": self.name, "isanalog": "analog" if self.isanalog else "digital",
                "input_size": "-" if self.input_size is None else str(self.input_size),
                "output_size": "-" if self.output_size is None else str(self.output_size),
                "kernel_size": "-" if self.kernel_size is None else str(self.kernel_size),
                "num_tiles": self.num_tiles, "reuse_factor": str(self.reuse_factor),
                "log_shape": "-", "phy_shape": "-", "utilization": "-"}

    def __repr__(self) -> str:
        stats = list(self.layer_summary_dict().values())
        out = _cells(stats) + "\n"
        for tile in self.tiles_info:
            info = tile.tile_summary_dict()
            info["utilization"] = f"{info['utilization']:.2f}"
            out += " " * _WIDTH * (len(stats) - 3) + _cells(info.values()) + "\n"
        return out


class AnalogInfo:
    """The summary of a model: one :class:`LayerInfo` per executed leaf layer, in forward
    order, and the totals. ``repr`` (and ``str``) is the table.

    Parameters
    ----------
    model : torch.nn.Module
    input_size : tuple of int
        Shape of the dummy input (batch included) for the forward pass.
    rpu_config : RPUConfig, optional
        Kept for aihwkit's signature (each layer's own config is reported).
    """

    def __init__(self, model: nn.Module, input_size: Any = None, rpu_config=None):
        self.model = model
        self.input_size = input_size
        self.rpu_config = rpu_config
        self.layer_summary = self._run()
        self.total_tile_number = sum(layer.num_tiles for layer in self.layer_summary)
        self.total_nb_analog = sum(1 for layer in self.layer_summary if layer.isanalog)

    def _run(self) -> list[LayerInfo]:
        if self.input_size is None:
            raise ValueError("analog_summary needs input_size, the shape of one input batch")
        layers: list[LayerInfo] = []

        def record(module, inputs, output):
            layers.append(LayerInfo(module, list(inputs[0].size()), list(output.size())))

        handles = [m.register_forward_hook(record) for m in _leaf_layers(self.model)]
        try:
            with torch.no_grad():
                self.model(torch.zeros(self.input_size))
        finally:
            for handle in handles:
                handle.remove()
        return layers

    def __repr__(self) -> str:
        out = _RULE + f"Model Name: {type(self.model).__name__}\n" + _RULE
        out += "Per-layer Information\n" + _RULE
        layer_width = 10 * len(_LAYER_COLUMNS)
        out += "Layer Information" + " " * (layer_width - len("Layer Information")) + "| "
        out += "Tile Information\n" + _RULE
        out += _cells(_LAYER_COLUMNS + _TILE_COLUMNS) + "\n"
        out += "".join(repr(layer) for layer in self.layer_summary)
        out += _RULE + "General Information\n" + _RULE
        out += f"Total number of tiles: {self.total_tile_number}\n"
        out += f"Total number of analog layers: {self.total_nb_analog}\n"
        return out

    __str__ = __repr__


def _leaf_layers(module: nn.Module) -> list[nn.Module]:
    """Modules without children, and analog layers (whose children are their tiles)."""
    if isinstance(module, AnalogLayerBase) and not module.IS_CONTAINER and not any(
            isinstance(child, AnalogLayerBase) for child in module.children()):
        return [module]
    children = list(module.children())
    if not children:
        return [module]
    return [leaf for child in children for leaf in _leaf_layers(child)]


def analog_summary(model: nn.Module, input_size: Any = None, rpu_config=None,
                   print_summary: bool = True) -> AnalogInfo:
    """Summarise how a model executes on analog tiles; print the table and return it.

    Parameters
    ----------
    model : torch.nn.Module
        Runs one forward pass (without gradients) on zeros of ``input_size``.
    input_size : tuple of int
        Shape of one input batch, e.g. ``(1, 1, 28, 28)``.
    rpu_config : RPUConfig, optional
        Accepted for aihwkit's signature.
    print_summary : bool
        Print the table (aihwkit only returns it; its ``repr`` is the table).

    Returns
    -------
    AnalogInfo
        Layers (``layer_summary``), ``total_tile_number``, ``total_nb_analog``.
    """
    info = AnalogInfo(model, input_size, rpu_config)
    if print_summary:
        print(info)
    return info
