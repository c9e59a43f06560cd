"""Analog containers and the conversion of a torch model (aihwkit's ``AnalogSequential``,
``AnalogWrapper``, ``convert_to_analog``, ``convert_to_digital``)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from types import new_class
from typing import Callable

from torch import nn

from rpusim.torch.base import AnalogLayerBase
from rpusim.torch.chain import sequential_forward

__all__ = ["AnalogContainerBase", "AnalogSequential", "AnalogWrapper", "convert_to_analog",
           "convert_to_digital"]


class AnalogContainerBase(AnalogLayerBase):
    """An analog module holding analog layers: weights come as one dict entry per tile, keyed
    by the tile's name as aihwkit keys them (``"0.analog_module"`` for a layer on one tile,
    ``"1.analog_module.array.0.1"`` for each tile of a split layer)."""

    IS_CONTAINER = True

    def _named_tile_slots(self):
        """``(tile name, layer, grid position or None for a one-tile layer)``."""
        for name, layer in self.named_analog_layers():
            grid = layer.analog_module
            prefix = f"{name}.analog_module" if name else "analog_module"
            if len(grid.in_sizes) * len(grid.out_sizes) == 1:
                yield prefix, layer, None
                continue
            for i in range(len(grid.in_sizes)):
                for j in range(len(grid.out_sizes)):
                    yield f"{prefix}.array.{i}.{j}", layer, (i, j)

    def get_weights(self) -> "OrderedDict[str, tuple]":
        """Return ``{tile name: (weight, bias)}`` as aihwkit: a one-tile layer's weights and
        bias, and for each tile of a split layer its piece and ``None`` (the split layer's
        digital bias is a parameter of the layer)."""
        out = OrderedDict()
        for name, layer, position in self._named_tile_slots():
            out[name] = (layer.get_weights() if position is None
                         else (layer.analog_module.get_tile_weights(*position), None))
        return out

    def set_weights(self, weights: dict) -> None:
        """Set every tile from ``{tile name: (weight, bias)}`` (the keys of
        :meth:`get_weights`).

        Raises
        ------
        ValueError
            A tile's name is missing from ``weights`` (nothing is changed).
        """
        slots = list(self._named_tile_slots())
        missing = [name for name, _, _ in slots if name not in weights]
        if missing:
            raise ValueError(f"weights has no entry for the analog tiles {missing}")
        for name, layer, position in slots:
            if position is None:
                layer.set_weights(*weights[name])
            else:
                layer.analog_module.set_tile_weights(*position, weights[name][0])


class AnalogSequential(AnalogContainerBase, nn.Sequential):
    """``nn.Sequential`` with the analog helpers (``analog_tiles()``,
    ``program_analog_weights()``, ``drift_analog_weights()``, ...).

    Its forward runs each run of children that are analog layers on one plain tile or known
    stateless torch modules as one autograd step, with the same results as calling them one
    by one (:mod:`rpusim.torch.chain`)."""

    def forward(self, input):  # noqa: A002 - nn.Sequential's name
        output = sequential_forward(self, input)
        return super().forward(input) if output is None else output

    def __getstate__(self):
        # the runs the chain keeps hold functions; a copy finds its own (rpusim.torch.chain)
        state = super().__getstate__()
        state.pop("_chain_runs", None)
        return state

    @classmethod
    def from_digital(cls, module: nn.Sequential, *_args, **_kwargs) -> "AnalogSequential":
        """An ``AnalogSequential`` with the children of ``module`` (not copied)."""
        return cls(OrderedDict(module.named_children()))

    @classmethod
    def to_digital(cls, module: "AnalogSequential", *_args, **_kwargs) -> nn.Sequential:
        """An ``nn.Sequential`` with the children of ``module`` (not copied)."""
        return nn.Sequential(OrderedDict(module.named_children()))


class AnalogWrapper(AnalogContainerBase):
    """Adds the analog helpers to any module: ``AnalogWrapper(model)`` is an instance of a
    subclass of both this class and ``type(model)``, sharing ``model``'s state."""

    SUBCLASSES: dict = {}

    def __new__(cls, module: nn.Module | None = None, **_kwargs):
        if module is None:  # unpickling and deepcopy
            return super().__new__(cls)
        name = f"{cls.__name__}{type(module).__name__}"
        key = (cls, type(module))
        if key not in cls.SUBCLASSES:
            cls.SUBCLASSES[key] = new_class(name, (cls, type(module)), {})
        return super().__new__(cls.SUBCLASSES[key])

    def __init__(self, module: nn.Module):
        self.__dict__.update(module.__dict__)

    def __reduce_ex__(self, proto):
        digital = type(self).__bases__[1]
        return _rebuild_wrapper, (digital, self.__dict__)

    @classmethod
    def from_digital(cls, module: nn.Module, *_args, **_kwargs) -> "AnalogWrapper":
        """Wrap ``module``."""
        return cls(module)

    @classmethod
    def to_digital(cls, module: "AnalogWrapper", *_args, **_kwargs) -> nn.Module:
        """The wrapped module's class again, sharing the state."""
        digital = type(module).__bases__[1]
        new = digital.__new__(digital)
        new.__dict__ = module.__dict__
        return new


def _rebuild_wrapper(digital_class, state):
    module = digital_class.__new__(digital_class)
    module.__dict__.update(state)
    return AnalogWrapper(module)


def _default_conversion_map() -> dict:
    from rpusim.torch.conv import AnalogConv1d, AnalogConv2d, AnalogConv3d
    from rpusim.torch.linear import AnalogLinear

    return {nn.Linear: AnalogLinear, nn.Conv1d: AnalogConv1d, nn.Conv2d: AnalogConv2d,
            nn.Conv3d: AnalogConv3d, nn.Sequential: AnalogSequential}


def convert_to_analog(module: nn.Module, rpu_config, tile_module_class=None,
                      conversion_map: dict | None = None,
                      specific_rpu_config_fun: Callable | None = None, module_name: str = "",
                      ensure_analog_root: bool = True, exclude_modules: list | None = None,
                      inplace: bool = False, verbose: bool = False) -> nn.Module:
    """Replace the ``Linear``/``Conv1d/2d/3d`` layers of a model by analog layers (aihwkit's
    ``convert_to_analog``).

    Parameters
    ----------
    module : torch.nn.Module
        The digital model.
    rpu_config : RPUConfig
        Configuration of every converted layer (each gets a copy).
    tile_module_class : None
        Accepted for aihwkit compatibility.
    conversion_map : dict, optional
        ``{digital class: analog class}``; an analog class needs ``from_digital(module,
        rpu_config, tile_module_class)``. Default: Linear, Conv1d/2d/3d and Sequential.
    specific_rpu_config_fun : callable, optional
        ``fn(module_name, module, rpu_config) -> rpu_config`` to give single layers their
        own config.
    module_name : str
        Name of ``module`` (for ``specific_rpu_config_fun`` and ``exclude_modules``).
    ensure_analog_root : bool
        Wrap a root that is no analog module in :class:`AnalogWrapper`.
    exclude_modules : list of str, optional
        Names of modules to leave digital.
    inplace : bool
        Convert ``module`` itself instead of a deep copy.
    verbose : bool
        Print every converted layer.

    Returns
    -------
    torch.nn.Module
        The analog model; the weights are copied with ``set_weights``.
    """
    if conversion_map is None:
        conversion_map = _default_conversion_map()
    if not isinstance(conversion_map, dict):
        raise TypeError(f"conversion_map must be a dict, got {type(conversion_map).__name__}")
    exclude_modules = list(exclude_modules or [])
    fun = specific_rpu_config_fun or (lambda _name, _module, config: config)
    if not inplace:
        module = copy.deepcopy(module)
    if type(module) in conversion_map and module_name not in exclude_modules:
        if verbose:
            print(f"Converted '{module_name}' to '{conversion_map[type(module)].__name__}'.")
        module = conversion_map[type(module)].from_digital(
            module, fun(module_name, module, copy.deepcopy(rpu_config)), tile_module_class)
    converted = {}
    for name, child in module.named_children():
        full_name = f"{module_name}.{name}" if module_name else name
        if full_name in exclude_modules or isinstance(child, AnalogLayerBase) \
                and not child.IS_CONTAINER:
            continue
        if any(True for _ in child.children()):
            converted[name] = convert_to_analog(
                child, rpu_config, tile_module_class, conversion_map, specific_rpu_config_fun,
                full_name, True, exclude_modules, True, verbose)
        elif type(child) in conversion_map:
            if verbose:
                print(f"Converted '{full_name}' to '{conversion_map[type(child)].__name__}'.")
            converted[name] = conversion_map[type(child)].from_digital(
                child, fun(full_name, child, copy.deepcopy(rpu_config)), tile_module_class)
    for name, child in converted.items():
        module._modules[name] = child
    if ensure_analog_root and not module_name and not isinstance(module, AnalogLayerBase):
        module = AnalogWrapper(module)
    return module


def convert_to_digital(module: nn.Module, conversion_set: set | None = None,
                       module_name: str = "", inplace: bool = False) -> nn.Module:
    """Replace analog layers by their digital counterparts with the same weights (aihwkit's
    ``convert_to_digital``; every class in ``conversion_set`` needs ``to_digital``)."""
    if conversion_set is None:
        conversion_set = set(_default_conversion_map().values())
    if not inplace:
        module = copy.deepcopy(module)
    if type(module) in conversion_set or isinstance(module, AnalogWrapper):
        module = type(module).to_digital(module)
    converted = {}
    for name, child in module.named_children():
        if type(child) in conversion_set and not isinstance(child, AnalogContainerBase):
            converted[name] = type(child).to_digital(child)
        elif any(True for _ in child.children()) and not isinstance(
                child, AnalogLayerBase) or isinstance(child, AnalogContainerBase):
            converted[name] = convert_to_digital(child, conversion_set,
                                                 f"{module_name}.{name}", True)
    for name, child in converted.items():
        module._modules[name] = child
    return module
