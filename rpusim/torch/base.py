"""What every analog layer and container shares: the optimizer's handle on a layer's tiles, and
the model-level helpers aihwkit's ``AnalogLayerBase`` offers (tile and layer iteration, weights,
programming and drift for inference)."""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import torch
from torch import nn

__all__ = ["AnalogContext", "AnalogLayerBase"]


def _rebuild_context(module) -> "AnalogContext":
    return AnalogContext(module)


class AnalogContext(nn.Parameter):
    """An empty parameter through which :class:`~rpusim.torch.AnalogSGD` reaches a tile grid.

    It is an input of an analog forward wherever nothing else of the layer (its bias, its
    weight parameter) needs a gradient, so that backward runs even when no input needs one
    (the chains of ``AnalogSequential`` and a plain layer's short path leave it out where
    something else does; the others always pass it). It never receives a gradient itself
    (the digital optimizer skips it).

    Parameters
    ----------
    module : TileGrid
        The tile grid this context belongs to.
    """

    def __new__(cls, module=None):
        ctx = super().__new__(cls, torch.zeros(0), requires_grad=True)
        ctx.analog_module = module
        return ctx

    def __init__(self, module=None):  # noqa: D107 - nn.Parameter takes no __init__ arguments
        super().__init__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = AnalogContext(None)
        memo[id(self)] = result
        result.analog_module = copy.deepcopy(self.analog_module, memo)
        return result

    def __reduce_ex__(self, proto):
        # nn.Parameter pickles as a plain Parameter; keep the class and the link to the grid
        return _rebuild_context, (self.analog_module,)

    def __repr__(self) -> str:
        return "AnalogContext()"


class AnalogLayerBase:
    """Mixin of analog layers and containers (aihwkit's ``AnalogLayerBase``).

    A layer holds its tiles in one :class:`~rpusim.torch.mapping.TileGrid`, its
    ``analog_module``; containers hold layers. The methods below walk ``self.modules()``.
    """

    IS_CONTAINER: bool = False

    # -- iteration -----------------------------------------------------------------------------
    def named_analog_tiles(self) -> Iterator[tuple[str, object]]:
        """Yield ``(name, tile)`` for every :class:`~rpusim.AnalogTile` below this module.

        A grid's tiles come input-major (all output pieces of the first input piece first),
        named ``<grid>.array.<i>.<j>`` when a layer is split over several tiles.
        """
        from rpusim.torch.mapping import TileGrid

        for name, module in self.named_modules():
            if isinstance(module, TileGrid):
                yield from module.named_tiles(name)

    def analog_tiles(self) -> Iterator[object]:
        """Yield every :class:`~rpusim.AnalogTile` below this module (see
        :meth:`named_analog_tiles` for the order)."""
        for _, tile in self.named_analog_tiles():
            yield tile

    def analog_tile_count(self) -> int:
        """Number of analog tiles below this module."""
        return sum(1 for _ in self.analog_tiles())

    def named_analog_layers(self) -> Iterator[tuple[str, "AnalogLayerBase"]]:
        """Yield ``(name, layer)`` for the analog layers below (and including) this module;
        containers such as :class:`AnalogSequential` are not layers."""
        for name, module in self.named_modules():
            if isinstance(module, AnalogLayerBase) and not module.IS_CONTAINER:
                yield name, module

    def analog_layers(self) -> Iterator["AnalogLayerBase"]:
        """Yield the analog layers (see :meth:`named_analog_layers`)."""
        for _, layer in self.named_analog_layers():
            yield layer

    def named_analog_modules(self) -> Iterator[tuple[str, "AnalogLayerBase"]]:
        """Yield ``(name, module)`` for analog layers and analog containers alike."""
        for name, module in self.named_modules():
            if isinstance(module, AnalogLayerBase):
                yield name, module

    def analog_modules(self) -> Iterator["AnalogLayerBase"]:
        """Yield analog layers and analog containers (see :meth:`named_analog_modules`)."""
        for _, module in self.named_analog_modules():
            yield module

    def apply_to_analog_tiles(self, fn: Callable) -> "AnalogLayerBase":
        """Call ``fn(tile)`` on every analog tile; return ``self``."""
        for tile in list(self.analog_tiles()):
            fn(tile)
        return self

    def apply_to_analog_layers(self, fn: Callable) -> "AnalogLayerBase":
        """Call ``fn(layer)`` on every analog layer; return ``self``."""
        for layer in list(self.analog_layers()):
            fn(layer)
        return self

    # -- weights -------------------------------------------------------------------------------
    def get_weights(self):
        """Return ``(weight, bias)`` of the layer as aihwkit returns them (see the layer)."""
        return self.analog_module.get_weights()

    def set_weights(self, weight, bias=None) -> None:
        """Program ``weight`` (and ``bias``) into the layer's tiles (see the layer)."""
        self.analog_module.set_weights(weight, bias)

    def remap_analog_weights(self, weight_scaling_omega: float | None = 1.0) -> None:
        """Read every layer's weights and write them back with fresh weight scales.

        Parameters
        ----------
        weight_scaling_omega : float or None
            The largest |weight| a tile then holds (1 by default, as aihwkit);
            ``None`` takes each layer's ``mapping.weight_scaling_omega``.
        """
        from rpusim.torch.mapping import TileGrid

        for module in self.modules():
            if isinstance(module, TileGrid):
                module.remap(weight_scaling_omega)

    # -- state ---------------------------------------------------------------------------------
    def load_state_dict(self, state_dict, strict: bool = True,
                        load_rpu_config: bool | None = None,
                        strict_rpu_config_check: bool | None = None, *, assign: bool = False):
        """torch's ``load_state_dict`` with aihwkit's two extra flags.

        Parameters
        ----------
        state_dict, strict, assign
            As ``torch.nn.Module.load_state_dict``.
        load_rpu_config : bool, optional
            Restore the tiles' saved configs (default, None or True), or keep the current
            configs and load only the state (weights, hidden parameters, IO and RNG state)
            into them (False).
        strict_rpu_config_check : bool, optional
            With ``load_rpu_config=False``: refuse a saved config of another class
            (default True).

        Raises
        ------
        ValueError
            A tile state that does not fit (nothing of that layer is changed).
        """
        from rpusim.torch.mapping import TileGrid

        keep = load_rpu_config is False
        strict_check = strict_rpu_config_check is None or bool(strict_rpu_config_check)
        grids = [m for m in self.modules() if isinstance(m, TileGrid)]
        for grid in grids:
            grid._keep_config = (strict_check if keep else None)
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        finally:
            for grid in grids:
                grid._keep_config = None

    # -- inference -----------------------------------------------------------------------------
    def _require_eval(self, what: str) -> None:
        if self.training:
            raise RuntimeError(f"{what} can only be applied in evaluation mode: call "
                               "model.eval() first (as in aihwkit)")

    def program_analog_weights(self, noise_model=None) -> None:
        """Program the weights of every inference tile (programming noise of its
        ``InferenceRPUConfig``); training tiles are left alone, as in aihwkit.

        Parameters
        ----------
        noise_model : optional
            Replaces the tiles' noise model from now on (aihwkit's argument).

        Raises
        ------
        RuntimeError
            The module is in training mode (aihwkit requires ``eval()`` first).
        """
        self._require_eval("program_analog_weights")
        for tile in _inference_tiles(self):
            tile.program_weights(noise_model=noise_model)

    def drift_analog_weights(self, t_inference: float = 0.0) -> None:
        """Drift the programmed weights of every inference tile to ``t_inference`` seconds
        after programming (absolute time; a tile never programmed is programmed first).

        Raises
        ------
        RuntimeError
            The module is in training mode (aihwkit requires ``eval()`` first).
        """
        self._require_eval("drift_analog_weights")
        for tile in _inference_tiles(self):
            tile.drift_weights(t_inference=t_inference)


def _inference_tiles(module) -> list:
    """The tiles built from an ``InferenceRPUConfig``."""
    from rpusim.configs import InferenceRPUConfig

    return [tile for tile in module.analog_tiles()
            if isinstance(tile.rpu_config, InferenceRPUConfig)]
