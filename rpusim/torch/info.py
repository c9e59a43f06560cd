"""``analog_summary``: a table of a model's layers and the tiles they use (aihwkit's
``aihwkit.utils.analog_info``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from rpusim.torch.base import AnalogLayerBase
from rpusim.torch.conv import _AnalogConvNd
from rpusim.torch.linear import AnalogLinear

__all__ = ["AnalogInfo", "analog_summary"]

_WIDTH = 16


class AnalogInfo:
    """The layers of a model as one forward pass of zeros saw them.

    Attributes
    ----------
    layers : list of dict
        Per leaf layer, in call order: ``name`` (class), ``kind`` ("analog"/"digital"),
        ``input_size``, ``output_size``, ``kernel_size``, ``num_tiles``, ``reuse_factor`` (MVMs
        per input: batch x positions of a conv, the leading dimensions of a linear layer) and
        ``tiles``: ``(out, in)`` shape and utilization (percent of a
        ``max_output_size x max_input_size`` tile; 100 without limits) of each tile.
    total_tile_number, total_nb_analog : int
        Tiles and analog layers in the model.
    """

    def __init__(self, model: nn.Module, input_size, rpu_config=None):
        self.model = model
        self.input_size = tuple(input_size)
        self.rpu_config = rpu_config
        self.layers = self._trace()
        self.total_tile_number = sum(layer["num_tiles"] for layer in self.layers)
        self.total_nb_analog = sum(layer["kind"] == "analog" for layer in self.layers)

    def _trace(self) -> list[dict]:
        layers: list[dict] = []

        def hook(module, inputs, output):
            layers.append(_layer_info(module, list(inputs[0].shape), list(output.shape)))

        handles = [m.register_forward_hook(hook) for m in _leaves(self.model)]
        try:
            with torch.no_grad():
                self.model(torch.zeros(self.input_size))
        finally:
            for handle in handles:
                handle.remove()
        return layers

    def __repr__(self) -> str:
        columns = ("name", "kind", "input_size", "output_size", "kernel_size", "num_tiles",
                   "reuse_factor", "tile_shape", "utilization")
        rule = "=" * (_WIDTH * len(columns)) + "\n"
        text = rule + f"Model Name: {type(self.model).__name__}\n" + rule
        text += "".join(f"{c:<{_WIDTH}}" for c in columns) + "\n"
        for layer in self.layers:
            values = [layer["name"], layer["kind"], layer["input_size"], layer["output_size"],
                      layer["kernel_size"] or "-", layer["num_tiles"], layer["reuse_factor"]]
            text += "".join(f"{str(v):<{_WIDTH}}" for v in values) + "\n"
            for shape, utilization in layer["tiles"]:
                text += " " * (_WIDTH * len(values))
                text += f"{str(shape):<{_WIDTH}}{utilization:.2f}\n"
        text += rule
        text += f"Total number of tiles: {self.total_tile_number}\n"
        text += f"Total number of analog layers: {self.total_nb_analog}\n"
        return text


def _leaves(model: nn.Module) -> list[nn.Module]:
    """Modules without children, and analog layers (whose only child is their tile grid)."""
    leaves = []
    for module in model.modules():
        analog_layer = isinstance(module, AnalogLayerBase) and not module.IS_CONTAINER
        if analog_layer or not any(True for _ in module.children()):
            if not any(module in leaf.modules() for leaf in leaves):
                leaves.append(module)
    return leaves


def _layer_info(module: nn.Module, input_size: list, output_size: list) -> dict:
    analog = isinstance(module, AnalogLayerBase) and not module.IS_CONTAINER
    tiles = []
    if analog:
        for tile in module.analog_tiles():
            mapping = tile.rpu_config.mapping
            rows = mapping.max_output_size or tile.out_size
            cols = mapping.max_input_size or tile.in_size
            utilization = 100.0 * tile.out_size * tile.in_size / (rows * cols)
            tiles.append(((tile.out_size, tile.in_size), min(utilization, 100.0)))
    if isinstance(module, AnalogLinear):
        reuse = math.prod(input_size) // input_size[-1]
    elif isinstance(module, _AnalogConvNd):
        reuse = math.prod(output_size) // output_size[1]
    else:
        reuse = 0
    return {"name": type(module).__name__, "kind": "analog" if analog else "digital",
            "input_size": input_size, "output_size": output_size,
            "kernel_size": getattr(module, "kernel_size", None), "num_tiles": len(tiles),
            "reuse_factor": reuse, "tiles": tiles}


def analog_summary(model: nn.Module, input_size=None, rpu_config=None) -> AnalogInfo:
    """Summarize a model's layers and tiles (aihwkit's ``analog_summary``).

    Parameters
    ----------
    model : torch.nn.Module
    input_size : tuple of int
        Shape of the input of one forward pass (zeros, without gradients, in the model's
        current mode).
    rpu_config : RPUConfig, optional
        Kept for aihwkit compatibility; the tiles' own configs are reported.

    Returns
    -------
    AnalogInfo
        Printable summary (``print(analog_summary(model, (1, 1, 8, 8)))``).
    """
    if input_size is None:
        raise ValueError("input_size is required: the summary runs one forward pass")
    return AnalogInfo(model, input_size, rpu_config)
